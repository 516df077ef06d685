# Copyright (c) strata.overlay2 contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# This module_utils is PRIVATE to the strata.overlay2 collection. It may change
# without notice; do not import it from other collections.

"""CIS Docker Benchmark section 5, per container, from ``containers/<id>/config.v2.json`` and
``hostconfig.json`` (the same files in both stores). A container only created, or stopped, counts as much
as a running one: its configuration is what it runs with when it starts. A file that cannot be read or
parsed is evidence that fails the control, naming the file, never a traceback.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Tuple

from ansible_collections.strata.overlay2.plugins.module_utils._cis.catalogue import (
    FAIL, NOT_APPLICABLE, PASS, Evidence, Verdict, manual)
from ansible_collections.strata.overlay2.plugins.module_utils._util.safefs import SafeDir, describe_os_error
from ansible_collections.strata.overlay2.plugins.module_utils._store.model import Store

CONFIG_LIMIT = 16 << 20
SENSITIVE_DIRS = ("/", "/boot", "/dev", "/etc", "/lib", "/proc", "/sys", "/usr")
DOCKER_SOCKETS = ("/var/run/docker.sock", "/run/docker.sock")


@dataclass
class ContainerFacts:
    id: str
    name: str
    config: Dict[str, Any]  # config.v2.json
    host: Dict[str, Any]  # hostconfig.json
    problem: Optional[str]  # what could not be read

    @property
    def target(self) -> str:
        return self.name or self.id[:12]

    @property
    def names(self) -> Tuple[str, ...]:
        return tuple(n for n in (self.name, self.id, self.id[:12]) if n)

    def evidence(self, detail: str, code: str) -> Evidence:
        return Evidence(self.target, detail, code, self.names)

    def setting(self, key: str, default: Any = None) -> Any:
        value = self.host.get(key, default)
        return default if value is None else value

    @property
    def security_opts(self) -> List[str]:
        value = self.setting("SecurityOpt", [])
        return [str(v) for v in value] if isinstance(value, list) else []

    def mounts(self) -> List[Tuple[str, str, str]]:
        """(host source, destination, propagation) of every bind mount, from Binds, Mounts and MountPoints."""
        found = []
        binds = self.setting("Binds", [])
        for bind in binds if isinstance(binds, list) else []:
            parts = str(bind).split(":")
            if len(parts) >= 2 and parts[0].startswith("/"):
                options = parts[2].split(",") if len(parts) > 2 else []
                found.append((parts[0], parts[1], next((o for o in options if "shared" in o or "slave" in o
                                                        or "private" in o), "")))
        mounts = self.setting("Mounts", [])
        for mount in mounts if isinstance(mounts, list) else []:
            if isinstance(mount, dict) and mount.get("Type") == "bind":
                options = mount.get("BindOptions") or {}
                found.append((str(mount.get("Source", "")), str(mount.get("Target", "")),
                              str(options.get("Propagation", "")) if isinstance(options, dict) else ""))
        points = self.config.get("MountPoints") or {}
        for destination, point in (points.items() if isinstance(points, dict) else ()):
            if isinstance(point, dict) and point.get("Type") == "bind":
                found.append((str(point.get("Source", "")), str(destination), str(point.get("Propagation", ""))))
        return sorted(set(found))


def _read_json(directory: SafeDir, name: str) -> Tuple[Dict[str, Any], Optional[str]]:
    try:
        value = json.loads(directory.read_bytes(name, CONFIG_LIMIT).decode("utf-8"))
    except OSError as exc:
        return {}, "%s: %s" % (directory.join(name), describe_os_error(exc))
    except (ValueError, UnicodeDecodeError) as exc:
        return {}, "%s is not JSON: %s" % (directory.join(name), exc)
    if not isinstance(value, dict):
        return {}, "%s is not a JSON object" % directory.join(name)
    return value, None


def container_facts(store: Store) -> List[ContainerFacts]:
    facts = []
    try:
        containers = SafeDir.open(os.path.join(store.data_root, "containers"))
    except OSError:
        return []
    with containers:
        for container_id in sorted(store.containers):
            container = store.containers[container_id]
            try:
                with containers.subdir(container_id) as directory:
                    config, problem = _read_json(directory, "config.v2.json")
                    host, host_problem = _read_json(directory, "hostconfig.json")
            except OSError as exc:
                reason = "%s: %s" % (containers.join(container_id), describe_os_error(exc))
                config, host, problem, host_problem = {}, {}, reason, None
            name = str(config.get("Name") or container.name or "").lstrip("/")
            facts.append(ContainerFacts(container_id, name, config, host, problem or host_problem))
    return facts


@dataclass
class Containers:
    """The inputs of section 5, and what the daemon sets for every container."""

    facts: List[ContainerFacts]
    no_new_privileges: bool  # daemon-wide --no-new-privileges
    apparmor: Optional[bool]  # the host has AppArmor; None: not known (another host's disk, read at host_root)
    selinux: Optional[bool]  # the host has SELinux; None: not known
    swarm: Optional[str]  # the node's swarm state, when the data-root has one


Judge = Callable[[ContainerFacts, Containers], Optional[Tuple[str, str]]]  # (detail, code) when it fails


def per_container(judge: Judge, passed: Callable[[ContainerFacts], str], code: str,
                  applies: Callable[[Containers], Optional[Verdict]] = lambda _c: None
                  ) -> Callable[[Containers], Verdict]:
    """A control judged on every container; ``applies`` gives the verdict instead when the host decides it."""
    def check(containers: Containers) -> Verdict:
        instead = applies(containers)
        if instead is not None:
            return instead
        failing, passing = [], []
        for facts in containers.facts:
            if facts.problem:
                failing.append(facts.evidence("its configuration cannot be read: %s" % facts.problem, "unreadable"))
                continue
            found = judge(facts, containers)
            if found:
                failing.append(facts.evidence(*found))
            else:
                passing.append(facts.evidence(passed(facts), code))
        return Verdict.of(failing, passing)
    return check


def _setting(key: str) -> Callable[[ContainerFacts], str]:
    return lambda facts: "%s = %s" % (key, json.dumps(facts.setting(key)))


def apparmor(facts: ContainerFacts, containers: Containers) -> Optional[Tuple[str, str]]:
    profile = str(facts.config.get("AppArmorProfile") or "")
    if facts.setting("Privileged", False):
        return "privileged: runs without an AppArmor profile", "apparmor_unconfined"
    if profile == "unconfined" or "apparmor=unconfined" in facts.security_opts or \
            "apparmor:unconfined" in facts.security_opts:
        return "AppArmorProfile unconfined", "apparmor_unconfined"
    if not profile:
        return "no AppArmor profile", "apparmor_missing"
    return None


def selinux(facts: ContainerFacts, _containers: Containers) -> Optional[Tuple[str, str]]:
    """The engine itself writes ``label=disable`` for a privileged container and one sharing the host's PID or
    IPC namespace; a daemon without ``--selinux-enabled`` gives no container a ``ProcessLabel``."""
    if any(o in ("label=disable", "label:disable") for o in facts.security_opts):
        return "SELinux labelling disabled (%s)" % ", ".join(facts.security_opts), "selinux_disabled"
    if not facts.config.get("ProcessLabel"):
        return "no SELinux process label", "selinux_missing"
    return None


def capabilities(facts: ContainerFacts, _containers: Containers) -> Optional[Tuple[str, str]]:
    added = facts.setting("CapAdd", []) or []
    if added:
        return "CapAdd %s" % ", ".join(str(c) for c in added), "capabilities_added"
    return None


def privileged(facts: ContainerFacts, _containers: Containers) -> Optional[Tuple[str, str]]:
    return ("Privileged true", "privileged") if facts.setting("Privileged", False) is True else None


def sensitive_mounts(facts: ContainerFacts, _containers: Containers) -> Optional[Tuple[str, str]]:
    found = [(source, target) for source, target, _propagation in facts.mounts()
             if os.path.normpath(source) in SENSITIVE_DIRS]
    if found:
        return "mounts %s" % ", ".join("%s at %s" % pair for pair in found), "sensitive_mount"
    return None


def _port_bindings(facts: ContainerFacts) -> List[Tuple[str, str, str]]:
    """(container port, host ip, host port) of every published port."""
    found = []
    bindings = facts.setting("PortBindings", {}) or {}
    for port, targets in (bindings.items() if isinstance(bindings, dict) else ()):
        for target in targets if isinstance(targets, list) else []:
            if isinstance(target, dict):
                found.append((str(port), str(target.get("HostIp") or ""), str(target.get("HostPort") or "")))
    return found


def privileged_ports(facts: ContainerFacts, _containers: Containers) -> Optional[Tuple[str, str]]:
    low = [(port, host_port) for port, _ip, host_port in _port_bindings(facts)
           if host_port.isdigit() and 0 < int(host_port) < 1024]
    if low:
        return "publishes %s" % ", ".join("%s on host port %s" % pair for pair in low), "privileged_port"
    return None


def any_interface(facts: ContainerFacts, _containers: Containers) -> Optional[Tuple[str, str]]:
    wide = [port for port, ip, _host_port in _port_bindings(facts) if ip in ("", "0.0.0.0", "::")]
    if wide:
        return "publishes %s on every host interface" % ", ".join(wide), "all_interfaces"
    return None


def host_namespace(key: str, code: str) -> Judge:
    def judge(facts: ContainerFacts, _containers: Containers) -> Optional[Tuple[str, str]]:
        return ("%s host" % key, code) if str(facts.setting(key, "")) == "host" else None
    return judge


def unlimited(key: str, code: str, limited: Callable[[Any], bool]) -> Judge:
    def judge(facts: ContainerFacts, _containers: Containers) -> Optional[Tuple[str, str]]:
        value = facts.setting(key)
        return None if limited(value) else ("%s = %s" % (key, json.dumps(value)), code)
    return judge


def read_write_root(facts: ContainerFacts, _containers: Containers) -> Optional[Tuple[str, str]]:
    return None if facts.setting("ReadonlyRootfs", False) is True else ("ReadonlyRootfs false", "writable_root")


def restart_policy(facts: ContainerFacts, _containers: Containers) -> Optional[Tuple[str, str]]:
    policy = facts.setting("RestartPolicy", {}) or {}
    name = str(policy.get("Name") or "no") if isinstance(policy, dict) else "no"
    retries = policy.get("MaximumRetryCount", 0) if isinstance(policy, dict) else 0
    if name in ("always", "unless-stopped"):
        return "RestartPolicy %s (restarts without limit)" % name, "restart_unlimited"
    if name == "on-failure" and (not isinstance(retries, int) or retries <= 0 or retries > 5):
        return "RestartPolicy on-failure:%s" % retries, "restart_unlimited"
    return None


def devices(facts: ContainerFacts, _containers: Containers) -> Optional[Tuple[str, str]]:
    found = facts.setting("Devices", []) or []
    if found:
        return "Devices %s" % ", ".join(str(d.get("PathOnHost") if isinstance(d, dict) else d) for d in found), \
            "host_device"
    return None


def shared_propagation(facts: ContainerFacts, _containers: Containers) -> Optional[Tuple[str, str]]:
    shared = [(source, target) for source, target, propagation in facts.mounts() if propagation in ("shared", "rshared")]
    if shared:
        return "shared propagation on %s" % ", ".join("%s at %s" % pair for pair in shared), "shared_propagation"
    return None


def seccomp_disabled(facts: ContainerFacts, _containers: Containers) -> Optional[Tuple[str, str]]:
    if any(o in ("seccomp=unconfined", "seccomp:unconfined") for o in facts.security_opts):
        return "seccomp unconfined", "seccomp_unconfined"
    return None


def new_privileges(facts: ContainerFacts, containers: Containers) -> Optional[Tuple[str, str]]:
    options = facts.security_opts
    if any(o in ("no-new-privileges", "no-new-privileges=true", "no-new-privileges:true") for o in options):
        return None
    if containers.no_new_privileges and not any(o.startswith("no-new-privileges") for o in options):
        return None
    return "no-new-privileges is not set", "new_privileges_allowed"


def no_healthcheck(facts: ContainerFacts, _containers: Containers) -> Optional[Tuple[str, str]]:
    config = facts.config.get("Config") or {}
    check = config.get("Healthcheck") if isinstance(config, dict) else None
    test = check.get("Test") if isinstance(check, dict) else None
    return ("no health check" if not test else "health check NONE", "no_healthcheck") if not test or \
        test == ["NONE"] else None


def pids_unlimited(facts: ContainerFacts, _containers: Containers) -> Optional[Tuple[str, str]]:
    limit = facts.setting("PidsLimit")
    return None if isinstance(limit, int) and limit > 0 else ("PidsLimit %s" % json.dumps(limit), "pids_unlimited")


def default_bridge(facts: ContainerFacts, _containers: Containers) -> Optional[Tuple[str, str]]:
    mode = str(facts.setting("NetworkMode", "default") or "default")
    return ("NetworkMode %s (the default bridge docker0)" % mode, "default_bridge") if mode in ("default", "bridge") \
        else None


def docker_socket(facts: ContainerFacts, _containers: Containers) -> Optional[Tuple[str, str]]:
    found = [source for source, _target, _propagation in facts.mounts()
             if os.path.normpath(source) in DOCKER_SOCKETS or source.endswith("/docker.sock")]
    return ("mounts the Docker socket %s" % ", ".join(found), "docker_socket") if found else None


def swarm(containers: Containers) -> Verdict:
    if containers.swarm:
        return Verdict(FAIL, [Evidence("host", "swarm state: %s" % containers.swarm, "swarm_active")])
    return Verdict(PASS, [Evidence("host", "no swarm state in the data-root", "swarm_inactive", failing=False)])


def cgroup_parent(facts: ContainerFacts, _containers: Containers) -> Optional[Tuple[str, str]]:
    parent = str(facts.setting("CgroupParent", "") or "")
    if parent:
        return "CgroupParent %s: confirm it is the cgroup meant (a waiver records that)" % parent, \
            "cgroup_parent_set"
    return None


def host_feature(name: str, present: Callable[[Containers], Optional[bool]]) -> Callable[[Containers], Optional[Verdict]]:
    """Judge the containers only on a host with the security module ``name``; unknown is for a person."""
    def applies(containers: Containers) -> Optional[Verdict]:
        known = present(containers)
        if known is None:
            return manual("whether the host runs %s is seen on the running host only, not on its disk" % name)
        if not known:
            return Verdict(NOT_APPLICABLE, [Evidence("host", "the host has no %s" % name, "not_applicable",
                                                     failing=False)])
        return None
    return applies


def _cpu_limited(value: Any) -> bool:
    return isinstance(value, int) and value not in (0, 1024)


CHECKS: Dict[str, Callable[[Containers], Verdict]] = {
    "5.1": swarm,
    "5.2": per_container(apparmor, lambda f: "AppArmorProfile %s" % f.config.get("AppArmorProfile"), "apparmor",
                         host_feature("AppArmor", lambda c: c.apparmor)),
    "5.3": per_container(selinux, lambda f: "ProcessLabel %s" % f.config.get("ProcessLabel"), "selinux",
                         host_feature("SELinux", lambda c: c.selinux)),
    "5.4": per_container(capabilities, lambda f: "no capability added", "capabilities"),
    "5.5": per_container(privileged, lambda f: "not privileged", "privileged"),
    "5.6": per_container(sensitive_mounts, lambda f: "no sensitive host directory mounted", "mounts"),
    "5.8": per_container(privileged_ports, lambda f: "no privileged host port", "ports"),
    "5.10": per_container(host_namespace("NetworkMode", "host_network"), _setting("NetworkMode"), "network_mode"),
    "5.11": per_container(unlimited("Memory", "memory_unlimited", lambda v: isinstance(v, int) and v > 0),
                          _setting("Memory"), "memory"),
    "5.12": per_container(unlimited("CpuShares", "cpu_shares_default", _cpu_limited), _setting("CpuShares"), "cpu"),
    "5.13": per_container(read_write_root, lambda f: "ReadonlyRootfs true", "read_only_root"),
    "5.14": per_container(any_interface, lambda f: "every published port is bound to one host address", "ports"),
    "5.15": per_container(restart_policy, _setting("RestartPolicy"), "restart_policy"),
    "5.16": per_container(host_namespace("PidMode", "host_pid"), _setting("PidMode"), "pid_mode"),
    "5.17": per_container(host_namespace("IpcMode", "host_ipc"), _setting("IpcMode"), "ipc_mode"),
    "5.18": per_container(devices, lambda f: "no host device", "devices"),
    "5.20": per_container(shared_propagation, lambda f: "no shared mount propagation", "propagation"),
    "5.21": per_container(host_namespace("UTSMode", "host_uts"), _setting("UTSMode"), "uts_mode"),
    "5.22": per_container(seccomp_disabled, lambda f: "the seccomp profile applies", "seccomp"),
    "5.25": per_container(cgroup_parent, lambda f: "CgroupParent unset: the daemon's", "cgroup_parent"),
    "5.26": per_container(new_privileges, lambda f: "no-new-privileges", "no_new_privileges"),
    "5.27": per_container(no_healthcheck, lambda f: "has a health check", "healthcheck"),
    "5.29": per_container(pids_unlimited, _setting("PidsLimit"), "pids_limit"),
    "5.30": per_container(default_bridge, _setting("NetworkMode"), "network_mode"),
    "5.31": per_container(host_namespace("UsernsMode", "host_userns"), _setting("UsernsMode"), "userns_mode"),
    "5.32": per_container(docker_socket, lambda f: "the Docker socket is not mounted", "docker_socket"),
}

MANUAL_REASONS = {
    "5.7": "whether sshd runs inside a container is seen in its processes, not in its files",
    "5.9": "which ports a container needs depends on its application",
    "5.19": "whether a container needs its own ulimits depends on its application",
    "5.23": "docker exec options are not kept on disk",
    "5.24": "docker exec options are not kept on disk",
    "5.28": "whether an image is the latest version is known to its registry",
}
