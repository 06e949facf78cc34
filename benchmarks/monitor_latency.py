"""Scoring latency with and without the monitors (fairness + Evidently drift), side by side:
scoring alone, scoring and monitoring in one job, and as two jobs (monitors reading the scores
topic).

    .venv/bin/rtml broker start            # a broker on 127.0.0.1:9092
    .venv/bin/rtml demo                    # or train + export: a registered model
    .venv/bin/python benchmarks/monitor_latency.py [--rate 100] [--seconds 60]

For each mode the job(s) run unbounded on embedded MiniClusters with at-least-once delivery.
After a warm-up, events are produced at a fixed rate. Their event times span several
monitoring windows, so Evidently runs during the measurement. Latency per event is the score's
broker append time minus the event's broker append time (both LogAppendTime on one broker).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from deploy import jars
from deploy.kafka_client import end_offsets, ensure_topics
from deploy.process import child_env
from rtml.cli.commands.job import MONITORING_NICE
from rtml.cli.scenarios.cards import ScenarioOptions, generate
from rtml.core import paths
from rtml.core.config import load_config

DEMO = paths.DEPLOY_DIR / "configs" / "cards.toml"


def config_for(bundle_time: str) -> Path:
    text = DEMO.read_text()
    job_lines = f'delivery = "at-least-once"\nbundle_time = "{bundle_time}"'
    text = re.sub(r"^delivery = .*$", job_lines, text, flags=re.M)
    f = tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False)
    f.write(text)
    f.close()
    return Path(f.name)


def append_times(cfg, topic: str, key: str) -> dict[str, int]:
    from kafka import KafkaConsumer, TopicPartition

    c = KafkaConsumer(
        bootstrap_servers=cfg.kafka.bootstrap_servers,
        enable_auto_commit=False,
        consumer_timeout_ms=5000,
    )
    tps = [TopicPartition(topic, p) for p in c.partitions_for_topic(topic) or ()]
    c.assign(tps)
    c.seek_to_beginning(*tps)
    out: dict[str, int] = {}
    for m in c:
        try:
            out[json.loads(m.value)[key]] = m.timestamp
        except (ValueError, KeyError, TypeError):
            continue
    c.close()
    return out


def run_mode(
    bootstrap: str,
    mode: str,
    parts: list[str],
    rate: float,
    seconds: float,
    warm: int,
    bundle_time: str,
) -> dict:
    from kafka import KafkaProducer

    prefix = f"bench-{mode}-{int(time.time())}."
    conf = config_for(bundle_time)
    cfg = load_config(conf).with_bootstrap(bootstrap).with_topic_prefix(prefix)
    ensure_topics(cfg)
    n = warm + int(rate * seconds)
    events = generate(ScenarioOptions(seed=9, events=n, days=max(1.5, n / 20_000 * 3))).events
    cmd = [
        sys.executable, "-m", "flink_jobs.job", "--config", str(conf), "--registry", str(paths.registry_dir()),
        "--workspace", str(paths.workspace_dir()), "--bootstrap", bootstrap, "--topic-prefix", prefix,
        "--jar", jars.job_jar().resolve().as_uri(),
    ]  # fmt: skip
    log = open(paths.home() / "logs" / f"bench-{mode}.log", "w")
    jobs = [
        subprocess.Popen(
            (["nice", "-n", str(MONITORING_NICE)] if part == "monitoring" else [])
            + [*cmd, "--part", part],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=child_env(),
            cwd=paths.REPO_ROOT,
        )
        for part in parts
    ]
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=0)
    t = cfg.kafka.topics
    try:
        for e in events[:warm]:
            producer.send(t.events, json.dumps(e).encode())
        producer.flush()
        deadline = time.monotonic() + 180
        while end_offsets(cfg, [t.scores])[t.scores] < warm:
            if any(j.poll() is not None for j in jobs) or time.monotonic() > deadline:
                raise SystemExit(f"{mode}: the job did not start scoring; see {log.name}")
            time.sleep(1)
        print(f"{mode}: warm, producing {n - warm} events at {rate:g}/s", flush=True)
        start = time.monotonic()
        for i, e in enumerate(events[warm:]):
            pause = start + i / rate - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            producer.send(t.events, json.dumps(e).encode())
        producer.flush()
        deadline = time.monotonic() + 120
        while end_offsets(cfg, [t.scores])[t.scores] < n and time.monotonic() < deadline:
            time.sleep(1)
    finally:
        producer.close()
        for j in jobs:
            j.terminate()
        for j in jobs:
            j.wait(60)
    sent = append_times(cfg, t.events, "event_id")
    scored = append_times(cfg, t.scores, "event_id")
    measured = {e["event_id"] for e in events[warm:]}
    lat = sorted(scored[k] - sent[k] for k in measured if k in scored and k in sent)
    pick = lambda q: lat[min(len(lat) - 1, int(q * (len(lat) - 1)))]  # noqa: E731
    return {
        "mode": mode,
        "events": len(measured),
        "scored": len(lat),
        "p50": pick(0.5),
        "p90": pick(0.9),
        "p99": pick(0.99),
        "max": lat[-1],
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap", default="127.0.0.1:9092")
    ap.add_argument("--rate", type=float, default=100.0)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--warm", type=int, default=300)
    ap.add_argument(
        "--bundle-time", default="1s", help="python.fn-execution.bundle.time for every run"
    )
    a = ap.parse_args()
    (paths.home() / "logs").mkdir(parents=True, exist_ok=True)
    modes = {"scoring-only": ["scoring"], "one-job": ["all"], "two-jobs": ["scoring", "monitoring"]}
    rows = [
        run_mode(a.bootstrap, name, parts, a.rate, a.seconds, a.warm, a.bundle_time)
        for name, parts in modes.items()
    ]
    print(f"\nrate {a.rate:g}/s for {a.seconds:g}s, bundle time {a.bundle_time}")
    print(
        f"\n{'mode':<14} {'events':>7} {'scored':>7} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'max ms':>8} {'p50 vs scoring-only':>20}"
    )
    base = rows[0]
    for r in rows:
        print(
            f"{r['mode']:<14} {r['events']:>7} {r['scored']:>7} {r['p50']:>8} {r['p90']:>8} {r['p99']:>8} {r['max']:>8} {r['p50'] / max(base['p50'], 1):>20.2f}"
        )
    out = paths.home() / "bench-monitor-latency.json"
    out.write_text(
        json.dumps(
            {
                "rate": a.rate,
                "seconds": a.seconds,
                "bundle_time": a.bundle_time,
                "rows": rows,
            },
            indent=2,
        )
    )
    print(f"figures written to {out}")


if __name__ == "__main__":
    main()
