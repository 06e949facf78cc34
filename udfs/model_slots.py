"""The models a scoring worker holds: the live one and, optionally, a shadow candidate.

Pure logic (no pyflink), so every transition is tested without a JVM. The Flink operator
(``udfs.flink.scoring.ScoreFunction``) keeps the versions in broadcast state and holds a
``ModelSlots`` as the loaded cache of that state.

Transitions, each applied between two events:

- ``activate v``: v becomes live. If v was the shadow, the shadow stops (it was promoted).
- ``shadow v``: v scores every event alongside the live model; each pair goes to the shadow
  output (``shadow_record``). v must differ from the live version.
- ``unshadow``: the shadow stops.

A candidate passes the same gate as a live model (``load``: hash, schema, probe row); when it
fails, ``apply`` raises and the slots are unchanged.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from rtml.core.errors import ModelError
from udfs.serving import ACTIVATE, SHADOW, UNSHADOW, ModelSwitch, ServingModel


@dataclass(frozen=True)
class Scored:
    score: float
    latency_us: int


def score_timed(model: ServingModel, row: Mapping[str, Any]) -> Scored:
    t0 = time.perf_counter_ns()
    score = model.scorer.score_one(row)
    return Scored(score, (time.perf_counter_ns() - t0) // 1000)


class ModelSlots:
    def __init__(self, live: ServingModel, shadow: ServingModel | None = None) -> None:
        self.live = live
        self.shadow = shadow

    def apply(self, switch: ModelSwitch, load: Callable[[str], ServingModel]) -> dict[str, Any]:
        """Apply a parsed control record; returns what happened (the alert's fields)."""
        if switch.action == ACTIVATE:
            assert switch.version is not None
            candidate = load(switch.version)
            event: dict[str, Any] = {
                "kind": "model_activated",
                "previous_version": self.live.version,
                "serving_version": candidate.version,
            }
            self.live = candidate
            if self.shadow is not None and self.shadow.version == candidate.version:
                self.shadow = None
                event["shadow_promoted"] = True
            return event
        if switch.action == SHADOW:
            assert switch.version is not None
            if switch.version == self.live.version:
                raise ModelError(
                    f"version {switch.version} of {self.live.name!r} is the live model, it cannot shadow itself",
                    hint="shadow a version that is not live (`rtml models list`)",
                )
            candidate = load(switch.version)
            event = {"kind": "shadow_started", "shadow_version": candidate.version}
            if self.shadow is not None:
                event["replaced_shadow_version"] = self.shadow.version
            self.shadow = candidate
            return event
        if switch.action == UNSHADOW:
            stopped = None if self.shadow is None else self.shadow.version
            self.shadow = None
            return {"kind": "shadow_stopped", "shadow_version": stopped}
        raise ModelError(f"unknown control action {switch.action!r}", hint="see udfs.serving")


def shadow_record(
    keys: Mapping[str, Any],
    live: ServingModel,
    live_scored: Scored,
    candidate: ServingModel,
    candidate_scored: Scored,
    threshold: float,
) -> dict[str, Any]:
    """One event scored by both models: what the shadow topic receives."""
    live_flag = int(live_scored.score >= threshold)
    cand_flag = int(candidate_scored.score >= threshold)
    out = dict(keys)
    out.update(
        model=live.name,
        live_version=live.version,
        live_score=live_scored.score,
        live_flagged=live_flag,
        live_latency_us=live_scored.latency_us,
        candidate_version=candidate.version,
        candidate_score=candidate_scored.score,
        candidate_flagged=cand_flag,
        candidate_latency_us=candidate_scored.latency_us,
        disagree=int(live_flag != cand_flag),
        score_diff=candidate_scored.score - live_scored.score,
    )
    return out
