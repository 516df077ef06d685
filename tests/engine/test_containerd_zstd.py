"""zstd layers: verified where the managed node's standard library reads zstd (Python 3.14, Debian testing's
python3, run in its debootstrap'd root), reported as not verifiable where it does not (this controller's Python),
never as corrupt and never as verified there.

The store is a synthetic containerd image store (tests/support/ctdstore.py, the engine's shape) whose top layer is
compressed with Python 3.14's ``compression.zstd``, as ``docker buildx --output compression=zstd`` writes one.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile

import pytest

from ansible_collections.strata.overlay2.plugins.module_utils._verify.containerd import verify
from ansible_collections.strata.overlay2.plugins.module_utils._store.detect import load_store
from tests.support.ctdstore import SNAPSHOTTER, SynthStore

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VERIFY = """
import json, sys
sys.path.insert(0, sys.argv[1])
from ansible_collections.strata.overlay2.plugins.module_utils._verify.containerd import verify
from ansible_collections.strata.overlay2.plugins.module_utils._store.detect import load_store
print(json.dumps(verify(load_store(sys.argv[2])).as_dict()))
"""
ZSTD = "import sys; from compression import zstd; sys.stdout.buffer.write(zstd.compress(sys.stdin.buffer.read()))"


@pytest.fixture(scope="module")
def testing_root():
    if os.geteuid() != 0:
        pytest.fail("chroot needs root")
    from devtools.fleet import suite_root  # pylint: disable=import-outside-toplevel
    return suite_root("testing")


@pytest.fixture
def zstd_store(testing_root):
    """(host path, path inside the chroot, the zstd layer's chain id) of a store below the chroot's /tmp."""
    work = tempfile.mkdtemp(prefix="strata-zstd-", dir=os.path.join(testing_root, "tmp"))
    try:
        library = os.path.join(work, "lib", "ansible_collections", "strata", "overlay2")
        shutil.copytree(os.path.join(REPO, "plugins"), os.path.join(library, "plugins"))
        for name in ("ansible_collections", os.path.join("ansible_collections", "strata")):
            open(os.path.join(work, "lib", name, "__init__.py"), "a").close()

        def compress(raw):
            return subprocess.run(["chroot", testing_root, "python3", "-c", ZSTD], input=raw, check=True,
                                  capture_output=True).stdout
        store = SynthStore(os.path.join(work, "docker"))
        base = store.image("docker.io/library/base:1", [{"bin": None, "bin/sh": b"#!sh\n" * 50}])
        top = store.image("docker.io/library/app:1", [{"etc": None, "etc/z.conf": b"zstd=1\n", "bin": None,
                                                       "bin/.wh.sh": None}], parent=base, compress=compress)
        store.write()
        inside = "/" + os.path.relpath(work, testing_root)
        yield work, inside, top.chain_ids[-1]
    finally:
        shutil.rmtree(work, ignore_errors=True)


def verify_with_python_314(testing_root, inside):
    result = subprocess.run(["chroot", testing_root, "python3", "-c", VERIFY, inside + "/lib", inside + "/docker"],
                            check=True, capture_output=True, text=True)
    return json.loads(result.stdout)


def test_python_314_verifies_a_zstd_layer_and_names_a_change_in_it(testing_root, zstd_store):
    work, inside, chain = zstd_store
    clean = verify_with_python_314(testing_root, inside)
    assert clean["ok"] and clean["unverifiable"] == [] and clean["checked_layers"] == 2
    store = load_store(os.path.join(work, "docker"))
    path = os.path.join(store.parts.root, SNAPSHOTTER, "snapshots", store.parts.snapshots[chain].id, "fs",
                        "etc", "z.conf")
    with open(path, "r+b") as handle:
        handle.write(b"Z")
    changed = verify_with_python_314(testing_root, inside)
    assert [verdict["chain_id"] for verdict in changed["corrupt"]] == [chain]
    assert [(p["kind"], p["path"]) for p in changed["corrupt"][0]["problems"]] == [
        ("file_modified", inside + path[len(work):])]


@pytest.mark.skipif(sys.version_info >= (3, 14), reason="this Python reads zstd")
def test_a_python_without_zstd_reports_the_layer_not_verifiable(zstd_store):
    work, _inside, chain = zstd_store
    report = verify(load_store(os.path.join(work, "docker"))).as_dict()
    assert report["ok"] and report["corrupt"] == [] and report["checked_layers"] == 1
    assert report["unverifiable"] == [{"chain_id": chain, "code": "compression_unsupported",
                                       "reason": report["unverifiable"][0]["reason"]}]
    assert "zstd" in report["unverifiable"][0]["reason"]
