"""Build the collection tarball, install it, and run its playbooks the way a user does."""

from __future__ import annotations

import glob
import json
import os
import subprocess
import sys
from typing import Any, Dict, List, Optional

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.dirname(sys.executable)


def ansible_tool(name: str) -> str:
    path = os.path.join(BIN, name)
    return path if os.path.exists(path) else name


def build_and_install(workdir: str) -> str:
    """``ansible-galaxy collection build`` then ``install``; returns the collections path to use."""
    dist = os.path.join(workdir, "dist")
    collections = os.path.join(workdir, "collections")
    os.makedirs(dist, exist_ok=True)
    subprocess.run([ansible_tool("ansible-galaxy"), "collection", "build", REPO, "--output-path", dist, "--force"],
                   check=True, capture_output=True)
    tarball = glob.glob(os.path.join(dist, "strata-overlay2-*.tar.gz"))[0]
    subprocess.run([ansible_tool("ansible-galaxy"), "collection", "install", tarball, "-p", collections, "--force"],
                   check=True, capture_output=True)
    return collections


def ansible_env(collections: str) -> Dict[str, str]:
    env = dict(os.environ)
    env.update({
        "ANSIBLE_COLLECTIONS_PATH": collections,
        "ANSIBLE_COLLECTIONS_SCAN_SYS_PATH": "false",
        "ANSIBLE_HOST_KEY_CHECKING": "false",
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
        "ANSIBLE_LOCALHOST_WARNING": "false",
        "ANSIBLE_INVENTORY_UNPARSED_WARNING": "false",
    })
    env.pop("PYTHONPATH", None)
    return env


def run_playbook(collections: str, playbook: str, extra_vars: Dict[str, Any],
                 check: bool = True, args: Optional[List[str]] = None) -> subprocess.CompletedProcess:
    """Run a collection playbook against localhost with the system Python as the target interpreter."""
    command = [ansible_tool("ansible-playbook"), playbook, "-i", "localhost,", "-c", "local",
               "-e", json.dumps(dict({"ansible_python_interpreter": "/usr/bin/python3"}, **extra_vars))]
    result = subprocess.run(command + list(args or []), env=ansible_env(collections), capture_output=True,
                            text=True, check=False)
    if check and result.returncode != 0:
        raise AssertionError("%s failed (%d):\n%s\n%s"
                             % (playbook, result.returncode, result.stdout[-4000:], result.stderr[-2000:]))
    return result


def target_pythons() -> Dict[str, str]:
    """Interpreters to run modules with: the system's, and the oldest and newest others this ansible-core
    supports as targets (devtools/matrix.py) that are found here."""
    from ansible.release import __version__  # pylint: disable=import-outside-toplevel

    from devtools.matrix import LEGS  # pylint: disable=import-outside-toplevel
    from devtools.pythons import find  # pylint: disable=import-outside-toplevel

    found = {"system": "/usr/bin/python3"}
    tested = LEGS[".".join(__version__.split(".")[:2])][1]
    for version in (tested[0], tested[-1]):
        path = find(version)
        if path:
            found[version] = path
    return found


def run_module(collections: str, module: str, args: Dict[str, Any], workdir: str,
               python: str = "/usr/bin/python3", check_mode: bool = False) -> Dict[str, Any]:
    """Run one module task through ansible-playbook and return its registered result (failed or not)."""
    playbook = os.path.join(workdir, "run-module.yml")
    output = os.path.join(workdir, "module-result.json")
    with open(playbook, "w", encoding="utf-8") as handle:
        json.dump([{"hosts": "localhost", "gather_facts": False, "tasks": [
            {"name": "run", module: args, "ignore_errors": True, "register": "module_result",
             "check_mode": check_mode, "diff": True},
            {"name": "keep", "ansible.builtin.copy": {"content": "{{ module_result | to_json }}", "dest": output}},
        ]}], handle)
    result = subprocess.run([ansible_tool("ansible-playbook"), playbook, "-i", "localhost,", "-c", "local",
                             "-e", "ansible_python_interpreter=" + python],
                            env=ansible_env(collections), capture_output=True, text=True, check=False)
    try:
        with open(output, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError) as exc:
        raise AssertionError("no module result (%s):\n%s\n%s" % (exc, result.stdout[-3000:], result.stderr[-2000:]))
