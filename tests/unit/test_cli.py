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
        "plan",
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


def test_plan_of_a_bad_config_is_one_line(tmp_path):
    """The config is loaded before the JVM starts: a bad one fails fast, as one line."""
    import os

    from tests.conftest import DEMO_CONFIG

    env = dict(os.environ, RTML_HOME=str(tmp_path))
    text = DEMO_CONFIG.read_text().replace('execution_mode = "process"', 'execution_mode = "x"')
    assert 'execution_mode = "x"' in text
    bad = tmp_path / "bad.toml"
    bad.write_text(text)
    for config, says in ((bad, "execution_mode"), (tmp_path / "missing.toml", "does not exist")):
        r = rtml("plan", "--config", str(config), "--json", env=env)
        lines = r.stderr.strip().splitlines()
        assert r.returncode == 2 and r.stdout == ""
        assert len(lines) == 1 and lines[0].startswith("rtml: error:") and says in lines[0]
        assert "Traceback" not in r.stderr


def test_bench_jobs_are_checked_before_anything_starts(tmp_path):
    import os

    env = dict(os.environ, RTML_HOME=str(tmp_path))
    for jobs, says in (("floor,nope", "unknown job nope"), ("floor,peer", "--max-rate")):
        r = rtml("bench", "--jobs", jobs, "--port", "1", env=env)
        lines = r.stderr.strip().splitlines()
        assert r.returncode == 2, r.stderr
        assert len(lines) == 1 and lines[0].startswith("rtml: error:") and says in lines[0]
        assert "->" in lines[0] and "Traceback" not in r.stderr


def test_two_jobs_by_default_and_a_savepoint_names_its_part(tmp_path):
    """`rtml run` / `rtml submit` deploy scoring and the monitors as two jobs unless told
    otherwise; a savepoint is one job's, so restoring one with --part both is refused in one
    line before anything is submitted; `rtml jobs stop` names the part to resume."""
    import os

    from rtml.cli import parser
    from rtml.cli.commands.job import job_part

    for verb in ("run", "submit"):
        assert parser().parse_args([verb]).part == "both"
    env = dict(os.environ, RTML_HOME=str(tmp_path))
    r = rtml("submit", "--from-savepoint", str(tmp_path / "sp"), env=env)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1 and "--part scoring" in lines[0]
    assert (job_part("rtml-cards (scoring)"), job_part("rtml-cards (monitoring)")) == (
        "scoring",
        "monitoring",
    )
    assert job_part("rtml-cards (all)") == job_part("something else") == "all"
