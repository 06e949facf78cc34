"""The console script: every failure is one clear line (what went wrong -> what to do)."""

from __future__ import annotations

import subprocess
import sys


def rtml(*args, env=None):
    return subprocess.run(
        [sys.executable, "-m", "rtml.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def test_help_lists_every_command():
    out = rtml("--help").stdout
    for cmd in (
        "setup",
        "demo",
        "broker",
        "cluster",
        "produce",
        "train",
        "export",
        "models",
        "run",
        "submit",
        "jobs",
        "reports",
        "ui",
    ):
        assert cmd in out


def test_errors_are_one_line_with_a_fix(tmp_path):
    import os

    env = dict(os.environ, RTML_HOME=str(tmp_path))
    r = rtml("models", "show", "no-such-model", env=env)
    assert r.returncode == 5
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rtml: error:") and "->" in lines[0]
    assert "Traceback" not in r.stderr

    r = rtml("produce", "--config", str(tmp_path / "missing.toml"), env=env)
    assert r.returncode == 2 and "does not exist" in r.stderr and "Traceback" not in r.stderr

    r = rtml("produce", "--bootstrap", "127.0.0.1:1", "--events", "10", env=env)
    assert r.returncode == 4 and "cannot reach Kafka" in r.stderr and "Traceback" not in r.stderr
