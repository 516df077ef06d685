"""The synthetic stores the unit tests and benchmarks use are proven against the engine itself.

A dockerd started on a generated data-root must list the images, restore the containers, ``docker save``
every image (so every DiffID and tar-split is exact), run them, and agree with our facts.
"""

from __future__ import annotations

import os

import pytest

from ansible_collections.strata.overlay2.plugins.module_utils._facts.gather import gather
from ansible_collections.strata.overlay2.plugins.module_utils._store.overlay2 import Overlay2Store
from devtools.sandbox import Engine
from tests.support.synthstore import SyntheticStore, directory, file, generate, hardlink, opaque, symlink, whiteout


def crafted_store(root: str) -> dict:
    """A busybox base and a layer with every awkward member kind, as unit tests use them."""
    synth = SyntheticStore(root, seed="fidelity")
    with open("/bin/busybox", "rb") as handle:
        busybox = handle.read()
    base = synth.add_layer([directory("bin"), file("bin/busybox", busybox, 0o755)]
                           + [symlink("bin/" + applet, "busybox") for applet in ("sh", "cat", "ls", "true")]
                           + [directory("etc"), file("etc/os-release", "NAME=synthetic\n"), directory("tmp"),
                              file("tmp/old", "old")])
    app = synth.add_layer([directory("etc"), whiteout("etc/os-release"), file("etc/app.conf", "x=1\n"),
                           opaque("tmp"), file("tmp/new", "n"), file("bin/tool", "echo tool\n", 0o755),
                           hardlink("bin/tool2", "bin/tool"), file("caf\udce9", "not utf-8"),
                           file("deep/" + "/".join(["long-directory-name-%02d" % i for i in range(8)]) + "/x", "x")],
                          parent=base)
    images = {"base": synth.add_image([base], ["synth/base:1"]), "app": synth.add_image([base, app], ["synth/app:1"])}
    container = synth.add_container(images["app"], app, "synth-stopped")
    return {"images": images, "container": container["id"]}


@pytest.fixture
def engine_on(tmp_path):
    engines = []

    def start(build) -> Engine:
        engine = Engine()
        os.makedirs(engine.data_root)
        engine.made = build(engine.data_root)
        engines.append(engine)
        return engine.start()

    yield start
    for engine in engines:
        engine.docker("ps", "-q", check=False)
        engine.destroy()


def test_a_crafted_synthetic_store_is_the_engines_own(engine_on):
    engine = engine_on(crafted_store)
    assert sorted(engine.image_ids()) == sorted(engine.made["images"].values())
    for image_id in engine.image_ids():
        result = engine.run_docker("save", image_id)
        assert result.returncode == 0, result.stderr
    run = ["run", "--rm", "--network", "none", "synth/app:1"]
    assert engine.docker(*run, "cat", "/etc/app.conf") == "x=1\n"
    assert engine.docker(*run, "ls", "/tmp").split() == ["new"]  # the opaque directory hides the lower /tmp
    assert engine.run_docker(*run, "cat", "/etc/os-release").returncode != 0  # the whiteout hides it
    assert engine.container_ids() == [engine.made["container"]]
    engine.docker("start", "-a", engine.made["container"])


def test_a_generated_store_with_leftovers_is_the_engines_own(engine_on):
    engine = engine_on(lambda root: generate(root, 150, seed="fidelity"))
    facts = gather(Overlay2Store.load(engine.data_root))
    inspected = {image["Id"]: image for image in engine.inspect(*engine.image_ids())}
    assert len(inspected) == engine.made["images"] == len(facts["images"])
    for image in facts["images"]:
        theirs = inspected[image["id"]]
        assert theirs["RootFS"]["Layers"] == image["diff_ids"]
        assert theirs["GraphDriver"]["Data"]["UpperDir"] == image["upper_dir"]
        assert theirs["GraphDriver"]["Data"].get("LowerDir", "") == ":".join(image["lower_dirs"])
    assert len(engine.container_ids()) == engine.made["containers"]
    assert engine.api("/system/df")["LayersSize"] == facts["summary"]["layers_size"]
    result = engine.run_docker("save", *sorted(inspected))
    assert result.returncode == 0, result.stderr
    assert facts["summary"]["orphan_bytes"] > 0
