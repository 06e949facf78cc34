"""A seeded generator of card transactions with per-account histories.

Ground truth is known by construction:
- fraud comes in *compromise episodes*: a burst of 2-6 large, mostly online, often foreign
  transactions on one account within minutes;
- labels (``is_fraud``) arrive later on their own stream: fraud after a chargeback delay,
  legitimate events once they mature; a share of events is never labelled;
- drift: from ``drift_at_ms`` amounts grow by ``drift_size`` and the channel mix moves online;
- bias (historical label bias): a share ``bias`` of the protected age band's otherwise
  legitimate events look unusual (online, foreign, larger amounts) *and were labelled fraud*,
  so a model trained on these labels flags that group more;
- bad records: a share ``bad_fraction`` of raw records is malformed in one known way each.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

CATEGORIES = [
    "grocery",
    "electronics",
    "travel",
    "restaurants",
    "fuel",
    "online_services",
    "fashion",
    "health",
]
CHANNELS = ["pos", "online", "atm", "contactless"]
COUNTRIES = ["US", "GB", "DE", "FR", "NL", "ES", "NG", "BR", "IN", "CN"]
HOME_COUNTRIES = ["US", "GB", "DE", "FR", "NL", "ES"]
AGE_BANDS = ["18-25", "26-40", "41-60", "60+"]
AGE_WEIGHTS = [0.2, 0.35, 0.3, 0.15]
PROTECTED_GROUP = "18-25"
FRAUD_CATEGORIES = ["electronics", "travel", "online_services", "fashion"]
HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS


@dataclass(frozen=True)
class ScenarioOptions:
    seed: int = 7  # draws the events
    population_seed: int = (
        42  # draws accounts and merchants: share it between training and live data
    )
    events: int = 20_000
    accounts: int = 1_000
    merchants: int = 300
    start_ms: int = 1_767_225_600_000  # 2026-01-01T00:00:00Z
    days: float = 3.0
    fraud_episode_rate: float = 0.01  # compromise episodes per legitimate event
    drift_at_ms: int | None = None
    drift_size: float = 0.0
    bias: float = 0.0
    bad_fraction: float = 0.0
    label_coverage: float = 0.97


@dataclass
class Scenario:
    events: list[dict] = field(default_factory=list)  # valid events in event-time order
    labels: list[dict] = field(default_factory=list)  # in label-time (arrival) order
    bad: list[tuple[int, str, str]] = field(default_factory=list)  # (position, raw, defect)

    def raw_events(self) -> Iterator[str]:
        """Valid events as JSON with the bad records interleaved at their positions."""
        bad: dict[int, list[str]] = {}
        for pos, raw, _ in self.bad:
            bad.setdefault(pos, []).append(raw)
        for i, e in enumerate(self.events):
            yield from bad.get(i, ())
            yield json.dumps(e)
        for pos, raw, _ in self.bad:
            if pos >= len(self.events):
                yield raw


def generate(opts: ScenarioOptions) -> Scenario:
    pop = np.random.default_rng(opts.population_seed)
    n_acc = opts.accounts
    acc_ids = [f"acct-{opts.population_seed:03d}-{i:05d}" for i in range(n_acc)]
    acc_age = pop.choice(AGE_BANDS, size=n_acc, p=AGE_WEIGHTS)
    acc_home = pop.choice(HOME_COUNTRIES, size=n_acc)
    acc_scale = np.exp(pop.normal(3.4, 0.6, size=n_acc))  # typical amount ~ 30
    acc_activity = pop.gamma(2.0, 1.0, size=n_acc)
    acc_activity /= acc_activity.sum()
    acc_online = pop.beta(2, 5, size=n_acc)
    merch_ids = [f"m-{i:04d}" for i in range(opts.merchants)]
    merch_cat = pop.choice(CATEGORIES, size=opts.merchants)
    merch_pop = pop.zipf(1.6, size=opts.merchants).astype(float)
    merch_pop /= merch_pop.sum()
    rng = np.random.default_rng(opts.seed)

    span_ms = int(opts.days * DAY_MS)
    n_legit = int(opts.events / (1 + opts.fraud_episode_rate * 4))
    owners = rng.choice(n_acc, size=n_legit, p=acc_activity)
    times = np.sort(rng.integers(opts.start_ms, opts.start_ms + span_ms, size=n_legit))
    rows: list[tuple[int, int, bool]] = [
        (int(t), int(a), False) for t, a in zip(times, owners, strict=True)
    ]

    # compromise episodes: bursts of fraud on one account
    n_episodes = max(1, int(n_legit * opts.fraud_episode_rate))
    for _ in range(n_episodes):
        a = int(rng.choice(n_acc, p=acc_activity))
        t0 = int(rng.integers(opts.start_ms, opts.start_ms + span_ms))
        for k in range(int(rng.integers(2, 7))):
            rows.append(
                (
                    min(t0 + k * int(rng.integers(20_000, 600_000)), opts.start_ms + span_ms - 1),
                    a,
                    True,
                )
            )
    rows.sort(key=lambda r: r[0])
    rows = rows[: opts.events]

    sc = Scenario()
    for i, (t, a, fraud) in enumerate(rows):
        drifted = opts.drift_at_ms is not None and t >= opts.drift_at_ms
        biased = (not fraud) and acc_age[a] == PROTECTED_GROUP and rng.random() < opts.bias
        if fraud or biased:
            m = int(rng.choice(opts.merchants, p=merch_pop))
            category = str(rng.choice(FRAUD_CATEGORIES))
            channel = "online" if rng.random() < 0.85 else "contactless"
            country = str(rng.choice(COUNTRIES)) if rng.random() < 0.7 else str(acc_home[a])
            amount = acc_scale[a] * math.exp(rng.normal(1.6, 0.5))
        else:
            m = int(rng.choice(opts.merchants, p=merch_pop))
            category = str(merch_cat[m])
            channel = (
                "online"
                if rng.random() < acc_online[a]
                else str(rng.choice(["pos", "contactless", "atm"], p=[0.5, 0.4, 0.1]))
            )
            country = str(acc_home[a]) if rng.random() < 0.97 else str(rng.choice(COUNTRIES))
            amount = acc_scale[a] * math.exp(rng.normal(0.0, 0.5))
        if drifted:
            amount *= 1.0 + opts.drift_size
            if rng.random() < opts.drift_size * 0.4:
                channel = "online"
        ev = {
            "event_id": f"ev-{opts.seed:03d}-{i:07d}",
            "account_id": acc_ids[a],
            "merchant_id": merch_ids[m],
            "amount": round(float(amount), 2),
            "category": category,
            "channel": channel,
            "country": country,
            "event_time": t,
            "age_band": str(acc_age[a]),
        }
        sc.events.append(ev)
        if rng.random() < opts.label_coverage:
            delay = (
                rng.exponential(6 * HOUR_MS)
                if fraud or biased
                else rng.uniform(12 * HOUR_MS, 36 * HOUR_MS)
            )
            sc.labels.append(
                {
                    "event_id": ev["event_id"],
                    "is_fraud": int(fraud or biased),
                    "label_time": int(t + delay),
                }
            )
    sc.labels.sort(key=lambda lab: lab["label_time"])

    n_bad = int(round(len(sc.events) * opts.bad_fraction))
    for j in range(n_bad):
        pos = int(rng.integers(0, len(sc.events)))
        raw, defect = make_bad_record(sc.events[pos], j, rng)
        sc.bad.append((pos, raw, defect))
    sc.bad.sort(key=lambda b: b[0])
    return sc


BAD_KINDS = (
    "invalid_json",
    "missing_field",
    "wrong_type",
    "negative_amount",
    "unknown_category",
    "future_timestamp",
    "nan_amount",
    "not_an_object",
)


def make_bad_record(template: dict, j: int, rng: np.random.Generator) -> tuple[str, str]:
    """One malformed record derived from a valid one; the defect kind cycles with ``j``."""
    kind = BAD_KINDS[j % len(BAD_KINDS)]
    e = dict(template)
    e["event_id"] = f"bad-{j:06d}"
    if kind == "invalid_json":
        return json.dumps(e)[: -int(rng.integers(2, 10))], kind
    if kind == "missing_field":
        del e["amount"]
    elif kind == "wrong_type":
        e["amount"] = "twelve"
    elif kind == "negative_amount":
        e["amount"] = -abs(e["amount"]) - 1
    elif kind == "unknown_category":
        e["channel"] = "carrier-pigeon"
    elif kind == "future_timestamp":
        e["event_time"] = e["event_time"] + 400 * DAY_MS
    elif kind == "nan_amount":
        return json.dumps(e).replace(f'"amount": {json.dumps(e["amount"])}', '"amount": NaN'), kind
    elif kind == "not_an_object":
        return json.dumps([e["event_id"], e["amount"]]), kind
    return json.dumps(e), kind
