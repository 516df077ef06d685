# Copyright (c) strata.overlay2 contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: overlay2_junit
short_description: Write compliance checks as JUnit XML
version_added: 0.1.0
author:
  - strata.overlay2 maintainers (@strata-overlay2)
description:
  - One test suite per host with a test case per check; a failed check carries its details (for C(layers_verify),
    the layer and the changed file) in the failure's text, a skipped one is marked skipped.
positional: _input, host, timestamp
options:
  _input:
    description: The checks made by P(strata.overlay2.overlay2_compliance#filter).
    type: list
    elements: dict
    required: true
  host:
    description: The host's name.
    type: str
    required: true
  timestamp:
    description: The test suite's timestamp.
    type: str
    default: ""
"""

EXAMPLES = r"""
- name: Write the JUnit file of the host
  ansible.builtin.copy:
    content: "{{ checks | strata.overlay2.overlay2_junit(inventory_hostname) }}"
    dest: "/srv/junit/{{ inventory_hostname }}.xml"
    mode: "0644"
  delegate_to: localhost
"""

RETURN = r"""
_value:
  description: The XML document.
  type: str
"""

from typing import Any, Callable, Dict

from ansible_collections.strata.overlay2.plugins.plugin_utils import _compliance
from ansible_collections.strata.overlay2.plugins.plugin_utils._filters import guard


@guard
def overlay2_junit(checks: Any, host: str, timestamp: str = "") -> str:
    return _compliance.junit_xml(checks, host, timestamp)


class FilterModule:
    def filters(self) -> Dict[str, Callable[..., Any]]:
        return {"overlay2_junit": overlay2_junit}
