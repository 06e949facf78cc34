"""`rtml produce --file` on the real broker: a user's own file reaches the events topic line
for line (malformed lines too, for the job to dead-letter), and with ``--label-field`` the
labels reach the labels topic and no event record carries its label."""

from __future__ import annotations

import json

import pytest

from deploy.kafka_client import read_topic
from rtml.cli import main
from rtml.cli.scenarios.cards import ScenarioOptions, generate
from tests.conftest import DEMO_CONFIG

pytestmark = pytest.mark.integration


def _file_with_labels(tmp_path):
    """The card scenario as a user's file would hold it: each event with its label field,
    and some malformed lines."""
    sc = generate(ScenarioOptions(seed=9, events=600, days=0.2, bad_fraction=0.05))
    label = {lab["event_id"]: lab["is_fraud"] for lab in sc.labels}
    lines = []
    for raw in sc.raw_events():
        try:
            doc = json.loads(raw)
        except ValueError:
            doc = None
        if isinstance(doc, dict) and doc.get("event_id") in label:
            doc["is_fraud"] = label[doc["event_id"]]
            raw = json.dumps(doc)
        lines.append(raw)
    f = tmp_path / "events.jsonl"
    f.write_text("\n".join(lines) + "\n")
    return f, lines, label


def test_a_users_file_with_its_labels_reaches_both_topics(cfg, broker, tmp_path, capsys):
    f, lines, label = _file_with_labels(tmp_path)
    c = cfg.with_bootstrap(broker.bootstrap).with_topic_prefix("pf.")
    rc = main(
        [
            "produce",
            "--config",
            str(DEMO_CONFIG),
            "--bootstrap",
            broker.bootstrap,
            "--topic-prefix",
            "pf.",
            "--file",
            str(f),
            "--label-field",
            "is_fraud",
            "--label-delay",
            "12h",
            "--rate",
            "2000",
        ]
    )
    assert rc == 0
    events = read_topic(c, c.kafka.topics.events, parse=False)
    labels = read_topic(c, c.kafka.topics.labels)
    assert len(events) == len(lines)  # every line, malformed ones too
    assert not any('"is_fraud"' in e for e in events), "an event record carries its label"
    assert {lab["event_id"]: lab["is_fraud"] for lab in labels} == label
    times = {}
    for e in events:
        try:
            doc = json.loads(e)
        except ValueError:
            continue
        if isinstance(doc, dict) and doc.get("event_id") in label:
            times[doc["event_id"]] = doc["event_time"]
    assert all(lab["label_time"] == times[lab["event_id"]] + 12 * 3_600_000 for lab in labels)
    out = capsys.readouterr().out
    assert f"sent {len(lines)} event records" in out and f"and {len(label)} labels" in out
