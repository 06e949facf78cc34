"""Upgrading a running deployment: a savepoint taken by an earlier graph restores into today's.

The fixtures in tests/fixtures/savepoints were taken by the graph of the commit in their
name (``tests/fixtures/make_savepoints.py``): the job had read the first 1,500 records of a
seeded scenario, in arrival order (``scoring-*``) or in event-time order (``event-time-*``,
whose feature stages held the events the watermark had not passed yet in a list state of
their own: they must be scored after the upgrade, from the state they moved into). Here the same records reach topics of the same names, then the rest of the
stream; the current job restores the savepoint (dropping only the state of operators the
graph no longer has, such as the old scoring operator) and must carry on from the restored
offsets with the restored feature state: every later valid event scored exactly once, with
the features the offline replay computes over the whole stream (first half included), so a
feature operator whose state did not restore fails the comparison.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest

from deploy.flink_rest import FlinkRest
from deploy.kafka_client import end_offsets, ensure_topics, produce, read_topic
from rtml.cli.commands.job import JobTarget, jobs_list, jobs_stop, submit
from rtml.cli.scenarios.cards import generate
from tests.conftest import DEMO_CONFIG
from tests.fixtures.make_savepoints import scenario
from tests.integration.waiting import wait_for
from udfs.features.offline import FeatureReplay

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "savepoints"


def _fixtures(part: str) -> list[Path]:
    return sorted(p for p in FIXTURES.glob(f"{part}-*") if (p / "_metadata").exists())


@pytest.mark.parametrize(
    "savepoint", _fixtures("scoring") + _fixtures("event-time"), ids=lambda p: p.name
)
def test_savepoint_of_an_earlier_graph_restores_feature_state(
    cfg, broker, model, cluster, savepoint
):
    meta = json.loads((savepoint / "FIXTURE.json").read_text())
    order = meta.get("feature_order", "arrival")
    c = cfg.with_bootstrap(broker.bootstrap).with_topic_prefix(meta["topic_prefix"])
    sc = generate(scenario(meta.get("scenario_days", 1.0)))
    raw = list(sc.raw_events())
    cut = meta["records_read"]
    t = c.kafka.topics
    ensure_topics(c)
    assert end_offsets(c, [t.events])[t.events] == 0, "the fixture's topics must start empty"
    produce(c, t.events, raw)

    target = JobTarget(
        Path(DEMO_CONFIG),
        bootstrap=broker.bootstrap,
        topic_prefix=meta["topic_prefix"],
        part="scoring",
        delivery="at-least-once",
        feature_order=order,
    )
    valid = {json.dumps(e): e for e in sc.events}
    later = [valid[r] for r in raw[cut:] if r in valid]
    if order == "event-time":
        # read before the savepoint but not yet passed by the watermark (the newest event
        # time less the bound, less 1 ms): waiting in the old layout's buffers
        read = [valid[r] for r in raw[:cut] if r in valid]
        watermark = max(e["event_time"] for e in read) - c.schema.max_out_of_orderness_ms - 1
        waiting = [e for e in read if e["event_time"] > watermark]
        assert waiting, "the fixture should hold buffered events"
        later = waiting + later
    rest = FlinkRest(cluster.address)
    job_id = submit(
        c,
        target,
        cluster.address,
        detached=True,
        from_savepoint=str(savepoint),
        allow_non_restored_state=True,
    )
    try:
        rest.wait_for_state(job_id, {"RUNNING"}, 120)
        # event-time order holds the events the watermark has not passed until the end of
        # the stream (the drain)
        end = max(e["event_time"] for e in later) - c.schema.max_out_of_orderness_ms - 1
        first = len(later) if order == "arrival" else sum(e["event_time"] <= end for e in later)
        wait_for(
            lambda: end_offsets(c, [t.scores])[t.scores] >= first,
            240,
            f"{first} scores of the events after the savepoint",
        )
        if order == "event-time":
            jobs_stop(cluster.address, job_id, None, drain=True)
    finally:
        if rest.job(job_id)["state"] == "RUNNING":
            rest.cancel(job_id)
    scores = read_topic(c, t.scores)
    ids = [s["event_id"] for s in scores]
    assert len(ids) == len(set(ids)) == len(later), "resumed at the restored offsets, once each"
    assert set(ids) == {e["event_id"] for e in later}
    assert len(read_topic(c, t.dead_letter)) == sum(1 for r in raw[cut:] if r not in valid)

    replay = FeatureReplay.for_job(c)
    expected = {e["event_id"]: replay.observe(e) for e in sc.events}
    mismatches = []
    for s in scores:
        want = expected[s["event_id"]]
        for name, w in want.items():
            if name not in s["inputs"]:
                continue
            have = s["inputs"][name]
            have = math.nan if have is None else have
            if not (math.isnan(w) and math.isnan(have)) and abs(w - have) > 1e-9 * max(1, abs(w)):
                mismatches.append((s["event_id"], name, w, have))
    assert not mismatches, mismatches[:10]


# the per-key feature state's snapshot starts with its layout version (EntityFeatures)
COMPATIBLE_LAYOUT = b'{"v":1,'
INCOMPATIBLE_LAYOUT = b'{"v":9,'  # same length: the savepoint's framing stays intact


def test_savepoint_whose_layout_is_marked_incompatible_is_refused_with_what_to_do(
    cfg, broker, model, cluster, tmp_path, capsys
):
    """A savepoint whose feature state says a layout version this rtml does not read (as a
    later rtml would write one) restores into no key's features: the job fails on the first
    such key with the error's message, and ``rtml jobs list`` shows it, with what to do. The
    fixture is the one-job savepoint of 27d7d54 (which test above restores intact in its
    scoring-only form), its every feature snapshot re-marked."""
    fixture = FIXTURES / "all-27d7d54"
    meta = json.loads((fixture / "FIXTURE.json").read_text())
    savepoint = tmp_path / fixture.name
    shutil.copytree(fixture, savepoint)
    marked = 0
    for f in savepoint.iterdir():
        data = f.read_bytes()
        marked += data.count(COMPATIBLE_LAYOUT)
        f.write_bytes(data.replace(COMPATIBLE_LAYOUT, INCOMPATIBLE_LAYOUT))
    assert marked > 100, "the fixture should hold the feature state of many keys"

    c = cfg.with_bootstrap(broker.bootstrap).with_topic_prefix(meta["topic_prefix"])
    ensure_topics(c)
    t = c.kafka.topics
    assert end_offsets(c, [t.events])[t.events] == 0, "the fixture's topics must start empty"
    produce(c, t.events, list(generate(scenario()).raw_events()))
    target = JobTarget(
        Path(DEMO_CONFIG),
        bootstrap=broker.bootstrap,
        topic_prefix=meta["topic_prefix"],
        part="scoring",
    )
    rest = FlinkRest(cluster.address)
    job_id = submit(
        c,
        target,
        cluster.address,
        detached=True,
        from_savepoint=str(savepoint),
        allow_non_restored_state=True,
    )
    try:
        wait_for(lambda: rest.rtml_failure(job_id) is not None, 240, "the job to refuse the state")
        capsys.readouterr()
        jobs_list(cluster.address)
        listed = capsys.readouterr().out
    finally:
        rest.cancel(job_id)
    failure = rest.rtml_failure(job_id)
    assert failure.startswith("StateVersionError: per-key feature state has layout version 9")
    assert "restore from a savepoint taken by a compatible rtml" in failure
    assert f"last failure: {failure}" in listed
    # no event was scored with state the job could not read (exactly-once: no checkpoint
    # completed, so no score was committed)
    assert read_topic(c, t.scores) == []
