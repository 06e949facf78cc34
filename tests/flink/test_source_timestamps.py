"""Event-time order's timestamps, read in the Kafka source by the JVM class
``rtml.flink.JsonFieldTimestamps``, agree with the Python parser's: for every record the
class gives a time, the parser accepts the record's time field and reads it as no earlier
(so a watermark from the source never passes the time the feature stages use), and for
epoch milliseconds the two are equal. A record the parser rejects gets 0: it moves no
watermark."""

from __future__ import annotations

import json
import time

import pytest

from rtml.cli.scenarios.cards import ScenarioOptions, generate
from rtml.core.errors import RecordError
from udfs.validation import parse_event, parse_timestamp

pytestmark = pytest.mark.flink


@pytest.fixture(scope="module")
def assigner(cfg):
    from pyflink.common import Configuration
    from pyflink.datastream import StreamExecutionEnvironment
    from pyflink.java_gateway import get_gateway

    from deploy import jars

    conf = Configuration()
    conf.set_string("pipeline.jars", jars.job_jar().resolve().as_uri())
    StreamExecutionEnvironment.get_execution_environment(conf)  # loads the job jar
    s = cfg.schema
    return get_gateway().jvm.rtml.flink.JsonFieldTimestamps(
        s.event_time, s.min_time_ms, s.max_future_ms, 1
    )


def _java(assigner, raw: str | bytes) -> int:
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    return int(assigner.extractTimestamp(bytearray(data), -1))


def _python(cfg, raw: str | bytes) -> int | None:
    """The parser's time of the record's time field, or None when it rejects it."""
    s = cfg.schema
    try:
        doc = json.loads(raw)
        ts = parse_timestamp(doc[s.event_time])
    except (ValueError, KeyError, TypeError, OverflowError, RecordError):
        return None
    if ts < s.min_time_ms or ts > time.time() * 1000 + s.max_future_ms:
        return None
    return ts


CASES = [
    ('{"event_time": 1767225600123, "x": 1}', 1767225600123),
    ('{"x": {"event_time": 5}, "event_time": 1767225600123}', 1767225600123),  # nested: skipped
    ('{"event_time": 1767225600123.9}', 1767225600123),  # a float truncates, as int() does
    ('{"event_time": "2026-01-01T00:00:00.123Z"}', 1767225600122),  # ISO: 1 ms earlier
    ('{"event_time": "2026-01-01T01:00:00.123+01:00"}', 1767225600122),
    ('{"event_time": "2026-01-01T00:00:00"}', 0),  # no zone: the parser rejects it too
    ('{"event_time": true}', 0),
    ('{"event_time": null}', 0),
    ('{"event_time": 1767225600}', 0),  # seconds: before 2000 as milliseconds
    ('{"event_time": 99999999999999999999999}', 0),
    ('{"event_time": 4102444800000}', 0),  # 2100: beyond max_future of the wall clock
    ('{"event_time": 1767225600123', 0),  # truncated
    ('{"event_time": 1767225600123} {"a": 1}', 0),  # two values
    ("[1767225600123]", 0),
    ("not json", 0),
    ('{"no_time": 1}', 0),
]


@pytest.mark.parametrize("raw,want", CASES)
def test_cases(assigner, raw, want):
    assert _java(assigner, raw) == want


def test_invalid_utf8_moves_no_watermark(assigner):
    assert _java(assigner, b'{"event_time": 1767225600123, "m": "\xff"}') == 0


def _accepted(cfg, raw: str) -> int | None:
    """The event time of a record the parser accepts whole, or None."""
    try:
        return parse_event(raw, cfg.schema)[cfg.schema.event_time]
    except RecordError:
        return None


def test_never_later_than_the_parser_over_a_scenario_and_its_malformed_records(cfg, assigner):
    """Every time the class gives is the parser's reading of the field or later than it never;
    every valid event's time (epoch ms here) is the parser's exactly."""
    sc = generate(ScenarioOptions(seed=3, events=400, days=0.5, bad_fraction=0.3))
    checked = valid = 0
    for raw in sc.raw_events():
        java, field = _java(assigner, raw), _python(cfg, raw)
        if java != 0:
            assert field is not None and field >= java, raw[:200]
            checked += 1
        accepted = _accepted(cfg, raw)
        if accepted is not None:
            assert java == accepted, raw[:200]
            valid += 1
    assert checked > 300 and valid == len(sc.events)


def test_epoch_seconds_when_the_field_says_so(cfg, assigner):  # assigner: the jar loaded
    """``unit = "s"``: numbers are seconds, read as the parser reads them."""
    from pyflink.java_gateway import get_gateway

    s = cfg.schema
    seconds = get_gateway().jvm.rtml.flink.JsonFieldTimestamps(
        s.event_time, s.min_time_ms, s.max_future_ms, 1000
    )
    assert _java(seconds, '{"event_time": 1767225600}') == 1767225600000
    assert _java(seconds, '{"event_time": 1767225600.5}') == 1767225600500
    assert parse_timestamp(1767225600, 1000) == 1767225600000
    assert _java(seconds, '{"event_time": 9223372036854775}') == 0  # overflows as ms
