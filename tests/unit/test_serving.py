"""The gate every served model passes (start and hot-swap alike) and the control records
that switch models: each fault is refused with a message naming the cause and the fix."""

from __future__ import annotations

import json

import pytest

from models.dataset import build_dataset
from models.export import export
from models.store.registry import Registry
from models.train import train
from rtml.cli.scenarios.cards import ScenarioOptions, generate
from rtml.core.errors import ModelError, RecordError
from tests import model_faults
from udfs.serving import SHADOW, UNSHADOW, ModelSwitch, load_serving_model, parse_model_switch


@pytest.fixture(scope="module")
def registry(cfg, tmp_path_factory):
    root = tmp_path_factory.mktemp("serving")
    sc = generate(ScenarioOptions(seed=5, events=3000, days=1, bias=0.2))
    train(cfg, build_dataset(cfg, sc.events, sc.labels), root / "a", progress=lambda m: None)
    reg = Registry(root / "registry")
    good = export(root / "a", reg, progress=lambda m: None)
    return reg, good, model_faults.all_faults(reg, good, "amount")


def test_a_good_model_loads_and_scores(cfg, registry):
    reg, good, _ = registry
    m = load_serving_model(reg.root, cfg.model.name, good.metadata.version, cfg.model_inputs)
    assert m.version == good.metadata.version and m.inputs == good.metadata.input_names
    assert 0.0 <= m.scorer.score_one({"amount": 12.5, "category": "fuel"}) <= 1.0


@pytest.mark.parametrize(
    "fault, message",
    [
        ("tampered", "corrupt or was replaced"),
        ("truncated", "ONNX Runtime cannot load"),
        ("renamed_input", r"does not produce: \['amount_usd'\]"),
        ("wrong_input_type", "fails on a probe row"),
    ],
)
def test_a_faulty_model_is_refused_with_its_reason(cfg, registry, fault, message):
    reg, _, faults = registry
    with pytest.raises(ModelError, match=message):
        load_serving_model(reg.root, cfg.model.name, faults[fault], cfg.model_inputs)


def test_an_unknown_version_names_the_versions_there_are(cfg, registry):
    reg, _, _ = registry
    with pytest.raises(ModelError, match=r"no version 99 .*rtml models list"):
        load_serving_model(reg.root, cfg.model.name, "99", cfg.model_inputs)


def test_control_record_round_trip():
    s = ModelSwitch("cards-fraud", "3")
    assert parse_model_switch(s.to_json(), "cards-fraud") == s
    assert (
        parse_model_switch('{"model": "cards-fraud", "version": 4}', "cards-fraud").version == "4"
    )


@pytest.mark.parametrize(
    "raw, field",
    [
        (b"\xff\xfe", None),
        ("[1, 2]", None),
        ('{"model": "other", "version": "2"}', "model"),
        ('{"model": "cards-fraud", "version": "../1"}', "version"),
        ('{"model": "cards-fraud", "version": true}', "version"),
        ('{"model": "cards-fraud"}', "version"),
        ('{"action": "delete", "model": "cards-fraud", "version": "2"}', "action"),
    ],
)
def test_bad_control_records_name_the_field_and_the_fix(raw, field):
    with pytest.raises(RecordError) as e:
        parse_model_switch(raw, "cards-fraud")
    assert e.value.field == field
    assert "->" in str(e.value)


def test_control_records_are_plain_json():
    doc = json.loads(ModelSwitch("m", "1").to_json())
    assert doc == {"action": "activate", "model": "m", "version": "1"}


def test_shadow_control_records_round_trip():
    for s in (ModelSwitch("m", "2", SHADOW), ModelSwitch("m", None, UNSHADOW)):
        assert parse_model_switch(s.to_json(), "m") == s
    assert json.loads(ModelSwitch("m", None, UNSHADOW).to_json()) == {
        "action": "unshadow",
        "model": "m",
    }
    with pytest.raises(RecordError) as e:
        parse_model_switch('{"action": "shadow", "model": "m"}', "m")
    assert e.value.field == "version"
