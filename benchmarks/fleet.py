"""What a fleet pays per host: overlay2_facts' result with ``gather_subset: [summary]`` against ``all``, in one run.

    .venv/bin/python benchmarks/fleet.py [--layers 10000] [--repeat 5]

On the 10,000-layer synthetic store of ``benchmarks/run``, ``ansible-playbook`` runs one ``overlay2_facts`` task
(the collection built and installed as a user installs it; the target is the system Python) with each subset,
round by round. The task's time is what the user waits for (the JUnit callback's time of that task: the
module, and Ansible carrying its result back); the size is the JSON of the facts the task returns, what a fact
cache or AWX's fact storage keeps for the host. Each subset runs twice a round: without a fact cache, and with a
jsonfile fact cache on the controller, as a fleet's controller keeps one (where ``all`` also stores its map).
The results are the sizes and the ratios to ``all``.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import statistics
import subprocess
import sys
import tempfile
from typing import Dict, List, Tuple
from xml.etree import ElementTree

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from devtools.collection import ansible_env, ansible_tool, build_and_install  # noqa: E402  pylint: disable=wrong-import-position
from devtools.paths import make_importable  # noqa: E402  pylint: disable=wrong-import-position
from devtools.timing import write_result  # noqa: E402  pylint: disable=wrong-import-position

make_importable()

from tests.support.synthstore import generate  # noqa: E402  pylint: disable=wrong-import-position

SUBSETS = {"all": ["all"], "all but usage": ["!usage"], "summary": ["summary"]}


def run_task(collections: str, work: str, root: str, subset: List[str], name: str,
             cache: bool = False) -> Tuple[float, int]:
    """(the task's seconds, the bytes of the facts it returned) of one ansible-playbook run; with ``cache``, the
    controller keeps facts in a jsonfile fact cache, as a fleet's controller (or AWX's fact storage) does."""
    output = os.path.join(work, "facts-%s.json" % name.replace(" ", "-"))
    playbook = os.path.join(work, "facts.yml")
    with open(playbook, "w", encoding="utf-8") as handle:
        json.dump([{"hosts": "localhost", "gather_facts": False, "tasks": [
            {"name": "timed-overlay2-facts", "strata.overlay2.overlay2_facts": {"data_root": root, "gather_subset": subset}},
            {"name": "keep", "ansible.builtin.copy": {"content": "{{ ansible_facts.overlay2 | to_json }}",
                                                      "dest": output}},
        ]}], handle)
    junit = os.path.join(work, "junit")
    for stale in glob.glob(os.path.join(junit, "*.xml")):
        os.unlink(stale)
    env = dict(ansible_env(collections), ANSIBLE_CALLBACKS_ENABLED="ansible.builtin.junit", JUNIT_OUTPUT_DIR=junit,
               JUNIT_TASK_CLASS="true")
    if cache:
        env.update(ANSIBLE_CACHE_PLUGIN="jsonfile", ANSIBLE_CACHE_PLUGIN_CONNECTION=os.path.join(work, "fact-cache"),
                   ANSIBLE_CACHE_PLUGIN_TIMEOUT="0")
    subprocess.run([ansible_tool("ansible-playbook"), playbook, "-i", "localhost,", "-c", "local",
                    "-e", "ansible_python_interpreter=/usr/bin/python3"], env=env, check=True, capture_output=True)
    (report,) = glob.glob(os.path.join(junit, "*.xml"))
    cases = ElementTree.parse(report).getroot().iter("testcase")
    seconds = next(float(case.get("time")) for case in cases if "timed-overlay2-facts" in case.get("name", ""))
    return seconds, os.path.getsize(output)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--layers", type=int, default=10000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--output", default=os.path.join(REPO, "benchmarks", "results", "fleet.json"))
    options = parser.parse_args()
    runs = [(name, subset, cache) for cache in (False, True) for name, subset in SUBSETS.items()]
    times: Dict[Tuple[str, bool], List[float]] = {(name, cache): [] for name, _subset, cache in runs}
    sizes: Dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="strata-bench-") as work:
        collections = build_and_install(work)
        root = os.path.join(work, "store")
        shape = generate(root, options.layers)
        for name, subset, cache in runs:  # a first, untimed run of each warms the page cache
            run_task(collections, work, root, subset, name, cache)
        for _round in range(options.repeat):
            for name, subset, cache in runs:
                seconds, size = run_task(collections, work, root, subset, name, cache)
                times[(name, cache)].append(seconds)
                sizes[name] = size
    medians = {key: statistics.median(values) for key, values in times.items()}
    result = {
        "store": shape,
        "facts_bytes": sizes,
        "task_seconds": {name: round(medians[(name, False)], 3) for name in SUBSETS},
        "task_ratio_to_all": {name: round(medians[(name, False)] / medians[("all", False)], 3) for name in SUBSETS},
        "with_fact_cache": {
            "task_seconds": {name: round(medians[(name, True)], 3) for name in SUBSETS},
            "task_ratio_to_all": {name: round(medians[(name, True)] / medians[("all", True)], 3) for name in SUBSETS},
        },
        "repeat": options.repeat,
    }
    write_result(options.output, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
