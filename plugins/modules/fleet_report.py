#!/usr/bin/python
# Copyright (c) strata.overlay2 contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: fleet_report
short_description: Build the fleet report on the controller from what every host keeps in the fact cache
version_added: 1.1.0
author:
  - strata.overlay2 maintainers (@strata-overlay2)
description:
  - Reads each host's C(overlay2_audit) fact (kept by the
    C(strata.overlay2.overlay2_audit) role) and the cleanup and compliance roles' outcomes (C(orphan_cleanup_outcome), C(compliance_outcome)) from the
    controller's fact cache, through the configured cache plugin (C(jsonfile), C(redis), AWX's fact storage), and
    writes C(fleet.json) and C(report.html) into O(dest). No host is contacted.
  - A host of O(hosts) with no result is listed as not audited; one whose audit is older than O(max_age) is
    flagged stale; one whose result cannot be read is named with the reason, and the rest of the report stands.
  - Each run adds every store's figures to an SQLite history beside the report (O(history_path)); the page shows
    the fleet's trend over the runs kept and each store's change since its previous run.
  - Runs on the controller only (an action plugin); the playbook C(strata.overlay2.report) calls it.
attributes:
  check_mode:
    support: full
    description: Nothing is written; the result says that the report would be written.
  diff_mode:
    support: none
    description: The report is new each run; there is no difference to show.
options:
  hosts:
    description: The inventory hosts the report covers (for example C(query('ansible.builtin.inventory_hostnames', 'all'))).
    type: list
    elements: str
    required: true
  dest:
    description: The directory that receives C(fleet.json), C(report.html) and, by default, C(history.sqlite3). It must exist.
    type: path
    required: true
  results:
    description:
      - The hosts' C(overlay2_audit) facts, when the play has them at hand (the audit role's own report at the end
        of an unsliced run). Omitted, the results are read from the fact cache.
    type: list
    elements: raw
  failed:
    description: Hosts of this run that failed or were unreachable; without a result they are listed as failed.
    type: list
    elements: str
    default: []
  max_age:
    description: How old an audit may be before the report flags its host stale; seconds, or a number with V(s), V(m), V(h), V(d) or V(w).
    type: str
    default: 7d
  history:
    description: Record this run in the history.
    type: bool
    default: true
  history_path:
    description: The history's SQLite database; C(history.sqlite3) in O(dest) when omitted.
    type: path
  history_keep_days:
    description: Runs older than this many days are dropped from the history; V(0) keeps every run.
    type: int
    default: 400
  title:
    description: The title of the HTML page.
    type: str
    default: Docker overlay2 fleet report
  largest:
    description: How many images the fleet's ranking by unique bytes shows.
    type: int
    default: 10
  return_report:
    description: Also return the whole report as RV(report) (large at fleet scale).
    type: bool
    default: false
notes:
  - With C(fact_caching=memory), Ansible's default, nothing outlives the run; the module then fails with code
    V(no_fact_cache). Keep C(fact_caching_timeout) at least O(max_age) (or V(0)), or older audits show as not
    audited instead of stale; the module warns when it is shorter.
  - A host whose cache entry cannot be read is listed in RV(unreadable) and the rest of the report stands. After
    10 such hosts in a row the cache itself is taken to be failing (a Redis server gone, say); the hosts after
    them are not read but listed as unreadable, with a warning, so that a report of 10,000 hosts does not wait
    for 10,000 timeouts; when not one host could be read, the module fails with V(fact_cache_unreadable).
seealso:
  - module: strata.overlay2.overlay2_facts
  - module: strata.overlay2.layer_verify
"""

EXAMPLES = r"""
- name: Build the fleet report from the fact cache
  strata.overlay2.fleet_report:
    hosts: "{{ query('ansible.builtin.inventory_hostnames', 'docker_hosts') }}"
    dest: /srv/reports/overlay2
    max_age: 2d
"""

RETURN = r"""
code:
  description:
    - Why the report could not be built - V(no_fact_cache), V(cache_plugin_missing), V(fact_cache_unreadable) (the
      plugin could not start, or its first 10 reads failed), V(bad_max_age), V(no_report_dir) or V(bad_result).
  type: str
  returned: failure
paths:
  description: The files written, C(json) and C(html).
  type: dict
  returned: success
history_path:
  description: The history database this run was recorded in; null when the history is off or could not be kept (a warning says why).
  type: str
  returned: success
totals:
  description:
    - The fleet's figures - C(hosts), C(audited_hosts), C(not_audited_hosts), C(failed_hosts), C(stale_hosts),
      C(out_of_policy_hosts), C(stores), C(images), C(layers), C(layers_size), C(shared_size), C(unique_size),
      C(orphan_bytes), C(corrupt_hosts), C(corrupt_layers), C(reclaimed_bytes) and C(usage).
  type: dict
  returned: success
problem_hosts:
  description:
    - The hosts the page lists first - out of policy (a corrupt layer, a failing CIS control or compliance check), stale,
      failed, not audited or unreadable.
  type: list
  elements: str
  returned: success
not_audited:
  description: Hosts with no audit result kept.
  type: list
  elements: str
  returned: success
stale_hosts:
  description: Hosts whose audit is older than O(max_age).
  type: list
  elements: str
  returned: success
failed_hosts:
  description: The hosts of O(failed).
  type: list
  elements: str
  returned: success
unreadable:
  description: Hosts whose kept result could not be read (C(host), C(reason)), for example one written by a newer collection.
  type: list
  elements: dict
  returned: success
report:
  description: The whole report, as C(fleet.json) holds it.
  type: dict
  returned: when O(return_report=true)
"""
