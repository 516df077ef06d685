"""A private Docker engine on a temporary data-root, and sample images built without a registry.

Used by the engine tests, ``make demo`` and the benchmarks. The engine gets its own
data-root, exec-root, pidfile and socket, with no bridge and no iptables, so it never
touches the host's Docker. Processes are stopped by their pid only.
"""

from __future__ import annotations

import http.client
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from typing import Any, Dict, List, Optional, Set

from ansible_collections.strata.overlay2.plugins.module_utils._util.ids import chain_ids

DOCKERD = shutil.which("dockerd") or "/usr/sbin/dockerd"
# The engine's own CLI (Debian's docker.io) speaks its API version and has the built-in BuildKit client.
DOCKER = "/usr/bin/docker" if os.path.exists("/usr/bin/docker") else (shutil.which("docker") or "docker")
BUSYBOX = "/bin/busybox"
BUSYBOX_APPLETS = ("sh", "ls", "cat", "echo", "mkdir", "rm", "sleep", "true", "dd", "head", "touch",
                   "printf", "cp", "mv", "ln", "sync", "chmod", "env", "id", "seq")


LAYERDB = "image/overlay2/layerdb"


class EngineError(RuntimeError):
    pass


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float = 120) -> None:
        super().__init__("localhost", timeout=timeout)
        self.socket_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self.socket_path)
        self.sock = sock


class Engine:
    """One dockerd on a private data-root under ``base``."""

    def __init__(self, base: Optional[str] = None, extra_args: Optional[List[str]] = None,
                 data_root_flag: bool = True, containerd_store: bool = False) -> None:
        self.base = base or tempfile.mkdtemp(prefix="strata-", dir="/tmp")
        self.extra_args = list(extra_args or [])
        self.data_root_flag = data_root_flag  # False: the data-root comes from the daemon's daemon.json
        self.containerd_store = containerd_store  # True: the containerd image store (overlayfs snapshotter)
        self.data_root = os.path.join(self.base, "root")
        self.exec_root = os.path.join(self.base, "exec")
        self.pidfile = os.path.join(self.base, "dockerd.pid")
        self.socket = os.path.join(self.base, "docker.sock")
        self.log_path = os.path.join(self.base, "dockerd.log")
        self.process: Optional[subprocess.Popen] = None

    # -- lifecycle ---------------------------------------------------------
    @property
    def env(self) -> Dict[str, str]:
        env = dict(os.environ)
        env["DOCKER_HOST"] = "unix://" + self.inside(self.socket)
        env.pop("DOCKER_CONTEXT", None)
        return env

    def start(self, timeout: float = 90) -> "Engine":
        if not os.path.exists(DOCKERD):
            raise EngineError("dockerd not found: install Debian's docker.io (make deps does)")
        os.makedirs(self.data_root, exist_ok=True)
        self._clear_stale_containerd()
        log = open(self.log_path, "ab")  # pylint: disable=consider-using-with
        self.process = subprocess.Popen(  # pylint: disable=consider-using-with
            self.dockerd_command(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            code = self.process.poll()
            if code is not None:
                self.process = None
                self._clear_stale_containerd()  # what it started (or was started beside it) goes too
                raise EngineError("dockerd exited with %s; log:\n%s" % (code, self.log_tail()))
            try:
                self.api("/_ping", raw=True)
                return self
            except OSError:
                time.sleep(0.2)
        raise EngineError("dockerd did not answer within %ss; log:\n%s" % (timeout, self.log_tail()))

    def inside(self, path: str) -> str:
        """A host path as the daemon sees it (the same, for a daemon on the host's root)."""
        return path

    def dockerd_command(self) -> List[str]:
        data_root = ["--data-root", self.inside(self.data_root)] if self.data_root_flag else []
        return [DOCKERD] + data_root + [
            "--exec-root", self.inside(self.exec_root), "--pidfile", self.inside(self.pidfile),
            "-H", "unix://" + self.inside(self.socket), "--bridge=none", "--iptables=false", "--ip-masq=false",
            "--log-level", "warn", "--shutdown-timeout", "2"] + self.storage_args() + self.extra_args

    def storage_args(self) -> List[str]:
        if not self.containerd_store:
            return ["--storage-driver", "overlay2"]
        # the feature flag lives in a config file of this engine's own, never in the root's /etc/docker
        config = os.path.join(self.base, "daemon.json")
        with open(config, "w", encoding="ascii") as handle:
            json.dump({"features": {"containerd-snapshotter": True}}, handle)
        return ["--config-file", self.inside(config)]

    @property
    def containerd_root(self) -> str:
        """Where the managed containerd of a containerd-store engine keeps its state (host path)."""
        return os.path.join(self.data_root, "containerd", "daemon")

    def docker_command(self) -> List[str]:
        return [DOCKER]

    @property
    def version(self) -> str:
        return self.api("/version")["Version"]

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> None:
        """Stop this dockerd by its pid (SIGTERM: clean; SIGKILL: as a crash leaves it)."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        self._clear_stale_containerd()

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def crash(self) -> None:
        """SIGKILL dockerd and its containerd at once, as a power cut leaves them; then clear their shims."""
        pid_path = os.path.join(self.exec_root, "containerd", "containerd.pid")
        for path in (pid_path, getattr(self, "containerd_pidfile", "")):
            try:
                with open(path, encoding="ascii") as handle:
                    pid = int(handle.read().strip())
                if self._is_our_containerd(pid) or path != pid_path:
                    os.kill(pid, signal.SIGKILL)
            except (OSError, ValueError):
                continue
        self.stop(signal.SIGKILL)

    def _clear_stale_containerd(self) -> None:
        """A SIGKILLed dockerd leaves its containerd (and shims) behind: stop them by pid."""
        pid_path = os.path.join(self.exec_root, "containerd", "containerd.pid")
        try:
            with open(pid_path, encoding="ascii") as handle:
                pid = int(handle.read().strip())
        except (OSError, ValueError):
            return
        if self._is_our_containerd(pid):
            os.kill(pid, signal.SIGTERM)
            for _attempt in range(100):
                if not os.path.exists("/proc/%d" % pid):
                    break
                time.sleep(0.1)
            else:
                os.kill(pid, signal.SIGKILL)
        for shim in self._our_shims():
            os.kill(shim, signal.SIGKILL)
        try:
            os.unlink(pid_path)
        except OSError:
            pass

    def _is_our_containerd(self, pid: int) -> bool:
        try:
            with open("/proc/%d/cmdline" % pid, "rb") as handle:
                return self.inside(self.exec_root).encode() in handle.read()
        except OSError:
            return False

    def _our_shims(self) -> List[int]:
        pids = []
        for name in os.listdir("/proc"):
            if name.isdigit() and self._is_our_containerd(int(name)):
                pids.append(int(name))
        return pids

    def destroy(self) -> None:
        """Stop the engine, unmount what it left mounted under ``base`` and remove ``base``."""
        self.stop()
        for mount_point in sorted(self.mounts_under_base(), key=len, reverse=True):
            subprocess.run(["umount", "-l", mount_point], check=False)
        shutil.rmtree(self.base, ignore_errors=True)

    def mounts_under_base(self) -> List[str]:
        points = []
        with open("/proc/self/mountinfo", encoding="utf-8") as handle:
            for line in handle:
                point = line.split()[4]
                if point.startswith(self.base + "/"):
                    points.append(point)
        return points

    def log_tail(self, lines: int = 30) -> str:
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as handle:
                return "".join(handle.readlines()[-lines:])
        except OSError:
            return ""

    # -- talking to it -----------------------------------------------------
    def docker(self, *args: str, stdin: Optional[bytes] = None, env: Optional[Dict[str, str]] = None,
               check: bool = True, timeout: float = 600) -> str:
        full_env = self.env
        full_env.update(env or {})
        result = subprocess.run(self.docker_command() + list(args), input=stdin, env=full_env, capture_output=True,
                                timeout=timeout, check=False)
        if check and result.returncode != 0:
            raise EngineError("docker %s failed (%d): %s"
                              % (" ".join(args), result.returncode, result.stderr.decode(errors="replace")))
        return result.stdout.decode(errors="replace")

    def docker_result(self, *args: str, env: Optional[Dict[str, str]] = None,
                      timeout: float = 600) -> subprocess.CompletedProcess:
        """Run the CLI and return the finished process (text output), whatever its exit code."""
        full_env = self.env
        full_env.update(env or {})
        return subprocess.run(self.docker_command() + list(args), env=full_env, capture_output=True, text=True,
                              timeout=timeout, check=False)

    def run_docker(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
        """Run the CLI with its output discarded and its error kept (``docker save IMAGE > /dev/null``)."""
        return subprocess.run(self.docker_command() + list(args), env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              text=True, timeout=timeout, check=False)

    def api(self, path: str, raw: bool = False) -> Any:
        connection = _UnixConnection(self.socket)
        try:
            connection.request("GET", path)
            response = connection.getresponse()
            body = response.read()
        finally:
            connection.close()
        if response.status != 200:
            raise EngineError("GET %s: %s %s" % (path, response.status, body[:200]))
        return body if raw else json.loads(body)

    def inspect(self, *ids: str) -> List[Dict[str, Any]]:
        return json.loads(self.docker("inspect", *ids)) if ids else []

    def image_ids(self) -> List[str]:
        return sorted(set(self.docker("images", "-a", "-q", "--no-trunc").split()))

    def container_ids(self) -> List[str]:
        return sorted(set(self.docker("ps", "-a", "-q", "--no-trunc").split()))

    def referenced_paths(self) -> Set[str]:
        """Paths (relative to the data-root) that the engine's own inspect output references: every image's
        layer chains and overlay2 directories, every container's directories and mount record."""
        inner_overlay = os.path.join(self.inside(self.data_root), "overlay2")
        referenced: Set[str] = set()

        def dirs_of(data: Optional[Dict[str, str]]) -> None:
            for key in ("UpperDir", "LowerDir", "WorkDir"):
                for path in filter(None, ((data or {}).get(key) or "").split(":")):
                    referenced.add("overlay2/" + os.path.relpath(path, inner_overlay).split("/", maxsplit=1)[0])
        for image in self.inspect(*self.image_ids()):
            dirs_of(image["GraphDriver"]["Data"])
            referenced.update(LAYERDB + "/sha256/" + chain[7:] for chain in chain_ids(image["RootFS"]["Layers"]))
        for container in self.inspect(*self.container_ids()):
            dirs_of(container["GraphDriver"]["Data"])
            referenced.add(LAYERDB + "/mounts/" + container["Id"])
        return referenced

    def __enter__(self) -> "Engine":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.destroy()


class ChrootEngine(Engine):
    """A dockerd of another Debian suite, run from its debootstrap'd root (``root``) in a chroot.

    Nothing is installed on the machine: the daemon, its containerd and the CLI all come from ``root``.
    The daemon runs in a private mount namespace with ``root`` bind-mounted onto itself (``docker import``
    fails without it) and /proc, /sys and /dev bound in; the namespace, and every mount in it, ends with
    the daemon's processes. The engine's files live under ``root``/tmp, so the host reads its data-root
    at ``root`` + the daemon's path.
    """

    def __init__(self, root: str, extra_args: Optional[List[str]] = None, data_root_flag: bool = True,
                 containerd_store: bool = False, system_containerd: bool = False) -> None:
        self.root = os.path.realpath(root)
        super().__init__(tempfile.mkdtemp(prefix="strata-", dir=os.path.join(self.root, "tmp")), extra_args,
                         data_root_flag, containerd_store)
        # layout (b) of the containerd image store: dockerd uses a containerd started beside it (``--containerd``)
        self.system_containerd = system_containerd
        self.containerd_pidfile = os.path.join(self.base, "containerd.pid")

    @property
    def containerd_root(self) -> str:
        if self.system_containerd:
            return os.path.join(self.base, "containerd-root")
        return super().containerd_root

    def inside(self, path: str) -> str:
        return "/" + os.path.relpath(path, self.root)

    def dockerd_command(self) -> List[str]:
        binds = " && ".join("mount --rbind /{0} {1}/{0}".format(name, shlex.quote(self.root))
                            for name in ("proc", "sys", "dev"))
        containerd = ""
        extra: List[str] = []
        if self.system_containerd:
            address = self.inside(os.path.join(self.base, "containerd.sock"))
            words = [shlex.quote(value) for value in (
                self.root, self.inside(self.containerd_root), self.inside(os.path.join(self.base, "containerd-state")),
                address, os.path.join(self.base, "containerd.log"), self.containerd_pidfile)]
            containerd = ("{{ chroot {0} /usr/bin/containerd --root {1} --state {2} --address {3} >>{4} 2>&1 & "
                          "echo $! > {5}; }} && ").format(*words)
            extra = ["--containerd", address]
        script = 'mount --bind {0} {0} && {1} && {2}exec chroot {0} "$@"'.format(shlex.quote(self.root), binds,
                                                                                 containerd)
        return ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", "/usr/sbin/dockerd"] + \
            super().dockerd_command()[1:] + extra

    def docker_command(self) -> List[str]:
        return ["chroot", self.root, "/usr/bin/docker"]

    def _clear_stale_containerd(self) -> None:
        super()._clear_stale_containerd()
        self._stop_system_containerd()
        # after a SIGKILL, shims can keep the namespace alive: they hold no host mounts, stop them by pid
        for pid in self._chrooted_pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass

    def _stop_system_containerd(self) -> None:
        """Stop the containerd started beside dockerd (layout b) by its pid, gracefully."""
        try:
            with open(self.containerd_pidfile, encoding="ascii") as handle:
                pid = int(handle.read().strip())
        except (OSError, ValueError):
            return
        if pid in self._chrooted_pids():
            os.kill(pid, signal.SIGTERM)
            for _attempt in range(100):
                if not os.path.exists("/proc/%d" % pid):
                    break
                time.sleep(0.1)
        os.unlink(self.containerd_pidfile)

    def _chrooted_pids(self) -> List[int]:
        """Processes whose root is this engine's root and whose command line names its base directory."""
        found = []
        marker = self.inside(self.base).encode()
        for name in os.listdir("/proc"):
            if not name.isdigit() or self.process is not None and int(name) == self.process.pid:
                continue
            try:
                if os.readlink("/proc/%s/root" % name) != self.root:
                    continue
                with open("/proc/%s/cmdline" % name, "rb") as handle:
                    if marker in handle.read():
                        found.append(int(name))
            except OSError:
                continue
        return found


def busybox_rootfs(target: str) -> str:
    """A tiny root file system: a static busybox and its applets as symlinks."""
    if not os.path.exists(BUSYBOX):
        raise EngineError("%s not found: install Debian's busybox-static (make deps does)" % BUSYBOX)
    for directory in ("bin", "etc", "tmp", "opt", "var"):
        os.makedirs(os.path.join(target, directory), exist_ok=True)
    shutil.copy2(BUSYBOX, os.path.join(target, "bin", "busybox"))
    for applet in BUSYBOX_APPLETS:
        link = os.path.join(target, "bin", applet)
        if not os.path.lexists(link):
            os.symlink("busybox", link)
    with open(os.path.join(target, "etc", "os-release"), "w", encoding="ascii") as handle:
        handle.write("NAME=strata-busybox\n")
    return target


def import_base(engine: Engine, tag: str = "strata/base:1.0") -> None:
    rootfs = busybox_rootfs(os.path.join(engine.base, "rootfs"))
    archive = subprocess.run(["tar", "-C", rootfs, "-c", "."], capture_output=True, check=True).stdout
    engine.docker("import", "-", tag, stdin=archive)


def build(engine: Engine, tag: str, dockerfile: str, files: Optional[Dict[str, bytes]] = None,
          buildkit: bool = False) -> None:
    context = tempfile.mkdtemp(dir=engine.base, prefix="ctx-")
    with open(os.path.join(context, "Dockerfile"), "w", encoding="utf-8") as handle:
        handle.write(dockerfile)
    for name, content in (files or {}).items():
        with open(os.path.join(context, name), "wb") as handle:
            handle.write(content)
    engine.docker("build", "--network", "none", "-t", tag, engine.inside(context),
                  env={"DOCKER_BUILDKIT": "1" if buildkit else "0"})
    shutil.rmtree(context, ignore_errors=True)


SAMPLE_IMAGES = {
    # classic builder: three RUN layers; a whiteout (a.txt deleted a layer later) and an opaque directory
    "strata/app-a:1.0": ("""FROM strata/base:1.0
RUN mkdir -p /etc/app/conf && echo one > /etc/app/a.txt && echo keep > /etc/app/conf/keep.txt \\
    && dd if=/dev/zero of=/opt/blob.bin bs=1024 count=64 2>/dev/null
RUN rm /etc/app/a.txt && echo two > /etc/app/b.txt
RUN rm -rf /etc/app/conf && mkdir /etc/app/conf && echo new > /etc/app/conf/new.txt
RUN dd if=/dev/zero of=/opt/extra.bin bs=1024 count=16 2>/dev/null && ln /opt/extra.bin /opt/extra.hardlink
LABEL org.example.stage=a
""", {}, False),
    "strata/app-b:1.0": ("""FROM strata/base:1.0
COPY data.txt /data/data.txt
""", {"data.txt": b"first build of app-b\n"}, False),
    # BuildKit: builds on app-a, so it shares all of app-a's layers
    "strata/app-c:1.0": ("""FROM strata/app-a:1.0
RUN echo c > /c.txt && mkdir -p /srv/c && dd if=/dev/zero of=/srv/c/data bs=1024 count=32 2>/dev/null
COPY c.conf /etc/c.conf
RUN rm /opt/blob.bin
""", {"c.conf": b"mode=c\n"}, True),
}


def build_samples(engine: Engine) -> Dict[str, Any]:
    """A store with shared base layers, whiteouts, an opaque dir, BuildKit layers, a dangling image and containers."""
    import_base(engine)
    for tag, (dockerfile, files, buildkit) in SAMPLE_IMAGES.items():
        build(engine, tag, dockerfile, files, buildkit)
    engine.docker("tag", "strata/app-a:1.0", "strata/app-a:latest")
    # rebuilding app-b with other content leaves the first build dangling
    build(engine, "strata/app-b:1.0", SAMPLE_IMAGES["strata/app-b:1.0"][0], {"data.txt": b"second build\n"})
    build(engine, "strata/app-d:1.0", """FROM strata/app-b:1.0
RUN echo d > /d.txt
RUN mkdir /var/d && echo log > /var/d/log
""", {}, buildkit=True)
    containers = {
        "running-a": engine.docker("run", "-d", "--network", "none", "--name", "running-a", "strata/app-a:1.0",
                                   "sh", "-c", "echo hello > /rw.txt; exec sleep 3600").strip(),
        "created-b": engine.docker("create", "--network", "none", "--name", "created-b",
                                   "strata/app-b:1.0", "true").strip(),
        "exited-base": engine.docker("run", "--network", "none", "--name", "exited-base", "strata/base:1.0",
                                     "sh", "-c", "dd if=/dev/zero of=/big bs=1024 count=100 2>/dev/null").strip(),
        "running-c": engine.docker("run", "-d", "--network", "none", "--name", "running-c", "strata/app-c:1.0",
                                   "sleep", "3600").strip(),
    }
    containers["exited-base"] = engine.docker("ps", "-a", "-q", "--no-trunc", "--filter", "name=exited-base").strip()
    return {"containers": containers}
