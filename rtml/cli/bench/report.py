"""The bench's table (stdout) and plot (PNG): every job side by side, its Python stages, and
the latency-load curve (p99 as a live reader sees it, against the offered load)."""

from __future__ import annotations

import math
from pathlib import Path

from rtml.cli.console import say

ALO, EO = "at-least-once", "exactly-once"
HALF = 0.5
COLORS = {
    "floor": "#888888",
    "naive": "#c66666",
    "scoring": "#336699",
    "peer": "#e08a1e",
    "scoring-one-entity": "#66a3d2",
    "floor-one-entity": "#bbbbbb",
    "scoring-event-time": "#7a4fa0",
    "scoring-thread": "#2a9d5c",
}


def _fmt(v: float | None, spec: str = ",.0f") -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, spec)


def point(job: dict | None, load: float, delivery: str = ALO) -> dict | None:
    """The job's latency point at ``load`` with ``delivery``, if it was measured."""
    if job is None:
        return None
    return next((p for p in job["curve"] if p["load"] == load and p["delivery"] == delivery), None)


def _point(job: dict, load: float, delivery: str) -> dict:
    return point(job, load, delivery) or {}


def curve_series(job: dict) -> dict[str, list[dict]]:
    """The job's latency points by delivery, in order of offered load."""
    out: dict[str, list[dict]] = {}
    for p in sorted(job["curve"], key=lambda p: p["offered_eps"]):
        out.setdefault(p["delivery"], []).append(p)
    return out


def print_table(result: dict) -> None:
    jobs = result["jobs"]
    say("")
    say(
        f"rtml bench ({result['when']}, {result.get('git_rev') or 'no git'}): "
        f"{result['events_preloaded']:,} events preloaded ((b): "
        f"{result['naive_events_preloaded']:,}); loads {', '.join(f'{x:.0%}' for x in result['loads'])} "
        f"of {result['max_rate_eps']:,.0f} events/s ({result['max_rate_from']}), "
        f"{result['seconds_per_load']:g} s each; Python bundle time {result['bundle_time_ms']} ms, "
        f"checkpoints every {result['checkpoint_interval_ms']} ms "
        f"(exactly-once run: {result['eo_checkpoint_interval_ms']} ms)"
    )
    say(f"latency: {result['latency_measure']}; p50/p99 at 50% load, at-least-once")
    head = (
        f"{'job':<20} {'stages':>6} {'events/s':>9} {'CPU@max':>8} {'RSS MB':>7} "
        f"{'p50 ms':>7} {'p99 ms':>7} {'p99 EO':>7} {'CPU@load':>9} {'state B/key':>11}"
    )
    say(head)
    say("-" * len(head))
    for f in jobs.values():
        alo, eo = _point(f, HALF, ALO), _point(f, HALF, EO)
        stages = "1 proc" if f["part"] == "peer" else _fmt(f["python_stages"], "d")
        say(
            f"{f['label']:<20} {stages:>6} {_fmt(f['throughput_eps']):>9} "
            f"{_fmt(f['cpu_cores_at_max'], '.2f'):>8} {_fmt(f['rss_mb_at_max']):>7} "
            f"{_fmt(alo.get('p50_ms')):>7} {_fmt(alo.get('p99_ms')):>7} "
            f"{_fmt(eo.get('p99_ms')):>7} {_fmt(f['cpu_cores_at_load'], '.2f'):>9} "
            f"{_fmt(f['state_bytes_per_key']):>11}"
        )
    _print_curve(result)
    r = result["ratios"]
    say(
        "\nthroughput ratios: "
        + ", ".join(f"{k.replace('_over_', '/')} = {_fmt(v, '.2f')}" for k, v in r.items())
    )
    say("targets:")
    for name, t in result["targets"].items():
        say(
            f"  [{'met' if t['met'] else 'NOT met'}] {name}: measured "
            f"{_fmt(t['measured'], ',.2f')} (limit {_fmt(t['limit'], ',.2f')})"
        )


def _print_curve(result: dict) -> None:
    loads = result["loads"]
    say("\nlatency-load curve: p50 / p99 ms as polled (missing = not scored in time)")
    rate = result["max_rate_eps"]
    head = f"{'job':<20} {'delivery':<14} " + " ".join(f"{_load_label(x, rate):>22}" for x in loads)
    say(head)
    say("-" * len(head))
    for f in result["jobs"].values():
        for delivery in (ALO, EO):
            pts = [_point(f, x, delivery) for x in loads]
            if not any(pts):
                continue
            cells = [
                (
                    f"{_fmt(p['p50_ms'])} / {_fmt(p['p99_ms'])}"
                    + (f" ({p['missing']} m)" if p["missing"] else "")
                    if p
                    else "-"
                )
                for p in pts
            ]
            say(f"{f['label']:<20} {delivery:<14} " + " ".join(f"{c:>22}" for c in cells))


def _load_label(load: float, max_rate: float) -> str:
    return f"{load:.0%} ({load * max_rate:,.0f}/s)"


def write_plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    jobs = list(result["jobs"].values())
    labels = [j["label"] for j in jobs]
    colors = [COLORS.get(j["job"], "#444444") for j in jobs]
    fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(17, 5), width_ratios=(1.1, 1.4, 1))
    bars = ax1.bar(labels, [j["throughput_eps"] for j in jobs], color=colors)
    for bar, j in zip(bars, jobs, strict=True):
        n = j["python_stages"]
        text = "1 process" if j["part"] == "peer" else f"{n} Python stages" if n else ""
        ax1.annotate(
            text,
            (bar.get_x() + bar.get_width() / 2, 0),
            xytext=(0, 3),
            fontsize=7,
            textcoords="offset points",
            ha="center",
            rotation=90,
            va="bottom",
        )
    ax1.set_title("sustained throughput (events/s)")
    for j, color in zip(jobs, colors, strict=True):
        for delivery, pts in curve_series(j).items():
            x = [p["offered_eps"] for p in pts]
            dashed = delivery == EO
            ax2.plot(
                x,
                [p["p99_ms"] for p in pts],
                marker="s" if dashed else "o",
                color=color,
                ls="--" if dashed else "-",
                label=f"{j['label']}{' (EO)' * dashed}",
            )
    ax2.axhline(50, ls=":", c="k", lw=0.8)
    ax2.set_yscale("log")
    ax2.set_xlabel("offered load (events/s)")
    ax2.set_title("p99 latency as a read_committed reader sees it (ms)")
    ax2.legend(fontsize=7)
    ax3.bar(labels, [j["state_bytes_per_key"] for j in jobs], color=colors)
    ax3.axhline(2048, ls="--", c="k", lw=0.8)
    ax3.set_title("state per key (bytes)")
    for ax in (ax1, ax3):
        ax.tick_params(axis="x", labelsize=7, labelrotation=30)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
