"""`rtml plan`: the job's operator graph as Flink will run it, built but not executed."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

from deploy import jars
from flink_jobs.options import RunOptions
from flink_jobs.plan import Plan, format_plan, parse_plan, plan_summary
from models.store.registry import Registry
from rtml.core import paths
from rtml.core.config import BACKFILL_PART, JobConfig, load_config


@dataclass(frozen=True)
class ModelChoice:
    version: str  # the registered current version, or "current" when none is
    registered: bool  # False: the graph is built without the model check


def current_model(cfg: JobConfig, registry: Path) -> ModelChoice:
    """The version the job would start on; a registered one is checked like the job does."""
    reg = Registry(registry)
    if reg.current_version(cfg.model.name) is None:
        return ModelChoice("current", registered=False)
    return ModelChoice(reg.resolve(cfg.model.name, "current").metadata.version, registered=True)


def job_plan(cfg: JobConfig, part: str) -> tuple[Plan, ModelChoice]:
    from flink_jobs import explain  # PyFlink: imported only to build a plan

    model = current_model(cfg, paths.registry_dir())
    opts = RunOptions(
        registry=str(paths.registry_dir()),
        workspace=str(paths.workspace_dir()),
        model_version=model.version,
        jars=(jars.job_jar().resolve().as_uri(),),
        part=part,
        # `rtml backfill` names a topic per run; the plan shows the graph over a stand-in
        backfill_topic=f"{cfg.kafka.topics.events}.backfill" if part == BACKFILL_PART else None,
    )
    return parse_plan(explain.job_plan(cfg, opts, model_registered=model.registered)), model


def plan(config: Path, part: str, as_json: bool, feature_order: str | None = None) -> None:
    cfg = load_config(config)
    if feature_order is not None:
        cfg = replace(cfg, job=replace(cfg.job, feature_order=feature_order))
    graph, model = job_plan(cfg, part)
    if as_json:
        doc = {"config": str(config), "part": part, "model_version": model.version}
        print(json.dumps(doc | plan_summary(graph), indent=2))
        return
    checked = "checked" if model.registered else "none registered: not checked"
    print(f"{config}, part {part}: model {cfg.model.name} v{model.version} ({checked})")
    print("\n".join(format_plan(graph)))
