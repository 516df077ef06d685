#!/usr/bin/python
# Copyright (c) strata.overlay2 contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: overlay2_facts
short_description: Map Docker images to their layers, directories and containers (overlay2 or containerd store)
version_added: 0.1.0
description:
  - Reads a Docker data-root in overlay2 graph-driver mode straight from disk and returns the map from
    every image to its layers (DiffID, chainID, cache-id, directory), from every layer to the images and
    containers that use it, and from every container to its upper, lower, work and merged directories.
  - Sizes and sharing follow the engine's own disk-usage API (C(docker system df)), so that the numbers
    can be compared with it; the facts are also available while the daemon is stopped.
  - On the containerd image store (Docker Engine 29's default, see O(store)) the same keys come back, read from
    containerd's metadata, its overlayfs snapshotter and its content store. Images are then identified by the
    engine's image id (the target digest, an index or a manifest); layers are snapshots
    (C(snapshots/<id>/fs)); image sizes equal C(/images/json) and C(summary.layers_size) equals the engine's
    C(LayersSize), which adds the compressed layers the content store keeps to the unpacked snapshots (both
    given alone too). The engine's own inspect shows no directories in this mode.
  - Entries that cannot be read or do not fit the format are listed in RV(ansible_facts.overlay2.warnings);
    one bad entry never hides the rest.
author:
  - strata.overlay2 maintainers (@strata-overlay2)
extends_documentation_fragment:
  - strata.overlay2.data_root
  - strata.overlay2.attributes.actiongroup_storage
  - strata.overlay2.attributes.read_only
options:
  gather_subset:
    description:
      - The parts of the facts to gather and return, read as C(ansible.builtin.setup) reads its C(gather_subset),
        among V(summary), V(images), V(layers), V(containers), V(orphans), V(daemons)
        (RV(ansible_facts.overlay2.daemon) and RV(ansible_facts.overlay2.daemons)) and V(usage), or V(all). An
        entry starting with V(!) leaves a part out (V(!usage)); a list of such entries alone starts from V(all).
      - C(data_root), C(driver), C(store), C(containerd) and C(warnings) are always returned.
      - V(usage) walks the whole data-root once (about what C(du -sx) costs); V(orphans), V(summary) (its
        C(orphan_bytes) and RV(ansible_facts.overlay2.orphan_totals)) and V(usage) classify the orphans.
      - V(summary) alone returns a few KB whatever the store's size, for a fact cache or AWX's fact storage over
        a large fleet. Its figures and its warnings count are those of V(all), so every record of the store is
        still read; without V(layers), the list of layers is not built.
    type: list
    elements: str
    default: [all]
  container_sizes:
    description:
      - Walk every container's upper directory to compute RV(ansible_facts.overlay2.containers[].rw_size),
        as C(docker ps --size) does. This reads every directory entry of every container and can be slow.
    type: bool
    default: false
  container_drift:
    description:
      - List what each container changed in its writable layer below O(drift_paths)
        (RV(ansible_facts.overlay2.containers[].drift)), the offline equivalent of C(docker diff) there. Reads
        every container's writable layer below those directories.
    type: bool
    default: false
  drift_paths:
    description: The directories whose changes count as drift (the image's executables, libraries and configuration).
    type: list
    elements: str
    default: [/bin, /sbin, /usr, /lib, /lib32, /lib64, /libx32, /etc]
  orphans:
    description:
      - Classify and size what Docker leaked (RV(ansible_facts.overlay2.orphans)), as
        M(strata.overlay2.orphan_layer_prune) does. Sizing walks every orphan; turn it off on hosts with very
        large leaked trees when only the image map is wanted.
      - V(false) is the same as leaving V(orphans) out of O(gather_subset), except that C(orphans) is then
        returned as null (as before O(gather_subset) existed).
    type: bool
    default: true
  as_facts:
    description:
      - Return the map as RV(ansible_facts.overlay2), a fact of the host (and so also stored by a fact cache or AWX's
        fact storage). V(false) returns the same map as RV(overlay2) instead, for C(register), so that only what the
        play keeps on purpose reaches the fact cache.
    type: bool
    default: true
attributes:
  facts:
    support: full
    description: Returns the map as C(ansible_facts.overlay2) (with O(as_facts=false), as RV(overlay2)).
"""

EXAMPLES = r"""
- name: Gather the overlay2 map of the default data-root
  strata.overlay2.overlay2_facts:

- name: Show which directory holds each image's top layer
  ansible.builtin.debug:
    msg: "{{ item.tags | first | default(item.id) }} -> {{ item.upper_dir }}"
  loop: "{{ ansible_facts.overlay2.images }}"
  loop_control:
    label: "{{ item.id }}"

- name: Gather from another data-root, with the size of each container's writable layer
  strata.overlay2.overlay2_facts:
    data_root: /srv/docker
    container_sizes: true
"""

RETURN = r"""
overlay2:
  description: The same map as RV(ansible_facts.overlay2), not as a fact.
  returned: when O(as_facts=false)
  type: dict
ansible_facts:
  description: Facts added to the host.
  returned: when O(as_facts=true) (the default)
  type: dict
  contains:
    overlay2:
      description: The overlay2 map of the data-root.
      returned: always
      type: dict
      contains:
        data_root:
          description: The data-root read, with symlinks resolved.
          type: str
          returned: always
          sample: /var/lib/docker
        daemon:
          description:
            - The daemon whose store was read (one entry of RV(ansible_facts.overlay2.daemons)), or null when O(data_root)
              names a store no daemon found here owns.
          type: dict
          returned: when V(daemons) is in O(gather_subset) (it is in V(all))
        daemons:
          description:
            - Every Docker daemon found on the host, running or only configured, rootless ones included.
            - "Each: C(source) (V(process), V(unit), V(config), V(default) or V(rootless)), C(pid), C(running),
              C(started_at), C(uid), C(user), C(data_root) (as the daemon sees it), C(store_root) (the store as this
              host reads it: the data-root, in a chroot below its root, or the remapped C(<uid>.<gid>) directory),
              C(store_exists),
              C(exec_root), C(config_file), C(storage) (V(overlay2), V(containerd), V(unknown) or another graph
              driver), C(containerd) (the C(--containerd) address), C(containerd_root), C(userns_remap), C(rootless),
              C(other_mount_namespace) (a daemon in a container or a private mount namespace, whose store is read
              through C(/proc/<pid>/root) while it runs and which V(auto) never picks), C(data_root_known) (false
              when its C(daemon.json) cannot be read and no flag names the data-root; V(auto) then refuses to guess)
              and C(warnings) (what could not be read or does not fit, such as a C(daemon.json) that is not JSON)."
          type: list
          elements: dict
          returned: when V(daemons) is in O(gather_subset) (it is in V(all))
        store:
          description: Which image store filled the map, V(overlay2) or V(containerd).
          type: str
          returned: always
        containerd:
          description: Containerd image store only. The containerd root read (C(root)), its C(namespace) and
            C(layout) (V(managed), dockerd's own containerd; V(system), found elsewhere; V(given), O(containerd_root)).
          type: dict
          returned: when the store is a containerd image store
        driver:
          description: The graph driver of the store.
          type: str
          returned: always
          sample: overlay2
        images:
          description: Every image in the image store, sorted by id.
          type: list
          elements: dict
          returned: when V(images) is in O(gather_subset) (it is in V(all))
          contains:
            id:
              description: The image id, C(sha256:<64 hex>).
              type: str
            tags:
              description: The C(repo:tag) references of the image.
              type: list
              elements: str
            digests:
              description: The C(repo@sha256:...) references of the image.
              type: list
              elements: str
            created:
              description: The creation time from the image config.
              type: str
            parent:
              description: The parent image id of a locally built image, or null.
              type: str
            manifest_digest:
              description: Containerd image store only. The manifest of this host's platform.
              type: str
              returned: when the store is a containerd image store
            config_digest:
              description: Containerd image store only. The digest of the image config.
              type: str
              returned: when the store is a containerd image store
            compressed_size:
              description: Containerd image store only. Bytes of the index, manifests, configs and compressed layers
                counted in RV(ansible_facts.overlay2.images[].size).
              type: int
              returned: when the store is a containerd image store
            unpacked_size:
              description: Containerd image store only. Stored usage of the image's snapshots (its top snapshot and
                every parent, the classic builder's C(-init) snapshots included).
              type: int
              returned: when the store is a containerd image store
            dangling:
              description: Containerd image store only. Whether the image has no tag (a C(moby-dangling@) record).
              type: bool
              returned: when the store is a containerd image store
            intermediate:
              description: An untagged image with children (a classic-builder step); the engine's disk usage does not count it.
              type: bool
            diff_ids:
              description: The DiffIDs of the image config's C(rootfs.diff_ids), bottom layer first.
              type: list
              elements: str
            chain_ids:
              description: The chainIDs of the layers, bottom layer first.
              type: list
              elements: str
            top_chain_id:
              description: The chainID of the topmost layer, or null for an image without layers.
              type: str
            upper_dir:
              description: The top layer's C(diff) directory, as C(docker image inspect) shows C(GraphDriver.Data.UpperDir).
              type: str
            lower_dirs:
              description:
                - The other layers' C(diff) directories, topmost first; joined with C(:) they equal C(GraphDriver.Data.LowerDir).
              type: list
              elements: str
            size:
              description: Bytes of all the image's layers.
              type: int
            shared_size:
              description: Bytes of the image's layers that other images use too.
              type: int
            unique_size:
              description: Bytes only this image uses (C(size - shared_size)).
              type: int
            containers:
              description: Ids of the containers created from the image.
              type: list
              elements: str
        layers:
          description: Every committed layer of the layer database, sorted by chainID.
          type: list
          elements: dict
          returned: when V(layers) is in O(gather_subset) (it is in V(all))
          contains:
            chain_id:
              description: The layer's chainID.
              type: str
            diff_id:
              description: The layer's DiffID (sha256 of its tar stream).
              type: str
            parent:
              description: The parent layer's chainID, or null for a base layer.
              type: str
            cache_id:
              description: The name of the layer's overlay2 directory.
              type: str
            size:
              description: The layer's size in bytes, as the engine recorded it.
              type: int
            diff_dir:
              description: The directory that holds the layer's files.
              type: str
            link:
              description: The layer's short link id in C(overlay2/l/).
              type: str
            snapshot_key:
              description: Containerd image store only. The snapshot's key in the namespace (C(sha256:<chainID>)).
              type: str
              returned: when the store is a containerd image store
            snapshot_id:
              description: Containerd image store only. The snapshot's id, the directory below C(snapshots/).
              type: str
              returned: when the store is a containerd image store
            blob:
              description: Containerd image store only. The digest of the compressed layer in the content store.
              type: str
              returned: when the store is a containerd image store
            compressed_size:
              description: Containerd image store only. Bytes of the compressed layer.
              type: int
              returned: when the store is a containerd image store
            images:
              description: Ids of the images that use the layer.
              type: list
              elements: str
            containers:
              description: Ids of the containers whose root file system includes the layer.
              type: list
              elements: str
            shared:
              description: Whether more than one image uses the layer.
              type: bool
        containers:
          description: Every container, sorted by id.
          type: list
          elements: dict
          returned: when V(containers) is in O(gather_subset) (it is in V(all))
          contains:
            id:
              description: The container id.
              type: str
            name:
              description: The container name, without the leading C(/).
              type: str
            image_id:
              description: The id of the container's image.
              type: str
            running:
              description: The state recorded in the container's config (a daemon killed with SIGKILL leaves C(true)).
              type: bool
            mount_id:
              description: The overlay2 directory of the container's writable layer.
              type: str
            init_id:
              description: The overlay2 directory of the container's init layer, or null.
              type: str
            upper_dir:
              description: Equals C(docker inspect)'s C(GraphDriver.Data.UpperDir).
              type: str
            lower_dirs:
              description: The init layer first, then the image's layers topmost first; joined with C(:) they equal C(GraphDriver.Data.LowerDir).
              type: list
              elements: str
            work_dir:
              description: Equals C(GraphDriver.Data.WorkDir).
              type: str
            merged_dir:
              description: Equals C(GraphDriver.Data.MergedDir); it exists only while the container is mounted.
              type: str
            rw_size:
              description: Bytes in the writable layer, as C(docker ps --size) counts them.
              type: int
              returned: when O(container_sizes=true)
            drift:
              description:
                - What the container changed in its writable layer below O(drift_paths), as C(docker diff) shows it
                  there (directories themselves are not listed).
              type: dict
              returned: when O(container_drift=true)
              contains:
                entries:
                  description:
                    - One per path, sorted - C(path) and C(kind), which is V(added), V(changed) (a lower layer has
                      the path), V(deleted) (a whiteout) or V(replaced) (an opaque directory); at most 1000.
                  type: list
                  elements: dict
                count:
                  description: How many entries there are, listed or not.
                  type: int
                truncated:
                  description: Whether more entries exist than are listed.
                  type: bool
                error:
                  description: Why the writable layer could not be read, or null.
                  type: str
            snapshot_id:
              description: Containerd image store only. The id of the container's writable snapshot.
              type: str
              returned: when the store is a containerd image store
        orphans:
          description:
            - What Docker leaked, from the same classifier as M(strata.overlay2.orphan_layer_prune), without its
              safety gates (this is what exists, not what may go).
          type: dict
          returned: when V(orphans) is in O(gather_subset) (it is in V(all)); null with O(orphans=false)
          contains:
            entries:
              description:
                - One entry per orphan, with C(kind), C(path), C(paths), C(bytes), C(newest_mtime) and C(blocked_by)
                  (the damaged records of RV(ansible_facts.overlay2.orphans.blocking) that might still own it;
                  M(strata.overlay2.orphan_layer_prune) keeps those).
                - On the containerd image store, also C(command), for an orphan held by a record in containerd's
                  databases the command that lets containerd reclaim it (else null); see
                  M(strata.overlay2.orphan_layer_prune) for the kinds.
              type: list
              elements: dict
            bytes:
              description: Allocated bytes of all orphans.
              type: int
            by_kind:
              description: The number of orphans of each kind.
              type: dict
            buildkit_state:
              description:
                - V(read) when BuildKit's bolt databases were read (the BuildKit numbers are exact), V(absent)
                  without a C(buildkit/) directory, V(unknown) when they could not be read (then nothing BuildKit
                  might own is an orphan that may go; see RV(ansible_facts.overlay2.orphans.blocking)).
              type: str
            buildkit_chains:
              description: Layer chains BuildKit's build cache holds that no image or container uses.
              type: int
            buildkit_dirs:
              description: overlay2 directories (containerd image store, snapshots) BuildKit's build cache holds
                that no image or container uses (left to C(docker builder prune)).
              type: int
            buildkit_bytes:
              description: Their allocated bytes.
              type: int
            blocking:
              description:
                - Damaged reference records (C(code), C(path), C(message), C(might_name)), as
                  M(strata.overlay2.orphan_layer_prune) returns them.
              type: list
              elements: dict
        summary:
          description: Totals with the meanings of the engine's disk-usage API (C(docker system df)).
          type: dict
          returned: when V(summary) is in O(gather_subset) (it is in V(all))
          contains:
            images:
              description: Images the engine lists (intermediate images excluded).
              type: int
            layers:
              description: Layers in the layer database.
              type: int
            containers:
              description: Containers.
              type: int
            layers_size:
              description: Bytes of the distinct layers the listed images use (the engine's C(LayersSize)).
              type: int
            snapshots_size:
              description: Containerd image store only. Usage of every snapshot of the namespace (committed as
                stored, active measured now), the part of RV(ansible_facts.overlay2.summary.layers_size) on disk
                unpacked.
              type: int
              returned: when the store is a containerd image store
            content_size:
              description: Containerd image store only. Bytes of the distinct content blobs the images reach
                (compressed layers, configs, manifests), which the engine adds into C(LayersSize).
              type: int
              returned: when the store is a containerd image store
            shared_size:
              description: Bytes of the distinct layers used by more than one image.
              type: int
            reclaimable_size:
              description: Bytes that removing every image without a container would free, computed as C(docker system df) does.
              type: int
            orphan_bytes:
              description:
                - Allocated bytes of what Docker leaked (RV(ansible_facts.overlay2.orphans.bytes)), which C(docker system df)
                  cannot see; null with O(orphans=false).
              type: int
        usage:
          description:
            - Where the disk went. Every byte below the data-root (and below the containerd root when it is not
              there) is counted once, in exactly one category, as C(du -sx --block-size=1) counts it (allocated
              bytes, an inode with several links once, symlinks as themselves, nothing on another file system).
            - The categories' C(bytes) and C(unattributed.bytes) add up to C(total.bytes) exactly, and
              C(total.bytes) equals what C(du -sx --block-size=1) says of the roots.
          type: dict
          returned: when V(usage) is in O(gather_subset) (it is in V(all))
          contains:
            total:
              description: C(bytes) (allocated) and C(apparent_bytes) (C(st_size)) of everything walked.
              type: dict
            roots:
              description: The roots walked, the data-root first.
              type: list
              elements: str
            categories:
              description:
                - "Each with C(bytes) and C(apparent_bytes): V(image_layers) (the unpacked layers of images,
                  overlay2 directories or snapshots, also of an image that is gone but a container still uses;
                  C(by_sharing): V(shared) by more than one image, V(unique)), V(container_layers) (containers'
                  writable and C(-init) layers; C(largest) containers), V(container_logs) (json-file logs with
                  their rotated copies, and the local driver's; C(largest) with C(container), C(name) and
                  C(rotation): whether the container's log options rotate them, null when unknown; and
                  C(not_rotated) and C(rotation_unknown), every container (C(container), C(name)) whose logs are
                  not rotated, or whose log options cannot be read),
                  V(volumes) (C(largest) with C(name), C(anonymous) and C(in_use)), V(buildkit) (C(buildkit/) and
                  the layers only BuildKit's cache holds), V(containerd_content) (the content store: compressed
                  blobs and ingests), V(containerd_snapshots) (snapshots none of the other categories claims,
                  held by a lease say), V(orphans) (C(by_kind), the classification the prune uses), V(metadata)
                  (the engine's image and layer databases, links, container configs, networks, plugins, swarm,
                  trust, runtimes, tmp, its containerd's databases and state) and V(other_store) (a store of the
                  other kind on the same data-root, left from a switch of image store)."
                - C(largest) lists at most 10, with C(count) of all.
              type: dict
            unattributed:
              description: What no category claims (C(bytes), C(apparent_bytes)), with its C(largest) paths.
              type: dict
            unreadable:
              description: Paths that could not be listed or measured (C(path), C(reason)); their bytes are not
                counted.
              type: list
              elements: dict
        orphan_totals:
          description:
            - Each orphan kind's C(count) and C(bytes), the summary of RV(ansible_facts.overlay2.orphans) in a few
              hundred bytes whatever the store's size; null with O(orphans=false).
          type: dict
          returned: when V(summary) is in O(gather_subset) (it is in V(all))
        warnings_count:
          description: How many warnings there are (RV(ansible_facts.overlay2.warnings) may hold only the first).
          type: int
          returned: always
        warnings:
          description:
            - One entry per unreadable or inconsistent item of the store.
            - Only the first 20 when none of V(images), V(layers) and V(containers) is in O(gather_subset), so that a
              small result stays small (RV(ansible_facts.overlay2.warnings_count) says how many there are).
          type: list
          elements: dict
          returned: always
          contains:
            kind:
              description: One of C(unreadable), C(invalid), C(missing), C(unexpected).
              type: str
            path:
              description: The file or directory concerned.
              type: str
            message:
              description: What is wrong with it.
              type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.strata.overlay2.plugins.module_utils._facts.drift import DEFAULT_PATHS
from ansible_collections.strata.overlay2.plugins.module_utils._facts.gather import gather
from ansible_collections.strata.overlay2.plugins.module_utils._facts.subset import keep, needs_orphans, resolve
from ansible_collections.strata.overlay2.plugins.module_utils._backends.open import STORE_OPTIONS, daemon_facts, open_store


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            **STORE_OPTIONS,
            "container_sizes": {"type": "bool", "default": False},
            "container_drift": {"type": "bool", "default": False},
            "drift_paths": {"type": "list", "elements": "str", "default": list(DEFAULT_PATHS)},
            "orphans": {"type": "bool", "default": True},
            "gather_subset": {"type": "list", "elements": "str", "default": ["all"]},
            "as_facts": {"type": "bool", "default": True},
        },
        supports_check_mode=True,
    )
    try:
        parts = resolve(module.params["gather_subset"])
    except ValueError as exc:
        module.fail_json(msg=str(exc))
    backend, location = open_store(module)
    store = backend.store
    drift_paths = module.params["drift_paths"] if module.params["container_drift"] else None
    orphans = module.params["orphans"] and needs_orphans(parts)
    facts = gather(store, container_sizes=module.params["container_sizes"], orphans=orphans,
                   drift_paths=drift_paths, usage="usage" in parts, layer_list="layers" in parts)
    facts["daemon"] = location.daemon.as_dict() if location.daemon else None
    facts["daemons"] = daemon_facts(location.daemons)
    facts = keep(facts, parts)
    for daemon in location.daemons:
        for warning in daemon.warnings:
            module.warn("dockerd %s (%s): %s" % (daemon.pid or "not running", daemon.data_root, warning))
    if facts["warnings"]:
        module.warn("%d entries of %s could not be read or are inconsistent; see ansible_facts.overlay2.warnings"
                    % (len(facts["warnings"]), store.data_root))
    if module.params["as_facts"]:
        module.exit_json(changed=False, ansible_facts={"overlay2": facts})
    module.exit_json(changed=False, overlay2=facts)


if __name__ == "__main__":
    main()
