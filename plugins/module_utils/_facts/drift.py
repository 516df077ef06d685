# Copyright (c) strata.overlay2 contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# This module_utils is PRIVATE to the strata.overlay2 collection. It may change
# without notice; do not import it from other collections.

"""Container drift: what a container changed in its writable layer below the watched directories (its image's
executables, libraries and configuration), the offline equivalent of ``docker diff`` there.

The writable layer is the container's upper directory (overlay2's ``<mount-id>/diff``, or the RW snapshot's
``fs``; both stores). A 0/0 character device is a deletion, an opaque directory replaced what the image had
there, any other non-directory entry was added, or changed when a lower layer (the ``-init`` layer and the
image's) has the same path. Directories themselves are not listed (``docker diff`` lists each parent of a
change too). Nothing is followed through a symlink, in the upper directory or in the lower ones.
"""

from __future__ import annotations

import stat
from typing import Dict, List, Optional, Sequence

from ansible_collections.strata.overlay2.plugins.module_utils._util.safefs import SafeDir, describe_os_error, is_opaque

DEFAULT_PATHS = ("/bin", "/sbin", "/usr", "/lib", "/lib32", "/lib64", "/libx32", "/etc")
ADDED, CHANGED, DELETED, REPLACED = "added", "changed", "deleted", "replaced"
LIMIT = 1000  # entries listed per container; the rest is counted


def watched(path: str, prefixes: Sequence[str]) -> bool:
    return any(path == p or path.startswith(p.rstrip("/") + "/") for p in prefixes)


def leads_to_watched(path: str, prefixes: Sequence[str]) -> bool:
    """Whether a directory is watched or holds a watched one."""
    return watched(path, prefixes) or any(p.startswith(path.rstrip("/") + "/") for p in prefixes)


def _in_lower(lower_dirs: Sequence[str], path: str) -> bool:
    parts = [p for p in path.split("/") if p]
    for lower in lower_dirs:
        try:
            with SafeDir.open(lower) as root:
                if len(parts) == 1:
                    if root.exists(parts[0]):
                        return True
                    continue
                with root.subdir(*parts[:-1]) as parent:
                    if parent.exists(parts[-1]):
                        return True
        except (OSError, ValueError):
            continue
    return False


def drift(upper_dir: Optional[str], lower_dirs: Sequence[str], prefixes: Sequence[str] = DEFAULT_PATHS
          ) -> Dict[str, object]:
    """``{"entries": [{"path", "kind"}], "count", "truncated", "error"}`` for one container."""
    entries: List[Dict[str, str]] = []
    count = 0
    if not upper_dir:
        return {"entries": [], "count": 0, "truncated": False, "error": "the container has no writable layer"}
    try:
        root = SafeDir.open(upper_dir)
    except OSError as exc:
        return {"entries": [], "count": 0, "truncated": False, "error": "%s: %s" % (upper_dir, describe_os_error(exc))}
    stack = [("", root)]
    while stack:
        prefix, directory = stack.pop()
        try:
            for entry in sorted(directory.entries(), key=lambda e: e.name):
                path = prefix + "/" + entry.name
                info = entry.stat(follow_symlinks=False)
                if stat.S_ISDIR(info.st_mode):
                    if not leads_to_watched(path, prefixes):
                        continue
                    child = directory.subdir(entry.name)
                    if watched(path, prefixes) and is_opaque(child.fd):
                        count += 1
                        if len(entries) < LIMIT:
                            entries.append({"path": path, "kind": REPLACED})
                    stack.append((path, child))
                    continue
                if not watched(path, prefixes):
                    continue
                if stat.S_ISCHR(info.st_mode) and info.st_rdev == 0:
                    kind = DELETED
                else:
                    kind = CHANGED if _in_lower(lower_dirs, path) else ADDED
                count += 1
                if len(entries) < LIMIT:
                    entries.append({"path": path, "kind": kind})
        finally:
            directory.close()
    entries.sort(key=lambda e: e["path"])
    return {"entries": entries, "count": count, "truncated": count > len(entries), "error": None}
