"""A Redis server of the tests' own, for the fact cache a controller may keep there: Debian's redis-tools
binary (``redis-check-rdb`` starts a server when run under the name ``redis-server``), on a free port of
127.0.0.1, keeping nothing on disk, stopped by its process id."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from typing import Iterator

BINARY = "/usr/bin/redis-check-rdb"  # from redis-tools (make system-deps); the same program as redis-server


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as connection:
            connection.sendall(b"PING\r\n")
            return connection.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@contextlib.contextmanager
def server(work: str) -> Iterator[str]:
    """A running server; yields its connection as the redis cache plugin takes it (``host:port:db``)."""
    program = os.path.join(work, "redis-server")
    os.symlink(BINARY, program)
    port = free_port()
    with open(os.path.join(work, "redis.log"), "wb") as log:
        process = subprocess.Popen([program, "--bind", "127.0.0.1", "--port", str(port), "--save", "",
                                    "--appendonly", "no", "--dir", work], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while not answers(port):
            if process.poll() is not None or time.monotonic() > deadline:
                with open(os.path.join(work, "redis.log"), encoding="utf-8", errors="replace") as log_text:
                    raise RuntimeError("redis-server did not start:\n" + log_text.read()[-2000:])
            time.sleep(0.05)
        yield "127.0.0.1:%d:0" % port
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(process.pid, signal.SIGKILL)
                process.wait()
