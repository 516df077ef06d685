# Copyright (c) strata.overlay2 contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: overlay2_report_html
short_description: Render the fleet report as a self-contained HTML page
version_added: 0.1.0
author:
  - strata.overlay2 maintainers (@strata-overlay2)
description:
  - One HTML page with no external scripts, styles or fonts, and no scripts at all. It holds a table with a row per
    host, a chart of shared, unique and orphan bytes per host, a chart of the largest images by unique bytes (both
    inline SVG) and a detail section per host.
positional: _input, title
options:
  _input:
    description: The data made by P(strata.overlay2.overlay2_fleet_report#filter).
    type: dict
    required: true
  title:
    description: The page's title.
    type: str
    default: Docker overlay2 fleet report
"""

EXAMPLES = r"""
- name: Write the report
  ansible.builtin.copy:
    content: "{{ fleet | strata.overlay2.overlay2_report_html }}"
    dest: /srv/reports/overlay2.html
    mode: "0644"
  delegate_to: localhost
  run_once: true
"""

RETURN = r"""
_value:
  description: The HTML page.
  type: str
"""

from typing import Any, Callable, Dict

from ansible_collections.strata.overlay2.plugins.plugin_utils import _report
from ansible_collections.strata.overlay2.plugins.plugin_utils._filters import guard


@guard
def overlay2_report_html(report: Any, title: str = "Docker overlay2 fleet report") -> str:
    return _report.render_html(report, title)


class FilterModule:
    def filters(self) -> Dict[str, Callable[..., Any]]:
        return {"overlay2_report_html": overlay2_report_html}
