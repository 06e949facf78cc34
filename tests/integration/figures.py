"""Figures the reliability tests measure, written where the README's table is made from.

Each test writes ``<name>.json`` under ``reliability-results/`` (or ``$RTML_FIGURES_DIR``)
and prints it (``make test-slow`` for the failure tests, ``make test`` for the hostile-input
test); ``docs/reliability/`` keeps the copy the README quotes.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

from rtml.core import paths


def figures_dir() -> Path:
    return Path(os.environ.get("RTML_FIGURES_DIR", paths.REPO_ROOT / "reliability-results"))


def record_figures(name: str, figures: dict) -> Path:
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=paths.REPO_ROOT,
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
    except OSError:
        commit = ""
    doc = {"test": name, "at": time.strftime("%Y-%m-%d %H:%M:%S"), "commit": commit, **figures}
    d = figures_dir()
    d.mkdir(parents=True, exist_ok=True)
    out = d / f"{name}.json"
    out.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    print(f"\n{name}: {json.dumps(figures, sort_keys=True)}")
    return out
