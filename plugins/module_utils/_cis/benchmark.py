# Copyright (c) strata.overlay2 contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# This module_utils is PRIVATE to the strata.overlay2 collection. It may change
# without notice; do not import it from other collections.

"""The CIS Docker Benchmark of one host: the inputs each section needs, read once and only when a selected
control needs them, every selected control judged, waivers applied.

Which part reads what: ``_cis_daemon`` the host and the daemon's files (sections 1 to 3), ``_cis_images`` image
configs and layer headers (section 4), ``_cis_containers`` the containers' configuration (section 5); all read
the store through the one store model (``_store.Store``, filled from either store).
"""

from __future__ import annotations

import datetime
import json
import os
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence

from ansible_collections.strata.overlay2.plugins.module_utils._backends.registry import backend_for
from ansible_collections.strata.overlay2.plugins.module_utils._cis import containers as _cis_containers
from ansible_collections.strata.overlay2.plugins.module_utils._cis import daemon as _cis_daemon
from ansible_collections.strata.overlay2.plugins.module_utils._cis import images as _cis_images
from ansible_collections.strata.overlay2.plugins.module_utils._cis.catalogue import (
    MANUAL,
    NOT_APPLICABLE,
    STATUSES,
    Control,
    Evidence,
    Result,
    Verdict,
    Waiver,
    apply_waivers,
    manual,
)
from ansible_collections.strata.overlay2.plugins.module_utils._store.discovery import Daemon
from ansible_collections.strata.overlay2.plugins.module_utils._util.safefs import SafeDir
from ansible_collections.strata.overlay2.plugins.module_utils._store.model import Store


@dataclass
class Report:
    results: List[Result]
    problems: List[str] = field(default_factory=list)  # what could not be read

    def summary(self) -> Dict[str, int]:
        counts = {status: 0 for status in STATUSES}
        for result in self.results:
            counts[result.verdict.status] += 1
        return counts

    def as_dict(self) -> Dict[str, Any]:
        return {"controls": [r.as_dict() for r in self.results], "summary": self.summary(),
                "failed": [r.control.id for r in self.results if r.verdict.status == "fail"],
                "problems": list(self.problems)}


class _Inputs:
    """Each section's inputs, read on first use."""

    def __init__(self, store: Store, daemon: Optional[Daemon], host_root: str) -> None:
        self.store = store
        self.daemon = daemon
        self.host_root = host_root
        self._host: Optional[_cis_daemon.Host] = None
        self._images: Optional[_cis_images.Images] = None
        self._containers: Optional[_cis_containers.Containers] = None

    @property
    def host(self) -> _cis_daemon.Host:
        if self._host is None:
            settings = _cis_daemon.read_settings(self.daemon, self.host_root, self.store.data_root)
            self._host = _cis_daemon.Host(self.host_root, self.store.data_root, self.daemon, settings,
                                          _cis_daemon.read_groups(self.host_root))
        return self._host

    @property
    def images(self) -> _cis_images.Images:
        if self._images is None:
            backend = backend_for(self.store)
            self._images = _cis_images.Images(_cis_images.image_facts(self.store, backend.image_config),
                                              _cis_images.Views(backend.layer_files()))
        return self._images

    @property
    def containers(self) -> _cis_containers.Containers:
        if self._containers is None:
            live = self.host_root in ("", "/")
            self._containers = _cis_containers.Containers(
                _cis_containers.container_facts(self.store),
                no_new_privileges=_cis_daemon.truthy(self.host.settings.get("no-new-privileges", False).value),
                apparmor=host_has_apparmor() if live else None,
                selinux=host_has_selinux() if live else None,
                swarm=swarm_state(self.store.data_root))
        return self._containers

    def problems(self) -> List[str]:
        found: List[str] = []
        if self._host is not None:
            found.extend(self._host.settings.problems)
        if self._images is not None:
            found.extend(f.problem for f in self._images.facts if f.problem)
            found.extend(p for p in self._images.views.problems.values())
        if self._containers is not None:
            found.extend(f.problem for f in self._containers.facts if f.problem)
        return found


def host_has_apparmor(sys_root: str = "/sys") -> bool:
    """AppArmor as the engine tests it: its securityfs is there and the module says it is enabled."""
    try:
        with open(os.path.join(sys_root, "module/apparmor/parameters/enabled"), encoding="ascii") as handle:
            enabled = handle.read(8).strip() == "Y"
    except (OSError, UnicodeDecodeError):
        return False
    return enabled and os.path.isdir(os.path.join(sys_root, "kernel/security/apparmor"))


def host_has_selinux(sys_root: str = "/sys") -> bool:
    """SELinux: its file system is mounted (``/sys/fs/selinux/enforce`` exists)."""
    return os.path.exists(os.path.join(sys_root, "fs/selinux/enforce"))


def swarm_state(data_root: str) -> Optional[str]:
    """The swarm state a node keeps in ``swarm/state.json``, when it has one."""
    try:
        with SafeDir.open(os.path.join(data_root, "swarm")) as directory:
            value = json.loads(directory.read_bytes("state.json").decode("utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    return "swarm/state.json holds %d entries" % len(value) if value else None


def judge(control: Control, inputs: _Inputs) -> Verdict:
    if control.id in _cis_daemon.CHECKS:
        return _cis_daemon.CHECKS[control.id](inputs.host)
    if control.id in _cis_images.CHECKS:
        return _cis_images.CHECKS[control.id](inputs.images)
    if control.id in _cis_containers.CHECKS:
        return _cis_containers.CHECKS[control.id](inputs.containers)
    for reasons in (_cis_daemon.MANUAL_REASONS, _cis_images.MANUAL_REASONS, _cis_containers.MANUAL_REASONS):
        if control.id in reasons:
            return manual(reasons[control.id])
    if control.id == "6.1":
        return manual("whether the images are too many is a decision",
                      [Evidence("host", "%d images" % len(inputs.store.images), "image_count", failing=False)])
    if control.id == "6.2":
        return manual("whether the containers are too many is a decision",
                      [Evidence("host", "%d containers" % len(inputs.store.containers), "container_count",
                                failing=False)])
    if control.id.startswith("7."):
        state = swarm_state(inputs.store.data_root)
        if state is None:
            return Verdict(NOT_APPLICABLE, [Evidence("host", "not a swarm node (no swarm/state.json)", "no_swarm",
                                                     failing=False)])
        return manual("swarm controls apply to swarm managers only", [Evidence("host", state, "swarm_active", failing=False)])
    return Verdict(MANUAL, [Evidence("host", "not decided from files", "needs_a_person", failing=False)])


def evaluate(store: Store, daemon: Optional[Daemon], controls: Sequence[Control], waivers: Sequence[Waiver],
             host_root: str = "/", today: Optional[datetime.date] = None) -> Report:
    inputs = _Inputs(store, daemon, host_root)
    day = today or datetime.date.today()
    results = [apply_waivers(Result(control, judge(control, inputs)), waivers, day) for control in controls]
    problems = inputs.problems()
    if store.findings:
        problems.append("%d entries of the store could not be read or are inconsistent (see overlay2_facts)"
                        % len(store.findings))
    return Report(results, problems)
