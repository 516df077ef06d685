#!/usr/bin/env python
"""Find a Python interpreter of a given version on this machine:  devtools/pythons.py 3.13

Looks for ``python<version>`` on PATH, then in pyenv's versions (``$PYENV_ROOT``, else ``~/.pyenv``).
Prints the interpreter's path, or says what is missing and exits 1. Standard library only, Python 3.8+.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
from typing import Optional


def works(path: str) -> bool:
    try:
        return subprocess.run([path, "-c", "pass"], capture_output=True, check=False, timeout=30).returncode == 0
    except OSError:
        return False


def find(version: str) -> Optional[str]:
    """The newest interpreter of ``version`` (major.minor) found here, or None."""
    name = "python" + version
    candidates = []
    on_path = shutil.which(name)
    if on_path:
        candidates.append(on_path)
    root = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
    candidates += sorted(glob.glob(os.path.join(root, "versions", version + ".*", "bin", name)), reverse=True)
    for candidate in candidates:
        if works(candidate):
            return candidate
    return None


def main() -> int:
    if len(sys.argv) != 2:
        print("usage: %s MAJOR.MINOR" % sys.argv[0], file=sys.stderr)
        return 2
    found = find(sys.argv[1])
    if found is None:
        print("python%s not found on PATH or in pyenv; install it (pyenv install %s)" % (sys.argv[1], sys.argv[1]),
              file=sys.stderr)
        return 1
    print(found)
    return 0


if __name__ == "__main__":
    sys.exit(main())
