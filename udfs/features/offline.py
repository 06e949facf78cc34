"""Offline replay: the live job's feature computation over a history, for training.

Events are processed in the order given (the order the job would read them), entity by
entity in the configured order, exactly as the chain of keyed operators does: an event late
for one entity stops there (earlier entities have already counted it), is reported as late and
gets no features. The result is point-in-time correct: each row only sees events before it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from rtml.core.config import Entity, JobConfig
from rtml.core.featurespec import FeatureSet
from udfs.features.apply import Applied, apply_event
from udfs.features.engine import EntityFeatures


class FeatureReplay:
    """Keeps one ``EntityFeatures`` per (entity, key), like the job's keyed state."""

    def __init__(
        self,
        features: FeatureSet,
        entities: tuple[Entity, ...],
        event_time: str,
        event_id: str = "event_id",
    ) -> None:
        self.event_time = event_time
        self.event_id = event_id
        self.stages = [
            (e, features.for_entity(e.name)) for e in entities if e.name in features.entities
        ]
        self.state: dict[tuple[str, str], EntityFeatures] = {}

    @classmethod
    def for_job(cls, cfg: JobConfig) -> FeatureReplay:
        """The replay of the job that ``cfg`` configures."""
        s = cfg.schema
        return cls(cfg.features, s.entities, s.event_time, s.event_id)

    def observe(self, event: Mapping[str, Any]) -> dict[str, float] | None:
        """The event's features over every entity (``apply_event``, as the job's stages
        apply it), or None when an entity finds it late or a duplicate."""
        ts = int(event[self.event_time])
        out: dict[str, float] = {}
        for i, (entity, fs) in enumerate(self.stages):
            key = (entity.name, str(event[entity.key]))
            eid = event.get(self.event_id) if i == 0 else None
            st, outcome = apply_event(
                self.state.get(key), fs, ts, event, None if eid is None else str(eid)
            )
            self.state[key] = st
            if not isinstance(outcome, Applied):
                return None
            out.update(outcome.features)
        return out


def compute_features(
    events: Iterable[Mapping[str, Any]],
    features: FeatureSet,
    entities: tuple[Entity, ...],
    event_time: str,
) -> list[dict[str, float] | None]:
    replay = FeatureReplay(features, entities, event_time)
    return [replay.observe(e) for e in events]
