#!/usr/bin/env python
"""Open a fleet report in headless Chromium and check, from the rendered DOM, that it shows what it should.

    check_report.py REPORT.html --hosts h1,h2 [--corrupt h2] [--expect TEXT ...] [--screenshot out.png]

Checks: a table row per host (and no other), the verdict of each, both SVG charts laid out with visible bars,
a detail section per host, and nothing fetched from anywhere (no scripts, styles or fonts from outside).
Exits non-zero naming every check that failed. Needs Debian's chromium and chromium-driver.
"""

from __future__ import annotations

import argparse
import base64
import os
import sys
import tempfile
from typing import Any, Dict, List, Sequence

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")
# Chromium on a machine with no outside network: no background connections, no first-run work.
FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--window-size=1280,900")

READ_DOM = """
const rows = [...document.querySelectorAll('#hosts tbody tr.host-row')];
const chart = (id) => {
  const svg = document.getElementById(id);
  if (!svg) return null;
  const box = svg.getBoundingClientRect();
  const bars = [...svg.querySelectorAll('rect.bar')].map(b => b.getBoundingClientRect())
                 .filter(r => r.width > 0 && r.height > 0);
  return {width: box.width, height: box.height, visible_bars: bars.length};
};
return {
  hosts: rows.map(r => r.dataset.host),
  verdicts: Object.fromEntries(rows.map(r => [r.dataset.host, r.querySelector('.badge').textContent])),
  table_height: (document.getElementById('hosts') || {getBoundingClientRect: () => ({height: 0})})
                  .getBoundingClientRect().height,
  charts: {hosts: chart('chart-hosts'), images: chart('chart-images')},
  fleet_charts: {layers: chart('chart-layers-dist'), orphans: chart('chart-orphans-dist')},
  others: [...document.querySelectorAll('#others-table tbody tr.other-row')].map(r => r.dataset.host),
  others_folded: !!document.querySelector('details#others:not([open])'),
  details: [...document.querySelectorAll('details.host-detail')].map(d => d.id),
  external: [...document.querySelectorAll('script, link, img, iframe, object')].length,
  fetched: performance.getEntriesByType('resource').map(e => e.name),
  page_height: document.documentElement.scrollHeight,
  text: document.body.innerText,
};
"""


def save_full_page(driver: Any, path: str, height: int) -> None:
    """A PNG of the whole page, not only the window (Chromium's DevTools capture beyond the viewport)."""
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {
        "format": "png", "captureBeyondViewport": True,
        "clip": {"x": 0, "y": 0, "width": 1280, "height": min(height, 6000), "scale": 1}})
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "wb") as handle:
        handle.write(base64.b64decode(shot["data"]))


def read_report(path: str, screenshot: str = "") -> Dict[str, Any]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    with tempfile.TemporaryDirectory(prefix="strata-chromium-") as profile:
        for flag in FLAGS + ("--user-data-dir=" + profile,):
            options.add_argument(flag)
        driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
        try:
            driver.get("file://" + os.path.abspath(path))
            dom = driver.execute_script(READ_DOM)
            if screenshot:
                save_full_page(driver, screenshot, int(dom["page_height"]))
        finally:
            driver.quit()
    return dom


def problems(dom: Dict[str, Any], hosts: List[str], corrupt: List[str], expect: Sequence[str] = ()) -> List[str]:
    found = ["the page does not show %r" % text for text in expect if text not in dom["text"]]
    if sorted(dom["hosts"]) != sorted(hosts):
        found.append("table rows %s, expected %s" % (dom["hosts"], hosts))
    for host in hosts:
        expected = "corrupt" if host in corrupt else "verified"
        if dom["verdicts"].get(host) != expected:
            found.append("host %s shows %r, expected %r" % (host, dom["verdicts"].get(host), expected))
    if dom["table_height"] <= 0:
        found.append("the host table is not laid out")
    for name, chart in dom["charts"].items():
        if not chart:
            found.append("chart %s is missing" % name)
        elif chart["width"] <= 0 or chart["height"] <= 0 or chart["visible_bars"] == 0:
            found.append("chart %s renders no bars: %s" % (name, chart))
    if dom["charts"]["hosts"] and dom["charts"]["hosts"]["visible_bars"] < len(hosts):
        found.append("the per-host chart has fewer bars than hosts: %s" % dom["charts"]["hosts"])
    if sorted(dom["details"]) != sorted("host-" + host for host in hosts):
        found.append("detail sections %s" % dom["details"])
    if dom["external"] or [name for name in dom["fetched"] if not name.startswith("file:")]:
        found.append("the page loads outside resources: %s %s" % (dom["external"], dom["fetched"]))
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("report")
    parser.add_argument("--hosts", required=True, help="comma-separated hosts the report must show")
    parser.add_argument("--corrupt", default="", help="comma-separated hosts that must show 'corrupt'")
    parser.add_argument("--expect", action="append", default=[], help="text the rendered page must show")
    parser.add_argument("--screenshot", default="")
    args = parser.parse_args()
    hosts = [host for host in args.hosts.split(",") if host]
    dom = read_report(args.report, args.screenshot)
    found = problems(dom, hosts, [host for host in args.corrupt.split(",") if host], args.expect)
    for problem in found:
        print("FAIL: " + problem)
    if not found:
        print("report renders: %d host rows, chart bars %d + %d, %d detail sections%s"
              % (len(dom["hosts"]), dom["charts"]["hosts"]["visible_bars"], dom["charts"]["images"]["visible_bars"],
                 len(dom["details"]), (", screenshot " + args.screenshot) if args.screenshot else ""))
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
