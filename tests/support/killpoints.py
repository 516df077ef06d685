"""Kill a function at its K-th removal call, by fault injection rather than timing.

The function runs in a forked child in which ``os.unlink``, ``os.rmdir``, ``os.rename``, ``os.replace`` and
``os.remove`` (every call through which the collection removes or renames: ``unlinkat``, ``renameat`` and
their kin) are counted across threads; the K-th one kills the child with SIGKILL before it happens, as a job
timeout, the OOM killer or a reboot would. ``removal_syscalls`` counts the same calls at the system call
level (strace), so a test can show the wrapped functions are all there is.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from typing import Callable, Dict, List, Optional, Tuple

REMOVAL_FUNCTIONS = ("unlink", "rmdir", "rename", "replace", "remove")
REMOVAL_SYSCALLS = ("unlink", "unlinkat", "rmdir", "rename", "renameat", "renameat2")


def _count_removals(kill_at: int, counter: List[int]) -> None:
    lock = threading.Lock()
    for name in REMOVAL_FUNCTIONS:
        real = getattr(os, name)

        def counted(*args, _real=real, **kwargs):
            with lock:
                counter[0] += 1
                reached = counter[0] == kill_at
            if reached:
                os.kill(os.getpid(), signal.SIGKILL)
            return _real(*args, **kwargs)

        setattr(os, name, counted)


def run_killed_at(kill_at: int, function: Callable[[], object]) -> Tuple[bool, int]:
    """Run ``function`` in a child killed at its ``kill_at``-th removal call (0: never). Returns whether it was
    killed, and how many removal calls it made when it was not."""
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into the test runner
        status = 1
        try:
            os.close(reader)
            counter = [0]
            _count_removals(kill_at, counter)
            function()
            os.write(writer, str(counter[0]).encode())
            status = 0
        finally:
            os._exit(status)  # pylint: disable=protected-access
    os.close(writer)
    with os.fdopen(reader, "rb") as handle:
        made = handle.read()
    _pid, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL:
        return True, 0
    if not os.WIFEXITED(status) or os.WEXITSTATUS(status) != 0:
        raise AssertionError("the child failed without being killed (status %r)" % status)
    return False, int(made)


def removal_syscalls(code: str, env: Optional[Dict[str, str]] = None) -> int:
    """The removal system calls a ``python -c code`` makes, its threads included, counted by strace."""
    result = subprocess.run(["strace", "-f", "-qq", "-e", "trace=" + ",".join(REMOVAL_SYSCALLS), "-e", "signal=none",
                             sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    calls = re.compile(r"^(?:\[pid\s+\d+\]\s+)?(%s)\(" % "|".join(REMOVAL_SYSCALLS))
    return sum(1 for line in result.stderr.splitlines() if calls.match(line))
