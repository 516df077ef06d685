"""The CIS Docker Benchmark module on a real engine (Debian's dockerd 20.10, overlay2).

Images and containers are built to fail one automatable control each, and one container to pass them: each
control gets exactly the verdict and the evidence the fixture was built for, with the daemon up and with it
stopped. 4.8 is compared with what the engine itself exports: ``docker export`` of a created container gives
the image's file system as a container sees it, and its setuid/setgid members are the module's.
"""

from __future__ import annotations

import contextlib
import grp
import io
import os
import stat
import subprocess
import tarfile

import pytest

from ansible_collections.strata.overlay2.plugins.module_utils._cis.containers import CHECKS as CONTAINER_CHECKS
from ansible_collections.strata.overlay2.plugins.module_utils._cis.containers import Containers, container_facts
from ansible_collections.strata.overlay2.plugins.module_utils._store.detect import load_store
from devtools.collection import run_module
from devtools.sandbox import build

MODULE = "strata.overlay2.cis_benchmark"
BAD_IMAGE = "strata/cis-bad:1"
GOOD_IMAGE = "strata/cis-good:1"
BAD_DOCKERFILE = """FROM strata/base:1.0
RUN cp /bin/busybox /bin/suid-tool && chmod 4755 /bin/suid-tool && cp /bin/busybox /bin/sgid-tool \\
    && chmod 2755 /bin/sgid-tool && cp /bin/busybox /bin/gone && chmod 4755 /bin/gone
RUN rm /bin/gone && chmod u-s /bin/suid-tool && chmod u+s /bin/suid-tool
RUN mkdir -p /root/.ssh && printf -- '-----BEGIN OPENSSH PRIVATE KEY-----\\nAAAA\\n-----END OPENSSH PRIVATE KEY-----\\n' \\
    > /root/.ssh/id_rsa
ENV DB_PASSWORD=hunter2-cis
"""
GOOD_DOCKERFILE = """FROM strata/base:1.0
RUN echo ok > /ok
USER 1000
HEALTHCHECK CMD true
"""
# container name -> (docker create flags, the control it fails, the evidence code)
BAD_CONTAINERS = {
    "cis-privileged": (["--privileged"], "5.5", "privileged"),
    "cis-etc": (["-v", "/etc:/host-etc:ro"], "5.6", "sensitive_mount"),
    "cis-pid": (["--pid", "host"], "5.16", "host_pid"),
    "cis-caps": (["--cap-add", "ALL"], "5.4", "capabilities_added"),
    "cis-socket": (["-v", "/var/run/docker.sock:/var/run/docker.sock"], "5.32", "docker_socket"),
    "cis-hostnet": (["--network", "host"], "5.10", "host_network"),
    "cis-seccomp": (["--security-opt", "seccomp=unconfined"], "5.22", "seccomp_unconfined"),
    "cis-ipc": (["--ipc", "host"], "5.17", "host_ipc"),
    "cis-uts": (["--uts", "host"], "5.21", "host_uts"),
    "cis-userns": (["--userns", "host"], "5.31", "host_userns"),
    "cis-device": (["--device", "/dev/null:/dev/host-null"], "5.18", "host_device"),
    "cis-restart": (["--restart", "always"], "5.15", "restart_unlimited"),
    "cis-propagation": (["-v", "/srv:/srv-host:rshared"], "5.20", "shared_propagation"),
    "cis-lowport": (["-p", "127.0.0.1:80:80"], "5.8", "privileged_port"),
    "cis-wildcard": (["-p", "8080:8080"], "5.14", "all_interfaces"),
    "cis-cgroup": (["--cgroup-parent", "/strata-cis"], "5.25", "cgroup_parent_set"),
}
# containers for the controls a host's security module decides (5.2 AppArmor, 5.3 SELinux)
MODULE_CONTAINERS = {"cis-apparmor": ["--security-opt", "apparmor=unconfined"],
                     "cis-nolabel": ["--security-opt", "label=disable"]}
BUILD_IMAGE = "strata/cis-build:1"
BUILD_DOCKERFILE = """FROM strata/base:1.0
RUN apt-get update || true
ADD notes.txt /opt/notes.txt
COPY notes.txt /opt/copy.txt
RUN apt-get update && apt-get install -y curl || true
"""
GOOD_FLAGS = ["--network", "none", "--read-only", "--memory", "64m", "--pids-limit", "100", "--cpu-shares", "512",
              "--security-opt", "no-new-privileges", "--cap-drop", "ALL", "--restart", "on-failure:3"]
JUDGED = ["4.1", "4.6", "4.7", "4.8", "4.9", "4.10", "5.2", "5.3", "5.4", "5.5", "5.6", "5.10", "5.11", "5.12", "5.13", "5.15", "5.16",
          "5.17", "5.18", "5.20", "5.21", "5.22", "5.26", "5.29", "5.31", "5.32", "2.4", "2.2", "5.8", "5.14",
          "5.25"]


@pytest.fixture(scope="module")
def fixture_store(engine):
    build(engine, BAD_IMAGE, BAD_DOCKERFILE)
    build(engine, GOOD_IMAGE, GOOD_DOCKERFILE)
    build(engine, BUILD_IMAGE, BUILD_DOCKERFILE, files={"notes.txt": b"notes\n"})
    created = []
    for name, (flags, _control, _code) in BAD_CONTAINERS.items():
        engine.docker("create", "--name", name, *flags, BAD_IMAGE, "true")
        created.append(name)
    for name, flags in MODULE_CONTAINERS.items():
        engine.docker("create", "--name", name, *flags, BAD_IMAGE, "true")
        created.append(name)
    engine.docker("create", "--name", "cis-good", *GOOD_FLAGS, GOOD_IMAGE, "true")
    created.append("cis-good")
    yield engine
    engine.docker("rm", "-f", *created)
    engine.docker("rmi", BAD_IMAGE, GOOD_IMAGE, BUILD_IMAGE)


def benchmark(engine, collections_path, tmp_path, **extra):
    os.makedirs(str(tmp_path), exist_ok=True)
    result = run_module(collections_path, MODULE, dict({"data_root": engine.data_root, "profile": JUDGED}, **extra),
                        str(tmp_path))
    assert not result.get("failed"), result.get("msg")
    return {control["id"]: control for control in result["controls"]}, result


@contextlib.contextmanager
def daemon_stopped(engine):
    """The session's engine stopped for a while, then started with the containers that ran running again (the
    other engine tests expect them)."""
    running = [c["Id"] for c in engine.inspect(*engine.container_ids()) if c["State"]["Running"]]
    engine.stop()
    try:
        yield
    finally:
        engine.start()
        if running:
            engine.docker("start", *running)


def failing_targets(control):
    return {e["target"] for e in control["evidence"] if control["status"] == "fail" and "waiver" not in e}


def exported_special_files(engine, name):
    """The setuid/setgid regular files of a container's file system, as ``docker export`` gives it."""
    raw = subprocess.run(engine.docker_command() + ["export", name], env=engine.env, capture_output=True,
                         check=True, timeout=300).stdout
    found = {}
    with tarfile.open(fileobj=io.BytesIO(raw)) as archive:
        for member in archive.getmembers():
            if member.isfile() and member.mode & (stat.S_ISUID | stat.S_ISGID):
                found["/" + member.name.lstrip("./")] = member.mode & 0o7777
    return found


def test_each_container_fails_the_control_it_was_built_for_and_the_good_one_passes(
        fixture_store, collections_path, tmp_path):
    controls, _result = benchmark(fixture_store, collections_path, tmp_path)
    for name, (_flags, control, code) in BAD_CONTAINERS.items():
        assert controls[control]["status"] == "fail"
        assert name in failing_targets(controls[control]), (control, controls[control]["evidence"])
        assert {e["code"] for e in controls[control]["evidence"] if e["target"] == name} == {code}
        others = {other for other, (_f, c, _c) in BAD_CONTAINERS.items() if c != control}
        assert not others & failing_targets(controls[control]), (control, others & failing_targets(controls[control]))
    for control in ("5.4", "5.5", "5.6", "5.8", "5.10", "5.11", "5.12", "5.13", "5.14", "5.15", "5.16", "5.17",
                    "5.18", "5.20", "5.21", "5.22", "5.25", "5.26", "5.29", "5.31", "5.32"):
        assert "cis-good" not in failing_targets(controls[control]), (control, controls[control]["evidence"])
    for control in ("5.11", "5.13", "5.26", "5.29"):  # the bad ones are left unlimited and writable
        assert "cis-privileged" in failing_targets(controls[control])


def test_image_controls_match_the_images_built_and_what_the_engine_exports(fixture_store, collections_path, tmp_path):
    controls, _result = benchmark(fixture_store, collections_path, tmp_path)
    assert BAD_IMAGE in failing_targets(controls["4.1"]) and GOOD_IMAGE not in failing_targets(controls["4.1"])
    assert BAD_IMAGE in failing_targets(controls["4.6"]) and GOOD_IMAGE not in failing_targets(controls["4.6"])
    special = {e["detail"].split(":")[0]: e for e in controls["4.8"]["evidence"] if e["target"] == BAD_IMAGE}
    exported = exported_special_files(fixture_store, "cis-privileged")
    assert sorted(special) == sorted(exported) == ["/bin/sgid-tool", "/bin/suid-tool"]  # /bin/gone was removed
    assert "mode %04o" % exported["/bin/suid-tool"] in special["/bin/suid-tool"]["detail"]
    history = fixture_store.inspect(BAD_IMAGE)[0]["RootFS"]["Layers"]
    assert special["/bin/sgid-tool"]["code"] == "setgid" and special["/bin/suid-tool"]["code"] == "setuid"
    # the chmod in the second RUN made a new copy of suid-tool: it comes from that layer, sgid-tool from the first
    layers = {e["detail"].split("from layer ")[1] for e in special.values()}
    assert len(layers) == 2 and len(history) >= 3
    assert GOOD_IMAGE not in failing_targets(controls["4.8"])
    secrets = {e["code"] for e in controls["4.10"]["evidence"] if e["target"] == BAD_IMAGE}
    assert secrets == {"secret_in_env", "secret_in_history", "secret_file"}  # the ENV step is in the history too
    assert "hunter2-cis" not in str(controls)


def test_update_alone_and_add_are_the_build_steps_docker_history_shows(fixture_store, collections_path, tmp_path):
    """A classic-builder image with an update alone in one RUN, an update with an install in another, one ADD
    and one COPY: 4.7 and 4.9 name exactly the update-alone step and the ADD step of ``docker history``."""
    controls, _result = benchmark(fixture_store, collections_path, tmp_path)
    steps = [" ".join(line.split()) for line in fixture_store.docker(
        "history", "--no-trunc", "--format", "{{.CreatedBy}}", BUILD_IMAGE).splitlines() if line.strip()]
    for control, code, wanted in (("4.7", "update_alone", "apt-get update || true"),
                                  ("4.9", "add_instruction", "ADD file:")):
        found = [e for e in controls[control]["evidence"] if e["target"] == BUILD_IMAGE]
        assert [e["code"] for e in found] == [code], (control, found)
        step = [s for s in steps if wanted in s]
        assert len(step) == 1 and found[0]["detail"].endswith(step[0]), (control, step, found)
        assert not {BAD_IMAGE, GOOD_IMAGE} & failing_targets(controls[control]), control
    assert any("COPY file:" in s for s in steps)  # the COPY step is there, and not flagged


def test_apparmor_and_selinux_apply_as_the_engine_reports_them(fixture_store, collections_path, tmp_path):
    """5.2 and 5.3 are judged where the engine applies AppArmor and SELinux (``docker info`` SecurityOptions);
    on the engine's own files, with both assumed on, exactly the containers created without them fail."""
    controls, _result = benchmark(fixture_store, collections_path, tmp_path)
    options = " ".join(fixture_store.api("/info").get("SecurityOptions") or [])
    for control, module in (("5.2", "name=apparmor"), ("5.3", "name=selinux")):
        assert (controls[control]["status"] != "not_applicable") == (module in options), (control, options)
    store = load_store(fixture_store.data_root)
    assumed = Containers(container_facts(store), no_new_privileges=False, apparmor=True, selinux=True, swarm=None)
    apparmor = {e.target: e.code for e in CONTAINER_CHECKS["5.2"](assumed).evidence}
    selinux = CONTAINER_CHECKS["5.3"](assumed)
    profiles = {c["Name"].lstrip("/"): c["AppArmorProfile"] for c in fixture_store.inspect(*created_names())}
    assert apparmor["cis-apparmor"] == "apparmor_unconfined" and profiles["cis-apparmor"] == "unconfined"
    assert apparmor["cis-privileged"] == "apparmor_unconfined"
    for name, profile in profiles.items():  # the engine set no profile where the host has no AppArmor
        if name not in ("cis-apparmor", "cis-privileged"):
            assert apparmor[name] == ("apparmor_missing" if not profile else "apparmor"), (name, profile)
    # the engine writes label=disable itself for --privileged, --pid host and --ipc host
    disabled = {c["Name"].lstrip("/") for c in fixture_store.inspect(*created_names())
                if "label=disable" in (c["HostConfig"]["SecurityOpt"] or [])}
    assert {"cis-nolabel", "cis-privileged", "cis-pid", "cis-ipc"} <= disabled
    codes = {e.target: e.code for e in selinux.evidence}
    assert {name for name in created_names() if codes[name] == "selinux_disabled"} == disabled
    assert {codes[name] for name in created_names() if name not in disabled} == {"selinux_missing"}  # no labels


def created_names():
    return list(BAD_CONTAINERS) + list(MODULE_CONTAINERS) + ["cis-good"]


def test_the_daemons_files_are_judged_by_the_owner_and_mode_they_have(fixture_store, collections_path, tmp_path):
    """Section 3 on this host: Debian's docker.io unit files and the running engine's own socket, each judged
    as ``stat`` shows it; a socket made world-writable fails 3.16 and nothing else changes."""
    engine = fixture_store
    files = ["3.1", "3.2", "3.3", "3.4", "3.15", "3.16", "3.19", "3.20"]
    controls, _result = benchmark(engine, collections_path, tmp_path / "as-is", profile=files)
    docker_gid = grp.getgrnam("docker").gr_gid
    for control in files:
        wanted_mode, wanted_gid = (0o660, docker_gid) if control in ("3.15", "3.16") else (0o644, 0)
        evidence = controls[control]["evidence"]
        assert evidence, control  # every file is there: the package's units, its defaults and the socket
        for item in evidence:
            info = os.stat(item["target"])
            if control in ("3.1", "3.3", "3.15", "3.19"):
                good = info.st_uid == 0 and info.st_gid == wanted_gid
                assert item["code"] == ("owner_ok" if good else "wrong_owner"), (control, item)
            else:
                good = stat.S_IMODE(info.st_mode) & ~wanted_mode == 0
                assert item["code"] == ("mode_ok" if good else "wrong_mode"), (control, item)
    assert [e["target"] for e in controls["3.15"]["evidence"]] == [engine.socket]
    assert controls["3.15"]["status"] == controls["3.16"]["status"] == "pass"  # dockerd makes it root:docker 0660
    os.chmod(engine.socket, 0o666)
    try:
        changed, _result = benchmark(engine, collections_path, tmp_path / "world-writable", profile=files)
    finally:
        os.chmod(engine.socket, 0o660)
    assert changed["3.16"]["status"] == "fail" and changed["3.16"]["evidence"][0]["code"] == "wrong_mode"
    assert {c for c in files if changed[c] != controls[c]} == {"3.16"}


def test_the_daemon_settings_come_from_its_command_line(fixture_store, collections_path, tmp_path):
    controls, _result = benchmark(fixture_store, collections_path, tmp_path)
    assert controls["2.4"]["status"] == "fail" and "command line" in controls["2.4"]["evidence"][0]["detail"]
    assert controls["2.2"]["status"] == "fail"  # icc is left at its default


def test_the_same_verdicts_with_the_daemon_stopped(fixture_store, collections_path, tmp_path):
    running, _result = benchmark(fixture_store, collections_path, tmp_path / "up")
    with daemon_stopped(fixture_store):
        stopped, _result = benchmark(fixture_store, collections_path, tmp_path / "down")
    for control in JUDGED:
        if control.startswith("2."):  # its settings are no longer known: nothing runs on this data-root
            assert stopped[control]["status"] == "manual"
            continue
        assert stopped[control] == running[control], control


def test_waivers_in_a_real_run(fixture_store, collections_path, tmp_path):
    waivers = [{"control": "5.5", "target": "cis-privileged", "reason": "needs the host", "expires": "2099-01-01"},
               {"control": "5.16", "target": "cis-pid", "reason": "old", "expires": "2001-01-01"}]
    controls, _result = benchmark(fixture_store, collections_path, tmp_path, waivers=waivers)
    privileged = [e for e in controls["5.5"]["evidence"] if e["target"] == "cis-privileged"]
    assert privileged and privileged[0]["waiver"]["reason"] == "needs the host"
    pid = [e for e in controls["5.16"]["evidence"] if e["target"] == "cis-pid"]
    assert controls["5.16"]["status"] == "fail" and "expired on 2001-01-01" in pid[0]["detail"]


def test_container_drift_equals_docker_diff_below_the_watched_paths(fixture_store, collections_path, tmp_path):
    """A container that changes /etc, adds to /usr/bin, deletes from /bin and writes /tmp: the facts' drift is
    what ``docker diff`` says below the watched paths, directories aside, with the daemon up and down."""
    engine = fixture_store
    engine.docker("run", "--name", "cis-drift", "--network", "none", "strata/base:1.0", "sh", "-c",
                  "echo x >> /etc/profile; echo y > /etc/new.conf; mkdir -p /usr/local/bin; "
                  "cp /bin/busybox /usr/local/bin/miner; rm /bin/busybox.keep 2>/dev/null; rm -f /bin/cat; "
                  "echo t > /tmp/scratch")
    try:
        diff = engine.docker("diff", "cis-drift").split("\n")
        kinds = {"A": "added", "C": "changed", "D": "deleted"}
        expected = sorted(({"path": path, "kind": kinds[kind]} for kind, path in
                           (line.split(" ", 1) for line in diff if line.strip())
                           if path.startswith(("/bin/", "/etc/", "/usr/")) and path not in directories(engine, diff)),
                          key=lambda e: e["path"])
        for label, stop in (("up", False), ("down", True)):
            with daemon_stopped(engine) if stop else contextlib.nullcontext():
                os.makedirs(str(tmp_path / label))
                result = run_module(collections_path, "strata.overlay2.overlay2_facts",
                                    {"data_root": engine.data_root, "container_drift": True, "orphans": False},
                                    str(tmp_path / label))
            container = next(c for c in result["ansible_facts"]["overlay2"]["containers"] if c["name"] == "cis-drift")
            assert container["drift"]["entries"] == expected and container["drift"]["error"] is None, label
        assert {"path": "/etc/new.conf", "kind": "added"} in expected and {"path": "/bin/cat", "kind": "deleted"} in expected
    finally:
        engine.docker("rm", "-f", "cis-drift")


def directories(engine, diff):
    """The paths of ``docker diff`` that are directories in the container (the facts do not list them)."""
    export = subprocess.run(engine.docker_command() + ["export", "cis-drift"], env=engine.env, capture_output=True,
                            check=True, timeout=300).stdout
    with tarfile.open(fileobj=io.BytesIO(export)) as archive:
        dirs = {"/" + m.name.lstrip("./").rstrip("/") for m in archive.getmembers() if m.isdir()}
    return {line.split(" ", 1)[1] for line in diff if line.strip()} & dirs
