# Copyright (c) strata.overlay2 contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: chain_ids
short_description: Compute the chainIDs of a list of DiffIDs
version_added: 0.1.0
author:
  - strata.overlay2 maintainers (@strata-overlay2)
description:
  - Turns an image's C(rootfs.diff_ids) (bottom layer first) into the chainIDs under which Docker keeps the
    layers in C(image/overlay2/layerdb/sha256/).
  - ChainID(1) = DiffID(1); ChainID(n) = sha256 of C("<ChainID(n-1)> <DiffID(n)>"), both with their C(sha256:) prefix.
positional: _input
options:
  _input:
    description: DiffIDs, C(sha256:<64 hex>), bottom layer first.
    type: list
    elements: str
    required: true
"""

EXAMPLES = r"""
- name: Find the layerdb directory of an image's top layer
  ansible.builtin.debug:
    msg: "/var/lib/docker/image/overlay2/layerdb/sha256/{{ (diff_ids | strata.overlay2.chain_ids | last)[7:] }}"
  vars:
    diff_ids:
      - sha256:5dacd731af1b0386ead06c8b1feff9f65d9e0bdfec032d2cd0bc03690698feda
      - sha256:dd0338cdfab32cdddd6c30efe8c89d0229d9f939e2bb736fbb0a52f27c2b0ee9
"""

RETURN = r"""
_value:
  description: The chainIDs, bottom layer first, one per DiffID.
  type: list
  elements: str
"""

from typing import Any, Callable, Dict, List

from ansible.errors import AnsibleFilterError

from ansible_collections.strata.overlay2.plugins.module_utils._util.ids import InvalidId, chain_ids as compute_chain_ids


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
