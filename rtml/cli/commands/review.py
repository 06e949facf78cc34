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
# what `rtml reports --fail-on` can gate on
GATES = ("drift", "fairness", "quality")
# the exit code of `rtml reports --fail-on` when a window in scope breached: apart from every
# error's code (1 to 7), so that a pipeline tells "the model breached" from "rtml failed"
BREACH_EXIT = 10


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
        f"{'window (UTC)':<36} {'drift':<18} {'share':>5}  {'DI':>5} {'EO':>5} {'labels':>6} {'AUC':>5}  alerts"
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
        q = f.get("quality") or {}
        if q.get("alert"):
            alerts.append("quality:roc_auc")
        cov = f.get("label_coverage")
        say(
            f"{window.replace('T', ' ').replace(':00Z', ''):<36} {status:<18} {'' if share is None else f'{share:5.2f}':>5}  "
            f"{_fmt(f.get('disparate_impact_ratio'))} {_fmt(f.get('equal_opportunity_ratio'))} {'' if cov is None else f'{cov:6.0%}':>6} {_fmt(q.get('roc_auc'))}  {', '.join(alerts) or '-'}"
        )


def drift_detail(d: dict) -> str:
    """What made a window's drift verdict: the calibrated test's p-value against its stated
    false-alarm rate, or (uncalibrated) Evidently's share of drifted columns."""
    if d.get("verdict") == "calibrated":
        cols = ", ".join(d.get("calibrated_drifted_columns") or [])
        head = (
            f"calibrated test p = {d['p_value']:.2g} (threshold at "
            f"{d['false_alarm_rate']:.0%} false alarms per clean window)"
        )
    else:
        cols = ", ".join(d.get("drifted_columns") or [])
        head = f"drift share {d.get('drift_share'):.2f}"
    return head + (f" ({cols})" if cols else "")


@dataclass(frozen=True)
class Breach:
    kind: str  # "drift", "fairness" or "quality"
    window: str
    window_start: int
    model_version: str | None
    detail: str


def breaches(
    v: Verdicts,
    kinds: tuple[str, ...],
    since_ms: int | None = None,
    model_version: str | None = None,
) -> list[Breach]:
    """The final windows in scope that breached: drift (the window's verdict is drift, warm-up
    and windows with too few rows never are) and fairness (a final report with an alert: a
    four-fifths breach with 95% confidence; a point estimate alone, ``watch``, is not one) and
    quality (a final report whose ROC AUC interval lies under the held-out AUC minus the
    margin).
    In scope: windows that start at or after ``since_ms``, scored by ``model_version``."""

    def in_scope(r: dict) -> bool:
        if since_ms is not None and r["window_start"] < since_ms:
            return False
        return model_version is None or str(r.get("model_version")) == model_version

    out = []
    if "drift" in kinds:
        for d in v.drift:
            if d.get("status") == "drift" and in_scope(d):
                out.append(
                    Breach(
                        "drift",
                        d.get("window", str(d["window_start"])),
                        d["window_start"],
                        d.get("model_version"),
                        drift_detail(d),
                    )
                )
    if "fairness" in kinds:
        for f in v.fairness:
            if f.get("status") == "final" and f.get("alerts") and in_scope(f):
                out.append(
                    Breach(
                        "fairness",
                        f.get("window", str(f["window_start"])),
                        f["window_start"],
                        f.get("model_version"),
                        ", ".join(f["alerts"]),
                    )
                )
    if "quality" in kinds:
        for f in v.fairness:
            q = f.get("quality") or {}
            if f.get("status") == "final" and q.get("alert") and in_scope(f):
                lo, hi = q["roc_auc_ci95"]
                out.append(
                    Breach(
                        "quality",
                        f.get("window", str(f["window_start"])),
                        f["window_start"],
                        f.get("model_version"),
                        f"ROC AUC {q['roc_auc']:.3f} (95% {lo:.3f}-{hi:.3f}) under "
                        f"{q['roc_auc_floor']:.3f}; next: {q.get('next_step')}",
                    )
                )
    return sorted(out, key=lambda b: (b.window_start, b.kind))


def gate(found: list[Breach], kinds: tuple[str, ...]) -> int:
    """Print the breaches; ``BREACH_EXIT`` if any, else 0."""
    what = ", ".join(kinds)
    if not found:
        say(f"\ngate ({what}): no breach in scope")
        return 0
    say(f"\ngate ({what}): {len(found)} window(s) breached")
    for b in found:
        say(f"  {b.kind:<9} {b.window}  model {b.model_version}  {b.detail}")
    return BREACH_EXIT
