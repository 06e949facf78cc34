"""Where rtml keeps what it generates: jars, broker data, registry, report workspace.

Everything lives under one ignored folder, ``$RTML_HOME`` (default ``<repo>/.rtml``), so a
clean clone stays clean and ``rm -rf .rtml`` resets a machine.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
DEPLOY_DIR = REPO_ROOT / "deploy"


def home() -> Path:
    return Path(os.environ.get("RTML_HOME", REPO_ROOT / ".rtml")).resolve()


def cache_dir() -> Path:
    """Downloaded jars, shared by every RTML_HOME (tests use their own home, not their own jars)."""
    return Path(os.environ.get("RTML_CACHE", REPO_ROOT / ".rtml" / "cache")).resolve()


def jars_dir() -> Path:
    return cache_dir() / "jars"


def registry_dir() -> Path:
    return home() / "registry"


def workspace_dir() -> Path:
    return home() / "workspace"


def artifacts_dir() -> Path:
    return home() / "artifacts"
