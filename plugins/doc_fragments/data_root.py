# Copyright (c) strata.overlay2 contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    """The data_root option, shared by every module of the storage action group."""

    DOCUMENTATION = r"""
options:
  data_root:
    description:
      - The Docker store to read. V(auto) finds it on the host (see the notes); a path is the data-root as given
        to C(dockerd --data-root) (with user namespace remapping, the C(<uid>.<gid>) directory below it) and
        always wins.
      - V(auto) reads the store of the system daemon, the dockerd that runs as root (from its command line and
        its C(daemon.json), also in a chroot or another mount namespace), else the one configured in
        C(/etc/docker/daemon.json) and C(docker.service), else C(/var/lib/docker) when it holds a store. With
        C(userns-remap) that is the remapped root in use. Two dockerd running as root with different stores
        make V(auto) fail with a message listing them; rootless daemons and daemons in containers (another mount
        namespace) are never chosen by V(auto) (give their store, which M(strata.overlay2.overlay2_facts) lists in
        RV(strata.overlay2.overlay2_facts#module:ansible_facts.overlay2.daemons)).
      - A symlink is resolved once, as the engine does; files below it are never read through symlinks.
      - The store must use the C(overlay2) graph driver. A data-root of another driver, or of an engine
        that keeps images in the containerd image store, fails with a message naming what was found.
      - Set it once for all modules of this collection with C(module_defaults) and the
        C(group/strata.overlay2.storage) action group.
    type: path
    default: auto
notes:
  - Reads the store directly from disk; the Docker daemon may be running or stopped.
  - The daemons are found from C(/proc) (every C(dockerd) process, its command line, user and config file),
    C(/etc/docker/daemon.json), the C(ExecStart) of C(docker.service) and its drop-ins, and rootless layouts
    (C(~/.config/docker/daemon.json), C(~/.local/share/docker)) of the users in C(/etc/passwd). A file that does
    not parse is a warning; an explicit O(data_root) still works.
"""
