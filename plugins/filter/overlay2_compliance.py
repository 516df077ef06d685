# Copyright (c) strata.overlay2 contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: overlay2_compliance
short_description: Judge one host's overlay2 store against a policy
version_added: 0.1.0
author:
  - strata.overlay2 maintainers (@strata-overlay2)
description:
  - Evaluates the checks C(layers_verify), C(orphan_bytes), C(allowed_repositories), C(layer_depth),
    C(no_container_on_corrupt_image), C(no_container_drift), C(container_log_bytes) and C(container_log_rotation), in
    that order. A rule the policy does not set is returned as skipped.
positional: _input, verdict, policy
options:
  _input:
    description: The host's C(ansible_facts.overlay2).
    type: dict
    required: true
  verdict:
    description: The registered result of M(strata.overlay2.layer_verify); a skipped task counts as no result.
    type: dict
  policy:
    description:
      - C(layers_verify) (bool, default true), C(max_orphan_bytes) (int or null), C(allowed_repositories) (list of
        shell-style patterns matched against the repository of every tag and digest, for example
        V(registry.example.com/*)), C(max_layer_depth) (int or null), C(no_container_on_corrupt_image) (bool,
        default true), C(no_container_drift) (bool, default false; needs facts gathered with
        O(strata.overlay2.overlay2_facts#module:container_drift=true)), C(max_container_log_bytes) (int or null,
        no container's logs, rotated copies included, over it) and C(container_log_rotation) (bool, default false,
        every container's log options rotate its logs); the last two need facts with C(usage).
    type: dict
    default: {}
"""

EXAMPLES = r"""
- name: Judge the host
  ansible.builtin.set_fact:
    checks: "{{ ansible_facts.overlay2 | strata.overlay2.overlay2_compliance(verdict, {'max_layer_depth': 40}) }}"
"""

RETURN = r"""
_value:
  description: One dict per check with C(name), C(status) (V(passed), V(failed) or V(skipped)), C(message) and C(details).
  type: list
  elements: dict
"""

from typing import Any, Callable, Dict, List, Optional

from ansible_collections.strata.overlay2.plugins.plugin_utils import _compliance
from ansible_collections.strata.overlay2.plugins.plugin_utils._filters import guard


@guard
def overlay2_compliance(facts: Any, verdict: Any = None, policy: Optional[Dict[str, Any]] = None) -> List[Dict[str, Any]]:
    return _compliance.evaluate(facts, verdict, policy or {})


class FilterModule:
    def filters(self) -> Dict[str, Callable[..., Any]]:
        return {"overlay2_compliance": overlay2_compliance}
