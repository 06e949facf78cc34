"""Hostile input on a running job (session cluster, exactly-once): 10,000 bad records of
every kind in ``rtml.cli.scenarios.hostile`` plus resent events, mixed into a valid stream.

Every bad record lands in the dead-letter topic with its code and a reason (matched one to
one by its raw text, resends by event id), every valid event is scored exactly once (or, if
it is late for its key, reported late), and the job never restarts. Records with a null value
(Kafka tombstones) carry no event: they are skipped, and must not fail the job either.
"""

from __future__ import annotations

import collections
import json
from pathlib import Path

import numpy as np
import pytest

from deploy.flink_rest import FlinkRest
from deploy.kafka_client import ensure_topics, produce, read_topic
from rtml.cli.commands.data import scenario_options
from rtml.cli.commands.job import JobTarget, jobs_stop, submit
from rtml.cli.scenarios.cards import generate
from rtml.cli.scenarios.hostile import KINDS, hostile_records, resend
from tests.conftest import DEMO_CONFIG
from tests.integration.figures import record_figures
from tests.integration.waiting import job_detail, wait_for

pytestmark = pytest.mark.integration

PREFIX = "hx."
VALID = 10_000
BAD = 10_000
RESENT = 300
TOMBSTONES = 20


def _stream(seed: int = 41):
    sc = generate(
        scenario_options(
            seed=seed,
            events=VALID,
            days=2.0,
            drift_at_h=None,
            drift_size=0.0,
            bias=0.2,
            bad_fraction=0,
        )
    )
    events = sc.events
    bad = hostile_records(events, BAD, seed=seed)
    resends = resend(events, RESENT, seed=seed)
    rng = np.random.default_rng(seed)
    slots: dict[int, list[bytes]] = collections.defaultdict(list)
    for r in bad:
        slots[int(rng.integers(0, len(events) + 1))].append(r.raw)
    for pos, raw in resends:
        slots[pos + 1].insert(0, raw)  # right after the original, before any bad record
    for _ in range(TOMBSTONES):
        slots[int(rng.integers(0, len(events) + 1))].append(None)
    raw: list[bytes | None] = []
    for i, e in enumerate(events):
        raw += slots.get(i, [])
        raw.append(json.dumps(e).encode())
    raw += slots.get(len(events), [])
    resent_ids = [json.loads(r)["event_id"] for _, r in resends]
    return events, bad, resent_ids, raw


def test_bad_records_are_dead_lettered_valid_ones_scored_and_the_job_never_restarts(
    cfg, broker, model, cluster
):
    c = cfg.with_bootstrap(broker.bootstrap).with_topic_prefix(PREFIX)
    events, bad, resent_ids, raw = _stream()
    ensure_topics(c)
    t = c.kafka.topics
    produce(c, t.events, raw)

    target = JobTarget(
        Path(DEMO_CONFIG), bootstrap=broker.bootstrap, topic_prefix=PREFIX, part="scoring"
    )
    rest = FlinkRest(cluster.address)
    job = submit(c, target, cluster.address, detached=True)
    rest.wait_for_state(job, {"RUNNING"}, 120)
    expected_dead = len(bad) + len(resent_ids)
    counts = {"scored or late": 0, "dead-lettered": 0}

    def done() -> bool:
        counts["scored or late"] = len(read_topic(c, t.scores)) + len(read_topic(c, t.late))
        counts["dead-lettered"] = len(read_topic(c, t.dead_letter))
        return counts["scored or late"] >= len(events) and counts["dead-lettered"] >= expected_dead

    wait_for(
        done,
        600,
        f"{len(events)} events scored or late and {expected_dead} bad records dead-lettered",
        every=5,
        detail=lambda: f"saw {counts}; {job_detail(rest, job)}",
    )
    restarts = rest.restarts(job)
    jobs_stop(cluster.address, job, None)

    scores = read_topic(c, t.scores)
    late = read_topic(c, t.late)
    dead = read_topic(c, t.dead_letter)
    scored = collections.Counter(s["event_id"] for s in scores)
    late_ids = collections.Counter(x["event"]["event_id"] for x in late)
    valid_ids = collections.Counter(e["event_id"] for e in events)
    assert scored + late_ids == valid_ids, "every valid event scored (or late) exactly once"
    assert len(late_ids) < 0.01 * len(events)

    duplicates = [d for d in dead if d["error"] == "duplicate_event_id"]
    others = [d for d in dead if d["error"] != "duplicate_event_id"]
    assert sorted(d["record_id"] for d in duplicates) == sorted(resent_ids)
    got = collections.Counter((d["raw"], d["error"]) for d in others)
    want = collections.Counter((r.raw.decode("utf-8", "replace")[:4096], r.code) for r in bad)
    assert got == want, "every bad record dead-lettered once, with its code"
    for d in dead:
        assert d["reason"] and "->" in d["reason"], d
        assert d["source"] == t.events
    assert restarts == 0, "bad input must never fail the job"

    by_kind = collections.Counter(r.kind for r in bad)
    assert set(by_kind) == set(KINDS)
    record_figures(
        "hostile_input",
        {
            "valid_events": len(events),
            "bad_records_tried": len(bad) + len(resent_ids),
            "kinds": len(KINDS) + 1,
            "tombstones_skipped": TOMBSTONES,
            "dead_lettered": len(dead),
            "scored": sum(scored.values()),
            "late": sum(late_ids.values()),
            "lost": sum((valid_ids - scored - late_ids).values()),
            "scored_twice": sum(1 for v in scored.values() if v > 1),
            "job_restarts": restarts,
        },
    )
