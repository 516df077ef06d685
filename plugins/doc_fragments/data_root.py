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
      - The store is either the C(overlay2) graph driver's or the containerd image store (see O(store)). A
        data-root of another graph driver fails with a message naming what was found.
      - Set it once for all modules of this collection with C(module_defaults) and the
        C(group/strata.overlay2.storage) action group.
    type: path
    default: auto
  store:
    description:
      - Which image store the data-root uses. V(auto) tells them apart on disk, with the daemon up or down;
        C(image/overlay2/) means V(overlay2); containers whose C(config.v2.json) names the C(overlayfs)
        snapshotter, or dockerd's own containerd below the data-root, mean V(containerd).
      - V(containerd) is the containerd image store, the default of Docker Engine 29 and C(containerd-snapshotter)
        on earlier engines. Images are records in containerd's metadata database, layers are snapshots of its
        overlayfs snapshotter, compressed layers stay in its content store. It is read from those files, never
        written.
    type: str
    default: auto
    choices: [auto, overlay2, containerd]
  containerd_root:
    description:
      - The root directory of the containerd that holds the images of a containerd image store.
      - Unset, it is found among dockerd's own containerd (C(<data_root>/containerd/daemon)), the C(root) of
        C(/etc/containerd/config.toml), or C(/var/lib/containerd), whichever holds a snapshot for each of the
        data-root's containers.
      - Setting it implies O(store=containerd) unless the data-root holds an C(image/) directory.
    type: path
  namespace:
    description: The containerd namespace of the engine's images (C(dockerd --containerd-namespace)).
    type: str
    default: moby
notes:
  - Reads the store directly from disk; the Docker daemon may be running or stopped.
  - The daemons are found from C(/proc) (every C(dockerd) process, its command line, user and config file),
    C(/etc/docker/daemon.json), the C(ExecStart) of C(docker.service) and its drop-ins, and rootless layouts
    (C(~/.config/docker/daemon.json), C(~/.local/share/docker)) of the users in C(/etc/passwd). A file that does
    not parse is a warning; an explicit O(data_root) still works.
"""
