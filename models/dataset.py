"""Training sets: the live job's features, computed offline, joined with labels."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from rtml.core.config import JobConfig
from rtml.core.errors import ConfigError, RecordError
from udfs.features.offline import FeatureReplay
from udfs.validation import parse_event, parse_label

LABEL_COLUMN = "__label__"


def read_jsonl(path: Path) -> list[str]:
    if not path.is_file():
        raise ConfigError(f"{path} does not exist", hint="pass an existing JSON-lines file")
    return [line for line in path.read_text().splitlines() if line.strip()]


PROGRESS_EVERY = 1000


def build_dataset(
    cfg: JobConfig,
    raw_events: Iterable[str | Mapping[str, Any]],
    raw_labels: Iterable[str | Mapping[str, Any]],
    progress: Callable[[int], None] | None = None,
) -> pd.DataFrame:
    """One row per labelled, valid, on-time event: model inputs, label, group, time, id.

    Invalid records are skipped exactly as the job dead-letters them; features come from the
    same ``FeatureReplay`` the job's keyed operators mirror. ``progress`` is told how many
    events have been replayed, every ``PROGRESS_EVERY``.
    """
    labels: dict[str, int] = {}
    for raw in raw_labels:
        try:
            lab = parse_label(raw if isinstance(raw, str) else json.dumps(raw), cfg.labels)
        except RecordError:
            continue
        labels[lab["event_id"]] = lab["label"]
    replay = FeatureReplay.for_job(cfg)
    rows: list[dict[str, Any]] = []
    s = cfg.schema
    for i, raw in enumerate(raw_events):
        if progress is not None and i % PROGRESS_EVERY == 0:
            progress(i)
        try:
            ev = parse_event(raw if isinstance(raw, str) else json.dumps(raw), s)
        except RecordError:
            continue
        feats = replay.observe(ev)
        if feats is None:
            continue
        y = labels.get(ev[s.event_id])
        if y is None:
            continue
        row = {c: ev[c] for c in cfg.model.raw_inputs}
        row.update(feats)
        row[LABEL_COLUMN] = y
        row["__event_id__"] = ev[s.event_id]
        row["__event_time__"] = ev[s.event_time]
        if s.sensitive_attribute:
            row["__group__"] = ev[s.sensitive_attribute]
        rows.append(row)
    if not rows:
        raise ConfigError(
            "no labelled valid events to train on",
            hint="check that the labels' event ids match the events",
        )
    return pd.DataFrame(rows)


def fingerprint(df: pd.DataFrame) -> str:
    """Content hash of a training frame (stable across runs for the same data)."""
    h = hashlib.sha256(pd.util.hash_pandas_object(df, index=False).values.tobytes())
    return h.hexdigest()[:16]
