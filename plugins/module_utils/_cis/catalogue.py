# Copyright (c) strata.overlay2 contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# This module_utils is PRIVATE to the strata.overlay2 collection. It may change
# without notice; do not import it from other collections.

"""The CIS Docker Benchmark (v1.6.0 numbering, the ids and titles docker-bench-security uses), evaluated from
files: the catalogue of controls, what a verdict is, and waivers.

Each control gets one ``Verdict``: a status and its evidence (which image, container or file, the value that
decided, and a code). The checks live beside the inputs they read: ``_cis_daemon`` (sections 1 to 3: the
host, the daemon's settings, its files), ``_cis_images`` (section 4, from image configs and layer headers)
and ``_cis_containers`` (section 5, from each container's ``config.v2.json`` and ``hostconfig.json``). A
control no file can decide is ``manual``, never dropped.
"""

from __future__ import annotations

import datetime
import fnmatch
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

PASS, FAIL, NOT_APPLICABLE, MANUAL, WAIVED = "pass", "fail", "not_applicable", "manual", "waived"
STATUSES = (PASS, FAIL, NOT_APPLICABLE, MANUAL, WAIVED)
LEVEL1, LEVEL2 = "level1", "level2"

# id | level | title. Level 1 is what docker-bench-security's level-1 lists hold; the rest is level 2.
_TABLE = """
1.1.1|1|Ensure a separate partition for containers has been created
1.1.2|1|Ensure only trusted users are allowed to control Docker daemon
1.1.3|1|Ensure auditing is configured for the Docker daemon
1.1.4|1|Ensure auditing is configured for Docker files and directories - /run/containerd
1.1.5|1|Ensure auditing is configured for Docker files and directories - /var/lib/docker
1.1.6|1|Ensure auditing is configured for Docker files and directories - /etc/docker
1.1.7|2|Ensure auditing is configured for Docker files and directories - docker.service
1.1.8|2|Ensure auditing is configured for Docker files and directories - containerd.sock
1.1.9|2|Ensure auditing is configured for Docker files and directories - docker.socket
1.1.10|2|Ensure auditing is configured for Docker files and directories - /etc/default/docker
1.1.11|2|Ensure auditing is configured for Docker files and directories - /etc/docker/daemon.json
1.1.12|2|Ensure auditing is configured for Docker files and directories - /etc/containerd/config.toml
1.1.13|2|Ensure auditing is configured for Docker files and directories - /etc/sysconfig/docker
1.1.14|2|Ensure auditing is configured for Docker files and directories - /usr/bin/containerd
1.1.15|2|Ensure auditing is configured for Docker files and directories - /usr/bin/containerd-shim
1.1.16|2|Ensure auditing is configured for Docker files and directories - /usr/bin/containerd-shim-runc-v1
1.1.17|2|Ensure auditing is configured for Docker files and directories - /usr/bin/containerd-shim-runc-v2
1.1.18|2|Ensure auditing is configured for Docker files and directories - /usr/bin/runc
1.2.1|1|Ensure the container host has been Hardened
1.2.2|1|Ensure that the version of Docker is up to date
2.1|1|Run the Docker daemon as a non-root user, if possible
2.2|1|Ensure network traffic is restricted between containers on the default bridge
2.3|1|Ensure the logging level is set to 'info'
2.4|1|Ensure Docker is allowed to make changes to iptables
2.5|1|Ensure insecure registries are not used
2.6|1|Ensure aufs storage driver is not used
2.7|1|Ensure TLS authentication for Docker daemon is configured
2.8|1|Ensure the default ulimit is configured appropriately
2.9|1|Enable user namespace support
2.10|2|Ensure the default cgroup usage has been confirmed
2.11|2|Ensure base device size is not changed until needed
2.12|2|Ensure that authorization for Docker client commands is enabled
2.13|2|Ensure centralized and remote logging is configured
2.14|2|Ensure containers are restricted from acquiring new privileges
2.15|1|Ensure live restore is enabled
2.16|1|Ensure Userland Proxy is Disabled
2.17|1|Ensure that a daemon-wide custom seccomp profile is applied if appropriate
2.18|2|Ensure that experimental features are not implemented in production
3.1|1|Ensure that the docker.service file ownership is set to root:root
3.2|1|Ensure that docker.service file permissions are appropriately set
3.3|1|Ensure that docker.socket file ownership is set to root:root
3.4|1|Ensure that docker.socket file permissions are set to 644 or more restrictive
3.5|1|Ensure that the /etc/docker directory ownership is set to root:root
3.6|1|Ensure that /etc/docker directory permissions are set to 755 or more restrictively
3.7|1|Ensure that registry certificate file ownership is set to root:root
3.8|1|Ensure that registry certificate file permissions are set to 444 or more restrictively
3.9|1|Ensure that TLS CA certificate file ownership is set to root:root
3.10|1|Ensure that TLS CA certificate file permissions are set to 444 or more restrictively
3.11|1|Ensure that Docker server certificate file ownership is set to root:root
3.12|1|Ensure that the Docker server certificate file permissions are set to 444 or more restrictively
3.13|1|Ensure that the Docker server certificate key file ownership is set to root:root
3.14|1|Ensure that the Docker server certificate key file permissions are set to 400
3.15|1|Ensure that the Docker socket file ownership is set to root:docker
3.16|1|Ensure that the Docker socket file permissions are set to 660 or more restrictively
3.17|2|Ensure that the daemon.json file ownership is set to root:root
3.18|2|Ensure that daemon.json file permissions are set to 644 or more restrictive
3.19|2|Ensure that the /etc/default/docker file ownership is set to root:root
3.20|2|Ensure that the /etc/default/docker file permissions are set to 644 or more restrictively
3.21|2|Ensure that the /etc/sysconfig/docker file permissions are set to 644 or more restrictively
3.22|2|Ensure that the /etc/sysconfig/docker file ownership is set to root:root
3.23|1|Ensure that the Containerd socket file ownership is set to root:root
3.24|1|Ensure that the Containerd socket file permissions are set to 660 or more restrictively
4.1|1|Ensure that a user for the container has been created
4.2|1|Ensure that containers use only trusted base images
4.3|1|Ensure that unnecessary packages are not installed in the container
4.4|1|Ensure images are scanned and rebuilt to include security patches
4.5|2|Ensure Content trust for Docker is Enabled
4.6|1|Ensure that HEALTHCHECK instructions have been added to container images
4.7|1|Ensure update instructions are not used alone in the Dockerfile
4.8|2|Ensure setuid and setgid permissions are removed
4.9|1|Ensure that COPY is used instead of ADD in Dockerfiles
4.10|1|Ensure secrets are not stored in Dockerfiles
4.11|2|Ensure only verified packages are installed
4.12|1|Ensure all signed artifacts are validated
5.1|1|Ensure swarm mode is not Enabled, if not needed
5.2|1|Ensure that, if applicable, an AppArmor Profile is enabled
5.3|2|Ensure that, if applicable, SELinux security options are set
5.4|1|Ensure that Linux kernel capabilities are restricted within containers
5.5|1|Ensure that privileged containers are not used
5.6|1|Ensure sensitive host system directories are not mounted on containers
5.7|1|Ensure sshd is not run within containers
5.8|1|Ensure privileged ports are not mapped within containers
5.9|1|Ensure that only needed ports are open on the container
5.10|1|Ensure that the host's network namespace is not shared
5.11|1|Ensure that the memory usage for containers is limited
5.12|1|Ensure that CPU priority is set appropriately on containers
5.13|1|Ensure that the container's root filesystem is mounted as read only
5.14|1|Ensure that incoming container traffic is bound to a specific host interface
5.15|1|Ensure that the 'on-failure' container restart policy is set to '5'
5.16|1|Ensure that the host's process namespace is not shared
5.17|1|Ensure that the host's IPC namespace is not shared
5.18|1|Ensure that host devices are not directly exposed to containers
5.19|1|Ensure that the default ulimit is overwritten at runtime if needed
5.20|1|Ensure mount propagation mode is not set to shared
5.21|1|Ensure that the host's UTS namespace is not shared
5.22|1|Ensure the default seccomp profile is not Disabled
5.23|2|Ensure that docker exec commands are not used with the privileged option
5.24|2|Ensure that docker exec commands are not used with the user=root option
5.25|1|Ensure that cgroup usage is confirmed
5.26|1|Ensure that the container is restricted from acquiring additional privileges
5.27|1|Ensure that container health is checked at runtime
5.28|1|Ensure that Docker commands always make use of the latest version of their image
5.29|1|Ensure that the PIDs cgroup limit is used
5.30|2|Ensure that Docker's default bridge "docker0" is not used
5.31|1|Ensure that the host's user namespaces are not shared
5.32|1|Ensure that the Docker socket is not mounted inside any containers
6.1|1|Ensure that image sprawl is avoided
6.2|1|Ensure that container sprawl is avoided
7.1|1|Ensure that the minimum number of manager nodes have been created in a swarm
7.2|1|Ensure that swarm services are bound to a specific host interface
7.3|1|Ensure that all Docker swarm overlay networks are encrypted
7.4|1|Ensure that Docker's secret management commands are used for managing secrets in a swarm cluster
7.5|1|Ensure that swarm manager is run in auto-lock mode
7.6|1|Ensure that the swarm manager auto-lock key is rotated periodically
7.7|1|Ensure that node certificates are rotated as appropriate
7.8|1|Ensure that CA certificates are rotated as appropriate
7.9|1|Ensure that management plane traffic is separated from data plane traffic
"""


@dataclass(frozen=True)
class Control:
    id: str
    title: str
    level: str  # level1 | level2


def _catalogue() -> Tuple[Control, ...]:
    controls = []
    for line in _TABLE.strip().splitlines():
        control_id, level, title = line.split("|", 2)
        controls.append(Control(control_id, title, LEVEL1 if level == "1" else LEVEL2))
    return tuple(controls)


CONTROLS = _catalogue()
BY_ID = {control.id: control for control in CONTROLS}


def control_key(control_id: str) -> Tuple[int, ...]:
    return tuple(int(part) for part in control_id.split("."))


def select(profile: Sequence[str]) -> List[Control]:
    """The controls a profile names: ``level1`` (level 1 only), ``level2`` (both levels, as the benchmark
    defines level 2), ids, or a mix; ValueError for an id the benchmark does not have."""
    chosen: Dict[str, Control] = {}
    for item in profile:
        if item == LEVEL1:
            chosen.update((c.id, c) for c in CONTROLS if c.level == LEVEL1)
        elif item == LEVEL2:
            chosen.update((c.id, c) for c in CONTROLS)
        elif item in BY_ID:
            chosen[item] = BY_ID[item]
        else:
            raise ValueError("%r is neither level1, level2 nor a control id of the benchmark" % (item,))
    return sorted(chosen.values(), key=lambda c: control_key(c.id))


# -- verdicts ----------------------------------------------------------------------------------------------
@dataclass
class Evidence:
    """What decided a verdict: ``target`` (an image, a container, a file), ``detail`` (the value that
    decided), ``code`` (what kind of finding, for machines). ``names`` are every name the target goes by,
    which waiver patterns are matched against; ``failing`` is false for evidence that only informs."""

    target: str
    detail: str
    code: str
    names: Tuple[str, ...] = ()
    failing: bool = True
    waiver: Optional[Dict[str, Any]] = None

    def as_dict(self) -> Dict[str, Any]:
        result: Dict[str, Any] = {"target": self.target, "detail": self.detail, "code": self.code}
        if self.waiver is not None:
            result["waiver"] = dict(self.waiver)
        return result


@dataclass
class Verdict:
    status: str
    evidence: List[Evidence] = field(default_factory=list)

    @classmethod
    def of(cls, failing: List[Evidence], passing: Optional[List[Evidence]] = None,
           none: str = NOT_APPLICABLE) -> "Verdict":
        """``fail`` with the failing evidence when there is any, else ``pass`` with what passed, else
        ``none`` (nothing to judge: no image, no container, no such file)."""
        if failing:
            return cls(FAIL, failing)
        if passing:
            return cls(PASS, [replace(e, failing=False) for e in passing])
        return cls(none, [])


@dataclass
class Result:
    control: Control
    verdict: Verdict

    def as_dict(self) -> Dict[str, Any]:
        return {"id": self.control.id, "title": self.control.title, "level": self.control.level,
                "status": self.verdict.status, "evidence": [e.as_dict() for e in self.verdict.evidence]}


Check = Callable[[Any], Verdict]


def manual(reason: str, evidence: Iterable[Evidence] = ()) -> Verdict:
    """A control that files cannot decide: a person does, from the reason (and any evidence) given."""
    return Verdict(MANUAL, [Evidence("host", reason, "needs_a_person", failing=False)] + list(evidence))


# -- waivers -----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Waiver:
    control: str
    target: str  # a shell pattern matched against every name of the target (image tags and id, container name)
    reason: str
    expires: Optional[datetime.date]

    @classmethod
    def parse(cls, raw: Any) -> "Waiver":
        if not isinstance(raw, dict):
            raise ValueError("a waiver is a mapping with control, target, reason and expires, not %r" % (raw,))
        unknown = set(raw) - {"control", "target", "reason", "expires"}
        if unknown:
            raise ValueError("a waiver has unknown keys: %s" % ", ".join(sorted(unknown)))
        control = str(raw.get("control", ""))
        if control not in BY_ID:
            raise ValueError("waiver control %r is not a control id of the benchmark" % (control,))
        reason = str(raw.get("reason") or "").strip()
        if not reason:
            raise ValueError("the waiver for %s gives no reason" % control)
        expires = raw.get("expires")
        if expires is not None and not isinstance(expires, datetime.date):
            try:
                expires = datetime.date.fromisoformat(str(expires))
            except ValueError as exc:
                raise ValueError("the waiver for %s expires on %r, which is not a date (YYYY-MM-DD)"
                                 % (control, expires)) from exc
        return cls(control, str(raw.get("target") or "*"), reason, expires)

    def covers(self, control_id: str, evidence: Evidence) -> bool:
        names = evidence.names or (evidence.target,)
        return self.control == control_id and any(fnmatch.fnmatchcase(name, self.target) for name in names)

    def expired(self, today: datetime.date) -> bool:
        return self.expires is not None and self.expires < today

    def describe(self, today: datetime.date) -> Dict[str, Any]:
        return {"reason": self.reason, "target": self.target,
                "expires": self.expires.isoformat() if self.expires else None, "expired": self.expired(today)}


def apply_waivers(result: Result, waivers: Sequence[Waiver], today: datetime.date) -> Result:
    """A failed control whose every failing finding an unexpired waiver covers is ``waived``; a finding
    covered only by an expired waiver still fails, and its evidence says which waiver expired."""
    if result.verdict.status != FAIL:
        return result
    evidence = []
    still_failing = False
    for item in result.verdict.evidence:
        matching = [w for w in waivers if w.covers(result.control.id, item)] if item.failing else []
        live = [w for w in matching if not w.expired(today)]
        if live:
            item = replace(item, waiver=live[0].describe(today))
        elif matching:
            item = replace(item, waiver=matching[0].describe(today),
                           detail=item.detail + " (its waiver expired on %s)" % matching[0].expires)
            still_failing = True
        elif item.failing:
            still_failing = True
        evidence.append(item)
    return Result(result.control, Verdict(FAIL if still_failing else WAIVED, evidence))
