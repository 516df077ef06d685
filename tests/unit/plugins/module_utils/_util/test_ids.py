from __future__ import annotations

import pytest

from ansible_collections.strata.overlay2.plugins.module_utils._util.ids import (
    InvalidId,
    chain_ids,
    is_buildkit_id,
    is_cache_id,
    is_link_id,
    parse_cache_id,
    parse_digest,
    parse_init_id,
    removing_chain,
)

NGINX_DIFF_IDS = [
    "sha256:5dacd731af1b0386ead06c8b1feff9f65d9e0bdfec032d2cd0bc03690698feda",
    "sha256:dd0338cdfab32cdddd6c30efe8c89d0229d9f939e2bb736fbb0a52f27c2b0ee9",
]


def test_first_chain_id_is_the_first_diff_id_and_the_next_hashes_the_pair():
    assert chain_ids(NGINX_DIFF_IDS) == [
        NGINX_DIFF_IDS[0],
        "sha256:166d13b0f0cb542034a2aef1c034ee2271e1d6aaee4490f749e72d1c04449c5b",
    ]


def test_no_diff_ids_give_no_chain_ids():
    assert chain_ids([]) == []


@pytest.mark.parametrize("bad", ["5dacd731", "sha256:" + "g" * 64, "sha512:" + "a" * 64, "sha256:" + "A" * 64,
                                 "sha256:" + "a" * 63, "sha256:../../etc/passwd"])
def test_a_malformed_diff_id_is_refused(bad):
    with pytest.raises(InvalidId):
        chain_ids([bad])


@pytest.mark.parametrize("value", [None, 5, True, ["sha256:" + "a" * 64], {"digest": "sha256:" + "a" * 64}])
def test_a_digest_read_from_json_that_is_no_string_is_refused_not_raised_on(value):
    with pytest.raises(InvalidId, match="rootfs.diff_ids entry is not sha256"):
        parse_digest(value, "rootfs.diff_ids entry")


def test_digest_tolerates_surrounding_whitespace_only():
    assert parse_digest(" sha256:%s\n" % ("a" * 64)) == "sha256:" + "a" * 64


def test_a_digest_seen_before_gives_the_same_answer_and_a_bad_one_is_refused_every_time():
    good = "sha256:" + "b" * 64
    bad = "sha256:" + "b" * 63
    for _attempt in range(3):
        assert parse_digest(good + "\n") == good
        assert parse_digest(good) is parse_digest(good)
        with pytest.raises(InvalidId, match="image target"):
            parse_digest(bad, "image target")


def test_the_memory_of_valid_digests_stays_bounded(monkeypatch):
    from ansible_collections.strata.overlay2.plugins.module_utils._util import ids as _ids
    monkeypatch.setattr(_ids, "_VALID_DIGESTS", {})
    monkeypatch.setattr(_ids, "_VALID_DIGESTS_LIMIT", 4)
    for number in range(10):
        assert parse_digest("sha256:%064x" % number) == "sha256:%064x" % number
        assert len(_ids._VALID_DIGESTS) <= 4  # pylint: disable=protected-access


@pytest.mark.parametrize("value", ["a" * 64, "n4aock4nuttz3uarulk7w9pyq"])
def test_engine_and_buildkit_cache_ids_are_accepted(value):
    assert is_cache_id(value)
    assert parse_cache_id(value + "\n") == value


@pytest.mark.parametrize("value", ["../../etc", "/etc/passwd", "a" * 63, "a" * 64 + "/..", "x\0y", "",
                                   "N4AOCK4NUTTZ3UARULK7W9PYQ", "a" * 64 + "-init"])
def test_cache_ids_that_could_steer_a_path_are_refused(value):
    with pytest.raises(InvalidId):
        parse_cache_id(value)


def test_buildkit_ids_are_25_base36_characters():
    assert is_buildkit_id("ussu1vy3wun3esv0p64nstmdi")
    assert not is_buildkit_id("ussu1vy3wun3esv0p64nstmd")


def test_link_ids_are_26_base32_characters():
    assert is_link_id("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
    assert not is_link_id("ABCDEFGHIJKLMNOPQRSTUVWXY1")
    assert not is_link_id("../../../../../../etc/pwnd")


def test_init_id_must_name_the_mount():
    assert parse_init_id("a" * 64 + "-init", "a" * 64) == "a" * 64 + "-init"
    with pytest.raises(InvalidId):
        parse_init_id("b" * 64 + "-init", "a" * 64)


def test_removing_directory_names_give_their_chain():
    assert removing_chain("a" * 64 + "-" + "b" * 64 + "-removing") == "a" * 64
    assert removing_chain("a" * 64 + "-removing") is None
