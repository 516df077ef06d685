"""make demo: a sandbox dockerd on a temporary data-root, sample images, and the facts playbook run against it."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from devtools.collection import ansible_env, ansible_tool, build_and_install  # noqa: E402  pylint: disable=wrong-import-position
from devtools.sandbox import Engine, build_samples  # noqa: E402  pylint: disable=wrong-import-position


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="strata-demo-") as workdir:
        print("== building and installing the collection")
        collections = build_and_install(workdir)
        with Engine() as engine:
            print("== sandbox dockerd on %s (pid %s)" % (engine.data_root, engine.process.pid if engine.process else "?"))
            print("== building sample images (busybox-static import, classic builder and BuildKit, no registry)")
            build_samples(engine)
            print(engine.docker("images"))
            print("== ansible-playbook strata.overlay2.facts")
            result = subprocess.run(
                [ansible_tool("ansible-playbook"), "strata.overlay2.facts", "-i", "localhost,", "-c", "local",
                 "-e", "ansible_python_interpreter=/usr/bin/python3", "-e", "overlay2_data_root=" + engine.data_root],
                env=dict(ansible_env(collections), ANSIBLE_STDOUT_CALLBACK="ansible.builtin.default",
                         ANSIBLE_CALLBACK_RESULT_FORMAT="yaml"),
                check=False)
            print("== the engine's own view, for comparison: docker system df")
            print(engine.docker("system", "df"))
            print("== stopping the sandbox")
        return result.returncode


if __name__ == "__main__":
    sys.exit(main())
