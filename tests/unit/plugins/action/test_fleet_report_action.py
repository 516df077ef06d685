"""The fleet report's reading of the fact cache: through the configured cache plugin, a host at a time, and a
controller without a persistent cache told so by a code."""

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
