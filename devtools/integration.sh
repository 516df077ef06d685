#!/usr/bin/env bash
# Run ansible-test integration (tests/integration/targets) on a copy of the tracked files laid out as
# ansible_collections/strata/overlay2, on this host (--local: the targets make their stores under their own
# output directory, and run as root as the modules do on a Docker host).
#   VENV  the virtualenv whose ansible-core runs the targets (default .venv)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
venv=${VENV:-$repo/.venv}
python=$("$venv/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
core=$("$venv/bin/python" -c 'from ansible.release import __version__; print(__version__)')
work=$(mktemp -d /tmp/strata-integration.XXXXXX)
trap 'rm -rf "$work"' EXIT
dest=$work/ansible_collections/strata/overlay2
mkdir -p "$dest"
(cd "$repo" && git ls-files -z --cached --others --exclude-standard | tar --null -T - -cf -) | tar -C "$dest" -xf -
export HOME=$repo/.cache/ansible-test/$core
mkdir -p "$HOME"
cd "$dest"
export PATH="$venv/bin:$PATH"
echo "integration: ansible-core $core, Python $python"
ansible-test integration --local --python "$python" --color no "$@"
