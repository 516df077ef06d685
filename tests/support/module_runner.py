"""Run a module's ``main()`` in this process, as Ansible would run it, and hand back what it returned."""

from __future__ import annotations

import contextlib
import json
from typing import Any, Callable, Dict, Iterator
from unittest import mock

from ansible.module_utils import basic
from ansible.module_utils.common.text.converters import to_bytes

try:  # ansible-core 2.19 and later
    from ansible.module_utils.testing import patch_module_args
except ImportError:  # 2.17 and 2.18 read the arguments from basic._ANSIBLE_ARGS
    @contextlib.contextmanager
    def patch_module_args(args: Dict[str, Any]) -> Iterator[None]:
        with mock.patch.object(basic, "_ANSIBLE_ARGS", to_bytes(json.dumps({"ANSIBLE_MODULE_ARGS": args}))):
            yield


class ModuleExit(Exception):
    """What the module returned: ``failed`` says whether it called fail_json."""

    def __init__(self, failed: bool, result: Dict[str, Any]) -> None:
        super().__init__(result.get("msg", ""))
        self.failed = failed
        self.result = result


def _exit(_module: Any, **result: Any) -> None:
    raise ModuleExit(False, result)


def _fail(_module: Any, **result: Any) -> None:
    raise ModuleExit(True, result)


def run_module(main: Callable[[], None], **args: Any) -> ModuleExit:
    """``main()`` with ``args`` (``_ansible_check_mode`` and friends included); never exits the test process."""
    with patch_module_args(args), mock.patch.object(basic.AnsibleModule, "exit_json", _exit), \
            mock.patch.object(basic.AnsibleModule, "fail_json", _fail):
        try:
            main()
        except ModuleExit as done:
            return done
    raise AssertionError("the module returned without exit_json or fail_json")
