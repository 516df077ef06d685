#!/usr/bin/env python
"""Build the collection tarball and run galaxy-importer (what Galaxy runs on upload) on it:

    devtools/galaxy_import.py [--venv .venvs/importer]

galaxy-importer lives in a virtualenv of its own (it pins its own ansible-core and ansible-lint), made once.
It runs ansible-doc and ansible-lint over the tarball as Galaxy does; ansible-test is off (Galaxy's own runs
it in a container). Fails on any error or warning, except those that need the network, and on a content
list with a name twice or a plugin without documentation.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import re
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = """[galaxy-importer]
LOG_LEVEL_MAIN = INFO
RUN_ANSIBLE_TEST = False
RUN_ANSIBLE_LINT = True
"""
NETWORK = re.compile(r"(?i)(connection|network|resolve host|timed out|unreachable|galaxy server)")
DOCUMENTED = ("module", "filter", "test", "lookup", "inventory", "callback", "connection", "become", "cache",
              "cliconf", "httpapi", "netconf", "shell", "strategy", "vars", "action")


def ensure_importer(venv: str) -> str:
    marker = os.path.join(venv, ".strata-importer")
    if not os.path.exists(marker):
        subprocess.run([sys.executable, "-m", "venv", venv], check=True)
        subprocess.run([os.path.join(venv, "bin", "python"), "-m", "pip", "install", "-q",
                        "--disable-pip-version-check", "galaxy-importer>=0.4.44,<0.5"], check=True)
        with open(marker, "w", encoding="ascii"):
            pass
    return venv


def build(workdir: str, ansible_galaxy: str) -> str:
    subprocess.run([ansible_galaxy, "collection", "build", REPO, "--output-path", workdir, "--force"],
                   check=True, capture_output=True)
    return glob.glob(os.path.join(workdir, "strata-overlay2-*.tar.gz"))[0]


def problems_of(output: str, result: dict) -> list:
    problems = [line for line in output.splitlines()
                if re.match(r"\s*(WARNING|ERROR)\b", line) and not NETWORK.search(line)]
    names = [(c["content_type"], c["name"]) for c in result.get("contents", [])]
    problems += ["listed twice: %s %s" % pair for pair in sorted({p for p in names if names.count(p) > 1})]
    documented = {(c["content_type"], c["content_name"]) for c in result.get("docs_blob", {}).get("contents", [])
                  if c.get("doc_strings")}
    # an action plugin is documented by the module of its name (as ansible-doc shows it)
    documented |= {("action", name) for kind, name in documented if kind == "module"}
    problems += ["no documentation: %s %s" % pair for pair in sorted(set(names))
                 if pair[0] in DOCUMENTED and pair not in documented]
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--venv", default=os.path.join(REPO, ".venvs", "importer"))
    parser.add_argument("--ansible-galaxy", default=os.path.join(os.path.dirname(sys.executable), "ansible-galaxy"))
    args = parser.parse_args()
    venv = ensure_importer(args.venv)
    with tempfile.TemporaryDirectory(prefix="strata-import-") as work:
        tarball = build(work, args.ansible_galaxy)
        config = os.path.join(work, "importer.cfg")
        with open(config, "w", encoding="utf-8") as handle:
            handle.write(CONFIG)
        # a home of its own: the importer installs the collection there for its lint run, which must not leave a
        # copy in the user's ~/.ansible/collections to shadow the working tree in later ansible-lint runs
        env = dict(os.environ, GALAXY_IMPORTER_CONFIG=config, HOME=work,
                   PATH=os.path.join(venv, "bin") + os.pathsep + os.environ.get("PATH", ""))
        env.pop("ANSIBLE_COLLECTIONS_PATH", None)
        run = subprocess.run([os.path.join(venv, "bin", "python"), "-m", "galaxy_importer.main", "--print-result",
                              tarball], env=env, capture_output=True, text=True, cwd=work, check=False)
    output = run.stdout + run.stderr
    start = run.stdout.find("{")
    result = json.loads(run.stdout[start:]) if start >= 0 else {}
    problems = problems_of(output, result) if run.returncode == 0 else [output[-3000:]]
    contents = ["%s %s" % (c["content_type"], c["name"]) for c in result.get("contents", [])]
    print("galaxy-importer on %s: %d content items, %d problems" % (os.path.basename(tarball), len(contents),
                                                                    len(problems)))
    for problem in problems:
        print("  " + problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
