# Copyright (c) strata.overlay2 contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# This module_utils is PRIVATE to the strata.overlay2 collection. It may change
# without notice; do not import it from other collections.

"""Deciding which orphans may go, and removing or quarantining them without following symlinks.

Safety gates, in order, each with a stable code (``reason_code``) beside its message: the kind was asked for
(``kind_not_selected``); no damaged record might own it (``unknown_owner``); old enough (``too_young``, by
the newest mtime inside); not newer than the running daemon's start (``in_flight``); not a kind the running
daemon holds in memory (``daemon_holds``); not mounted (``mounted``); a chain goes only with its children
(``parent_stays``); within the byte ceiling (``over_budget``); never the last layer directory
(``last_layer_dir``). What an earlier run began and a kill cut short (``Orphan.in_progress``) is finished
(``resumed``) past the gates that decide whether to begin (kind, age, in flight, ceiling); the others hold.
Removal (``_orphans.removal``) renames first and walks directory file descriptors opened with O_NOFOLLOW from
the data-root down, so a kill leaves nothing the next run does not recognise and a path swapped for a symlink
is never followed; a failure is ``removal_failed`` or ``quarantine_failed``. A quarantine keeps a journal
(``_orphans.quarantine``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Set, Tuple

from ansible_collections.strata.overlay2.plugins.module_utils._store.discovery import owners, running_dockerds
from ansible_collections.strata.overlay2.plugins.module_utils._orphans.overlay2 import (
    HELD_BY_RUNNING_DAEMON,
    Orphan,
    UNREFERENCED_CHAIN,
)
from ansible_collections.strata.overlay2.plugins.module_utils._orphans.quarantine import (
    Entry,
    QuarantineRun,
    cut_short,
    resumable,
)
from ansible_collections.strata.overlay2.plugins.module_utils._orphans.removal import (
    carry_out,
    quarantine_part,
    remove_part,
    renamed_part,
)
from ansible_collections.strata.overlay2.plugins.module_utils._util.safefs import SafeDir, describe_os_error

REMOVED = "removed"
WOULD_REMOVE = "would_remove"
QUARANTINED = "quarantined"
SKIPPED = "skipped"

# reason codes: why an orphan goes, or why it stays
UNREFERENCED = "unreferenced"
KIND_NOT_SELECTED = "kind_not_selected"
UNKNOWN_OWNER = "unknown_owner"
TOO_YOUNG = "too_young"
IN_FLIGHT = "in_flight"
DAEMON_HOLDS = "daemon_holds"
MOUNTED = "mounted"
PARENT_STAYS = "parent_stays"
OVER_BUDGET = "over_budget"
LAST_LAYER_DIR = "last_layer_dir"
REMOVAL_FAILED = "removal_failed"
QUARANTINE_FAILED = "quarantine_failed"
CONTAINERD_RECLAIMS = "containerd_reclaims"
RESUMED = "resumed"
REASON_CODES = (UNREFERENCED, RESUMED, KIND_NOT_SELECTED, UNKNOWN_OWNER, TOO_YOUNG, IN_FLIGHT, DAEMON_HOLDS, MOUNTED,
                PARENT_STAYS, OVER_BUDGET, LAST_LAYER_DIR, REMOVAL_FAILED, QUARANTINE_FAILED, CONTAINERD_RECLAIMS)

# a process start time is known to a clock tick past the boot time, which /proc/stat gives in whole seconds
START_TIME_MARGIN = 2.0


# -- the daemon ----------------------------------------------------------------
@dataclass
class Daemon:
    pid: int
    started_at: float  # epoch seconds
    name: str = "dockerd"


def running_daemons(data_root: str, found: Optional[Sequence[Any]] = None) -> List[Daemon]:
    """The running dockerds whose store is this data-root (matched by inode, so also across mount namespaces;
    a userns-remapped or rootless daemon by its own store), among ``found`` (``_discovery`` daemons already
    discovered) or the running ones now."""
    return [Daemon(owner.pid, owner.started_at)
            for owner in owners(data_root, running_dockerds() if found is None else list(found))
            if owner.pid is not None and owner.started_at is not None]


# -- decisions -----------------------------------------------------------------
@dataclass
class Gates:
    kinds: Sequence[str]
    min_age: float
    now: float
    daemon: Optional[Daemon]
    layer_dirs: int  # the store's layer directories now (overlay2/): a run never removes the last one
    max_remove_bytes: Optional[int] = None


@dataclass
class Decision:
    orphan: Orphan
    action: str
    reason_code: str
    reason: str

    def as_dict(self) -> Dict[str, object]:
        result = self.orphan.as_dict()
        result.update(action=self.action, reason_code=self.reason_code, reason=self.reason)
        return result

    def keep(self, code: str, reason: str) -> None:
        self.action, self.reason_code, self.reason = SKIPPED, code, reason


def decide(orphans: List[Orphan], gates: Gates, check_mode: bool, quarantine: bool) -> List[Decision]:
    decisions: List[Decision] = []
    budget = gates.max_remove_bytes
    dirs_left = gates.layer_dirs
    staying_chains: Set[str] = set()
    go = QUARANTINED if quarantine else REMOVED
    for orphan in orphans:  # chains come children first, so a staying child is known before its parent
        blocked = blocked_by(orphan, gates, staying_chains)
        charged = budget is not None and not orphan.in_progress  # a resumed one was charged by the run that began it
        if blocked is None and charged and orphan.usage.bytes > budget:  # type: ignore[operator]
            blocked = OVER_BUDGET, "max_remove_bytes reached (%d bytes left, this needs %d)" % (budget, orphan.usage.bytes)
        dirs = orphan.layer_dirs
        if blocked is None and dirs and dirs >= dirs_left:
            blocked = LAST_LAYER_DIR, "would leave overlay2/ without layer directories (newer engines then switch stores)"
        if blocked is not None:
            decisions.append(Decision(orphan, SKIPPED, blocked[0], blocked[1]))
            if orphan.kind == UNREFERENCED_CHAIN and orphan.parent_chain:
                staying_chains.add(orphan.parent_chain)
            continue
        if charged:
            budget -= orphan.usage.bytes  # type: ignore[operator]
        dirs_left -= dirs
        action = WOULD_REMOVE if check_mode else go
        if orphan.in_progress:
            decisions.append(Decision(orphan, action, RESUMED, "the rest of a removal an earlier prune began"))
        else:
            decisions.append(Decision(orphan, action, UNREFERENCED, "unreferenced and old enough"))
    return decisions


def blocked_by(orphan: Orphan, gates: Gates, staying_chains: Set[str]) -> Optional[Tuple[str, str]]:
    """(reason code, message) of the first gate that keeps the orphan, or None when it may go."""
    if orphan.command is not None:  # a record in containerd's databases, whatever the kinds: never written here
        return CONTAINERD_RECLAIMS, "a record in containerd's database holds it; let containerd reclaim it: " + \
            orphan.command
    if orphan.kind not in gates.kinds and not orphan.in_progress:
        return KIND_NOT_SELECTED, "kind %s not selected" % orphan.kind
    if orphan.blocked_by:
        return UNKNOWN_OWNER, ("a damaged record might still own it; repair or remove %s first"
                               % ", ".join(orphan.blocked_by[:3]) + (" (and %d more)" % (len(orphan.blocked_by) - 3)
                                                                     if len(orphan.blocked_by) > 3 else ""))
    age = gates.now - orphan.usage.newest_mtime
    if orphan.in_progress:  # what its own removal changed is no sign of anyone's use
        pass
    elif age < gates.min_age:
        return TOO_YOUNG, "newest change %.0f s ago, younger than min_age (%.0f s)" % (max(age, 0), gates.min_age)
    if gates.daemon is not None:
        if orphan.usage.newest_mtime >= gates.daemon.started_at - START_TIME_MARGIN and not orphan.in_progress:
            return IN_FLIGHT, "changed since the running %s (pid %d) started: may be in flight" % (
                gates.daemon.name, gates.daemon.pid)
        if orphan.kind in HELD_BY_RUNNING_DAEMON:
            return DAEMON_HOLDS, ("the running dockerd (pid %d) holds it in memory; prune it with the daemon stopped"
                                  % gates.daemon.pid)
    if orphan.mounted:
        return MOUNTED, "mounted"
    if orphan.kind == UNREFERENCED_CHAIN and orphan.chain_id in staying_chains:
        return PARENT_STAYS, "parent of a layer that stays"
    return None


@dataclass
class Outcome:
    decisions: List[Decision]
    reclaimed_bytes: int
    errors: List[str]
    quarantine: Optional[str] = None


class PruneError(OSError):
    """The prune cannot start (nothing was removed or moved)."""


def execute(data_root: str, decisions: List[Decision], quarantine_dir: Optional[str] = None) -> Outcome:
    """Carry out the decisions, each orphan in the order ``_orphans.removal`` keeps recognisable; a failure turns
    that orphan into a skipped one and the rest go on. With a quarantine, runs a kill cut short get their
    manifests, and the rest of each orphan they began goes where it began.

    Raises PruneError, before touching anything, when the quarantine cannot be created.
    """
    reclaimed = 0
    errors: List[str] = []
    run: Optional[QuarantineRun] = None
    earlier = cut_short(quarantine_dir) if quarantine_dir else []
    if quarantine_dir and any(d.action == QUARANTINED for d in decisions):
        target = QuarantineRun.new_path(quarantine_dir)
        try:
            run = QuarantineRun.create(target)
        except OSError as exc:
            message = "cannot create the quarantine %s: %s; nothing was moved" % (target, describe_os_error(exc))
            for decision in decisions:
                if decision.action == QUARANTINED:
                    decision.keep(QUARANTINE_FAILED, message)
            raise PruneError(message) from exc
    begun = resumable(earlier)
    with SafeDir.open(data_root) as root:
        for decision in decisions:
            if decision.action not in (REMOVED, QUARANTINED):
                continue
            orphan = decision.orphan
            try:
                if run is None:
                    carry_out(root, orphan.parts, renamed_part(orphan.parts[-1]), orphan.parts[-1],
                              lambda part, _kept_as: remove_part(root, part))
                else:
                    quarantine(root, orphan, run, begun)
            except OSError as exc:
                message = "%s: %s" % (orphan.path, describe_os_error(exc))
                errors.append(message)
                decision.keep(QUARANTINE_FAILED if run else REMOVAL_FAILED,
                              "removal failed, the rest kept: " + describe_os_error(exc))
                continue
            reclaimed += orphan.usage.bytes
    for touched in earlier + ([run] if run else []):
        try:
            touched.write_manifest(data_root)
        except OSError as exc:
            errors.append("%s/manifest.json (the moves are done; the manifest is not): %s"
                          % (touched.path, describe_os_error(exc)))
    return Outcome(decisions, reclaimed, errors, run.path if run else None)


def quarantine(root: SafeDir, orphan: Orphan, run: QuarantineRun,
               begun: Dict[str, Tuple[QuarantineRun, Entry]]) -> None:
    """Move one orphan into the quarantine, its principal under the name it was found by: into the run that
    began it when a kill cut that run short (a removal begun without a quarantine keeps its removal name)."""
    principal = orphan.parts[-1]
    target, entry = begun.pop(principal, (run, None))
    if entry is None:
        renamed = principal if orphan.in_progress else renamed_part(principal)
        entry = target.begin(orphan.kind, list(orphan.parts), renamed, orphan.usage.bytes)
    carry_out(root, orphan.parts, entry.removal, entry.parts[-1],
              lambda part, kept_as: quarantine_part(root, part, target.path, kept_as))
    target.done(entry)
