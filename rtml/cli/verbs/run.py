"""`rtml run`: the job on the embedded Flink MiniCluster."""

from __future__ import annotations

import argparse

from rtml.cli.verbs.common import job_args, job_target, load
from rtml.core.config import BOTH_PARTS

NAME = "run"
HELP = "run the job on the embedded Flink MiniCluster"


def add_arguments(p: argparse.ArgumentParser) -> None:
    job_args(p)


def run(a: argparse.Namespace) -> int:
    from rtml.cli.commands.job import run_embedded, run_scoring_and_monitoring

    target = job_target(a)
    if target.part == BOTH_PARTS:
        run_scoring_and_monitoring(load(a), target)
    else:
        run_embedded(load(a), target)
    return 0
