"""How many Python stages a Flink job has, from `rtml plan --json` (the plan of the job graph
as Flink optimizes it: fused Python operators count once)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from deploy.process import child_env
from rtml.core import paths

PLAN_TIMEOUT_S = 300


def parse_python_stages(stdout: str) -> int | None:
    """The integer ``python_stages`` of the first JSON object in ``stdout`` that has one."""
    decoder = json.JSONDecoder()
    start = stdout.find("{")
    while start != -1:
        try:
            doc, _ = decoder.raw_decode(stdout, start)
        except ValueError:
            doc = None
        if isinstance(doc, dict):
            n = doc.get("python_stages")
            if isinstance(n, int) and not isinstance(n, bool):
                return n
        start = stdout.find("{", start + 1)
    return None


def plan_command(config: Path, part: str, feature_order: str | None = None) -> list[str]:
    rtml = Path(sys.executable).parent / "rtml"
    order = [] if feature_order is None else ["--feature-order", feature_order]
    return [str(rtml), "plan", "--json", "--config", str(config), "--part", part, *order]


def python_stages(
    config: Path, part: str, feature_order: str | None = None, timeout_s: float = PLAN_TIMEOUT_S
) -> int | None:
    """The job's Python stage count, or None when `rtml plan` is missing or fails."""
    try:
        out = subprocess.run(
            plan_command(config, part, feature_order),
            capture_output=True,
            text=True,
            timeout=timeout_s,
            cwd=paths.REPO_ROOT,
            env=child_env(),
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return parse_python_stages(out.stdout) if out.returncode == 0 else None
