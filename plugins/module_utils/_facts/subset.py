# Copyright (c) strata.overlay2 contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# This module_utils is PRIVATE to the strata.overlay2 collection. It may change
# without notice; do not import it from other collections.

"""``gather_subset``, read as ``ansible.builtin.setup`` reads it: parts, ``all``, and ``!`` to leave one out."""

from __future__ import annotations

from typing import Sequence, Set

PARTS = ("summary", "images", "layers", "containers", "orphans", "daemons", "usage")
ALL = "all"
ALWAYS = ("data_root", "driver", "store", "containerd", "warnings")  # returned whatever the subset
KEYS = {"daemons": ("daemon", "daemons")}  # the facts' keys of a part, where they are not its name


def resolve(requested: Sequence[str]) -> Set[str]:
    """The parts asked for: each entry adds a part (or ``all`` of them) or, with ``!``, leaves it out, in
    order; a list of exclusions alone starts from ``all``. ValueError names an unknown part."""
    entries = [str(entry).strip() for entry in requested]
    chosen: Set[str] = set(PARTS) if entries and all(entry.startswith("!") for entry in entries) else set()
    for entry in entries:
        name = entry[1:] if entry.startswith("!") else entry
        if name != ALL and name not in PARTS:
            raise ValueError("gather_subset: unknown part %r; choose from %s, each may start with !"
                             % (name, ", ".join((ALL,) + PARTS)))
        names = set(PARTS) if name == ALL else {name}
        chosen = chosen - names if entry.startswith("!") else chosen | names
    return chosen


def keep(facts: dict, parts: Set[str]) -> dict:
    """The facts with only the keys of the parts chosen (and those returned whatever the subset)."""
    wanted = set(ALWAYS)
    for part in parts:
        wanted.update(KEYS.get(part, (part,)))
    return {key: value for key, value in facts.items() if key in wanted}
