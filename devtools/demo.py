"""make demo: a sandbox dockerd on a temporary data-root and sample images, then the whole collection on it.

1. the facts playbook prints the image -> layer -> directory map;
2. one byte of a file in a lower layer is changed: layer_verify names the layer and the file;
3. a leftover directory and a dangling link are planted: orphan_layer_prune plans (check mode), then reclaims.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from devtools.paths import make_importable  # noqa: E402  pylint: disable=wrong-import-position

make_importable()

from devtools.collection import ansible_env, ansible_tool, build_and_install  # noqa: E402  pylint: disable=wrong-import-position
from devtools.sandbox import Engine, build_samples  # noqa: E402  pylint: disable=wrong-import-position


DEMO_PLAYBOOK = os.path.join(os.path.dirname(os.path.abspath(__file__)), "demo.yml")


def playbook(collections: str, name: str, *extra: str) -> int:
    return subprocess.run(
        [ansible_tool("ansible-playbook"), name, "-i", "localhost,", "-c", "local",
         "-e", "ansible_python_interpreter=/usr/bin/python3"] + list(extra),
        env=dict(ansible_env(collections), ANSIBLE_STDOUT_CALLBACK="ansible.builtin.default",
                 ANSIBLE_CALLBACK_RESULT_FORMAT="yaml"),
        check=False).returncode


def change_one_byte(data_root: str) -> str:
    """Flip the first byte of /opt/blob.bin in the lower layer that holds it; returns the file's path."""
    overlay = os.path.join(data_root, "overlay2")
    for name in sorted(os.listdir(overlay)):
        path = os.path.join(overlay, name, "diff", "opt", "blob.bin")
        if os.path.isfile(path) and not os.path.islink(path):
            with open(path, "r+b") as handle:
                first = handle.read(1)
                handle.seek(0)
                handle.write(bytes([first[0] ^ 0xFF]))
            return path
    raise RuntimeError("no layer holds opt/blob.bin")


def plant_leftovers(data_root: str) -> None:
    """A directory nothing references and a link to nothing, both two hours old, as a crash leaves them."""
    leftover = os.path.join(data_root, "overlay2", "%064x" % 0xDE40)
    os.makedirs(os.path.join(leftover, "diff"))
    with open(os.path.join(leftover, "diff", "partial.bin"), "wb") as handle:
        handle.write(os.urandom(3 << 20))
    link = os.path.join(data_root, "overlay2", "l", "DEMODANGLINGLINKAAAAAAAAAA")
    os.symlink("../%064x/diff" % 0xDEAD, link)
    old = time.time() - 7200
    for path in (os.path.join(leftover, "diff", "partial.bin"), os.path.join(leftover, "diff"), leftover):
        os.utime(path, (old, old))
    os.utime(link, (old, old), follow_symlinks=False)


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
            codes = [playbook(collections, "strata.overlay2.facts", "-e", "overlay2_data_root=" + engine.data_root)]
            print("== the engine's own view, for comparison: docker system df")
            print(engine.docker("system", "df"))
            print("== one byte changed in %s" % change_one_byte(engine.data_root))
            plant_leftovers(engine.data_root)
            print("== a leftover directory and a dangling link planted; verify, plan, prune")
            codes.append(playbook(collections, DEMO_PLAYBOOK, "-e", "demo_data_root=" + engine.data_root))
            print("== stopping the sandbox")
        return max(codes)


if __name__ == "__main__":
    sys.exit(main())
