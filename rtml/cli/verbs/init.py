"""`rtml init`: a commented job config from a sample of your own events."""

from __future__ import annotations

import argparse
from pathlib import Path

NAME = "init"
HELP = "write a commented job config from a sample of your events (JSON lines or CSV)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--sample", type=Path, required=True, help="a JSON-lines or CSV sample of the events"
    )
    p.add_argument("--out", type=Path, default=Path("job.toml"), help="where to write the config")
    p.add_argument(
        "--label",
        default=None,
        help="the label field (0/1), in the events or in --labels; it never becomes a model input",
    )
    p.add_argument(
        "--labels",
        type=Path,
        default=None,
        help="a JSON-lines sample of the labels, when they come on their own",
    )
    p.add_argument(
        "--sensitive", default=None, help="the sensitive attribute fairness is judged across"
    )
    p.add_argument("--event-id", default=None, help="the field unique to each event")
    p.add_argument("--event-time", default=None, help="the event-time field")
    p.add_argument("--entity", action="append", default=[], help="an entity key field (repeatable)")
    p.add_argument(
        "--name", default=None, help="the job's name (default: from the sample's file name)"
    )
    p.add_argument("--force", action="store_true", help="overwrite --out")


def run(a: argparse.Namespace) -> int:
    from rtml.cli.commands.init import Choices, init_config
    from rtml.cli.console import say

    choices = Choices(
        a.label, a.sensitive, a.event_id, a.event_time, tuple(a.entity), a.name, a.labels
    )
    guesses = init_config(a.sample, a.out, choices, a.force)
    say(f"wrote {a.out} (the job accepts it as written)")
    for g in guesses:
        say(f"  guessed {g}: check it, or settle it with its flag")
    labels = (
        f" --labels {a.labels}"
        if a.labels
        else f" --label-field {a.label}"
        if a.label
        else " --labels FILE"
    )
    say(f"next: rtml train --config {a.out} --history {a.sample}{labels}")
    return 0
