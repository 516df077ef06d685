#!/usr/bin/env python
"""A fleet of Docker-in-Docker test hosts for the Molecule scenarios, built without a registry.

    devtools/fleet.py run -- molecule test --all

starts a private outer dockerd (``sandbox.Engine``), makes sure the host images exist in it
(``strata-host:bookworm`` with Debian 12's docker.io 20.10 and ``strata-host:testing`` with the
testing suite's docker.io 28.x), runs the command with DOCKER_HOST pointing at that engine, and
stops the engine by its pid, whatever the command did.

Host images are a ``debootstrap --variant=minbase`` root filesystem imported with ``docker import``.
The Debian mirror is read from this machine's apt sources at run time; it is never written into the
repository. Root filesystems are kept as tarballs under ``.cache/fleet`` (git-ignored), so one run,
or one developer's machine, builds each suite once.
"""

from __future__ import annotations

import argparse
import glob
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Optional, Tuple

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from devtools.paths import make_importable  # noqa: E402  pylint: disable=wrong-import-position

make_importable()

from devtools.sandbox import Engine  # noqa: E402  pylint: disable=wrong-import-position

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CACHE = os.path.join(REPO, ".cache", "fleet")
COMMON_PACKAGES = ("python3", "docker.io", "iptables", "ca-certificates", "procps")
# Suite -> packages beyond the common ones. Debian testing ships the CLI as its own package.
SUITES: Dict[str, Tuple[str, ...]] = {
    "bookworm": (),
    "testing": ("docker-cli", "docker-buildx"),
}
IMAGE = "strata-host:%s"
HOST_LABEL = "org.strata.fleet-host"
# The inner engine runs as a service (Debian's init script), so that a role can stop and start it
# the way it would on a real host; the container's first process only keeps the host alive.
HOST_FILES = {
    "etc/default/docker": 'DOCKER_OPTS="--iptables=false --ip-masq=false --bridge=none --storage-driver=overlay2"\n',
}
HOST_COMMAND = '["/bin/sh", "-c", "service docker start && exec sleep infinity"]'


def apt_mirror(apt_dir: str = "/etc/apt") -> str:
    """The main Debian archive URI of this machine's apt sources (deb822 or one-line format)."""
    candidates: List[str] = []
    for path in sorted(glob.glob(os.path.join(apt_dir, "sources.list.d", "*.sources"))):
        with open(path, encoding="utf-8") as handle:
            stanzas = handle.read().split("\n\n")
        for stanza in stanzas:
            fields = dict(line.split(":", 1) for line in stanza.splitlines()
                          if ":" in line and not line.startswith(("#", " ")))
            uris, suites = fields.get("URIs", "").split(), fields.get("Suites", "").split()
            if uris and suites and not all(suite.endswith("-security") for suite in suites):
                candidates.append(uris[0])
    one_line = [os.path.join(apt_dir, "sources.list")] + sorted(glob.glob(os.path.join(apt_dir, "sources.list.d", "*.list")))
    for path in one_line:
        if os.path.exists(path):
            with open(path, encoding="utf-8") as handle:
                for line in handle:
                    match = re.match(r"\s*deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)", line)
                    if match and not match.group(2).endswith("-security"):
                        candidates.append(match.group(1))
    if not candidates:
        raise SystemExit("no Debian mirror found in %s/sources.list*; debootstrap needs one" % apt_dir)
    return candidates[0]


def rootfs_tarball(suite: str) -> str:
    """Build (or reuse) the debootstrap root filesystem of ``suite`` as a tarball; return its path."""
    os.makedirs(CACHE, exist_ok=True)
    tarball = os.path.join(CACHE, "%s.tar" % suite)
    if os.path.exists(tarball):
        return tarball
    packages = ",".join(COMMON_PACKAGES + SUITES[suite])
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="strata-rootfs-", dir="/var/tmp") as target:
        subprocess.run(["debootstrap", "--variant=minbase", "--include=" + packages, suite, target, apt_mirror()],
                       check=True, stdout=subprocess.DEVNULL)
        # An apt cache is of no use in a test host.
        subprocess.run(["sh", "-c", "rm -rf %s/var/cache/apt/archives/*.deb %s/var/lib/apt/lists/*" % (target, target)],
                       check=True)
        for relative, content in HOST_FILES.items():
            with open(os.path.join(target, relative), "w", encoding="utf-8") as handle:
                handle.write(content)
        # Without CAP_SYS_RESOURCE the init script cannot raise its rlimits; let it go on with the ones it has.
        subprocess.run(["sed", "-i", "-E", r"s/^(\s*ulimit -[npu] \S+)$/\1 || true/",
                        os.path.join(target, "etc/init.d/docker")], check=True)
        partial = tarball + ".partial"
        subprocess.run(["tar", "-C", target, "--numeric-owner", "-cf", partial, "."], check=True)
        os.rename(partial, tarball)
    print("fleet: %s root filesystem built in %.0f s" % (suite, time.monotonic() - started), flush=True)
    return tarball


def suite_root(suite: str) -> str:
    """The root filesystem of ``suite`` unpacked under .cache (once), for a daemon run in a chroot."""
    target = os.path.join(REPO, ".cache", "roots", suite)
    marker = os.path.join(target, ".strata-unpacked")
    tarball = rootfs_tarball(suite)
    if os.path.exists(marker) and os.path.getmtime(marker) >= os.path.getmtime(tarball):
        return target
    subprocess.run(["rm", "-rf", "--one-file-system", target], check=True)
    os.makedirs(target)
    subprocess.run(["tar", "-C", target, "--numeric-owner", "-xf", tarball], check=True)
    with open(marker, "w", encoding="ascii"):
        pass
    return target


def ensure_image(engine: Engine, suite: str) -> str:
    """Import the host image of ``suite`` unless the engine holds one made from the same tarball."""
    tag = IMAGE % suite
    tarball = rootfs_tarball(suite)
    stat = os.stat(tarball)
    source = "%s-%d-%d" % (suite, stat.st_size, stat.st_mtime)
    label = engine.docker("image", "inspect", "--format", '{{index .Config.Labels "%s"}}' % HOST_LABEL, tag,
                          check=False).strip()
    if label == source:
        return tag
    with open(tarball, "rb") as handle:
        subprocess.run(["docker", "import", "--change", "LABEL %s=%s" % (HOST_LABEL, source),
                        "--change", "CMD " + HOST_COMMAND, "-", tag],
                       stdin=handle, env=engine.env, check=True, stdout=subprocess.DEVNULL)
    print("fleet: imported %s" % tag, flush=True)
    return tag


# Lines of Ansible's and Molecule's output that say what failed. CI keeps only the end of a long log, so a
# failed run repeats them at its end.
FAILURE_MARKS = ("fatal: [", "failed: [", "UNREACHABLE!", "ERROR!", "[ERROR]")
NEW_OUTPUT = ("TASK [", "PLAY [", "PLAY RECAP", "ok: [", "changed: [", "skipping: [", "included:", "...ignoring",
              "INFO", "ERROR", "WARNING", "[WARNING]", "[ERROR]") + FAILURE_MARKS
ANSI = re.compile(r"\x1b\[[0-9;]*m")
LOG = os.path.join(REPO, "tests", "output", "fleet.log")


def failure_digest(lines: List[str], limit: int = 40, width: int = 1500) -> List[str]:
    """The failed tasks in ``lines`` (Ansible output, which Molecule wraps at 80 columns): each failure, its
    wrapped lines joined again, after the task it ended."""
    digest: List[str] = []
    task = ""
    failing = wrapped = False  # the last line began a failure or a task name that a line may continue
    for raw in lines:
        line = ANSI.sub("", raw).strip(" \n\u2502")
        continues = (failing or wrapped) and bool(line) and not line.startswith(NEW_OUTPUT)
        if continues and failing:
            digest[-1] += " " + line
            continue
        if continues:
            task = (task + " " + line).rstrip("* ")
            wrapped = "]" not in line
            continue
        failing = wrapped = False
        if line.startswith(("TASK [", "PLAY [")):
            task = line.rstrip("* ")
            wrapped = "]" not in line
        elif line == "...ignoring" and digest and digest[-1] != task:
            digest.pop()  # Ansible prints it under the failure it ignores
            if digest and digest[-1] == task:
                digest.pop()
        elif any(mark in line for mark in FAILURE_MARKS):
            if task and task not in digest:
                digest.append(task)
            digest.append(line)
            failing = True
    return [line[:width] + (" ..." if len(line) > width else "") for line in digest[-limit:]]


def run_logged(command: List[str], env: Dict[str, str], log_path: str = LOG) -> int:
    """Run ``command`` with its output shown and kept in ``log_path``; on failure, repeat what failed."""
    os.makedirs(os.path.dirname(log_path), exist_ok=True)
    with open(log_path, "w", encoding="utf-8", errors="replace") as log, \
            subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             encoding="utf-8", errors="replace") as process:
        assert process.stdout is not None
        for line in process.stdout:
            sys.stdout.write(line)
            sys.stdout.flush()
            log.write(line)
    if process.returncode != 0:
        with open(log_path, encoding="utf-8", errors="replace") as log:
            digest = failure_digest(log.readlines())
        print("fleet: the command failed (rc=%d); the failures in %s (a rescued one too):" % (process.returncode, log_path))
        for line in digest or ["(no failed task in the output)"]:
            print("fleet:   " + line)
        sys.stdout.flush()
    return process.returncode


def _exit_on_signal(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def run(command: List[str], base: Optional[str], suites: List[str]) -> int:
    """Run ``command`` against a fresh outer engine; a SIGTERM or SIGINT still stops the engine."""
    signal.signal(signal.SIGTERM, _exit_on_signal)
    signal.signal(signal.SIGINT, _exit_on_signal)
    engine = Engine(base)
    try:
        engine.start()
        for suite in suites:
            ensure_image(engine, suite)
        env = engine.env
        env["STRATA_FLEET_SUITES"] = ",".join(suites)
        return run_logged(command, env)
    finally:
        engine.destroy()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    sub = parser.add_subparsers(dest="action", required=True)
    build = sub.add_parser("rootfs", help="build the root filesystem tarballs only")
    build.add_argument("suites", nargs="*", default=list(SUITES))
    runner = sub.add_parser("run", help="run a command against a fleet engine holding the host images")
    runner.add_argument("--base", help="the outer engine's directory (default: a new one under /tmp)")
    runner.add_argument("--suites", default=",".join(SUITES))
    runner.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    if args.action == "rootfs":
        for suite in args.suites:
            print(rootfs_tarball(suite))
        return 0
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("run needs a command after --")
    return run(command, args.base, args.suites.split(","))


if __name__ == "__main__":
    sys.exit(main())
