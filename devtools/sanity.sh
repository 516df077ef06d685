#!/usr/bin/env bash
# Run ansible-test sanity on a copy of the tracked files laid out as ansible_collections/strata/overlay2.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
venv=${VENV:-$repo/.venv}
work=$(mktemp -d /tmp/strata-sanity.XXXXXX)
trap 'rm -rf "$work"' EXIT
dest=$work/ansible_collections/strata/overlay2
mkdir -p "$dest"
(cd "$repo" && git ls-files -z --cached --others --exclude-standard | tar --null -T - -cf -) | tar -C "$dest" -xf -
"$venv/bin/python" "$repo/devtools/ansible_test_bootstrap.py" >/dev/null
cd "$dest"
export PATH="$venv/bin:$PATH"
# everything on the controller's Python; then module code on the oldest and newest target Pythons here
ansible-test sanity --python 3.11 --color no "$@"
for version in 3.8 3.13; do
  # pyenv's shims answer only for the selected version: put the interpreter's own bin dir first
  for bin in "${PYENV_ROOT:-$HOME/.pyenv}"/versions/"$version".*/bin; do
    [ -x "$bin/python$version" ] && PATH="$bin:$PATH"
  done
  if command -v "python$version" >/dev/null && "python$version" -c pass 2>/dev/null; then
    ansible-test sanity --python "$version" --test compile --test import --color no "$@"
  else
    echo "python$version not found: target-side sanity for it skipped"
  fi
done
