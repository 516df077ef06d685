#!/usr/bin/python
# Copyright (c) strata.overlay2 contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: overlay2_metrics
short_description: Write a host's audit figures for Prometheus' node_exporter textfile collector
version_added: 1.1.0
author:
  - strata.overlay2 maintainers (@strata-overlay2)
description:
  - Writes the figures of the C(overlay2_audit) result (one sample per store) in Prometheus' text exposition format
    to O(path)/O(file_name), for node_exporter's C(--collector.textfile.directory).
  - Gauges, each labelled C(data_root) and C(store) - C(strata_overlay2_images), C(strata_overlay2_layers),
    C(strata_overlay2_containers), C(strata_overlay2_layers_bytes), C(strata_overlay2_shared_bytes),
    C(strata_overlay2_orphan_bytes) (when orphans were classified), C(strata_overlay2_corrupt_layers) (when the
    layers were verified), C(strata_overlay2_warnings) and C(strata_overlay2_last_run_timestamp_seconds) (when the
    audit ran; node_exporter's own C(node_textfile_mtime_seconds) says when the file was written).
  - The file is replaced atomically - written to a temporary file in the same directory whose name does not end in
    C(.prom), then renamed - so that a scrape never reads half of it. A symlink at the file's path is replaced, not
    followed.
  - The audit role calls it when C(overlay2_audit_prometheus_dir) is set.
attributes:
  check_mode:
    support: full
    description: Nothing is written; the result says whether the file would change.
  diff_mode:
    support: none
    description: The file holds figures only; the result says whether they changed.
options:
  path:
    description: The textfile collector's directory. It must exist.
    type: path
    required: true
  file_name:
    description: The file's name in O(path); it must end in C(.prom), which node_exporter reads.
    type: str
    default: strata_overlay2.prom
  audit:
    description: The C(overlay2_audit) result of the host (C(run_at) and C(rows), as the audit role keeps it).
    type: dict
    required: true
seealso:
  - module: strata.overlay2.fleet_report
"""

EXAMPLES = r"""
- name: Publish the audit's figures to node_exporter
  strata.overlay2.overlay2_metrics:
    path: /var/lib/node_exporter/textfile_collector
    audit: "{{ overlay2_audit }}"
"""

RETURN = r"""
path:
  description: The file written.
  type: str
  returned: success
  sample: /var/lib/node_exporter/textfile_collector/strata_overlay2.prom
samples:
  description: How many samples the file holds.
  type: int
  returned: success
code:
  description: Why nothing was written - V(no_directory), V(bad_file_name), V(bad_audit) or V(write_failed).
  type: str
  returned: failure
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.strata.overlay2.plugins.module_utils._metrics.textfile import current, render, write
from ansible_collections.strata.overlay2.plugins.module_utils._util.durations import utc_time


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "path": {"type": "path", "required": True},
            "file_name": {"type": "str", "default": "strata_overlay2.prom"},
            "audit": {"type": "dict", "required": True},
        },
        supports_check_mode=True,
    )
    directory, name, audit = module.params["path"], module.params["file_name"], module.params["audit"]
    if not name.endswith(".prom") or "/" in name or name.startswith("."):
        module.fail_json(msg="file_name %r must be a plain name ending in .prom (node_exporter reads only those)"
                         % name, code="bad_file_name")
    if not os.path.isdir(directory):
        module.fail_json(msg="the textfile collector's directory %s does not exist" % directory, code="no_directory")
    rows = audit.get("rows")
    try:
        run_at = utc_time(audit.get("run_at")).timestamp()
        if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
            raise ValueError("rows is not a list of the stores' figures")
        text = render(rows, run_at)
    except (TypeError, ValueError) as exc:
        module.fail_json(msg="audit is not an overlay2_audit result: %s" % exc, code="bad_audit")
    path = os.path.join(directory, name)
    changed = current(path) != text
    if changed and not module.check_mode:
        try:
            write(path, text)
        except OSError as exc:
            module.fail_json(msg="cannot write %s: %s" % (path, exc), code="write_failed")
    module.exit_json(changed=changed, path=path, samples=sum(1 for line in text.splitlines()
                                                             if line and not line.startswith("#")))


if __name__ == "__main__":
    main()
