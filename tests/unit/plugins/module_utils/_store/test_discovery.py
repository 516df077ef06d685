"""Finding the stores of a host: command lines, daemon.json, unit files, userns-remap, rootless layouts."""

from __future__ import annotations

import json
import os
import pwd

import pytest

from ansible_collections.strata.overlay2.plugins.module_utils._store.discovery import (
    CONTAINERD,
    OVERLAY2,
    Daemon,
    DiscoveryError,
    configured_daemon,
    describe,
    parse_flags,
    read_config,
    rootless_layouts,
    system_store,
    unit_exec_start,
)


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)


@pytest.mark.parametrize("args, expected", [
    (["--data-root", "/srv/docker"], {"data-root": "/srv/docker"}),
    (["--data-root=/srv/docker", "--debug"], {"data-root": "/srv/docker"}),
    (["-g", "/old/graph"], {"data-root": "/old/graph"}),
    (["--userns-remap=default", "--exec-root", "/run/d", "-H", "fd://"],
     {"userns-remap": "default", "exec-root": "/run/d", "host": "fd://"}),
    (["--containerd=/run/containerd/containerd.sock", "--config-file", "/etc/d.json"],
     {"containerd": "/run/containerd/containerd.sock", "config-file": "/etc/d.json"}),
    (["--iptables=false", "--bridge=none", "--storage-driver", "overlay2"], {"storage-driver": "overlay2"}),
])
def test_command_line_flags_are_read_in_both_spellings(args, expected):
    assert parse_flags(args) == (expected, [])


def test_a_flag_without_its_value_is_a_warning_not_a_guess():
    flags, warnings = parse_flags(["--debug", "--data-root"])
    assert flags == {} and warnings == ["--data-root has no value on the command line"]


@pytest.mark.parametrize("content, warning", [
    ("{not json", "is not valid JSON"),
    ("[1, 2]", "is not a JSON object"),
    ("\xff\xfe", "is not valid JSON"),
])
def test_a_daemon_json_that_cannot_be_used_is_a_warning(tmp_path, content, warning):
    path = str(tmp_path / "daemon.json")
    with open(path, "w", encoding="latin-1") as handle:
        handle.write(content)
    config, warnings = read_config(path)
    assert config == {} and len(warnings) == 1 and warning in warnings[0] and path in warnings[0]


def test_a_missing_daemon_json_is_no_configuration_and_no_warning(tmp_path):
    assert read_config(str(tmp_path / "absent.json")) == ({}, [])


def test_the_unit_command_line_expands_its_environment_file_and_the_last_exec_start_wins(tmp_path):
    root = str(tmp_path)
    write(os.path.join(root, "lib/systemd/system/docker.service"),
          "[Service]\nEnvironmentFile=-/etc/default/docker\nExecStart=/usr/sbin/dockerd -H fd:// $DOCKER_OPTS\n")
    write(os.path.join(root, "etc/default/docker"), 'DOCKER_OPTS="--data-root /srv/a --iptables=false"\n')
    write(os.path.join(root, "lib/systemd/system/docker.service.d/override.conf"),
          "[Service]\nExecStart=\nExecStart=/usr/sbin/dockerd --data-root=/srv/override \\\n  --debug\n")
    args, source, warnings = unit_exec_start(root)
    assert args == ["/usr/sbin/dockerd", "--data-root=/srv/override", "--debug"] and warnings == []
    assert source.endswith("override.conf")


def test_odd_quoting_in_the_unit_is_a_warning(tmp_path):
    root = str(tmp_path)
    write(os.path.join(root, "lib/systemd/system/docker.service"), "[Service]\nExecStart=/usr/sbin/dockerd \"--data-root /x\n")
    args, _source, warnings = unit_exec_start(root)
    assert args is None and "cannot be split" in warnings[0]


def test_without_a_unit_the_init_script_options_count(tmp_path):
    root = str(tmp_path)
    write(os.path.join(root, "etc/default/docker"), "DOCKER_OPTS='--data-root=/srv/sysv'\n")
    args, _source, _warnings = unit_exec_start(root)
    assert args == ["/usr/sbin/dockerd", "--data-root=/srv/sysv"]


def test_a_flag_and_a_config_setting_the_same_key_are_named(tmp_path):
    daemon = describe("process", 0, {"data-root": "/a"}, {"data-root": "/b"}, [], str(tmp_path))
    assert daemon.data_root == "/a" and "both on the command line and in" in daemon.warnings[0]


def test_a_relative_or_symlinked_data_root_is_a_warning(tmp_path):
    relative = describe("config", 0, {}, {"data-root": "srv/docker"}, [], str(tmp_path))
    assert "not an absolute path" in relative.warnings[0]
    os.makedirs(str(tmp_path / "real"))
    os.symlink(str(tmp_path / "real"), str(tmp_path / "link"))
    linked = describe("config", 0, {}, {"data-root": "/link"}, [], str(tmp_path))
    assert "is a symlink" in linked.warnings[0] and linked.store_root == str(tmp_path / "link")


def test_userns_remap_reads_the_remapped_root_from_the_subordinate_ids(tmp_path):
    root = str(tmp_path)
    write(os.path.join(root, "etc/subuid"), "someone:100000:65536\ndockremap:231072:65536\n")
    write(os.path.join(root, "etc/subgid"), "dockremap:231072:65536\n")
    daemon = describe("process", 0, {"userns-remap": "default"}, {}, [], root)
    assert daemon.store_root == os.path.join(root, "var/lib/docker/231072.231072") and daemon.warnings == []


def test_userns_remap_without_subordinate_ids_takes_the_one_remapped_root_there_and_says_so(tmp_path):
    root = str(tmp_path)
    os.makedirs(os.path.join(root, "srv/d/165536.165536"))
    daemon = describe("config", 0, {}, {"data-root": "/srv/d", "userns-remap": "someone"}, [], root)
    assert daemon.store_root == os.path.join(root, "srv/d/165536.165536") and "no subordinate ids" in daemon.warnings[0]


def test_the_storage_mode_comes_from_the_config_then_from_the_disk(tmp_path):
    root = str(tmp_path)
    assert describe("config", 0, {}, {"features": {"containerd-snapshotter": True}}, [], root).storage == CONTAINERD
    os.makedirs(os.path.join(root, "var/lib/docker/image/overlay2"))
    assert describe("config", 0, {}, {}, [], root).storage == OVERLAY2
    managed = describe("config", 0, {}, {"data-root": "/srv/c", "features": {"containerd-snapshotter": True}}, [], root)
    assert managed.containerd_root == os.path.join(root, "srv/c/containerd/daemon")


def test_a_configured_system_daemon_is_found_from_its_files(tmp_path, monkeypatch):
    config = tmp_path / "daemon.json"
    config.write_text(json.dumps({"data-root": str(tmp_path / "moved")}))
    monkeypatch.setattr("ansible_collections.strata.overlay2.plugins.module_utils._store.discovery.DEFAULT_CONFIG",
                        str(config))
    monkeypatch.setattr("ansible_collections.strata.overlay2.plugins.module_utils._store.discovery.UNIT_PATHS", ())
    daemon = configured_daemon()
    assert (daemon.source, daemon.data_root, daemon.running) == ("config", str(tmp_path / "moved"), False)


def running(pid, store_root, uid=0):
    return Daemon("process", uid, "root", store_root, store_root, pid=pid, started_at=1.0)


def test_two_root_daemons_with_different_stores_make_auto_ambiguous_and_are_listed(tmp_path):
    with pytest.raises(DiscoveryError) as caught:
        system_store([running(11, str(tmp_path / "a")), running(12, str(tmp_path / "b"))])
    assert "ambiguous" in str(caught.value) and "pid 11" in str(caught.value) and "pid 12" in str(caught.value)


def test_a_running_root_daemon_wins_over_a_configured_one_and_rootless_ones_never_count(tmp_path):
    chosen = running(11, str(tmp_path / "a"))
    configured = Daemon("config", 0, "root", "/var/lib/docker", str(tmp_path))
    assert system_store([running(12, str(tmp_path / "r"), uid=1000), configured, chosen]) is chosen
    assert system_store([running(12, str(tmp_path / "r"), uid=1000), configured]) is configured


def test_no_store_at_all_is_a_clear_error(tmp_path):
    with pytest.raises(DiscoveryError, match="found no Docker store"):
        system_store([Daemon("default", 0, "root", "/nowhere", str(tmp_path / "nowhere"))])


def test_a_rootless_layout_is_found_from_a_planted_user_config_and_store(tmp_path):
    home = tmp_path / "home" / "alice"
    (home / ".config" / "docker").mkdir(parents=True)
    (home / ".config" / "docker" / "daemon.json").write_text('{"data-root": "%s"}' % (home / "docker-data"))
    (home / "docker-data" / "image" / "overlay2").mkdir(parents=True)
    bob = tmp_path / "home" / "bob"
    (bob / ".local" / "share" / "docker" / "containers").mkdir(parents=True)
    carol = tmp_path / "home" / "carol"
    carol.mkdir()
    users = [pwd.struct_passwd((name, "x", uid, uid, "", str(tmp_path / "home" / name), "/bin/sh"))
             for name, uid in (("alice", 1001), ("bob", 1002), ("carol", 1003))]
    found = rootless_layouts([], users)  # carol has neither a config nor a store
    assert sorted((d.uid, d.store_root) for d in found) == [
        (1001, str(home / "docker-data")), (1002, str(bob / ".local" / "share" / "docker"))]
    assert all(d.rootless and d.source == "rootless" and not d.running for d in found)
    assert rootless_layouts([str(home / "docker-data")], users)[0].store_root == str(bob / ".local/share/docker")


def test_a_running_daemon_whose_data_root_cannot_be_told_stops_auto_instead_of_a_guess(tmp_path):
    daemon = running(11, str(tmp_path))
    daemon.data_root_known = False
    daemon.warnings.append("/etc/docker/daemon.json is not valid JSON")
    with pytest.raises(DiscoveryError, match="cannot tell the store of dockerd pid 11: .*not valid JSON"):
        system_store([daemon])
