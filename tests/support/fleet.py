"""A fleet on one machine: hosts that are inventory names with their own synthetic store (local connection), a
fact cache shared by every run (a jsonfile directory, or any plugin as a ``FactCache``), and the audit and
report playbooks run as a user runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sysconfig
from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional, Sequence, Union

from devtools.collection import ansible_env, ansible_tool
from tests.support.leftovers import Leftovers
from tests.support.samples import build_sample

KINDS = ("clean", "corrupt", "orphans")


def make_store(root: str, kind: str) -> str:
    """A sample store: as built, with one byte changed under a running container, or with a leftover of each kind."""
    sample = build_sample(root)
    if kind == "corrupt":
        path = os.path.join(sample.synth.overlay(sample.app.cache_id, "diff"), "opt", "data.bin")
        with open(path, "r+b") as handle:
            handle.write(b"X")
    elif kind == "orphans":
        Leftovers(sample).every_kind()
    return sample.root


def write_inventory(path: str, stores: Mapping[str, Optional[str]],
                    host_vars: Optional[Mapping[str, Mapping[str, str]]] = None) -> str:
    """An INI inventory of the hosts, each auditing its own store (a host mapped to None has none), with
    ``host_vars`` of each host besides."""
    lines = ["[fleet]"]
    for host, root in stores.items():
        values = dict({"overlay2_audit_data_root": root} if root else {}, **(host_vars or {}).get(host, {}))
        lines.append(" ".join([host] + ["%s=%s" % item for item in sorted(values.items())]))
    lines += ["", "[fleet:vars]", "ansible_connection=local", "ansible_python_interpreter=/usr/bin/python3"]
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
    return path


@dataclass(frozen=True)
class FactCache:
    """A fact cache as ansible.cfg names it: ``fact_caching`` (the plugin) and ``fact_caching_connection``;
    ``collections``: where the collection of a plugin outside ansible-core is installed."""

    plugin: str
    connection: str
    collections: Optional[str] = None


def shipped_collections() -> str:
    """Where the ``ansible`` package of this virtualenv keeps the collections it ships (community.general)."""
    path = sysconfig.get_paths()["purelib"]
    if not os.path.isdir(os.path.join(path, "ansible_collections", "community", "general")):
        raise RuntimeError("community.general is not installed in %s (requirements-dev.txt: ansible)" % path)
    return path


Cache = Union[str, FactCache]  # a directory: a jsonfile cache there


def cache_env(collections: str, cache: Cache) -> Dict[str, str]:
    """ansible-playbook's environment with the fact cache ``cache`` (entries never expire)."""
    chosen = cache if isinstance(cache, FactCache) else FactCache("jsonfile", cache)
    if chosen.collections:
        collections = collections + os.pathsep + chosen.collections  # the collection under test first
    return dict(ansible_env(collections), ANSIBLE_CACHE_PLUGIN=chosen.plugin,
                ANSIBLE_CACHE_PLUGIN_CONNECTION=chosen.connection, ANSIBLE_CACHE_PLUGIN_TIMEOUT="0")


def playbook(collections: str, cache: Cache, name: str, inventory: str, extra: Sequence[str] = (),
             limit: Optional[str] = None, check: bool = False) -> "subprocess.Popen[str]":
    """Start ``ansible-playbook strata.overlay2.<name>`` (with ``--check`` when asked); the caller waits."""
    command = [ansible_tool("ansible-playbook"), "strata.overlay2.%s" % name, "-i", inventory]
    command += ["--check"] if check else []
    command += ["-e", "overlay2_become=false"]
    for item in extra:
        command += ["-e", item]
    if limit:
        command += ["--limit", limit]
    return subprocess.Popen(command, env=cache_env(collections, cache), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def finish(process: "subprocess.Popen[str]") -> str:
    output = process.communicate()[0]
    if process.returncode:
        raise AssertionError("ansible-playbook failed (rc %d):\n%s" % (process.returncode, output[-6000:]))
    return output


AUDIT_ONLY = ("overlay2_audit_keep_facts=false", "overlay2_audit_host_files=false", "overlay2_audit_report=false")


def audit(collections: str, cache: Cache, inventory: str, limits: Sequence[Optional[str]] = (None,),
          extra: Sequence[str] = AUDIT_ONLY) -> List[str]:
    """The audit over the inventory, as concurrent runs (one per ``--limit``, as AWX runs a sliced job)."""
    running = [playbook(collections, cache, "audit", inventory, extra, limit) for limit in limits]
    return [finish(process) for process in running]


def report(collections: str, cache: Cache, inventory: str, dest: str, extra: Sequence[str] = ()) -> dict:
    """``strata.overlay2.report`` into ``dest``; returns its fleet.json."""
    os.makedirs(dest, exist_ok=True)
    finish(playbook(collections, cache, "report", inventory, ["overlay2_report_dir=%s" % dest] + list(extra)))
    with open(os.path.join(dest, "fleet.json"), encoding="utf-8") as handle:
        return json.load(handle)


def without_times(report_data: dict) -> dict:
    """The report without what differs from one run to the next: when it and each audit ran, and the history."""
    data = dict(report_data)
    for key in ("generated", "history"):
        data.pop(key, None)
    data["hosts"] = [{key: value for key, value in row.items() if key != "run_at"} for row in data["hosts"]]
    for key in ("cleanup", "compliance"):
        data[key] = [{k: v for k, v in item.items() if k != "run_at"} for item in data.get(key) or []]
    return data
