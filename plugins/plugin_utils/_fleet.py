# Copyright (c) strata.overlay2 contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# This plugin_utils is PRIVATE to the strata.overlay2 collection. It may change
# without notice; do not import it from other collections.

"""The fleet report from what each host keeps: its cached ``overlay2_audit`` fact, and the outcomes of the cleanup
and compliance roles (``orphan_cleanup_outcome``, ``compliance_outcome``).

The results arrive from the controller's fact cache (read through the configured cache plugin, as Ansible reads
it) or, at the end of an audit run, from the play's own hosts; both go through ``build``. A host with no result is
*not audited*; one whose audit is older than the maximum age is *stale*; one whose result cannot be read is named
with the reason, and the rest of the report stands.
"""

from __future__ import annotations

import datetime
import json
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence

from ansible_collections.strata.overlay2.plugins.module_utils._util.durations import seconds, utc_time
from ansible_collections.strata.overlay2.plugins.plugin_utils._report import CORRUPT, ReportError, fleet_report

SCHEMA = 1  # of the three facts below; a newer one is reported as unreadable, never guessed at
AUDIT = "overlay2_audit"
CLEANUP = "orphan_cleanup_outcome"
COMPLIANCE = "compliance_outcome"
FACTS = (AUDIT, CLEANUP, COMPLIANCE)


@dataclass
class HostResults:
    """What one host keeps in the fact cache; ``unreadable`` says why a part of it could not be used."""
    host: str
    audit: Optional[Mapping[str, Any]] = None
    cleanup: Optional[Mapping[str, Any]] = None
    compliance: Optional[Mapping[str, Any]] = None
    unreadable: List[str] = field(default_factory=list)


def parse_duration(text: Any) -> float:
    """Seconds from ``max_age`` (``7d``, ``12h``, seconds)."""
    return seconds(text, "max_age")


def parse_time(text: Any) -> Optional[datetime.datetime]:
    """An ISO 8601 UTC time as the roles write it (``2026-12-07T10:00:00Z``); None when it is not one."""
    try:
        return utc_time(text)
    except ValueError:
        return None


def format_time(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def audit_result(rows: Any, host: str, now: Optional[datetime.datetime] = None) -> Dict[str, Any]:
    """The ``overlay2_audit`` fact of a host: its bounded summaries as plain data (a JSON round trip drops what a
    templating engine attached to the values, which a fact cache would otherwise store and decode per value)."""
    if not isinstance(rows, list) or not all(isinstance(row, Mapping) for row in rows):
        raise ReportError("overlay2_audit_result takes the list of the host's store summaries")
    return {"schema": SCHEMA, "role": AUDIT, "host": host,
            "run_at": format_time(now or datetime.datetime.now(datetime.timezone.utc)),
            "rows": json.loads(json.dumps(rows))}


def _checked(host: str, name: str, value: Any, found: HostResults) -> Optional[Mapping[str, Any]]:
    """One of the host's facts if it is one this code can read; otherwise None, and the reason noted."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        found.unreadable.append("%s is a %s, not a dict" % (name, type(value).__name__))
        return None
    schema = value.get("schema")
    if schema != SCHEMA:
        found.unreadable.append("%s has schema %r; this collection reads schema %d (upgrade the collection on the "
                                "controller)" % (name, schema, SCHEMA))
        return None
    if parse_time(value.get("run_at")) is None:
        found.unreadable.append("%s has no valid run_at" % name)
        return None
    if name == AUDIT and not isinstance(value.get("rows"), list):
        found.unreadable.append("%s has no rows" % name)
        return None
    return value


def from_facts(host: str, facts: Any) -> HostResults:
    """A host's results out of its facts (a cache entry or ``hostvars``); anything else is unreadable."""
    found = HostResults(host=str(host))
    if facts is None:
        return found
    if not isinstance(facts, Mapping):
        found.unreadable.append("the cached facts are a %s, not a dict" % type(facts).__name__)
        return found
    found.audit = _checked(found.host, AUDIT, facts.get(AUDIT), found)
    found.cleanup = _checked(found.host, CLEANUP, facts.get(CLEANUP), found)
    found.compliance = _checked(found.host, COMPLIANCE, facts.get(COMPLIANCE), found)
    return found


def out_of_policy(row: Mapping[str, Any], compliance: Optional[Mapping[str, Any]] = None) -> bool:
    """A store is out of policy when a layer is corrupt, a CIS control fails, or the compliance role failed it."""
    if row.get("verdict") == CORRUPT:
        return True
    if any(control.get("status") == "fail" for control in row.get("cis") or []):
        return True
    return bool(compliance and int(compliance.get("failed") or 0) > 0)


def build(results: Iterable[HostResults], now: datetime.datetime, max_age: float, failed: Sequence[str] = (),
          largest: int = 10) -> Dict[str, Any]:
    """The fleet report (``fleet_report``'s keys and more) over every host of ``results``.

    ``failed`` names the hosts of this run that failed or were unreachable: with no result kept they are listed
    as failed rather than not audited. ``max_age`` is in seconds."""
    rows: List[Dict[str, Any]] = []
    not_audited: List[str] = []
    unreadable: List[Dict[str, str]] = []
    stale: List[str] = []
    cleanup: List[Dict[str, Any]] = []
    compliance: List[Dict[str, Any]] = []
    failed_set = {str(host) for host in failed}
    hosts = 0
    for found in results:
        hosts += 1
        if found.unreadable:
            unreadable.append({"host": found.host, "reason": "; ".join(found.unreadable)})
        if found.cleanup:
            cleanup.append(dict(found.cleanup, host=found.host))
        if found.compliance:
            compliance.append(dict(found.compliance, host=found.host))
        if not found.audit:
            if found.host not in failed_set:
                not_audited.append(found.host)
            continue
        audited_at = parse_time(found.audit["run_at"])
        age = (now - audited_at).total_seconds() if audited_at else None
        is_stale = age is not None and age > max_age
        if is_stale:
            stale.append(found.host)
        for row in found.audit["rows"]:
            if not isinstance(row, Mapping):
                unreadable.append({"host": found.host, "reason": "%s holds a row that is not a dict" % AUDIT})
                continue
            row = dict(row, host=found.host, run_at=found.audit["run_at"], stale=is_stale)
            row["out_of_policy"] = out_of_policy(row, found.compliance)
            rows.append(row)
    try:
        report = fleet_report(rows, sorted(failed_set | set(not_audited)), format_time(now), largest)
    except (KeyError, TypeError, ValueError) as exc:
        raise ReportError("a host's overlay2_audit rows are not what the audit role writes: %s" % exc) from exc
    report["failed_hosts"] = sorted(failed_set)
    report["not_audited"] = sorted(not_audited)
    report["stale_hosts"] = sorted(set(stale))
    report["unreadable"] = sorted(unreadable, key=lambda item: item["host"])
    report["max_age_seconds"] = max_age
    report["cleanup"] = sorted(cleanup, key=lambda item: item["host"])
    report["compliance"] = sorted(compliance, key=lambda item: item["host"])
    totals = report["totals"]
    totals["hosts"] = hosts if hosts else totals["hosts"]
    totals["audited_hosts"] = len({row["host"] for row in rows})
    totals["not_audited_hosts"] = len(not_audited)
    totals["failed_hosts"] = len(failed_set)
    totals["stale_hosts"] = len(report["stale_hosts"])
    totals["out_of_policy_hosts"] = len({row["host"] for row in rows if row["out_of_policy"]}
                                        | {item["host"] for item in compliance if int(item.get("failed") or 0) > 0})
    totals["corrupt_layers"] = sum(int(row.get("corrupt_layers") or 0) for row in rows)
    totals["reclaimed_bytes"] = sum(int(item.get("reclaimed_bytes") or 0) for item in cleanup)
    return report


def problem_hosts(report: Mapping[str, Any]) -> List[str]:
    """The hosts the page shows first: out of policy, stale, failed, not audited or unreadable."""
    found = {row["host"] for row in report.get("hosts") or [] if row.get("out_of_policy") or row.get("stale")}
    found |= set(report.get("missing_hosts") or [])
    found |= {item["host"] for item in report.get("unreadable") or []}
    found |= {item["host"] for item in report.get("compliance") or [] if int(item.get("failed") or 0) > 0}
    return sorted(found)
