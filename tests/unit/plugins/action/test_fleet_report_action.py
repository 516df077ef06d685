"""The fleet report's reading of the fact cache: through the configured cache plugin, a host at a time, a
controller without a persistent cache told so by a code, and a cache that fails as a whole found out after a few
reads, not after one timeout per host."""

from __future__ import annotations

import pytest

from ansible import constants as C
from ansible.plugins.loader import cache_loader

from ansible_collections.strata.overlay2.plugins.action import fleet_report

AUDIT = {"schema": 1, "run_at": "2026-12-07T10:00:00Z", "host": "a", "rows": []}


@pytest.fixture
def jsonfile(tmp_path, monkeypatch):
    monkeypatch.setattr(C, "CACHE_PLUGIN", "jsonfile")
    monkeypatch.setenv("ANSIBLE_CACHE_PLUGIN_CONNECTION", str(tmp_path))
    monkeypatch.setenv("ANSIBLE_CACHE_PLUGIN_TIMEOUT", "3600")
    return cache_loader.get("jsonfile")


def test_each_host_is_read_through_the_cache_plugin_and_only_the_collection_s_facts_kept(jsonfile):
    jsonfile.set("a", {"overlay2_audit": AUDIT, "ansible_distribution": "Debian"})
    warnings = []
    found = list(fleet_report.read_fact_cache(["a", "b"], warnings, 7 * 86400))
    assert [(item.host, item.audit is not None) for item in found] == [("a", True), ("b", False)]
    assert found[0].audit == AUDIT and not found[0].unreadable
    assert "fact_caching_timeout" in warnings[0]  # 3600 s forgets an audit before the 7 days of max_age


def test_without_a_persistent_cache_the_report_says_so_with_a_code(monkeypatch):
    monkeypatch.setattr(C, "CACHE_PLUGIN", "memory")
    with pytest.raises(fleet_report.CacheError) as raised:
        list(fleet_report.read_fact_cache(["a"], [], 60))
    assert raised.value.code == "no_fact_cache" and "fact_caching=jsonfile" in str(raised.value)


def test_results_the_play_passes_are_matched_to_their_hosts():
    found = list(fleet_report.from_results(["a", "b"], [AUDIT, "junk", {"host": "z"}]))
    assert [(item.host, item.audit == AUDIT) for item in found] == [("a", True), ("b", False)]


class FailingCache:
    """A cache plugin whose reads succeed for the first ``good`` hosts and then fail, as a server gone does."""

    def __init__(self, good: int) -> None:
        self.good = good
        self.reads = 0

    def get(self, host):
        self.reads += 1
        if self.reads > self.good:
            raise ConnectionError("Timeout connecting to server")
        return {"overlay2_audit": dict(AUDIT, host=host)}

    def get_option(self, _name):
        return 0


class Loader:
    def __init__(self, cache) -> None:
        self.cache = cache

    def get(self, _name):
        if isinstance(self.cache, Exception):
            raise self.cache
        return self.cache


@pytest.fixture
def redis_configured(monkeypatch):
    monkeypatch.setattr(C, "CACHE_PLUGIN", "community.general.redis")


HOSTS = ["h%03d" % number for number in range(300)]


def test_a_cache_that_fails_from_the_first_read_fails_the_report_with_a_code_after_a_few_reads(
        redis_configured, monkeypatch):
    cache = FailingCache(good=0)
    monkeypatch.setattr(fleet_report, "cache_loader", Loader(cache))
    with pytest.raises(fleet_report.CacheError) as raised:
        list(fleet_report.read_fact_cache(HOSTS, [], 60))
    assert raised.value.code == "fact_cache_unreadable" and "Timeout connecting" in str(raised.value)
    assert cache.reads == fleet_report.FAILING_IN_A_ROW


def test_a_cache_that_fails_midway_is_not_read_further_and_every_host_after_is_named(redis_configured, monkeypatch):
    cache = FailingCache(good=20)
    monkeypatch.setattr(fleet_report, "cache_loader", Loader(cache))
    warnings = []
    found = list(fleet_report.read_fact_cache(HOSTS, warnings, 60))
    assert [item.host for item in found] == HOSTS
    assert [item.host for item in found if item.audit is not None] == HOSTS[:20]
    assert all(item.unreadable for item in found[20:])
    assert cache.reads == 20 + fleet_report.FAILING_IN_A_ROW
    assert len(warnings) == 1 and "%d hosts after them were not read" % (300 - 30) in warnings[0]


def test_a_few_unreadable_entries_among_good_ones_are_only_those_hosts(redis_configured, monkeypatch):
    class Flaky(FailingCache):
        def get(self, host):
            self.reads += 1
            if host.endswith("7"):
                raise ValueError("not JSON")
            return {"overlay2_audit": dict(AUDIT, host=host)}

    cache = Flaky(good=0)
    monkeypatch.setattr(fleet_report, "cache_loader", Loader(cache))
    found = list(fleet_report.read_fact_cache(HOSTS, [], 60))
    assert cache.reads == len(HOSTS)
    assert [item.host for item in found if item.unreadable] == [host for host in HOSTS if host.endswith("7")]


def test_a_cache_plugin_that_cannot_start_fails_the_report_with_a_code(redis_configured, monkeypatch):
    monkeypatch.setattr(fleet_report, "cache_loader",
                        Loader(RuntimeError("The 'redis' python module (version 2.4.5 or newer) is required")))
    with pytest.raises(fleet_report.CacheError) as raised:
        list(fleet_report.read_fact_cache(HOSTS, [], 60))
    assert raised.value.code == "fact_cache_unreadable" and "'redis' python module" in str(raised.value)
