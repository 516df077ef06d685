# Copyright (c) strata.overlay2 contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: overlay2_host_summary
short_description: Summarise one host's overlay2 facts and layer verdict for the fleet report
version_added: 0.1.0
author:
  - strata.overlay2 maintainers (@strata-overlay2)
description:
  - Turns what M(strata.overlay2.overlay2_facts) and M(strata.overlay2.layer_verify) returned on a host into the
    row and detail of that host in the fleet report.
  - Intermediate images of the classic builder are left out of the image list, as the engine's disk usage does.
positional: _input, verdict, host, cis
options:
  _input:
    description: The host's C(ansible_facts.overlay2).
    type: dict
    required: true
  verdict:
    description: The registered result of M(strata.overlay2.layer_verify), or null when the layers were not verified.
    type: dict
  host:
    description: The host's name in the report.
    type: str
    default: ""
  cis:
    description:
      - The registered result of M(strata.overlay2.cis_benchmark), or null; the report then shows a control-by-host
        table of the benchmark.
    type: dict
"""

EXAMPLES = r"""
- name: Summarise this host
  ansible.builtin.set_fact:
    overlay2_row: "{{ ansible_facts.overlay2 | strata.overlay2.overlay2_host_summary(verdict, inventory_hostname) }}"
"""

RETURN = r"""
_value:
  description:
    - C(host), C(data_root), C(images), C(layers), C(containers), C(layers_size), C(shared_size), C(unique_size),
      C(reclaimable_size), C(orphan_bytes), C(orphans_by_kind), C(orphan_paths), C(warnings), C(image_list) (by
      unique bytes), C(verdict) (V(verified), V(corrupt) or V(not verified)), C(checked_layers), C(bytes_verified)
      and C(corrupt) (chainID, cache-id, image names, containers and problems of each corrupt layer).
    - C(usage), where the disk went when the facts hold C(usage) (else null) - C(total) and C(categories), the
      bytes of each category of M(strata.overlay2.overlay2_facts)' C(usage) and of C(unattributed), which add up to
      C(total).
  type: dict
"""

from typing import Any, Callable, Dict

from ansible_collections.strata.overlay2.plugins.plugin_utils import _report
from ansible_collections.strata.overlay2.plugins.plugin_utils._filters import guard


@guard
def overlay2_host_summary(facts: Any, verdict: Any = None, host: str = "", cis: Any = None) -> Dict[str, Any]:
    return _report.host_summary(facts, verdict, host, cis)


class FilterModule:
    def filters(self) -> Dict[str, Callable[..., Any]]:
        return {"overlay2_host_summary": overlay2_host_summary}
