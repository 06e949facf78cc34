"""Record validation: every defect is caught with a code, the field and a fix."""

from __future__ import annotations

import json

import pytest

from rtml.cli.scenarios.cards import BAD_KINDS, ScenarioOptions, generate, make_bad_record
from rtml.core.errors import RecordError
from udfs.validation import dead_letter, parse_event, parse_label

GOOD = {
    "event_id": "ev-1",
    "account_id": "acct-1",
    "merchant_id": "m-1",
    "amount": 12.5,
    "category": "grocery",
    "channel": "pos",
    "country": "US",
    "event_time": 1_767_225_600_000,
    "age_band": "26-40",
}


def test_valid_event_is_typed(cfg):
    ev = parse_event(json.dumps(GOOD), cfg.schema)
    assert ev["amount"] == 12.5 and isinstance(ev["event_time"], int)


def test_iso_timestamps_are_accepted(cfg):
    ev = parse_event(json.dumps({**GOOD, "event_time": "2026-01-01T00:00:00Z"}), cfg.schema)
    assert ev["event_time"] == 1_767_225_600_000


@pytest.mark.parametrize(
    "change,code,field",
    [
        ({"amount": "12"}, "wrong_type", "amount"),
        ({"amount": -1}, "out_of_range", "amount"),
        ({"amount": True}, "wrong_type", "amount"),
        ({"amount": 1e300}, "out_of_range", "amount"),
        ({"channel": "fax"}, "unknown_category", "channel"),
        ({"account_id": ""}, "bad_length", "account_id"),
        ({"account_id": "x" * 500}, "bad_length", "account_id"),
        ({"account_id": "a\nb"}, "bad_characters", "account_id"),
        ({"event_time": 1_767_225_600}, "timestamp_too_old", "event_time"),
        ({"event_time": 9_999_999_999_999}, "timestamp_in_future", "event_time"),
        ({"event_time": "yesterday"}, "bad_timestamp", "event_time"),
        ({"event_time": "2026-01-01T00:00:00"}, "bad_timestamp", "event_time"),
        ({"merchant_id": None}, "missing_field", "merchant_id"),
    ],
)
def test_defects_name_record_field_and_fix(cfg, change, code, field):
    with pytest.raises(RecordError) as e:
        parse_event(json.dumps({**GOOD, **change}), cfg.schema)
    assert e.value.code == code and e.value.field == field
    assert "ev-1" in str(e.value) and field in str(e.value) and "->" in str(e.value)


@pytest.mark.parametrize(
    "raw,code",
    [
        ("{", "invalid_json"),
        ("[1,2]", "not_an_object"),
        ('{"amount": NaN}', "invalid_json"),
        (b"\xff\xfe{}", "invalid_utf8"),
        ("x" * 1_000_001, "too_large"),
    ],
)
def test_undecodable_input(cfg, raw, code):
    with pytest.raises(RecordError) as e:
        parse_event(raw, cfg.schema)
    assert e.value.code == code


def test_every_generated_bad_kind_is_rejected(cfg):
    sc = generate(ScenarioOptions(events=200))
    import numpy as np

    rng = np.random.default_rng(0)
    for j in range(len(BAD_KINDS) * 3):
        raw, kind = make_bad_record(sc.events[j], j, rng)
        with pytest.raises(RecordError):
            parse_event(raw, cfg.schema)


def test_dead_letter_keeps_reason_and_raw(cfg):
    raw = json.dumps({**GOOD, "amount": "x"})
    try:
        parse_event(raw, cfg.schema)
    except RecordError as e:
        d = dead_letter(raw, e, "cards.events")
    assert (
        d["error"] == "wrong_type"
        and d["field"] == "amount"
        and d["raw"] == raw
        and d["record_id"] == "ev-1"
    )


def test_labels(cfg):
    assert (
        parse_label('{"event_id": "e", "is_fraud": 1, "label_time": 1767225600000}', cfg.labels)[
            "label"
        ]
        == 1
    )
    with pytest.raises(RecordError, match="send 0 or 1"):
        parse_label('{"event_id": "e", "is_fraud": 2, "label_time": 1767225600000}', cfg.labels)


def test_scenario_emits_every_record_once():
    sc = generate(ScenarioOptions(events=3000, bad_fraction=0.05, seed=11))
    raws = list(sc.raw_events())
    assert len(raws) == len(sc.events) + len(sc.bad)
    assert (
        generate(ScenarioOptions(events=3000, bad_fraction=0.05, seed=11)).events == sc.events
    )  # seeded


def test_every_hostile_kind_gets_its_code_and_a_fix(cfg):
    from rtml.cli.scenarios.hostile import KINDS, hostile_records

    records = hostile_records([GOOD], 3 * len(KINDS), seed=4)
    assert {r.kind for r in records} == set(KINDS)
    for r in records:
        with pytest.raises(RecordError) as e:
            parse_event(r.raw, cfg.schema)
        assert e.value.code == r.code, (r.kind, e.value.message)
        assert "->" in e.value.message, r.kind
        dl = dead_letter(r.raw, e.value, "events")
        assert dl["error"] == r.code and len(dl["raw"]) <= 4096


def test_unknown_fields_can_be_ignored(cfg):
    from dataclasses import replace

    lenient = replace(cfg.schema, unknown_fields="ignore")
    assert parse_event(json.dumps({**GOOD, "debug": 1}), lenient)["amount"] == 12.5
    with pytest.raises(RecordError, match="'debug' is not in the schema"):
        parse_event(json.dumps({**GOOD, "debug": 1}), cfg.schema)


def test_a_key_twice_in_one_object_is_refused(cfg):
    with pytest.raises(RecordError, match="'amount' appears twice"):
        parse_event(json.dumps(GOOD)[:-1] + ', "amount": 99}', cfg.schema)
