"""`rtml run`: the job on the embedded Flink MiniCluster."""

from __future__ import annotations

import argparse

from rtml.cli.verbs.common import job_args, job_target, load

NAME = "run"
HELP = "run the job on the embedded Flink MiniCluster"


def add_arguments(p: argparse.ArgumentParser) -> None:
    job_args(p)


def run(a: argparse.Namespace) -> int:
    from rtml.cli.commands.job import run_embedded

    run_embedded(load(a), job_target(a))
    return 0
