"""The fleet's host-image builder reads the Debian mirror from the machine's apt sources, never from the repo;
a failed fleet run repeats what failed at its end, where CI's log tail shows it."""

from __future__ import annotations

import sys

import pytest

from devtools.fleet import apt_mirror, failure_digest, run_logged

DEB822 = """Types: deb
# a comment: with a colon
URIs: http://mirror.example/debian-security
Suites: bookworm-security
Components: main

Types: deb
URIs: http://mirror.example/debian http://second.example/debian
Suites: bookworm bookworm-updates
Components: main
"""


def test_the_first_non_security_uri_of_a_deb822_file(tmp_path):
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list.d" / "debian.sources").write_text(DEB822)
    assert apt_mirror(str(tmp_path)) == "http://mirror.example/debian"


def test_a_one_line_sources_list_with_options(tmp_path):
    (tmp_path / "sources.list").write_text(
        "deb http://mirror.example/debian-security bookworm-security main\n"
        "deb [signed-by=/usr/share/keyrings/debian.gpg] http://mirror.example/debian bookworm main\n")
    assert apt_mirror(str(tmp_path)) == "http://mirror.example/debian"


def test_no_sources_is_a_clear_error(tmp_path):
    with pytest.raises(SystemExit, match="no Debian mirror found"):
        apt_mirror(str(tmp_path))


MOLECULE_OUTPUT = """\
  \x1b[2m\u2502\x1b[0m TASK [Copy the crash script] ***************************************************
  \x1b[2m\u2502\x1b[0m ok: [strata-engine20]
  \x1b[2m\u2502\x1b[0m TASK [Kill dockerd in the middle of
  \x1b[2m\u2502\x1b[0m   docker load] *******************************
  \x1b[2m\u2502\x1b[0m changed: [strata-engine20]
  \x1b[2m\u2502\x1b[0m fatal: [strata-engine28c]: FAILED! => {"changed": true, "rc": 1,
  \x1b[2m\u2502\x1b[0m   "stderr": "touch: no such file"}
  \x1b[2m\u2502\x1b[0m
  \x1b[2m\u2502\x1b[0m TASK [Probe] *******************************************************************
  \x1b[2m\u2502\x1b[0m fatal: [strata-engine28]: FAILED! => {"msg": "gone"}
  \x1b[2m\u2502\x1b[0m ...ignoring
  \x1b[2m\u2502\x1b[0m TASK [Record the orphans the crash left] ***************************************
  \x1b[2m\u2502\x1b[0m ok: [strata-engine20]
"""


def test_the_digest_names_each_failed_task_and_its_failure_but_not_an_ignored_one():
    digest = failure_digest(MOLECULE_OUTPUT.splitlines(keepends=True))
    assert digest == [
        "TASK [Kill dockerd in the middle of docker load]",
        'fatal: [strata-engine28c]: FAILED! => {"changed": true, "rc": 1, "stderr": "touch: no such file"}',
    ]  # Molecule wraps it at 80 columns; the digest joins it again


def test_the_digest_cuts_long_lines_and_keeps_the_last_failures():
    lines = ["TASK [t%d] ***\n" % n + "fatal: [h]: FAILED! => %s\n" % ("x" * 3000) for n in range(30)]
    digest = failure_digest("".join(lines).splitlines(keepends=True), limit=4, width=21)
    assert digest == ["TASK [t28]", "fatal: [h]: FAILED! =" + " ...", "TASK [t29]", "fatal: [h]: FAILED! =" + " ..."]


def test_a_failed_run_keeps_its_log_and_repeats_what_failed_at_the_end(tmp_path, capsys):
    script = "print('TASK [Build] ***\\nfatal: [h1]: FAILED! => {}\\n\\n' + 'x' * 10); raise SystemExit(2)"
    log = tmp_path / "fleet.log"
    assert run_logged([sys.executable, "-c", script], {}, str(log)) == 2
    out = capsys.readouterr().out
    assert log.read_text().splitlines() == ["TASK [Build] ***", "fatal: [h1]: FAILED! => {}", "", "x" * 10]
    assert out.splitlines()[-2:] == ["fleet:   TASK [Build]", "fleet:   fatal: [h1]: FAILED! => {}"]


def test_a_run_that_passes_says_nothing_more(tmp_path, capsys):
    assert run_logged([sys.executable, "-c", "print('fatal: [h]: FAILED! (then rescued)')"], {},
                      str(tmp_path / "fleet.log")) == 0
    assert capsys.readouterr().out == "fatal: [h]: FAILED! (then rescued)\n"
