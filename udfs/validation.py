"""Parse and validate raw input records against the declared schema.

``parse_event`` either returns a clean dict (typed values, event time as epoch ms) or raises
``RecordError`` naming the record, the field and the fix. It never evaluates or unpickles
anything: input is decoded with ``json.loads`` only.
"""

from __future__ import annotations

import json
import math
import time
from datetime import datetime
from typing import Any, NoReturn

from rtml.core.config import UNIT_MS, EventSchema, FieldSpec, LabelSettings
from rtml.core.errors import RecordError

MAX_RAW_BYTES = 1_000_000


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    d = dict(pairs)
    if len(d) != len(pairs):
        seen: set[str] = set()
        dup = next(k for k, _ in pairs if k in seen or seen.add(k))
        raise ValueError(f"key {dup[:40]!r} appears twice in one object")
    return d


def _loads(raw: str | bytes) -> Any:
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise RecordError(
                "invalid_utf8",
                f"record is not valid UTF-8 ({e.reason} at byte {e.start}) -> encode records as UTF-8 at the producer",
            ) from None
    if "\ufffd" in raw:
        raise RecordError(
            "invalid_utf8",
            "record contains bytes that are not valid UTF-8 (decoded as U+FFFD) -> encode records as UTF-8 at the producer",
        )
    if len(raw) > MAX_RAW_BYTES:
        raise RecordError(
            "too_large",
            f"record is {len(raw)} bytes, over the {MAX_RAW_BYTES} byte limit -> send large payloads by reference, not inline",
        )
    try:
        return json.loads(raw, parse_constant=_reject_constant, object_pairs_hook=_unique_keys)
    except (ValueError, RecursionError) as e:
        raise RecordError(
            "invalid_json", f"record is not valid JSON: {e} -> send one JSON document per message"
        ) from None


def _record_id(doc: Any, id_field: str) -> str | None:
    if isinstance(doc, dict):
        v = doc.get(id_field)
        if isinstance(v, str) and 0 < len(v) <= 128:
            return v
    return None


NO_ID = "<no event id>"


def json_object(raw: str | bytes, id_field: str, what: str, fix: str) -> tuple[dict[str, Any], str]:
    """Decode one record that must be a JSON object; returns it and its id (or ``NO_ID``)."""
    doc = _loads(raw)
    rid = _record_id(doc, id_field) or NO_ID
    if not isinstance(doc, dict):
        raise RecordError(
            "not_an_object",
            f"{what} {rid}: top level is a JSON {type(doc).__name__}, not an object -> {fix}",
        )
    return doc, rid


def parse_timestamp(value: Any, unit_ms: int = 1) -> int:
    """Epoch milliseconds (int/float; epoch seconds with ``unit_ms`` 1000) or ISO-8601 with a
    zone -> int epoch ms."""
    if isinstance(value, bool):
        raise ValueError("a boolean is not a timestamp")
    if isinstance(value, int):
        return value * unit_ms
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("timestamp is not finite")
        return int(value * unit_ms)
    if isinstance(value, str):
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
        if dt.tzinfo is None:
            raise ValueError("ISO-8601 timestamp has no time zone")
        return int(dt.timestamp() * 1000)
    raise ValueError(f"expected epoch milliseconds or ISO-8601, got {type(value).__name__}")


def _check_field(f: FieldSpec, v: Any, rid: str, now_ms: int, schema: EventSchema) -> Any:
    def bad(code: str, what: str, fix: str) -> RecordError:
        return RecordError(
            code, f"record {rid}: field '{f.name}' {what} -> {fix}", field=f.name, record_id=rid
        )

    t = f.type
    if t in ("string", "category"):
        if not isinstance(v, str):
            raise bad(
                "wrong_type",
                f"must be a string, got {type(v).__name__} {str(v)[:40]!r}",
                "send a JSON string",
            )
        if not v or len(v) > f.max_length:
            raise bad(
                "bad_length",
                f"has length {len(v)}, allowed 1..{f.max_length}",
                "send a non-empty, shorter value",
            )
        if not v.isprintable():
            raise bad(
                "bad_characters",
                "contains control characters",
                "strip control characters at the producer",
            )
        if t == "category" and f.values and v not in f.values:
            raise bad(
                "unknown_category",
                f"has unknown value {v[:40]!r}",
                f"use one of {list(f.values)} or add it to the schema",
            )
        return v
    if t in ("float", "int"):
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise bad(
                "wrong_type",
                f"must be a number, got {type(v).__name__} {str(v)[:40]!r}",
                "send a JSON number",
            )
        if isinstance(v, float) and not math.isfinite(v):
            raise bad("not_finite", f"is {v}", "send a finite number")
        if t == "int" and isinstance(v, float) and not v.is_integer():
            raise bad("wrong_type", f"must be an integer, got {v}", "send a whole number")
        if abs(v) > 1e15:
            raise bad("out_of_range", f"is {v:.3g}, beyond +-1e15", "check the producer's units")
        if f.min is not None and v < f.min:
            raise bad(
                "out_of_range",
                f"is {v}, below the minimum {f.min}",
                "send a value within the declared range",
            )
        if f.max is not None and v > f.max:
            raise bad(
                "out_of_range",
                f"is {v}, above the maximum {f.max}",
                "send a value within the declared range",
            )
        return float(v) if t == "float" else int(v)
    if t == "bool":
        if not isinstance(v, bool):
            raise bad(
                "wrong_type", f"must be true or false, got {str(v)[:40]!r}", "send a JSON boolean"
            )
        return v
    # timestamp
    try:
        ts = parse_timestamp(v, UNIT_MS[f.unit])
    except (ValueError, OverflowError) as e:
        raise bad(
            "bad_timestamp",
            f"is not a timestamp ({e})",
            'send epoch milliseconds (or seconds, with unit = "s") or ISO-8601 with a zone',
        ) from None
    if ts < schema.min_time_ms:
        raise bad(
            "timestamp_too_old",
            f"is {ts}, before {schema.min_time_ms} (2000-01-01)",
            'send epoch milliseconds, or declare the field\'s unit = "s" for seconds',
        )
    if ts > now_ms + schema.max_future_ms:
        raise bad(
            "timestamp_in_future",
            f"is {ts}, more than {schema.max_future_ms // 1000}s ahead of now",
            "fix the producer's clock or time zone",
        )
    return ts


def _reject_unknown(doc: dict[str, Any], schema: EventSchema, rid: str) -> NoReturn:
    extra = next(k for k in doc if k not in schema.field_names)
    raise RecordError(
        "unknown_field",
        f'record {rid}: field {extra[:40]!r} is not in the schema -> remove it at the producer, declare it in [schema.fields], or set [schema] unknown_fields = "ignore"',
        field=extra[:40],
        record_id=rid,
    )


def parse_event(raw: str | bytes, schema: EventSchema, now_ms: int | None = None) -> dict[str, Any]:
    doc, rid = json_object(raw, schema.event_id, "record", "send one JSON object per message")
    now = int(time.time() * 1000) if now_ms is None else now_ms
    if schema.unknown_fields == "reject" and not schema.field_names.issuperset(doc):
        _reject_unknown(doc, schema, rid)
    out: dict[str, Any] = {}
    for f in schema.fields:
        v = doc.get(f.name)
        if v is None:
            if f.required:
                raise RecordError(
                    "missing_field",
                    f"record {rid}: required field '{f.name}' is missing or null -> add it at the producer",
                    field=f.name,
                    record_id=rid,
                )
            out[f.name] = None
            continue
        out[f.name] = _check_field(f, v, rid, now, schema)
    return out


def parse_label(raw: str | bytes, labels: LabelSettings) -> dict[str, Any]:
    doc, rid = json_object(raw, labels.event_id, "label", "send one JSON object per label")
    if rid == NO_ID:
        raise RecordError(
            "missing_field",
            f"label without a valid '{labels.event_id}' -> include the scored event's id",
            field=labels.event_id,
        )
    y = doc.get(labels.label)
    if isinstance(y, bool):
        y = int(y)
    if y not in (0, 1):
        raise RecordError(
            "bad_label",
            f"label {rid}: field '{labels.label}' is {str(y)[:40]!r} -> send 0 or 1",
            field=labels.label,
            record_id=rid,
        )
    try:
        lt = parse_timestamp(doc.get(labels.label_time))
    except (ValueError, OverflowError) as e:
        raise RecordError(
            "bad_timestamp",
            f"label {rid}: field '{labels.label_time}' is not a timestamp ({e}) -> send epoch milliseconds",
            field=labels.label_time,
            record_id=rid,
        ) from None
    return {"event_id": rid, "label": int(y), "label_time": lt}


def dead_letter(raw: str | bytes, err: RecordError, source: str) -> dict[str, Any]:
    """The dead-letter record: the reason plus the raw input (truncated), never lost."""
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    return {
        "source": source,
        "error": err.code,
        "field": err.field,
        "record_id": err.record_id,
        "reason": err.message,
        "raw": text[:4096],
        "raw_truncated": len(text) > 4096,
    }


def parse_score(raw: str | bytes, schema: EventSchema) -> dict[str, Any]:
    """A record of the scores topic, for the monitoring job (the scoring job's own output)."""
    doc, rid = json_object(raw, schema.event_id, "score", "read the scores topic of an rtml job")
    for name, kinds in (
        (schema.event_time, (int,)),
        ("score", (int, float)),
        ("flagged", (int,)),
        ("model_version", (str,)),
        ("inputs", (dict,)),
    ):
        v = doc.get(name)
        if isinstance(v, bool) or not isinstance(v, kinds):
            raise RecordError(
                "bad_score",
                f"score {rid}: field '{name}' is missing or {type(v).__name__} -> point the monitoring job at an rtml scores topic",
                field=name,
                record_id=rid,
            )
    return doc
