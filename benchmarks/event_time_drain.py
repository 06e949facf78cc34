"""Draining a backlog in event-time order against arrival order, at parallelism 2, side by
side in one run on the local cluster (issue #20: event-time order in linear time).

    .venv/bin/python benchmarks/event_time_drain.py [--events 100000] [--parallelism 2]
        [--out benchmarks/results/event-time-drain.json]

The backlog (the bench's card scenario) is produced once per run to its own topics; the
scoring job runs bounded over it in each order, one after the other: events/s over the
scores' broker append times (start-up excluded), and every score's features compared with
the offline replay: in event-time order over the events in (event time, event id) order,
which it must equal exactly at any parallelism; in arrival order over the events as
produced (at parallelism 2 the merchant stage sees them in an order that depends on timing,
so events are late for their merchant or get other features: counted, not required).
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import time
from dataclasses import replace
from pathlib import Path

from deploy.kafka_client import ensure_topics, produce, read_topic
from rtml.cli.bench.measure import append_times, throughput
from rtml.cli.bench.runs import FlinkJob, bounded_run
from rtml.cli.commands import bench
from rtml.cli.scenarios.cards import generate
from rtml.core import paths
from udfs.features.offline import FeatureReplay


def mismatched_events(cfg, scores: list[dict], events: list[dict]) -> int:
    """Scores whose features differ from the replay over ``events`` (in that order)."""
    replay = FeatureReplay.for_job(cfg)
    want = {e[cfg.schema.event_id]: replay.observe(e) for e in events}
    bad = 0
    for s in scores:
        w = want.get(s["event_id"])
        if w is None:
            bad += 1
            continue
        for name, x in w.items():
            if name not in s["inputs"]:  # a feature the model does not take
                continue
            have = s["inputs"][name]
            have = math.nan if have is None else have
            if not (math.isnan(x) and math.isnan(have)) and abs(x - have) > 1e-9 * max(1, abs(x)):
                bad += 1
                break
    return bad


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--parallelism", type=int, default=2)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/event-time-drain.json"))
    a = ap.parse_args()

    o = bench.BenchOptions(config=paths.DEPLOY_DIR / "configs" / "cards.toml", out=a.out)
    s = bench.setup(o)
    sc = generate(bench.bench_scenario(a.events, seed=11))
    raw = list(sc.raw_events())
    events = list(sc.events)
    ordered = sorted(events, key=lambda e: (e["event_time"], e["event_id"]))
    stamp = time.strftime("%Y%m%d%H%M%S")
    rows = []
    for order in ("arrival", "event-time"):
        prefix = f"drain-{stamp}-{order}."
        cfg = s.configs[False][1].with_topic_prefix(prefix)
        ensure_topics(cfg)
        produce(cfg, cfg.kafka.topics.events, raw)
        target = replace(
            s.target,
            topic_prefix=prefix,
            part="scoring",
            delivery="at-least-once",
            parallelism=a.parallelism,
            feature_order=order,
        )
        t0 = time.monotonic()
        sampler = bounded_run(FlinkJob(cfg, target, s.cluster))
        wall = time.monotonic() - t0
        out = append_times(cfg, cfg.kafka.topics.scores, cfg.schema.event_id)
        scores = read_topic(cfg, cfg.kafka.topics.scores)
        row = {
            "feature_order": order,
            "parallelism": a.parallelism,
            "events": len(raw),
            "valid": len(events),
            "scores": len(scores),
            "distinct_scored": len({x["event_id"] for x in scores}),
            "events_per_s": round(throughput(out.values()), 1),
            "wall_s": round(wall, 1),
            "cpu_cores": round(sampler.cpu_cores, 2),
            "late": len(read_topic(cfg, cfg.kafka.topics.late)),
            "dead_letters": len(read_topic(cfg, cfg.kafka.topics.dead_letter)),
            "features_differ": mismatched_events(
                cfg, scores, ordered if order == "event-time" else events
            ),
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    result = {"date": time.strftime("%Y-%m-%d"), "commit": commit, "runs": rows}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"{'order':<12}{'events/s':>10}{'wall s':>8}{'scored':>9}{'late':>7}{'differ':>8}")
    for r in rows:
        print(
            f"{r['feature_order']:<12}{r['events_per_s']:>10,.0f}{r['wall_s']:>8.0f}"
            f"{r['scores']:>9}{r['late']:>7}{r['features_differ']:>8}"
        )
    # event-time order must score every valid event once with the replay's features
    et = next(r for r in rows if r["feature_order"] == "event-time")
    ok = et["distinct_scored"] == et["scores"] == et["valid"] and et["features_differ"] == 0
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
