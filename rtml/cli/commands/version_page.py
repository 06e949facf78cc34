"""`rtml reports --export DIR`: one reviewer's page per model version, so that an audit of a
version is one page: its model card and held-out figures, every window it scored with the
drift and fairness verdicts, the alerts that name it, and the shadow comparisons it took part
in (live or candidate)."""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from models.store.registry import CARD_FILE, Registry
from rtml.cli.commands.review import Verdicts
from rtml.core.errors import ModelError
from udfs.fairness_monitor import version_order

HELD_OUT = (
    ("roc_auc", "ROC AUC"),
    ("average_precision", "average precision"),
    ("precision_at_threshold", "precision at the threshold"),
    ("recall_at_threshold", "recall at the threshold"),
    ("disparate_impact_holdout", "disparate impact (held out)"),
)
STYLE = (
    "body{font-family:sans-serif;margin:2em;max-width:70em}"
    "td,th{padding:4px 10px;border-bottom:1px solid #ddd;text-align:left}"
    "pre{background:#f6f6f6;padding:1em;white-space:pre-wrap}"
    ".breach{color:#b00;font-weight:bold}"
)


def page_name(version: str) -> str:
    return f"model-v{version}.html"


def versions_in(v: Verdicts) -> list[str]:
    """Every model version that scored a window, in version order."""
    seen = {str(d["model_version"]) for d in v.drift if d.get("model_version")}
    for f in v.fairness:
        seen.update(str(x) for x in f.get("model_versions") or [f.get("model_version")] if x)
    return sorted(seen, key=version_order)


def _num(x: Any, digits: int = 3) -> str:
    return "n/a" if x is None or (isinstance(x, float) and x != x) else f"{x:.{digits}f}"


def _table(header: Iterable[str], rows: Iterable[Iterable[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _auc(q: Mapping[str, Any]) -> str:
    ci = q.get("roc_auc_ci95")
    text = _num(q.get("roc_auc"), 3) + (f" ({ci[0]:.3f}-{ci[1]:.3f})" if ci else "")
    return f'<span class="breach">{text}</span>' if q.get("alert") else text


def _windows(v: Verdicts, version: str) -> str:
    drift = {d["window_start"]: d for d in v.drift if str(d.get("model_version")) == version}
    fair = {
        f["window_start"]: f
        for f in v.fairness
        if version in [str(x) for x in f.get("model_versions") or [f.get("model_version")]]
    }
    rows = []
    for ws in sorted(set(drift) | set(fair)):
        d, f = drift.get(ws, {}), fair.get(ws, {})
        status = str(d.get("status", "-"))
        alerts = list(f.get("alerts") or [])
        q = f.get("quality") or {}
        if q.get("alert") and f.get("status") == "final":
            alerts.append("quality: roc_auc")
        rows.append(
            [
                html.escape(d.get("window") or f.get("window", str(ws))),
                f'<span class="breach">{status}</span>' if status == "drift" else status,
                _num(d.get("drift_share"), 2),
                html.escape(", ".join(d.get("drifted_columns", [])[:6])),
                html.escape(str(f.get("status", "-"))),
                _num(f.get("disparate_impact_ratio"), 2),
                _num(f.get("equal_opportunity_ratio"), 2),
                _num(f.get("equalized_odds_ratio"), 2),
                str(q.get("rows", "-")),
                _num(q.get("precision"), 2),
                _num(q.get("recall"), 2),
                _auc(q),
                _num(q.get("average_precision"), 2),
                _num(q.get("brier"), 3),
                _num(q.get("ece"), 3),
                f'<span class="breach">{html.escape(", ".join(alerts))}</span>' if alerts else "-",
            ]
        )
    if not rows:
        return "<p>No window was scored by this version.</p>"
    return _table(
        (
            "window (UTC)",
            "drift",
            "share",
            "drifted columns (first 6)",
            "fairness report",
            "disparate impact",
            "equal opportunity",
            "equalized odds",
            "labelled",
            "precision",
            "recall",
            "ROC AUC (95%)",
            "avg precision",
            "Brier",
            "ECE",
            "fairness and quality alerts",
        ),
        rows,
    )


def _names(record: Mapping[str, Any], version: str) -> bool:
    """Whether an alert or model event is about ``version``."""
    keys = ("model_version", "version", "serving_version", "shadow_version", "previous_version")
    if any(str(record.get(k)) == version for k in keys if record.get(k) is not None):
        return True
    return version in [str(x) for x in record.get("model_versions") or []]


def _alerts(alerts: list[dict], version: str) -> str:
    mine = [a for a in alerts if _names(a, version)]
    if not mine:
        return "<p>None.</p>"
    rows = [
        [
            html.escape(str(a.get("type") or a.get("kind", "?"))),
            html.escape(str(a.get("window", ""))),
            html.escape(json.dumps(a, default=str)[:400]),
        ]
        for a in mine
    ]
    return _table(("kind", "window", "record"), rows)


def _shadow(pairs: list[dict], version: str) -> str:
    mine = [p for p in pairs if version in (p["live_version"], p["candidate_version"])]
    if not mine:
        return "<p>No shadow comparison with this version.</p>"
    rows = [
        [
            f"v{p['live_version']} (live) vs v{p['candidate_version']} (candidate)",
            str(p["events"]),
            _num(p["disagreement_rate"]),
            _num(p["mean_abs_score_diff"], 4),
            f"{p['flag_rate']['live']:.3f} / {p['flag_rate']['candidate']:.3f}",
            _num(p["ks_pvalue"], 4),
        ]
        for p in mine
    ]
    return _table(
        ("pair", "events", "decisions differ", "mean |score diff|", "flag rate", "KS p-value"), rows
    )


def version_page(
    registry: Registry,
    model: str,
    version: str,
    v: Verdicts,
    alerts: list[dict],
    shadow_pairs: list[dict],
) -> str:
    """The page's HTML; a version missing from the registry is said so, not skipped."""
    try:
        mv = registry.resolve(model, version)
        card = (mv.path / CARD_FILE).read_text()
        metrics = mv.metadata.training.get("metrics", {})
        held_out = _table(
            ("figure", "value"),
            [[label, _num(metrics.get(key), 4)] for key, label in HELD_OUT],
        )
        card_html = f"<pre>{html.escape(card)}</pre>"
    except ModelError as e:
        held_out = ""
        card_html = f"<p>Not in this registry: {html.escape(str(e))}</p>"
    return (
        f"<!doctype html><meta charset='utf-8'><title>{html.escape(model)} v{version}</title>"
        f"<style>{STYLE}</style>"
        f"<h1>{html.escape(model)} v{html.escape(version)}: review</h1>"
        "<p><a href='index.html'>all windows</a> · <a href='fairness.html'>fairness over time</a></p>"
        f"<h2>Windows it scored</h2>{_windows(v, version)}"
        f"<h2>Alerts</h2>{_alerts(alerts, version)}"
        f"<h2>Shadow comparisons</h2>{_shadow(shadow_pairs, version)}"
        f"<h2>Held-out figures</h2>{held_out}"
        f"<h2>Model card</h2>{card_html}"
    )


def write_version_pages(
    out_dir: Path,
    registry: Registry,
    model: str,
    v: Verdicts,
    alerts: list[dict],
    shadow_pairs: list[dict],
) -> list[Path]:
    pages = []
    for version in versions_in(v):
        page = out_dir / page_name(version)
        page.write_text(version_page(registry, model, version, v, alerts, shadow_pairs))
        pages.append(page)
    return pages
