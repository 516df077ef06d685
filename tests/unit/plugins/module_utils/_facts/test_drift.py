"""Container drift: what a container changed below its image's executables, libraries and configuration."""

from __future__ import annotations

from ansible_collections.strata.overlay2.plugins.module_utils._facts.gather import gather
from ansible_collections.strata.overlay2.plugins.module_utils._store.detect import load_store
from ansible_collections.strata.overlay2.plugins.module_utils._facts import drift as _drift
from ansible_collections.strata.overlay2.plugins.plugin_utils._compliance import evaluate
from tests.support.synthstore import SyntheticStore, directory, file, opaque, whiteout

BASE = [directory("bin"), file("bin/ls", b"ls", 0o755), file("bin/sh", b"sh", 0o755), directory("etc"),
        file("etc/passwd", b"root:x:0:0::/root:/bin/sh\n"), directory("usr"), directory("usr/share"),
        file("usr/share/doc", b"d"), directory("tmp"), directory("srv")]


def drifting_store(root, rw_files):
    store = SyntheticStore(root)
    layer = store.add_layer(BASE)
    image = store.add_image([layer], tags=["strata/drift:1"])
    store.add_container(image, layer, "changed", rw_files=rw_files)
    store.add_container(image, layer, "clean")
    return store


def containers_of(root, paths=_drift.DEFAULT_PATHS):
    return {c["name"]: c for c in gather(load_store(root), drift_paths=list(paths))["containers"]}


def test_added_changed_deleted_and_replaced_below_the_watched_paths_only(tmp_path):
    drifting_store(str(tmp_path), [
        directory("etc"), file("etc/passwd", b"root:x:0:0::/root:/bin/sh\nmallory:x:0:0::/:/bin/sh\n"),
        directory("usr"), directory("usr/bin"), file("usr/bin/miner", b"x", 0o755), opaque("usr/share"),
        directory("bin"), whiteout("bin/ls"), directory("tmp"), file("tmp/scratch", b"t"),
        directory("srv"), file("srv/data", b"d")])
    containers = containers_of(str(tmp_path))
    assert containers["changed"]["drift"] == {"entries": [
        {"path": "/bin/ls", "kind": "deleted"}, {"path": "/etc/passwd", "kind": "changed"},
        {"path": "/usr/bin/miner", "kind": "added"}, {"path": "/usr/share", "kind": "replaced"}],
        "count": 4, "truncated": False, "error": None}
    assert containers["clean"]["drift"] == {"entries": [], "count": 0, "truncated": False, "error": None}
    only_etc = containers_of(str(tmp_path), ["/etc", "/srv"])["changed"]["drift"]["entries"]
    assert only_etc == [{"path": "/etc/passwd", "kind": "changed"}, {"path": "/srv/data", "kind": "added"}]


def test_without_drift_paths_the_facts_have_no_drift_key(tmp_path):
    drifting_store(str(tmp_path), [])
    assert all("drift" not in c for c in gather(load_store(str(tmp_path)))["containers"])


def test_many_changes_are_counted_and_listed_up_to_the_limit(tmp_path, monkeypatch):
    monkeypatch.setattr(_drift, "LIMIT", 3)
    drifting_store(str(tmp_path), [directory("etc")] + [file("etc/f%d" % n, b"x") for n in range(5)])
    found = containers_of(str(tmp_path))["changed"]["drift"]
    assert found["count"] == 5 and found["truncated"] and len(found["entries"]) == 3


def test_a_writable_layer_that_cannot_be_read_is_said_and_fails_the_rule(tmp_path):
    drifting_store(str(tmp_path), [directory("etc"), file("etc/new", b"n")])
    facts = gather(load_store(str(tmp_path)), drift_paths=["/etc"])
    broken = next(c for c in facts["containers"] if c["name"] == "clean")
    broken["drift"] = _drift.drift(broken["upper_dir"] + "-gone", broken["lower_dirs"], ["/etc"])
    assert broken["drift"]["error"] and "does not exist" in broken["drift"]["error"]
    drift_only = {"layers_verify": False, "no_container_on_corrupt_image": False, "no_container_drift": True}
    check = [c for c in evaluate(facts, None, drift_only) if c["name"] == "no_container_drift"][0]
    assert check["status"] == "failed"
    assert any("container changed" in d and "added /etc/new" in d for d in check["details"])
    assert any("container clean" in d and "cannot be read" in d for d in check["details"])
    without = gather(load_store(str(tmp_path)))
    check = [c for c in evaluate(without, None, drift_only) if c["name"] == "no_container_drift"][0]
    assert check["status"] == "failed" and "without container_drift" in check["message"]
