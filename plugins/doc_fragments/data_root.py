# Copyright (c) strata.overlay2 contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    """The data_root option, shared by every module of the storage action group."""

    DOCUMENTATION = r"""
options:
  data_root:
    description:
      - The Docker data-root to read, as given to C(dockerd --data-root) (with user namespace
        remapping, the C(<uid>.<gid>) directory below it).
      - A symlink is resolved once, as the engine does; files below it are never read through symlinks.
      - The store must use the C(overlay2) graph driver. A data-root of another driver, or of an engine
        that keeps images in the containerd image store, fails with a message naming what was found.
      - Set it once for all modules of this collection with C(module_defaults) and the
        C(group/strata.overlay2.storage) action group.
    type: path
    default: /var/lib/docker
notes:
  - Reads the store directly from disk; the Docker daemon may be running or stopped.
"""
