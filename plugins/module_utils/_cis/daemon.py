# Copyright (c) strata.overlay2 contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# This module_utils is PRIVATE to the strata.overlay2 collection. It may change
# without notice; do not import it from other collections.

"""CIS Docker Benchmark sections 1 to 3, from the host's files: the data-root's file system, the audit rules,
the daemon's settings (``daemon.json`` and its command line: the running dockerd's ``/proc/<pid>/cmdline``, or
the ``ExecStart`` of docker.service when it does not run) and the ownership and modes of its files.

``host_root`` is where the host's file system is: ``/``, or another host's disk mounted here (then nothing is
read from ``/proc``). Nothing here raises for what it reads; what cannot be read is said in the evidence.
"""

from __future__ import annotations

import glob
import os
import stat
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple

from ansible_collections.strata.overlay2.plugins.module_utils._cis.catalogue import (
    FAIL,
    NOT_APPLICABLE,
    PASS,
    Evidence,
    Verdict,
    manual,
)
from ansible_collections.strata.overlay2.plugins.module_utils._store.discovery import (
    CONFIG_LIMIT,
    DEFAULT_CONFIG,
    SYSTEM_CONTAINERD_SOCKET,
    UNIT_PATHS,
    Daemon,
    _under,
    configured_daemon,
    read_config,
    unit_exec_start,
)

DOCKER_SOCKET = "/var/run/docker.sock"
AUDIT_RULES = ("/etc/audit/audit.rules", "/etc/audit/rules.d/*.rules")
NOT_REMOTE_LOG_DRIVERS = ("json-file", "local", "none", "journald")

# dockerd flags (long and short) by their daemon.json key, and how they are given: a switch (``--x`` or
# ``--x=false``), one value, or a value that may repeat (a list)
SWITCH, VALUE, LIST = "switch", "value", "list"
FLAGS = {
    "--icc": ("icc", SWITCH), "--iptables": ("iptables", SWITCH), "--live-restore": ("live-restore", SWITCH),
    "--userland-proxy": ("userland-proxy", SWITCH), "--no-new-privileges": ("no-new-privileges", SWITCH),
    "--experimental": ("experimental", SWITCH), "--tls": ("tls", SWITCH), "--tlsverify": ("tlsverify", SWITCH),
    "--selinux-enabled": ("selinux-enabled", SWITCH),
    "--log-level": ("log-level", VALUE), "-l": ("log-level", VALUE),
    "--storage-driver": ("storage-driver", VALUE), "-s": ("storage-driver", VALUE),
    "--tlscacert": ("tlscacert", VALUE), "--tlscert": ("tlscert", VALUE), "--tlskey": ("tlskey", VALUE),
    "--userns-remap": ("userns-remap", VALUE), "--cgroup-parent": ("cgroup-parent", VALUE),
    "--log-driver": ("log-driver", VALUE), "--seccomp-profile": ("seccomp-profile", VALUE),
    "--config-file": ("config-file", VALUE),
    "--insecure-registry": ("insecure-registries", LIST), "--host": ("hosts", LIST), "-H": ("hosts", LIST),
    "--default-ulimit": ("default-ulimits", LIST), "--storage-opt": ("storage-opts", LIST),
    "--authorization-plugin": ("authorization-plugins", LIST),
}


def parse_command_line(args: List[str]) -> Dict[str, Any]:
    """dockerd's flags by daemon.json key (switches as booleans, repeated flags as lists)."""
    found: Dict[str, Any] = {}
    index = 0
    while index < len(args):
        name, sep, value = args[index].partition("=")
        index += 1
        known = FLAGS.get(name)
        if known is None:
            continue
        key, kind = known
        if kind == SWITCH:
            found[key] = value.lower() not in ("false", "0") if sep else True
            continue
        if not sep:
            if index >= len(args):
                break
            value = args[index]
            index += 1
        if kind == LIST:
            found.setdefault(key, []).append(value)
        else:
            found[key] = value
    return found


@dataclass
class Setting:
    value: Any
    source: str  # "command line" or the daemon.json path; "default" when neither sets it

    def describe(self, key: str) -> str:
        return "%s = %s (%s)" % (key, _show(self.value), self.source)


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[%s]" % ", ".join(str(v) for v in value)
    if isinstance(value, dict):
        return "{%s}" % ", ".join("%s: %s" % (k, _show(v)) for k, v in sorted(value.items()))
    return str(value)


@dataclass
class DaemonSettings:
    """What the daemon runs with: its command line wins over daemon.json, as dockerd refuses both at once."""

    command_line: Dict[str, Any]
    config: Dict[str, Any]
    config_path: str
    origin: str  # where the command line came from: "/proc/<pid>/cmdline", a unit file, or "none"
    problems: List[str] = field(default_factory=list)  # what could not be read
    unknown: Optional[str] = None  # why the settings of the store's daemon are not known, when they are not
    unreadable: Optional[str] = None  # why its daemon.json cannot be used (invalid JSON, too large, unreadable)

    def get(self, key: str, default: Any = None) -> Setting:
        if key in self.command_line:
            return Setting(self.command_line[key], "command line")
        if key in self.config:
            return Setting(self.config[key], self.config_path)
        return Setting(default, "default")


def read_settings(daemon: Optional[Daemon], host_root: str, data_root: str) -> DaemonSettings:
    """The settings of the daemon that owns the store: the running one's, else docker.service's when the
    system daemon's data-root is this store; otherwise they are unknown (and section 2 is manual)."""
    if daemon is None:
        configured = configured_daemon(host_root)
        if configured is None or os.path.realpath(configured.store_root) != os.path.realpath(data_root):
            why = "no dockerd runs on %s and the system daemon's configuration names %s" % (
                data_root, configured.store_root if configured else "no store")
            return DaemonSettings({}, {}, DEFAULT_CONFIG, "none", [why], unknown=why)
        daemon = configured
    problems: List[str] = []
    args: Optional[List[str]] = None
    origin = "none"
    if daemon is not None and daemon.pid is not None and host_root in ("", "/"):
        try:
            with open("/proc/%d/cmdline" % daemon.pid, "rb") as handle:
                raw = handle.read(CONFIG_LIMIT)
            args = [a.decode("utf-8", "replace") for a in raw.split(b"\0") if a]
            origin = "/proc/%d/cmdline" % daemon.pid
        except OSError as exc:
            problems.append("the command line of dockerd (pid %d) cannot be read: %s" % (daemon.pid, exc.strerror))
    if args is None:
        args, unit, warnings = unit_exec_start(host_root)
        problems.extend(warnings)
        origin = unit or "none"
    command_line = parse_command_line(args[1:] if args else [])
    config_file = str(command_line.get("config-file") or daemon.config_file or DEFAULT_CONFIG)
    if daemon is not None and daemon.pid is not None and host_root in ("", "/"):
        config_path = "/proc/%d/root%s" % (daemon.pid, config_file)
    else:
        config_path = _under(host_root, config_file)
    config, warnings = read_config(config_path)
    problems.extend(warnings)
    return DaemonSettings(command_line, config, config_file, origin, problems,
                          unreadable=warnings[0] if warnings else None)


@dataclass
class Host:
    """The inputs of sections 1 to 3."""

    host_root: str
    data_root: str  # as this host sees it
    daemon: Optional[Daemon]
    settings: DaemonSettings
    groups: Dict[str, Tuple[int, List[str]]]  # name -> (gid, members) from the host's /etc/group

    def path(self, path: str) -> str:
        return _under(self.host_root, path)

    @property
    def live(self) -> bool:
        """Whether this is the running host (``/proc`` and the mount table are its own)."""
        return self.host_root in ("", "/")


def read_groups(host_root: str) -> Dict[str, Tuple[int, List[str]]]:
    groups: Dict[str, Tuple[int, List[str]]] = {}
    try:
        with open(_under(host_root, "/etc/group"), encoding="utf-8", errors="replace") as handle:
            for line in handle.read(CONFIG_LIMIT).splitlines():
                parts = line.split(":")
                if len(parts) == 4 and parts[2].isdigit():
                    groups[parts[0]] = (int(parts[2]), [m for m in parts[3].split(",") if m])
    except OSError:
        pass
    return groups


# -- section 1 ---------------------------------------------------------------------------------------------
def check_separate_partition(host: Host) -> Verdict:
    if not host.live:
        return manual("the mount table of the host whose disk is read is not known here")
    target = os.path.realpath(host.data_root)
    best, fstype = "/", "?"
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                fields = line.split()
                if len(fields) < 10 or "-" not in fields:
                    continue
                point = fields[4].replace("\\040", " ")
                if (target == point or target.startswith(point.rstrip("/") + "/")) and len(point) >= len(best):
                    best, fstype = point, fields[fields.index("-") + 1]
    except OSError as exc:
        return manual("/proc/self/mountinfo cannot be read: %s" % exc.strerror)
    evidence = Evidence(host.data_root, "on the file system mounted at %s (%s)" % (best, fstype),
                        "root_file_system" if best == "/" else "own_file_system")
    return Verdict.of([evidence] if best == "/" else [], [evidence])


def check_docker_group(host: Host) -> Verdict:
    members = host.groups.get("docker", (0, []))[1]
    return manual("the members of the docker group control the daemon; confirm that each is trusted",
                  [Evidence("docker group", "members: %s" % (", ".join(members) or "none"), "docker_group",
                            failing=False)])


def audit_rules(host: Host) -> Tuple[Optional[List[str]], List[str]]:
    """The audit rule lines of the host (None when it has no rule files), and the files read."""
    lines: List[str] = []
    files: List[str] = []
    for pattern in AUDIT_RULES:
        for path in sorted(glob.glob(host.path(pattern))):
            try:
                with open(path, encoding="utf-8", errors="replace") as handle:
                    lines.extend(handle.read(CONFIG_LIMIT).splitlines())
                files.append(path)
            except OSError:
                continue
    return (lines if files else None), files


def audited(lines: List[str], path: str) -> bool:
    for line in lines:
        words = line.split()
        if "-w" in words and words.index("-w") + 1 < len(words) and words[words.index("-w") + 1] == path:
            return True
        if any(word in ("path=" + path, "dir=" + path) for word in words):
            return True
    return False


def audit_check(paths: Callable[[Host], List[str]]) -> Callable[[Host], Verdict]:
    def check(host: Host) -> Verdict:
        candidates = [p for p in paths(host) if os.path.lexists(host.path(p))]
        if not candidates:
            return Verdict(NOT_APPLICABLE, [Evidence(" or ".join(paths(host)), "absent", "absent", failing=False)])
        lines, files = audit_rules(host)
        if lines is None:
            return Verdict(FAIL, [Evidence(candidates[0], "no audit rules on this host (%s)" % ", ".join(
                host.path(p) for p in AUDIT_RULES), "no_audit_rules")])
        evidence = [Evidence(path, "watched by an audit rule in %s" % ", ".join(files) if audited(lines, path)
                             else "no audit rule watches it (%s)" % ", ".join(files),
                             "audited" if audited(lines, path) else "not_audited") for path in candidates]
        return Verdict.of([e for e in evidence if e.code == "not_audited"], evidence)
    return check


def dockerd_binary(_host: Host) -> List[str]:
    return ["/usr/bin/dockerd", "/usr/sbin/dockerd"]


def unit_file(name: str) -> Callable[[Host], List[str]]:
    def paths(_host: Host) -> List[str]:
        return [p.replace("docker.service", name) for p in UNIT_PATHS]
    return paths


def fixed(*paths: str) -> Callable[[Host], List[str]]:
    return lambda _host: list(paths)


def found_unit(host: Host, name: str) -> List[str]:
    """The unit file systemd uses: the first of its unit directories that has it."""
    for path in unit_file(name)(host):
        if os.path.lexists(host.path(path)):
            return [path]
    return []


# -- section 2 ---------------------------------------------------------------------------------------------
def setting_check(key: str, good: Callable[[Any], bool], code: str, default: Any = None,
                  absent: Optional[str] = None) -> Callable[[Host], Verdict]:
    """A verdict on one daemon setting: pass when ``good(value)``; ``absent`` is the status when the daemon
    leaves it at its default (None: judge the default too)."""
    def check(host: Host) -> Verdict:
        if host.settings.unknown or host.settings.unreadable:
            return unknown_settings(host)
        setting = host.settings.get(key, default)
        evidence = Evidence("dockerd", setting.describe(key), code)
        if setting.source == "default" and absent is not None:
            return Verdict(absent, [evidence])
        return Verdict.of([] if good(setting.value) else [evidence], [evidence])
    return check


def unknown_settings(host: Host) -> Verdict:
    """Where the daemon's settings cannot be judged: not known at all (``manual``), or its daemon.json cannot
    be used (``fail``: the daemon would refuse to start with it, and nothing in it can be taken as set)."""
    if host.settings.unreadable:
        return Verdict(FAIL, [Evidence(host.settings.config_path, host.settings.unreadable, "unreadable")])
    return manual("the daemon's settings are not known: %s" % host.settings.unknown)


def settings_known(check: Callable[[Host], Verdict]) -> Callable[[Host], Verdict]:
    """A check of the daemon's settings, or the verdict of ``unknown_settings`` where they cannot be judged."""
    def guarded(host: Host) -> Verdict:
        return unknown_settings(host) if host.settings.unknown or host.settings.unreadable else check(host)
    return guarded


def truthy(value: Any) -> bool:
    return value is True or str(value).lower() == "true"


def check_rootless(host: Host) -> Verdict:
    if host.daemon is not None and host.daemon.rootless:
        return Verdict(PASS, [Evidence("dockerd", "runs as %s (uid %d)" % (host.daemon.user, host.daemon.uid),
                                       "rootless", failing=False)])
    return manual("dockerd runs as root; rootless mode has limits that a person weighs")


def check_aufs(host: Host) -> Verdict:
    setting = host.settings.get("storage-driver", "overlay2")
    evidence = Evidence("dockerd", setting.describe("storage-driver"), "storage_driver")
    return Verdict.of([evidence] if str(setting.value) == "aufs" else [], [evidence])


def check_tls(host: Host) -> Verdict:
    hosts = host.settings.get("hosts", [])
    tcp = [h for h in (hosts.value or []) if not str(h).startswith(("unix://", "fd://"))]
    if not tcp:
        return Verdict(NOT_APPLICABLE, [Evidence("dockerd", "listens on no TCP socket (%s)" % hosts.describe(
            "hosts"), "no_tcp", failing=False)])
    verify = host.settings.get("tlsverify", False)
    evidence = Evidence("dockerd", "listens on %s; %s" % (", ".join(tcp), verify.describe("tlsverify")),
                        "tcp_with_tls_verify" if truthy(verify.value) else "tcp_without_tls_verify")
    return Verdict.of([] if truthy(verify.value) else [evidence], [evidence])


def check_seccomp(host: Host) -> Verdict:
    setting = host.settings.get("seccomp-profile", "builtin")
    evidence = Evidence("dockerd", setting.describe("seccomp-profile"), "seccomp_profile")
    return Verdict.of([evidence] if str(setting.value) == "unconfined" else [], [evidence])


def check_cgroup_parent(host: Host) -> Verdict:
    setting = host.settings.get("cgroup-parent")
    if setting.value:
        return manual("a default cgroup parent is set; confirm it is intended",
                      [Evidence("dockerd", setting.describe("cgroup-parent"), "cgroup_parent", failing=False)])
    return Verdict(PASS, [Evidence("dockerd", "the default cgroup is used", "cgroup_parent", failing=False)])


# -- section 3 ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FileRule:
    owner: str  # "root:root" or "root:docker"
    mode: int  # the most a mode may allow


def _stat(host: Host, path: str) -> Optional[os.stat_result]:
    """The status of a host path, a symlink followed inside ``host_root`` only (never out of it)."""
    current = path
    for _hop in range(8):
        try:
            info = os.lstat(host.path(current))
        except OSError:
            return None
        if not stat.S_ISLNK(info.st_mode):
            return info
        target = os.readlink(host.path(current))
        current = target if target.startswith("/") else os.path.join(os.path.dirname(current), target)
    return None


def file_check(paths: Callable[[Host], List[str]], rule: FileRule, ownership: bool) -> Callable[[Host], Verdict]:
    def check(host: Host) -> Verdict:
        evidence = []
        for path in paths(host):
            info = _stat(host, path)
            if info is None:
                continue
            evidence.append(_judge(host, path, info, rule, ownership))
        if not evidence:
            return Verdict(NOT_APPLICABLE, [Evidence(" or ".join(paths(host)) or "(none configured)", "absent",
                                                     "absent", failing=False)])
        return Verdict.of([e for e in evidence if e.code.startswith("wrong_")], evidence)
    return check


def _judge(host: Host, path: str, info: os.stat_result, rule: FileRule, ownership: bool) -> Evidence:
    if ownership:
        wanted_user, wanted_group = rule.owner.split(":")
        wanted_gid = 0 if wanted_group == "root" else host.groups.get(wanted_group, (None, []))[0]
        actual = "%s:%s" % ("root" if info.st_uid == 0 else info.st_uid, _name_of_gid(host, info.st_gid))
        good = info.st_uid == 0 and (info.st_gid == wanted_gid or (wanted_gid is None and info.st_gid == 0))
        detail = "owned by %s (uid %d, gid %d); wanted %s" % (actual, info.st_uid, info.st_gid, rule.owner)
        return Evidence(path, detail, "owner_ok" if good else "wrong_owner")
    mode = stat.S_IMODE(info.st_mode)
    good = mode & ~rule.mode == 0
    return Evidence(path, "mode %04o; wanted %04o or more restrictive" % (mode, rule.mode),
                    "mode_ok" if good else "wrong_mode")


def _name_of_gid(host: Host, gid: int) -> str:
    for name, (number, _members) in host.groups.items():
        if number == gid:
            return name
    return str(gid)


def registry_certificates(host: Host) -> List[str]:
    found = []
    for path in sorted(glob.glob(host.path("/etc/docker/certs.d/*/*"))):
        found.append(path[len(host.host_root.rstrip("/")):] if not host.live else path)
    return found


def tls_file(key: str) -> Callable[[Host], List[str]]:
    def paths(host: Host) -> List[str]:
        value = host.settings.get(key).value
        return [str(value)] if value else []
    return paths


def docker_socket(host: Host) -> List[str]:
    sockets = [str(h)[len("unix://"):] for h in (host.settings.get("hosts", []).value or [])
               if str(h).startswith("unix://")]
    return sockets or [DOCKER_SOCKET]


def config_file(host: Host) -> List[str]:
    return [host.settings.config_path]


ROOT_644, ROOT_755, ROOT_444, ROOT_400 = (FileRule("root:root", 0o644), FileRule("root:root", 0o755),
                                          FileRule("root:root", 0o444), FileRule("root:root", 0o400))
SOCKET_DOCKER, SOCKET_ROOT = FileRule("root:docker", 0o660), FileRule("root:root", 0o660)


def _units(name: str) -> Callable[[Host], List[str]]:
    return lambda host: found_unit(host, name)


def _no_log_level_beyond_info(value: Any) -> bool:
    return value in (None, "", "info")


CHECKS: Dict[str, Callable[[Host], Verdict]] = {
    "1.1.1": check_separate_partition,
    "1.1.2": check_docker_group,
    "1.1.3": audit_check(dockerd_binary),
    "1.1.4": audit_check(fixed("/run/containerd")),
    "1.1.5": audit_check(lambda host: [host.daemon.data_root if host.daemon else "/var/lib/docker"]),
    "1.1.6": audit_check(fixed("/etc/docker")),
    "1.1.7": audit_check(_units("docker.service")),
    "1.1.8": audit_check(fixed(SYSTEM_CONTAINERD_SOCKET)),
    "1.1.9": audit_check(_units("docker.socket")),
    "1.1.10": audit_check(fixed("/etc/default/docker")),
    "1.1.11": audit_check(config_file),
    "1.1.12": audit_check(fixed("/etc/containerd/config.toml")),
    "1.1.13": audit_check(fixed("/etc/sysconfig/docker")),
    "1.1.14": audit_check(fixed("/usr/bin/containerd")),
    "1.1.15": audit_check(fixed("/usr/bin/containerd-shim")),
    "1.1.16": audit_check(fixed("/usr/bin/containerd-shim-runc-v1")),
    "1.1.17": audit_check(fixed("/usr/bin/containerd-shim-runc-v2")),
    "1.1.18": audit_check(fixed("/usr/bin/runc")),
    "2.1": check_rootless,
    "2.2": setting_check("icc", lambda v: not truthy(v) and v is not None, "icc", default=True),
    "2.3": setting_check("log-level", _no_log_level_beyond_info, "log_level", default="info"),
    "2.4": setting_check("iptables", lambda v: v is None or truthy(v), "iptables", default=True),
    "2.5": setting_check("insecure-registries", lambda v: not v, "insecure_registries", default=[]),
    "2.6": settings_known(check_aufs),
    "2.7": settings_known(check_tls),
    "2.8": setting_check("default-ulimits", bool, "default_ulimits", default={}),
    "2.9": setting_check("userns-remap", bool, "userns_remap", default=""),
    "2.10": settings_known(check_cgroup_parent),
    "2.11": setting_check("storage-opts", lambda v: not any("dm.basesize" in str(o) for o in (v or [])),
                          "storage_opts", default=[]),
    "2.12": setting_check("authorization-plugins", bool, "authorization_plugins", default=[]),
    "2.13": setting_check("log-driver", lambda v: str(v) not in NOT_REMOTE_LOG_DRIVERS, "log_driver",
                          default="json-file"),
    "2.14": setting_check("no-new-privileges", truthy, "no_new_privileges", default=False),
    "2.15": setting_check("live-restore", truthy, "live_restore", default=False),
    "2.16": setting_check("userland-proxy", lambda v: not truthy(v), "userland_proxy", default=True),
    "2.17": settings_known(check_seccomp),
    "2.18": setting_check("experimental", lambda v: not truthy(v), "experimental", default=False),
    "3.1": file_check(_units("docker.service"), ROOT_644, ownership=True),
    "3.2": file_check(_units("docker.service"), ROOT_644, ownership=False),
    "3.3": file_check(_units("docker.socket"), ROOT_644, ownership=True),
    "3.4": file_check(_units("docker.socket"), ROOT_644, ownership=False),
    "3.5": file_check(fixed("/etc/docker"), ROOT_755, ownership=True),
    "3.6": file_check(fixed("/etc/docker"), ROOT_755, ownership=False),
    "3.7": file_check(registry_certificates, ROOT_444, ownership=True),
    "3.8": file_check(registry_certificates, ROOT_444, ownership=False),
    "3.9": file_check(tls_file("tlscacert"), ROOT_444, ownership=True),
    "3.10": file_check(tls_file("tlscacert"), ROOT_444, ownership=False),
    "3.11": file_check(tls_file("tlscert"), ROOT_444, ownership=True),
    "3.12": file_check(tls_file("tlscert"), ROOT_444, ownership=False),
    "3.13": file_check(tls_file("tlskey"), ROOT_400, ownership=True),
    "3.14": file_check(tls_file("tlskey"), ROOT_400, ownership=False),
    "3.15": file_check(docker_socket, SOCKET_DOCKER, ownership=True),
    "3.16": file_check(docker_socket, SOCKET_DOCKER, ownership=False),
    "3.17": file_check(config_file, ROOT_644, ownership=True),
    "3.18": file_check(config_file, ROOT_644, ownership=False),
    "3.19": file_check(fixed("/etc/default/docker"), ROOT_644, ownership=True),
    "3.20": file_check(fixed("/etc/default/docker"), ROOT_644, ownership=False),
    "3.21": file_check(fixed("/etc/sysconfig/docker"), ROOT_644, ownership=False),
    "3.22": file_check(fixed("/etc/sysconfig/docker"), ROOT_644, ownership=True),
    "3.23": file_check(fixed(SYSTEM_CONTAINERD_SOCKET), SOCKET_ROOT, ownership=True),
    "3.24": file_check(fixed(SYSTEM_CONTAINERD_SOCKET), SOCKET_ROOT, ownership=False),
}

MANUAL_REASONS = {
    "1.2.1": "hardening of the host is judged against its own benchmark",
    "1.2.2": "whether the engine is the latest release is known to its vendor, not to its files",
}
