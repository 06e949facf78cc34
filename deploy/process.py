"""Small helpers for local service processes: ports, pid files, waiting."""

from __future__ import annotations

import os
import signal
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
            return True
        except OSError:
            return False


def read_pid(pid_file: Path) -> int | None:
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if alive(pid) else None


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie child counts as dead
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def wait_for(check: Callable[[], T], timeout: float, interval: float = 0.5) -> T:
    """Poll ``check`` until it returns something truthy (returned) or ``timeout`` passes
    (then its last, falsy, result)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if v := check():
            return v
        time.sleep(interval)
    return check()


def terminate(pid: int, timeout: float = 30.0) -> None:
    """SIGTERM the process group, then SIGKILL what is left after ``timeout``."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return
        except PermissionError:
            os.kill(pid, sig)
        if wait_for(lambda: not alive(pid), timeout if sig == signal.SIGTERM else 10):
            return


# Set in os.environ by PyFlink once a job with Python functions has run in this process
# (loopback mode); inherited by a child they make it treat itself as a Python UDF worker
# ("launching the PythonGatewayServer during Python UDF execution") or use the wrong conf.
_PYFLINK_PROCESS_VARS = (
    "PYFLINK_GATEWAY_DISABLED",
    "PYFLINK_GATEWAY_PORT",
    "_PYFLINK_CONN_INFO_PATH",
    "PYTHON_LOOPBACK_SERVER_ADDRESS",
    "_PYTHON_WORKER_MEMORY_LIMIT",
    "BOOT_LOG_DIR",
    "SEMI_PERSISTENT_DIRECTORY",
    "FLINK_HOME",
    "FLINK_CONF_DIR",
    "FLINK_LIB_DIR",
    "FLINK_OPT_DIR",
    "FLINK_PLUGINS_DIR",
    "FLINK_BIN_DIR",
    "python",
)


def child_env(**extra: str) -> dict[str, str]:
    """The environment for a child process: ours without PyFlink's per-process variables."""
    env = {k: v for k, v in os.environ.items() if k not in _PYFLINK_PROCESS_VARS}
    env.update(extra)
    return env
