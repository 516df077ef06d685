# Copyright (c) strata.overlay2 contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: overlay2_fleet_report
short_description: Gather host summaries into the fleet report's data
version_added: 0.1.0
author:
  - strata.overlay2 maintainers (@strata-overlay2)
description:
  - Sorts the host summaries made by P(strata.overlay2.overlay2_host_summary#filter), adds totals and ranks the
    largest images of the fleet by unique bytes.
positional: _input, missing, generated, largest
options:
  _input:
    description: One summary per host.
    type: list
    elements: dict
    required: true
  missing:
    description: Hosts that gave no data (failed or unreachable); they are listed as such.
    type: list
    elements: str
    default: []
  generated:
    description: When the report was made, as shown on the page.
    type: str
    default: ""
  largest:
    description: How many images the ranking keeps.
    type: int
    default: 10
"""

EXAMPLES = r"""
- name: Build the fleet report's data
  ansible.builtin.set_fact:
    fleet: >-
      {{ ansible_play_hosts | map('extract', hostvars, 'overlay2_row') | list
         | strata.overlay2.overlay2_fleet_report(ansible_play_hosts_all | difference(ansible_play_hosts)) }}
  run_once: true
"""

RETURN = r"""
_value:
  description:
    - C(generated), C(hosts), C(missing_hosts), C(totals) and C(largest_images).
    - C(totals.usage) adds up the hosts' C(usage) (C(stores) measured, C(total), C(categories)); null when no
      host's facts hold C(usage).
  type: dict
"""

from typing import Any, Callable, Dict, Optional, Sequence

from ansible_collections.strata.overlay2.plugins.plugin_utils import _report
from ansible_collections.strata.overlay2.plugins.plugin_utils._filters import guard


@guard
def overlay2_fleet_report(hosts: Any, missing: Optional[Sequence[str]] = None, generated: str = "",
                          largest: int = 10) -> Dict[str, Any]:
    return _report.fleet_report(hosts, missing or (), generated, largest)


class FilterModule:
    def filters(self) -> Dict[str, Callable[..., Any]]:
        return {"overlay2_fleet_report": overlay2_fleet_report}
