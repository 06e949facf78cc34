"""The bench's table (stdout) and plot (PNG)."""

from __future__ import annotations

import math
from pathlib import Path

from rtml.console import say

DELIVERIES = ("at-least-once", "exactly-once")


def _fmt(v: float, spec: str = ",.0f") -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, spec)


def print_table(result: dict) -> None:
    jobs = result["jobs"]
    say("")
    say(
        f"rtml bench: {result['events_preloaded']:,} events preloaded; latency at "
        f"{result['offered_rate_eps']:,.0f} events/s offered (half of (c)'s throughput), "
        f"{result['paced_events']:,} events; Python bundle time {result['bundle_time_ms']} ms, "
        f"checkpoints every {result['checkpoint_interval_ms']} ms"
    )
    head = (
        f"{'job':<18} {'events/s':>9} {'CPU@max':>8} {'RSS MB':>7} "
        f"{'p50 ms':>7} {'p99 ms':>7} {'p99 EO':>7} {'CPU@load':>9} {'state B/key':>11}"
    )
    say(head)
    say("-" * len(head))
    for f in jobs.values():
        alo = f["latency"].get("at-least-once", {})
        eo = f["latency"].get("exactly-once", {})
        say(
            f"{f['label']:<18} {_fmt(f['throughput_eps']):>9} {_fmt(f['cpu_cores_at_max'], '.2f'):>8} "
            f"{_fmt(f['rss_mb_at_max']):>7} {_fmt(alo.get('p50_ms')):>7} {_fmt(alo.get('p99_ms')):>7} "
            f"{_fmt(eo.get('p99_ms')):>7} {_fmt(f['cpu_cores_at_load'], '.2f'):>9} "
            f"{_fmt(f['state_bytes_per_key']):>11}"
        )
    r = result["ratios"]
    say(f"\nthroughput ratios: c/a = {r['c_over_a']:.2f}, c/b = {r['c_over_b']:.2f}")
    say("targets for (c):")
    for name, t in result["targets"].items():
        say(
            f"  [{'met' if t['met'] else 'NOT met'}] {name}: measured {_fmt(t['measured'], ',.2f')}"
        )


def write_plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    jobs = list(result["jobs"].values())
    labels = [j["label"] for j in jobs]
    fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(14, 4.2))
    ax1.bar(labels, [j["throughput_eps"] for j in jobs], color=["#999", "#c66", "#369"])
    ax1.set_title("sustained throughput (events/s)")
    x = range(len(jobs))
    for i, (d, q) in enumerate(
        (("at-least-once", "p50_ms"), ("at-least-once", "p99_ms"), ("exactly-once", "p99_ms"))
    ):
        vals = [j["latency"].get(d, {}).get(q, math.nan) for j in jobs]
        ax2.bar([p + (i - 1) * 0.27 for p in x], vals, width=0.27, label=f"{q[:3]} {d}")
    ax2.set_xticks(list(x), labels)
    ax2.set_yscale("log")
    ax2.set_title(f"end-to-end latency (ms) at {result['offered_rate_eps']:,.0f} events/s")
    ax2.legend(fontsize=8)
    ax3.bar(labels, [j["state_bytes_per_key"] for j in jobs], color=["#999", "#c66", "#369"])
    ax3.axhline(2048, ls="--", c="k", lw=0.8)
    ax3.set_title("checkpointed state per key (bytes)")
    for ax in (ax1, ax2, ax3):
        ax.tick_params(axis="x", labelsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
