# Copyright (c) strata.overlay2 contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

from typing import Any, Callable, Dict, List

from ansible.errors import AnsibleFilterError

from ansible_collections.strata.overlay2.plugins.module_utils._ids import InvalidId, chain_ids as compute_chain_ids


def chain_ids(diff_ids: Any) -> List[str]:
    """DiffIDs, bottom layer first -> chainIDs, bottom layer first."""
    if isinstance(diff_ids, (str, bytes)) or not isinstance(diff_ids, (list, tuple)):
        raise AnsibleFilterError("chain_ids expects a list of DiffIDs, got %s" % type(diff_ids).__name__)
    try:
        return compute_chain_ids(str(value) for value in diff_ids)
    except InvalidId as exc:
        raise AnsibleFilterError("chain_ids: %s" % exc) from exc


class FilterModule:
    def filters(self) -> Dict[str, Callable[..., Any]]:
        return {"chain_ids": chain_ids}
