"""Hostile input: many kinds of bad records, each derived from a valid event, with the
dead-letter code the job must give it.

Used by the reliability test (thousands mixed into a valid stream) and by anyone who wants
to try their own job against the same garbage: ``hostile_records(events, n, seed)``.

Every kind is a function of (a valid event, a random generator) returning the raw bytes to
produce and the expected code. Duplicates (a valid event sent again) are not here: they are
only bad relative to the stream, see ``resend``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

DAY_MS = 86_400_000
HUGE_STRING = 200_000  # characters: far over any max_length, well under Kafka's 1 MB


@dataclass(frozen=True)
class HostileRecord:
    raw: bytes
    kind: str
    code: str  # the dead-letter error code the job must give it
    record_id: str


def _dump(e: dict) -> bytes:
    return json.dumps(e).encode()


def _with(field: str, value) -> Callable[[dict, np.random.Generator], bytes]:
    return lambda e, rng: _dump({**e, field: value})


def _without(field: str) -> Callable[[dict, np.random.Generator], bytes]:
    return lambda e, rng: _dump({k: v for k, v in e.items() if k != field})


def _replace_amount(token: str) -> Callable[[dict, np.random.Generator], bytes]:
    def make(e: dict, rng: np.random.Generator) -> bytes:
        return _dump({**e, "amount": 1.5}).replace(b'"amount": 1.5', f'"amount": {token}'.encode())

    return make


def _truncated(e: dict, rng: np.random.Generator) -> bytes:
    raw = _dump(e)
    return raw[: int(rng.integers(1, len(raw) - 1))]


def _invalid_utf8(e: dict, rng: np.random.Generator) -> bytes:
    raw = _dump({**e, "merchant_id": "m-XX"})
    bad = [b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80"][int(rng.integers(0, 4))]
    return raw.replace(b"XX", bad)


def _duplicate_key(e: dict, rng: np.random.Generator) -> bytes:
    return _dump(e)[:-1] + b', "amount": 1.0}'


# kind -> (builder, expected dead-letter code)
KINDS: dict[str, tuple[Callable[[dict, np.random.Generator], bytes], str]] = {
    "truncated_json": (_truncated, "invalid_json"),
    "empty_record": (lambda e, rng: b"", "invalid_json"),
    "not_json": (lambda e, rng: b"<event id=1/>", "invalid_json"),
    "deeply_nested": (lambda e, rng: b"[" * 100_000 + b"]" * 100_000, "invalid_json"),
    "duplicate_json_key": (_duplicate_key, "invalid_json"),
    "invalid_utf8": (_invalid_utf8, "invalid_utf8"),
    "json_array": (lambda e, rng: _dump([e]), "not_an_object"),
    "json_number": (lambda e, rng: b"42", "not_an_object"),
    "json_null": (lambda e, rng: b"null", "not_an_object"),
    "amount_as_string": (_with("amount", "12.50"), "wrong_type"),
    "amount_as_bool": (_with("amount", True), "wrong_type"),
    "account_as_number": (_with("account_id", 12345), "wrong_type"),
    "account_as_object": (_with("account_id", {"id": 1}), "wrong_type"),
    "missing_amount": (_without("amount"), "missing_field"),
    "missing_account": (_without("account_id"), "missing_field"),
    "missing_event_time": (_without("event_time"), "missing_field"),
    "null_merchant": (_with("merchant_id", None), "missing_field"),
    "extra_field": (_with("debug", True), "unknown_field"),
    "odd_field_name": (_with("amount\u0000", 1.0), "unknown_field"),
    "nan_amount": (_replace_amount("NaN"), "invalid_json"),
    "infinite_amount": (_replace_amount("Infinity"), "invalid_json"),
    "overflowing_amount": (_replace_amount("1e400"), "not_finite"),
    "huge_amount": (_with("amount", 1e300), "out_of_range"),
    "huge_integer_amount": (_with("amount", 10**40), "out_of_range"),
    "endless_digits": (_replace_amount("9" * 5000), "invalid_json"),
    "negative_amount": (_with("amount", -25.0), "out_of_range"),
    "huge_string_key": (_with("account_id", "a" * HUGE_STRING), "bad_length"),
    "empty_key": (_with("account_id", ""), "bad_length"),
    "control_char_key": (_with("account_id", "acct\n42"), "bad_characters"),
    "nul_in_key": (_with("account_id", "acct\u000042"), "bad_characters"),
    "zero_width_key": (_with("merchant_id", "m-\u200b1"), "bad_characters"),
    "bidi_override_key": (_with("account_id", "acct-\u202e24"), "bad_characters"),
    "timestamp_epoch_zero": (_with("event_time", 0), "timestamp_too_old"),
    "timestamp_in_seconds": (_with("event_time", 1_767_225_600), "timestamp_too_old"),
    "timestamp_far_future": (_with("event_time", 32_503_680_000_000), "timestamp_in_future"),
    "timestamp_no_zone": (_with("event_time", "2026-01-01T00:00:00"), "bad_timestamp"),
    "timestamp_garbage": (_with("event_time", "yesterday"), "bad_timestamp"),
    "timestamp_bool": (_with("event_time", False), "bad_timestamp"),
    "unknown_category": (_with("channel", "carrier-pigeon"), "unknown_category"),
    "unknown_country": (_with("country", "Atlantis"), "unknown_category"),
}


def hostile_records(
    templates: Sequence[dict], n: int, seed: int = 0, prefix: str = "hostile"
) -> list[HostileRecord]:
    """``n`` bad records cycling through every kind, each from a random valid template (with
    its own event id, ``<prefix>-<i>``, so its dead letter can be matched)."""
    rng = np.random.default_rng(seed)
    kinds = list(KINDS)
    out = []
    for i in range(n):
        kind = kinds[i % len(kinds)]
        build, code = KINDS[kind]
        rid = f"{prefix}-{i:06d}"
        template = {**templates[int(rng.integers(0, len(templates)))], "event_id": rid}
        out.append(HostileRecord(build(template, rng), kind, code, rid))
    return out


def resend(events: Sequence[dict], n: int, seed: int = 0) -> list[tuple[int, bytes]]:
    """``n`` valid events sent again right after the original (a producer retry): (position
    of the original, raw bytes). Each must be dead-lettered as ``duplicate_event_id``."""
    rng = np.random.default_rng(seed)
    picks = sorted(rng.choice(len(events), size=n, replace=False).tolist())
    return [(int(i), _dump(events[int(i)])) for i in picks]
