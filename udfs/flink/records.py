"""Small picklable helpers shared by the adapters (key selectors, timestamp assigners) and the
tagged records that carry dead letters and late events along the main stream.

A Python stage whose side output is read has two consumers, and PyFlink then cannot fuse it
with the next Python operator: it would cost a stage (a bundle's wait) of its own. So the
parse and intermediate feature stages emit what is not an event (a dead letter, a late
event) as a *tagged record* on their main output, a ``(tag id, JSON)`` tuple, and only the
last Python stage splits those into its side outputs, which feed the sinks.
"""

from __future__ import annotations

import json
import zlib
from typing import Any

from pyflink.common.watermark_strategy import TimestampAssigner

from udfs.sampling import bucket_of

TAGGED_KEYS = 16  # tagged records spread over this many keys (no state is kept for them)


def tagged(tag_id: str, payload: str) -> tuple[str, str]:
    """A record for the side output named ``tag_id``, travelling on the main stream."""
    return (tag_id, payload)


def is_tagged(record: Any) -> bool:
    return type(record) is tuple


def tagged_key(record: tuple[str, str]) -> str:
    """A key no entity can have (entity keys are validated strings without NUL): tagged
    records are forwarded, never touch keyed state, and spread over ``TAGGED_KEYS`` keys."""
    return f"\x00{zlib.crc32(record[1].encode('utf-8', 'surrogatepass')) % TAGGED_KEYS}"


class FieldKey:
    """Key selector reading one field (picklable, unlike a lambda closing over a loop var);
    tagged records get a ``tagged_key``."""

    def __init__(self, field: str) -> None:
        self.field = field

    def __call__(self, record: dict[str, Any] | tuple[str, str]) -> str:
        if type(record) is tuple:
            return tagged_key(record)
        return str(record[self.field])


class BucketKey:
    """Key selector: the monitor bucket of a record's event id (``udfs.sampling``), so an
    event's prediction and its label meet in one bucket at any parallelism."""

    def __init__(self, field: str) -> None:
        self.field = field

    def __call__(self, record: dict[str, Any]) -> str:
        return bucket_of(record[self.field])


class FieldTimestamp(TimestampAssigner):
    """The record's event-time field; a tagged record gets 0, so that it never moves the
    watermark on (its Kafka timestamp could be far ahead of the events' times)."""

    def __init__(self, field: str) -> None:
        self.field = field

    def extract_timestamp(self, value: dict[str, Any] | tuple, record_timestamp: int) -> int:
        if type(value) is tuple:
            return 0
        return int(value[self.field])


def to_json(record: Any) -> str:
    return json.dumps(record, separators=(",", ":"), allow_nan=False, default=str)


def to_json_nan_safe(record: Any) -> str:
    """JSON with NaN/inf as null (strict JSON for downstream consumers)."""
    return json.dumps(_clean(record), separators=(",", ":"), allow_nan=False, default=str)


def _clean(v: Any) -> Any:
    if isinstance(v, float):
        return v if v == v and v not in (float("inf"), float("-inf")) else None
    if isinstance(v, dict):
        return {k: _clean(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_clean(x) for x in v]
    return v
