# Copyright (c) strata.overlay2 contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: overlay2_audit_result
short_description: The result one host keeps in the fact cache for the fleet report
version_added: 1.1.0
author:
  - strata.overlay2 maintainers (@strata-overlay2)
description:
  - Wraps a host's bounded store summaries (P(strata.overlay2.overlay2_bounded#filter)) as the C(overlay2_audit)
    fact that M(strata.overlay2.fleet_report) reads - C(schema), C(role), C(host), C(run_at) (now, UTC) and
    C(rows).
  - The values are plain data, so that the fact cache stores them without per-value metadata and reads them
    back fast at fleet scale.
positional: _input, host
options:
  _input:
    description: The host's bounded summaries, one per store.
    type: list
    elements: dict
    required: true
  host:
    description: The host's inventory name.
    type: str
    required: true
"""

EXAMPLES = r"""
- name: Keep the host's result in the fact cache
  ansible.builtin.set_fact:
    overlay2_audit: "{{ rows | strata.overlay2.overlay2_audit_result(inventory_hostname) }}"
    cacheable: true
"""

RETURN = r"""
_value:
  description: C(schema) (1), C(role), C(host), C(run_at) and C(rows).
  type: dict
"""

from typing import Any, Callable, Dict

from ansible_collections.strata.overlay2.plugins.plugin_utils import _fleet
from ansible_collections.strata.overlay2.plugins.plugin_utils._filters import guard


@guard
def overlay2_audit_result(rows: Any, host: str) -> Dict[str, Any]:
    return _fleet.audit_result(rows, str(host))


class FilterModule:
    def filters(self) -> Dict[str, Callable[..., Any]]:
        return {"overlay2_audit_result": overlay2_audit_result}
