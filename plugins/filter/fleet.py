# Copyright (c) strata.overlay2 contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Filters of the fleet roles: host summaries, the fleet report, compliance checks and JUnit XML."""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Sequence

from ansible.errors import AnsibleFilterError

from ansible_collections.strata.overlay2.plugins.plugin_utils import _compliance, _report


def _guard(function: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except (_report.ReportError, TypeError) as exc:
            raise AnsibleFilterError("%s: %s" % (function.__name__, exc)) from exc
    wrapper.__name__ = function.__name__
    wrapper.__doc__ = function.__doc__
    return wrapper


@_guard
def overlay2_host_summary(facts: Any, verdict: Any = None, host: str = "") -> Dict[str, Any]:
    return _report.host_summary(facts, verdict, host)


@_guard
def overlay2_fleet_report(hosts: Any, missing: Optional[Sequence[str]] = None, generated: str = "",
                          largest: int = 10) -> Dict[str, Any]:
    return _report.fleet_report(hosts, missing or (), generated, largest)


@_guard
def overlay2_report_html(report: Any, title: str = "Docker overlay2 fleet report") -> str:
    return _report.render_html(report, title)


@_guard
def overlay2_compliance(facts: Any, verdict: Any = None, policy: Optional[Dict[str, Any]] = None) -> List[Dict[str, Any]]:
    return _compliance.evaluate(facts, verdict, policy or {})


@_guard
def overlay2_junit(checks: Any, host: str, timestamp: str = "") -> str:
    return _compliance.junit_xml(checks, host, timestamp)


class FilterModule:
    def filters(self) -> Dict[str, Callable[..., Any]]:
        return {
            "overlay2_host_summary": overlay2_host_summary,
            "overlay2_fleet_report": overlay2_fleet_report,
            "overlay2_report_html": overlay2_report_html,
            "overlay2_compliance": overlay2_compliance,
            "overlay2_junit": overlay2_junit,
        }
