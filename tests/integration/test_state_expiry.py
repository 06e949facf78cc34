"""An idle key's feature state is dropped without watermarks (arrival order, the default).

The scoring path has no timestamp assigner in arrival order, so no event-time timer would
ever fire on a live stream. Each key keeps one processing-time timer instead: once the TTL
has passed in processing time, the key's state goes if the TTL has also passed on the
stage's event clock (its newest event time, less the out-of-orderness bound: the watermark
the job would have had). Here the TTL is 3 s: account A's state must be dropped (the
``keys_expired`` counter moves, and A's next event finds no history), while the keys whose
events are recent on the event clock keep theirs.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deploy.flink_rest import FlinkRest
from deploy.kafka_client import end_offsets, ensure_topics, produce, read_topic
from rtml.cli.commands.data import scenario_options
from rtml.cli.commands.job import JobTarget, submit
from rtml.cli.scenarios.cards import generate
from rtml.core.config import load_config
from tests.conftest import DEMO_CONFIG
from tests.integration.waiting import wait_for

pytestmark = pytest.mark.integration

TTL = '"3s"'


def _events() -> list[dict]:
    """Six valid events, each of its own account and merchant."""
    sc = generate(scenario_options(41, 400, 0.5, None, 0.0, 0.25, 0.0))
    seen_a, seen_m, out = set(), set(), []
    for e in sc.events:
        if e["account_id"] not in seen_a and e["merchant_id"] not in seen_m:
            seen_a.add(e["account_id"])
            seen_m.add(e["merchant_id"])
            out.append(dict(e))
        if len(out) == 6:
            return out
    raise AssertionError("the scenario has fewer than six distinct accounts and merchants")


def _expired(rest: FlinkRest, job_id: str) -> int:
    m = rest.operator_metrics(job_id, ".rtml.keys_expired")
    return int(sum(v for vals in m.values() for v in vals.values()))


def test_idle_key_state_is_dropped_on_processing_time(cfg, broker, model, cluster, tmp_path):
    text = Path(DEMO_CONFIG).read_text()
    assert 'ttl = "30d"' in text
    config = tmp_path / "cards-ttl.toml"
    config.write_text(text.replace('ttl = "30d"', f"ttl = {TTL}"))
    c = load_config(config).with_bootstrap(broker.bootstrap).with_topic_prefix("ttl.")
    assert c.job.feature_order == "arrival" and c.features.ttl_ms == 3000
    ensure_topics(c)
    t = c.kafka.topics

    first, *others, again = _events()
    t0 = first["event_time"]
    for i, e in enumerate(others):  # recent on the event clock: 20 s after A's event
        e["event_time"] = t0 + 20_000 + i
    # A's second event is 1 s after its first: within the TTL in event time, so only the
    # expiry (on the clock the other keys moved on) can have emptied A's history
    again.update(account_id=first["account_id"], event_time=t0 + 1000)

    target = JobTarget(
        config,
        bootstrap=broker.bootstrap,
        topic_prefix="ttl.",
        part="scoring",
        delivery="at-least-once",
    )
    rest = FlinkRest(cluster.address)
    job_id = submit(c, target, cluster.address, detached=True)
    try:
        rest.wait_for_state(job_id, {"RUNNING"}, 120)
        produce(c, t.events, [json.dumps(e) for e in [first, *others]])
        wait_for(lambda: end_offsets(c, [t.scores])[t.scores] >= 5, 120, "five scores")
        # A's timer fires a TTL (and a granule) after its event; the others' timers later
        wait_for(lambda: _expired(rest, job_id) >= 1, 120, "an idle key's state to expire")
        produce(c, t.events, [json.dumps(again)])
        wait_for(lambda: end_offsets(c, [t.scores])[t.scores] >= 6, 120, "the sixth score")
    finally:
        rest.cancel(job_id)
    scores = {s["event_id"]: s for s in read_topic(c, t.scores)}
    first_inputs = scores[first["event_id"]]["inputs"]
    assert first_inputs["account_count_1h"] == 0
    inputs = scores[again["event_id"]]["inputs"]
    assert inputs["account_count_1h"] == 0, "A's state should have been dropped"
    assert inputs["account_time_since_last"] is None  # no earlier event: NaN, sent as null
