#!/usr/bin/python
# Copyright (c) strata.overlay2 contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: layer_verify
short_description: Verify that every Docker layer on disk is byte-for-byte what its image says
version_added: 0.1.0
description:
  - Checks the metadata of a Docker data-root in overlay2 graph-driver mode (image configs against their ids,
    layer records against their chainIDs, cache-ids, links and lower files, tags and container mounts).
  - With O(content=true), rebuilds each layer's tar stream from its C(tar-split.json.gz) and the files of its
    diff directory, as C(docker save) does, and compares its sha256 with the layer's DiffID. On a mismatch the
    changed files are named. Files added to a diff directory, which the stream digest cannot see, are found by
    comparing the directory with the tar-split.
  - On the containerd image store (see O(store)), there is no tar-split. Every content blob an image reaches
    (index, manifests, config, layers) must hash to its digest; each layer blob, decompressed, must hash to
    the DiffID; and each tar member is compared with the layer's own snapshot directory (type, mode, owner,
    size, content, link target, hard links, whiteouts and opaque directories in their on-disk form); files in
    the snapshot the layer does not name are V(file_added). A layer that cannot be checked is listed in
    RV(unverifiable), never as corrupt and never as verified.
  - A layer shared by several images is verified once. Independent layers are verified in parallel.
  - Read-only; the Docker daemon may be running or stopped.
author:
  - strata.overlay2 maintainers (@strata-overlay2)
extends_documentation_fragment:
  - strata.overlay2.data_root
  - strata.overlay2.attributes.actiongroup_storage
  - strata.overlay2.attributes.read_only
options:
  images:
    description:
      - Images to verify, by id (C(sha256:...) or 64 hex), unique short id, C(repo:tag), C(repo) (meaning
        C(repo:latest)) or C(repo@sha256:...).
      - When neither O(images) nor O(layers) is given, every layer of the layer database and every image is verified.
    type: list
    elements: str
  layers:
    description:
      - ChainIDs of layers to verify, in addition to the layers of O(images).
    type: list
    elements: str
  content:
    description:
      - Verify the content of every layer against its DiffID. With V(false), only the metadata is checked.
    type: bool
    default: true
  fail_on_corrupt:
    description:
      - Fail the task when a problem is found. The full result is returned either way.
    type: bool
    default: true
  workers:
    description:
      - Processes that verify layers at the same time, each taking a share of the layers balanced by their bytes
        and entries (parsing a layer's entries holds the Python interpreter, so threads would not use a second
        CPU). Defaults to the CPUs the module may run on, at most 4. V(1) verifies in the module's own process.
    type: int
seealso:
  - module: strata.overlay2.overlay2_facts
"""

EXAMPLES = r"""
- name: Verify every layer on the host
  strata.overlay2.layer_verify:

- name: Verify two images, metadata only, and report instead of failing
  strata.overlay2.layer_verify:
    images:
      - nginx:1.27
      - sha256:5dacd731af1b
    content: false
    fail_on_corrupt: false
  register: verdict

- name: Show the changed files
  ansible.builtin.debug:
    msg: "{{ item.images }}: {{ item.problems | map(attribute='path') | list }}"
  loop: "{{ verdict.corrupt }}"
  loop_control:
    label: "{{ item.chain_id }}"
"""

RETURN = r"""
checked_layers:
  description: Layers verified.
  type: int
  returned: always
checked_images:
  description: Images all of whose layers were verified.
  type: int
  returned: always
bytes_verified:
  description: Bytes of file content read and hashed.
  type: int
  returned: always
seconds:
  description: Time taken.
  type: float
  returned: always
ok:
  description: Whether nothing was found.
  type: bool
  returned: always
corrupt:
  description:
    - One entry per layer with problems; entries about an image record, a tag or a container mount have a null
      RV(corrupt[].diff_id).
  type: list
  elements: dict
  returned: always
  contains:
    chain_id:
      description: The layer's chainID (for a container mount, the top of its image chain; null for an image or tag record).
      type: str
    diff_id:
      description: The DiffID the layer records.
      type: str
    cache_id:
      description: The layer's overlay2 directory.
      type: str
    images:
      description: Ids of the images that use the layer or that the problem concerns.
      type: list
      elements: str
    containers:
      description: Ids of the containers whose root file system includes the layer or that the problem concerns.
      type: list
      elements: str
    problems:
      description: What was found.
      type: list
      elements: dict
      contains:
        kind:
          description:
            - V(digest_mismatch) (the rebuilt stream does not hash to the DiffID), V(file_modified),
              V(file_missing), V(file_added) or V(metadata).
          type: str
        path:
          description: The file concerned.
          type: str
        detail:
          description: What differs.
          type: str
unverifiable:
  description:
    - Containerd image store only. Layers that could not be checked, with C(chain_id), a C(code) and a
      C(reason). Codes - V(compression_unsupported) (zstd or another compression the managed node's Python
      standard library cannot read), V(blob_missing) (the engine dropped the compressed layer, so its snapshot
      can be checked by metadata only), V(not_unpacked) (the layer has no snapshot).
  type: list
  elements: dict
  returned: when the store is a containerd image store
checked_blobs:
  description: Containerd image store only. Content blobs whose sha256 was checked against their digest.
  type: int
  returned: when the store is a containerd image store
store_warnings:
  description:
    - Entries of the store that could not be read at all, with C(kind), C(path) and C(message), as
      C(ansible_facts.overlay2.warnings) of M(strata.overlay2.overlay2_facts) lists them.
  type: list
  elements: dict
  returned: always
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.strata.overlay2.plugins.module_utils._backends.open import STORE_OPTIONS, open_store
from ansible_collections.strata.overlay2.plugins.module_utils._store.model import Store
from ansible_collections.strata.overlay2.plugins.module_utils._verify.report import SelectionError


def describe(report_dict: dict, store: Store) -> str:
    """One line naming the first corrupt layers, their images and first problems."""
    parts = []
    for verdict in report_dict["corrupt"][:3]:
        names = []
        for image_id in verdict["images"][:2]:
            image = store.images.get(image_id)
            names.append(image.tags[0] if image is not None and image.tags else image_id[:19])
        subject = verdict["chain_id"] or "record"
        problems = "; ".join("%s %s" % (p["kind"], p["path"]) for p in verdict["problems"][:3])
        parts.append("%s (image %s): %s" % (subject, ", ".join(names) or "none", problems))
    return "%d corrupt: %s" % (len(report_dict["corrupt"]), " | ".join(parts))


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            **STORE_OPTIONS,
            "images": {"type": "list", "elements": "str"},
            "layers": {"type": "list", "elements": "str"},
            "content": {"type": "bool", "default": True},
            "fail_on_corrupt": {"type": "bool", "default": True},
            "workers": {"type": "int"},
        },
        supports_check_mode=True,
    )
    params = module.params
    if params["workers"] is not None and params["workers"] < 1:
        module.fail_json(msg="workers must be at least 1, got %d" % params["workers"])
    backend, _location = open_store(module)
    store = backend.store
    try:
        report = backend.verify(params["images"], params["layers"], params["content"], params["workers"])
    except (SelectionError, OSError) as exc:
        module.fail_json(msg=str(exc))
    result = report.as_dict()
    result["store_warnings"] = [finding.as_dict() for finding in store.findings]
    result["changed"] = False
    if not report.ok and params["fail_on_corrupt"]:
        module.fail_json(msg=describe(result, store), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
