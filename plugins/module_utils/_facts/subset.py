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
ALWAYS = ("data_root", "driver", "store", "containerd", "warnings", "warnings_count")  # whatever the subset
KEYS = {"daemons": ("daemon", "daemons"), "summary": ("summary", "orphan_totals")}  # where not the part's name
LISTS = ("images", "layers", "containers")  # the parts whose size grows with the store's
FIRST_WARNINGS = 20  # the warnings a result without those lists carries (``warnings_count`` says how many)


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


def needs_orphans(parts: Set[str]) -> bool:
    """Whether the parts need the orphans classified: their own section, or the summary's totals."""
    return bool(parts & {"orphans", "summary"})


def keep(facts: dict, parts: Set[str]) -> dict:
    """The facts with only the keys of the parts chosen (and those returned whatever the subset). The summary
    brings ``orphan_totals`` (each kind's count and bytes); a result without the lists that grow with the store
    (images, layers, containers) carries the first ``FIRST_WARNINGS`` warnings, and ``warnings_count`` all."""
    facts = dict(facts)
    warnings = facts.get("warnings") or []
    facts["warnings_count"] = len(warnings)
    if not parts & set(LISTS):
        facts["warnings"] = warnings[:FIRST_WARNINGS]
    orphans = facts.get("orphans")
    if isinstance(orphans, dict):
        totals: dict = {}
        for entry in orphans.get("entries") or []:
            found = totals.setdefault(entry["kind"], {"count": 0, "bytes": 0})
            found["count"] += 1
            found["bytes"] += entry["bytes"]
        facts["orphan_totals"] = {kind: totals.get(kind, {"count": 0, "bytes": 0})
                                  for kind in sorted(set(orphans.get("by_kind") or {}) | set(totals))}
    else:
        facts["orphan_totals"] = None
    wanted = set(ALWAYS)
    for part in parts:
        wanted.update(KEYS.get(part, (part,)))
    return {key: value for key, value in facts.items() if key in wanted}
