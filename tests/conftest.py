"""Shared fixtures. Tiers: tests/unit (no JVM), tests/flink (MiniCluster), tests/integration
(real Kafka broker + Flink)."""

from __future__ import annotations

import pytest

from rtml.core import paths
from rtml.core.config import JobConfig, load_config

DEMO_CONFIG = paths.DEPLOY_DIR / "configs" / "cards.toml"


@pytest.fixture(scope="session")
def cfg() -> JobConfig:
    return load_config(DEMO_CONFIG)
