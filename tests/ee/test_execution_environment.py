"""The execution environment definition is one ansible-builder 3 accepts, and its build context holds the collection."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import yaml

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILDER = os.path.join(os.path.dirname(sys.executable), "ansible-builder")


def test_ansible_builder_makes_a_build_context_with_the_collection(tmp_path):
    context = str(tmp_path / "context")
    result = subprocess.run([BUILDER if os.path.exists(BUILDER) else shutil.which("ansible-builder"), "create",
                             "-f", os.path.join(REPO, "execution-environment.yml"), "-c", context,
                             "--output-filename", "Containerfile"], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    with open(os.path.join(context, "Containerfile"), encoding="utf-8") as handle:
        containerfile = handle.read()
    assert "FROM" in containerfile and "ansible-galaxy" in containerfile
    with open(os.path.join(context, "_build", "requirements.yml"), encoding="utf-8") as handle:
        requirements = yaml.safe_load(handle)
    assert [c["name"] for c in requirements["collections"]] == ["strata.overlay2"]
    with open(os.path.join(REPO, "galaxy.yml"), encoding="utf-8") as handle:
        version = yaml.safe_load(handle)["version"]
    assert requirements["collections"][0]["version"].startswith(">=%s" % version)
