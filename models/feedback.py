"""The feedback loop's training set: what the live job scored, joined with the labels that
had arrived by a cut-off time.

The scores topic is the log of scored features: each record holds the model inputs exactly as
the job computed them when it scored the event (from the events before it, in event time),
so no feature is ever recomputed with hindsight. The labels topic is the log of outcomes,
each stamped with the time it became known (``label_time``). The training set *as of* T is
point-in-time correct:

- an event counts only if it happened by T (``event_time <= T``);
- a label counts only if it was known by T (``label_time <= T``); if an event was labelled
  more than once by then (a correction), the latest label known at T wins;
- events without a label known at T are left out (their outcome is not known yet);
- a score record sent twice (an at-least-once job after a failure) counts once.

T defaults to the latest label time read, so the set holds everything known now; an
earlier T rebuilds the set a past training run would have seen.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd

from models.dataset import LABEL_COLUMN
from models.store.metadata import ModelInput
from rtml.core.config import JobConfig
from rtml.core.errors import ModelError, RecordError
from udfs.validation import parse_label, parse_score


@dataclass(frozen=True)
class FeedbackStats:
    as_of: int
    score_records: int
    bad_score_records: int
    resent_scores: int
    scored_after_cutoff: int
    labels: int
    bad_labels: int
    labels_after_cutoff: int
    labels_without_score: int
    unlabelled: int
    rows: int
    model_versions: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _known_labels(
    raw_labels: Iterable[str | bytes], cfg: JobConfig, as_of: int | None
) -> tuple[dict[str, tuple[int, int]], int, int, int, int]:
    """event id -> (label, label_time) of the latest label known at ``as_of``."""
    parsed, bad = [], 0
    for raw in raw_labels:
        try:
            parsed.append(parse_label(raw, cfg.labels))
        except RecordError:
            bad += 1
    cutoff = as_of if as_of is not None else max((x["label_time"] for x in parsed), default=0)
    known: dict[str, tuple[int, int]] = {}
    late = 0
    for x in parsed:
        if x["label_time"] > cutoff:
            late += 1
            continue
        prev = known.get(x["event_id"])
        if prev is None or x["label_time"] >= prev[1]:
            known[x["event_id"]] = (x["label"], x["label_time"])
    return known, len(parsed), bad, late, cutoff


def feedback_training_set(
    cfg: JobConfig,
    inputs: tuple[ModelInput, ...],
    raw_scores: Iterable[str | bytes],
    raw_labels: Iterable[str | bytes],
    as_of: int | None = None,
) -> tuple[pd.DataFrame, FeedbackStats]:
    """One row per scored event whose label was known at ``as_of``: the logged inputs, the
    label, and the event's time, id, group and scoring model version."""
    s = cfg.schema
    known, n_labels, bad_labels, labels_late, cutoff = _known_labels(raw_labels, cfg, as_of)
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    n_scores = bad_scores = resent = after = unlabelled = 0
    versions: dict[str, int] = {}
    wanted = [i.name for i in inputs]
    for raw in raw_scores:
        n_scores += 1
        try:
            rec = parse_score(raw, s)
        except RecordError:
            bad_scores += 1
            continue
        eid = rec[s.event_id]
        if eid in seen:
            resent += 1
            continue
        seen.add(eid)
        if rec[s.event_time] > cutoff:
            after += 1
            continue
        label = known.get(eid)
        if label is None:
            unlabelled += 1
            continue
        logged = rec["inputs"]
        missing = [n for n in wanted if n not in logged]
        if missing:
            raise ModelError(
                f"score record {eid} (model v{rec['model_version']}) has no logged input {missing}",
                hint="the live model did not use these inputs; train from events with `rtml train --history` to add features",
            )
        row = {n: logged[n] for n in wanted}
        row[LABEL_COLUMN] = label[0]
        row["__event_id__"] = eid
        row["__event_time__"] = rec[s.event_time]
        row["__label_time__"] = label[1]
        row["__model_version__"] = rec["model_version"]
        if s.sensitive_attribute:
            row["__group__"] = rec.get(s.sensitive_attribute)
        versions[rec["model_version"]] = versions.get(rec["model_version"], 0) + 1
        rows.append(row)
    stats = FeedbackStats(
        as_of=cutoff,
        score_records=n_scores,
        bad_score_records=bad_scores,
        resent_scores=resent,
        scored_after_cutoff=after,
        labels=n_labels,
        bad_labels=bad_labels,
        labels_after_cutoff=labels_late,
        labels_without_score=len(set(known) - seen),
        unlabelled=unlabelled,
        rows=len(rows),
        model_versions=dict(sorted(versions.items(), key=lambda kv: int(kv[0]))),
    )
    if not rows:
        raise ModelError(
            f"no scored event has a label known by {cutoff} ({stats.score_records} score records, {stats.labels} labels read)",
            hint="run the job on the events and send their labels to the labels topic first",
        )
    return pd.DataFrame(rows), stats
