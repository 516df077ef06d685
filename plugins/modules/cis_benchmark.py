#!/usr/bin/python
# Copyright (c) strata.overlay2 contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: cis_benchmark
short_description: Evaluate the CIS Docker Benchmark from disk, daemon up or down
version_added: 1.1.0
description:
  - Evaluates the controls of the CIS Docker Benchmark (v1.6.0 numbering, with the ids and titles
    docker-bench-security uses) that files on the host can decide, and reports the others as V(manual).
  - Section 1 from the mount table and the audit rules (C(/etc/audit/audit.rules), C(/etc/audit/rules.d/*.rules));
    section 2 from C(daemon.json) and the daemon's command line (the running dockerd's C(/proc/<pid>/cmdline),
    else the C(ExecStart) of C(docker.service)); section 3 from the ownership and modes of the daemon's files;
    section 4 per image from its config and its layers' file headers; section 5 per container from its
    C(config.v2.json) and C(hostconfig.json). Containers that are only created or stopped count too.
  - 4.8 lists every setuid and setgid file a container of the image would see (later layers' changes and
    whiteouts applied) with the layer it comes from, read from the layers' tar-split headers (overlay2) or the
    snapshot directories (containerd image store) without opening a file. 4.10 looks for secrets in C(Env), in
    the build history and in files named like credentials (private keys, C(.git-credentials), C(.npmrc),
    C(.env), C(.docker/config.json), C(.aws/credentials), ...), confirmed by a bounded look at small files.
    Secret values are never returned.
  - Read-only; works on both image stores and with the daemon stopped.
author:
  - strata.overlay2 maintainers (@strata-overlay2)
extends_documentation_fragment:
  - strata.overlay2.data_root
  - strata.overlay2.attributes.actiongroup_storage
  - strata.overlay2.attributes.read_only
options:
  profile:
    description:
      - Which controls to evaluate. V(level1) is the benchmark's level 1 profile, V(level2) adds the level 2
        controls (all of them); control ids (for example V(4.8)) may be listed alone or beside a level.
    type: list
    elements: str
    default: [level1]
  waivers:
    description:
      - Accepted exceptions. A failing finding that a waiver covers (same control, its O(waivers[].target)
        matches one of the target's names) is reported with the waiver; a control whose every failing finding
        is covered is V(waived). A waiver past its O(waivers[].expires) date covers nothing; the control fails and
        its evidence names the expired waiver.
    type: list
    elements: dict
    default: []
    suboptions:
      control:
        description: The control id, for example V(5.5).
        type: str
        required: true
      target:
        description:
          - A shell pattern matched against every name of the target. An image goes by its tags, digests, id and
            short id (and C(<name>:<path>) for a file in it, for 4.8 and 4.10); a container by its name, id and
            short id; a file by its path; the daemon by C(dockerd).
        type: str
        default: "*"
      reason:
        description: Why the exception is accepted; required, and reported with it.
        type: str
        required: true
      expires:
        description: The last day the waiver holds (C(YYYY-MM-DD)); without it, the waiver never expires.
        type: str
  host_root:
    description:
      - Where the host's file system is. V(/) is this host. Another path is another host's root file system
        mounted here (a dead host's disk); its files are read there, nothing is read from C(/proc), and controls
        that need the running host (1.1.1, and 5.2 and 5.3, whether it runs AppArmor or SELinux) are V(manual).
        With O(data_root=auto) the store is then the one its C(daemon.json) and C(docker.service) name.
    type: path
    default: /
  today:
    description: The day waivers are judged on (C(YYYY-MM-DD)); the managed node's date when not given.
    type: str
attributes:
  facts:
    support: none
    description: Returns its result as task values (RV(controls), RV(summary)), not as facts.
"""

EXAMPLES = r"""
- name: Evaluate the level 1 profile
  strata.overlay2.cis_benchmark:
  register: cis

- name: Fail on any failing control
  ansible.builtin.assert:
    that: cis.failed_controls | length == 0
    fail_msg: "CIS controls failing: {{ cis.failed_controls | join(', ') }}"

- name: Level 2 with an accepted exception
  strata.overlay2.cis_benchmark:
    profile: [level2]
    waivers:
      - control: "4.8"
        target: "*:/usr/bin/passwd"
        reason: passwd needs setuid to change passwords
        expires: "2027-06-30"
"""

RETURN = r"""
controls:
  description: One entry per evaluated control, in benchmark order.
  returned: success
  type: list
  elements: dict
  contains:
    id:
      description: The control id (CIS Docker Benchmark v1.6.0 numbering).
      type: str
      sample: "5.5"
    title:
      description: The control's title, as docker-bench-security prints it (without its Manual/Automated note).
      type: str
      sample: Ensure that privileged containers are not used
    level:
      description: V(level1) or V(level2).
      type: str
    status:
      description:
        - V(pass), V(fail), V(not_applicable) (nothing to judge, for example no TCP socket for 2.7 or a file that
          does not exist), V(manual) (files cannot decide it; the evidence says why) or V(waived) (every failing
          finding is covered by a valid waiver).
      type: str
      sample: fail
    evidence:
      description: What decided the status.
      type: list
      elements: dict
      contains:
        target:
          description: The image (its first tag, else its short id), container (its name), file, C(dockerd) or C(host).
          type: str
        detail:
          description: The value that decided, in words; secret values are never included.
          type: str
        code:
          description:
            - What the finding is, for machines (decide on it, not on RV(controls[].evidence[].detail)); for
              example V(privileged), V(setuid), V(setgid), V(secret_in_env), V(secret_file), V(wrong_mode),
              V(wrong_owner), V(not_audited), V(apparmor_missing), V(selinux_disabled), V(cgroup_parent_set) (5.25,
              a container's cgroup parent is set; a waiver records that it was confirmed), V(unreadable) (the input
              could not be read; the control fails).
          type: str
        waiver:
          description: The waiver that covers this finding (C(reason), C(target), C(expires), C(expired)).
          type: dict
          returned: when a waiver matched
summary:
  description: How many controls have each status.
  returned: success
  type: dict
  sample: {"pass": 40, "fail": 12, "not_applicable": 9, "manual": 18, "waived": 1}
failed_controls:
  description: The ids of the controls that fail (waived ones excluded).
  returned: success
  type: list
  elements: str
problems:
  description: What could not be read (a daemon.json, an image config, a layer's headers, a container's files).
  returned: success
  type: list
  elements: str
"""

import datetime
from typing import Any, List

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.strata.overlay2.plugins.module_utils._cis.catalogue import (
    Waiver,
    select,
)
from ansible_collections.strata.overlay2.plugins.module_utils._cis.benchmark import evaluate
from ansible_collections.strata.overlay2.plugins.module_utils._store.discovery import (
    AUTO,
    Location,
    configured_daemon,
)
from ansible_collections.strata.overlay2.plugins.module_utils._backends.open import STORE_OPTIONS, open_store
from ansible_collections.strata.overlay2.plugins.module_utils._store.detect import load_store
from ansible_collections.strata.overlay2.plugins.module_utils._store.model import StoreError


def open_for(module: AnsibleModule):
    """The store to judge: on this host as every module finds it; on a mounted root, the one its files name."""
    host_root = module.params["host_root"]
    if host_root in ("", "/") or module.params["data_root"] != AUTO:
        backend, location = open_store(module)
        return backend.store, location
    daemon = configured_daemon(host_root)
    if daemon is None:
        module.fail_json(msg="host_root %s holds no Docker configuration or store; set data_root" % host_root)
    try:
        store = load_store(daemon.store_root, module.params["store"], module.params["containerd_root"],
                           module.params["namespace"])
    except (StoreError, OSError) as exc:
        module.fail_json(msg=str(exc))
    return store, Location(daemon.store_root, daemon, [daemon])


def parse_inputs(module: AnsibleModule):
    try:
        controls = select(module.params["profile"])
        waivers: List[Waiver] = [Waiver.parse(raw) for raw in module.params["waivers"]]
        today = datetime.date.fromisoformat(module.params["today"]) if module.params["today"] else None
    except ValueError as exc:
        module.fail_json(msg=str(exc))
    return controls, waivers, today


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            **STORE_OPTIONS,
            "profile": {"type": "list", "elements": "str", "default": ["level1"]},
            "waivers": {"type": "list", "elements": "dict", "default": [], "options": {
                "control": {"type": "str", "required": True},
                "target": {"type": "str", "default": "*"},
                "reason": {"type": "str", "required": True},
                "expires": {"type": "str"},
            }},
            "host_root": {"type": "path", "default": "/"},
            "today": {"type": "str"},
        },
        supports_check_mode=True,
    )
    controls, waivers, today = parse_inputs(module)
    store, location = open_for(module)
    report = evaluate(store, location.daemon, controls, waivers, module.params["host_root"], today)
    result: Any = report.as_dict()
    module.exit_json(changed=False, controls=result["controls"], summary=result["summary"],
                     failed_controls=result["failed"], problems=result["problems"])


if __name__ == "__main__":
    main()
