"""The CIS Docker Benchmark from files: the catalogue, what each section reads and decides, and waivers."""

from __future__ import annotations

import datetime
import json
import os

import pytest

from ansible_collections.strata.overlay2.plugins.module_utils._backends.registry import backend_for
from ansible_collections.strata.overlay2.plugins.module_utils._cis import images as _cis_images
from ansible_collections.strata.overlay2.plugins.module_utils._cis.catalogue import (
    BY_ID,
    CONTROLS,
    LEVEL1,
    Waiver,
    select,
)
from ansible_collections.strata.overlay2.plugins.module_utils._cis.benchmark import (
    evaluate, host_has_apparmor, host_has_selinux)
from ansible_collections.strata.overlay2.plugins.module_utils._cis.containers import CHECKS as CONTAINER_CHECKS
from ansible_collections.strata.overlay2.plugins.module_utils._cis.containers import Containers, container_facts
from ansible_collections.strata.overlay2.plugins.module_utils._cis.daemon import parse_command_line
from ansible_collections.strata.overlay2.plugins.module_utils._cis.images import tar_split_headers, walked_headers
from ansible_collections.strata.overlay2.plugins.module_utils._util.safefs import SafeDir
from ansible_collections.strata.overlay2.plugins.module_utils._store.detect import load_store
from tests.support.synthstore import HOST_CONFIG, SyntheticStore, directory, file, opaque, whiteout

TODAY = datetime.date(2026, 12, 4)


def report_of(root, ids, waivers=(), host_root="/"):
    report = evaluate(load_store(root), None, select(ids), [Waiver.parse(w) for w in waivers], host_root, TODAY)
    return {r["id"]: r for r in report.as_dict()["controls"]}, report


def evidence(result):
    return [(e["target"], e["code"], e["detail"]) for e in result["evidence"]]


# -- the catalogue -------------------------------------------------------------------------------------------
def test_the_catalogue_has_every_control_of_the_benchmark_once_in_order():
    ids = [c.id for c in CONTROLS]
    assert len(ids) == len(set(ids)) == 18 + 2 + 18 + 24 + 12 + 32 + 2 + 9
    assert ids[0] == "1.1.1" and ids[-1] == "7.9" and BY_ID["4.8"].title == "Ensure setuid and setgid permissions are removed"
    level1 = {c.id for c in select([LEVEL1])}
    assert level1 < {c.id for c in select(["level2"])} and "4.8" not in level1 and "5.5" in level1
    assert [c.id for c in select(["5.10", "4.8", "5.2"])] == ["4.8", "5.2", "5.10"]
    with pytest.raises(ValueError, match="9.9"):
        select(["9.9"])


# -- section 4: the view of an image from its layers' headers ------------------------------------------------
def layered_store(root):
    store = SyntheticStore(root)
    base = store.add_layer([directory("bin"), file("bin/su", b"su", 0o4755), file("bin/wall", b"w", 0o2755),
                            file("bin/sh", b"sh", 0o755), directory("opt"), directory("opt/tools"),
                            file("opt/tools/ping", b"p", 0o4755), file("usr-sbin", b"x", 0o6755),
                            directory("srv"), file("srv/chmodded", b"c", 0o4755)])
    top = store.add_layer([directory("bin"), whiteout("bin/su"), opaque("opt"), file("opt/new", b"n", 0o755),
                           file("srv/chmodded", b"c", 0o755), file("sbin-new", b"m", 0o4711)], parent=base)
    image = store.add_image([base, top], tags=["strata/view:1"])
    only_base = store.add_image([base], tags=["strata/base:1"])
    return store, base, top, image, only_base


def test_setuid_files_are_those_the_top_of_the_image_shows_with_the_layer_they_come_from(tmp_path):
    _store, base, top, _image, _base_image = layered_store(str(tmp_path))
    results, _report = report_of(str(tmp_path), ["4.8"])
    found = {(target, detail.split(":")[0], detail.split("from layer ")[1]) for target, _code, detail in
             evidence(results["4.8"])}
    assert results["4.8"]["status"] == "fail"
    assert found == {
        # the whiteout removed /bin/su, the opaque /opt hid ping, the chmod in the top layer cleared /srv/chmodded
        ("strata/view:1", "/bin/wall", base.chain_id), ("strata/view:1", "/usr-sbin", base.chain_id),
        ("strata/view:1", "/sbin-new", top.chain_id),
        ("strata/base:1", "/bin/su", base.chain_id), ("strata/base:1", "/bin/wall", base.chain_id),
        ("strata/base:1", "/opt/tools/ping", base.chain_id), ("strata/base:1", "/usr-sbin", base.chain_id),
        ("strata/base:1", "/srv/chmodded", base.chain_id)}
    codes = {detail.split(":")[0]: code for target, code, detail in evidence(results["4.8"]) if target == "strata/view:1"}
    assert codes == {"/bin/wall": "setgid", "/usr-sbin": "setuid_setgid", "/sbin-new": "setuid"}


def as_compared(headers):
    """Headers as both readers must give them (a directory's own mode differs between tar and the disk)."""
    return sorted((h.path, h.kind, h.mode) for h in headers if h.kind != "dir" or h.mode & 0o7000)


def test_tar_split_headers_and_the_directory_walk_give_the_same_view(tmp_path):
    """The two readers (tar-split for overlay2, a walk for snapshot directories) agree on every layer."""
    _store, base, top, _image, _base_image = layered_store(str(tmp_path))
    loaded = load_store(str(tmp_path))
    files = backend_for(loaded).layer_files()
    for layer in (base, top):
        model = loaded.layers[layer.chain_id]
        from_tar_split, problem = files.headers(model)
        assert problem is None
        with SafeDir.open(files.directory(model)) as root:
            walked = walked_headers(root)
        assert as_compared(from_tar_split) == as_compared(walked) and from_tar_split


def test_a_layer_without_tar_split_is_walked_and_says_so(tmp_path):
    _store, base, _top, _image, _base_image = layered_store(str(tmp_path))
    os.unlink(os.path.join(str(tmp_path), "image/overlay2/layerdb/sha256", base.chain_id[7:], "tar-split.json.gz"))
    results, report = report_of(str(tmp_path), ["4.8"])
    assert any("/bin/wall" in detail for _t, _c, detail in evidence(results["4.8"]))
    assert any("tar-split" in problem and "walked instead" in problem for problem in report.problems)


def test_a_tar_split_whose_raw_header_is_not_a_tar_header_is_refused(tmp_path):
    import gzip  # pylint: disable=import-outside-toplevel
    import io  # pylint: disable=import-outside-toplevel
    line = {"type": 2, "payload": "AAAA", "position": 0}
    raw = gzip.compress((json.dumps(line) + "\n" + json.dumps({"type": 1, "name": "x", "size": 0}) + "\n").encode())
    with pytest.raises(_cis_images.TarSplitError, match="not a tar header"):
        tar_split_headers(io.BytesIO(raw))


# -- section 4: config and secrets ----------------------------------------------------------------------------
def secret_store(root):
    store = SyntheticStore(root)
    layer = store.add_layer([
        directory("root"), directory("root/.ssh"), file("root/.ssh/id_ed25519", b"-----BEGIN OPENSSH PRIVATE KEY-----\n"),
        directory("etc"), file("etc/server.pem", b"-----BEGIN CERTIFICATE-----\nMII\n"),
        file("etc/tls.key", b"-----BEGIN RSA PRIVATE KEY-----\nMII\n"),
        directory("app"), file("app/.npmrc", b"registry=https://example.invalid/\n"),
        file("app/.env", b"API_TOKEN=abc123\n"), directory("home"), directory("home/u"), directory("home/u/.docker"),
        file("home/u/.docker/config.json", b'{"auths": {"r.example": {"auth": "dXNlcjpwYXNz"}}}'),
        file("app/config.json", b'{"auth": "not in .docker"}')])
    image = store.add_image([layer], tags=["strata/secrets:1"], extra={
        "config": {"Env": ["PATH=/bin", "DB_PASSWORD=hunter2", "SECRET_FILE=/run/secrets/db",
                           "HINT=AKIAABCDEFGHIJKLMNOP"], "User": "app",
                   "Healthcheck": {"Test": ["CMD", "true"]}},
        "history": [{"created_by": "/bin/sh -c #(nop) ADD file:0123abcd in / "},
                    {"created_by": "|1 GITHUB_TOKEN=s3cr3t /bin/sh -c make"},
                    {"created_by": "/bin/sh -c apt-get update && apt-get install -y curl"}]})
    return store, image


def test_secrets_are_found_in_env_history_and_files_and_never_shown(tmp_path):
    secret_store(str(tmp_path))
    results, report = report_of(str(tmp_path), ["4.1", "4.6", "4.7", "4.9", "4.10"])
    assert [results[i]["status"] for i in ("4.1", "4.6", "4.7", "4.9")] == ["pass"] * 4
    found = evidence(results["4.10"])
    assert results["4.10"]["status"] == "fail"
    assert sorted(code for _t, code, _d in found) == ["secret_file"] * 4 + ["secret_in_env"] * 2 + ["secret_in_history"]
    files = sorted(detail.split(":")[0] for _t, code, detail in found if code == "secret_file")
    assert files == sorted(["/app/.env", "/home/u/.docker/config.json", "/etc/tls.key", "/root/.ssh/id_ed25519"])
    text = json.dumps(report.as_dict())
    assert "hunter2" not in text and "s3cr3t" not in text and "AKIAABCDEFGHIJKLMNOP" not in text and "abc123" not in text


def test_root_user_no_healthcheck_update_alone_and_add_fail_per_image(tmp_path):
    store = SyntheticStore(str(tmp_path))
    layer = store.add_layer([file("a", b"a")])
    store.add_image([layer], tags=["strata/bad:1"], extra={"config": {"User": "0:0", "Healthcheck": {"Test": ["NONE"]}},
                                                           "history": [{"created_by": "RUN /bin/sh -c apt-get update"},
                                                                       {"created_by": "ADD app.tgz /app # buildkit"}]})
    results, _report = report_of(str(tmp_path), ["4.1", "4.6", "4.7", "4.9"])
    assert {i: [c for _t, c, _d in evidence(results[i])] for i in results} == {
        "4.1": ["root_user"], "4.6": ["no_healthcheck"], "4.7": ["update_alone"], "4.9": ["add_instruction"]}


def test_an_unreadable_image_config_fails_its_controls_and_says_why(tmp_path):
    store = SyntheticStore(str(tmp_path))
    layer = store.add_layer([file("a", b"a")])
    image = store.add_image([layer], tags=["strata/broken:1"])
    path = os.path.join(str(tmp_path), "image/overlay2/imagedb/content/sha256", image[7:])
    os.chmod(path, 0o644)
    with open(path, "ab") as handle:
        handle.write(b"\xff garbage")
    results, _report = report_of(str(tmp_path), ["4.1", "4.10"])
    for control in ("4.1", "4.10"):
        assert results[control]["status"] == "fail"
        assert [c for _t, c, _d in evidence(results[control])] == ["unreadable"]


# -- section 5 -------------------------------------------------------------------------------------------------
def container_store(root, **host):
    store = SyntheticStore(root)
    layer = store.add_layer([file("a", b"a")])
    image = store.add_image([layer], tags=["strata/app:1"])
    made = store.add_container(image, layer, "probe")
    path = os.path.join(root, "containers", made["id"], "hostconfig.json")
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(dict(HOST_CONFIG, **host), handle)
    return path


@pytest.mark.parametrize("host, control, code", [
    ({"Privileged": True}, "5.5", "privileged"),
    ({"CapAdd": ["ALL"]}, "5.4", "capabilities_added"),
    ({"Binds": ["/etc:/host-etc:ro"]}, "5.6", "sensitive_mount"),
    ({"PidMode": "host"}, "5.16", "host_pid"),
    ({"NetworkMode": "host"}, "5.10", "host_network"),
    ({"IpcMode": "host"}, "5.17", "host_ipc"),
    ({"UTSMode": "host"}, "5.21", "host_uts"),
    ({"UsernsMode": "host"}, "5.31", "host_userns"),
    ({"PortBindings": {"80/tcp": [{"HostIp": "", "HostPort": "80"}]}}, "5.8", "privileged_port"),
    ({"PortBindings": {"8080/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}]}}, "5.14", "all_interfaces"),
    ({"RestartPolicy": {"Name": "always", "MaximumRetryCount": 0}}, "5.15", "restart_unlimited"),
    ({"Devices": [{"PathOnHost": "/dev/kmsg", "PathInContainer": "/dev/kmsg", "CgroupPermissions": "rwm"}]},
     "5.18", "host_device"),
    ({"SecurityOpt": ["seccomp=unconfined"]}, "5.22", "seccomp_unconfined"),
    ({"Binds": ["/var/run/docker.sock:/var/run/docker.sock"]}, "5.32", "docker_socket"),
    ({"Binds": ["/srv/data:/data:rshared"]}, "5.20", "shared_propagation"),
    ({"CgroupParent": "/custom.slice"}, "5.25", "cgroup_parent_set"),
])
def test_each_container_setting_fails_its_control_and_only_that_one(tmp_path, host, control, code):
    container_store(str(tmp_path), **host)
    clean = str(tmp_path / "clean")
    container_store(clean)
    results, _report = report_of(str(tmp_path), ["5.4", "5.5", "5.6", "5.8", "5.10", "5.14", "5.15", "5.16",
                                                 "5.17", "5.18", "5.20", "5.21", "5.22", "5.25", "5.31", "5.32"])
    baseline, _report = report_of(clean, list(results))
    assert results[control]["status"] == "fail" and [c for _t, c, _d in evidence(results[control])] == [code]
    assert baseline[control]["status"] == "pass"
    changed = {i for i in results if results[i]["status"] != baseline[i]["status"]}
    assert changed == {control} | ({"5.14"} if control == "5.8" else set())  # port 80 is on every interface too


def apparmor_and_selinux(root, present):
    store = load_store(root)
    containers = Containers(container_facts(store), no_new_privileges=False, apparmor=present, selinux=present,
                            swarm=None)
    return {control: CONTAINER_CHECKS[control](containers) for control in ("5.2", "5.3")}


@pytest.mark.parametrize("present, status", [(True, "fail"), (False, "not_applicable"), (None, "manual")])
def test_apparmor_and_selinux_are_judged_only_on_a_host_known_to_run_them(tmp_path, present, status):
    container_store(str(tmp_path), SecurityOpt=["label=disable"])
    verdicts = apparmor_and_selinux(str(tmp_path), present)
    assert {v.status for v in verdicts.values()} == {status}
    if present:
        assert [e.code for e in verdicts["5.2"].evidence] == ["apparmor_missing"]  # no profile in config.v2.json
        assert [e.code for e in verdicts["5.3"].evidence] == ["selinux_disabled"]


def set_config(root, **values):
    config = os.path.join(root, "containers", os.listdir(os.path.join(root, "containers"))[0], "config.v2.json")
    with open(config, encoding="utf-8") as handle:
        data = json.load(handle)
    with open(config, "w", encoding="utf-8") as handle:
        json.dump(dict(data, **values), handle)


def test_an_unconfined_profile_or_a_missing_label_fails_what_the_engine_sets_passes(tmp_path):
    unconfined, labelled = str(tmp_path / "unconfined"), str(tmp_path / "labelled")
    container_store(unconfined, SecurityOpt=["apparmor=unconfined"])
    set_config(unconfined, AppArmorProfile="unconfined")
    container_store(labelled)
    set_config(labelled, AppArmorProfile="docker-default", ProcessLabel="system_u:system_r:container_t:s0:c1,c2")
    verdicts = apparmor_and_selinux(unconfined, True)
    assert [e.code for e in verdicts["5.2"].evidence] == ["apparmor_unconfined"]
    assert [e.code for e in verdicts["5.3"].evidence] == ["selinux_missing"]
    assert {v.status for v in apparmor_and_selinux(labelled, True).values()} == {"pass"}


def test_another_hosts_disk_leaves_apparmor_and_selinux_to_a_person(tmp_path):
    container_store(str(tmp_path / "store"))
    os.makedirs(str(tmp_path / "host"))
    results, _report = report_of(str(tmp_path / "store"), ["5.2", "5.3"], host_root=str(tmp_path / "host"))
    assert results["5.2"]["status"] == results["5.3"]["status"] == "manual"
    assert "running host" in results["5.2"]["evidence"][0]["detail"]


@pytest.mark.parametrize("files, apparmor, selinux", [
    ({"module/apparmor/parameters/enabled": "Y\n", "kernel/security/apparmor/profiles": ""}, True, False),
    ({"module/apparmor/parameters/enabled": "N\n", "kernel/security/apparmor/profiles": ""}, False, False),
    ({"kernel/security/apparmor/profiles": ""}, False, False),
    ({"fs/selinux/enforce": "1"}, False, True),
])
def test_the_hosts_security_modules_are_detected_as_the_engine_detects_them(tmp_path, files, apparmor, selinux):
    for name, content in files.items():
        os.makedirs(os.path.dirname(str(tmp_path / name)), exist_ok=True)
        (tmp_path / name).write_text(content)
    assert (host_has_apparmor(str(tmp_path)), host_has_selinux(str(tmp_path))) == (apparmor, selinux)


@pytest.mark.parametrize("content", [b"{not json", b"\xff\xfe", b"[1, 2]", b""])
def test_a_malformed_hostconfig_is_a_clear_finding_not_a_traceback(tmp_path, content):
    path = container_store(str(tmp_path))
    with open(path, "wb") as handle:
        handle.write(content)
    results, report = report_of(str(tmp_path), ["5.5", "5.13"])
    for control in ("5.5", "5.13"):
        assert results[control]["status"] == "fail"
        assert [c for _t, c, _d in evidence(results[control])] == ["unreadable"]
    assert any("hostconfig.json" in problem for problem in report.problems)


def test_huge_env_lists_and_names_that_are_not_utf8_are_judged(tmp_path):
    store = SyntheticStore(str(tmp_path))
    layer = store.add_layer([directory("etc"), file("etc/.env\udcff", b"x"), file("bin\udcfe", b"s", 0o4755)])
    store.add_image([layer], tags=["strata/hostile:1"], extra={"config": {
        "Env": ["VAR_%d=%d" % (i, i) for i in range(50000)] + ["API_KEY=x" * 3]}})
    results, report = report_of(str(tmp_path), ["4.8", "4.10"])
    assert results["4.8"]["status"] == "fail" and "bin" in evidence(results["4.8"])[0][2]
    assert [c for _t, c, _d in evidence(results["4.10"])] == ["secret_in_env"]
    json.dumps(report.as_dict())


# -- sections 1 to 3 from a host root -------------------------------------------------------------------------
def host_tree(root, daemon_json=None, exec_start="/usr/bin/dockerd -H fd://", audit=None):
    def put(path, text, mode=0o644):
        full = os.path.join(root, path.lstrip("/"))
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(full, mode)
        return full
    put("/lib/systemd/system/docker.service", "[Service]\nExecStart=%s\n" % exec_start)
    put("/etc/group", "root:x:0:\ndocker:x:998:alice,bob\n")
    if daemon_json is not None:
        put("/etc/docker/daemon.json", daemon_json)
    if audit is not None:
        put("/etc/audit/rules.d/docker.rules", audit)
    store = SyntheticStore(os.path.join(root, "var/lib/docker"))
    store.add_image([store.add_layer([file("a", b"a")])], tags=["strata/a:1"])
    return put


def test_the_command_line_wins_over_daemon_json_and_defaults_are_judged_too(tmp_path):
    root = str(tmp_path)
    host_tree(root, json.dumps({"icc": False, "log-level": "debug", "live-restore": True, "userland-proxy": False,
                                "insecure-registries": ["10.0.0.1:5000"], "no-new-privileges": True}),
              exec_start="/usr/bin/dockerd -H fd:// -H tcp://0.0.0.0:2376 --log-level=info --iptables=false")
    results, _report = report_of(os.path.join(root, "var/lib/docker"), [
        "2.2", "2.3", "2.4", "2.5", "2.7", "2.9", "2.13", "2.14", "2.15", "2.16", "2.18"], host_root=root)
    statuses = {i: r["status"] for i, r in results.items()}
    assert statuses == {"2.2": "pass", "2.3": "pass", "2.4": "fail", "2.5": "fail", "2.7": "fail", "2.9": "fail",
                        "2.13": "fail", "2.14": "pass", "2.15": "pass", "2.16": "pass", "2.18": "pass"}
    assert "command line" in evidence(results["2.3"])[0][2] and "/etc/docker/daemon.json" in evidence(results["2.2"])[0][2]
    assert evidence(results["2.7"])[0][1] == "tcp_without_tls_verify"


@pytest.mark.parametrize("content", ["{not json", "[1, 2]", "\udcff"])
def test_a_daemon_json_that_cannot_be_used_fails_the_settings_controls_and_says_why(tmp_path, content):
    root = str(tmp_path)
    put = host_tree(root, "{}")
    with open(put("/etc/docker/daemon.json", ""), "w", encoding="utf-8", errors="surrogateescape") as handle:
        handle.write(content)
    results, report = report_of(os.path.join(root, "var/lib/docker"), ["2.2", "2.7", "3.18"], host_root=root)
    for control in ("2.2", "2.7"):
        assert results[control]["status"] == "fail"
        assert [(e["target"], e["code"]) for e in results[control]["evidence"]] == [("/etc/docker/daemon.json",
                                                                                    "unreadable")]
    assert results["3.18"]["status"] == "pass"  # its mode is still judged
    assert any("daemon.json" in problem for problem in report.problems)


def test_file_modes_and_owners_of_the_daemons_files(tmp_path):
    root = str(tmp_path)
    put = host_tree(root, "{}")
    os.chmod(os.path.join(root, "etc/docker/daemon.json"), 0o666)
    put("/etc/default/docker", "DOCKER_OPTS=\n", 0o600)
    results, _report = report_of(os.path.join(root, "var/lib/docker"), [
        "3.1", "3.2", "3.17", "3.18", "3.20", "3.21", "3.4"], host_root=root)
    statuses = {i: r["status"] for i, r in results.items()}
    owner_ok = "pass" if os.geteuid() == 0 else "fail"
    assert statuses == {"3.1": owner_ok, "3.2": "pass", "3.17": owner_ok, "3.18": "fail", "3.20": "pass",
                        "3.21": "not_applicable", "3.4": "not_applicable"}
    assert "mode 0666" in evidence(results["3.18"])[0][2]


def test_audit_rules_decide_section_1_1(tmp_path):
    root = str(tmp_path)
    host_tree(root, "{}", audit="-w /etc/docker -k docker\n-a always,exit -F path=/etc/docker/daemon.json -k d\n")
    results, _report = report_of(os.path.join(root, "var/lib/docker"), ["1.1.6", "1.1.11", "1.1.7", "1.1.13"],
                                 host_root=root)
    statuses = {i: r["status"] for i, r in results.items()}
    assert statuses == {"1.1.6": "pass", "1.1.11": "pass", "1.1.7": "fail", "1.1.13": "not_applicable"}
    assert results["1.1.7"]["evidence"][0]["code"] == "not_audited"


def test_flags_are_read_as_dockerd_reads_them():
    assert parse_command_line(["--icc=false", "-l", "debug", "--insecure-registry", "a:1", "--insecure-registry=b:2",
                               "--live-restore", "-H", "fd://", "--unknown", "x"]) == {
        "icc": False, "log-level": "debug", "insecure-registries": ["a:1", "b:2"], "live-restore": True,
        "hosts": ["fd://"]}


# -- waivers ---------------------------------------------------------------------------------------------------
def test_a_waiver_covers_its_findings_an_expired_one_fails_and_says_so(tmp_path):
    layered_store(str(tmp_path))
    every_file = [{"control": "4.8", "target": "strata/*", "reason": "accepted", "expires": "2027-01-01"}]
    results, _report = report_of(str(tmp_path), ["4.8"], every_file)
    assert results["4.8"]["status"] == "waived"
    assert all(e["waiver"]["reason"] == "accepted" and not e["waiver"]["expired"] for e in results["4.8"]["evidence"])
    one_file = [{"control": "4.8", "target": "*:/bin/wall", "reason": "wall", "expires": "2027-01-01"}]
    results, _report = report_of(str(tmp_path), ["4.8"], one_file)
    assert results["4.8"]["status"] == "fail" and sum("waiver" in e for e in results["4.8"]["evidence"]) == 2
    expired = [dict(every_file[0], expires="2026-12-03")]
    results, _report = report_of(str(tmp_path), ["4.8"], expired)
    assert results["4.8"]["status"] == "fail"
    assert all("waiver expired on 2026-12-03" in e["detail"] and e["waiver"]["expired"]
               for e in results["4.8"]["evidence"])


@pytest.mark.parametrize("raw, message", [
    ({"control": "9.9", "reason": "x"}, "not a control id"),
    ({"control": "4.8", "reason": ""}, "gives no reason"),
    ({"control": "4.8", "reason": "x", "expires": "next year"}, "not a date"),
    ({"control": "4.8", "reason": "x", "until": "2027-01-01"}, "unknown keys"),
])
def test_a_bad_waiver_is_refused_with_what_is_wrong(raw, message):
    with pytest.raises(ValueError, match=message):
        Waiver.parse(raw)


def test_manual_controls_are_reported_not_dropped(tmp_path):
    layered_store(str(tmp_path))
    results, _report = report_of(str(tmp_path), ["level2"])
    assert len(results) == len(CONTROLS)
    assert results["5.7"]["status"] == "manual" and results["5.7"]["evidence"][0]["code"] == "needs_a_person"
    assert results["7.1"]["status"] == "not_applicable"


def test_headers_read_by_several_processes_give_the_same_report(tmp_path, monkeypatch):
    from ansible_collections.strata.overlay2.plugins.module_utils._util import parallel as _parallel  # pylint: disable=import-outside-toplevel
    from tests.support.synthstore import generate  # pylint: disable=import-outside-toplevel
    generate(str(tmp_path), 300, seed="cis")
    layered = str(tmp_path / "layered")
    layered_store(layered)
    for root in (str(tmp_path), layered):
        alone, _report = report_of(root, ["level2"])
        forks = []
        monkeypatch.setattr(_cis_images, "LAYERS_PER_WORKER", 1)
        monkeypatch.setattr(_parallel, "available_cpus", lambda: 3)
        monkeypatch.setattr(_cis_images, "map_chunks", lambda func, chunks: forks.append(len(chunks)) or
                            _parallel.map_chunks(func, chunks))
        shared, _report = report_of(root, ["level2"])
        monkeypatch.undo()
        assert forks and max(forks) >= 2 and shared == alone


def test_section_4_titles_are_docker_bench_securitys():
    """The module's docs promise docker-bench-security's titles (its tests/4_container_images.sh)."""
    assert BY_ID["4.7"].title == "Ensure update instructions are not used alone in the Dockerfile"
    assert BY_ID["4.6"].title == "Ensure that HEALTHCHECK instructions have been added to container images"
    assert BY_ID["4.9"].title == "Ensure that COPY is used instead of ADD in Dockerfiles"
