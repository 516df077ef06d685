# Copyright (c) strata.overlay2 contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# This module_utils is PRIVATE to the strata.overlay2 collection. It may change
# without notice; do not import it from other collections.

"""A host's audit figures in Prometheus' text exposition format, for node_exporter's textfile collector.

One gauge family per figure, prefixed ``strata_overlay2_``, one sample per store labelled ``data_root`` and
``store``. The file is replaced atomically: written to a temporary file in the same directory (a name that does
not end in ``.prom``, which the collector ignores), then renamed over the old one.
"""

from __future__ import annotations

import os
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from ansible_collections.strata.overlay2.plugins.module_utils._util.safefs import replace_file

PREFIX = "strata_overlay2_"
# (name, help, the row's key): the figures of one store, as the audit role's summary row holds them
GAUGES: Tuple[Tuple[str, str, str], ...] = (
    ("images", "Images in the store.", "images"),
    ("layers", "Image layers in the store.", "layers"),
    ("containers", "Containers in the store.", "containers"),
    ("layers_bytes", "Bytes of the store's image layers.", "layers_size"),
    ("shared_bytes", "Bytes of image layers that more than one image uses.", "shared_size"),
    ("orphan_bytes", "Bytes Docker leaked that may be reclaimed (absent when orphans were not classified).",
     "orphan_bytes"),
    ("corrupt_layers", "Layers whose content does not match their DiffID (absent when not verified).",
     "corrupt_layers"),
    ("warnings", "Entries of the store that could not be read or are inconsistent.", "warnings_total"),
)
LAST_RUN = ("last_run_timestamp_seconds", "When the audit that measured these figures ran, in seconds since the epoch.")
FILE_MODE = 0o644


def _label(value: Any) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _value(row: Mapping[str, Any], key: str) -> Optional[float]:
    if key == "warnings_total":
        totals = row.get("list_totals") or {}
        return float(totals.get("warnings", len(row.get("warnings") or [])))
    if key == "corrupt_layers" and row.get("verdict") not in ("verified", "corrupt"):
        return None
    value = row.get(key)
    return None if value is None or isinstance(value, bool) else float(value)


def _number(value: float) -> str:
    return str(int(value)) if value == int(value) else repr(value)


def render(rows: Sequence[Mapping[str, Any]], run_at: float) -> str:
    """The exposition text for the stores of one host (rows as the audit role's ``overlay2_audit`` holds them)."""
    lines: List[str] = []
    families: List[Tuple[str, str, List[Tuple[Dict[str, str], float]]]] = []
    for name, text, key in GAUGES:
        samples = [({"data_root": str(row.get("data_root")), "store": str(row.get("store") or "overlay2")}, value)
                   for row in rows for value in [_value(row, key)] if value is not None]
        families.append((name, text, samples))
    families.append((LAST_RUN[0], LAST_RUN[1],
                     [({"data_root": str(row.get("data_root")), "store": str(row.get("store") or "overlay2")},
                       float(run_at)) for row in rows]))
    for name, text, samples in families:
        if not samples:
            continue
        lines.append("# HELP %s%s %s" % (PREFIX, name, text))
        lines.append("# TYPE %s%s gauge" % (PREFIX, name))
        for labels, value in samples:
            lines.append("%s%s{%s} %s" % (PREFIX, name, ",".join('%s="%s"' % (key, _label(labels[key]))
                                                                 for key in sorted(labels)), _number(value)))
    return "\n".join(lines) + "\n"


def current(path: str) -> Optional[str]:
    """What the file holds now; None when there is none (a symlink or anything but a regular file counts as none
    and is replaced by the rename, never followed)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return None
    with os.fdopen(fd, "r", encoding="utf-8", errors="replace") as stream:
        return stream.read()


def write(path: str, text: str) -> None:
    """Replace ``path`` with ``text`` atomically (a temporary file beside it, then a rename)."""
    replace_file(path, text, FILE_MODE)
