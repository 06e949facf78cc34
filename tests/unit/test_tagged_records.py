"""Tagged records (dead letters and late events on the main stream), their keys and event
time, and the expiry timers' coalescing: the pieces the fused Flink stages rely on."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from udfs.flink.features import DAY_MS, MIN_GRANULE_MS, coalesced, expiry_granule_ms
from udfs.flink.records import (
    TAGGED_KEYS,
    FieldKey,
    FieldTimestamp,
    is_tagged,
    tagged,
    tagged_key,
)


def test_a_tagged_record_is_told_from_an_event():
    letter = tagged("dead-letters", '{"error":"invalid_json"}')
    assert is_tagged(letter) and not is_tagged({"event_id": "e1"})
    assert letter[0] == "dead-letters"


@given(st.text())
def test_tagged_keys_are_stable_few_and_never_an_entity_key(payload):
    key = FieldKey("account_id")(tagged("late-events", payload))
    assert key == tagged_key(tagged("late-events", payload))  # stable: a fixed hash
    assert key.startswith("\x00")  # validated entity keys hold no control characters
    assert 0 <= int(key[1:]) < TAGGED_KEYS
    assert FieldKey("account_id")({"account_id": "a-1"}) == "a-1"


def test_a_tagged_record_never_moves_the_watermark():
    ts = FieldTimestamp("event_time")
    assert ts.extract_timestamp(tagged("dead-letters", "{}"), 1_900_000_000_000) == 0
    assert ts.extract_timestamp({"event_time": 1_700_000_000_000}, 0) == 1_700_000_000_000


@given(st.integers(min_value=1, max_value=400 * DAY_MS))
def test_the_expiry_granule_is_a_thirtieth_of_the_ttl_within_a_second_and_a_day(ttl):
    g = expiry_granule_ms(ttl)
    assert MIN_GRANULE_MS <= g <= DAY_MS
    assert g == min(DAY_MS, max(MIN_GRANULE_MS, ttl // 30))


@given(st.integers(min_value=0, max_value=2**45), st.sampled_from([1000, 60_000, DAY_MS]))
def test_coalesced_rounds_up_to_the_granule(t, granule):
    c = coalesced(t, granule)
    assert c % granule == 0 and t <= c < t + granule
