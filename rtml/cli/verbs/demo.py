"""`rtml demo`: the whole product end to end on a local broker, with a summary."""

from __future__ import annotations

import argparse
from pathlib import Path

from rtml.cli.verbs.common import DEFAULT_CONFIG

NAME = "demo"
HELP = "set up, start Kafka, train+export, produce, run the job, print a summary"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    p.add_argument("--port", type=int, default=9092, help="Kafka broker port on 127.0.0.1")
    p.add_argument("--events", type=int, default=20_000)
    p.add_argument(
        "--retrain", action="store_true", help="train a new model version even if one is registered"
    )
    p.add_argument("--drift-size", type=float, default=0.8)
    p.add_argument("--bias", type=float, default=0.25)
    p.add_argument("--bad-fraction", type=float, default=0.01)


def run(a: argparse.Namespace) -> int:
    from rtml.cli.commands.demo import run_demo

    return run_demo(a.config, a.port, a.events, a.retrain, a.drift_size, a.bias, a.bad_fraction)
