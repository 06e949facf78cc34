"""Arguments and loading that several commands share."""

from __future__ import annotations

import argparse
from pathlib import Path

from rtml.core import paths
from rtml.core.config import (
    BOTH_PARTS,
    DEPLOY_PARTS,
    FEATURE_ORDERS,
    STATE_BACKENDS,
    JobConfig,
    load_config,
)

DEFAULT_CONFIG = paths.DEPLOY_DIR / "configs" / "cards.toml"


def config_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--config",
        type=Path,
        default=DEFAULT_CONFIG,
        help="job config (TOML); default: the card-fraud demo",
    )
    p.add_argument(
        "--bootstrap", default=None, help="Kafka bootstrap servers (overrides the config)"
    )
    p.add_argument("--topic-prefix", default="", help="prefix every topic name and the group id")


def scenario_args(p: argparse.ArgumentParser, events: int, days: float, seed: int) -> None:
    p.add_argument("--events", type=int, default=events)
    p.add_argument("--days", type=float, default=days)
    p.add_argument("--seed", type=int, default=seed)
    p.add_argument(
        "--bias",
        type=float,
        default=0.25,
        help="share of the protected group's legitimate events labelled fraud",
    )


def load(a: argparse.Namespace) -> JobConfig:
    """The config of ``--config``, with ``--bootstrap`` and ``--topic-prefix`` applied."""
    cfg = load_config(a.config)
    if a.bootstrap:
        cfg = cfg.with_bootstrap(a.bootstrap)
    if a.topic_prefix:
        cfg = cfg.with_topic_prefix(a.topic_prefix)
    return cfg


def job_args(p: argparse.ArgumentParser) -> None:
    """What `rtml run` and `rtml submit` both take."""
    config_arg(p)
    p.add_argument(
        "--bounded",
        action="store_true",
        help="stop once the topics' current contents are consumed",
    )
    p.add_argument(
        "--part",
        choices=DEPLOY_PARTS,
        default=BOTH_PARTS,
        help="both (default): scoring and the monitors as two jobs, the monitors reading the "
        "scores topic so they never slow scoring; all: one job (bounded replays); or one part",
    )
    layout_args(p)


def layout_args(p: argparse.ArgumentParser) -> None:
    """The model version and what decides the job's state layout (the feature stages' state
    must be read by the same order and backend that wrote it)."""
    p.add_argument("--model-version", default="current")
    p.add_argument("--parallelism", type=int, default=None)
    p.add_argument(
        "--state-backend",
        choices=STATE_BACKENDS,
        default=None,
        help="override [job] state_backend: rocksdb keeps keyed state on disk (state larger than memory)",
    )
    p.add_argument(
        "--feature-order",
        choices=FEATURE_ORDERS,
        default=None,
        help="override [job] feature_order: event-time gives the same features at any parallelism",
    )


def job_target(a: argparse.Namespace):
    from rtml.cli.commands.job import JobTarget

    return JobTarget(
        a.config,
        a.bootstrap,
        a.topic_prefix,
        a.bounded,
        a.model_version,
        a.parallelism,
        part=a.part,
        state_backend=a.state_backend,
        feature_order=a.feature_order,
    )


def service_action(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=["start", "stop", "status"])
