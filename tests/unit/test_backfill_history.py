"""`rtml backfill`'s reading of a history file: the label field taken out, --until on event
time (a record whose time cannot be read is kept, for the job to judge), and its counters."""

from __future__ import annotations

import json

import pytest

from rtml.cli.commands.backfill import _totals, history_records
from rtml.core.errors import ConfigError


def _event(i: int, t: int) -> dict:
    return {
        "event_id": f"e{i}",
        "event_time": t,
        "account_id": "a1",
        "merchant_id": "m1",
        "amount": 10.0 + i,
        "channel": "web",
        "age_band": "25-34",
        "is_fraud": i % 2,
    }


def test_until_and_label_field(cfg, tmp_path):
    lines = [json.dumps(_event(i, 1_000 * i)) for i in range(5)] + ["{broken", "[1, 2]"]
    path = tmp_path / "history.jsonl"
    path.write_text("\n".join(lines) + "\n")
    got = history_records(cfg, path, until_ms=2_000, label_field="is_fraud")
    docs = [json.loads(r) for r in got if r.startswith("{") and r != "{broken"]
    assert [d["event_id"] for d in docs] == ["e0", "e1", "e2"]
    assert all("is_fraud" not in d for d in docs)
    assert "{broken" in got and "[1, 2]" in got  # unreadable times are kept
    assert len(history_records(cfg, path, None, None)) == len(lines)


def test_nothing_to_backfill_is_a_one_line_error(cfg, tmp_path):
    path = tmp_path / "history.jsonl"
    path.write_text(json.dumps(_event(1, 5_000)) + "\n")
    with pytest.raises(ConfigError, match="no records to backfill up to --until"):
        history_records(cfg, path, until_ms=1_000, label_field=None)


def test_totals_sum_the_counters_over_operators():
    metrics = {
        "parse": {"0.parse.rtml.records_in": 10.0, "0.parse.rtml.dead_lettered": 2.0},
        "features": {"0.f.rtml.late_events": 1.0, "1.f.rtml.late_events": 2.0, "x.other": 9.0},
    }
    assert _totals(metrics) == {
        "records_in": 10,
        "dead_lettered": 2,
        "duplicates": 0,
        "late_events": 3,
    }
