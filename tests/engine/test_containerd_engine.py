"""The containerd image store on a real engine: Debian testing's dockerd 28.5 with containerd 2.1 and the
``containerd-snapshotter`` feature, run from its debootstrap'd root (never installed on the machine).

The sample store (``docker import``, the classic builder and BuildKit, shared bases, a whiteout and an opaque
directory, tagged and dangling images, running, exited and created containers) is read by the modules, run as
a user runs them, and compared with what the engine says: ``docker image inspect``, ``docker inspect -s``,
``/images/json?all=1&shared-size=1``, ``/system/df`` and the running containers' mountinfo; then with the
daemon stopped. Tampering is reported with the right kind, layer, image and path and nothing else. The prune
removes planted leftovers that no database knows, and nothing the engine uses.
"""

from __future__ import annotations

import json
import os
import shutil
import time

import pytest

from ansible_collections.strata.overlay2.plugins.module_utils._util.ids import chain_ids
from devtools.collection import run_module, target_pythons
from tests.support.bolt_fixtures import build_with_buildkit
from devtools.sandbox import ChrootEngine, build_samples

FACTS = "strata.overlay2.overlay2_facts"
VERIFY = "strata.overlay2.layer_verify"
PRUNE = "strata.overlay2.orphan_layer_prune"
OLD = time.time() - 7 * 86400
APP_D = "FROM strata/app-b:1.0\nRUN echo d > /d.txt\nRUN mkdir /var/d && echo log > /var/d/log\n"  # as build_samples


@pytest.fixture(scope="module")
def ctd():
    if os.geteuid() != 0:
        pytest.fail("the engine tests start a dockerd and need root")
    from devtools.fleet import suite_root  # pylint: disable=import-outside-toplevel
    engine = ChrootEngine(suite_root("testing"), containerd_store=True)
    with engine:
        engine.samples = build_samples(engine)
        yield engine


def workdir(path):
    os.makedirs(str(path), exist_ok=True)
    return str(path)


def facts_of(engine, collections_path, tmp_path, python="/usr/bin/python3", **extra):
    result = run_module(collections_path, FACTS, dict({"data_root": engine.data_root, "container_sizes": True},
                                                      **extra), workdir(tmp_path), python=python)
    assert not result.get("failed"), result.get("msg")
    return result["ansible_facts"]["overlay2"]


def by_id(items, key="id"):
    return {item[key]: item for item in items}


def host_path(engine, path):
    return engine.root + path


def overlay_options(pid):
    """lowerdir, upperdir and workdir of the root mount of a process, as the kernel shows them."""
    with open("/proc/%d/mountinfo" % pid, encoding="utf-8") as handle:
        for line in handle:
            fields = line.split()
            if fields[4] == "/" and " - overlay " in line:
                options = dict(item.split("=", 1) for item in line.split(" - ", 1)[1].split()[2].split(",")
                               if "=" in item)
                return options["lowerdir"].split(":"), options["upperdir"], options["workdir"]
    raise AssertionError("no overlay root mount for pid %d" % pid)


def test_facts_equal_what_the_engine_says(ctd, collections_path, tmp_path):
    facts = facts_of(ctd, collections_path, tmp_path)
    assert facts["store"] == "containerd" and facts["driver"] == "overlayfs" and facts["warnings"] == []
    assert facts["containerd"]["layout"] == "managed"
    assert facts["containerd"]["root"] == os.path.join(ctd.data_root, "containerd", "daemon")
    listed = {image["Id"]: image for image in ctd.api("/images/json?all=1&shared-size=1")}
    mine = by_id(facts["images"])
    assert sorted(mine) == sorted(listed) and len(mine) >= 8
    for image in ctd.inspect(*listed):
        entry = mine[image["Id"]]
        assert entry["diff_ids"] == image["RootFS"]["Layers"]
        assert entry["chain_ids"] == chain_ids(image["RootFS"]["Layers"])
        assert entry["tags"] == sorted(image["RepoTags"])
        assert entry["digests"] == sorted(image["RepoDigests"])
        assert (entry["parent"] or "") == image["Parent"]
        assert entry["size"] == listed[image["Id"]]["Size"]
        assert entry["shared_size"] == listed[image["Id"]]["SharedSize"]
        assert entry["manifest_digest"] == image["Descriptor"]["digest"] or image["Descriptor"]["mediaType"].endswith(
            "index.v1+json")
        assert entry["upper_dir"] and all(os.path.isdir(path) for path in [entry["upper_dir"]] + entry["lower_dirs"])
    df = ctd.api("/system/df")
    assert facts["summary"]["layers_size"] == df["LayersSize"]
    assert facts["summary"]["images"] == len(df["Images"])
    assert facts["summary"]["containers"] == len(df["Containers"])
    assert facts["summary"]["content_size"] > 0 and facts["summary"]["snapshots_size"] > 0
    assert facts["orphans"]["entries"] == []


def test_containers_equal_docker_inspect_and_their_mounts(ctd, collections_path, tmp_path):
    facts = facts_of(ctd, collections_path, tmp_path)
    containers = by_id(facts["containers"])
    inspected = ctd.inspect(*ctd.container_ids())
    assert sorted(containers) == sorted(c["Id"] for c in inspected)
    running = 0
    for container in inspected:
        entry = containers[container["Id"]]
        sized = ctd.api("/containers/%s/json?size=1" % container["Id"])
        assert entry["image_id"] == container["Image"]
        assert entry["running"] == container["State"]["Running"]
        assert entry["name"] == container["Name"].lstrip("/")
        assert entry["rw_size"] == sized["SizeRw"]
        assert entry["init_id"] == container["Id"] + "-init"
        if container["State"]["Running"]:
            running += 1
            lower, upper, work = overlay_options(container["State"]["Pid"])
            assert [host_path(ctd, path) for path in lower] == entry["lower_dirs"]
            assert host_path(ctd, upper) == entry["upper_dir"]
            assert host_path(ctd, work) == entry["work_dir"]
    assert running == 2


def test_the_same_facts_on_every_target_python_and_with_the_daemon_stopped(ctd, collections_path, tmp_path):
    before = facts_of(ctd, collections_path, tmp_path / "up")
    for version, python in target_pythons().items():
        other = facts_of(ctd, collections_path, tmp_path / version, python=python)
        assert (other["images"], other["layers"]) == (before["images"], before["layers"]), version
    ctd.stop()
    try:
        after = facts_of(ctd, collections_path, tmp_path / "down")
    finally:
        ctd.start()
    assert after["images"] == before["images"]
    assert after["layers"] == before["layers"]
    assert [c["id"] for c in after["containers"]] == [c["id"] for c in before["containers"]]


def find_layer_file(facts, image_tag, relative):
    """(layer chain id, path) of the snapshot that holds ``relative`` for the image tagged ``image_tag``."""
    image = next(image for image in facts["images"] if image_tag in image["tags"])
    layers = by_id(facts["layers"], "chain_id")
    for chain_id in reversed(image["chain_ids"]):
        path = os.path.join(layers[chain_id]["diff_dir"], relative)
        if os.path.lexists(path):
            return chain_id, path, image["id"]
    raise AssertionError("%s not in %s" % (relative, image_tag))


def verify(engine, collections_path, tmp_path, **extra):
    return run_module(collections_path, VERIFY, dict({"data_root": engine.data_root, "fail_on_corrupt": False},
                                                     **extra), workdir(tmp_path))


def test_a_clean_store_verifies_without_a_false_positive(ctd, collections_path, tmp_path):
    result = verify(ctd, collections_path, tmp_path)
    assert result["ok"] and result["corrupt"] == [] and result["unverifiable"] == []
    assert result["checked_layers"] >= 10 and result["checked_blobs"] > result["checked_layers"]


@pytest.mark.parametrize("damage", ["edit", "add", "remove"])
def test_tampered_snapshot_files_are_named(ctd, collections_path, tmp_path, damage):
    facts = facts_of(ctd, collections_path, tmp_path / "facts")
    chain_id, path, image_id = find_layer_file(facts, "strata/app-a:1.0", "etc/app/b.txt")
    saved = tmp_path / "saved"
    shutil.copy2(path, saved)
    added = os.path.join(os.path.dirname(path), "planted.txt")
    try:
        if damage == "edit":
            with open(path, "r+b") as handle:
                handle.write(b"X")
            expected = ("file_modified", path)
        elif damage == "add":
            with open(added, "w", encoding="ascii") as handle:
                handle.write("planted\n")
            expected = ("file_added", added)
        else:
            os.unlink(path)
            expected = ("file_missing", path)
        result = verify(ctd, collections_path, tmp_path / "verify")
    finally:
        if os.path.exists(added):
            os.unlink(added)
        shutil.copy2(saved, path)
    assert not result["ok"]
    assert [verdict["chain_id"] for verdict in result["corrupt"]] == [chain_id]
    verdict = result["corrupt"][0]
    assert image_id in verdict["images"]
    assert [(p["kind"], p["path"]) for p in verdict["problems"]] == [expected]


@pytest.mark.parametrize("blob", ["layer", "config"])
def test_a_corrupted_blob_is_a_digest_mismatch(ctd, collections_path, tmp_path, blob):
    facts = facts_of(ctd, collections_path, tmp_path / "facts")
    image = next(image for image in facts["images"] if "strata/app-b:1.0" in image["tags"])
    layers = by_id(facts["layers"], "chain_id")
    digest = layers[image["chain_ids"][-1]]["blob"] if blob == "layer" else image["config_digest"]
    path = os.path.join(facts["containerd"]["root"], "io.containerd.content.v1.content", "blobs", "sha256",
                        digest.split(":")[1])
    with open(path, "rb") as handle:
        original = handle.read()
    try:
        os.chmod(path, 0o644)
        with open(path, "r+b") as handle:
            handle.seek(len(original) // 2)
            handle.write(bytes([original[len(original) // 2] ^ 0xFF]))
        result = verify(ctd, collections_path, tmp_path / "verify")
    finally:
        with open(path, "wb") as handle:
            handle.write(original)
        os.chmod(path, 0o444)
    assert not result["ok"]
    kinds = {(p["kind"], p["path"]) for verdict in result["corrupt"] for p in verdict["problems"]}
    assert ("digest_mismatch", path) in kinds
    assert all(image["id"] in verdict["images"] for verdict in result["corrupt"])
    if blob == "config":
        assert [verdict["chain_id"] for verdict in result["corrupt"]] == [None]


def plant(root, relative, content=b"leftover\n"):
    path = os.path.join(root, relative)
    os.makedirs(path)
    with open(os.path.join(path, "data"), "wb") as handle:
        handle.write(content)
    for name in (os.path.join(path, "data"), path):
        os.utime(name, (OLD, OLD))
    return path


def test_the_prune_removes_planted_leftovers_and_nothing_the_engine_uses(ctd, collections_path, tmp_path):
    root = os.path.join(ctd.data_root, "containerd", "daemon")
    snapshots = os.path.join(root, "io.containerd.snapshotter.v1.overlayfs", "snapshots")
    before = sorted(os.listdir(snapshots))
    planted = [plant(snapshots, "9999"), plant(snapshots, "new-123456"),
               plant(os.path.join(root, "io.containerd.content.v1.content", "ingest"), "ab" * 32)]
    plan = run_module(collections_path, PRUNE, {"data_root": ctd.data_root}, workdir(tmp_path / "plan"), check_mode=True)
    going = sorted(o["path"] for o in plan["orphans"] if o["action"] == "would_remove")
    assert plan["changed"] and going == sorted(planted)
    assert all(o["reason_code"] == "unreferenced" for o in plan["orphans"])
    ctd.stop()
    try:
        result = run_module(collections_path, PRUNE, {"data_root": ctd.data_root}, workdir(tmp_path / "run"))
    finally:
        ctd.start()
    assert result["changed"] and sorted(o["path"] for o in result["orphans"] if o["action"] == "removed") == \
        sorted(planted)
    assert not any(os.path.exists(path) for path in planted)
    assert sorted(os.listdir(snapshots)) == before
    for image in ctd.api("/images/json"):
        ctd.docker("run", "--rm", "--network", "none", image["Id"], "true")
    for container in ctd.inspect(*ctd.container_ids()):  # the created and exited ones start; restart stopped ones
        ctd.docker("start", container["Id"])
        assert ctd.inspect(container["Id"])[0]["State"]["Running"] or \
            ctd.inspect(container["Id"])[0]["State"]["ExitCode"] == 0
    rebuilt = build_with_buildkit(ctd, "strata/app-d:1.0", APP_D)
    assert rebuilt.count("CACHED") >= 2, rebuilt  # both RUN steps come from BuildKit's cache
    again = run_module(collections_path, PRUNE, {"data_root": ctd.data_root}, workdir(tmp_path / "again"),
                       check_mode=True)
    assert not again["changed"] and again["orphans"] == []


def test_what_buildkit_keeps_after_rmi_is_its_own_and_stays(ctd, collections_path, tmp_path):
    """``docker rmi`` of a BuildKit image: its exec snapshots stay in BuildKit's records and leases; they are
    counted as BuildKit's, no file of theirs is an orphan, and the prune removes nothing."""
    from devtools.sandbox import build  # pylint: disable=import-outside-toplevel
    build(ctd, "strata/bk-only:1", "FROM strata/base:1.0\nRUN echo bk > /bk.txt\nRUN echo two > /two.txt\n",
          buildkit=True)
    ctd.docker("rmi", "strata/bk-only:1")
    facts = facts_of(ctd, collections_path, tmp_path)
    orphans = facts["orphans"]
    assert orphans["buildkit_state"] == "read" and orphans["buildkit_dirs"] >= 2 and orphans["buildkit_bytes"] > 0
    assert not [entry for entry in orphans["entries"] if entry["command"] is None]
    result = run_module(collections_path, PRUNE, {"data_root": ctd.data_root, "min_age": "0"},
                        workdir(tmp_path / "prune"), check_mode=True)
    assert not result["changed"] and result["buildkit"]["state"] == "read"
    assert all(o["reason_code"] == "containerd_reclaims" for o in result["orphans"])
    print(json.dumps(orphans["entries"], indent=1))


def test_reading_while_buildkit_builds_never_takes_work_in_progress_for_an_orphan(ctd):
    """BuildKit builds and removes images while the store is read again and again. containerd makes ingest and
    snapshot directories before the commits that record them and commits every few milliseconds; no read
    may report a file orphan that nothing blocks, and the databases are read whole despite the commits."""
    import threading  # pylint: disable=import-outside-toplevel
    from ansible_collections.strata.overlay2.plugins.module_utils._orphans.containerd import (  # pylint: disable=import-outside-toplevel
        classify)
    from ansible_collections.strata.overlay2.plugins.module_utils._store.detect import load_store  # pylint: disable=import-outside-toplevel
    from devtools.sandbox import build  # pylint: disable=import-outside-toplevel
    done, built, errors = threading.Event(), [], []

    def builder():
        try:
            while not done.is_set():
                tag = "strata/busy:%d" % len(built)
                build(ctd, tag, "FROM strata/base:1.0\nRUN echo %d > /n.txt\n" % len(built), buildkit=True)
                ctd.docker("rmi", tag)
                built.append(tag)
        except Exception as exc:  # pylint: disable=broad-except  # reported by the test below
            errors.append(exc)

    thread = threading.Thread(target=builder)
    thread.start()
    reads, free, unreadable = 0, [], []
    try:
        end = time.time() + 20
        while time.time() < end and thread.is_alive():
            store = load_store(ctd.data_root)
            reads += 1
            free += [(o.kind, o.path) for o in classify(store).orphans if o.command is None and not o.blocked_by]
            unreadable += [r.message for r in store.damaged if r.code == "containerd_meta"]
    finally:
        done.set()
        thread.join()
    assert not errors and len(built) >= 3 and reads >= 200, (errors, built, reads)
    assert free == []
    assert len(unreadable) <= reads // 50, unreadable[:3]


@pytest.fixture(scope="module")
def system_ctd():
    """Layout (b): dockerd on a containerd started beside it, whose root is not below the data-root."""
    if os.geteuid() != 0:
        pytest.fail("the engine tests start a dockerd and need root")
    from devtools.fleet import suite_root  # pylint: disable=import-outside-toplevel
    from devtools.sandbox import SAMPLE_IMAGES, build, import_base  # pylint: disable=import-outside-toplevel
    engine = ChrootEngine(suite_root("testing"), containerd_store=True, system_containerd=True)
    with engine:
        import_base(engine)
        dockerfile, files, _buildkit = SAMPLE_IMAGES["strata/app-a:1.0"]
        build(engine, "strata/app-a:1.0", dockerfile, files, buildkit=True)
        engine.docker("run", "-d", "--network", "none", "--name", "sys-run", "strata/app-a:1.0", "sleep", "3600")
        engine.docker("create", "--network", "none", "--name", "sys-created", "strata/base:1.0", "true")
        yield engine


def test_a_system_containerd_is_read_where_it_is_given(system_ctd, collections_path, tmp_path):
    assert not os.path.exists(os.path.join(system_ctd.data_root, "containerd"))
    guessed = run_module(collections_path, FACTS, {"data_root": system_ctd.data_root}, workdir(tmp_path / "auto"))
    assert guessed.get("failed") and "containerd_root" in guessed["msg"]
    facts = facts_of(system_ctd, collections_path, tmp_path / "given", containerd_root=system_ctd.containerd_root)
    assert facts["store"] == "containerd" and facts["containerd"]["layout"] == "given" and facts["warnings"] == []
    listed = {image["Id"]: image for image in system_ctd.api("/images/json?all=1&shared-size=1")}
    assert sorted(by_id(facts["images"])) == sorted(listed)
    for entry in facts["images"]:
        assert (entry["size"], entry["shared_size"]) == (listed[entry["id"]]["Size"], listed[entry["id"]]["SharedSize"])
    assert facts["summary"]["layers_size"] == system_ctd.api("/system/df")["LayersSize"]
    running = next(c for c in facts["containers"] if c["name"] == "sys-run")
    pid = system_ctd.inspect(running["id"])[0]["State"]["Pid"]
    lower, upper, _work = overlay_options(pid)
    assert [host_path(system_ctd, path) for path in lower] == running["lower_dirs"]
    assert host_path(system_ctd, upper) == running["upper_dir"]
    result = verify(system_ctd, collections_path, tmp_path / "verify", containerd_root=system_ctd.containerd_root)
    assert result["ok"] and result["unverifiable"] == [] and result["checked_layers"] >= 2


BIG_IMAGE = """FROM strata/base:1.0
RUN head -c 48000000 /dev/urandom > /big.bin
"""


def snapshot_keys_now(engine):
    from ansible_collections.strata.overlay2.plugins.module_utils._formats.bolt import BoltFile  # pylint: disable=import-outside-toplevel
    directory = os.path.join(engine.containerd_root, "io.containerd.metadata.v1.bolt")
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        with BoltFile.open_at(fd, "meta.db", "meta.db") as db:
            bucket = db.root().bucket(b"v1", b"moby", b"snapshots", b"overlayfs")
            return [key.decode() for key, _value in bucket.items()] if bucket else []
    except Exception:  # pylint: disable=broad-except  # a page being written: try again
        return []
    finally:
        os.close(fd)


def ingest_bytes(engine):
    ingest = os.path.join(engine.containerd_root, "io.containerd.content.v1.content", "ingest")
    total = 0
    for name in os.listdir(ingest) if os.path.isdir(ingest) else []:
        try:
            total += os.path.getsize(os.path.join(ingest, name, "data"))
        except OSError:
            continue
    return total


def crash_during_load(engine, archive, moment):
    """``docker load`` of ``archive``, and SIGKILL of dockerd and its containerd when ``moment()`` holds."""
    import subprocess  # pylint: disable=import-outside-toplevel
    loading = subprocess.Popen(engine.docker_command() + ["load", "-i", engine.inside(archive)], env=engine.env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and loading.poll() is None and not moment():
            time.sleep(0.005)
        assert loading.poll() is None, "the load finished before the moment came"
        engine.crash()
    finally:
        loading.kill()
        loading.wait()


@pytest.mark.parametrize("moment", ["ingest", "unpack"])
def test_a_load_killed_midway_leaves_no_false_orphan_and_nothing_is_pruned_that_containerd_holds(
        ctd, collections_path, tmp_path, moment):
    from devtools.sandbox import build  # pylint: disable=import-outside-toplevel
    from ansible_collections.strata.overlay2.plugins.module_utils._orphans.containerd import classify  # pylint: disable=import-outside-toplevel
    from ansible_collections.strata.overlay2.plugins.module_utils._store.detect import load_store  # pylint: disable=import-outside-toplevel
    tag = "strata/big-%s:1" % moment
    build(ctd, tag, BIG_IMAGE, buildkit=True)
    archive = os.path.join(ctd.base, "big-%s.tar" % moment)
    ctd.docker("save", "-o", ctd.inside(archive), tag)
    ctd.docker("rmi", tag)
    ctd.docker("builder", "prune", "-af")
    if moment == "ingest":
        crash_during_load(ctd, archive, lambda: ingest_bytes(ctd) > 4 << 20)
    else:
        crash_during_load(ctd, archive, lambda: any(k.startswith("extract-") for k in snapshot_keys_now(ctd)))
    try:
        facts = facts_of(ctd, collections_path, tmp_path / "down")
        # what the load wrote is held by its leases, which have not expired; a complete ``docker load`` leaves the
        # archive's own index blob without references until containerd's next collection: a record, left to it
        assert {entry["kind"] for entry in facts["orphans"]["entries"]} <= {"unreferenced_blob"}
        assert all(entry["command"] and entry["bytes"] < 4096 for entry in facts["orphans"]["entries"])
        planned = run_module(collections_path, PRUNE, {"data_root": ctd.data_root, "min_age": "0"},
                             workdir(tmp_path / "prune"), check_mode=True)
        assert not planned["changed"]
        store = load_store(ctd.data_root)
        later = classify(store, now=time.time() + 2 * 86400).facts()  # once the leases (24 h) have expired
        kinds = {entry["kind"] for entry in later["entries"]}
        if moment == "unpack":
            assert "unpack_leftover" in kinds
        assert all(entry["command"] for entry in later["entries"])  # records only: left to containerd
    finally:
        ctd.start()
    ctd.docker("load", "-i", ctd.inside(archive))
    ctd.docker("run", "--rm", "--network", "none", tag, "true")
    facts = facts_of(ctd, collections_path, tmp_path / "up")
    listed = {image["Id"]: image for image in ctd.api("/images/json?all=1&shared-size=1")}
    assert {image["id"]: image["size"] for image in facts["images"]} == {i: listed[i]["Size"] for i in listed}
    assert facts["summary"]["layers_size"] == ctd.api("/system/df")["LayersSize"]


def test_the_cis_benchmark_reads_this_store_as_the_engine_exports_it(ctd, collections_path, tmp_path):
    """4.8 on the containerd image store comes from the snapshot directories: it equals ``docker export``."""
    from devtools.sandbox import build  # pylint: disable=import-outside-toplevel
    from tests.engine.test_cis_engine import BAD_DOCKERFILE, exported_special_files  # pylint: disable=import-outside-toplevel
    build(ctd, "strata/cis-bad:1", BAD_DOCKERFILE)
    ctd.docker("create", "--name", "cis-priv", "--privileged", "strata/cis-bad:1", "true")
    try:
        result = run_module(collections_path, "strata.overlay2.cis_benchmark",
                            {"data_root": ctd.data_root, "profile": ["4.8", "4.10", "5.5"]}, workdir(tmp_path))
        assert not result.get("failed"), result.get("msg")
        controls = {control["id"]: control for control in result["controls"]}
        special = {e["detail"].split(":")[0]: e for e in controls["4.8"]["evidence"] if e["target"] == "strata/cis-bad:1"}
        assert sorted(special) == sorted(exported_special_files(ctd, "cis-priv")) == ["/bin/sgid-tool", "/bin/suid-tool"]
        assert {e["code"] for e in controls["4.10"]["evidence"] if e["target"] == "strata/cis-bad:1"} >= \
            {"secret_in_env", "secret_file"}
        assert [e["code"] for e in controls["5.5"]["evidence"] if e["target"] == "cis-priv"] == ["privileged"]
        assert result["problems"] == []
    finally:
        ctd.docker("rm", "-f", "cis-priv")
        ctd.docker("rmi", "strata/cis-bad:1")
