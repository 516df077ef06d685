#!/usr/bin/python
# Copyright (c) strata.overlay2 contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: orphan_layer_prune
short_description: Reclaim what Docker leaked under overlay2, and never touch what it still owns
version_added: 0.1.0
description:
  - Classifies everything under the data-root's C(overlay2/) and C(image/overlay2/layerdb/) as live (reached
    from an image or a container), owned by BuildKit, or orphaned, and removes the orphans that pass every
    safety gate.
  - "Orphan kinds: V(unreferenced_dir) (an overlay2 directory nothing references), V(unreferenced_chain) (a
    layerdb chain no image, container or live child layer reaches, with its directory), V(removing) (a layerdb
    C(*-removing) directory of a deletion cut short, with its directory), V(write_set) (a C(layerdb/tmp/write-set-*)
    of a layer that was being written, with its directory), V(dangling_link) (an C(overlay2/l/) link to nothing),
    V(stale_mount) (a container mount whose container is gone, with its directories)."
  - "Safety gates, all on: the newest mtime inside an object must be older than O(min_age); while a dockerd
    runs on this data-root, anything changed since it started counts as in flight, and unreferenced chains and
    stale mounts (which it holds in memory) are only reported; nothing mounted is touched; C(overlay2/l/) itself,
    the last layer directory and anything outside the data-root are never touched. Removal walks directory file
    descriptors without following symlinks."
  - "BuildKit's build cache is read from its bolt databases (C(buildkit/containerdmeta.db), C(metadata_v2.db),
    C(snapshots.db); from engines 18.09 to 19.03, BuildKit's first format, C(metadata.db) and C(snapshots.db),
    whose every record is a root as the migration of Engine 20.10 makes it one, and which owns nothing without
    records): the chains and directories it holds, with their ancestors, are not orphans; they are
    reported in RV(buildkit) and left to C(docker builder prune). A BuildKit directory that BuildKit no longer
    records is a leak like any other."
  - "Unknown is not unowned: a reference record that cannot be read or is invalid (a layer's C(cache-id),
    C(parent) or C(diff); a mount's C(mount-id), C(init-id) or C(parent); an image or container config; a
    C(lower) file of a kept directory; a BuildKit database that is missing, unreadable or of an unknown shape)
    is listed in RV(blocking). What it still names stays; every orphan it might have named stays with
    RV(orphans[].reason_code=unknown_owner). Dangling links, write-sets and C(-removing) records still go."
  - "Every orphan carries a stable RV(orphans[].reason_code) beside its human RV(orphans[].reason): V(unreferenced)
    (it goes), V(kind_not_selected), V(unknown_owner), V(too_young), V(in_flight), V(daemon_holds), V(mounted),
    V(parent_stays), V(over_budget), V(last_layer_dir), V(removal_failed), V(quarantine_failed),
    V(containerd_reclaims), V(resumed). Decide on the codes; the messages may change."
  - "A prune can be killed at any moment (a job timeout, the OOM killer, a reboot) and the next one finishes
    its work. Each orphan is first renamed in place to C(<name>-<mark><random>-removing) (the engine's own
    convention for layer records, which it also finishes), then what it names goes (links, then directories),
    then the renamed record. A kill leaves the orphan as it was, or that renamed leftover: never a record
    naming something that is gone, so nothing blocks the next run, which lists the leftover with
    RV(orphans[].in_progress) and finishes it. A quarantine keeps C(journal.jsonl) (each orphan begun, then
    done) beside C(manifest.json); the next run with the same O(quarantine_dir) writes the manifest of a run
    that was cut short and moves the rest of each orphan into the run that began it."
  - "On the containerd image store (see O(store)), containerd's own references decide (its garbage collector's
    roots and labels, plus the engine's containers and BuildKit's records). Only files no database knows are
    removed: V(unknown_snapshot_dir) (a directory under the snapshotter's C(snapshots/) whose id its metadata
    does not hold: C(new-*), C(rm-*), a crash between mkdir and commit) and V(stale_ingest) (a content C(ingest/)
    entry with no record), under the same gates, a running containerd on that root counting like a running
    dockerd. Records in containerd's databases that nothing references (V(unreferenced_snapshot),
    V(unpack_leftover), V(unreferenced_blob), V(unrecorded_blob_file)) are reported with
    RV(orphans[].reason_code=containerd_reclaims) and the command that lets containerd reclaim them
    (RV(orphans[].command)); the collection never writes a containerd database."
  - "containerd makes a directory (and renames a blob into place) before the commit that records it, and may
    be committing while the store is read. An entry listed only before or only after the databases were read,
    or changed in the last 10 seconds, is taken for work in progress and is no orphan; a database read that
    one of containerd's commits overlapped is done again (from a copy, after a short pause), and one that
    keeps changing counts as unreadable, which blocks what it might own."
author:
  - strata.overlay2 maintainers (@strata-overlay2)
extends_documentation_fragment:
  - strata.overlay2.data_root
  - strata.overlay2.attributes.actiongroup_storage
options:
  min_age:
    description:
      - How long ago the newest change inside an orphan must be, as seconds or with a unit (V(30m), V(1h), V(2d)).
        V(0) turns the gate off (the in-flight gate of a running daemon still applies).
    type: str
    default: 1h
  kinds:
    description: The orphan kinds to act on; the others are reported only.
    type: list
    elements: str
    choices: [unreferenced_dir, unreferenced_chain, removing, write_set, dangling_link, stale_mount,
              unknown_snapshot_dir, stale_ingest, unreferenced_snapshot, unpack_leftover, unreferenced_blob,
              unrecorded_blob_file]
    default: [unreferenced_dir, unreferenced_chain, removing, write_set, dangling_link, stale_mount,
              unknown_snapshot_dir, stale_ingest, unreferenced_snapshot, unpack_leftover, unreferenced_blob,
              unrecorded_blob_file]
  quarantine_dir:
    description:
      - Move orphans into a new time-stamped directory below this one, keeping their paths relative to the
        data-root and a C(manifest.json), instead of deleting them, so that a mistake can be undone.
      - C(manifest.json) lists what moved whole (C(moved)) and what a killed run left half-moved
        (C(incomplete), with the parts in the quarantine and the renamed record still in the data-root).
      - On the same file system it is a rename; across the bind mount dockerd keeps on C(overlay2/) it is a copy.
    type: path
  max_remove_bytes:
    description: A ceiling on the bytes removed in one run (V(500M), V(20G) or a number of bytes).
    type: str
attributes:
  check_mode:
    support: full
    description: Reports what would go, with RV(orphans[].action=would_remove), and predicts C(changed).
  diff_mode:
    support: full
    description: Shows the paths that go (or would go).
seealso:
  - module: strata.overlay2.overlay2_facts
"""

EXAMPLES = r"""
- name: See what would be reclaimed (always start here)
  strata.overlay2.orphan_layer_prune:
  check_mode: true
  diff: true
  register: plan

- name: Reclaim, at most 20 GB, keeping a way back
  strata.overlay2.orphan_layer_prune:
    max_remove_bytes: 20G
    quarantine_dir: /var/lib/docker-quarantine

- name: Reclaim unreferenced chains too, in a maintenance window with dockerd stopped
  strata.overlay2.orphan_layer_prune:
    min_age: 10m
"""

RETURN = r"""
orphans:
  description: Every orphan found, with what was done to it.
  type: list
  elements: dict
  returned: always
  contains:
    kind:
      description: The orphan kind.
      type: str
    path:
      description: The object's main path (its layerdb record, else its directory, else its link).
      type: str
    paths:
      description: Every path that goes with it (its C(l/) links, its directories, its record).
      type: list
      elements: str
    bytes:
      description: Allocated bytes of everything that makes up the object.
      type: int
    newest_mtime:
      description: The newest modification time inside the object (epoch seconds).
      type: float
    action:
      description: V(removed), V(quarantined), V(would_remove) (check mode) or V(skipped).
      type: str
    reason_code:
      description:
        - Why, as a stable code. V(unreferenced) when it goes, V(resumed) when it is the rest of a removal an
          earlier run began (see RV(orphans[].in_progress)); otherwise the gate that keeps it
          (V(kind_not_selected), V(unknown_owner), V(too_young), V(in_flight), V(daemon_holds), V(mounted),
          V(parent_stays), V(over_budget), V(last_layer_dir), V(containerd_reclaims)) or the failure
          (V(removal_failed), V(quarantine_failed)).
      type: str
    command:
      description:
        - Containerd image store only. For an orphan held by a record in containerd's databases, the command
          that lets containerd reclaim it; null for the others.
      type: str
    reason:
      description: Why, for people.
      type: str
    blocked_by:
      description: The damaged records (paths, see RV(blocking)) that might still own it.
      type: list
      elements: str
    in_progress:
      description:
        - Whether it is what an earlier prune renamed for removal (C(<name>-<mark><random>-removing)) and a kill
          cut short. It goes whatever O(kinds), O(min_age) and O(max_remove_bytes) say, and with
          RV(orphans[].reason_code=resumed); the other gates hold.
      type: bool
reclaimed_bytes:
  description: Bytes removed or moved out of the data-root in this run.
  type: int
  returned: always
would_reclaim_bytes:
  description: Bytes of the orphans that pass every gate.
  type: int
  returned: always
kept:
  description:
    - The orphans left in place, with the reason (C(kind), C(path), C(reason_code), C(reason), C(blocked_by)).
    - Named C(kept), not C(skipped), because Ansible reads a truthy C(skipped) in a result as a skipped task.
  type: list
  elements: dict
  returned: always
buildkit:
  description: What BuildKit's build cache holds that no image or container uses, left to C(docker builder prune).
  type: dict
  returned: always
  contains:
    state:
      description:
        - V(read) (the databases were read; the numbers are exact), V(absent) (no C(buildkit/) directory) or
          V(unknown) (they could not be read, so everything BuildKit might own stays; see RV(blocking)).
      type: str
    reason:
      description: Why the state is V(unknown), naming the file.
      type: str
    chains:
      description: Layer chains it owns.
      type: int
    dirs:
      description: overlay2 directories it owns.
      type: int
    bytes:
      description: Allocated bytes of those directories.
      type: int
blocking:
  description: Damaged reference records; each keeps what it might name until it is repaired or removed by hand.
  type: list
  elements: dict
  returned: always
  contains:
    code:
      description: >-
        The record's kind: V(layer), V(mount), V(image_config), V(container_config), V(lower), V(buildkit) or
        V(store_part) (a whole part of the store that cannot be listed). A record that reads is damaged too
        when it breaks what the engine keeps true - an V(image_config) whose bytes no longer hash to its image
        id, a V(layer) or V(mount) record naming an overlay2 directory that is not there (for a mount, unless
        its container is dead) or that another record names, a container that is not dead without its mount
        record (V(mount)).
      type: str
    path:
      description: The record.
      type: str
    message:
      description: What is wrong with it.
      type: str
    might_name:
      description: What it might name and cannot be read, none of which goes (V(dirs), V(chains), V(mounts)).
      type: list
      elements: str
store_warnings:
  description:
    - Every entry of the store that could not be read or does not fit the format (C(kind), C(path),
      C(message)), as in RV(strata.overlay2.overlay2_facts#module:ansible_facts.overlay2.warnings).
  type: list
  elements: dict
  returned: always
daemon:
  description:
    - The running dockerd that owns this store (C(pid), C(started_at)), or null. It is found by the store it
      reads (a userns-remapped or rootless daemon by its own store, a daemon in a chroot or another mount
      namespace by inode), never by another daemon of the host.
  type: dict
  returned: always
quarantine:
  description: The directory the orphans were moved to, when O(quarantine_dir) was set and something moved.
  type: str
  returned: when something was quarantined
"""

import time
from typing import Any, Dict, List

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.formatters import human_to_bytes

from ansible_collections.strata.overlay2.plugins.module_utils._backends.open import STORE_OPTIONS, open_store
from ansible_collections.strata.overlay2.plugins.module_utils._backends.base import Classification
from ansible_collections.strata.overlay2.plugins.module_utils._backends.registry import orphan_kinds
from ansible_collections.strata.overlay2.plugins.module_utils._orphans.prune import (
    QUARANTINED,
    REMOVED,
    SKIPPED,
    WOULD_REMOVE,
    Decision,
    Gates,
    decide,
    execute,
    running_daemons,
)
from ansible_collections.strata.overlay2.plugins.module_utils._store.model import Store
from ansible_collections.strata.overlay2.plugins.module_utils._util.durations import seconds


def report(store: Store, classification: Classification, decisions: List[Decision]) -> Dict[str, Any]:
    """The part of the result that a failed run returns too."""
    return {
        "orphans": [d.as_dict() for d in decisions],
        "kept": [{"kind": d.orphan.kind, "path": d.orphan.path, "reason_code": d.reason_code, "reason": d.reason,
                  "blocked_by": d.orphan.blocked_by} for d in decisions if d.action == SKIPPED],
        "buildkit": classification.buildkit.facts(),
        "blocking": [record.as_dict() for record in classification.blocking],
        "store_warnings": [finding.as_dict() for finding in store.findings],
    }


def main() -> None:
    every_kind = orphan_kinds()
    module = AnsibleModule(
        argument_spec={
            **STORE_OPTIONS,
            "min_age": {"type": "str", "default": "1h"},
            "kinds": {"type": "list", "elements": "str", "choices": list(every_kind), "default": list(every_kind)},
            "quarantine_dir": {"type": "path"},
            "max_remove_bytes": {"type": "str"},
        },
        supports_check_mode=True,
    )
    params = module.params
    try:
        min_age = seconds(params["min_age"], "min_age")
        ceiling = human_to_bytes(params["max_remove_bytes"]) if params["max_remove_bytes"] else None
    except ValueError as exc:
        module.fail_json(msg=str(exc))
    backend, location = open_store(module)
    store = backend.store
    if params["quarantine_dir"] and (params["quarantine_dir"] + "/").startswith(store.data_root + "/"):
        module.fail_json(msg="quarantine_dir must be outside the data-root %s" % store.data_root)
    owning = running_daemons(store.data_root, location.daemons) + backend.prune_owners()
    base = backend.prune_root
    classification = backend.classify()
    daemon = max(owning, key=lambda d: d.started_at) if owning else None
    gates = Gates(kinds=params["kinds"], min_age=min_age, now=time.time(), daemon=daemon,
                  layer_dirs=backend.layer_dir_count(), max_remove_bytes=ceiling)
    decisions = decide(classification.orphans, gates, module.check_mode, bool(params["quarantine_dir"]))
    try:
        outcome = execute(base, decisions, params["quarantine_dir"]) if not module.check_mode else None
    except OSError as exc:
        module.fail_json(msg="cannot prune %s: %s" % (store.data_root, exc), changed=False, reclaimed_bytes=0,
                         **report(store, classification, decisions))
    for error in outcome.errors if outcome else []:
        module.warn("could not remove %s" % error)
    for record in classification.blocking:
        module.warn("%s: %s; what it might name stays" % (record.path, record.message))
    going = [d for d in decisions if d.action in (REMOVED, QUARANTINED, WOULD_REMOVE)]
    result = {
        "changed": bool(going),
        "reclaimed_bytes": outcome.reclaimed_bytes if outcome else 0,
        "would_reclaim_bytes": sum(d.orphan.usage.bytes for d in going),
        "daemon": {"pid": daemon.pid, "started_at": daemon.started_at, "name": daemon.name} if daemon else None,
    }
    result.update(report(store, classification, decisions))
    if outcome and outcome.quarantine:
        result["quarantine"] = outcome.quarantine
    if module._diff:  # pylint: disable=protected-access
        paths = sorted("%s/%s\n" % (base, part) for d in going for part in d.orphan.parts)
        result["diff"] = {"before": "".join(paths), "after": "",
                          "before_header": "orphans", "after_header": "orphans after the prune"}
    module.exit_json(**result)


if __name__ == "__main__":
    main()
