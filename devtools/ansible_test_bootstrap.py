"""Let ansible-test bootstrap pip in its sanity virtualenvs on a machine that reaches only the package index.

ansible-test downloads a get-pip script from a CI file host before it installs a sanity test's
requirements, unless a script is cached under ~/.ansible/test/cache/get_pip_<version>.py. This writes a
stand-in there: it runs ``ensurepip`` and then ``pip install`` with the arguments ansible-test gives
(less the two get-pip-only flags), so that every package still comes from the configured index.
"""

from __future__ import annotations

import os
import re
import sys

STANDIN = '''"""Stand-in for get-pip.py written by strata.overlay2's devtools/ansible_test_bootstrap.py."""
import subprocess
import sys

ARGS = [arg for arg in sys.argv[1:] if arg not in ("--no-setuptools", "--no-wheel")]
subprocess.check_call([sys.executable, "-m", "ensurepip", "--upgrade"])
subprocess.check_call([sys.executable, "-m", "pip", "install"] + ARGS)
'''


def pip_version() -> str:
    import ansible_test  # pylint: disable=import-outside-toplevel

    source = os.path.join(os.path.dirname(ansible_test.__file__), "_internal", "python_requirements.py")
    with open(source, encoding="utf-8") as handle:
        match = re.search(r"pip='([0-9.]+)'", handle.read())
    if not match:
        sys.exit("cannot find the pip version ansible-test bootstraps in %s" % source)
    return match.group(1)


def main() -> None:
    cache = os.path.expanduser("~/.ansible/test/cache")
    path = os.path.join(cache, "get_pip_%s.py" % pip_version().replace(".", "_"))
    os.makedirs(cache, exist_ok=True)
    if not os.path.exists(path):
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(STANDIN)
    print(path)


if __name__ == "__main__":
    main()
