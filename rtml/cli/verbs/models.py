"""`rtml models`: the registry; activate, shadow and judge versions in running jobs."""

from __future__ import annotations

import argparse
from pathlib import Path

from rtml.cli.verbs.common import config_arg, load
from rtml.core.errors import ConfigError

NAME = "models"
HELP = (
    "list or show registered models; activate a version (running jobs switch to it); "
    "shadow a candidate (it scores alongside the live model), unshadow it, judge it with shadow-report"
)
ACTIONS = ("list", "show", "activate", "shadow", "unshadow", "shadow-report")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=ACTIONS)
    p.add_argument("name", nargs="?", default=None, help="model name (default: the config's)")
    p.add_argument("--version", default="current")
    p.add_argument(
        "--out", type=Path, default=None, help="shadow-report: also write the summary as JSON"
    )
    config_arg(p)


def run(a: argparse.Namespace) -> int:
    from rtml.cli.commands import models

    if a.action == "list":
        models.models_list()
        return 0
    if a.action == "show":
        models.models_show(a.name or load(a).model.name, a.version)
        return 0
    cfg = load(a)
    if a.name not in (None, cfg.model.name):
        raise ConfigError(
            f"the config's job serves {cfg.model.name!r}, not {a.name!r}",
            hint="pass the config of the job that serves this model",
        )
    if a.action == "unshadow":
        models.models_unshadow(cfg)
    elif a.action == "shadow-report":
        models.shadow_report(cfg, a.out)
    elif not a.version.isdigit():
        raise ConfigError(
            f"--version {a.version!r} is not a version number",
            hint="pick one from `rtml models list`",
        )
    elif a.action == "activate":
        models.models_activate(cfg, a.version)
    else:
        models.models_shadow(cfg, a.version)
    return 0
