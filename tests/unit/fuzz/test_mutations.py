"""Property: whatever bytes any file of a store holds, every module core answers without a traceback.

A bounded number of examples runs in ``make test``; ``devtools/fuzz.py`` runs the same for longer.
"""

from __future__ import annotations

import hashlib
import json
import os
import random

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from tests.support.mutations import (
    CONTAINERD_FILE_KINDS,
    FILE_KINDS,
    WRONG_VALUES,
    containerd_files_of_kind,
    exercise,
    exercise_containerd,
    files_of_kind,
    json_paths,
    prepare_containerd_store,
    prepare_store,
    replaced,
    value_at,
    run_once,
    run_once_containerd,
)


def prunable(result):
    """The orphans a prune may remove (containerd's records, which it leaves to containerd, are not)."""
    return [e for e in result["orphans"]["entries"] if e.get("command") is None and not e["blocked_by"]]


@pytest.fixture(scope="module")
def store_root(tmp_path_factory):
    root = os.path.join(str(tmp_path_factory.mktemp("fuzz")), "docker")
    prepare_store(root)
    return root


def test_the_sample_store_has_every_file_kind(store_root):
    assert all(files_of_kind(store_root)[kind] for kind in FILE_KINDS)


@settings(max_examples=int(os.environ.get("STRATA_FUZZ_EXAMPLES", "150")), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kind=st.sampled_from(FILE_KINDS), seed=st.integers(0, 2 ** 32 - 1))
def test_any_mutation_of_any_file_gives_an_answer_not_a_traceback(store_root, kind, seed):
    restore = run_once(store_root, random.Random(seed), kind)
    try:
        result = exercise(store_root)
    finally:
        restore()
    assert isinstance(result["facts"]["images"], list)


def test_the_store_is_clean_again_after_the_mutations(store_root):
    result = exercise(store_root)
    assert result["facts"]["warnings"] == [] and result["verify"]["ok"] is True


@pytest.fixture(scope="module")
def containerd_root(tmp_path_factory):
    root = os.path.join(str(tmp_path_factory.mktemp("fuzz-ctd")), "docker")
    prepare_containerd_store(root)
    return root


def test_the_containerd_store_has_every_file_kind_and_is_clean(containerd_root):
    assert all(containerd_files_of_kind(containerd_root)[kind] for kind in CONTAINERD_FILE_KINDS)
    result = exercise_containerd(containerd_root)
    assert result["facts"]["warnings"] == [] and result["verify"]["ok"] is True
    assert result["orphans"]["entries"] == []


@settings(max_examples=int(os.environ.get("STRATA_FUZZ_EXAMPLES", "150")), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kind=st.sampled_from(CONTAINERD_FILE_KINDS), seed=st.integers(0, 2 ** 32 - 1))
def test_any_mutation_of_any_containerd_file_gives_an_answer_not_a_traceback(containerd_root, kind, seed):
    restore = run_once_containerd(containerd_root, random.Random(seed), kind)
    try:
        result = exercise_containerd(containerd_root)
    finally:
        restore()
    assert isinstance(result["facts"]["images"], list)
    # the clean store has no orphan: a damaged file never makes a file of the store one that may go
    assert prunable(result) == [], kind


def test_the_containerd_store_is_clean_again_after_the_mutations(containerd_root):
    result = exercise_containerd(containerd_root)
    assert result["facts"]["warnings"] == [] and result["verify"]["ok"] is True


# -- every JSON value swapped for one of another type, each in turn -------------------------------------
def every_wrong_type(root, files_of, kinds, exercise_store, named_by_content=()):
    """Each value of each JSON document of ``kinds`` replaced, in turn, with each of WRONG_VALUES; returns the
    swaps that raised (a traceback is a bug) or made a file of the store prunable (a document read wrong).

    A document of a kind in ``named_by_content`` is written under the name of its new digest, as the engine
    would name it: the parser meets the value, not the check that finds an edited document (that check alone
    would make the store damaged, and keep everything)."""
    broken = []
    shapes = set()
    for kind in kinds:
        for path in files_of(root)[kind]:
            with open(path, "rb") as handle:
                original = handle.read()
            document = json.loads(original)
            shape = tuple(json_paths(document))
            if shape in shapes:
                continue  # a document of the same keys (a second container's config) tells nothing new
            shapes.add(shape)
            try:
                for where in json_paths(document):
                    was = value_at(document, where)
                    # an empty list where a list was is no wrong type: a store may say "none" that way
                    for value in [value for value in WRONG_VALUES if not (value == [] and isinstance(was, list))]:
                        written = write_swapped(path, json.dumps(replaced(document, where, value)).encode(),
                                                kind in named_by_content)
                        try:
                            result = exercise_store(root)
                        except Exception as exc:  # pylint: disable=broad-except
                            broken.append((os.path.basename(path), where, value, repr(exc)))
                            continue
                        finally:
                            if written != path:
                                os.remove(written)
                        if prunable(result):
                            broken.append((os.path.basename(path), where, value, "made an orphan"))
            finally:
                with open(path, "wb") as handle:
                    handle.write(original)
    return broken


def write_swapped(path, data, by_content):
    """``data`` written at ``path``, or (``by_content``) instead of it, under the hex digest of ``data``."""
    if by_content:
        if os.path.lexists(path):  # the first swap of the document: later ones find it gone
            os.remove(path)
        path = os.path.join(os.path.dirname(path), hashlib.sha256(data).hexdigest())
    with open(path, "wb") as handle:
        handle.write(data)
    return path


@pytest.mark.parametrize("kind", ["image config", "repositories.json", "config.v2.json"])
def test_any_json_value_of_another_type_gives_an_answer_on_overlay2(store_root, kind):
    assert every_wrong_type(store_root, files_of_kind, [kind], exercise, named_by_content=["image config"]) == []
    test_the_store_is_clean_again_after_the_mutations(store_root)


@pytest.mark.parametrize("kind", ["manifest or config blob", "container config.v2.json"])
def test_any_json_value_of_another_type_gives_an_answer_on_containerd(containerd_root, kind):
    assert every_wrong_type(containerd_root, containerd_files_of_kind, [kind], exercise_containerd) == []
    test_the_containerd_store_is_clean_again_after_the_mutations(containerd_root)
