# Copyright (c) strata.overlay2 contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The fleet report, built on the controller from what each host keeps (see plugins/modules/fleet_report.py)."""

from __future__ import annotations

import datetime
import json
import os
from typing import Any, Dict, Iterator, List, Optional, Sequence

from ansible import constants as C
from ansible.errors import AnsibleError
from ansible.plugins.action import ActionBase
from ansible.plugins.loader import cache_loader

from ansible_collections.strata.overlay2.plugins.module_utils._util.safefs import replace_file
from ansible_collections.strata.overlay2.plugins.plugin_utils import _fleet, _history, _report

ARGUMENT_SPEC = {
    "hosts": {"type": "list", "elements": "str", "required": True},
    "dest": {"type": "path", "required": True},
    "results": {"type": "list", "elements": "raw"},
    "failed": {"type": "list", "elements": "str", "default": []},
    "max_age": {"type": "str", "default": "7d"},
    "history": {"type": "bool", "default": True},
    "history_path": {"type": "path"},
    "history_keep_days": {"type": "int", "default": 400},
    "title": {"type": "str", "default": "Docker overlay2 fleet report"},
    "largest": {"type": "int", "default": 10},
    "return_report": {"type": "bool", "default": False},
}
MEMORY_CACHES = ("memory", "ansible.builtin.memory")
CACHE_CHUNK = 256  # hosts read through one cache plugin instance (it keeps what it read; a new one starts empty)
FAILING_IN_A_ROW = 10  # a cache whose reads fail this many times in a row is failing, not one of its entries


class CacheError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def read_fact_cache(hosts: Sequence[str], warnings: List[str], max_age: float) -> Iterator[_fleet.HostResults]:
    """Each host's results, read through the controller's configured cache plugin (never by opening its files)."""
    name = str(C.CACHE_PLUGIN)
    if name in MEMORY_CACHES:
        raise CacheError("no_fact_cache", "the controller keeps no facts between runs (fact_caching=%s): configure a "
                                          "persistent cache (fact_caching=jsonfile, redis, or AWX's fact storage) "
                                          "for the audit and this report" % name)
    cache = None
    read = failing = 0  # entries read; reads failed since the last one that did not
    last_error = ""
    gave_up = False
    for index, host in enumerate(hosts):
        if failing >= FAILING_IN_A_ROW:  # the cache itself fails (a server gone): each further read would too
            if not read:
                raise CacheError("fact_cache_unreadable", "the fact cache (%s) failed for the first %d hosts, "
                                                          "nothing read: %s" % (name, failing, last_error))
            if not gave_up:
                gave_up = True
                warnings.append("the fact cache (%s) failed for %d hosts in a row; the %d hosts after them were "
                                "not read: %s" % (name, failing, len(hosts) - index, last_error))
            yield _fleet.HostResults(host=host, unreadable=["not read: the fact cache failed for the %d hosts "
                                                            "before it" % FAILING_IN_A_ROW])
            continue
        if index % CACHE_CHUNK == 0:
            cache = _load_cache(name)
            if index == 0:
                _check_timeout(cache, max_age, warnings)
        try:
            facts = cache.get(host)
        except KeyError:
            facts = None  # no entry, or one the plugin says has expired
        except Exception as exc:  # a cache plugin's own error: that host is unreadable, the rest stands
            failing, last_error = failing + 1, str(exc)
            yield _fleet.HostResults(host=host, unreadable=["its fact cache entry cannot be read: %s" % exc])
            continue
        read, failing = read + 1, 0
        yield _fleet.from_facts(host, {key: facts.get(key) for key in _fleet.FACTS}
                                if isinstance(facts, dict) else facts)


def _load_cache(name: str) -> Any:
    """A new instance of the configured cache plugin (CacheError when it cannot be loaded or started)."""
    try:
        cache = cache_loader.get(name)
    except Exception as exc:  # the plugin's own start: a missing client library, a bad connection string
        raise CacheError("fact_cache_unreadable", "the fact cache plugin %r cannot be started: %s" % (name, exc))
    if cache is None:
        raise CacheError("cache_plugin_missing", "the fact cache plugin %r cannot be loaded" % name)
    return cache


def _check_timeout(cache: Any, max_age: float, warnings: List[str]) -> None:
    try:
        timeout = int(cache.get_option("_timeout") or 0)
    except (AnsibleError, KeyError, TypeError, ValueError):
        return
    if 0 < timeout < max_age:
        warnings.append("the fact cache forgets a host's facts after %d s (fact_caching_timeout), before max_age "
                        "(%d s): an older audit shows as not audited rather than stale; raise the timeout to at "
                        "least max_age, or 0" % (timeout, max_age))


def from_results(hosts: Sequence[str], results: Sequence[Any]) -> Iterator[_fleet.HostResults]:
    """Each host's results out of the facts the play passed (an audit run's own report)."""
    given: Dict[str, Any] = {}
    for result in results:
        if isinstance(result, dict) and result.get("host"):
            given[str(result["host"])] = result
    for host in hosts:
        yield _fleet.from_facts(host, {_fleet.AUDIT: given.get(host)})


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False
    _supports_check_mode = True

    def run(self, tmp: Optional[str] = None, task_vars: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
        result = super().run(tmp, task_vars)
        del tmp
        _valid, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        result["changed"] = False
        try:
            max_age = _fleet.parse_duration(args["max_age"])
        except ValueError as exc:
            return dict(result, failed=True, code="bad_max_age", msg=str(exc))
        dest = args["dest"]
        if not os.path.isdir(dest):
            return dict(result, failed=True, code="no_report_dir", msg="the report directory %s does not exist" % dest)
        warnings: List[str] = []
        now = datetime.datetime.now(datetime.timezone.utc)
        try:
            found = (from_results(args["hosts"], args["results"]) if args["results"] is not None
                     else read_fact_cache(args["hosts"], warnings, max_age))
            report = _fleet.build(found, now, max_age, args["failed"], args["largest"])
        except CacheError as exc:
            return dict(result, failed=True, code=exc.code, msg=str(exc))
        except _report.ReportError as exc:
            return dict(result, failed=True, code="bad_result", msg=str(exc))
        history_path = args["history_path"] or os.path.join(dest, "history.sqlite3")
        report["history"] = None
        if args["history"] and not self._task.check_mode:
            try:
                report["history"] = _history.record(history_path, report, args["history_keep_days"])
            except _history.HistoryError as exc:
                warnings.append("history not kept: %s" % exc)
        paths = {"json": os.path.join(dest, "fleet.json"), "html": os.path.join(dest, "report.html")}
        result["changed"] = True
        if not self._task.check_mode:
            replace_file(paths["json"], json.dumps(report, indent=1, sort_keys=True) + "\n")
            replace_file(paths["html"], _report.render_html(report, args["title"]))
        totals = report["totals"]
        result.update(
            paths=paths, history_path=history_path if report["history"] else None,
            totals=totals, not_audited=report["not_audited"], stale_hosts=report["stale_hosts"],
            failed_hosts=report["failed_hosts"], unreadable=report["unreadable"],
            problem_hosts=_fleet.problem_hosts(report),
            msg="%d hosts: %d audited, %d not audited, %d stale, %d out of policy"
                % (totals["hosts"], totals["audited_hosts"], totals["not_audited_hosts"], totals["stale_hosts"],
                   totals["out_of_policy_hosts"]))
        if warnings:
            result["warnings"] = warnings
        if args["return_report"]:
            result["report"] = report
        return result
