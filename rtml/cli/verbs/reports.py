"""`rtml reports`: drift, fairness and model-quality verdicts per window."""

from __future__ import annotations

import argparse
from pathlib import Path

from rtml.cli.verbs.common import DEFAULT_CONFIG
from rtml.core import paths
from rtml.core.errors import ConfigError

NAME = "reports"
HELP = (
    "drift, fairness and model-quality verdicts per window (from the last demo run by default); with "
    "--fail-on, exit 10 when a window in scope breached"
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, default=None)
    p.add_argument("--bootstrap", default=None)
    p.add_argument("--topic-prefix", default=None)
    p.add_argument(
        "--export",
        type=Path,
        default=None,
        metavar="DIR",
        help="also write the Evidently reports as HTML, a fairness-over-time plot and an index to DIR",
    )
    p.add_argument(
        "--fail-on",
        default=None,
        metavar="KINDS",
        help="comma-separated, of drift, fairness and quality: exit 10 when a final window in scope "
        "breached (for a CI or an orchestrator; errors keep their own codes)",
    )
    p.add_argument(
        "--since",
        default=None,
        metavar="T",
        help="with --fail-on: only windows that start at or after T (epoch ms or ISO-8601 with "
        "a zone), so an old breach does not fail every later run",
    )
    p.add_argument(
        "--model-version",
        default=None,
        metavar="V",
        help="with --fail-on: only windows scored by this model version",
    )


def _gate_kinds(text: str) -> tuple[str, ...]:
    from rtml.cli.commands.review import GATES

    kinds = tuple(k.strip() for k in text.split(",") if k.strip())
    unknown = [k for k in kinds if k not in GATES]
    if unknown or not kinds:
        raise ConfigError(
            f"--fail-on {text!r}: {', '.join(unknown) or 'nothing'} is not a verdict to gate on",
            hint=f"use a comma-separated list of {', '.join(GATES)}",
        )
    return kinds


def _since(text: str | None) -> int | None:
    from rtml.cli.flags import time_flag

    return None if text is None else time_flag(text, "--since")


def run(a: argparse.Namespace) -> int:
    from rtml.cli.commands.review import breaches, collect, gate, last_run, print_table
    from rtml.core.config import load_config

    kinds = _gate_kinds(a.fail_on) if a.fail_on is not None else None
    since = _since(a.since)
    if kinds is None and (since is not None or a.model_version is not None):
        raise ConfigError(
            "--since and --model-version go with --fail-on", hint="add --fail-on drift,fairness"
        )

    last = last_run() or {}
    cfg = load_config(a.config or Path(last.get("config", DEFAULT_CONFIG)))
    bootstrap = a.bootstrap or last.get("bootstrap")
    if bootstrap:
        cfg = cfg.with_bootstrap(bootstrap)
    prefix = a.topic_prefix if a.topic_prefix is not None else last.get("topic_prefix", "")
    if prefix:
        cfg = cfg.with_topic_prefix(prefix)
    verdicts = collect(cfg)
    print_table(verdicts)
    print(f"\nEvidently snapshots: {paths.workspace_dir()} (serve them with `rtml ui`)")
    if a.export:
        from rtml.cli.commands.report_export import export

        export(verdicts, a.export, cfg)
    if kinds is None:
        return 0
    return gate(breaches(verdicts, kinds, since, a.model_version), kinds)
