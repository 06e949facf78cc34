"""Training, ONNX export with parity against sklearn, registry layout, load-time checks."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from models.dataset import build_dataset
from models.export import export, model_card
from models.store.metadata import ModelInput
from models.store.registry import CURRENT_FILE, Registry
from models.train import frame_for_model, train
from rtml.cli.scenarios.cards import ScenarioOptions, generate
from rtml.core.errors import ModelError
from udfs.scoring import OnnxScorer


@pytest.fixture(scope="module")
def trained(cfg, tmp_path_factory):
    root = tmp_path_factory.mktemp("model")
    sc = generate(ScenarioOptions(seed=3, events=6000, days=2, bias=0.2))
    df = build_dataset(cfg, sc.events, sc.labels)
    res = train(cfg, df, root / "artifacts", progress=lambda m: None)
    reg = Registry(root / "registry")
    mv = export(root / "artifacts", reg, progress=lambda m: None)
    return root, reg, mv, res


def test_parity_is_recorded_and_tight(trained):
    _, _, mv, _ = trained
    assert mv.metadata.parity["max_abs_diff"] < 1e-5
    assert mv.metadata.parity["rows"] > 500 and mv.metadata.parity["decisions_flipped"] == 0


def test_onnx_scores_equal_sklearn_on_fresh_rows(cfg, trained):
    import joblib

    root, _, mv, _ = trained
    pipe = joblib.load(root / "artifacts" / "model.joblib")
    sc = generate(ScenarioOptions(seed=99, events=1500, days=1))
    df = build_dataset(cfg, sc.events, sc.labels)
    x = frame_for_model(df, mv.metadata.inputs)
    ours = OnnxScorer.from_metadata(mv.onnx_path, mv.metadata).score(x.to_dict("records"))
    np.testing.assert_allclose(ours, pipe.predict_proba(x)[:, 1], atol=1e-5)


def test_registry_layout(trained):
    _, reg, mv, _ = trained
    assert sorted(p.name for p in mv.path.iterdir()) == [
        "metadata.json",
        "model.onnx",
        "model_card.md",
        "reference.parquet",
    ]
    assert (reg.root / mv.metadata.name / CURRENT_FILE).read_text().strip() == mv.metadata.version
    meta = json.loads((mv.path / "metadata.json").read_text())
    for key in (
        "inputs",
        "onnx_sha256",
        "feature_set_fingerprint",
        "training",
        "parity",
        "favourable_outcome",
        "sensitive_attribute",
    ):
        assert key in meta
    ref = pd.read_parquet(mv.reference_path)
    assert "score" in ref and set(mv.metadata.input_names) <= set(ref.columns)
    card = model_card(mv.metadata)
    assert "Model card" in card
    # the split is by event time, and says where the held-out rows start
    assert (
        "- Split: by event time: the earliest 80% of the rows train, the rest (from 2026-" in card
    )
    assert mv.metadata.training["metrics"]["split"]["kind"] == "event-time"


def test_versions_increase_and_current_moves(trained):
    root, reg, mv, _ = trained
    mv2 = export(root / "artifacts", reg, progress=lambda m: None, make_current=False)
    assert int(mv2.metadata.version) == int(mv.metadata.version) + 1
    assert reg.current_version(mv.metadata.name) == mv.metadata.version
    reg.set_current(mv.metadata.name, mv2.metadata.version)
    assert reg.resolve(mv.metadata.name).metadata.version == mv2.metadata.version
    reg.set_current(mv.metadata.name, mv.metadata.version)


def test_corrupt_model_file_is_refused(trained, tmp_path):
    _, reg, mv, _ = trained
    bad = tmp_path / "model.onnx"
    bad.write_bytes(mv.onnx_path.read_bytes()[:1000])
    with pytest.raises(ModelError, match="cannot load"):
        OnnxScorer(bad, mv.metadata.inputs)
    tampered = replace(mv.metadata, onnx_sha256="0" * 64)
    with pytest.raises(ModelError, match="corrupt or was replaced"):
        reg.verify(replace(mv, metadata=tampered))


def test_schema_mismatch_is_refused(cfg, trained):
    _, _, mv, _ = trained
    scorer = OnnxScorer.from_metadata(mv.onnx_path, mv.metadata)
    with pytest.raises(ModelError, match="does not produce"):
        scorer.check_columns(cfg.model_inputs[:-2])
    with pytest.raises(ModelError, match="differ from its metadata"):
        OnnxScorer(mv.onnx_path, (*mv.metadata.inputs[:-1], ModelInput("extra", "float")))


def test_missing_model_says_what_to_do(tmp_path):
    with pytest.raises(ModelError, match="rtml train"):
        Registry(tmp_path).resolve("nothing")


def test_training_metrics_are_sane(trained):
    _, _, _, res = trained
    assert res.metrics["roc_auc"] > 0.9


def test_export_without_training_fails_clearly(tmp_path):
    with pytest.raises(ModelError, match="rtml train"):
        export(Path(tmp_path), Registry(tmp_path / "r"), progress=lambda m: None)


@pytest.mark.parametrize("estimator", ["lightgbm", "xgboost"])
def test_lightgbm_and_xgboost_pipelines_export_with_parity(cfg, tmp_path, estimator):
    """The whole pipeline (one-hot encoding + the classifier) as one ONNX graph, checked
    against the library's own predict_proba on held-out rows and on fresh ones. The
    tolerance is 1e-3: ONNX tree ensembles compare in float32, so a row whose value sits on a
    LightGBM split threshold (a double) can take the other branch (measured up to 1.4e-4)."""
    import joblib

    sc = generate(ScenarioOptions(seed=8, events=3000, days=1, bias=0.2))
    df = build_dataset(cfg, sc.events, sc.labels)
    train(cfg, df, tmp_path / "a", progress=lambda m: None, estimator=estimator)
    mv = export(tmp_path / "a", Registry(tmp_path / "r"), 1e-3, progress=lambda m: None)
    assert mv.metadata.framework.startswith(estimator)
    assert mv.metadata.parity["max_abs_diff"] < 1e-3
    assert mv.metadata.parity["decisions_flipped"] == 0
    pipe = joblib.load(tmp_path / "a" / "model.joblib")
    fresh = build_dataset(cfg, *_fresh(seed=98))
    x = frame_for_model(fresh, mv.metadata.inputs)
    ours = OnnxScorer.from_metadata(mv.onnx_path, mv.metadata).score(x.to_dict("records"))
    np.testing.assert_allclose(ours, pipe.predict_proba(x)[:, 1], atol=1e-3)


def _fresh(seed: int):
    sc = generate(ScenarioOptions(seed=seed, events=800, days=0.5))
    return sc.events, sc.labels


def test_an_unsupported_model_is_refused_clearly(trained):
    from sklearn.base import BaseEstimator, ClassifierMixin

    from models.export import to_onnx

    class Homemade(ClassifierMixin, BaseEstimator):
        def fit(self, x, y):
            return self

    _, _, mv, _ = trained
    with pytest.raises(ModelError, match="cannot convert Homemade to ONNX.*LightGBM or XGBoost"):
        to_onnx(Homemade(), mv.metadata.inputs)


def test_an_mlp_exports_with_parity_and_quantizes_within_its_tolerance(cfg, tmp_path):
    """The MLP graph has matrix products, so int8 quantization applies: the registered graph
    holds MatMulInteger, is smaller, serves through the same gate, and its parity with the
    sklearn model is measured and recorded (it is looser than the float graph's)."""
    import onnx

    from udfs.serving import load_serving_model

    sc = generate(ScenarioOptions(seed=8, events=3000, days=1, bias=0.2))
    df = build_dataset(cfg, sc.events, sc.labels)
    train(cfg, df, tmp_path / "a", progress=lambda m: None, estimator="mlp")
    reg = Registry(tmp_path / "r")
    plain = export(tmp_path / "a", reg, progress=lambda m: None)
    assert plain.metadata.parity["max_abs_diff"] < 1e-4
    q = export(tmp_path / "a", reg, progress=lambda m: None, quantize_tolerance=0.1)
    ops = {n.op_type for n in onnx.load(str(q.onnx_path)).graph.node}
    assert "MatMulInteger" in ops and "MatMul" not in ops
    par = q.metadata.parity["quantized"]
    assert par["int8_bytes"] < par["float_bytes"] and 0 < par["max_abs_diff"] <= 0.1
    assert par["float_us_per_row"] > 0 and par["int8_us_per_row"] > 0
    m = load_serving_model(reg.root, cfg.model.name, q.metadata.version, cfg.model_inputs)
    x = frame_for_model(df.tail(300), q.metadata.inputs).to_dict("records")
    diff = np.abs(
        m.scorer.score(x) - OnnxScorer.from_metadata(plain.onnx_path, plain.metadata).score(x)
    )
    assert diff.max() <= 0.1 and diff.max() > 0
    assert "## Int8 quantization" in (q.path / "model_card.md").read_text()


def test_quantizing_a_tree_ensemble_is_refused_with_the_reason(trained):
    from models.quantize import quantize

    _, _, mv, _ = trained
    with pytest.raises(ModelError, match="nothing to quantize.*TreeEnsembleClassifier") as e:
        quantize(mv.onnx_path.read_bytes())
    assert "--estimator mlp" in e.value.hint


@pytest.fixture
def rtml_home_tmp(tmp_path, monkeypatch):
    monkeypatch.setenv("RTML_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def test_a_config_that_is_not_the_card_schema_is_told_to_pass_its_history(rtml_home_tmp):
    """`rtml train` with another schema's config and no history: a one-line error naming
    what to pass, not a card history the config cannot read."""
    from pathlib import Path

    from rtml.cli.commands.data import scenario_options, train_model
    from rtml.core.config import load_config
    from rtml.core.errors import ConfigError

    trips = load_config(
        Path(__file__).resolve().parents[1] / "integration" / "trips" / "trips.toml"
    )
    with pytest.raises(ConfigError, match="not the card scenario's") as e:
        train_model(trips, scenario_options(1, 100, 0.1, None, 0.0, 0.0, 0.0), None, None)
    assert "rtml train --history FILE --labels FILE (or --label-field F)" in str(e.value)


def test_train_on_a_history_whose_events_hold_their_labels(cfg, tmp_path, rtml_home_tmp):
    """`rtml train --history events.jsonl --label-field is_fraud`: the label is taken out of
    each event before the features, and the model card names the file."""
    from rtml.cli.commands.data import train_model

    sc = generate(ScenarioOptions(seed=4, events=3000, days=1, bias=0.2))
    label = {lab["event_id"]: lab["is_fraud"] for lab in sc.labels}
    f = tmp_path / "history.jsonl"
    f.write_text(
        "\n".join(
            json.dumps(e | {"is_fraud": label[e["event_id"]]})
            for e in sc.events
            if e["event_id"] in label
        )
    )
    out = train_model(cfg, None, f, None, label_field="is_fraud")
    assert out["rows_train"] + out["rows_holdout"] == len(label)
