"""`rtml submit`: the job to a Flink session cluster, optionally from a savepoint."""

from __future__ import annotations

import argparse

from rtml.cli.verbs.common import job_args, job_target, load
from rtml.core.config import BOTH_PARTS
from rtml.core.errors import ConfigError

NAME = "submit"
HELP = "submit the job to a Flink session cluster"


def add_arguments(p: argparse.ArgumentParser) -> None:
    job_args(p)
    p.add_argument("--jobmanager", default="127.0.0.1:8081")
    p.add_argument(
        "--wait",
        action="store_true",
        help="wait for the job to finish instead of detaching",
    )
    p.add_argument(
        "--from-savepoint",
        default=None,
        metavar="PATH",
        help="restore the job's state from a savepoint (see `rtml jobs stop`); --parallelism may differ",
    )
    p.add_argument(
        "--allow-non-restored-state",
        action="store_true",
        help="restore even if the savepoint holds state of operators the job no longer has",
    )


def run(a: argparse.Namespace) -> int:
    from rtml.cli.commands.job import submit, submit_scoring_and_monitoring

    target = job_target(a)
    if target.part == BOTH_PARTS:
        if a.from_savepoint:
            raise ConfigError(
                "a savepoint holds one job's state, and --part both submits two jobs",
                hint="pass --part scoring (or --part monitoring, or all) with --from-savepoint",
            )
        submit_scoring_and_monitoring(load(a), target, a.jobmanager, wait=a.wait)
        return 0
    submit(
        load(a),
        target,
        a.jobmanager,
        detached=not a.wait,
        from_savepoint=a.from_savepoint,
        allow_non_restored_state=a.allow_non_restored_state,
    )
    return 0
