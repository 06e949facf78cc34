"""`rtml jobs`: list, cancel, stop, savepoint or show the metrics of jobs on a cluster."""

from __future__ import annotations

import argparse

from rtml.core.errors import RtmlError

NAME = "jobs"
HELP = "list, cancel, stop (with a savepoint), savepoint or show metrics of jobs on a Flink cluster"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=["list", "cancel", "stop", "savepoint", "metrics"])
    p.add_argument("job_id", nargs="?")
    p.add_argument("--jobmanager", default="127.0.0.1:8081")
    p.add_argument(
        "--savepoint-dir",
        default=None,
        metavar="DIR",
        help="where `stop`/`savepoint` write (default: the cluster's execution.checkpointing.savepoint-dir)",
    )
    p.add_argument(
        "--drain",
        action="store_true",
        help="`stop` only: end the stream first (every event-time window and pending event "
        "fires, as at the end of a bounded run); for a job you retire, not one you resume",
    )


def run(a: argparse.Namespace) -> int:
    from rtml.cli.commands import job

    if a.action == "list":
        job.jobs_list(a.jobmanager)
        return 0
    if not a.job_id:
        raise RtmlError(f"`rtml jobs {a.action}` needs a job id", hint="see `rtml jobs list`")
    if a.action == "cancel":
        job.jobs_cancel(a.jobmanager, a.job_id)
    elif a.action == "stop":
        job.jobs_stop(a.jobmanager, a.job_id, a.savepoint_dir, drain=a.drain)
    elif a.action == "savepoint":
        job.jobs_savepoint(a.jobmanager, a.job_id, a.savepoint_dir)
    else:
        job.jobs_metrics(a.jobmanager, a.job_id)
    return 0
