"""The small sample store the unit tests share: three images over a shared base, two containers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict

from tests.support.synthstore import SyntheticStore, directory, file, hardlink, opaque, symlink, whiteout


@dataclass
class SampleStore:
    synth: SyntheticStore
    base: object
    app: object
    tool: object
    images: Dict[str, str]
    containers: Dict[str, Dict[str, str]]

    @property
    def root(self) -> str:
        return self.synth.root


def build_sample(root: str) -> SampleStore:
    """base (1 layer) <- app (3 layers) and tool (2 layers): the base layer is shared by three images."""
    synth = SyntheticStore(root)
    base = synth.add_layer([directory("bin"), file("bin/busybox", b"\x7fELF" + b"b" * 1000, 0o755),
                            symlink("bin/sh", "busybox"), directory("etc"), file("etc/app/a.txt", "one\n"),
                            directory("etc/conf"), file("etc/conf/keep", "keep\n")])
    app1 = synth.add_layer([directory("etc"), whiteout("etc/app/a.txt"), file("etc/app/b.txt", "two\n"),
                            opaque("etc/conf"), file("etc/conf/new", "new\n")], parent=base)
    app2 = synth.add_layer([file("opt/data.bin", b"\0" * 4096), hardlink("opt/data.link", "opt/data.bin"),
                            file("opt/empty")], parent=app1)
    tool = synth.add_layer([file("usr/bin/tool", "#!/bin/sh\n", 0o755)], parent=base)
    images = {
        "base": synth.add_image([base], ["example/base:1", "example/base:latest"]),
        "app": synth.add_image([base, app1, app2], ["example/app:2"]),
        "tool": synth.add_image([base, tool], ["example/tool:1"]),
    }
    containers = {
        "web": synth.add_container(images["app"], app2, "web", running=True,
                                   rw_files=[file("var/log/web.log", "x" * 300)]),
        "job": synth.add_container(images["base"], base, "job", running=False),
    }
    return SampleStore(synth, base, app2, tool, images, containers)
