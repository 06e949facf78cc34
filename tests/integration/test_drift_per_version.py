"""Each model version is judged against its own drift reference: the monitoring job on real
Kafka reads score records from two versions, one window each and one window mixed, and
evaluates every version's rows against the reference sample that version was exported with."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from deploy.kafka_client import ensure_topics, produce, read_topic
from models.store.registry import CARD_FILE, METADATA_FILE, MODEL_FILE, Registry
from rtml.cli.commands.job import JobTarget, run_embedded
from rtml.core import paths
from tests.conftest import DEMO_CONFIG

pytestmark = pytest.mark.integration

PREFIX = "dv."
START = 1_767_225_600_000  # 2026-01-01T00:00Z


def _publish_shifted(reg: Registry, good, tmp: Path) -> str:
    """The same model under a new version whose reference has amounts 8 times larger."""
    ref = pd.read_parquet(good.reference_path)
    ref["amount"] = ref["amount"] * 8
    ref.to_parquet(tmp / "ref.parquet", index=False)
    version = reg.next_version(good.metadata.name)
    meta = replace(good.metadata, version=version)
    reg.publish(
        good.metadata.name,
        version,
        {
            MODEL_FILE: good.onnx_path,
            METADATA_FILE: meta.to_json().encode(),
            CARD_FILE: good.path / CARD_FILE,
            meta.reference_file: tmp / "ref.parquet",
        },
        make_current=False,
    )
    return version


def _records(cfg, ref: pd.DataFrame, window: int, version: str, rows: range) -> list[str]:
    s, size = cfg.schema, cfg.monitoring.window_ms
    inputs = [c for c in ref.columns if c not in ("score", "__group__")]
    out = []
    for k, i in enumerate(rows):
        r = ref.iloc[i]
        rec = {
            s.event_id: f"w{window}-v{version}-{i}",
            s.event_time: START + window * size + k * (size // (len(rows) + 1)),
            s.sensitive_attribute: str(r["__group__"]),
            "score": float(r["score"]),
            "flagged": int(r["score"] >= cfg.model.threshold),
            "model": cfg.model.name,
            "model_version": version,
            "inputs": {c: (None if pd.isna(r[c]) else r[c]) for c in inputs},
        }
        out.append(json.dumps(rec, default=lambda v: v.item()))
    return out


def test_each_version_is_compared_with_its_own_reference(cfg, broker, model, tmp_path):
    c = cfg.with_bootstrap(broker.bootstrap).with_topic_prefix(PREFIX)
    reg = Registry(paths.registry_dir())
    v1 = model.metadata.version
    v2 = _publish_shifted(reg, model, tmp_path)
    ref = pd.read_parquet(model.reference_path)
    n = len(ref)
    half = range(n // 2), range(n // 2, n)
    records = (
        _records(c, ref, 0, v1, range(n))  # the reference itself, as v1: no drift
        + _records(c, ref, 1, v2, range(n))  # the same rows, judged by v2's reference: drift
        + _records(c, ref, 2, v1, half[0])  # a hot-swap inside the window
        + _records(c, ref, 2, v2, half[1])
    )
    records.sort(key=lambda x: json.loads(x)[c.schema.event_time])
    ensure_topics(c)
    produce(c, c.kafka.topics.scores, records)
    target = JobTarget(
        Path(DEMO_CONFIG), bootstrap=broker.bootstrap, topic_prefix=PREFIX, bounded=True
    )
    run_embedded(c, replace(target, part="monitoring"))

    size = c.monitoring.window_ms
    drift = {
        ((d["window_start"] - START) // size, d["model_version"]): d
        for d in read_topic(c, c.kafka.topics.drift)
    }
    assert sorted(drift) == [(0, v1), (1, v2), (2, v1), (2, v2)]
    assert drift[(0, v1)]["drifted_columns"] == [] and drift[(0, v1)]["rows"] == n
    assert "amount" in drift[(1, v2)]["drifted_columns"]
    assert drift[(2, v1)]["rows"] == drift[(2, v2)]["rows"] == n // 2
    assert "amount" in drift[(2, v2)]["drifted_columns"]
    assert "amount" not in drift[(2, v1)]["drifted_columns"]

    fairness = [f for f in read_topic(c, c.kafka.topics.fairness) if f["status"] == "final"]
    versions = {(f["window_start"] - START) // size: f["model_versions"] for f in fairness}
    assert versions == {0: [v1], 1: [v2], 2: [v1, v2]}
