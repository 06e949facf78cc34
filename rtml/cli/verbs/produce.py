"""`rtml produce`: a generated card-transaction scenario to Kafka."""

from __future__ import annotations

import argparse
from pathlib import Path

from rtml.cli.verbs.common import config_arg, load, scenario_args

NAME = "produce"
HELP = "write a generated card-transaction scenario (events + late labels) to Kafka"


def add_arguments(p: argparse.ArgumentParser) -> None:
    config_arg(p)
    scenario_args(p, events=20_000, days=3.0, seed=7)
    p.add_argument(
        "--drift-at", type=float, default=None, help="hours after the start when drift begins"
    )
    p.add_argument("--drift-size", type=float, default=0.8)
    p.add_argument("--bad-fraction", type=float, default=0.01)
    p.add_argument(
        "--out", type=Path, default=None, help="also write events.jsonl and labels.jsonl here"
    )


def run(a: argparse.Namespace) -> int:
    from rtml.cli.commands.data import produce_scenario, scenario_options

    r = produce_scenario(
        load(a),
        scenario_options(
            a.seed, a.events, a.days, a.drift_at, a.drift_size, a.bias, a.bad_fraction
        ),
        a.out,
    )
    print(f"produced {r.events} events ({r.valid} valid, {r.bad} malformed) and {r.labels} labels")
    return 0
