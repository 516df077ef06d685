# Copyright (c) strata.overlay2 contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: overlay2_bounded
short_description: Cut a host summary to a size that does not grow with the store
version_added: 1.1.0
author:
  - strata.overlay2 maintainers (@strata-overlay2)
description:
  - Keeps the first O(limit) entries of each list of a summary made by
    P(strata.overlay2.overlay2_host_summary#filter) (C(image_list), C(corrupt), C(unverifiable), C(orphan_paths),
    C(warnings)) and the first 3 of the lists inside an entry (a corrupt layer's C(images), C(containers) and
    C(problems), a CIS control's C(failing)), each beside its count (C(list_totals), C(<list>_total)).
  - The audit role keeps this as the host's cacheable C(overlay2_audit) fact.
positional: _input, limit
options:
  _input:
    description: A host summary.
    type: dict
    required: true
  limit:
    description: How many entries of each list to keep.
    type: int
    default: 10
"""

EXAMPLES = r"""
- name: Keep a small summary in the fact cache
  ansible.builtin.set_fact:
    overlay2_small: "{{ overlay2_row | strata.overlay2.overlay2_bounded(10) }}"
    cacheable: true
"""

RETURN = r"""
_value:
  description: The summary, its lists cut; C(list_totals) still counts every entry.
  type: dict
"""

from typing import Any, Callable, Dict

from ansible_collections.strata.overlay2.plugins.plugin_utils import _report
from ansible_collections.strata.overlay2.plugins.plugin_utils._filters import guard


@guard
def overlay2_bounded(row: Any, limit: int = 10) -> Dict[str, Any]:
    return _report.bounded(_report._mapping(row, "the host summary"), int(limit))


class FilterModule:
    def filters(self) -> Dict[str, Callable[..., Any]]:
        return {"overlay2_bounded": overlay2_bounded}
