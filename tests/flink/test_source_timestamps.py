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
from udfs.validation import parse_timestamp

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
        s.event_time, s.min_time_ms, s.max_future_ms
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


def test_never_later_than_the_parser_over_a_scenario_and_its_malformed_records(cfg, assigner):
    sc = generate(ScenarioOptions(seed=3, events=400, days=0.5, bad_fraction=0.3))
    checked = 0
    for raw in sc.raw_events():
        java, python = _java(assigner, raw), _python(cfg, raw)
        if java != 0:
            assert python is not None and python >= java, raw[:200]
            checked += 1
        if python is not None and isinstance(json.loads(raw)[cfg.schema.event_time], int):
            assert java == python, raw[:200]
    assert checked > 300
