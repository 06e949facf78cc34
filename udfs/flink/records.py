"""Small picklable helpers shared by the adapters (key selectors, timestamp assigners)."""

from __future__ import annotations

import json
from typing import Any

from pyflink.common.watermark_strategy import TimestampAssigner


class FieldKey:
    """Key selector reading one field (picklable, unlike a lambda closing over a loop var)."""

    def __init__(self, field: str) -> None:
        self.field = field

    def __call__(self, record: dict[str, Any]) -> str:
        return str(record[self.field])


class ConstantKey:
    """Routes every record to one key: for global, low-volume monitors."""

    def __init__(self, key: str = "all") -> None:
        self.key = key

    def __call__(self, record: Any) -> str:
        return self.key


class FieldTimestamp(TimestampAssigner):
    def __init__(self, field: str) -> None:
        self.field = field

    def extract_timestamp(self, value: dict[str, Any], record_timestamp: int) -> int:
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
