"""`rtml reports --export DIR`: drift reports as HTML, fairness over time as a plot, an index,
and a reviewer's page per model version (``version_page``)."""

from __future__ import annotations

import html
import os
from pathlib import Path

from rtml.cli.commands.review import Verdicts
from rtml.cli.console import say, step
from rtml.core import paths
from rtml.core.config import JobConfig
from rtml.core.errors import ServiceError


def _snapshot_file(report_id: str) -> Path | None:
    for p in paths.workspace_dir().glob(f"*/snapshots/{report_id}.json"):
        return p
    return None


def fairness_plot(v: Verdicts, out: Path) -> None:
    import plotly.graph_objects as go

    fig = go.Figure()
    xs = [f["window"].split("..")[0] for f in v.fairness]
    for key, name, color in (
        ("disparate_impact", "disparate impact", "#1f77b4"),
        ("equal_opportunity", "equal opportunity", "#2ca02c"),
    ):
        ys = [f.get(f"{key}_ratio") for f in v.fairness]
        cis = [f.get(f"{key}_ci95") or (None, None) for f in v.fairness]
        fig.add_trace(
            go.Scatter(
                x=xs + xs[::-1],
                y=[c[1] for c in cis] + [c[0] for c in cis][::-1],
                fill="toself",
                line={"width": 0},
                fillcolor=color,
                opacity=0.15,
                name=f"{name} 95% CI",
                hoverinfo="skip",
            )
        )
        fig.add_trace(
            go.Scatter(x=xs, y=ys, mode="lines+markers", name=name, line={"color": color})
        )
    fig.add_hline(y=0.8, line_dash="dash", line_color="red", annotation_text="four-fifths rule")
    fig.update_layout(
        title="Fairness over time (favourable outcome, min/max ratio across groups)",
        yaxis_title="ratio",
        xaxis_title="window start (UTC)",
        yaxis_range=[0, 1.1],
        template="plotly_white",
    )
    fig.write_html(out, include_plotlyjs=True, full_html=True)


def _version_pages(cfg: JobConfig, v: Verdicts, out_dir: Path) -> list[Path]:
    """One reviewer's page per model version (``version_page``), from the registry, the
    verdicts, the alerts topic and the shadow topic."""
    from deploy.kafka_client import read_topic
    from models.shadow_report import summarize
    from models.store.registry import Registry
    from rtml.cli.commands.version_page import write_version_pages

    t = cfg.kafka.topics
    reg = Registry(paths.registry_dir())
    favourable = 0
    current = reg.current_version(cfg.model.name)
    if current is not None:
        favourable = reg.resolve(cfg.model.name, current).metadata.favourable_outcome
    m = cfg.monitoring
    pairs = summarize(
        read_topic(cfg, t.shadow),
        cfg.schema.sensitive_attribute,
        favourable,
        m.min_group_count,
        m.four_fifths,
        cfg.schema.event_id,
    )
    return write_version_pages(out_dir, reg, cfg.model.name, v, read_topic(cfg, t.alerts), pairs)


def export(v: Verdicts, out_dir: Path, cfg: JobConfig | None = None) -> Path:
    """The drift reports as HTML, the fairness plot, an index and, given the job's config,
    one page per model version."""
    os.environ.setdefault("DO_NOT_TRACK", "1")
    out_dir.mkdir(parents=True, exist_ok=True)
    step(f"exporting {len(v.drift)} drift reports and the fairness plot to {out_dir}")
    from evidently.core.report import Snapshot

    rows = []
    drift = {d["window_start"]: d for d in v.drift}
    fair = {f["window_start"]: f for f in v.fairness}
    for ws in sorted(set(drift) | set(fair)):
        d, f = drift.get(ws, {}), fair.get(ws, {})
        link = ""
        rid = d.get("report_id")
        if rid and (snap := _snapshot_file(rid)) is not None:
            name = f"drift-{ws}.html"
            Snapshot.load(str(snap)).save_html(str(out_dir / name))
            link = f'<a href="{name}">report</a>'
        window = d.get("window") or f.get("window", str(ws))
        alerts = ", ".join(f.get("alerts", []) + [f"watch:{w}" for w in f.get("watch", [])]) or "-"
        di = f.get("disparate_impact_ratio")
        share = d.get("drift_share")
        share_txt = "" if share is None else f"{share:.2f}"
        rows.append(
            f"<tr><td>{html.escape(window)}</td><td>{html.escape(str(d.get('status', '-')))}</td>"
            f"<td>{share_txt}</td><td>{html.escape(', '.join(d.get('drifted_columns', [])[:6]))}</td>"
            f"<td>{'' if di is None else f'{di:.2f}'}</td><td>{html.escape(alerts)}</td><td>{link}</td></tr>"
        )
    if v.fairness:
        fairness_plot(v, out_dir / "fairness.html")
    pages = _version_pages(cfg, v, out_dir) if cfg is not None else []
    links = "".join(
        f" · <a href='{p.name}'>{html.escape(p.stem.replace('model-v', 'model v'))}</a>"
        for p in pages
    )
    index = out_dir / "index.html"
    index.write_text(
        "<!doctype html><meta charset='utf-8'><title>rtml reports</title>"
        "<style>body{font-family:sans-serif;margin:2em}td,th{padding:4px 10px;border-bottom:1px solid #ddd;text-align:left}</style>"
        "<h1>rtml: drift and fairness per window</h1><p><a href='fairness.html'>Fairness over time</a>"
        + links
        + "</p>"
        "<table><tr><th>window (UTC)</th><th>drift</th><th>share</th><th>drifted columns (first 6)</th><th>DI</th><th>fairness</th><th>Evidently</th></tr>"
        + "".join(rows)
        + "</table>"
    )
    if not v.drift and not v.fairness:
        raise ServiceError(
            "no monitoring output to export", hint="run the job (e.g. `rtml demo`) first"
        )
    say(f"    open {index}")
    return index
