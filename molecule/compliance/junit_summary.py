#!/usr/bin/env python
"""Print the JUnit files of a directory as JSON: {host: {check: {"status": ..., "text": ...}}}."""

import json
import os
import sys
from xml.etree import ElementTree


def summary(directory):
    hosts = {}
    for name in sorted(os.listdir(directory)):
        if not name.endswith(".xml"):
            continue
        suite = ElementTree.parse(os.path.join(directory, name)).getroot().find("testsuite")
        checks = {}
        for case in suite.findall("testcase"):
            failure, skipped = case.find("failure"), case.find("skipped")
            if failure is not None:
                checks[case.get("name")] = {"status": "failed", "text": failure.get("message") + "\n" + (failure.text or "")}
            elif skipped is not None:
                checks[case.get("name")] = {"status": "skipped", "text": skipped.get("message")}
            else:
                checks[case.get("name")] = {"status": "passed", "text": case.findtext("system-out") or ""}
        hosts[suite.get("hostname")] = {"failures": int(suite.get("failures")), "checks": checks}
    return hosts


if __name__ == "__main__":
    json.dump(summary(sys.argv[1]), sys.stdout)
