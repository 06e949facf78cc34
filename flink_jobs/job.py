"""Entry point of the rtml job.

Embedded MiniCluster:  python -m flink_jobs.job --config deploy/configs/cards.toml ...
On a session cluster:  flink run -m HOST:PORT --jarfile <kafka connector jar> -py flink_jobs/job.py -- ...
(``rtml run`` and ``rtml submit`` build these command lines.)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

# `flink run -py` executes this file as a script: make the project importable from a checkout
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rtml.core.config import (  # noqa: E402
    DELIVERIES,
    EXECUTION_MODES,
    FEATURE_ORDERS,
    GRAPH_PARTS,
    PYTHON_WORKERS,
    STATE_BACKENDS,
)
from rtml.core.errors import RtmlError  # noqa: E402

# command-line options that override the [job] setting of the same name when given
JOB_OVERRIDES = (
    "parallelism",
    "state_backend",
    "bundle_time_ms",
    "delivery",
    "feature_order",
    "python_workers",
    "execution_mode",
    "checkpoint_interval_ms",
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="flink_jobs.job", description="Run the rtml scoring job")
    p.add_argument("--config", required=True)
    p.add_argument("--registry", required=True)
    p.add_argument("--workspace", required=True)
    p.add_argument("--model-version", default="current")
    p.add_argument("--bootstrap", default=None, help="override [kafka] bootstrap_servers")
    p.add_argument("--topic-prefix", default="", help="prefix every topic and the group id (tests)")
    p.add_argument(
        "--bounded", action="store_true", help="stop at the topics' end offsets as of job start"
    )
    p.add_argument("--jar", action="append", default=[], help="connector jar URL for embedded runs")
    p.add_argument("--checkpoint-dir", default=None)
    p.add_argument("--parallelism", type=int, default=None)
    p.add_argument(
        "--feature-order",
        choices=FEATURE_ORDERS,
        default=None,
        help="override [job] feature_order",
    )
    p.add_argument(
        "--state-backend",
        choices=STATE_BACKENDS,
        default=None,
        help="override [job] state_backend (rocksdb for state larger than memory)",
    )
    p.add_argument("--detached", action="store_true", help="submit and return instead of waiting")
    p.add_argument(
        "--part",
        choices=GRAPH_PARTS,
        default="all",
        help="run scoring and monitoring in one job, or one of them (floor and naive are the "
        "`rtml bench` baselines)",
    )
    p.add_argument(
        "--backfill-topic",
        default=None,
        help="with --part backfill: the topic that holds the history (`rtml backfill` sends it)",
    )
    p.add_argument(
        "--bundle-time-ms",
        type=int,
        default=None,
        help="override [job] bundle_time: how long a Python bundle may hold records",
    )
    p.add_argument(
        "--python-workers",
        type=int,
        choices=PYTHON_WORKERS,
        default=None,
        help="override [job] python_workers: 2 splits the scoring pipeline over two Python "
        "processes (two slots per parallel instance)",
    )
    p.add_argument(
        "--checkpoint-interval-ms",
        type=int,
        default=None,
        help="override [job] checkpoint_interval (exactly-once output is visible at checkpoints)",
    )
    p.add_argument(
        "--execution-mode",
        choices=EXECUTION_MODES,
        default=None,
        help="override [job] execution_mode",
    )
    p.add_argument(
        "--delivery",
        choices=DELIVERIES,
        default=None,
        help="override [job] delivery",
    )
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    from dataclasses import replace

    from flink_jobs.environment import create_env
    from flink_jobs.graph import build
    from flink_jobs.options import RunOptions
    from models.store.registry import Registry
    from rtml.core.config import load_config

    a = parse_args(argv)
    try:
        cfg = load_config(a.config).with_connection(a.bootstrap, a.topic_prefix)
        overrides = {k: v for k in JOB_OVERRIDES if (v := getattr(a, k))}
        if overrides:
            cfg = replace(cfg, job=replace(cfg.job, **overrides))
        version = (
            Registry(Path(a.registry)).resolve(cfg.model.name, a.model_version).metadata.version
        )
        opts = RunOptions(
            registry=str(Path(a.registry).resolve()),
            workspace=str(Path(a.workspace).resolve()),
            model_version=version,
            bounded=a.bounded,
            jars=tuple(a.jar),
            checkpoint_dir=a.checkpoint_dir,
            part=a.part,
            backfill_topic=a.backfill_topic,
        )
        env = create_env(cfg, opts)
        build(env, cfg, opts)
        print(
            f"rtml: job {cfg.job.name!r} built: model {cfg.model.name} v{version}, topics from {cfg.kafka.topics.events!r}",
            flush=True,
        )
        if a.detached:
            client = env.execute_async(f"{cfg.job.name} ({a.part})")
            print(f"rtml: submitted job id {client.get_job_id()}", flush=True)
        else:
            env.execute(f"{cfg.job.name} ({a.part})")
    except RtmlError as e:
        print(f"rtml: error: {e}", file=sys.stderr)
        return e.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
