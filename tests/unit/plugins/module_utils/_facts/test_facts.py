"""Facts on synthetic stores: joins, ordering of directories and the engine's disk-usage arithmetic."""

from __future__ import annotations

import os

from ansible_collections.strata.overlay2.plugins.module_utils._facts.gather import gather
from ansible_collections.strata.overlay2.plugins.module_utils._store.overlay2 import Overlay2Store

from tests.support.synthstore import SyntheticStore, file


def facts_of(root, **options):
    return gather(Overlay2Store.load(root), **options)


def by_id(items, key="id"):
    return {item[key]: item for item in items}


def diff(sample, layer):
    return sample.synth.overlay(layer.cache_id, "diff")


def test_an_images_directories_are_its_top_layer_and_the_rest_topmost_first(sample):
    images = by_id(facts_of(sample.root)["images"])
    app = images[sample.images["app"]]
    middle = sample.app.parent
    assert app["upper_dir"] == diff(sample, sample.app)
    assert app["lower_dirs"] == [diff(sample, middle), diff(sample, sample.base)]
    assert app["chain_ids"][-1] == app["top_chain_id"] == sample.app.chain_id
    assert images[sample.images["base"]]["lower_dirs"] == []


def test_a_containers_lower_dirs_start_with_its_init_layer(sample):
    web = by_id(facts_of(sample.root)["containers"])[sample.containers["web"]["id"]]
    mount = sample.containers["web"]["mount_id"]
    assert web["upper_dir"] == sample.synth.overlay(mount, "diff")
    assert web["work_dir"] == sample.synth.overlay(mount, "work")
    assert web["merged_dir"] == sample.synth.overlay(mount, "merged")
    assert web["lower_dirs"] == [sample.synth.overlay(mount + "-init", "diff")] + [
        diff(sample, layer) for layer in sample.app.chain()]
    assert (web["name"], web["running"], web["image_id"]) == ("web", True, sample.images["app"])
    assert "rw_size" not in web


def test_rw_size_is_walked_only_when_asked(sample):
    web = by_id(facts_of(sample.root, container_sizes=True)["containers"])[sample.containers["web"]["id"]]
    assert web["rw_size"] == 300


def test_a_layer_used_by_three_images_is_shared_and_counted_once(sample):
    facts = facts_of(sample.root)
    layers = by_id(facts["layers"], "chain_id")
    base = layers[sample.base.chain_id]
    assert base["shared"] is True
    assert base["images"] == sorted(sample.images.values())
    assert layers[sample.tool.chain_id]["shared"] is False
    assert base["containers"] == sorted(c["id"] for c in sample.containers.values())
    assert base["diff_dir"] == diff(sample, sample.base) and base["link"] == sample.base.link
    all_sizes = sum(layer.size for layer in sample.synth.layers.values())
    assert facts["summary"]["layers_size"] == all_sizes
    assert facts["summary"]["shared_size"] == sample.base.size


def test_image_sizes_follow_the_engines_disk_usage(sample):
    facts = facts_of(sample.root)
    app = by_id(facts["images"])[sample.images["app"]]
    own = sample.app.size + sample.app.parent.size
    assert (app["size"], app["shared_size"], app["unique_size"]) == (own + sample.base.size, sample.base.size, own)
    # reclaimable = layers_size - unique bytes of images that have containers (app and base; tool has none)
    assert facts["summary"]["reclaimable_size"] == facts["summary"]["layers_size"] - own
    assert facts["summary"]["images"] == 3 and facts["summary"]["containers"] == 2


def test_intermediate_images_are_listed_but_not_counted(tmp_path):
    synth = SyntheticStore(os.path.join(str(tmp_path), "d"))
    bottom = synth.add_layer([file("a", "a" * 10)])
    top = synth.add_layer([file("b", "b" * 20)], parent=bottom)
    step = synth.add_image([bottom])  # a classic-builder step: untagged, with a child
    final = synth.add_image([bottom, top], ["built:1"], parent_image=step)
    dangling = synth.add_image([synth.add_layer([file("c", "c" * 40)])])  # untagged, no child
    facts = facts_of(synth.root)
    images = by_id(facts["images"])
    assert images[step]["intermediate"] is True and images[final]["parent"] == step
    assert images[dangling]["intermediate"] is False
    assert facts["summary"]["images"] == 2
    # the step does not make the bottom layer shared, as the engine does not count it
    assert images[final]["shared_size"] == 0
    assert facts["summary"]["layers_size"] == 70


def test_an_image_whose_layer_is_missing_keeps_its_entry_with_unknown_sizes(sample):
    os.rename(sample.synth.layerdb(sample.tool.chain_id), sample.synth.layerdb(sample.tool.chain_id) + ".moved")
    facts = facts_of(sample.root)
    tool = by_id(facts["images"])[sample.images["tool"]]
    assert (tool["size"], tool["upper_dir"]) == (None, None)
    assert any("names a layer that is not in the layer database" in w["message"] for w in facts["warnings"])
    assert len(facts["images"]) == 3


def test_a_cache_id_without_directory_is_a_warning(sample):
    os.rename(sample.synth.overlay(sample.tool.cache_id), sample.synth.overlay(sample.tool.cache_id) + "x")
    facts = facts_of(sample.root)
    assert [(w["path"], w["message"]) for w in facts["warnings"] if w["kind"] == "missing"] == [
        (sample.synth.layerdb(sample.tool.chain_id),
         "names overlay2/%s, which does not exist" % sample.tool.cache_id)]


def test_facts_are_plain_data(sample):
    import json
    facts = facts_of(sample.root, container_sizes=True)
    assert json.loads(json.dumps(facts)) == facts


def test_orphans_are_classified_unless_turned_off(sample):
    sample.synth.make_overlay_dir(sample.synth.next_hex(), None)
    facts = facts_of(sample.root)
    assert facts["orphans"]["by_kind"]["unreferenced_dir"] == 1 and facts["summary"]["orphan_bytes"] > 0
    without = facts_of(sample.root, orphans=False)
    assert without["orphans"] is None and without["summary"]["orphan_bytes"] is None
    assert without["images"] == facts["images"]
