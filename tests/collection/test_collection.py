"""The built tarball installs, documents itself and runs its roles and modules, as a user gets it (the
ansible-test integration targets in tests/integration run the working tree's)."""

from __future__ import annotations

import subprocess

from devtools.collection import ansible_env, ansible_tool


def run(collections_path, *command):
    return subprocess.run([ansible_tool(command[0])] + list(command[1:]), env=ansible_env(collections_path),
                          capture_output=True, text=True, check=True).stdout


def test_ansible_doc_renders_the_module_with_its_shared_option(collections_path):
    text = " ".join(run(collections_path, "ansible-doc", "strata.overlay2.overlay2_facts").split())
    assert "Reads a Docker data-root in overlay2 graph-driver mode straight from disk" in text
    assert "data_root" in text and "/var/lib/docker" in text and "container_sizes" in text


def test_ansible_doc_renders_the_filter(collections_path):
    text = run(collections_path, "ansible-doc", "-t", "filter", "strata.overlay2.chain_ids")
    assert "chainIDs" in text


def test_on_a_large_store_the_modules_share_the_work_among_processes_and_answer_as_one_process(
        collections_path, tmp_path):
    """As Ansible runs them (AnsiballZ, the host's Python): the facts and the verification of a store large
    enough to be read by several processes equal those of one process reading it here."""
    import json  # pylint: disable=import-outside-toplevel

    from ansible_collections.strata.overlay2.plugins.module_utils._util import parallel as _parallel  # pylint: disable=import-outside-toplevel
    from ansible_collections.strata.overlay2.plugins.module_utils._facts.gather import gather  # pylint: disable=import-outside-toplevel
    from ansible_collections.strata.overlay2.plugins.module_utils._store.overlay2 import (  # pylint: disable=import-outside-toplevel
        ENTRIES_PER_WORKER,
        Overlay2Store,
    )
    from ansible_collections.strata.overlay2.plugins.module_utils._verify.overlay2 import verify  # pylint: disable=import-outside-toplevel
    from tests.support.synthstore import generate  # pylint: disable=import-outside-toplevel

    if _parallel.available_cpus() < 2:
        import pytest  # pylint: disable=import-outside-toplevel
        pytest.skip("one CPU: the modules read in their own process")
    root = str(tmp_path / "docker")
    generate(root, 2 * ENTRIES_PER_WORKER + 300)
    playbook = tmp_path / "play.yml"
    playbook.write_text("""
- hosts: localhost
  gather_facts: false
  tasks:
    - strata.overlay2.overlay2_facts:
        data_root: %s
    - strata.overlay2.layer_verify:
        data_root: %s
        fail_on_corrupt: false
      register: verified
    - ansible.builtin.copy:
        dest: %s
        content: "{{ {'facts': ansible_facts.overlay2, 'verify': verified} | to_json }}"
""" % (root, root, tmp_path / "answers.json"))
    run(collections_path, "ansible-playbook", str(playbook), "-i", "localhost,", "-c", "local",
        "-e", "ansible_python_interpreter=/usr/bin/python3")
    answers = json.loads((tmp_path / "answers.json").read_text())
    real_cpus = _parallel.available_cpus
    _parallel.available_cpus = lambda: 1
    try:
        facts = gather(Overlay2Store.load(root))
        report = verify(Overlay2Store.load(root)).as_dict()
    finally:
        _parallel.available_cpus = real_cpus
    assert answers["facts"]["summary"]["layers"] > 2 * ENTRIES_PER_WORKER  # enough for two processes
    for key in ("images", "layers", "containers", "orphans", "summary", "warnings"):
        assert answers["facts"][key] == json.loads(json.dumps(facts[key])), key
    for key in ("checked_layers", "checked_images", "bytes_verified", "corrupt", "ok"):
        assert answers["verify"][key] == json.loads(json.dumps(report[key])), key


def test_the_compliance_role_holds_hosts_to_a_benchmark_profile_with_waivers(collections_path, tmp_path):
    """One JUnit test case per control named ``<id> <title>``; a waived control passes with its reason, an
    expired waiver fails the host and says so, and the failure message names the control ids."""
    import json  # pylint: disable=import-outside-toplevel
    from xml.etree import ElementTree  # pylint: disable=import-outside-toplevel

    from tests.support.synthstore import SyntheticStore, file  # pylint: disable=import-outside-toplevel
    store = SyntheticStore(str(tmp_path / "store"))
    layer = store.add_layer([file("bin/tool", b"t", 0o4755)])
    store.add_image([layer], tags=["strata/suid:1"])
    junit = tmp_path / "junit"
    playbook = tmp_path / "play.yml"
    playbook.write_text(json.dumps([{"hosts": "localhost", "gather_facts": False, "roles": [{
        "role": "strata.overlay2.compliance", "compliance_data_root": str(tmp_path / "store"),
        "compliance_layers_verify": False, "compliance_no_container_on_corrupt_image": False,
        "compliance_junit_dir": str(junit), "compliance_benchmark": ["4.8", "4.1", "5.7"],
        "compliance_waivers": [
            {"control": "4.8", "target": "strata/*", "reason": "the tool needs it", "expires": "2099-12-31"},
            {"control": "4.1", "target": "strata/*", "reason": "old exception", "expires": "2020-01-01"}]}]}]))
    result = subprocess.run([ansible_tool("ansible-playbook"), str(playbook), "-i", "localhost,", "-c", "local",
                             "-e", "ansible_python_interpreter=/usr/bin/python3"], env=ansible_env(collections_path),
                            capture_output=True, text=True, check=False)
    assert result.returncode != 0
    out = " ".join(result.stdout.split())
    assert "out of policy: 4.1 Ensure that a user for the container has been created" in out, out[-3000:]
    assert "4.8 Ensure" not in out.split("out of policy:")[1].split(".")[0]
    cases = {case.get("name"): case for case in ElementTree.parse(str(junit / "localhost.xml")).iter("testcase")}
    assert set(cases) >= {"4.8 Ensure setuid and setgid permissions are removed",
                          "4.1 Ensure that a user for the container has been created",
                          "5.7 Ensure sshd is not run within containers"}
    failure = cases["4.1 Ensure that a user for the container has been created"].find("failure")
    assert failure is not None and "waiver expired on 2020-01-01" in failure.text
    assert cases["4.8 Ensure setuid and setgid permissions are removed"].find("failure") is None
    assert "the tool needs it" in cases["4.8 Ensure setuid and setgid permissions are removed"].find("system-out").text
    assert cases["5.7 Ensure sshd is not run within containers"].find("skipped") is not None
