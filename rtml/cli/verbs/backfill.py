"""`rtml backfill`: history through the job's feature stages, leaving a savepoint to score on."""

from __future__ import annotations

import argparse
from pathlib import Path

from rtml.cli.verbs.common import config_arg, layout_args, load

NAME = "backfill"
HELP = (
    "warm the feature state from history (JSON lines or CSV) on a session cluster and leave "
    "a savepoint for `rtml submit --from-savepoint`"
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    config_arg(p)
    p.add_argument("--history", type=Path, required=True, help="past events, JSON lines or CSV")
    p.add_argument(
        "--until",
        default=None,
        help="only events up to this event time (epoch ms or ISO-8601 with a zone)",
    )
    p.add_argument(
        "--label-field",
        default=None,
        help="the history's label field, taken out of each event (the job's schema lacks it)",
    )
    p.add_argument("--jobmanager", default="127.0.0.1:8081")
    p.add_argument(
        "--savepoint-dir",
        default=None,
        help="where the savepoint goes (default: the cluster's execution.checkpointing.savepoint-dir)",
    )
    layout_args(p)  # use the live job's: its state must read what the backfill wrote


def run(a: argparse.Namespace) -> int:
    from rtml.cli.commands.backfill import backfill
    from rtml.cli.commands.job import JobTarget
    from rtml.cli.flags import time_flag

    target = JobTarget(
        a.config,
        a.bootstrap,
        a.topic_prefix,
        model_version=a.model_version,
        parallelism=a.parallelism,
        state_backend=a.state_backend,
        feature_order=a.feature_order,
    )
    until = time_flag(a.until, "--until") if a.until is not None else None
    backfill(load(a), target, a.history, a.jobmanager, until, a.label_field, a.savepoint_dir)
    return 0
