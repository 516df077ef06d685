#!/usr/bin/env bash
# promtool from Debian's prometheus package, unpacked under .cache (the package is not installed and no
# Prometheus server is set up or started): devtools/promtool.sh prints the path of promtool.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
target="$here/.cache/promtool"
tool="$target/root/usr/bin/promtool"
if [ ! -x "$tool" ]; then
  rm -rf "$target" && mkdir -p "$target"
  cd "$target"
  if ! apt-get download -qq prometheus >/dev/null 2>&1; then
    apt-get update -qq >/dev/null
    apt-get download -qq prometheus >/dev/null
  fi
  cd "$here"
  dpkg-deb -x "$target"/prometheus_*.deb "$target/root"
  rm -f "$target"/prometheus_*.deb
fi
echo "$tool"
