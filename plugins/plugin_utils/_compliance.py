# Copyright (c) strata.overlay2 contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# This plugin_utils is PRIVATE to the strata.overlay2 collection. It may change
# without notice; do not import it from other collections.

"""Compliance checks over one host's overlay2 facts and layer_verify result, and their JUnit XML.

Each policy rule is one named check. A rule the policy does not set is reported as skipped, so a
dashboard shows what was and was not checked. Evaluating is kept apart from acting: the role turns
failed checks into a failed host.
"""

from __future__ import annotations

import fnmatch
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Dict, List, Mapping, Optional, Sequence
from xml.etree import ElementTree

from ansible_collections.strata.overlay2.plugins.plugin_utils._report import ReportError, corrupt_entry, human_bytes

CHECKS = ("layers_verify", "orphan_bytes", "allowed_repositories", "layer_depth", "no_container_on_corrupt_image",
          "no_container_drift", "container_log_bytes", "container_log_rotation")
DRIFT_DETAILS = 20  # drift entries named per container in a failure


@dataclass
class Policy:
    layers_verify: bool = True
    max_orphan_bytes: Optional[int] = None
    allowed_repositories: List[str] = field(default_factory=list)
    max_layer_depth: Optional[int] = None
    no_container_on_corrupt_image: bool = True
    no_container_drift: bool = False
    max_container_log_bytes: Optional[int] = None
    container_log_rotation: bool = False

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> "Policy":
        known = {rule.name for rule in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ReportError("unknown policy keys: %s (known: %s)" % (", ".join(unknown), ", ".join(sorted(known))))
        policy = cls(**dict(values))
        for name in ("max_orphan_bytes", "max_layer_depth", "max_container_log_bytes"):
            value = getattr(policy, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
                raise ReportError("policy %s must be a non-negative integer or null, got %r" % (name, value))
        if isinstance(policy.allowed_repositories, str) or not isinstance(policy.allowed_repositories, list):
            raise ReportError("policy allowed_repositories must be a list of patterns")
        return policy


@dataclass
class Check:
    name: str
    status: str  # passed, failed or skipped
    message: str
    details: List[str] = field(default_factory=list)


def repository(reference: str) -> str:
    """``registry:5000/team/app:1.2`` or ``app@sha256:...`` -> the repository (``registry:5000/team/app``)."""
    name = reference.split("@", 1)[0]
    slash, colon = name.rfind("/"), name.rfind(":")
    return name[:colon] if colon > slash else name


def _check_verify(verdict: Optional[Mapping[str, Any]], names: Mapping[str, str]) -> Check:
    if verdict is None:
        return Check("layers_verify", "failed", "no layer_verify result to judge")
    corrupt = [corrupt_entry(entry, names) for entry in verdict.get("corrupt") or []]
    if verdict.get("ok") and not corrupt:
        return Check("layers_verify", "passed", "%s layers verify against their DiffIDs" % verdict.get("checked_layers"))
    details = []
    for entry in corrupt:
        layer = "layer %s (cache-id %s, images %s)" % (entry["chain_id"] or "record", entry["cache_id"],
                                                       ", ".join(entry["images"]) or "-")
        details.extend("%s: %s" % (layer, problem) for problem in entry["problems"] or ["corrupt"])
    return Check("layers_verify", "failed", "%d layers or records do not verify" % len(corrupt), details)


def _check_orphans(facts: Mapping[str, Any], limit: int) -> Check:
    found = (facts.get("summary") or {}).get("orphan_bytes")
    if found is None:
        return Check("orphan_bytes", "failed", "orphans were not gathered (overlay2_facts orphans=false)")
    if found <= limit:
        return Check("orphan_bytes", "passed", "%s of orphans, limit %s" % (human_bytes(found), human_bytes(limit)))
    items = (facts.get("orphans") or {}).get("entries") or []
    details = ["%s %s (%s)" % (item.get("kind"), item.get("path"), human_bytes(item.get("bytes"))) for item in items]
    return Check("orphan_bytes", "failed", "%s of orphans is over the limit of %s"
                 % (human_bytes(found), human_bytes(limit)), details)


def _check_repositories(facts: Mapping[str, Any], patterns: Sequence[str]) -> Check:
    details = []
    for image in facts.get("images") or []:
        for reference in list(image.get("tags") or []) + list(image.get("digests") or []):
            repo = repository(reference)
            if not any(fnmatch.fnmatchcase(repo, pattern) for pattern in patterns):
                details.append("%s (image %s)" % (reference, str(image.get("id", ""))[7:19]))
    if details:
        return Check("allowed_repositories", "failed", "%d image references are outside %s"
                     % (len(details), ", ".join(patterns)), sorted(set(details)))
    return Check("allowed_repositories", "passed", "every image reference matches %s" % ", ".join(patterns))


def _check_depth(facts: Mapping[str, Any], limit: int, names: Mapping[str, str]) -> Check:
    deep = [(len(image.get("diff_ids") or []), names.get(str(image.get("id")), "")) for image in facts.get("images") or []
            if not image.get("intermediate") and len(image.get("diff_ids") or []) > limit]
    if deep:
        return Check("layer_depth", "failed", "%d images have more than %d layers" % (len(deep), limit),
                     ["%s: %d layers" % (name, depth) for depth, name in sorted(deep, reverse=True)])
    return Check("layer_depth", "passed", "no image has more than %d layers" % limit)


def _check_containers(facts: Mapping[str, Any], verdict: Optional[Mapping[str, Any]]) -> Check:
    if verdict is None:
        return Check("no_container_on_corrupt_image", "failed", "no layer_verify result to judge")
    running = {str(container.get("id")): container for container in facts.get("containers") or []
               if container.get("running")}
    hits: Dict[str, List[str]] = {}
    for entry in verdict.get("corrupt") or []:
        for container_id in entry.get("containers") or []:
            if container_id in running:
                hits.setdefault(container_id, []).append(str(entry.get("chain_id") or "record"))
    if hits:
        details = ["container %s (%s) runs on corrupt layer %s" % (running[cid].get("name"), cid[:12], ", ".join(layers))
                   for cid, layers in sorted(hits.items())]
        return Check("no_container_on_corrupt_image", "failed",
                     "%d running containers use corrupt layers" % len(hits), details)
    return Check("no_container_on_corrupt_image", "passed", "no running container uses a corrupt layer")


def _check_drift(facts: Mapping[str, Any]) -> Check:
    containers = [c for c in facts.get("containers") or [] if isinstance(c, Mapping)]
    if any("drift" not in container for container in containers):
        return Check("no_container_drift", "failed", "the facts were gathered without container_drift")
    details = []
    drifted = 0
    for container in sorted(containers, key=lambda c: str(c.get("name"))):
        found = container.get("drift") or {}
        label = "container %s (%s)" % (container.get("name"), str(container.get("id"))[:12])
        if found.get("error"):
            drifted += 1
            details.append("%s: its writable layer cannot be read: %s" % (label, found["error"]))
        elif found.get("count"):
            drifted += 1
            entries = found.get("entries") or []
            details.extend("%s: %s %s" % (label, e.get("kind"), e.get("path")) for e in entries[:DRIFT_DETAILS])
            if found["count"] > DRIFT_DETAILS:
                details.append("%s: and %d more" % (label, found["count"] - DRIFT_DETAILS))
    if drifted:
        return Check("no_container_drift", "failed", "%d containers changed their image's watched files" % drifted,
                     details)
    return Check("no_container_drift", "passed", "no container changed its image's watched files")


def _container_logs(facts: Mapping[str, Any]) -> Optional[Mapping[str, Any]]:
    """The facts' ``usage.categories.container_logs``, or None when usage was not gathered."""
    usage = facts.get("usage")
    if not isinstance(usage, Mapping):
        return None
    logs = (usage.get("categories") or {}).get("container_logs")
    return logs if isinstance(logs, Mapping) else None


def _check_log_bytes(facts: Mapping[str, Any], limit: int) -> Check:
    logs = _container_logs(facts)
    if logs is None:
        return Check("container_log_bytes", "failed", "the facts were gathered without usage")
    over = [entry for entry in logs.get("largest") or [] if (entry.get("bytes") or 0) > limit]
    if over:
        details = ["container %s (%s): %s of logs" % (entry.get("name"), str(entry.get("container"))[:12],
                                                      human_bytes(entry.get("bytes"))) for entry in over]
        more = " or more" if len(over) == len(logs.get("largest") or []) < (logs.get("count") or 0) else ""
        return Check("container_log_bytes", "failed", "%d%s containers have more than %s of logs"
                     % (len(over), more, human_bytes(limit)), details)
    return Check("container_log_bytes", "passed", "no container has more than %s of logs" % human_bytes(limit))


def _check_log_rotation(facts: Mapping[str, Any]) -> Check:
    logs = _container_logs(facts)
    if logs is None:
        return Check("container_log_rotation", "failed", "the facts were gathered without usage")
    details = ["container %s (%s): its logs are not rotated" % (entry.get("name"), str(entry.get("container"))[:12])
               for entry in logs.get("not_rotated") or []]
    details += ["container %s (%s): its log options cannot be read" % (entry.get("name"),
                                                                       str(entry.get("container"))[:12])
                for entry in logs.get("rotation_unknown") or []]
    if details:
        return Check("container_log_rotation", "failed", "%d containers do not rotate their logs (json-file "
                     "without max-size)" % len(details), details)
    return Check("container_log_rotation", "passed", "every container rotates its logs")


def evaluate(facts: Any, verdict: Any, policy: Mapping[str, Any]) -> List[Dict[str, Any]]:
    """Every policy check for one host, in a fixed order, as plain dicts."""
    if not isinstance(facts, Mapping):
        raise ReportError("the overlay2 facts must be a dict, got %s" % type(facts).__name__)
    if verdict is not None and (not isinstance(verdict, Mapping) or "ok" not in verdict):
        verdict = None
    rules = Policy.from_mapping(policy)
    names = {str(image.get("id")): (image.get("tags") or [str(image.get("id", ""))[7:19]])[0]
             for image in facts.get("images") or []}
    checks = [
        _check_verify(verdict, names) if rules.layers_verify else Check("layers_verify", "skipped", "not required"),
        _check_orphans(facts, rules.max_orphan_bytes) if rules.max_orphan_bytes is not None
        else Check("orphan_bytes", "skipped", "no limit set"),
        _check_repositories(facts, rules.allowed_repositories) if rules.allowed_repositories
        else Check("allowed_repositories", "skipped", "no repositories listed"),
        _check_depth(facts, rules.max_layer_depth, names) if rules.max_layer_depth is not None
        else Check("layer_depth", "skipped", "no limit set"),
        _check_containers(facts, verdict) if rules.no_container_on_corrupt_image
        else Check("no_container_on_corrupt_image", "skipped", "not required"),
        _check_drift(facts) if rules.no_container_drift else Check("no_container_drift", "skipped", "not required"),
        _check_log_bytes(facts, rules.max_container_log_bytes) if rules.max_container_log_bytes is not None
        else Check("container_log_bytes", "skipped", "no limit set"),
        _check_log_rotation(facts) if rules.container_log_rotation
        else Check("container_log_rotation", "skipped", "not required"),
    ]
    return [asdict(check) for check in checks]


def junit_xml(checks: Sequence[Mapping[str, Any]], host: str, timestamp: str = "") -> str:
    """One JUnit XML test suite for a host: a test case per check, failures carrying their details."""
    failures = sum(1 for check in checks if check.get("status") == "failed")
    skipped = sum(1 for check in checks if check.get("status") == "skipped")
    suites = ElementTree.Element("testsuites", name="strata.overlay2.compliance", tests=str(len(checks)),
                                 failures=str(failures))
    suite = ElementTree.SubElement(suites, "testsuite", name="overlay2 compliance: %s" % host, hostname=host,
                                   tests=str(len(checks)), failures=str(failures), errors="0", skipped=str(skipped))
    if timestamp:
        suite.set("timestamp", timestamp)
    for check in checks:
        case = ElementTree.SubElement(suite, "testcase", classname="overlay2.%s" % host, name=str(check.get("name")))
        status = check.get("status")
        if status == "failed":
            failure = ElementTree.SubElement(case, "failure", message=str(check.get("message")), type=str(check.get("name")))
            failure.text = "\n".join(str(detail) for detail in check.get("details") or [])
        elif status == "skipped":
            ElementTree.SubElement(case, "skipped", message=str(check.get("message")))
        else:
            ElementTree.SubElement(case, "system-out").text = str(check.get("message"))
    ElementTree.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ElementTree.tostring(suites, encoding="unicode") + "\n"


# the benchmark's statuses as compliance check statuses: a waived control passes (its waivers are in the message),
# a control files cannot decide (manual) or that has nothing to judge (not_applicable) is skipped
CIS_STATUS = {"pass": "passed", "fail": "failed", "waived": "passed", "manual": "skipped", "not_applicable": "skipped"}


def cis_checks(controls: Any) -> List[Dict[str, Any]]:
    """One check per control of a ``cis_benchmark`` result, named ``<id> <title>``; a failed one lists the
    offending targets (``target: detail``), a waived one the reasons of its waivers."""
    if not isinstance(controls, list):
        raise ReportError("the cis_benchmark controls must be a list, got %s" % type(controls).__name__)
    checks = []
    for control in controls:
        if not isinstance(control, Mapping) or control.get("status") not in CIS_STATUS:
            raise ReportError("not a cis_benchmark control: %r" % (control,))
        evidence = [e for e in control.get("evidence") or [] if isinstance(e, Mapping)]
        name = "%s %s" % (control.get("id"), control.get("title"))
        status = control["status"]
        if status == "fail":
            offending = [e for e in evidence if "waiver" not in e or (e.get("waiver") or {}).get("expired")]
            targets = sorted({str(e.get("target")) for e in offending})
            message = "%d finding(s) on %s" % (len(offending), ", ".join(targets[:5]) + (" ..." if len(targets) > 5 else ""))
            details = ["%s: %s" % (e.get("target"), e.get("detail")) for e in offending]
        elif status == "waived":
            reasons = sorted({str((e.get("waiver") or {}).get("reason")) for e in evidence if e.get("waiver")})
            message, details = "waived: %s" % "; ".join(reasons), []
        else:
            message = "; ".join(str(e.get("detail")) for e in evidence[:3]) or status
            details = []
        checks.append(asdict(Check(name, CIS_STATUS[status], message, details)))
    return checks
