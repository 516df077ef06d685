"""Finding the store by itself, on real daemons: a data-root given on the command line, one given only in
daemon.json (found from the process, then from the file once stopped), userns-remap, and two daemons at once.

The daemons are Debian testing's dockerd 28.5 run from its root file system in a chroot (devtools.sandbox
.ChrootEngine), so that its /etc (daemon.json, subuid, the dockremap user dockerd creates) is its own, and the
machine's /etc is never written. A rootless dockerd cannot run here (no rootlesskit, newuidmap or user
session on these machines): the rootless layouts are found from planted files in the unit tests
(tests/unit/plugins/module_utils/_store/test_discovery.py).
"""

from __future__ import annotations

import json
import os

import pytest

from ansible_collections.strata.overlay2.plugins.module_utils._store.discovery import (
    DiscoveryError,
    configured_daemon,
    discover,
    owners,
    system_store,
)
from ansible_collections.strata.overlay2.plugins.module_utils._orphans.prune import running_daemons
from devtools.collection import run_module, run_playbook
from devtools.sandbox import ChrootEngine, Engine, import_base


@pytest.fixture(scope="module")
def testing_root():
    if os.geteuid() != 0:
        pytest.fail("the engine tests start a dockerd and need root")
    from devtools.fleet import suite_root  # pylint: disable=import-outside-toplevel
    return suite_root("testing")


def found(engine: Engine):
    """The daemon discovery reports for this engine's process."""
    matches = [d for d in discover() if d.pid == engine.process.pid]
    assert len(matches) == 1, [d.as_dict() for d in discover()]
    return matches[0]


def image_dirs(engine: Engine, image: str):
    data = engine.inspect(image)[0]["GraphDriver"]["Data"]
    lower = [engine.root + path for path in (data.get("LowerDir") or "").split(":") if path]
    return engine.root + data["UpperDir"], lower


def test_a_data_root_on_the_command_line_is_found_from_the_process(testing_root):
    with ChrootEngine(testing_root) as engine:
        daemon = found(engine)
        assert (daemon.source, daemon.uid, daemon.storage, daemon.rootless) == ("process", 0, "overlay2", False)
        assert daemon.data_root == engine.inside(engine.data_root) and daemon.store_root == engine.data_root
        assert daemon.exec_root == engine.inside(engine.exec_root)
        assert [d.pid for d in owners(engine.data_root, discover())] == [engine.process.pid]
        assert [d.pid for d in running_daemons(engine.data_root)] == [engine.process.pid]


def test_a_data_root_only_in_daemon_json_is_found_running_and_then_from_the_file(testing_root, collections_path,
                                                                                 tmp_path):
    config = os.path.join(testing_root, "etc", "docker", "daemon.json")
    assert not os.path.exists(config), "the testing root must not carry a daemon.json of its own"
    os.makedirs(os.path.dirname(config), exist_ok=True)
    engine = ChrootEngine(testing_root, data_root_flag=False)
    moved = os.path.join(engine.base, "moved")
    try:
        with open(config, "w", encoding="utf-8") as handle:
            json.dump({"data-root": engine.inside(moved)}, handle)
        with engine:
            import_base(engine, "strata/found:1")
            daemon = found(engine)
            assert daemon.config_file == "/etc/docker/daemon.json" and daemon.store_root == moved
            facts = run_module(collections_path, "strata.overlay2.overlay2_facts", {"data_root": daemon.store_root},
                               str(tmp_path))["ansible_facts"]["overlay2"]
            assert facts["daemon"]["pid"] == engine.process.pid and facts["summary"]["images"] == 1
            upper, _lower = image_dirs(engine, "strata/found:1")
            assert facts["images"][0]["upper_dir"] == upper
            engine.stop()
            configured = configured_daemon(testing_root)
        assert (configured.source, configured.running, configured.store_root) == ("config", False, moved)
    finally:
        os.unlink(config)


def test_userns_remap_reads_the_remapped_root_and_matches_the_engine(testing_root, collections_path, tmp_path):
    engine = ChrootEngine(testing_root, extra_args=["--userns-remap=default"])
    os.chmod(engine.base, 0o711)  # the remapped root must be able to reach its data-root
    with engine:
        import_base(engine, "strata/remapped:1")
        container = engine.docker("create", "--network", "none", "strata/remapped:1", "true").strip()
        daemon = found(engine)
        remapped = [name for name in os.listdir(engine.data_root) if name[0].isdigit()]
        assert daemon.userns_remap == "default" and len(remapped) == 1
        assert daemon.store_root == os.path.join(engine.data_root, remapped[0])
        assert [d.pid for d in running_daemons(daemon.store_root)] == [engine.process.pid]
        facts = run_module(collections_path, "strata.overlay2.overlay2_facts", {"data_root": daemon.store_root},
                           str(tmp_path))["ansible_facts"]["overlay2"]
        assert facts["daemon"]["userns_remap"] == "default"
        upper, lower = image_dirs(engine, "strata/remapped:1")
        (image,) = facts["images"]
        assert image["upper_dir"] == upper and image["lower_dirs"] == lower
        data = engine.inspect(container)[0]["GraphDriver"]["Data"]
        (mine,) = facts["containers"]
        assert mine["upper_dir"] == engine.root + data["UpperDir"]
        assert mine["lower_dirs"] == [engine.root + path for path in data["LowerDir"].split(":")]


def test_a_daemon_in_another_mount_namespace_is_listed_but_never_the_system_daemon(testing_root):
    with ChrootEngine(testing_root) as engine:
        daemon = found(engine)
        assert daemon.own_namespace and daemon.as_dict()["other_mount_namespace"]
        assert engine.process.pid not in {d.pid for d in discover() if d.uid == 0 and not d.own_namespace}


def test_two_daemons_at_once_make_auto_name_them_both(collections_path, tmp_path):
    with Engine() as first, Engine() as second:
        with pytest.raises(DiscoveryError) as caught:
            system_store(discover())
        for engine in (first, second):
            assert "pid %d" % engine.process.pid in str(caught.value)
        result = run_module(collections_path, "strata.overlay2.overlay2_facts", {}, str(tmp_path))
        assert result["failed"] and "ambiguous" in result["msg"]
        assert {first.process.pid, second.process.pid} <= {d["pid"] for d in result["daemons"]}
        explicit = run_module(collections_path, "strata.overlay2.overlay2_facts", {"data_root": second.data_root},
                              str(tmp_path))
        assert explicit["ansible_facts"]["overlay2"]["daemon"]["pid"] == second.process.pid
        report = str(tmp_path / "report")
        run_playbook(collections_path, "strata.overlay2.audit",
                     {"overlay2_audit_data_root": first.data_root, "overlay2_audit_all_daemons": True,
                      "overlay2_audit_report_dir": report, "overlay2_audit_verify_content": False})
        with open(os.path.join(report, "fleet.json"), encoding="utf-8") as handle:
            rows = json.load(handle)["hosts"]
        stores = {row["data_root"] for row in rows}
        assert {first.data_root, second.data_root} <= stores and {row["host"] for row in rows} == {"localhost"}
        assert os.path.exists(os.path.join(report, "hosts", "localhost.json"))
        assert len(os.listdir(os.path.join(report, "hosts"))) == len(rows)


def test_a_daemon_json_spoiled_under_a_running_daemon_is_a_warning_and_an_explicit_data_root_still_works(
        testing_root, collections_path, tmp_path):
    engine = ChrootEngine(testing_root, data_root_flag=False)
    config = os.path.join(engine.base, "daemon.json")
    with open(config, "w", encoding="utf-8") as handle:
        json.dump({"data-root": engine.inside(engine.data_root)}, handle)
    engine.extra_args = ["--config-file", engine.inside(config)]
    with engine:
        import_base(engine, "strata/spoiled:1")
        with open(config, "w", encoding="utf-8") as handle:
            handle.write('{"data-root": ')  # torn by an editor or a full disk after the daemon started
        daemon = found(engine)
        assert any("is not valid JSON" in warning for warning in daemon.warnings) and not daemon.data_root_known
        result = run_module(collections_path, "strata.overlay2.overlay2_facts", {"data_root": engine.data_root},
                            str(tmp_path))
        facts = result["ansible_facts"]["overlay2"]
        assert facts["summary"]["images"] == 1 and not result.get("failed")
        mine = [d for d in facts["daemons"] if d["pid"] == engine.process.pid]
        assert mine and any("is not valid JSON" in warning for warning in mine[0]["warnings"])
        assert any("is not valid JSON" in warning for warning in result.get("warnings", []))
