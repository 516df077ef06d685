"""The one store interface: each store's reader fills its own model, the registry gives that model's backend,
and the backends answer the same questions the same way; nothing outside a store's own files knows its kind
or builds its paths."""

from __future__ import annotations

import ast
import inspect
import json
import os
import subprocess
import sys

import pytest

from ansible_collections.strata.overlay2.plugins.module_utils._backends.base import StoreBackend
from ansible_collections.strata.overlay2.plugins.module_utils._backends.containerd import ContainerdBackend
from ansible_collections.strata.overlay2.plugins.module_utils._backends.overlay2 import Overlay2Backend
from ansible_collections.strata.overlay2.plugins.module_utils._backends.registry import (
    KINDS,
    backend_class,
    backend_for,
    backends,
    orphan_kinds,
)
from ansible_collections.strata.overlay2.plugins.module_utils._store.detect import load_store

from tests.support.ctdstore import generate as generate_containerd

PLUGINS = os.path.join(os.path.dirname(os.path.abspath(inspect.getfile(StoreBackend))), "..", "..")
MODULE_UTILS = os.path.join(PLUGINS, "module_utils")
# the files that belong to one store: its model and reader, and its side of each feature
STORE_FILES = {"_store/overlay2.py", "_store/containerd.py", "_store/detect.py", "_backends/overlay2.py",
               "_backends/containerd.py", "_backends/registry.py", "_facts/overlay2.py", "_facts/containerd.py",
               "_verify/overlay2.py", "_verify/containerd.py", "_orphans/overlay2.py", "_orphans/containerd.py",
               "_usage/overlay2.py", "_usage/containerd.py", "_cis/overlay2.py", "_cis/containerd.py"}


@pytest.fixture(params=["overlay2", "containerd"])
def backend(request, tmp_path, sample):
    if request.param == "overlay2":
        return backend_for(load_store(sample.root))
    root = os.path.join(str(tmp_path), "ctd")
    generate_containerd(root, 60, seed="backends")
    return backend_for(load_store(root))


def test_the_registry_gives_each_model_its_backend(backend):
    expected = Overlay2Backend if backend.kind == "overlay2" else ContainerdBackend
    assert backend.__class__ is expected and isinstance(backend.store, expected.model)
    assert backend.facts(container_sizes=False, orphans=True)["store"] == backend.kind


def test_facts_without_the_layer_list_differ_from_the_whole_facts_only_there(backend, leftovers):
    """What ``gather_subset: [summary]`` asks for: the layer list is not shaped, and nothing else changes (the
    summary, the other lists and every warning are what the whole facts give)."""
    if backend.kind == "overlay2":
        leftovers.every_kind()
        backend = backend_for(load_store(leftovers.sample.root))
    whole = backend.facts(container_sizes=False, orphans=True)
    again = backend_for(load_store(backend.store.data_root))  # a fresh read: the shaping adds to a store's findings
    without = again.facts(container_sizes=False, orphans=True, layer_list=False)
    assert whole["layers"] and without["layers"] is None
    assert {key: value for key, value in without.items() if key != "layers"} == \
        {key: value for key, value in whole.items() if key != "layers"}
    assert whole["summary"]["layers"] == len(whole["layers"]) and whole["orphans"] is not None


def test_every_backend_implements_the_whole_interface_and_the_orphan_kinds_do_not_overlap():
    assert [implementation.kind for implementation in backends()] == list(KINDS)
    for implementation in backends():
        assert not getattr(implementation, "__abstractmethods__", None), implementation
        assert implementation.model.kind == implementation.kind
    every_kind = orphan_kinds()
    assert len(set(every_kind)) == len(every_kind) == sum(len(b.orphan_kinds) for b in backends())


def test_an_unknown_kind_has_no_backend():
    with pytest.raises(ValueError, match="no store backend of kind 'btrfs'"):
        backend_class("btrfs")


def test_every_layer_has_its_files_where_its_backend_says(backend):
    files = backend.layer_files()
    for layer in backend.store.layers.values():
        directory = files.directory(layer)
        assert directory is not None and os.path.isdir(directory), layer.chain_id
        headers, problem = files.headers(layer)
        assert problem is None and headers, layer.chain_id


def test_every_image_config_names_the_image_s_layers(backend):
    for image in backend.store.images.values():
        config, problem = backend.image_config(image)
        assert problem is None and config["rootfs"]["diff_ids"] == image.diff_ids


def test_orphan_parts_are_relative_to_the_backend_s_prune_root(backend, leftovers):
    if backend.kind == "overlay2":  # the sample is the overlay2 store
        leftovers.directory()
        backend = backend_for(load_store(leftovers.sample.root))
    else:  # a snapshot directory the snapshotter never recorded (a crash between mkdir and commit)
        stray = os.path.join(backend.store.parts.snapshots_root, "new-123")
        os.makedirs(os.path.join(stray, "fs"))
        for path in (os.path.join(stray, "fs"), stray):
            os.utime(path, (1000, 1000))
        backend = backend_for(load_store(backend.store.data_root))
    orphans = backend.classify().orphans
    assert orphans
    for orphan in orphans:
        assert all(os.path.lexists(os.path.join(backend.prune_root, part)) for part in orphan.parts)
        assert orphan.path == os.path.join(backend.prune_root, orphan.parts[-1])


def module_files():
    for directory in (MODULE_UTILS, os.path.join(PLUGINS, "modules")):
        for folder, _dirs, names in os.walk(directory):
            for name in names:
                if name.endswith(".py"):
                    path = os.path.join(folder, name)
                    yield os.path.relpath(path, MODULE_UTILS).replace(os.sep, "/"), path


def test_shared_code_and_modules_never_import_a_store_of_one_kind():
    for relative, path in module_files():
        if relative in STORE_FILES:
            continue
        with open(path, encoding="utf-8") as handle:
            tree = ast.parse(handle.read())
        imported = [node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module]
        of_one_kind = [name for name in imported if name.endswith(("_store.overlay2", "_store.containerd",
                                                                   "_backends.overlay2", "_backends.containerd"))]
        assert not of_one_kind, (relative, of_one_kind)


def test_only_a_store_s_own_files_build_its_paths():
    for relative, path in module_files():
        with open(path, encoding="utf-8") as handle:
            code = "".join(line for line in handle if not line.lstrip().startswith(("#", "-", "description")))
        if relative != "_store/overlay2.py":
            assert "image/overlay2" not in code and '"image", "overlay2"' not in code, relative
        if relative != "_store/containerd.py":
            assert "io.containerd." not in code, relative


# what a facts run needs to read a store and shape its facts, and what only other features do
FEATURES_ASKED_FOR = ("_verify.", "_cis.", "_orphans.prune", "_orphans.quarantine", "_orphans.removal", "_usage.",
                      "_formats.tarsplit")
# the code of one store kind: a facts run of the other kind imports none of it (but for the usage walk, which
# asks every kind where its store lies)
OF_KIND = {kind: tuple("%s.%s" % (part, kind) for part in ("_store", "_backends", "_facts", "_orphans", "_usage"))
           for kind in KINDS}


@pytest.mark.parametrize("usage", [False, True])
def test_a_facts_run_imports_no_feature_it_does_not_use(backend, usage):
    """Ansible compiles a module's code at every run: the facts of a store compile neither the verifier, the CIS
    checks nor the prune, and the usage walk only when asked for (each backend imports them in the method); nor
    the other store kind's code (the registry imports a backend when its kind is picked)."""
    script = (
        "import json, sys\n"
        "import ansible_collections.strata.overlay2.plugins.modules.overlay2_facts\n"
        "from ansible_collections.strata.overlay2.plugins.module_utils._facts.gather import gather\n"
        "from ansible_collections.strata.overlay2.plugins.module_utils._store.detect import load_store\n"
        "facts = gather(load_store(sys.argv[1]), orphans=True, usage=sys.argv[2] == 'usage')\n"
        "print(json.dumps([facts['store'], sorted(m.split('module_utils.')[-1] for m in sys.modules\n"
        "                                          if m.startswith('ansible_collections.strata.overlay2.plugins.module_utils._'))]))\n"
    )
    run = subprocess.run([sys.executable, "-c", script, backend.store.data_root, "usage" if usage else "-"],
                         env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)), capture_output=True, text=True,
                         check=True)
    kind, modules = json.loads(run.stdout)
    assert kind == backend.kind
    unused = [name for name in modules if name.startswith(FEATURES_ASKED_FOR)
              and not (usage and name.startswith("_usage."))]
    assert unused == []
    assert any(name.startswith("_usage.") for name in modules) == usage
    other_kind = [name for name in modules if name.startswith(tuple(
        prefix for kind, prefixes in OF_KIND.items() if kind != backend.kind for prefix in prefixes))]
    assert bool(other_kind) == usage, other_kind
    assert all(name in modules for name in OF_KIND[backend.kind][:4])  # its own store, backend, facts, orphans
