#!/usr/bin/env bash
# Run ansible-test sanity on a copy of the tracked files laid out as ansible_collections/strata/overlay2.
#   VENV            the virtualenv whose ansible-core runs the tests (default .venv)
#   SANITY_PYTHON   the controller Python of that virtualenv (default: its own version)
#   SANITY_TARGETS  further target Pythons for the module-side tests (compile, import), e.g. "3.9 3.12"
# ansible-test keeps its own virtualenvs and bootstrap cache under a home of its own per ansible-core
# (.cache/ansible-test/<version>), so that two runs, or two cores, never share one.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
venv=${VENV:-$repo/.venv}
controller=${SANITY_PYTHON:-$("$venv/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')}
targets=${SANITY_TARGETS-}
core=$("$venv/bin/python" -c 'from ansible.release import __version__; print(__version__)')
work=$(mktemp -d /tmp/strata-sanity.XXXXXX)
trap 'rm -rf "$work"' EXIT
dest=$work/ansible_collections/strata/overlay2
mkdir -p "$dest"
(cd "$repo" && git ls-files -z --cached --others --exclude-standard | tar --null -T - -cf -) | tar -C "$dest" -xf -
export PIP_CACHE_DIR=${PIP_CACHE_DIR:-$HOME/.cache/pip}
export HOME=$repo/.cache/ansible-test/$core
mkdir -p "$HOME"
"$venv/bin/python" "$repo/devtools/ansible_test_bootstrap.py" >/dev/null
cd "$dest"
export PATH="$venv/bin:$PATH"
echo "sanity: ansible-core $core, controller Python $controller, more targets: ${targets:-none}"
ansible-test sanity --python "$controller" --color no "$@"
for version in $targets; do
  python=$(python3 "$repo/devtools/pythons.py" "$version") || { echo "python$version not found: its leg is skipped"; continue; }
  PATH="$(dirname "$python"):$PATH" ansible-test sanity --python "$version" --test compile --test import --color no "$@"
done
