"""Flink tier fixtures: a model registry with three versions of the card model (the current
one, a second one trained on other data, and a tampered copy), in a home of its own."""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass(frozen=True)
class Models:
    registry: str  # absolute path of the registry
    workspace: str  # absolute path of an Evidently workspace
    v1: str  # the current version
    v2: str  # another version (other training data), not current
    tampered: str  # v1's file altered after export: the serving gate refuses it


@contextmanager
def _home(path: Path):
    old = os.environ.get("RTML_HOME")
    os.environ["RTML_HOME"] = str(path)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("RTML_HOME", None)
        else:
            os.environ["RTML_HOME"] = old


@pytest.fixture(scope="session")
def models(cfg, tmp_path_factory) -> Models:
    from models.store.registry import Registry
    from rtml.cli.commands.data import export_model, scenario_options, train_model
    from rtml.core import paths
    from tests import model_faults

    home = tmp_path_factory.mktemp("flink-home")
    with _home(home):
        for seed, current in ((1, True), (2, False)):
            opts = scenario_options(seed, 6000, 2.0, None, 0.0, 0.25, 0.0)
            train_model(cfg, opts, None, None)
            exported = export_model(cfg, make_current=current)
            if current:
                v1 = exported
            else:
                v2 = exported.metadata.version
        reg = Registry(paths.registry_dir())
        tampered = model_faults.tampered(reg, v1)
        return Models(
            str(paths.registry_dir().resolve()),
            str(paths.workspace_dir().resolve()),
            v1.metadata.version,
            v2,
            tampered,
        )
