"""What a fleet pays per host: overlay2_facts' result with ``gather_subset: [summary]`` against ``all``, in one run.

    .venv/bin/python benchmarks/fleet.py [--layers 10000] [--repeat 5]

On the 10,000-layer synthetic store of ``benchmarks/run``, ``ansible-playbook`` runs an ``overlay2_facts`` task
(the collection built and installed as a user installs it; the target is the system Python) with each subset,
round by round. The task's time is what the user waits for (the JUnit callback's time of that task: the
module, and Ansible carrying its result back); the size is the JSON of the facts the task returns, what a fact
cache or AWX's fact storage keeps for the host. Each play runs the task twice: the first task of a run also
waits for the controller to build the module's payload (once per run and module, however many hosts), the
second is what each further host of a fleet costs. Each subset runs twice a round: without a fact cache, and with a
jsonfile fact cache on the controller, as a fleet's controller keeps one (where ``all`` also stores its map).
The results are the sizes and the ratios to ``all``, beside what ``ansible.builtin.ping`` (a module that reads
nothing) costs in the same two places: the floor of any module's task; and what ``overlay2_facts`` costs when
it is refused at its argument check (an unknown ``gather_subset`` part): its payload built and its code
imported and started, nothing read, the floor of this module's task.
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
from dataclasses import dataclass
from typing import Any, Dict, List, Tuple
from xml.etree import ElementTree

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from devtools.collection import ansible_env, ansible_tool, build_and_install  # noqa: E402  pylint: disable=wrong-import-position
from devtools.paths import make_importable  # noqa: E402  pylint: disable=wrong-import-position
from devtools.timing import write_result  # noqa: E402  pylint: disable=wrong-import-position

make_importable()

from tests.support.synthstore import generate  # noqa: E402  pylint: disable=wrong-import-position

SUBSETS = {"all": ["all"], "all but usage": ["!usage"],
           # what the audit role gathers with the fleet's settings (neither the whole map nor host files kept)
           "all but the layer and container lists": ["!layers", "!containers"],
           "summary": ["summary"]}
FLOOR = "ansible.builtin.ping"  # a module that reads nothing: what any task costs
REFUSED = "overlay2_facts refused"  # this module started and stopped at its argument check: what any of its tasks costs
REFUSED_SUBSET = ["not-a-part"]


@dataclass(frozen=True)
class Task:
    """One timed task: its name in the results, the module and arguments it runs, and whether it returns facts
    (else it is a floor: it either reads nothing or is refused at its argument check, its error ignored)."""

    name: str
    action: Dict[str, Any]
    returns_facts: bool
    cache: bool = False

    @classmethod
    def facts(cls, name: str, root: str, subset: List[str], cache: bool) -> "Task":
        return cls(name, {"strata.overlay2.overlay2_facts": {"data_root": root, "gather_subset": subset}}, True, cache)

    @classmethod
    def ping(cls) -> "Task":
        return cls(FLOOR, {"ansible.builtin.ping": {}}, False)

    @classmethod
    def refused(cls, root: str) -> "Task":
        return cls(REFUSED, {"strata.overlay2.overlay2_facts": {"data_root": root, "gather_subset": REFUSED_SUBSET},
                             "ignore_errors": True}, False)


def run_task(collections: str, work: str, task: Task) -> Tuple[float, float, int]:
    """(the first task's seconds, the second's, the bytes of the facts it returned: 0 for a floor) of one
    ansible-playbook run; with ``task.cache``, the controller keeps facts in a jsonfile fact cache, as a fleet's
    controller (or AWX's fact storage) does."""
    output = os.path.join(work, "facts-%s.json" % task.name.replace(" ", "-"))
    playbook = os.path.join(work, "facts.yml")
    copy = {"content": "{{ ansible_facts.overlay2 | to_json }}", "dest": output}
    keep = [{"name": "keep", "ansible.builtin.copy": copy}] if task.returns_facts else []
    with open(playbook, "w", encoding="utf-8") as handle:
        json.dump([{"hosts": "localhost", "gather_facts": False, "tasks": [
            dict(task.action, name="timed-first"), dict(task.action, name="timed-again")] + keep}], handle)
    junit = os.path.join(work, "junit")
    for stale in glob.glob(os.path.join(junit, "*.xml")):
        os.unlink(stale)
    env = dict(ansible_env(collections), ANSIBLE_CALLBACKS_ENABLED="ansible.builtin.junit", JUNIT_OUTPUT_DIR=junit,
               JUNIT_TASK_CLASS="true")
    if task.cache:
        env.update(ANSIBLE_CACHE_PLUGIN="jsonfile", ANSIBLE_CACHE_PLUGIN_CONNECTION=os.path.join(work, "fact-cache"),
                   ANSIBLE_CACHE_PLUGIN_TIMEOUT="0")
    subprocess.run([ansible_tool("ansible-playbook"), playbook, "-i", "localhost,", "-c", "local",
                    "-e", "ansible_python_interpreter=/usr/bin/python3"], env=env, check=True, capture_output=True)
    (report,) = glob.glob(os.path.join(junit, "*.xml"))
    cases = list(ElementTree.parse(report).getroot().iter("testcase"))
    first, again = (next(float(case.get("time")) for case in cases if name in case.get("name", ""))
                    for name in ("timed-first", "timed-again"))
    return first, again, os.path.getsize(output) if task.returns_facts else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--layers", type=int, default=10000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--output", default=os.path.join(REPO, "benchmarks", "results", "fleet.json"))
    options = parser.parse_args()
    times: Dict[Tuple[str, bool, str], List[float]] = {}
    sizes: Dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="strata-bench-") as work:
        collections = build_and_install(work)
        root = os.path.join(work, "store")
        shape = generate(root, options.layers)
        runs = [Task.facts(name, root, subset, cache) for cache in (False, True) for name, subset in SUBSETS.items()]
        runs += [Task.ping(), Task.refused(root)]
        for task in runs:  # a first, untimed run of each warms the page cache
            run_task(collections, work, task)
        for _round in range(options.repeat):
            for task in runs:
                first, again, size = run_task(collections, work, task)
                times.setdefault((task.name, task.cache, "first"), []).append(first)
                times.setdefault((task.name, task.cache, "again"), []).append(again)
                if task.returns_facts:
                    sizes[task.name] = size
    medians = {key: statistics.median(values) for key, values in times.items()}

    def timings(cache: bool, task: str) -> Dict[str, Dict[str, float]]:
        return {"task_seconds": {name: round(medians[(name, cache, task)], 3) for name in SUBSETS},
                "task_ratio_to_all": {name: round(medians[(name, cache, task)] / medians[("all", cache, task)], 3)
                                      for name in SUBSETS}}

    result = {
        "store": shape,
        "facts_bytes": sizes,
        **timings(False, "first"),  # the run's first task: the payload is built
        "each_further_host": timings(False, "again"),
        "with_fact_cache": dict(timings(True, "first"), each_further_host=timings(True, "again")),
        "floor": {"module": FLOOR, "task_seconds": round(medians[(FLOOR, False, "first")], 3),
                  "each_further_host": round(medians[(FLOOR, False, "again")], 3)},
        # this module's own floor: its payload built, its code imported and started, nothing read
        "module_floor": {"module": "strata.overlay2.overlay2_facts", "gather_subset": REFUSED_SUBSET,
                         "task_seconds": round(medians[(REFUSED, False, "first")], 3),
                         "each_further_host": round(medians[(REFUSED, False, "again")], 3)},
        "repeat": options.repeat,
    }
    write_result(options.output, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
