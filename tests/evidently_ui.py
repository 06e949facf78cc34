"""The Evidently UI (the real server) over a workspace, on a free loopback port, for a test or
a script: ``with serving(path) as base: ...`` gives ``http://127.0.0.1:PORT``."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

START_TIMEOUT_S = 60


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str):
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read())


def post(url: str, body: dict):
    req = urllib.request.Request(
        url, json.dumps(body).encode(), {"content-type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


@contextmanager
def serving(workspace: Path) -> Iterator[str]:
    """The UI's base URL once its API answers; stopped on leaving."""
    port = free_port()
    exe = Path(sys.executable).parent / "evidently"
    ui = subprocess.Popen(
        [str(exe), "ui", "--workspace", str(workspace), "--host", "127.0.0.1", "--port", str(port)],
        env=dict(os.environ, DO_NOT_TRACK="1"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                get(f"{base}/api/projects")
                break
            except OSError:
                if time.monotonic() > deadline or ui.poll() is not None:
                    raise RuntimeError(
                        f"the Evidently UI over {workspace} did not answer"
                    ) from None
                time.sleep(0.5)
        yield base
    finally:
        ui.terminate()
        ui.wait(30)
