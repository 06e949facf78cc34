"""`rtml produce`: a generated card-transaction scenario to Kafka."""

from __future__ import annotations

import argparse
from pathlib import Path

from rtml.cli.verbs.common import config_arg, load, scenario_args
from rtml.core.errors import ConfigError

NAME = "produce"
HELP = (
    "send your own events (--file, JSON lines or CSV) or a generated card scenario (events "
    "+ late labels) to Kafka"
)


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
    p.add_argument(
        "--file",
        type=Path,
        default=None,
        help="send this JSON-lines or CSV file of events instead of a generated scenario",
    )
    p.add_argument(
        "--labels", type=Path, default=None, help="with --file: a JSON-lines file of labels"
    )
    p.add_argument(
        "--label-field",
        default=None,
        help="with --file: the events' label field, taken out of each event and sent to the labels topic",
    )
    p.add_argument(
        "--label-delay",
        default="0s",
        help="with --label-field: how long after the event its label arrives (e.g. 12h)",
    )
    p.add_argument("--rate", type=float, default=None, help="with --file: records per second")
    p.add_argument(
        "--speed",
        type=float,
        default=None,
        help="with --file: pace by event time, this many times real time",
    )


def run(a: argparse.Namespace) -> int:
    from rtml.cli.commands.data import produce_scenario, scenario_options

    if a.file is not None:
        from rtml.cli.commands.file_replay import Pacing, produce_file
        from rtml.core.config import parse_duration

        produce_file(
            load(a),
            a.file,
            a.labels,
            a.label_field,
            parse_duration(a.label_delay, "--label-delay"),
            Pacing(a.rate, a.speed),
        )
        return 0
    for flag, v in (
        ("--labels", a.labels),
        ("--label-field", a.label_field),
        ("--rate", a.rate),
        ("--speed", a.speed),
    ):
        if v is not None:
            raise ConfigError(f"{flag} goes with --file", hint="add --file FILE, or drop " + flag)

    r = produce_scenario(
        load(a),
        scenario_options(
            a.seed, a.events, a.days, a.drift_at, a.drift_size, a.bias, a.bad_fraction
        ),
        a.out,
    )
    print(f"produced {r.events} events ({r.valid} valid, {r.bad} malformed) and {r.labels} labels")
    return 0
