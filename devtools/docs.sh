#!/usr/bin/env bash
# The documentation site: antsibull-docs lints the collection's docs, writes its pages, and Sphinx builds them
# with warnings as errors, offline (docs/sphinx/conf.py). Output: build/docs/html.
# Needs antsibull-docs, sphinx and ansible on PATH, and ANSIBLE_COLLECTIONS_PATH holding strata.overlay2.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
out=$repo/build/docs
rm -rf "$out"
mkdir -p "$out/rst" "$out/conf"
chmod 700 "$out" "$out/rst"  # antsibull-docs writes only into a directory no one else may write to
(cd "$repo/build/ansible_collections/strata/overlay2" && antsibull-docs lint-collection-docs --plugin-docs .)
cp "$repo/docs/sphinx/conf.py" "$out/conf/"
python3 "$repo/devtools/docs_inventory.py" "$out/conf/ansible_devel.inv"
antsibull-docs --config-file "$repo/docs/sphinx/antsibull-docs.cfg" collection --cleanup everything \
  --fail-on-error --use-current --dest-dir "$out/rst" strata.overlay2
cp "$repo/docs/sphinx/index.rst" "$out/rst/index.rst"
sphinx-build -q -b html "$out/rst" "$out/html" -c "$out/conf" -W --keep-going
echo "docs: $out/html/index.html"
