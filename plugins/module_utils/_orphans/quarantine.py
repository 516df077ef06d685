# Copyright (c) strata.overlay2 contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# This module_utils is PRIVATE to the strata.overlay2 collection. It may change
# without notice; do not import it from other collections.

"""A quarantine run: the directory orphans move into, its journal, and its manifest.

Each run gets ``<quarantine_dir>/<UTC time>-<pid>/``. Before an orphan's first move, a line saying what it is
and what its principal is about to be renamed to is appended to ``journal.jsonl`` (and flushed to disk); after
its last move, a line saying it is done. ``manifest.json`` is written from the journal and from what is
there (synced to disk, then renamed into place): at the end of the run, and again by the next run that uses the
same ``quarantine_dir`` when a run was cut short. That next run moves the rest of a cut-short orphan into the
quarantine it began in, so each orphan is restored from one place.
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass, field
from typing import Dict, List, Tuple

from ansible_collections.strata.overlay2.plugins.module_utils._orphans.removal import COPYING_SUFFIX, discard_copy
from ansible_collections.strata.overlay2.plugins.module_utils._util.safefs import replace_file

JOURNAL = "journal.jsonl"
MANIFEST = "manifest.json"
_RUN_NAME = re.compile(r"\A\d{8}T\d{6}-\d+\Z")
RESTORE = ("move each part in 'moved' back to <data_root>/<part> with the daemon stopped; for an entry in "
           "'incomplete', move back the parts listed in 'in_quarantine' and rename <data_root>/<in_data_root> "
           "back to the last of its 'parts'")


@dataclass
class Entry:
    number: int
    kind: str
    parts: List[str]  # as the orphan's parts were named when it was found
    removal: str  # what its principal is renamed to (relative), until it moves
    bytes: int
    done: bool = False
    void: bool = False  # begun in the journal, and a kill came before anything moved

    def moved(self) -> Dict[str, object]:
        return {"kind": self.kind, "parts": self.parts, "bytes": self.bytes}


@dataclass
class QuarantineRun:
    path: str
    entries: List[Entry] = field(default_factory=list)

    @staticmethod
    def new_path(quarantine_dir: str) -> str:
        return os.path.join(quarantine_dir, time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + "-%d" % os.getpid())

    @classmethod
    def create(cls, path: str) -> "QuarantineRun":
        """A new run directory at ``path`` (OSError when it cannot be made)."""
        os.makedirs(path)
        return cls(path)

    @classmethod
    def read(cls, path: str) -> "QuarantineRun":
        """A run from its journal; a line cut short by a kill (the last one) is ignored."""
        run = cls(path)
        by_number: Dict[int, Entry] = {}
        try:
            with open(os.path.join(path, JOURNAL), encoding="utf-8") as handle:
                for line in handle:
                    try:
                        record = json.loads(line)
                        if "done" in record:
                            by_number[int(record["done"])].done = True
                        elif "void" in record:
                            by_number[int(record["void"])].void = True
                        else:
                            entry = Entry(int(record["begin"]), str(record["kind"]), [str(p) for p in record["parts"]],
                                          str(record["removal"]), int(record["bytes"]))
                            by_number[entry.number] = entry
                            run.entries.append(entry)
                    except (ValueError, KeyError, TypeError):
                        continue
        except OSError:
            pass
        return run

    def _append(self, record: Dict[str, object]) -> None:
        with open(os.path.join(self.path, JOURNAL), "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record, sort_keys=True) + "\n")
            handle.flush()
            os.fsync(handle.fileno())

    def begin(self, kind: str, parts: List[str], removal: str, size: int) -> Entry:
        entry = Entry(len(self.entries), kind, list(parts), removal, size)
        self._append({"begin": entry.number, "kind": kind, "parts": entry.parts, "removal": removal, "bytes": size})
        self.entries.append(entry)
        return entry

    def done(self, entry: Entry) -> None:
        self._append({"done": entry.number})
        entry.done = True

    def pending(self) -> List[Entry]:
        return [entry for entry in self.entries if not entry.done and not entry.void]

    def settle(self, entry: Entry, data_root: str) -> Tuple[List[str], bool]:
        """Where a pending entry's parts are: those in the quarantine, and whether its renamed principal is still
        in the data-root. One a kill cut short before anything moved is void; one cut short after its last move
        is done: each is journalled so."""
        here = [part for part in entry.parts if os.path.lexists(os.path.join(self.path, *part.split("/")))]
        left = os.path.lexists(os.path.join(data_root, *entry.removal.split("/")))
        if not left and len(here) == len(entry.parts):
            self.done(entry)
        elif not left and not here:
            for part in entry.parts:
                discard_copy(os.path.join(self.path, *part.split("/")) + COPYING_SUFFIX)
            self._append({"void": entry.number})
            entry.void = True
        return here, left

    def write_manifest(self, data_root: str) -> None:
        """``manifest.json`` from the journal: what moved whole, and what a cut-short move left where."""
        incomplete = []
        for entry in self.pending():
            here, left = self.settle(entry, data_root)
            if entry.done or entry.void:
                continue
            incomplete.append({"kind": entry.kind, "parts": entry.parts, "bytes": entry.bytes,
                               "in_quarantine": here, "in_data_root": entry.removal if left else None})
        manifest = {"data_root": data_root, "moved": [entry.moved() for entry in self.entries if entry.done],
                    "incomplete": incomplete, "restore": RESTORE}
        # one temporary name: a kill's leftover is taken over by the next write, never left beside the manifest
        replace_file(os.path.join(self.path, MANIFEST), json.dumps(manifest, indent=2), temporary_name=MANIFEST + ".tmp")


def cut_short(quarantine_dir: str) -> List[QuarantineRun]:
    """The runs under ``quarantine_dir`` that a kill cut short: a journal with orphans begun and not done, or
    without the manifest written at the end."""
    found: List[QuarantineRun] = []
    try:
        names = sorted(os.listdir(quarantine_dir))
    except OSError:
        return found
    for name in names:
        path = os.path.join(quarantine_dir, name)
        if not _RUN_NAME.match(name) or os.path.islink(path) or not os.path.isfile(os.path.join(path, JOURNAL)):
            continue
        run = QuarantineRun.read(path)
        if run.pending() or not os.path.isfile(os.path.join(path, MANIFEST)):
            found.append(run)
    return found


def resumable(runs: List[QuarantineRun]) -> Dict[str, Tuple[QuarantineRun, Entry]]:
    """The orphans those runs began and did not finish, by their principal's removal name (relative to the
    prune root): the rest of each goes into the run it began in."""
    return {entry.removal: (run, entry) for run in runs for entry in run.pending()}
