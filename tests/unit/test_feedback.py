"""The feedback loop's training set (point in time) and reweighing, without a JVM.

The score records are made the way the job makes them: the job's feature code replayed over
the events, the model inputs logged per event. The training set built from them must hold
exactly the features ``build_dataset`` computes from the raw events."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.dataset import LABEL_COLUMN, build_dataset
from models.feedback import feedback_training_set
from models.reweighing import reweighing_weights
from models.train import model_inputs, train
from rtml.cli.scenarios.cards import ScenarioOptions, generate
from rtml.core.errors import ModelError
from udfs.features.offline import FeatureReplay
from udfs.validation import parse_event


def _null_nan(v):
    return None if isinstance(v, float) and math.isnan(v) else v


@pytest.fixture(scope="module")
def logged(cfg):
    """A scenario's events as the job would log them (scores topic) and its labels."""
    sc = generate(ScenarioOptions(seed=11, events=3000, days=1, bias=0.25))
    replay = FeatureReplay.for_job(cfg)
    s = cfg.schema
    names = [i.name for i in model_inputs(cfg)]
    scores = []
    for raw in sc.events:
        ev = parse_event(json.dumps(raw), s)
        feats = replay.observe(ev)
        if feats is None:
            continue
        row = {**{c: ev[c] for c in cfg.model.raw_inputs}, **feats}
        rec = {
            s.event_id: ev[s.event_id],
            s.event_time: ev[s.event_time],
            s.sensitive_attribute: ev[s.sensitive_attribute],
            "score": 0.1,
            "flagged": 0,
            "model": cfg.model.name,
            "model_version": "1",
            "inputs": {n: _null_nan(row[n]) for n in names},
        }
        scores.append(json.dumps(rec))
    labels = [json.dumps(x) for x in sc.labels]
    return sc, scores, labels


def test_with_every_label_known_the_set_equals_the_offline_replay(cfg, logged):
    sc, scores, labels = logged
    df, stats = feedback_training_set(cfg, model_inputs(cfg), scores, labels)
    ref = build_dataset(cfg, sc.events, sc.labels).set_index("__event_id__")
    got = df.set_index("__event_id__")
    assert set(got.index) == set(ref.index) and stats.rows == len(ref)
    for i in model_inputs(cfg):
        a, b = got[i.name].loc[ref.index], ref[i.name]
        if i.type == "string":
            assert (a == b).all(), i.name
        else:
            np.testing.assert_allclose(a.astype(float), b.astype(float), rtol=0, atol=0)
    assert (got[LABEL_COLUMN].loc[ref.index] == ref[LABEL_COLUMN]).all()
    assert stats.model_versions == {"1": len(ref)} and stats.labels_after_cutoff == 0


def test_only_what_was_known_at_the_cutoff(cfg, logged):
    _, scores, labels = logged
    lab = [json.loads(x) for x in labels]
    as_of = sorted(x["label_time"] for x in lab)[len(lab) // 2]
    # a correction known after the cut-off must not count; one known before it must
    first, second = lab[0], lab[1]
    y = cfg.labels.label
    corrections = [
        json.dumps({**first, y: 1 - first[y], "label_time": as_of + 1}),
        json.dumps({**second, y: 1 - second[y], "label_time": as_of}),
    ]
    df, stats = feedback_training_set(
        cfg, model_inputs(cfg), scores + scores[:50], labels + corrections, as_of
    )
    assert (df["__label_time__"] <= as_of).all() and (df["__event_time__"] <= as_of).all()
    known = {x["event_id"] for x in lab if x["label_time"] <= as_of}
    assert set(df["__event_id__"]) <= known
    by_id = df.set_index("__event_id__")[LABEL_COLUMN]
    assert by_id[first["event_id"]] == first[y]
    assert by_id[second["event_id"]] == 1 - second[y]
    assert stats.resent_scores == 50 and stats.labels_after_cutoff > 0
    assert stats.rows + stats.unlabelled + stats.scored_after_cutoff == len(scores)
    assert len(df) == df["__event_id__"].nunique()


def test_bad_records_are_counted_not_fatal(cfg, logged):
    _, scores, labels = logged
    df, stats = feedback_training_set(
        cfg, model_inputs(cfg), scores + ["{not json", '{"event_id": "x"}'], labels + ["[]"]
    )
    assert (stats.bad_score_records, stats.bad_labels) == (2, 1) and len(df) > 0


def test_a_missing_logged_input_names_it_and_the_fix(cfg, logged):
    _, scores, labels = logged
    doc = json.loads(scores[-1])
    del doc["inputs"]["amount"]
    with pytest.raises(ModelError, match=r"no logged input \['amount'\].*--history"):
        feedback_training_set(cfg, model_inputs(cfg), [json.dumps(doc)], labels)


def test_nothing_labelled_says_what_to_do(cfg, logged):
    _, scores, _ = logged
    with pytest.raises(ModelError, match="labels topic"):
        feedback_training_set(cfg, model_inputs(cfg), scores, [])


def test_reweighing_hand_example():
    # group a: 3 rows (2 positive), group b: 1 row (0 positive); P(y=1) = 1/2
    w, table = reweighing_weights(["a", "a", "a", "b"], [1, 1, 0, 0])
    assert table == {
        "a": {"1": pytest.approx(0.75 * 0.5 / 0.5), "0": pytest.approx(0.75 * 0.5 / 0.25)},
        "b": {"0": pytest.approx(0.25 * 0.5 / 0.25)},
    }
    assert w.tolist() == pytest.approx([0.75, 0.75, 1.5, 0.5])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 60), st.integers(1, 60)), min_size=1, max_size=5))
def test_reweighed_every_group_has_the_overall_label_rate(cells):
    """Each group holds both labels (a group with one label cannot move, see the module)."""
    groups, labels = [], []
    for k, (n0, n1) in enumerate(cells):
        groups += [f"g{k}"] * (n0 + n1)
        labels += [0] * n0 + [1] * n1
    w, _ = reweighing_weights(groups, labels)
    y = np.array(labels)
    assert w.sum() == pytest.approx(len(y))
    g = np.array(groups)
    for grp in set(groups):
        m = g == grp
        weighted_rate = (w[m] * y[m]).sum() / w[m].sum()
        assert weighted_rate == pytest.approx(y.mean())


def test_training_with_reweighing_records_it(cfg, logged, tmp_path):
    sc, _, _ = logged
    df = build_dataset(cfg, sc.events, sc.labels)
    plain = train(cfg, df, tmp_path / "plain", progress=lambda m: None)
    fair = train(cfg, df, tmp_path / "fair", progress=lambda m: None, reweigh=True)
    info = json.loads((tmp_path / "fair" / "training.json").read_text())
    assert set(info["mitigation"]["reweighing"]) == set(df["__group__"])
    assert json.loads((tmp_path / "plain" / "training.json").read_text())["mitigation"] == {
        "reweighing": None
    }
    assert plain.metrics["disparate_impact_holdout"] is not None
    assert fair.metrics["roc_auc"] != plain.metrics["roc_auc"], "the weights reached the fit"
