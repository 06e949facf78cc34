"""`rtml produce --file`: a user's own events (JSON lines or CSV) to the job's topics.

Validation stays the job's work: every line reaches the events topic, malformed ones too
(the job dead-letters them with a reason), and nothing here stops on a bad line. JSON lines
are sent as they are. A CSV row becomes a JSON object whose cells are typed by the config's
field types; a cell that does not parse as its type is sent as its string, and an empty cell
is left out (a missing field, for the job to judge).

Labels come from their own JSON-lines file (``--labels``), or from a field of the events
(``--label-field``): then the field is taken out of every event record and sent alone to the
labels topic, ``label_delay`` after the event's time, so no event record carries its label.

Pacing: as fast as the broker takes them (default), at ``rate`` records per second, or by
event time at ``speed`` times real time (a record without a readable time goes at once).
"""

from __future__ import annotations

import csv
import io
import json
import math
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deploy.kafka_client import ensure_topics, produce
from rtml.cli.console import Progress, say, step
from rtml.core.config import UNIT_MS, EventSchema, JobConfig
from rtml.core.errors import ConfigError


@dataclass(frozen=True)
class Pacing:
    rate: float | None = None  # records per second
    speed: float | None = None  # event time per wall time

    def __post_init__(self) -> None:
        if self.rate is not None and self.speed is not None:
            raise ConfigError("--rate and --speed are two pacings", hint="pass one of them")
        for name, v in (("--rate", self.rate), ("--speed", self.speed)):
            if v is not None and not v > 0:
                raise ConfigError(f"{name} {v} is not positive", hint=f"give {name} > 0")


@dataclass(frozen=True)
class Sent:
    events: int
    labels: int
    lines_without_label: int


def is_csv(path: Path) -> bool:
    return path.suffix.lower() in (".csv", ".tsv")


def json_cell(cell: str) -> Any:
    """A CSV cell as JSON would hold it: a whole number, a number, true or false, else the
    string; None when blank (a column the schema does not declare, or a sample's cell)."""
    text = cell.strip()
    if text == "":
        return None
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    try:
        return int(text)
    except ValueError:
        pass
    try:
        f = float(text)
        return f if math.isfinite(f) else text
    except ValueError:
        return text


def _typed(cell: str, ftype: str | None) -> Any:
    """A CSV cell as the config's type says, or the string when it does not parse."""
    if ftype is None:
        value = json_cell(cell)
        return cell if value is None else value
    try:
        if ftype == "int":
            return int(cell)
        if ftype == "float":
            return float(cell)
        if ftype == "bool":
            low = cell.strip().lower()
            if low in ("true", "false"):
                return low == "true"
            return cell
        if ftype == "timestamp":
            return int(cell) if cell.strip().lstrip("-").isdigit() else cell
    except ValueError:
        return cell
    return cell


def csv_records(text: str, schema: EventSchema, delimiter: str = ",") -> Iterator[str]:
    """Each CSV row as a JSON object, typed by the schema (undeclared columns as strings)."""
    types = {f.name: f.type for f in schema.fields}
    for row in csv.DictReader(io.StringIO(text), delimiter=delimiter):
        doc = {
            k: _typed(v, types.get(k))
            for k, v in row.items()
            if k is not None and v is not None and v != ""
        }
        yield json.dumps(doc)


def read_records(path: Path, schema: EventSchema) -> list[str]:
    """The file's records as the events topic gets them (blank lines skipped)."""
    if not path.is_file():
        raise ConfigError(
            f"{path} does not exist", hint="pass --file with a JSON-lines or CSV file"
        )
    text = path.read_text(encoding="utf-8", errors="surrogateescape")
    if is_csv(path):
        return list(csv_records(text, schema, "\t" if path.suffix.lower() == ".tsv" else ","))
    return [line for line in text.splitlines() if line.strip()]


def split_label(
    record: str, cfg: JobConfig, label_field: str, delay_ms: int
) -> tuple[str, dict | None]:
    """The event record without its label field, and the label record (None when the line is
    not a JSON object with the label, an event id and a readable event time: the record goes
    on unchanged, for the job to judge)."""
    from udfs.validation import parse_timestamp

    try:
        doc = json.loads(record)
    except ValueError:
        return record, None
    if not isinstance(doc, dict) or label_field not in doc:
        return record, None
    y = doc.pop(label_field)
    lab = cfg.labels
    eid = doc.get(cfg.schema.event_id)
    try:
        ts = parse_timestamp(doc.get(cfg.schema.event_time), _unit_ms(cfg.schema))
    except (ValueError, OverflowError):
        return json.dumps(doc), None
    if eid is None:
        return json.dumps(doc), None
    return json.dumps(doc), {lab.event_id: eid, lab.label: y, lab.label_time: ts + delay_ms}


def _unit_ms(schema: EventSchema) -> int:
    return UNIT_MS[schema.field(schema.event_time).unit]


def _event_time(record: str, field: str, unit_ms: int = 1) -> int | None:
    from udfs.validation import parse_timestamp

    try:
        doc = json.loads(record)
        return parse_timestamp(doc[field], unit_ms) if isinstance(doc, dict) else None
    except (ValueError, KeyError, TypeError, OverflowError):
        return None


def record_time(record: str, schema: EventSchema) -> int | None:
    """The record's event time in epoch ms; None when it is not a JSON object with a
    readable event-time field (the job judges such a record)."""
    return _event_time(record, schema.event_time, _unit_ms(schema))


def paced(
    records: Iterable[str], pacing: Pacing, time_field: str, unit_ms: int = 1
) -> Iterator[str]:
    """``records``, each released at its time under ``pacing``."""
    start = time.monotonic()
    first_ts: int | None = None
    for i, r in enumerate(records):
        due = None
        if pacing.rate is not None:
            due = start + i / pacing.rate
        elif pacing.speed is not None:
            ts = _event_time(r, time_field, unit_ms)
            if ts is not None:
                first_ts = ts if first_ts is None else first_ts
                due = start + max(0, ts - first_ts) / 1000 / pacing.speed
        if due is not None:
            wait = due - time.monotonic()
            if wait > 0:
                time.sleep(wait)
        yield r


def produce_file(
    cfg: JobConfig,
    events_file: Path,
    labels_file: Path | None = None,
    label_field: str | None = None,
    label_delay_ms: int = 0,
    pacing: Pacing = Pacing(),
) -> Sent:
    if labels_file is not None and label_field is not None:
        raise ConfigError(
            "--labels and --label-field are two sources of labels", hint="pass one of them"
        )
    records = read_records(events_file, cfg.schema)
    labels: list[dict] = []
    without = 0
    if label_field is not None:
        split = [split_label(r, cfg, label_field, label_delay_ms) for r in records]
        records = [r for r, _ in split]
        labels = [lab for _, lab in split if lab is not None]
        without = sum(1 for _, lab in split if lab is None)
    elif labels_file is not None:
        labels_raw = read_records(labels_file, cfg.schema)
    t = cfg.kafka.topics
    ensure_topics(cfg)
    how = (
        f"{pacing.rate:g} records/s"
        if pacing.rate
        else f"{pacing.speed:g}x event time"
        if pacing.speed
        else "as fast as the broker takes them"
    )
    step(f"producing {len(records)} records of {events_file} to {t.events!r} ({how})")
    prog = Progress("records sent", len(records))
    timed = paced(records, pacing, cfg.schema.event_time, _unit_ms(cfg.schema))
    n = produce(cfg, t.events, timed, progress=prog.update)
    prog.update(n, force=True)
    if label_field is not None:
        # with the events' pacing the labels come late anyway; send them once the events are in
        labels.sort(key=lambda lab: lab[cfg.labels.label_time])
        nl = produce(cfg, t.labels, (json.dumps(lab) for lab in labels))
    elif labels_file is not None:
        nl = produce(cfg, t.labels, labels_raw)
    else:
        nl = 0
    say(
        f"sent {n} event records to {t.events!r} and {nl} labels to {t.labels!r}"
        + (f" ({without} records had no label to take out)" if label_field is not None else "")
    )
    return Sent(events=n, labels=nl, lines_without_label=without)
