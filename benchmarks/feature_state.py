"""Per-key state size and per-event cost of the feature engine (pure Python, no JVM).

    .venv/bin/python benchmarks/feature_state.py [--events 20000] [--config deploy/configs/cards.toml]

Replays the demo scenario through the job's feature code (as the keyed operators do: restore,
observe, snapshot per event) and prints bytes per key (the serialized state Flink stores) and
microseconds per event per entity, side by side in one run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from rtml.cli.scenarios.cards import ScenarioOptions, generate
from rtml.core.config import load_config
from udfs.features.engine import EntityFeatures


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=20_000)
    ap.add_argument("--days", type=float, default=3.0)
    ap.add_argument("--config", default="deploy/configs/cards.toml")
    a = ap.parse_args()
    cfg = load_config(a.config)
    events = generate(ScenarioOptions(seed=7, events=a.events, days=a.days)).events
    print(
        f"{len(events)} events, {len(cfg.features.names)} features, tiles/window {cfg.features.tiles_per_window}, lateness {cfg.features.allowed_lateness_ms // 60000} min"
    )
    print(
        f"{'entity':<10} {'keys':>6} {'bytes/key mean':>15} {'p99':>6} {'max':>6} {'us/event':>9}"
    )
    for ent in cfg.schema.entities:
        fs = cfg.features.for_entity(ent.name)
        state: dict[str, bytes] = {}
        t0 = time.perf_counter()
        for e in events:
            raw = state.get(e[ent.key])
            st = EntityFeatures(fs) if raw is None else EntityFeatures.restore(fs, raw)
            st.observe(e["event_time"], e)
            state[e[ent.key]] = st.snapshot()
        us = 1e6 * (time.perf_counter() - t0) / len(events)
        sizes = sorted(len(v) for v in state.values())
        p99 = sizes[int(0.99 * (len(sizes) - 1))]
        print(
            f"{ent.name:<10} {len(sizes):>6} {statistics.mean(sizes):>15.0f} {p99:>6} {sizes[-1]:>6} {us:>9.1f}"
        )
    busiest = max(state.items(), key=lambda kv: len(kv[1]))
    print(
        f"largest {ent.name} state: {len(busiest[1])} bytes, {len(json.loads(busiest[1])['r'])} rings"
    )


if __name__ == "__main__":
    main()
