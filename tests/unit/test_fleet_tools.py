"""The fleet's host-image builder reads the Debian mirror from the machine's apt sources, never from the repo."""

from __future__ import annotations

import pytest

from devtools.fleet import apt_mirror

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
