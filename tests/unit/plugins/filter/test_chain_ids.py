from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.strata.overlay2.plugins.filter.chain_ids import FilterModule

chain_ids = FilterModule().filters()["chain_ids"]


def test_known_vector():
    assert chain_ids([
        "sha256:5dacd731af1b0386ead06c8b1feff9f65d9e0bdfec032d2cd0bc03690698feda",
        "sha256:dd0338cdfab32cdddd6c30efe8c89d0229d9f939e2bb736fbb0a52f27c2b0ee9",
    ])[1] == "sha256:166d13b0f0cb542034a2aef1c034ee2271e1d6aaee4490f749e72d1c04449c5b"


@pytest.mark.parametrize("bad", ["sha256:" + "a" * 64, None, 5, ["nope"]])
def test_bad_input_is_a_filter_error(bad):
    with pytest.raises(AnsibleFilterError):
        chain_ids(bad)
