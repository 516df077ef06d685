#!/usr/bin/env python
"""Write the Sphinx inventory of the Ansible documentation labels the generated pages refer to:

    devtools/docs_inventory.py OUTPUT

A Sphinx objects.inv (version 2: four header lines, then zlib-compressed ``name domain:role priority uri
dispname`` lines) listing only the labels that antsibull-docs' pages use, with their places on
docs.ansible.com, so that the site builds offline with every reference resolved.
"""

from __future__ import annotations

import sys
import zlib

LABELS = {
    # label: (page and anchor under docs.ansible.com/projects/ansible/devel/, title)
    "ansible_configuration_settings": ("reference_appendices/config.html#$", "Ansible Configuration Settings"),
    "common_return_values": ("reference_appendices/common_return_values.html#$", "Return Values"),
    "playbooks_loops": ("playbook_guide/playbooks_loops.html#$", "Loops"),
    "playbooks_intro": ("playbook_guide/playbooks_intro.html#$", "Ansible playbooks"),
    "intro_inventory": ("inventory_guide/intro_inventory.html#$", "How to build your inventory"),
    "action_plugins": ("plugins/action.html#$", "Action plugins"),
}


def inventory() -> bytes:
    header = (b"# Sphinx inventory version 2\n# Project: Ansible\n# Version: devel\n"
              b"# The remainder of this file is compressed using zlib.\n")
    lines = "".join("%s std:label -1 %s %s\n" % (label, uri, title) for label, (uri, title) in sorted(LABELS.items()))
    return header + zlib.compress(lines.encode("utf-8"))


if __name__ == "__main__":
    with open(sys.argv[1], "wb") as handle:
        handle.write(inventory())
