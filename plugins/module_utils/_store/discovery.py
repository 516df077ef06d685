# Copyright (c) strata.overlay2 contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# This module_utils is PRIVATE to the strata.overlay2 collection. It may change
# without notice; do not import it from other collections.

"""Where the Docker stores of a host are: every dockerd found, running or only configured, with its store.

Read-only, from the host itself:

- running dockerd processes (``/proc/<pid>/comm``): their command line, their user, and their config file
  (``--config-file``, else ``/etc/docker/daemon.json``), read through ``/proc/<pid>/root`` so that a daemon in
  a chroot or another mount namespace is read as it sees itself;
- when no root dockerd runs: ``/etc/docker/daemon.json`` and the ``ExecStart`` of ``docker.service`` (unit
  file and drop-ins);
- rootless daemons: a non-root dockerd process, and users whose ``~/.config/docker/daemon.json`` exists or
  whose ``~/.local/share/docker`` holds a store.

For each: data-root, exec-root, storage mode (overlay2 graph driver or containerd image store, with the
containerd root), userns-remap (the remapped root in use), and whether it runs. ``locate`` turns the modules'
``data_root`` option (a path, or ``auto``) into the store to read. Nothing here raises for what it reads: a
file that does not parse becomes a warning on the daemon it concerns.
"""

from __future__ import annotations

import errno
import glob
import json
import os
import pwd
import re
import shlex
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Optional, Tuple

AUTO = "auto"
DEFAULT_DATA_ROOT = "/var/lib/docker"
DEFAULT_CONFIG = "/etc/docker/daemon.json"
DEFAULT_EXEC_ROOT = "/var/run/docker"
SYSTEM_CONTAINERD_SOCKET = "/run/containerd/containerd.sock"
UNIT_PATHS = ("/etc/systemd/system/docker.service", "/run/systemd/system/docker.service",
              "/usr/lib/systemd/system/docker.service", "/lib/systemd/system/docker.service")
OVERLAY2 = "overlay2"
CONTAINERD = "containerd"
UNKNOWN = "unknown"
CONFIG_LIMIT = 1 << 20

# dockerd flags that take a value (``--flag value`` or ``--flag=value``); the others are switches
VALUE_FLAGS = {"--data-root": "data-root", "-g": "data-root", "--graph": "data-root",
               "--exec-root": "exec-root", "--config-file": "config-file", "--userns-remap": "userns-remap",
               "--containerd": "containerd", "--storage-driver": "storage-driver", "-s": "storage-driver",
               "--containerd-namespace": "containerd-namespace", "--pidfile": "pidfile", "-p": "pidfile",
               "--host": "host", "-H": "host"}


class DiscoveryError(Exception):
    """``data_root: auto`` cannot name one store (none found, or several), with the daemons it found."""

    def __init__(self, message: str, daemons: List["Daemon"]) -> None:
        super().__init__(message)
        self.daemons = daemons


@dataclass
class Daemon:
    source: str  # process | unit | config | default | rootless
    uid: int
    user: str
    data_root: str  # as the daemon sees it
    store_root: str  # the store to read, as this host sees it (data-root, or its <uid>.<gid>/ with userns-remap)
    pid: Optional[int] = None
    started_at: Optional[float] = None
    exec_root: Optional[str] = None
    config_file: Optional[str] = None
    storage: str = UNKNOWN  # overlay2 | containerd | unknown (or another graph driver's name)
    containerd: Optional[str] = None  # the --containerd address, when given
    containerd_root: Optional[str] = None
    userns_remap: Optional[str] = None
    rootless: bool = False
    own_namespace: bool = False  # runs in another mount namespace (a container): not the system daemon
    data_root_known: bool = True  # false when its daemon.json cannot be read and no flag names the data-root
    warnings: List[str] = field(default_factory=list)

    @property
    def running(self) -> bool:
        return self.pid is not None

    def as_dict(self) -> Dict[str, Any]:
        return {"source": self.source, "pid": self.pid, "running": self.running, "started_at": self.started_at,
                "uid": self.uid, "user": self.user, "data_root": self.data_root, "store_root": self.store_root,
                "store_exists": os.path.isdir(self.store_root),
                "exec_root": self.exec_root, "config_file": self.config_file, "storage": self.storage,
                "containerd": self.containerd, "containerd_root": self.containerd_root,
                "userns_remap": self.userns_remap, "rootless": self.rootless,
                "other_mount_namespace": self.own_namespace, "data_root_known": self.data_root_known,
                "warnings": list(self.warnings)}


# -- reading ---------------------------------------------------------------------------------------
def parse_flags(args: Iterable[str]) -> Tuple[Dict[str, str], List[str]]:
    """The flags of a dockerd command line this module cares about, by daemon.json name; and warnings."""
    found: Dict[str, str] = {}
    warnings: List[str] = []
    items = list(args)
    index = 0
    while index < len(items):
        arg = items[index]
        index += 1
        name, _sep, value = arg.partition("=")
        key = VALUE_FLAGS.get(name)
        if key is None:
            continue
        if not _sep:
            if index >= len(items):
                warnings.append("%s has no value on the command line" % name)
                break
            value = items[index]
            index += 1
        if key in found and key != "host":
            warnings.append("%s is given twice on the command line; the last one counts" % name)
        found[key] = value
    return found, warnings


def read_config(path: str) -> Tuple[Dict[str, Any], List[str]]:
    """A daemon.json: its settings (empty when absent), and a warning when it cannot be used."""
    try:
        with open(path, "rb") as handle:
            raw = handle.read(CONFIG_LIMIT + 1)
    except FileNotFoundError:
        return {}, []
    except OSError as exc:
        return {}, ["%s cannot be read: %s" % (path, exc.strerror or exc)]
    if len(raw) > CONFIG_LIMIT:
        return {}, ["%s is larger than %d bytes; not read" % (path, CONFIG_LIMIT)]
    try:
        config = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        return {}, ["%s is not valid JSON (%s); the daemon would not start with it" % (path, exc)]
    if not isinstance(config, dict):
        return {}, ["%s is not a JSON object" % path]
    return config, []


def unit_exec_start(root: str = "/") -> Tuple[Optional[List[str]], Optional[str], List[str]]:
    """The system daemon's command line as configured: (args, file, warnings).

    The ``ExecStart`` of docker.service (the last one wins, drop-ins included), with the variables of its
    ``EnvironmentFile`` expanded; on a host without the unit, ``dockerd $DOCKER_OPTS`` of /etc/default/docker
    (what Debian's init script runs).
    """
    files: List[str] = []
    for path in UNIT_PATHS:
        host_path = _under(root, path)
        if os.path.isfile(host_path):
            files.append(host_path)
            files.extend(sorted(glob.glob(_under(root, path + ".d/*.conf"))))
            break
    command: Optional[str] = None
    source = None
    environment: Dict[str, str] = {}
    warnings: List[str] = []
    for path in files:
        try:
            with open(path, encoding="utf-8", errors="replace") as handle:
                text = handle.read(CONFIG_LIMIT)
        except OSError as exc:
            warnings.append("%s cannot be read: %s" % (path, exc.strerror or exc))
            continue
        for line in text.replace("\\\n", " ").splitlines():
            match = re.match(r"\s*(ExecStart|EnvironmentFile)\s*=\s*(.*)$", line)
            if not match:
                continue
            key, value = match.group(1), match.group(2).strip()
            if key == "EnvironmentFile":
                environment.update(read_environment(_under(root, value.lstrip("-")), warnings))
            elif not value:
                command = None  # an empty ExecStart= resets the list (drop-ins do this before their own)
            else:
                command, source = value.lstrip("-@:+!"), path
    if command is None and not files:
        defaults = _under(root, "/etc/default/docker")
        environment = read_environment(defaults, warnings)
        if "DOCKER_OPTS" in environment:
            command, source = "/usr/sbin/dockerd $DOCKER_OPTS", defaults
    if command is None:
        return None, source, warnings
    try:
        args = shlex.split(re.sub(r"\$\{?(\w+)\}?", lambda m: environment.get(m.group(1), ""), command))
    except ValueError as exc:
        warnings.append("%s: the daemon's command line cannot be split (%s): %s" % (source, exc, command[:120]))
        return None, source, warnings
    return args, source, warnings


def read_environment(path: str, warnings: List[str]) -> Dict[str, str]:
    """KEY=VALUE lines of an environment file (quotes removed); absent is empty."""
    found: Dict[str, str] = {}
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            lines = handle.read(CONFIG_LIMIT).splitlines()
    except FileNotFoundError:
        return found
    except OSError as exc:
        warnings.append("%s cannot be read: %s" % (path, exc.strerror or exc))
        return found
    for line in lines:
        match = re.match(r"\s*(?:export\s+)?([A-Za-z_]\w*)=(.*)$", line)
        if match and not line.lstrip().startswith("#"):
            value = match.group(2).strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
                value = value[1:-1]
            found[match.group(1)] = value
    return found


def _under(root: str, path: str) -> str:
    return path if root in ("", "/") else os.path.join(root, path.lstrip("/"))


def _user(uid: int) -> Tuple[str, str]:
    """(name, home) of a uid, or its number and an empty home."""
    try:
        entry = pwd.getpwuid(uid)
        return entry.pw_name, entry.pw_dir
    except KeyError:
        return str(uid), ""


def _uid_of(pid: int) -> int:
    with open("/proc/%d/status" % pid, encoding="utf-8", errors="replace") as handle:
        for line in handle:
            if line.startswith("Uid:"):
                return int(line.split()[1])
    raise OSError("no Uid in /proc/%d/status" % pid)


def _environ(pid: int) -> Dict[str, str]:
    try:
        with open("/proc/%d/environ" % pid, "rb") as handle:
            pairs = handle.read(CONFIG_LIMIT).split(b"\0")
    except OSError:
        return {}
    found = {}
    for pair in pairs:
        key, sep, value = pair.decode("utf-8", "replace").partition("=")
        if sep:
            found[key] = value
    return found


def dockerd_pids() -> List[int]:
    return _comm_pids("dockerd")


def _mount_namespace(pid: Any) -> str:
    try:
        return os.readlink("/proc/%s/ns/mnt" % pid)
    except OSError:
        return ""


def process_root(pid: int) -> str:
    """The daemon's root as this host sees it ("/" unless it runs in a chroot)."""
    try:
        return os.readlink("/proc/%d/root" % pid)
    except OSError:
        return "/"


# -- building a daemon -----------------------------------------------------------------------------
def describe(source: str, uid: int, flags: Dict[str, str], config: Dict[str, Any], warnings: List[str],
             root: str = "/", home: str = "", environ: Optional[Dict[str, str]] = None,
             config_file: Optional[str] = None, config_readable: bool = True) -> Daemon:
    """A daemon from its flags and daemon.json; ``root`` is where its file system is on this host.

    With a daemon.json that cannot be read and no ``--data-root``, the data-root is the default with
    ``data_root_known`` false: ``auto`` then refuses to guess."""
    user, user_home = _user(uid)
    home = home or user_home
    rootless = uid != 0
    for key in ("data-root", "exec-root", "userns-remap", "containerd", "storage-driver"):
        if key in flags and key in config:
            warnings.append("%s is set both on the command line and in %s; dockerd refuses to start that way"
                            % (key, config_file or "daemon.json"))
    data_root = flags.get("data-root") or _text(config.get("data-root") or config.get("graph"))
    if not data_root:
        data_root = _rootless_data_root(home, environ) if rootless else DEFAULT_DATA_ROOT
    if not os.path.isabs(data_root):
        warnings.append("data-root %r is not an absolute path; dockerd refuses it" % data_root)
    elif os.path.islink(_under(root, data_root)):
        warnings.append("data-root %s is a symlink (to %s); the store is read where it points, as dockerd does"
                        % (data_root, os.path.realpath(_under(root, data_root))))
    daemon = Daemon(source=source, uid=uid, user=user, data_root=data_root, store_root=_under(root, data_root),
                    exec_root=flags.get("exec-root") or _text(config.get("exec-root")) or None,
                    config_file=config_file, rootless=rootless, warnings=warnings,
                    data_root_known=config_readable or "data-root" in flags)
    remap = flags.get("userns-remap") or _text(config.get("userns-remap"))
    if remap:
        daemon.userns_remap = remap
        daemon.store_root = _remapped_root(daemon, remap, root)
    daemon.containerd = flags.get("containerd") or _text(config.get("containerd")) or None
    daemon.storage = _storage(daemon, flags, config)
    if daemon.storage == CONTAINERD:
        daemon.containerd_root = _containerd_root(daemon, root)
    return daemon


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _rootless_data_root(home: str, environ: Optional[Dict[str, str]]) -> str:
    data_home = (environ or {}).get("XDG_DATA_HOME") or os.path.join(home or "/", ".local", "share")
    return os.path.join(data_home, "docker")


def _subordinate(path: str, name: str) -> Optional[int]:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                parts = line.strip().split(":")
                if len(parts) == 3 and parts[0] == name and parts[1].isdigit():
                    return int(parts[1])
    except OSError:
        return None
    return None


def _remapped_root(daemon: Daemon, remap: str, root: str) -> str:
    """``<data-root>/<uid>.<gid>``: the first subordinate ids of the remap user and group."""
    user, _sep, group = remap.partition(":")
    if user == "default":
        user, group = "dockremap", "dockremap"
    group = group or user
    uid = int(user) if user.isdigit() else _subordinate(_under(root, "/etc/subuid"), user)
    gid = int(group) if group.isdigit() else _subordinate(_under(root, "/etc/subgid"), group)
    base = _under(root, daemon.data_root)
    if uid is not None and gid is not None:
        return os.path.join(base, "%d.%d" % (uid, gid))
    candidates = sorted(name for name in _listdir(base) if re.match(r"\A\d+\.\d+\Z", name))
    if len(candidates) == 1:
        daemon.warnings.append("userns-remap %s: no subordinate ids found; using the one remapped root there, %s"
                               % (remap, candidates[0]))
        return os.path.join(base, candidates[0])
    daemon.warnings.append("userns-remap %s: the remapped root cannot be told (subordinate ids not found, %d "
                           "candidates under %s)" % (remap, len(candidates), base))
    return base


def _listdir(path: str) -> List[str]:
    try:
        return os.listdir(path)
    except OSError:
        return []


def _storage(daemon: Daemon, flags: Dict[str, str], config: Dict[str, Any]) -> str:
    features = config.get("features") if isinstance(config.get("features"), dict) else {}
    snapshotter = features.get("containerd-snapshotter")
    if snapshotter is True:
        return CONTAINERD
    driver = flags.get("storage-driver") or _text(config.get("storage-driver"))
    if driver and driver != "overlayfs":
        return driver
    if os.path.isdir(os.path.join(daemon.store_root, "image", OVERLAY2)):
        return OVERLAY2
    if os.path.isdir(os.path.join(daemon.store_root, "containerd", "daemon")) or driver == "overlayfs":
        return CONTAINERD
    return OVERLAY2 if snapshotter is False else UNKNOWN


def _containerd_root(daemon: Daemon, root: str) -> str:
    if not daemon.containerd and not os.path.exists(_under(root, SYSTEM_CONTAINERD_SOCKET)):
        return os.path.join(daemon.store_root, "containerd", "daemon")
    try:
        with open(_under(root, "/etc/containerd/config.toml"), encoding="utf-8", errors="replace") as handle:
            match = re.search(r'^\s*root\s*=\s*"([^"]+)"', handle.read(CONFIG_LIMIT), re.M)
            if match:
                return _under(root, match.group(1))
    except OSError:
        pass
    return _under(root, "/var/lib/containerd")


# -- the host --------------------------------------------------------------------------------------
def boot_time() -> float:
    with open("/proc/stat", encoding="ascii") as handle:
        for line in handle:
            if line.startswith("btime "):
                return float(line.split()[1])
    raise OSError(errno.ENOENT, "no btime in /proc/stat")


def start_time(pid: int) -> float:
    """When a process started (epoch seconds), to a clock tick past the boot time's whole second."""
    with open("/proc/%d/stat" % pid, encoding="utf-8", errors="replace") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return boot_time() + int(fields[19]) / os.sysconf("SC_CLK_TCK")


def running_dockerds() -> List[Daemon]:
    """Every running dockerd, as it runs."""
    daemons = []
    for pid in dockerd_pids():
        try:
            with open("/proc/%d/cmdline" % pid, "rb") as handle:
                args = [a.decode("utf-8", "replace") for a in handle.read(CONFIG_LIMIT).split(b"\0") if a]
            uid = _uid_of(pid)
            started = start_time(pid)
        except (OSError, ValueError, IndexError):
            continue  # it ended while being read
        flags, warnings = parse_flags(args[1:])
        root = process_root(pid)
        own_namespace = _mount_namespace(pid) != _mount_namespace("self")
        if own_namespace and root == "/":  # a container's daemon: its files are reached through its root link
            root = "/proc/%d/root" % pid
        environ = _environ(pid) if uid != 0 else {}
        home = _user(uid)[1]
        if "config-file" in flags:
            config_file = flags["config-file"]
        elif uid != 0:
            config_file = os.path.join(environ.get("XDG_CONFIG_HOME") or os.path.join(home or "/", ".config"),
                                       "docker", "daemon.json")
        else:
            config_file = DEFAULT_CONFIG
        config, config_warnings = read_config("/proc/%d/root%s" % (pid, config_file))
        daemon = describe("process", uid, flags, config, warnings + config_warnings, root, home, environ,
                          config_file, config_readable=not config_warnings)
        daemon.pid, daemon.started_at, daemon.own_namespace = pid, started, own_namespace
        daemons.append(daemon)
    return daemons


def configured_daemon(root: str = "/") -> Optional[Daemon]:
    """The system daemon as configured (unit file and daemon.json), for when it does not run; ``root`` is
    where the system's files are (another root file system, mounted here)."""
    command, unit, warnings = unit_exec_start(root)
    flags, flag_warnings = parse_flags(command[1:] if command else [])
    config_file = flags.get("config-file", DEFAULT_CONFIG)
    config, config_warnings = read_config(_under(root, config_file))
    if unit is None and not os.path.exists(_under(root, config_file)) and not os.path.isdir(
            _under(root, DEFAULT_DATA_ROOT)):
        return None
    if unit and ("data-root" in flags or not config):
        source = "unit"
    else:
        source = "config" if os.path.exists(_under(root, config_file)) else "default"
    return describe(source, 0, flags, config, warnings + flag_warnings + config_warnings, root,
                    config_file=config_file, config_readable=not config_warnings)


def rootless_layouts(known: Iterable[str], users: Optional[Iterable[Any]] = None) -> List[Daemon]:
    """Rootless stores of users (``pwd`` entries) that no running daemon accounts for: a config or a store."""
    found = []
    seen = set(known)
    for entry in pwd.getpwall() if users is None else users:
        if entry.pw_uid == 0 or not entry.pw_dir or not os.path.isdir(entry.pw_dir) or entry.pw_dir == "/":
            continue
        config_file = os.path.join(entry.pw_dir, ".config", "docker", "daemon.json")
        data_root = os.path.join(entry.pw_dir, ".local", "share", "docker")
        holds_store = any(os.path.isdir(os.path.join(data_root, part)) for part in ("image", "containers"))
        if not os.path.isfile(config_file) and not holds_store:
            continue
        config, warnings = read_config(config_file)
        daemon = describe("rootless", entry.pw_uid, {}, config, warnings, "/", entry.pw_dir, None, config_file)
        if os.path.realpath(daemon.store_root) not in seen:
            found.append(daemon)
    return found


def discover() -> List[Daemon]:
    """Every daemon of this host: the running ones, the system one as configured when none of root's runs,
    and rootless layouts of users without a running daemon."""
    daemons = running_dockerds()
    if not any(d.uid == 0 for d in daemons):
        configured = configured_daemon()
        if configured is not None:
            daemons.append(configured)
    daemons.extend(rootless_layouts(os.path.realpath(d.store_root) for d in daemons))
    return daemons


def system_store(daemons: List[Daemon]) -> Daemon:
    """The system daemon's store: the running root daemon, else the configured one; DiscoveryError when
    there is none or several."""
    running = [d for d in daemons if d.uid == 0 and d.running and not d.own_namespace]
    stores: Dict[str, Daemon] = {}
    for daemon in running:
        stores.setdefault(os.path.realpath(daemon.store_root), daemon)
    if len(stores) > 1:
        raise DiscoveryError("data_root: auto is ambiguous: %d dockerd run as root with different stores (%s); set "
                             "data_root to the one to read" % (len(stores), "; ".join(
                                 "pid %s: %s" % (d.pid, d.store_root) for d in stores.values())), daemons)
    if stores:
        chosen = next(iter(stores.values()))
        if not chosen.data_root_known:
            raise DiscoveryError("data_root: auto cannot tell the store of dockerd pid %s: %s; set data_root"
                                 % (chosen.pid, "; ".join(chosen.warnings)), daemons)
        return chosen
    configured = [d for d in daemons if d.uid == 0 and not d.running and d.data_root_known]
    for daemon in configured:
        if os.path.isdir(daemon.store_root):
            return daemon
    raise DiscoveryError("data_root: auto found no Docker store: no dockerd runs as root, and neither its "
                         "configuration (docker.service, %s) nor %s names a data-root that exists; set data_root"
                         % (DEFAULT_CONFIG, DEFAULT_DATA_ROOT), daemons)


def owners(store_root: str, daemons: List[Daemon]) -> List[Daemon]:
    """The running daemons whose store is ``store_root`` (matched by inode: across mount namespaces too)."""
    try:
        target = os.stat(store_root)
    except OSError:
        return []
    found = []
    for daemon in daemons:
        if not daemon.running:
            continue
        candidates = [daemon.store_root]
        inner = daemon.store_root[len(process_root(daemon.pid)):] if daemon.pid else ""
        if daemon.pid and inner.startswith("/"):
            candidates.append("/proc/%d/root%s" % (daemon.pid, inner))
        for path in candidates:
            try:
                info = os.stat(path)
            except OSError:
                continue
            if (info.st_dev, info.st_ino) == (target.st_dev, target.st_ino):
                found.append(daemon)
                break
    return found


@dataclass
class Location:
    """The store a module reads, the daemon it belongs to (when known) and every daemon found."""

    data_root: str
    daemon: Optional[Daemon]
    daemons: List[Daemon]


def locate(data_root: Optional[str]) -> Location:
    """``data_root`` as the modules take it: a path (it wins; its daemon is looked up), or ``auto``."""
    daemons = discover()
    if data_root and data_root != AUTO:
        found = owners(data_root, daemons)
        return Location(data_root, found[0] if found else None, daemons)
    chosen = system_store(daemons)
    return Location(chosen.store_root, chosen, daemons)


# -- containerd ------------------------------------------------------------------------------------
def _comm_pids(command: str) -> List[int]:
    pids = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/comm" % name, encoding="utf-8", errors="replace") as handle:
                if handle.read().strip() == command:
                    pids.append(int(name))
        except OSError:
            continue
    return sorted(pids)


def containerd_root_of_process(pid: int) -> Optional[str]:
    """The root directory a running containerd uses, as this host sees it (``--root``, else its config's
    ``root``, else the default), or None when its command line cannot be read."""
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as handle:
            args = [a.decode("utf-8", "replace") for a in handle.read(CONFIG_LIMIT).split(b"\0") if a]
    except OSError:
        return None
    root = process_root(pid)
    flags: Dict[str, str] = {}
    for index, arg in enumerate(args[1:], 1):
        name, has_value, value = arg.lstrip("-").partition("=")
        if not has_value and index + 1 < len(args):
            value = args[index + 1]
        if name in ("root", "config", "c") and value:
            flags.setdefault("config" if name == "c" else name, value)
    if "root" in flags:
        return _under(root, flags["root"])
    try:
        with open(_under(root, flags.get("config", "/etc/containerd/config.toml")), encoding="utf-8",
                  errors="replace") as handle:
            match = re.search(r'^\s*root\s*=\s*["\']([^"\']+)["\']', handle.read(CONFIG_LIMIT), re.M)
            if match:
                return _under(root, match.group(1))
    except OSError:
        pass
    return _under(root, "/var/lib/containerd")


def running_containerds(containerd_root: str) -> List[Tuple[int, float]]:
    """(pid, start time) of every running containerd whose root is ``containerd_root`` (by inode)."""
    try:
        wanted = os.stat(containerd_root)
    except OSError:
        return []
    found = []
    for pid in _comm_pids("containerd"):
        path = containerd_root_of_process(pid)
        try:
            info = os.stat(path) if path else None
            if info is not None and (info.st_dev, info.st_ino) == (wanted.st_dev, wanted.st_ino):
                found.append((pid, start_time(pid)))
        except OSError:
            continue
    return found
