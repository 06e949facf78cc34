"""`rtml produce --file`: CSV typing, taking the label out, pacing (no broker)."""

from __future__ import annotations

import json
import time

import pytest

from rtml.cli.commands.file_replay import Pacing, csv_records, paced, read_records, split_label
from rtml.core.errors import ConfigError

T0 = 1_767_225_600_000


def test_csv_cells_are_typed_by_the_schema_and_bad_cells_stay_strings(cfg):
    text = (
        "event_id,account_id,amount,event_time,is_weekend,extra\n"
        f"e1,a1,12.5,{T0},x,1\n"
        "e2,a2,twelve,,x,\n"
    )
    rows = [json.loads(r) for r in csv_records(text, cfg.schema)]
    assert rows[0] == {
        "event_id": "e1",
        "account_id": "a1",
        "amount": 12.5,
        "event_time": T0,
        "is_weekend": "x",
        "extra": 1,  # undeclared (a label, say): as JSON would hold it
    }
    # a cell that does not parse is sent as its string (the job dead-letters it); an empty
    # one is left out (a missing field)
    assert rows[1] == {"event_id": "e2", "account_id": "a2", "amount": "twelve", "is_weekend": "x"}


def test_json_lines_are_sent_as_they_are(cfg, tmp_path):
    f = tmp_path / "events.jsonl"
    f.write_text('{"event_id": "e1"}\n\nnot json\n')
    assert read_records(f, cfg.schema) == ['{"event_id": "e1"}', "not json"]


def test_the_label_is_taken_out_of_the_event_and_sent_after_the_delay(cfg):
    raw = json.dumps({"event_id": "e1", "event_time": T0, "amount": 3.0, "is_fraud": 1})
    event, label = split_label(raw, cfg, "is_fraud", 3_600_000)
    assert "is_fraud" not in json.loads(event)
    lab = cfg.labels
    assert label == {lab.event_id: "e1", lab.label: 1, lab.label_time: T0 + 3_600_000}
    # not JSON, or no label: the record goes on as it is, without a label record
    assert split_label("not json", cfg, "is_fraud", 0) == ("not json", None)
    assert split_label('{"event_id": "e2"}', cfg, "is_fraud", 0) == ('{"event_id": "e2"}', None)


def test_paced_by_rate_and_by_event_time():
    records = [json.dumps({"t": T0 + i * 100}) for i in range(5)]
    start = time.monotonic()
    assert list(paced(records, Pacing(rate=100.0), "t")) == records
    assert time.monotonic() - start >= 0.035  # 4 gaps of 10 ms
    start = time.monotonic()
    list(paced(records, Pacing(speed=10.0), "t"))  # 400 ms of event time at 10x
    assert time.monotonic() - start >= 0.035


def test_one_pacing_at_a_time():
    with pytest.raises(ConfigError, match="two pacings"):
        Pacing(rate=1.0, speed=2.0)
    with pytest.raises(ConfigError, match="not positive"):
        Pacing(rate=0.0)
