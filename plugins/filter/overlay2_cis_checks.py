# Copyright (c) strata.overlay2 contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: overlay2_cis_checks
short_description: Turn a cis_benchmark result into compliance checks
version_added: 1.1.0
author:
  - strata.overlay2 maintainers (@strata-overlay2)
description:
  - One check per control, named C(<id> <title>), in the shape P(strata.overlay2.overlay2_compliance#filter) returns,
    so that P(strata.overlay2.overlay2_junit#filter) writes one test case per control.
  - V(pass) and V(waived) pass (a waived control's message gives its waivers' reasons), V(fail) fails with one detail
    per offending target, V(manual) and V(not_applicable) are skipped with the reason.
positional: _input
options:
  _input:
    description: The C(controls) returned by M(strata.overlay2.cis_benchmark).
    type: list
    elements: dict
    required: true
"""

EXAMPLES = r"""
- name: Judge the host against the benchmark
  ansible.builtin.set_fact:
    checks: "{{ cis.controls | strata.overlay2.overlay2_cis_checks }}"
"""

RETURN = r"""
_value:
  description: One dict per control with C(name), C(status) (V(passed), V(failed) or V(skipped)), C(message) and C(details).
  type: list
  elements: dict
"""

from typing import Any, Callable, Dict, List

from ansible_collections.strata.overlay2.plugins.plugin_utils import _compliance
from ansible_collections.strata.overlay2.plugins.plugin_utils._filters import guard


@guard
def overlay2_cis_checks(controls: Any) -> List[Dict[str, Any]]:
    return _compliance.cis_checks(controls)


class FilterModule:
    def filters(self) -> Dict[str, Callable[..., Any]]:
        return {"overlay2_cis_checks": overlay2_cis_checks}
