"""The fleet report at 10,000 hosts, from a jsonfile fact cache, beside what an operator would otherwise run.

    .venv/bin/python benchmarks/fleet_report.py [--hosts 10000] [--layers 10000] [--corrupt-layers 100]

Real audits first: the audit playbook (the collection built and installed as a user installs it) over four
stores - a clean sample, one with a leftover of every kind, one with a byte changed under a running container,
and the synthetic store of ``--layers`` layers with ``--corrupt-layers`` of them changed - each host keeping its
``overlay2_audit`` fact in a jsonfile cache. Those results are then copied, through the cache plugin, to
``--hosts`` host names: 1% corrupt (half of them the large store), 10% with orphans, 0.5% stale (audited 30 days
ago), 0.5% never audited. Then, in one run, side by side:

- ``strata.overlay2.report`` over the 10,000-host inventory: wall time and peak RSS of ``ansible-playbook``;
- what an operator would run instead: a playbook that pulls the same fact out of every host through
  ``hostvars`` and writes the list out (no report at all).

And the page: its size, and headless Chromium opening it, every problem host listed in its table.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import subprocess
import sys
import tempfile
import time
from typing import Any, Dict, List, Tuple

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from devtools.collection import ansible_tool, build_and_install  # noqa: E402  pylint: disable=wrong-import-position
from devtools.paths import make_importable  # noqa: E402  pylint: disable=wrong-import-position
from devtools.timing import write_result  # noqa: E402  pylint: disable=wrong-import-position

make_importable()

from tests.support import fleet  # noqa: E402  pylint: disable=wrong-import-position
from tests.support.synthstore import generate  # noqa: E402  pylint: disable=wrong-import-position

# a child's peak RSS: a fresh process that runs the command and reports its children's largest
MEASURE = ("import resource, subprocess, sys, time; start = time.perf_counter(); "
           "code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode; "
           "print(time.perf_counter() - start, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024, code)")
HOSTVARS_PLAYBOOK = """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: every host's result, through hostvars
      ansible.builtin.copy:
        dest: "{{ dest }}"
        content: "{{ groups['fleet'] | map('extract', hostvars) | selectattr('overlay2_audit', 'defined')
                     | map(attribute='overlay2_audit') | list | to_json }}"
        mode: "0644"
"""


def corrupt_layers(root: str, count: int) -> int:
    """Change one byte of a file in ``count`` layers that images use; returns how many were changed."""
    layerdb = os.path.join(root, "image", "overlay2", "layerdb", "sha256")
    changed = 0
    for chain in sorted(os.listdir(layerdb)):
        if changed == count:
            break
        try:
            with open(os.path.join(layerdb, chain, "cache-id"), encoding="ascii") as handle:
                diff = os.path.join(root, "overlay2", handle.read().strip(), "diff")
        except OSError:
            continue
        for directory, _dirs, files in os.walk(diff):
            regular = [name for name in sorted(files) if os.path.isfile(os.path.join(directory, name))
                       and not os.path.islink(os.path.join(directory, name))
                       and os.path.getsize(os.path.join(directory, name)) > 0]
            if regular:
                with open(os.path.join(directory, regular[0]), "r+b") as handle:
                    first = handle.read(1)
                    handle.seek(0)
                    handle.write(bytes([first[0] ^ 0xFF]))
                changed += 1
                break
    return changed


def measured(command: List[str], env: Dict[str, str]) -> Tuple[float, int]:
    out = subprocess.run([sys.executable, "-c", MEASURE] + command, env=env, check=True, capture_output=True,
                         text=True).stdout.split()
    if out[2] != "0":
        raise SystemExit("%s failed (rc %s)" % (command[:2], out[2]))
    return float(out[0]), int(out[1])


def cached_audits(collections: str, work: str, layers: int, corrupt: int) -> Dict[str, Dict[str, Any]]:
    """The overlay2_audit fact of a real audit of each kind of store."""
    stores = {kind: fleet.make_store(os.path.join(work, kind, "docker"), kind) for kind in fleet.KINDS}
    large = os.path.join(work, "large")
    generate(large, layers)
    if corrupt_layers(large, corrupt) != corrupt:
        raise SystemExit("the large store has fewer than %d layers with a file to change" % corrupt)
    stores["large"] = large
    inventory = fleet.write_inventory(os.path.join(work, "audit.ini"), stores)
    cache_dir = os.path.join(work, "audit-cache")
    fleet.audit(collections, cache_dir, inventory)
    os.environ.update(fleet.cache_env(collections, cache_dir))
    from ansible import constants as C  # pylint: disable=import-outside-toplevel
    from ansible.plugins.loader import cache_loader  # pylint: disable=import-outside-toplevel

    C.CACHE_PLUGIN = "jsonfile"
    cache = cache_loader.get("jsonfile")
    return {kind: cache.get(kind)["overlay2_audit"] for kind in stores}


def fill_cache(cache_dir: str, audits: Dict[str, Dict[str, Any]], hosts: int) -> Dict[str, List[str]]:
    """``hosts`` hosts in a jsonfile cache at ``cache_dir``, written through the cache plugin."""
    os.environ["ANSIBLE_CACHE_PLUGIN_CONNECTION"] = cache_dir
    from ansible.plugins.loader import cache_loader  # pylint: disable=import-outside-toplevel

    cache = cache_loader.get("jsonfile")
    kinds: Dict[str, List[str]] = {"large": [], "corrupt": [], "orphans": [], "clean": [], "stale": [], "never": []}
    for number in range(hosts):
        host = "host%05d" % number
        kind = ("large" if number % 200 == 0 else "corrupt" if number % 200 == 100 else "never" if number % 200 == 5
                else "stale" if number % 200 == 7 else "orphans" if number % 10 == 3 else "clean")
        kinds[kind].append(host)
        if kind == "never":
            continue
        fact = copy.deepcopy(audits["clean" if kind == "stale" else kind])
        fact["host"] = host
        if kind == "stale":
            fact["run_at"] = "2026-01-01T00:00:00Z"
        cache.set(host, {"overlay2_audit": fact})
    return kinds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--hosts", type=int, default=10000)
    parser.add_argument("--layers", type=int, default=10000)
    parser.add_argument("--corrupt-layers", type=int, default=100)
    parser.add_argument("--output", default=os.path.join(REPO, "benchmarks", "results", "fleet_report.json"))
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="strata-bench-") as work:
        collections = build_and_install(work)
        audits = cached_audits(collections, work, options.layers, options.corrupt_layers)
        cache_dir = os.path.join(work, "fleet-cache")
        kinds = fill_cache(cache_dir, audits, options.hosts)
        inventory = fleet.write_inventory(os.path.join(work, "fleet.ini"),
                                          {"host%05d" % n: None for n in range(options.hosts)})
        env = fleet.cache_env(collections, cache_dir)
        dest = os.path.join(work, "report")
        os.makedirs(dest)
        report_seconds, report_rss = measured(
            [ansible_tool("ansible-playbook"), "strata.overlay2.report", "-i", inventory,
             "-e", "overlay2_report_dir=%s" % dest], env)
        playbook = os.path.join(work, "hostvars.yml")
        with open(playbook, "w", encoding="utf-8") as handle:
            handle.write(HOSTVARS_PLAYBOOK)
        hostvars_seconds, hostvars_rss = measured(
            [ansible_tool("ansible-playbook"), playbook, "-i", inventory, "-e",
             "dest=%s" % os.path.join(work, "hostvars.json")], env)
        with open(os.path.join(dest, "fleet.json"), encoding="utf-8") as handle:
            report = json.load(handle)
        from ansible_collections.strata.overlay2.plugins.plugin_utils._fleet import problem_hosts  # pylint: disable=import-outside-toplevel
        from tests.browser.check_report import read_report  # pylint: disable=import-outside-toplevel

        start = time.perf_counter()
        dom = read_report(os.path.join(dest, "report.html"))
        browser_seconds = time.perf_counter() - start
        expected = problem_hosts(report)
        result = {
            "hosts": options.hosts,
            "hosts_by_kind": {kind: len(names) for kind, names in kinds.items()},
            "fact_bytes": {kind: len(json.dumps(fact)) for kind, fact in audits.items()},
            "large_store": {"layers": options.layers, "corrupt_layers": options.corrupt_layers},
            "report_seconds": round(report_seconds, 2),
            "report_peak_rss_mib": round(report_rss / 2 ** 20),
            "hostvars_seconds": round(hostvars_seconds, 2),
            "hostvars_peak_rss_mib": round(hostvars_rss / 2 ** 20),
            "report_to_hostvars_time": round(report_seconds / hostvars_seconds, 3),
            "html_bytes": os.path.getsize(os.path.join(dest, "report.html")),
            "fleet_json_bytes": os.path.getsize(os.path.join(dest, "fleet.json")),
            "browser_seconds": round(browser_seconds, 2),
            "problem_hosts": len(expected),
            "problem_hosts_listed": sorted(dom["hosts"]) == sorted(expected),
            "totals": {key: report["totals"][key] for key in ("hosts", "audited_hosts", "not_audited_hosts",
                                                              "stale_hosts", "out_of_policy_hosts", "corrupt_hosts")},
        }
    write_result(options.output, result)
    return 0 if result["problem_hosts_listed"] else 1


if __name__ == "__main__":
    sys.exit(main())
