"""Seeded ride-hailing trips with delayed complaint labels (the second test scenario)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import numpy as np

START_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z


def iso(ms: int) -> str:
    return (
        datetime.fromtimestamp(ms / 1000, tz=UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


def trips(seed: int, n: int, hours: float = 24.0, bad: int = 0) -> tuple[list[str], list[str], int]:
    """Raw event lines (valid and ``bad`` malformed ones), raw label lines, number of valid events."""
    rng = np.random.default_rng(seed)
    riders = [f"r{i}" for i in range(150)]
    drivers = [f"d{i}" for i in range(40)]
    gender = {r: str(rng.choice(["f", "m", "x"], p=[0.45, 0.45, 0.1])) for r in riders}
    times = np.sort(rng.integers(START_MS, START_MS + int(hours * 3_600_000), size=n))
    events, labels = [], []
    for i, t in enumerate(times):
        rider = str(rng.choice(riders))
        dist = float(round(rng.gamma(2.0, 3.0), 2))
        fare = float(round(2.5 + 1.1 * dist * rng.uniform(0.8, 1.6), 2))
        ev = {
            "trip_id": f"trip-{seed}-{i:06d}",
            "rider": rider,
            "driver": str(rng.choice(drivers)),
            "fare": fare,
            "distance_km": dist,
            "passengers": int(rng.integers(1, 5)),
            "city": str(rng.choice(["lisbon", "porto", "braga"])),
            "ended_at": iso(int(t)),
            "rider_gender": gender[rider],
        }
        if rng.random() < 0.3:
            ev["promo"] = "WINTER"
        events.append(json.dumps(ev))
        overcharged = fare / max(dist, 0.5) > 2.2
        complained = int(rng.random() < (0.6 if overcharged else 0.05))
        labels.append(
            json.dumps(
                {
                    "trip_id": ev["trip_id"],
                    "complained": complained,
                    "filed_at": int(t) + int(rng.uniform(0.5, 6) * 3_600_000),
                }
            )
        )
    for j in range(bad):
        events.insert(
            int(rng.integers(0, len(events))),
            json.dumps({"trip_id": f"bad-{j}", "rider": "r1", "fare": "free"}),
        )
    return events, labels, n


if __name__ == "__main__":  # python -m tests.integration.trips.generator EVENTS LABELS [N]
    import sys

    events_path, labels_path = sys.argv[1], sys.argv[2]
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 3000
    ev, lab, valid = trips(11, n, hours=24.0, bad=n // 100)
    with open(events_path, "w") as f:
        f.write("\n".join(ev) + "\n")
    with open(labels_path, "w") as f:
        f.write("\n".join(lab) + "\n")
    print(
        f"wrote {len(ev)} trips ({valid} valid) to {events_path}, {len(lab)} labels to {labels_path}"
    )
