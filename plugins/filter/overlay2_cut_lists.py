# Copyright (c) strata.overlay2 contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: overlay2_cut_lists
short_description: Cut every list of a document to its first entries, saying what was cut
version_added: 1.1.0
author:
  - strata.overlay2 maintainers (@strata-overlay2)
description:
  - Keeps the first O(limit) entries of every list in a document, however deep (the facts' C(images), C(layers)
    and C(containers), a layer's C(images), the verification's results), so that its size stops growing with
    the store's.
  - Adds C(truncated) at the top level; for each place a list was cut (its keys joined by dots, C([]) for any
    entry of a list, as C(overlay2.layers[].images)), C(lists) (how many lists were cut there) and C(dropped)
    (how many entries they lost). Empty when nothing was cut.
  - The audit role writes each host's detail file through it when its variable C(overlay2_audit_host_file_items) is set.
positional: _input, limit
options:
  _input:
    description: A dict (a host's facts, verification and CIS results).
    type: dict
    required: true
  limit:
    description: How many entries of each list to keep.
    type: int
    required: true
"""

EXAMPLES = r"""
- name: Keep a host's detail on the controller, at most 1000 entries a list
  ansible.builtin.copy:
    content: "{{ {'overlay2': overlay2_map, 'verify': overlay2_verdict} | strata.overlay2.overlay2_cut_lists(1000) | to_nice_json }}"
    dest: "reports/hosts/{{ inventory_hostname }}.json"
    mode: "0644"
  delegate_to: localhost
"""

RETURN = r"""
_value:
  description: The document with its lists cut, and C(truncated) (a dict of C(lists) and C(dropped) by place).
  type: dict
"""

from typing import Any, Callable, Dict

from ansible_collections.strata.overlay2.plugins.plugin_utils import _report
from ansible_collections.strata.overlay2.plugins.plugin_utils._filters import guard


@guard
def overlay2_cut_lists(document: Any, limit: int) -> Dict[str, Any]:
    return _report.cut_lists(document, int(limit))


class FilterModule:
    def filters(self) -> Dict[str, Callable[..., Any]]:
        return {"overlay2_cut_lists": overlay2_cut_lists}
