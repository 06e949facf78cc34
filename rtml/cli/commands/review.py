"""`rtml reports`: the monitoring verdicts per window, as a terminal table."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from deploy.kafka_client import read_topic
from rtml.cli.console import say
from rtml.core import paths
from rtml.core.config import JobConfig

LAST_RUN = "last-run.json"


@dataclass(frozen=True)
class Verdicts:
    fairness: list[dict[str, Any]]  # latest emission per window
    drift: list[dict[str, Any]]


def remember_run(config: str, bootstrap: str, prefix: str) -> None:
    paths.home().mkdir(parents=True, exist_ok=True)
    (paths.home() / LAST_RUN).write_text(
        json.dumps({"config": config, "bootstrap": bootstrap, "topic_prefix": prefix})
    )


def last_run() -> dict[str, str] | None:
    p = paths.home() / LAST_RUN
    return json.loads(p.read_text()) if p.is_file() else None


def collect(cfg: JobConfig) -> Verdicts:
    latest: dict[int, dict] = {}
    order = {"provisional": 0, "update": 1, "final": 2}
    for r in read_topic(cfg, cfg.kafka.topics.fairness):
        ws = r["window_start"]
        prev = latest.get(ws)
        if prev is None or (order[r["status"]], r["labelled"]) >= (
            order[prev["status"]],
            prev["labelled"],
        ):
            latest[ws] = r
    drift = sorted(read_topic(cfg, cfg.kafka.topics.drift), key=lambda r: r["window_start"])
    return Verdicts(fairness=[latest[k] for k in sorted(latest)], drift=drift)


def _fmt(v: float | None) -> str:
    return "  n/a" if v is None else f"{v:5.2f}"


def print_table(v: Verdicts) -> None:
    drift = {d["window_start"]: d for d in v.drift}
    fair = {f["window_start"]: f for f in v.fairness}
    say(
        f"{'window (UTC)':<36} {'drift':<18} {'share':>5}  {'DI':>5} {'EO':>5} {'labels':>6}  alerts"
    )
    for ws in sorted(set(drift) | set(fair)):
        d = drift.get(ws, {})
        f = fair.get(ws, {})
        window = d.get("window") or f.get("window", str(ws))
        status = d.get("status", "-")
        share = d.get("drift_share")
        alerts = list(f.get("alerts", [])) + [f"watch:{w}" for w in f.get("watch", [])]
        if d.get("dataset_drift"):
            alerts.insert(0, "drift")
        cov = f.get("label_coverage")
        say(
            f"{window.replace('T', ' ').replace(':00Z', ''):<36} {status:<18} {'' if share is None else f'{share:5.2f}':>5}  "
            f"{_fmt(f.get('disparate_impact_ratio'))} {_fmt(f.get('equal_opportunity_ratio'))} {'' if cov is None else f'{cov:6.0%}':>6}  {', '.join(alerts) or '-'}"
        )
