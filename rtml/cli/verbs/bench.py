"""`rtml bench`: the pipeline against the engine floor, a naive design and a Python peer."""

from __future__ import annotations

import argparse
from pathlib import Path

from rtml.cli.verbs.common import DEFAULT_CONFIG
from rtml.core import paths
from rtml.core.config import PYTHON_WORKERS

NAME = "bench"
HELP = (
    "throughput, the latency-load curve, CPU, memory and state per key of the pipeline "
    "vs the engine floor, a naive design and a plain Python peer, on the local broker and "
    "cluster"
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    p.add_argument("--events", type=int, default=20_000, help="preloaded backlog per job")
    p.add_argument(
        "--naive-events",
        type=int,
        default=5_000,
        help="preloaded backlog of the naive design (quadratic in each key's history)",
    )
    p.add_argument("--seconds", type=float, default=30.0, help="paced load per latency run")
    p.add_argument(
        "--max-rate",
        type=float,
        default=None,
        help="the latency runs' 100%% load in events/s (default: the pipeline's measured "
        "throughput); they run at 25%%, 50%% and 75%% of it",
    )
    p.add_argument(
        "--one-entity-config",
        type=Path,
        default=paths.DEPLOY_DIR / "configs" / "cards-one-entity.toml",
        help="config of the one-entity runs (c1, a1)",
    )
    p.add_argument(
        "--eo-checkpoint-ms",
        type=int,
        default=1_000,
        help="checkpoint interval of the pipeline's exactly-once latency run",
    )
    p.add_argument("--out", type=Path, default=Path("bench-results"), help="JSON and PNG go here")
    p.add_argument("--port", type=int, default=9092, help="Kafka broker port on 127.0.0.1")
    p.add_argument("--rest-port", type=int, default=8081, help="local Flink cluster REST port")
    p.add_argument(
        "--bundle-time-ms",
        type=int,
        default=None,
        help="Python bundle time for every job (default: the config's [job] bundle_time)",
    )
    p.add_argument(
        "--python-workers",
        type=int,
        choices=PYTHON_WORKERS,
        default=2,
        help="Python worker processes of the pipeline (c, c1): 2 uses both slots of the "
        "TaskManager (default), 1 the config's single worker",
    )
    p.add_argument(
        "--jobs",
        default=None,
        metavar="KEYS",
        help="run only these jobs, comma-separated, side by side as ever (floor, naive, "
        "scoring, peer, scoring-one-entity, floor-one-entity, scoring-event-time, "
        "scoring-thread; default: all)",
    )


def run(a: argparse.Namespace) -> int:
    from rtml.cli.commands.bench import BenchOptions, job_keys, run_bench

    jobs = None if a.jobs is None else job_keys(a.jobs, a.max_rate)
    run_bench(
        BenchOptions(
            config=a.config,
            out=a.out,
            events=a.events,
            naive_events=a.naive_events,
            seconds=a.seconds,
            max_rate=a.max_rate,
            one_entity_config=a.one_entity_config,
            eo_checkpoint_ms=a.eo_checkpoint_ms,
            broker_port=a.port,
            rest_port=a.rest_port,
            bundle_time_ms=a.bundle_time_ms,
            python_workers=a.python_workers,
            jobs=jobs,
        )
    )
    return 0
