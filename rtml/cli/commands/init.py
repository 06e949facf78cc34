"""`rtml init --sample FILE`: a commented job config from a sample of one's own events.

It reads a JSON-lines or CSV sample and infers each field's type, range (with headroom) and
categories, the event-id and event-time fields, the entity keys, a starter feature set per
entity, the model's raw inputs and monitoring windows sized to the sample's time span.
Everything it guessed is marked ``# guess`` in the file; what it cannot settle is a one-line
error naming the field and the flag that settles it. The config it writes is parsed as the
job parses it before it is written, so it runs as written.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from rtml.cli.commands.file_replay import json_cell
from rtml.core.config import parse_config
from rtml.core.errors import ConfigError

EPOCH_MS = (946_684_800_000, 4_102_444_800_000)  # 2000 .. 2100 in epoch milliseconds
EPOCH_S = (946_684_800, 4_102_444_800)
MAX_CATEGORIES = 50
TIME_HINTS = ("time", "timestamp", "ts", "date", "at")
HOUR_MS = 3_600_000


@dataclass
class Column:
    name: str
    values: list[Any] = field(default_factory=list)
    missing: int = 0

    @property
    def present(self) -> list[Any]:
        return [v for v in self.values if v is not None]


@dataclass(frozen=True)
class Inferred:
    name: str
    type: str  # string, category, int, float, bool, timestamp
    required: bool
    min: float | None = None
    max: float | None = None
    values: tuple[str, ...] = ()
    max_length: int | None = None
    distinct: int = 0
    time_unit: str | None = None  # "ms" or "iso" for timestamps


@dataclass(frozen=True)
class Choices:
    label: str | None = None
    sensitive: str | None = None
    event_id: str | None = None
    event_time: str | None = None
    entities: tuple[str, ...] = ()
    name: str | None = None
    labels: Path | None = None  # a sample of the labels topic, when labels come on their own


def read_sample(path: Path) -> list[dict[str, Any]]:
    """The sample's records as objects (lines that are not JSON objects are skipped)."""
    if not path.is_file():
        raise ConfigError(
            f"{path} does not exist", hint="pass --sample with a JSON-lines or CSV file"
        )
    text = path.read_text(encoding="utf-8", errors="replace")
    if path.suffix.lower() in (".csv", ".tsv"):
        delim = "\t" if path.suffix.lower() == ".tsv" else ","
        rows = [
            {k: json_cell(v) for k, v in r.items() if k is not None and v is not None}
            for r in csv.DictReader(io.StringIO(text), delimiter=delim)
        ]
    else:
        rows = []
        for line in text.splitlines():
            try:
                doc = json.loads(line)
            except ValueError:
                continue
            if isinstance(doc, dict):
                rows.append(doc)
    if len(rows) < 20:
        raise ConfigError(
            f"{path}: {len(rows)} records, too few to infer a schema from",
            hint="pass a sample of at least a few hundred events",
        )
    return rows


def columns(rows: list[dict[str, Any]]) -> dict[str, Column]:
    names: list[str] = []
    for r in rows:
        for k in r:
            if k not in names:
                names.append(k)
    cols = {n: Column(n) for n in names}
    for r in rows:
        for n, c in cols.items():
            v = r.get(n)
            c.values.append(v)
            if v is None:
                c.missing += 1
    return cols


def _iso_ms(v: str) -> int | None:
    try:
        dt = datetime.fromisoformat(v.replace("Z", "+00:00"))
    except ValueError:
        return None
    return None if dt.tzinfo is None else int(dt.timestamp() * 1000)


def _headroom(lo: float, hi: float, integral: bool) -> tuple[float, float]:
    """The observed range widened by half of it each way (not below 0 when all were >= 0)."""
    span = (hi - lo) or abs(hi) or 1.0
    a, b = lo - span / 2, hi + span / 2
    if lo >= 0:
        a = max(0.0, a)
    if integral:
        return float(math.floor(a)), float(math.ceil(b))
    return round(a, 6), round(b, 6)


# a field's values of its main kind must make up this share of the sample; the rest (a
# sample's malformed records) are left out of the inference
MAIN_KIND_SHARE = 0.9
# a field missing from more than this share of the records is optional (a few missing ones
# are taken for malformed records, which the job then dead-letters)
OPTIONAL_SHARE = 0.02


def _kind_of(v: Any) -> str:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, (int, float)):
        return "number"
    return "string" if isinstance(v, str) else type(v).__name__


def infer(col: Column, n_rows: int) -> Inferred:
    present = col.present
    kinds = Counter(_kind_of(v) for v in present)
    main, count = kinds.most_common(1)[0] if kinds else ("string", 0)
    if count < MAIN_KIND_SHARE * len(present):
        raise ConfigError(
            f"field {col.name!r} holds values of several kinds ({', '.join(sorted(kinds))}) in the sample",
            hint=f"clean the sample, or leave {col.name!r} out of it",
        )
    vals = [v for v in present if _kind_of(v) == main]
    required = col.missing <= OPTIONAL_SHARE * n_rows
    distinct = len({json.dumps(v, sort_keys=True) for v in vals})
    if vals and all(isinstance(v, bool) for v in vals):
        return Inferred(col.name, "bool", required, distinct=distinct)
    nums = [v for v in vals if isinstance(v, (int, float)) and not isinstance(v, bool)]
    if vals and len(nums) == len(vals):
        integral = all(isinstance(v, int) for v in nums)
        lo, hi = min(nums), max(nums)
        hinted = any(
            h in col.name.lower().split("_") or col.name.lower().endswith(h) for h in TIME_HINTS
        )
        if integral and EPOCH_MS[0] <= lo and hi <= EPOCH_MS[1]:
            return Inferred(col.name, "timestamp", required, distinct=distinct, time_unit="ms")
        if integral and hinted and EPOCH_S[0] <= lo and hi <= EPOCH_S[1]:
            return Inferred(col.name, "timestamp", required, distinct=distinct, time_unit="s")

        a, b = _headroom(lo, hi, integral)
        return Inferred(col.name, "int" if integral else "float", required, a, b, distinct=distinct)
    strs = [v for v in vals if isinstance(v, str)]
    if vals and len(strs) == len(vals):
        if all(_iso_ms(v) is not None for v in strs[:200]):
            return Inferred(col.name, "timestamp", required, distinct=distinct, time_unit="iso")
        longest = max(len(v) for v in strs)
        if distinct <= MAX_CATEGORIES and distinct <= max(2, len(strs) // 4):
            return Inferred(
                col.name, "category", required, values=tuple(sorted(set(strs))), distinct=distinct
            )
        return Inferred(
            col.name, "string", required, max_length=max(64, 2 * longest), distinct=distinct
        )
    kinds = sorted({type(v).__name__ for v in vals})
    raise ConfigError(
        f"field {col.name!r} holds values of several kinds ({', '.join(kinds)}) in the sample",
        hint=f"clean the sample, or leave {col.name!r} out of it",
    )


def _id_like(f: Inferred) -> bool:
    """Categories whose values read as ids (``d8``, ``s12``) rather than names (``lisbon``)."""
    return bool(f.values) and sum(any(c.isdigit() for c in v) for v in f.values) >= 0.8 * len(
        f.values
    )


def _one(candidates: list[str], what: str, flag: str) -> str:
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        raise ConfigError(
            f"no field of the sample looks like the {what}", hint=f"name it with {flag} FIELD"
        )
    raise ConfigError(
        f"several fields could be the {what}: {', '.join(candidates)}",
        hint=f"name it with {flag} FIELD",
    )


def _toml(v: Any) -> str:
    return json.dumps(v)


def _window(ms: float) -> str:
    hours = max(1, round(ms / HOUR_MS))
    return f"{hours}h" if hours < 48 else f"{max(1, round(hours / 24))}d"


@dataclass(frozen=True)
class LabelFields:
    event_id: str
    label: str
    label_time: str


def label_fields(rows: list[dict[str, Any]], event_ids: set[str], label: str | None) -> LabelFields:
    """The labels sample's fields: the one holding the events' ids, the 0/1 label (``label``
    when named) and the label time."""
    cols = columns(rows)
    ids = [
        k
        for k, c in cols.items()
        if len({str(v) for v in c.present} & event_ids) >= 0.5 * max(1, len(c.present))
    ]
    kinds = {k: infer(c, len(rows)) for k, c in cols.items()}
    binary = [
        k
        for k, f in kinds.items()
        if f.type == "bool" or (f.type == "int" and set(cols[k].present) <= {0, 1})
    ]
    times = [k for k, f in kinds.items() if f.type == "timestamp"]
    eid = _one(
        ids,
        "labels' event id (the scored event's id)",
        "a labels sample that names the events' ids;",
    )
    lab = label or _one(binary, "label (0/1) in the labels sample", "--label")
    if lab not in cols:
        raise ConfigError(
            f"--label {lab!r} is not a field of the labels sample",
            hint=f"pick one of {', '.join(cols)}",
        )
    lt = _one(times, "label time in the labels sample", "a labels sample with one timestamp;")
    return LabelFields(eid, lab, lt)


def draft(rows: list[dict[str, Any]], choices: Choices, source: Path) -> tuple[str, list[str]]:
    """The config's text and the guesses it made (for the summary)."""
    cols = columns(rows)
    n = len(rows)
    inferred = {name: infer(c, n) for name, c in cols.items()}
    if choices.label is not None and choices.labels is None and choices.label not in inferred:
        raise ConfigError(
            f"--label {choices.label!r} is not a field of the sample",
            hint="name the events' label field, or pass the labels sample with --labels FILE",
        )
    for flag, name in (
        ("--sensitive", choices.sensitive),
        ("--event-id", choices.event_id),
        ("--event-time", choices.event_time),
        *(("--entity", e) for e in choices.entities),
    ):
        if name is not None and name not in inferred:
            raise ConfigError(
                f"{flag} {name!r} is not a field of the sample",
                hint=f"pick one of {', '.join(inferred)}",
            )
    guesses: list[str] = []
    label = choices.label
    if label is not None and label in inferred and inferred[label].type not in ("int", "bool"):
        raise ConfigError(
            f"--label {label!r} is {inferred[label].type}, not 0/1",
            hint="name a field of 0 and 1 (or true and false)",
        )
    fields = {k: v for k, v in inferred.items() if k != label or choices.labels is not None}

    ids = [k for k, f in fields.items() if f.type == "string" and f.distinct == n and f.required]
    named = [k for k in ids if k.lower().endswith("id")]
    event_id = choices.event_id or _one(
        named if len(named) == 1 else ids, "event id (a string unique to each record)", "--event-id"
    )
    if choices.event_id is None:
        guesses.append(f"event id: {event_id}")
    times = [k for k, f in fields.items() if f.type == "timestamp"]
    event_time = choices.event_time or _one(
        times, "event time (epoch milliseconds or ISO-8601 with a zone)", "--event-time"
    )
    if choices.event_time is None:
        guesses.append(f"event time: {event_time}")
    if fields[event_time].type != "timestamp":
        raise ConfigError(
            f"--event-time {event_time!r} holds no timestamps",
            hint="name a field of epoch milliseconds or ISO-8601 with a zone",
        )

    # entity keys: repeated string ids, most repeated first
    def repeats(k: str) -> float:
        return n / max(1, fields[k].distinct)

    if choices.entities:
        entities = list(choices.entities)
    else:
        cand = [
            k
            for k, f in fields.items()
            if f.type in ("string", "category")
            and k not in (event_id, event_time, choices.sensitive)
            and 2 <= f.distinct < n
            and (f.type == "string" or k.lower().endswith("id") or _id_like(f))
        ]
        entities = sorted(cand, key=lambda k: -repeats(k))[:2]
        if not entities:
            raise ConfigError(
                "no field of the sample looks like an entity key (a repeated id)",
                hint="name one with --entity FIELD",
            )
        guesses.append(f"entities: {', '.join(entities)}")
    for e in entities:  # a key takes any id, not only the sample's: a string, never a category
        f = fields[e]
        if f.type == "category":
            longest = max(len(v) for v in f.values)
            fields[e] = Inferred(
                e, "string", f.required, max_length=max(64, 2 * longest), distinct=f.distinct
            )
    sensitive = choices.sensitive
    if sensitive is not None and fields[sensitive].type not in ("category", "bool", "string"):
        raise ConfigError(
            f"--sensitive {sensitive!r} is {fields[sensitive].type}",
            hint="name a field of groups (categories)",
        )

    times_ms = []
    scale = 1000 if fields[event_time].time_unit == "s" else 1
    for r in rows:
        v = r.get(event_time)
        t = v * scale if isinstance(v, int) else _iso_ms(v) if isinstance(v, str) else None
        if t is not None:
            times_ms.append(t)
    span = (max(times_ms) - min(times_ms)) if times_ms else 24 * HOUR_MS
    numeric = [k for k, f in fields.items() if f.type in ("int", "float") and k not in entities]
    cats = [
        k for k, f in fields.items() if f.type == "category" and k not in (sensitive, *entities)
    ]
    raw_inputs = numeric + cats
    if not raw_inputs:
        raise ConfigError(
            "the sample has no numeric or category field to score on", hint="add some to the events"
        )
    windows = sorted(
        {_window(min(HOUR_MS, span / 24)), _window(max(HOUR_MS, span / 4))},
        key=lambda w: int(w[:-1]) * (24 if w.endswith("d") else 1),
    )
    name = choices.name or (source.stem.replace("_", "-").replace(".", "-") or "my-job")
    monitoring_window = _window(max(HOUR_MS, span / 8))

    L: list[str] = []
    L += [
        f"# rtml job config written by `rtml init --sample {source.name}` from {n} records.",
        "# Lines marked `# guess` are inferences from the sample: check them before going live.",
        "",
        "[job]",
        f"name = {_toml(name)}",
        "parallelism = 1",
        'delivery = "exactly-once"',
        'feature_order = "arrival"          # "event-time": the same features at any parallelism',
        "",
        "[kafka]",
        'bootstrap_servers = "127.0.0.1:9092"',
        f"group_id = {_toml(name)}",
        "partitions = 1",
        "",
        "[kafka.topics]",
    ]
    for t in (
        "events",
        "labels",
        "scores",
        "dead_letter",
        "late",
        "fairness",
        "drift",
        "alerts",
        "control",
        "shadow",
    ):
        L.append(f"{t} = {_toml(name + '.' + t.replace('_', '-'))}")
    L += ["", "[schema]"]
    L.append(
        f"event_id = {_toml(event_id)}"
        + ("" if choices.event_id else "            # guess: unique per record")
    )
    L.append(
        f"event_time = {_toml(event_time)}" + ("" if choices.event_time else "          # guess")
    )
    if sensitive:
        L.append(f"sensitive_attribute = {_toml(sensitive)}")
    L += [
        'max_out_of_orderness = "5s"',
        'max_future = "1d"',
        'unknown_fields = "reject"',
        "",
        "[schema.entities]"
        + (
            ""
            if choices.entities
            else "                 # guess: repeated ids, most repeated first"
        ),
    ]
    for e in entities:
        L.append(f"{e.removesuffix('_id') or e} = {_toml(e)}")
    L += [
        "",
        "[schema.fields]                   # guess: types, ranges (observed, with headroom) and categories",
    ]
    for k, f in fields.items():
        parts = [f"type = {_toml(f.type)}"]
        if f.time_unit == "s":
            parts.append('unit = "s"')
        if not f.required:
            parts.append("required = false")
        if f.min is not None:
            parts += [f"min = {_num(f.min)}", f"max = {_num(f.max)}"]
        if f.values:
            parts.append(f"values = {_toml(list(f.values))}")
        if f.max_length:
            parts.append(f"max_length = {f.max_length}")
        L.append(f"{_key(k)} = {{ {', '.join(parts)} }}")
    if choices.labels is not None:
        lf = label_fields(read_sample(choices.labels), {str(r.get(event_id)) for r in rows}, label)
        guesses.append(f"labels: id {lf.event_id}, label {lf.label}, time {lf.label_time}")
        label_lines = [
            f"event_id = {_toml(lf.event_id)}    # guess: from {choices.labels.name}",
            f"label = {_toml(lf.label)}",
            f"label_time = {_toml(lf.label_time)}",
        ]
    else:  # labels in the events (`rtml produce --label-field` sends them with these names)
        label_lines = [
            'event_id = "event_id"',
            f"label = {_toml(label or 'label')}"
            + ("" if label else "    # no --label given: the label field of your labels topic"),
            'label_time = "label_time"',
        ]
    L += [
        "",
        "[labels]",
        *label_lines,
        'timeout = "7d"',
        "positive = 1",
        "",
        "[feature_options]",
        "tiles_per_window = 12",
        "distinct_capacity = 32",
        'allowed_lateness = "1h"',
        'ttl = "30d"',
        "",
        "# starter features per entity (guess): counts, the first numeric field's mean and max,",
        "# time since the entity's last event",
    ]
    first_num = numeric[0] if numeric else None
    for e in entities:
        ename = e.removesuffix("_id") or e
        L += [
            "",
            "[[features]]",
            f"entity = {_toml(ename)}",
            'aggregations = ["count"]',
            f"windows = {_toml(windows)}",
        ]
        if first_num:
            L += [
                "",
                "[[features]]",
                f"entity = {_toml(ename)}",
                f"field = {_toml(first_num)}",
                'aggregations = ["mean", "max"]',
                f"windows = {_toml(windows)}",
            ]
        L += ["", "[[features]]", f"entity = {_toml(ename)}", 'aggregations = ["time_since_last"]']
    L += [
        "",
        "[model]",
        f"name = {_toml(name + '-model')}",
        'version = "current"',
        "threshold = 0.5",
        "favourable_outcome = 0            # guess: not being flagged is the good outcome",
        f"raw_inputs = {_toml(raw_inputs)}"
        + "   # guess: numeric and category fields (never the label)",
        "intra_op_threads = 1",
        "",
        "[monitoring]",
        f'window = "{monitoring_window}"'
        + "                   # guess: an eighth of the sample's time span",
        f'slide = "{monitoring_window}"',
        "min_group_count = 30",
        "four_fifths = 0.8",
        "drift_min_rows = 100",
        "drift_sample_cap = 2000",
        "drift_share = 0.3                 # the verdict of a model too short-trained to calibrate",
        "drift_false_alarm_rate = 0.01     # the calibrated verdict's false alarms per clean window",
        f"project = {_toml(name)}",
    ]
    text = "\n".join(L) + "\n"
    return text, guesses


def _num(v: float | None) -> str:
    assert v is not None
    return str(int(v)) if float(v).is_integer() else repr(float(v))


def _key(k: str) -> str:
    return k if all(c.isalnum() or c in "_-" for c in k) else json.dumps(k)


def init_config(sample: Path, out: Path, choices: Choices, force: bool = False) -> list[str]:
    """Write the config; returns the guesses. Refuses to overwrite unless ``force``."""
    import tomllib

    if out.exists() and not force:
        raise ConfigError(f"{out} exists", hint="pass another --out, or --force to overwrite it")
    text, guesses = draft(read_sample(sample), choices, sample)
    parse_config(tomllib.loads(text), str(out))  # the job must accept it as written
    out.write_text(text)
    return guesses
