# Copyright (c) strata.overlay2 contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# This plugin_utils is PRIVATE to the strata.overlay2 collection. It may change
# without notice; do not import it from other collections.

"""The fleet report: one summary per host, the fleet's data, and a self-contained HTML page.

A host summary is built from what the modules return on that host (the ``overlay2`` facts and
the ``layer_verify`` result). The fleet report gathers the summaries, ranks the largest images
by unique bytes, and renders one HTML page with no external scripts, styles or fonts; its two
charts are inline SVG.
"""

from __future__ import annotations

import html
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

VERIFIED = "verified"
CORRUPT = "corrupt"
NOT_VERIFIED = "not verified"
NO_DATA = "no data"
DETAIL_LIMIT = 50  # entries of one list shown per host in the page (the JSON keeps all)
# The lists of a host summary that grow with the store; ``list_totals`` counts each whatever was kept.
LIST_KEYS = ("image_list", "corrupt", "unverifiable", "orphan_paths", "warnings")
INNER_LIMIT = 3  # entries of a list inside one entry (a corrupt layer's images and problems) in a bounded summary


class ReportError(ValueError):
    """The input is not what the modules return."""


def _mapping(value: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ReportError("%s must be a dict (the module's result), got %s" % (what, type(value).__name__))
    return value


def _short(image_id: str) -> str:
    return image_id.split(":", 1)[-1][:12]


def _image_name(image: Mapping[str, Any]) -> str:
    tags = image.get("tags") or []
    return tags[0] if tags else "<none> " + _short(str(image.get("id", "")))


def _problem_text(problem: Mapping[str, Any]) -> str:
    parts = [str(problem.get("kind", "problem"))]
    if problem.get("path"):
        parts.append(str(problem["path"]))
    if problem.get("detail"):
        parts.append("(%s)" % problem["detail"])
    return " ".join(parts)


def corrupt_entry(entry: Mapping[str, Any], names: Mapping[str, str]) -> Dict[str, Any]:
    """One corrupt layer or record of a layer_verify result, with image names resolved."""
    return {
        "chain_id": entry.get("chain_id"),
        "cache_id": entry.get("cache_id"),
        "diff_id": entry.get("diff_id"),
        "images": [names.get(image_id, _short(image_id)) for image_id in entry.get("images") or []],
        "containers": list(entry.get("containers") or []),
        "problems": [_problem_text(problem) for problem in entry.get("problems") or []],
    }


def cis_summary(result: Any) -> List[Dict[str, Any]]:
    """A ``cis_benchmark`` result reduced to what the report shows: each control's id, title, status and the
    targets that fail it."""
    controls = _mapping(result, "the cis_benchmark result").get("controls")
    if not isinstance(controls, list):
        raise ReportError("the cis_benchmark result has no controls (was the task skipped or failed?)")
    return [{"id": str(control.get("id")), "title": str(control.get("title")), "status": str(control.get("status")),
             "failing": sorted({str(e.get("target")) for e in control.get("evidence") or []
                                if control.get("status") == "fail" and (not e.get("waiver") or e["waiver"].get("expired"))})}
            for control in controls if isinstance(control, Mapping)]


def host_summary(facts: Any, verdict: Any = None, host: str = "", cis: Any = None,
                 limit: Optional[int] = None) -> Dict[str, Any]:
    """The report row and detail of one host, from its ``overlay2`` facts, optional layer_verify result and
    optional cis_benchmark result; with ``limit``, bounded (see ``bounded``)."""
    facts = _mapping(facts, "the overlay2 facts")
    summary = _mapping(facts.get("summary", {}), "overlay2.summary")
    images = [image for image in facts.get("images") or [] if not image.get("intermediate")]
    names = {str(image.get("id")): _image_name(image) for image in facts.get("images") or []}
    orphans = facts.get("orphans") or {}
    layers_size = int(summary.get("layers_size") or 0)
    shared_size = int(summary.get("shared_size") or 0)
    result: Dict[str, Any] = {
        "host": host,
        "data_root": facts.get("data_root"),
        "store": str(facts.get("store") or "overlay2"),
        "images": int(summary.get("images") or 0),
        "layers": int(summary.get("layers") or 0),
        "containers": int(summary.get("containers") or 0),
        "layers_size": layers_size,
        "shared_size": shared_size,
        "unique_size": layers_size - shared_size,
        "reclaimable_size": int(summary.get("reclaimable_size") or 0),
        "orphan_bytes": summary.get("orphan_bytes"),
        "orphans_by_kind": dict(orphans.get("by_kind") or {}),
        "orphan_paths": [item.get("path") for item in orphans.get("entries") or []],
        "buildkit_bytes": int(orphans.get("buildkit_bytes") or 0),
        "warnings": [warning.get("message", "") if isinstance(warning, Mapping) else str(warning)
                     for warning in facts.get("warnings") or []],
        "image_list": sorted(
            ({"id": image.get("id"), "name": _image_name(image), "tags": list(image.get("tags") or []),
              "layers": len(image.get("diff_ids") or []), "size": int(image.get("size") or 0),
              "unique_size": int(image.get("unique_size") or 0), "containers": len(image.get("containers") or [])}
             for image in images),
            key=lambda item: (-item["unique_size"], item["name"])),
        "verdict": NOT_VERIFIED,
        "checked_layers": None,
        "bytes_verified": None,
        "corrupt": [],
        "unverifiable": [],
        "cis": cis_summary(cis) if cis else None,
        "usage": usage_summary(facts.get("usage")),
    }
    if summary.get("content_size") is not None:
        result["content_size"] = int(summary["content_size"])
    if verdict:
        verdict = _mapping(verdict, "the layer_verify result")
        if "ok" not in verdict:
            raise ReportError("the layer_verify result has no 'ok' (was the task skipped or failed?)")
        result["verdict"] = VERIFIED if verdict["ok"] else CORRUPT
        result["checked_layers"] = verdict.get("checked_layers")
        result["bytes_verified"] = verdict.get("bytes_verified")
        result["corrupt"] = [corrupt_entry(entry, names) for entry in verdict.get("corrupt") or []]
        result["unverifiable"] = [dict(entry) for entry in verdict.get("unverifiable") or []]
    result["corrupt_layers"] = len(result["corrupt"])
    result["list_totals"] = {key: len(result[key]) for key in LIST_KEYS}
    return bounded(result, limit) if limit is not None else result


def bounded(row: Mapping[str, Any], limit: int) -> Dict[str, Any]:
    """A host summary whose size does not grow with the store: each list cut to its first ``limit`` entries,
    the lists inside an entry (a corrupt layer's images and problems, a control's failing targets) to
    ``INNER_LIMIT``. ``list_totals`` (and ``*_total`` beside an inner list) say how many there were."""
    limit = max(0, int(limit))
    result = dict(row)
    for key in LIST_KEYS:
        result[key] = list(result.get(key) or [])[:limit]
    result["corrupt"] = [_cut(entry, ("images", "containers", "problems")) for entry in result["corrupt"]]
    if result.get("cis"):
        result["cis"] = [_cut(control, ("failing",)) for control in result["cis"]]
    return result


def _cut(entry: Mapping[str, Any], keys: Sequence[str]) -> Dict[str, Any]:
    cut = dict(entry)
    for key in keys:
        items = list(entry.get(key) or [])
        cut[key] = items[:INNER_LIMIT]
        if len(items) > INNER_LIMIT:
            cut[key + "_total"] = len(items)
    return cut


def cut_lists(document: Mapping[str, Any], limit: int) -> Dict[str, Any]:
    """``document`` with every list in it, however deep, cut to its first ``limit`` entries, and ``truncated``:
    for each place a list was cut (its keys joined by dots, ``[]`` for any entry of a list), how many lists
    were cut there and how many entries they dropped. A size that does not grow with the store's beyond
    ``limit`` entries a list (a host's detail file)."""
    limit = max(0, int(limit))
    truncated: Dict[str, Dict[str, int]] = {}

    def cut(value: Any, where: str) -> Any:
        if isinstance(value, Mapping):
            return {key: cut(item, "%s.%s" % (where, key) if where else str(key)) for key, item in value.items()}
        if isinstance(value, (list, tuple)):
            if len(value) > limit:
                found = truncated.setdefault(where, {"lists": 0, "dropped": 0})
                found["lists"] += 1
                found["dropped"] += len(value) - limit
            return [cut(item, where + "[]") for item in list(value)[:limit]]
        return value

    result = cut(_mapping(document, "the document"), "")
    result["truncated"] = dict(sorted(truncated.items()))
    return result


def usage_summary(usage: Any) -> Optional[Dict[str, Any]]:
    """Where one store's disk went (its facts' ``usage``), as bytes by category; None when not gathered."""
    if not isinstance(usage, Mapping):
        return None
    categories = usage.get("categories") or {}
    found = {name: int((categories.get(name) or {}).get("bytes") or 0) for name in USAGE_SERIES[:-1]}
    found["unattributed"] = int((usage.get("unattributed") or {}).get("bytes") or 0)
    return {"total": int((usage.get("total") or {}).get("bytes") or 0), "categories": found}


def fleet_report(hosts: Iterable[Any], missing: Sequence[str] = (), generated: str = "",
                 largest: int = 10) -> Dict[str, Any]:
    """The fleet's data: one summary per host, hosts with no data, totals and the largest images."""
    rows = [dict(_mapping(row, "a host summary")) for row in hosts]
    rows.sort(key=lambda row: (str(row.get("host")), str(row.get("data_root"))))  # a host's stores together
    ranked = sorted(
        ({"host": row["host"], "name": image["name"], "id": image["id"], "unique_size": image["unique_size"],
          "size": image["size"]} for row in rows for image in row.get("image_list") or []),
        key=lambda item: (-item["unique_size"], item["host"], item["name"]))
    totals = {key: sum(int(row.get(key) or 0) for row in rows)
              for key in ("images", "layers", "containers", "layers_size", "shared_size", "unique_size",
                          "orphan_bytes")}
    totals["hosts"] = len({row.get("host") for row in rows}) + len(missing)
    totals["stores"] = len(rows)  # more than hosts when the audit reads every daemon's store of a host
    totals["corrupt_hosts"] = len({row.get("host") for row in rows if row.get("verdict") == CORRUPT})
    measured = [row["usage"] for row in rows if row.get("usage")]
    totals["usage"] = {"stores": len(measured), "total": sum(found["total"] for found in measured),
                       "categories": {name: sum(found["categories"].get(name, 0) for found in measured)
                                      for name in USAGE_SERIES}} if measured else None
    return {
        "generated": generated,
        "hosts": rows,
        "missing_hosts": sorted(str(host) for host in missing),
        "totals": totals,
        "largest_images": ranked[:max(0, int(largest))],
    }


# -- HTML ------------------------------------------------------------------------------------------

def human_bytes(value: Optional[int]) -> str:
    if value is None:
        return "-"
    amount = float(value)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(amount) < 1024 or unit == "TiB":
            return ("%d %s" % (amount, unit)) if unit == "B" else ("%.1f %s" % (amount, unit))
        amount /= 1024
    return "%d B" % value  # pragma: no cover - the loop always returns


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


COLOURS = {"shared": "#4c78a8", "unique": "#72b7b2", "orphans": "#e45756", "image": "#54a24b",
           "image_layers": "#4c78a8", "container_layers": "#72b7b2", "container_logs": "#f58518",
           "volumes": "#54a24b", "buildkit": "#b279a2", "containerd_content": "#9d755d",
           "containerd_snapshots": "#bab0ac", "metadata": "#79706e", "other_store": "#eeca3b",
           "unattributed": "#ff9da6", "stores": "#4c78a8", "layers_bytes": "#4c78a8", "orphan_bytes": "#e45756"}
# where the disk went (overlay2_facts' usage), in the order the report draws them
USAGE_SERIES = ("image_layers", "container_layers", "container_logs", "volumes", "buildkit", "containerd_content",
                "containerd_snapshots", "orphans", "metadata", "other_store", "unattributed")
CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px;color:#1f2328;background:#fff}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px}h3{font-size:15px;margin:16px 0 6px}
.meta{color:#59636e;margin-bottom:16px}
.cards{display:flex;gap:12px;flex-wrap:wrap}
.card{border:1px solid #d1d9e0;border-radius:6px;padding:8px 14px;min-width:120px}
.card b{display:block;font-size:20px}
table{border-collapse:collapse;margin:6px 0 12px}
th,td{border-bottom:1px solid #d1d9e0;padding:4px 10px;text-align:left;vertical-align:top}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
.badge{border-radius:10px;padding:1px 8px;font-size:12px;color:#fff}
.verified{background:#1a7f37}.corrupt{background:#cf222e}.not-verified,.no-data{background:#6e7781}
.cis-pass{background:#1a7f37}.cis-fail{background:#cf222e}.cis-waived{background:#9a6700}
.cis-manual,.cis-not-applicable{background:#6e7781}.stale{background:#9a6700}
.change{color:#59636e;font-size:12px}
code{font:12px ui-monospace,monospace}
details{border:1px solid #d1d9e0;border-radius:6px;padding:6px 12px;margin:8px 0}
summary{cursor:pointer;font-weight:600}
svg text{font:12px system-ui,sans-serif;fill:#1f2328}
"""


def _badge(verdict: str) -> str:
    return '<span class="badge %s">%s</span>' % (verdict.replace(" ", "-"), _e(verdict))


def _bar_chart(chart_id: str, title: str, rows: List[Dict[str, Any]], series: Sequence[str],
               count: bool = False) -> str:
    """A horizontal stacked bar chart as inline SVG: one bar per row, one segment per series; ``count`` shows
    the values as numbers rather than bytes."""
    amount = str if count else human_bytes
    label_width, bar_width, row_height, top = 230, 460, 24, 30
    peak = max([sum(int(row["values"].get(name) or 0) for name in series) for row in rows] + [1])
    height = top + row_height * max(len(rows), 1) + 10
    parts = ['<svg id="%s" class="chart" role="img" xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" '
             'viewBox="0 0 %d %d"><title>%s</title>' % (chart_id, label_width + bar_width + 110, height,
                                                        label_width + bar_width + 110, height, _e(title))]
    legend_x = label_width
    for name in series:
        parts.append('<rect x="%d" y="6" width="12" height="12" fill="%s"/><text x="%d" y="16">%s</text>'
                     % (legend_x, COLOURS[name], legend_x + 16, _e(name)))
        legend_x += 24 + 8 * len(name) + 20
    for index, row in enumerate(rows):
        y = top + index * row_height
        parts.append('<text x="%d" y="%d" text-anchor="end">%s</text>' % (label_width - 8, y + 15, _e(row["label"])))
        x = float(label_width)
        total = 0
        for name in series:
            value = int(row["values"].get(name) or 0)
            total += value
            width = bar_width * value / peak
            if value:
                parts.append('<rect class="bar" data-series="%s" data-bytes="%d" x="%.1f" y="%d" width="%.1f" '
                             'height="%d" fill="%s"><title>%s: %s</title></rect>'
                             % (name, value, x, y + 3, max(width, 1.0), row_height - 6, COLOURS[name],
                                _e(name), amount(value)))
            x += width
        parts.append('<text x="%.1f" y="%d">%s</text>' % (x + 6, y + 15, amount(total)))
    parts.append("</svg>")
    return "".join(parts)


def _labels(rows: Sequence[Mapping[str, Any]]) -> List[Tuple[str, str]]:
    """(label, anchor) of each row: the host, and with several stores on one host, the store too."""
    per_host: Dict[str, int] = {}
    for row in rows:
        per_host[str(row["host"])] = per_host.get(str(row["host"]), 0) + 1
    seen: Dict[str, int] = {}
    result = []
    for row in rows:
        host = str(row["host"])
        number = seen[host] = seen.get(host, 0) + 1
        label = host if per_host[host] == 1 else "%s %s" % (host, row.get("data_root"))
        result.append((label, "host-%s" % host if number == 1 else "host-%s-%d" % (host, number)))
    return result


def _host_table(report: Mapping[str, Any]) -> str:
    head = ("<tr><th>Host</th><th>Data-root</th><th>Store</th><th class=num>Images</th><th class=num>Layers</th>"
            "<th class=num>Shared</th><th class=num>Unique</th><th class=num>Reclaimable orphans</th>"
            "<th>Verification</th></tr>")
    body = []
    for row, (_label, anchor) in zip(report["hosts"], _labels(report["hosts"])):
        verdict_text = _verdict(row) + _change(report, row)
        body.append('<tr class="host-row" data-host="%s"><td><a href="#%s">%s</a></td><td><code>%s</code></td>'
                    "<td class=store>%s</td><td class=num>%d</td><td class=num>%d</td><td class=num>%s</td>"
                    "<td class=num>%s</td><td class=num>%s</td><td>%s</td></tr>"
                    % (_e(row["host"]), _e(anchor), _e(row["host"]), _e(row.get("data_root")),
                       _e(row.get("store") or "overlay2"), int(row.get("images") or 0), int(row.get("layers") or 0),
                       human_bytes(row.get("shared_size")),
                       human_bytes(row.get("unique_size")), human_bytes(row.get("orphan_bytes")), verdict_text))
    body.extend(_missing_rows(report))
    return '<table id="hosts"><thead>%s</thead><tbody>%s</tbody></table>' % (head, "".join(body))


def _missing_rows(report: Mapping[str, Any]) -> List[str]:
    """A row per host without data: not audited (no result kept), failed in this run, or unreadable."""
    not_audited = set(report.get("not_audited") or [])
    reasons = {item["host"]: item["reason"] for item in report.get("unreadable") or []}
    rows = []
    for host in report.get("missing_hosts") or []:
        why = ("not audited: no result kept" if host in not_audited else "failed or unreachable: no data")
        if host in reasons:
            why += "; unreadable: " + reasons[host]
        rows.append('<tr class="host-row missing" data-host="%s"><td>%s</td><td colspan=7>%s</td><td>%s</td></tr>'
                    % (_e(host), _e(host), _e(why), _badge(NO_DATA)))
    return rows


def _verdict(row: Mapping[str, Any]) -> str:
    verdict = row.get("verdict") or NOT_VERIFIED
    text = _badge(verdict)
    if verdict == CORRUPT:
        text = "%s (%d)" % (text, int(row.get("corrupt_layers") or len(row.get("corrupt") or [])))
    if row.get("stale"):
        text += ' <span class="badge stale" title="audited %s">stale</span>' % _e(row.get("run_at"))
    if any(control.get("status") == "fail" for control in row.get("cis") or []):
        text += ' <span class="badge cis-fail">CIS fail</span>'
    return text


def _change(report: Mapping[str, Any], row: Mapping[str, Any]) -> str:
    """The store's change since its previous report run, when the history holds one."""
    changes = ((report.get("history") or {}).get("changes") or {}).get(str(row.get("host")), {})
    change = changes.get(str(row.get("data_root")))
    if not change:
        return ""
    parts = []
    for key, name in (("layers_bytes", "layers"), ("orphan_bytes", "orphans")):
        delta = change.get(key)
        if delta:
            parts.append("%s %s%s" % (name, "+" if delta > 0 else "-", human_bytes(abs(delta))))
    return ('<div class="change" title="since %s">%s</div>' % (_e(change.get("since")), _e(", ".join(parts)))
            if parts else "")


def _list(items: Sequence[Any], empty: str, total: Optional[int] = None) -> str:
    """A list of at most DETAIL_LIMIT entries; ``total`` counts those a bounded summary left out too."""
    if not items:
        return "<p>%s</p>" % _e(empty)
    shown = "".join("<li><code>%s</code></li>" % _e(item) for item in items[:DETAIL_LIMIT])
    hidden = max(len(items), int(total or 0)) - min(len(items), DETAIL_LIMIT)
    more = "<li>... and %d more (see the host's own JSON)</li>" % hidden if hidden > 0 else ""
    return "<ul>%s%s</ul>" % (shown, more)


def _host_detail(row: Mapping[str, Any], anchor: str) -> str:
    images = "".join(
        "<tr><td>%s</td><td><code>%s</code></td><td class=num>%d</td><td class=num>%s</td><td class=num>%s</td>"
        "<td class=num>%d</td></tr>" % (_e(image["name"]), _e(_short(str(image["id"]))), image["layers"],
                                        human_bytes(image["size"]), human_bytes(image["unique_size"]),
                                        image["containers"])
        for image in (row.get("image_list") or [])[:DETAIL_LIMIT])
    corrupt = "".join(
        "<li><code>%s</code> (cache-id <code>%s</code>; images %s; containers %d)%s</li>"
        % (_e(entry.get("chain_id") or "record"), _e(entry.get("cache_id")), _e(", ".join(entry["images"]) or "-"),
           len(entry.get("containers") or []), _list(entry.get("problems") or [], "no detail"))
        for entry in row.get("corrupt") or [])
    kinds = ", ".join("%s: %s" % (kind, count) for kind, count in sorted((row.get("orphans_by_kind") or {}).items())
                      if count)
    return (
        '<details class="host-detail" id="%s"%s><summary>%s %s</summary>'
        "<p>Data-root <code>%s</code> (%s store); %d images, %d layers, %d containers; verified %s layers, %s read.</p>"
        "<h3>Images by unique bytes</h3><table><thead><tr><th>Image</th><th>Id</th><th class=num>Layers</th>"
        "<th class=num>Size</th><th class=num>Unique</th><th class=num>Containers</th></tr></thead>"
        "<tbody>%s</tbody></table>"
        "%s"
        "<h3>Corrupt layers</h3>%s"
        "<h3>Orphans (%s%s)</h3>%s"
        "<h3>Store warnings</h3>%s</details>"
        % (_e(anchor), " open" if row.get("verdict") == CORRUPT else "", _e(row["host"]),
           _badge(row.get("verdict") or NOT_VERIFIED), _e(row.get("data_root")), _e(row.get("store") or "overlay2"),
           int(row.get("images") or 0),
           int(row.get("layers") or 0), int(row.get("containers") or 0),
           _e(row.get("checked_layers") if row.get("checked_layers") is not None else "no"),
           human_bytes(row.get("bytes_verified")), images, _usage_table(row.get("usage")),
           "<ul>%s</ul>" % corrupt if corrupt else "<p>None.</p>",
           human_bytes(row.get("orphan_bytes")), "; " + kinds if kinds else "",
           _list(row.get("orphan_paths") or [], "None.", _total(row, "orphan_paths")),
           _list(row.get("warnings") or [], "None.", _total(row, "warnings"))))


def _total(row: Mapping[str, Any], key: str) -> int:
    return int((row.get("list_totals") or {}).get(key) or len(row.get(key) or []))


def _usage_table(usage: Optional[Mapping[str, Any]]) -> str:
    """Where one store's disk went, a row per category that holds anything."""
    if not usage:
        return ""
    rows = "".join('<tr data-category="%s"><td>%s</td><td class=num>%s</td></tr>'
                   % (_e(name), _e(name.replace("_", " ")), human_bytes(usage["categories"].get(name)))
                   for name in USAGE_SERIES if usage["categories"].get(name))
    return ('<h3>Where the disk went (%s, as du -sx counts)</h3><table class="usage"><tbody>%s</tbody></table>'
            % (human_bytes(usage.get("total")), rows))


def _control_key(control_id: str) -> Tuple[int, ...]:
    return tuple(int(part) if part.isdigit() else 0 for part in control_id.split("."))


def _cis_matrix(report: Mapping[str, Any]) -> str:
    """A control-by-host table of the CIS Docker Benchmark, when the audit evaluated it; empty otherwise."""
    rows = [(row, label) for row, (label, _anchor) in zip(report["hosts"], _labels(report["hosts"])) if row.get("cis")]
    if not rows:
        return ""
    titles: Dict[str, str] = {}
    cells: Dict[Tuple[str, int], Mapping[str, Any]] = {}
    for column, (row, _label) in enumerate(rows):
        for control in row["cis"]:
            titles.setdefault(control["id"], control["title"])
            cells[(control["id"], column)] = control
    head = "<tr><th>Control</th>%s</tr>" % "".join('<th class="cis-host">%s</th>' % _e(label) for _row, label in rows)
    body = []
    for control_id in sorted(titles, key=_control_key):
        tds = []
        for column in range(len(rows)):
            cell = cells.get((control_id, column))
            if cell is None:
                tds.append("<td></td>")
                continue
            failing = cell.get("failing") or []
            tds.append('<td class="cis-cell" data-status="%s" title="%s"><span class="badge cis-%s">%s</span></td>'
                       % (_e(cell["status"]), _e(", ".join(failing[:20])), _e(cell["status"].replace("_", "-")),
                          _e(cell["status"] + (" (%d)" % len(failing) if failing else ""))))
        name = "%s %s" % (control_id, titles[control_id])
        body.append('<tr data-control="%s"><td>%s</td>%s</tr>' % (_e(control_id), _e(name), "".join(tds)))
    return ('<h2>CIS Docker Benchmark</h2><table id="cis-matrix"><thead>%s</thead><tbody>%s</tbody></table>'
            % (head, "".join(body)))


def _usage_charts(report: Mapping[str, Any], labels: Sequence[Tuple[str, str]]) -> str:
    """The fleet's disk by category, and each store's, when the audit gathered ``usage``."""
    fleet = (report.get("totals") or {}).get("usage")
    if not fleet:
        return ""
    rows = [{"label": "fleet (%d stores)" % fleet["stores"], "values": fleet["categories"]}]
    rows += [{"label": label, "values": row["usage"]["categories"]}
             for row, (label, _anchor) in zip(report["hosts"], labels) if row.get("usage")]
    series = [name for name in USAGE_SERIES if fleet["categories"].get(name)]
    return "<h2>Where the disk went</h2>" + _bar_chart("chart-usage", "Disk by category, the fleet and each store",
                                                       rows[:1], series) + \
        (_bar_chart("chart-usage-hosts", "Disk by category per store", rows[1:], series) if rows[1:] else "")


FOLD_AFTER = 50  # hosts beyond which the page lists the problem hosts and folds the rest


def render_html(report: Any, title: str = "Docker overlay2 fleet report") -> str:
    """The fleet report as one self-contained HTML page (inline CSS, inline SVG, no scripts). Up to FOLD_AFTER
    hosts, a row, a bar and a section per host; beyond, the hosts with problems first, the rest counted and
    folded, and charts of distributions."""
    report = _mapping(report, "the fleet report")
    totals = report.get("totals") or {}
    hosts = len(report["hosts"]) + len(report.get("missing_hosts") or [])
    cards = [("Hosts", totals.get("hosts", 0)), ("Images", totals.get("images", 0)),
             ("Layers", totals.get("layers", 0)), ("Layer bytes", human_bytes(totals.get("layers_size"))),
             ("Reclaimable orphans", human_bytes(totals.get("orphan_bytes"))),
             ("Hosts with corrupt layers", totals.get("corrupt_hosts", 0))]
    for key, name in (("not_audited_hosts", "Not audited"), ("stale_hosts", "Stale"),
                      ("out_of_policy_hosts", "Out of policy"), ("failed_hosts", "Failed")):
        if totals.get(key):
            cards.append((name, totals[key]))
    body = _fleet_body(report) if hosts > FOLD_AFTER else _small_body(report)
    return "".join([
        "<!DOCTYPE html><html lang=en><head><meta charset=utf-8><title>%s</title>" % _e(title),
        "<meta name=viewport content='width=device-width,initial-scale=1'><style>%s</style></head><body>" % CSS,
        "<h1>%s</h1><div class=meta>Generated %s by strata.overlay2</div>" % (_e(title), _e(report.get("generated"))),
        '<div class="cards">%s</div>' % "".join('<div class="card">%s<b>%s</b></div>' % (_e(name), _e(value))
                                                for name, value in cards),
        body, _trend(report), _outcomes(report), "</body></html>\n"])


def _small_body(report: Mapping[str, Any]) -> str:
    labels = _labels(report["hosts"])
    host_rows = [{"label": label, "values": {"shared": row.get("shared_size"), "unique": row.get("unique_size"),
                                             "orphans": row.get("orphan_bytes")}}
                 for row, (label, _anchor) in zip(report["hosts"], labels)]
    return "".join([
        "<h2>Hosts</h2>", _host_table(report), _cis_matrix(report),
        "<h2>Bytes per host</h2>", _bar_chart("chart-hosts", "Shared, unique and orphan bytes per host", host_rows,
                                              ("shared", "unique", "orphans")),
        _usage_charts(report, labels), _largest(report),
        "<h2>Per host</h2>", "".join(_host_detail(row, anchor) for row, (_label, anchor) in zip(report["hosts"], labels))])


def _largest(report: Mapping[str, Any]) -> str:
    image_rows = [{"label": "%s: %s" % (item["host"], item["name"]), "values": {"image": item["unique_size"]}}
                  for item in report.get("largest_images") or []]
    return "<h2>Largest images by unique bytes</h2>" + _bar_chart("chart-images", "Largest images by unique bytes",
                                                                  image_rows, ("image",))


def _is_problem(row: Mapping[str, Any]) -> bool:
    return bool(row.get("out_of_policy") or row.get("stale") or row.get("verdict") == CORRUPT)


def _fleet_body(report: Mapping[str, Any]) -> str:
    """At fleet scale: the hosts with problems (rows and sections), the others folded, distributions."""
    labels = _labels(report["hosts"])
    problem = {row["host"] for row in report["hosts"] if _is_problem(row)}
    shown = [(row, anchor) for row, (_label, anchor) in zip(report["hosts"], labels) if row["host"] in problem]
    others = [row for row in report["hosts"] if row["host"] not in problem]
    focus = dict(report, hosts=[row for row, _anchor in shown])
    others_rows = "".join(
        '<tr class="other-row" data-host="%s"><td>%s</td><td><code>%s</code></td><td class=num>%d</td>'
        "<td class=num>%d</td><td class=num>%s</td><td class=num>%s</td><td>%s%s</td></tr>"
        % (_e(row["host"]), _e(row["host"]), _e(row.get("data_root")), int(row.get("images") or 0),
           int(row.get("layers") or 0), human_bytes(row.get("layers_size")), human_bytes(row.get("orphan_bytes")),
           _e(row.get("verdict") or NOT_VERIFIED), _change(report, row)) for row in others)
    other_hosts = len({row["host"] for row in others})
    layer_bytes = [int(row.get("layers_size") or 0) for row in report["hosts"]]
    orphan_bytes = [int(row.get("orphan_bytes") or 0) for row in report["hosts"] if row.get("orphan_bytes")]
    return "".join([
        "<h2>Hosts needing attention (%d)</h2>" % (len({row["host"] for row, _a in shown})
                                                   + len(report.get("missing_hosts") or [])),
        "<p>Out of policy (a corrupt layer, a failing CIS control), stale, failed or not audited.</p>",
        _host_table(focus),
        '<details id="others"><summary>%d hosts without problems (%d stores)</summary>'
        '<table id="others-table"><thead><tr><th>Host</th><th>Data-root</th><th class=num>Images</th>'
        "<th class=num>Layers</th><th class=num>Layer bytes</th><th class=num>Orphans</th><th>Verification</th>"
        "</tr></thead><tbody>%s</tbody></table></details>" % (other_hosts, len(others), others_rows),
        "<h2>Distributions</h2><h3>Stores by layer bytes</h3>",
        _bar_chart("chart-layers-dist", "Stores by layer bytes", _histogram(layer_bytes), ("stores",),
                   count=True),
        "<h3>Stores with orphans, by orphan bytes</h3>",
        _bar_chart("chart-orphans-dist", "Stores with orphans, by orphan bytes", _histogram(orphan_bytes),
                   ("stores",), count=True) if orphan_bytes else "<p>No store has orphans.</p>",
        _usage_charts(dict(report, hosts=[]), []), _largest(report), _cis_matrix(focus),
        "<h2>Hosts needing attention, in detail</h2>",
        "".join(_host_detail(row, anchor) for row, anchor in shown)])


def _histogram(values: Sequence[int]) -> List[Dict[str, Any]]:
    """Rows of a histogram over powers of two (1-2 GiB, 2-4 GiB, ...), from the smallest value's to the largest's."""
    if not values:
        return []
    buckets: Dict[int, int] = {}
    for value in values:
        buckets[max(value, 1).bit_length() - 1] = buckets.get(max(value, 1).bit_length() - 1, 0) + 1
    low, high = min(buckets), max(buckets)
    return [{"label": "%s to %s" % (human_bytes(1 << power), human_bytes(1 << (power + 1))),
             "values": {"stores": buckets.get(power, 0)}} for power in range(low, high + 1)]


def _trend(report: Mapping[str, Any]) -> str:
    """The fleet over the report runs the history keeps (the last 30)."""
    runs = ((report.get("history") or {}).get("runs") or [])[-30:]
    if len(runs) < 2:
        return ""
    rows = [{"label": run["run_at"], "values": {"layers_bytes": run["layers_bytes"], "orphan_bytes": run["orphan_bytes"]}}
            for run in runs]
    table = "".join("<tr><td>%s</td><td class=num>%d</td><td class=num>%d</td><td class=num>%s</td>"
                    "<td class=num>%s</td><td class=num>%d</td></tr>"
                    % (_e(run["run_at"]), run["hosts"], run["audited_hosts"], human_bytes(run["layers_bytes"]),
                       human_bytes(run["orphan_bytes"]), run["out_of_policy_hosts"]) for run in runs)
    return ("<h2>Trend</h2>" + _bar_chart("chart-trend", "Layer and orphan bytes per report run", rows,
                                          ("layers_bytes", "orphan_bytes"))
            + '<table id="trend"><thead><tr><th>Run</th><th class=num>Hosts</th><th class=num>Audited</th>'
              "<th class=num>Layer bytes</th><th class=num>Orphans</th><th class=num>Out of policy</th></tr>"
              "</thead><tbody>%s</tbody></table>" % table)


def _outcomes(report: Mapping[str, Any]) -> str:
    """The cleanup and compliance roles' last outcomes: totals, and the hosts that failed a check."""
    cleanup, compliance = report.get("cleanup") or [], report.get("compliance") or []
    if not cleanup and not compliance:
        return ""
    failing = [item for item in compliance if int(item.get("failed") or 0) > 0]
    rows = "".join('<tr class="compliance-failed" data-host="%s"><td>%s</td><td>%s</td><td>%s</td></tr>'
                   % (_e(item["host"]), _e(item["host"]), _e(item.get("run_at")),
                      _e(", ".join(item.get("failed_checks") or []))) for item in failing[:DETAIL_LIMIT * 4])
    reclaimed = sum(int(item.get("reclaimed_bytes") or 0) for item in cleanup)
    table = ('<table id="compliance"><thead><tr><th>Host</th><th>Checked</th><th>Failed checks</th></tr></thead>'
             "<tbody>%s</tbody></table>" % rows) if rows else ""
    return ("<h2>Cleanup and compliance</h2><p>Cleanup ran on %d hosts (%s reclaimed); compliance on %d hosts, "
            "%d out of policy.</p>%s" % (len(cleanup), human_bytes(reclaimed), len(compliance), len(failing), table))
