"""`rtml init --sample`: a config inferred from a sample, that the job accepts as written."""

from __future__ import annotations

import csv
import json
import random
import tomllib

import pytest

from rtml.cli.commands.init import Choices, init_config
from rtml.cli.scenarios.cards import ScenarioOptions, generate
from rtml.core.config import load_config
from rtml.core.errors import ConfigError
from tests.integration.trips.generator import trips

T0 = 1_767_225_600_000


def test_trips_sample_gives_a_config_the_job_accepts(tmp_path):
    events, _, _ = trips(3, 800, hours=24)
    sample = tmp_path / "trips.jsonl"
    sample.write_text("\n".join(events) + "\n")
    out = tmp_path / "trips.toml"
    guesses = init_config(sample, out, Choices(sensitive="rider_gender"))
    cfg = load_config(out)
    assert cfg.schema.event_id == "trip_id" and cfg.schema.event_time == "ended_at"
    assert {e.key for e in cfg.schema.entities} == {"rider", "driver"}
    assert cfg.schema.field("city").type == "category"
    assert cfg.schema.field("ended_at").type == "timestamp"  # ISO-8601 with a zone
    assert cfg.schema.sensitive_attribute == "rider_gender"
    assert "rider_gender" not in cfg.model.raw_inputs
    assert any(g.startswith("event id") for g in guesses)
    assert "# guess" in out.read_text()


def test_the_label_is_never_a_field_or_a_model_input(tmp_path):
    sc = generate(ScenarioOptions(seed=2, events=1500, days=2))
    label = {lab["event_id"]: lab["is_fraud"] for lab in sc.labels}
    sample = tmp_path / "cards.jsonl"
    sample.write_text(
        "\n".join(json.dumps(e | {"is_fraud": label.get(e["event_id"], 0)}) for e in sc.events)
    )
    out = tmp_path / "cards.toml"
    init_config(sample, out, Choices(label="is_fraud", sensitive="age_band"))
    cfg = load_config(out)
    assert cfg.labels.label == "is_fraud"
    assert "is_fraud" not in cfg.schema.field_names and "is_fraud" not in cfg.model.raw_inputs
    assert [e.key for e in cfg.schema.entities] == ["merchant_id", "account_id"]


def _sensors(tmp_path, ts_scale=1):
    random.seed(1)
    path = tmp_path / "sensors.csv"
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["reading_id", "sensor", "temp", "status", "ts", "alarm"])
        for i in range(400):
            w.writerow(
                [
                    f"rd{i}",
                    f"s{random.randint(1, 30)}",
                    round(random.gauss(20, 3), 2),
                    random.choice(["ok", "warn"]),
                    (T0 + i * 60_000) // ts_scale,
                    int(random.random() < 0.1),
                ]
            )
    return path


def test_a_csv_sample_with_one_entity_whose_key_takes_any_id(tmp_path):
    out = tmp_path / "sensors.toml"
    init_config(_sensors(tmp_path), out, Choices(label="alarm"))
    cfg = load_config(out)
    assert [e.key for e in cfg.schema.entities] == ["sensor"]
    assert cfg.schema.field("sensor").type == "string"  # not the sample's 30 categories
    assert cfg.schema.field("temp").type == "float" and cfg.schema.field("ts").type == "timestamp"
    raw = tomllib.loads(out.read_text())
    assert raw["monitoring"]["window"].endswith("h")


def test_epoch_seconds_get_the_unit_the_job_reads_them_in(tmp_path):
    out = tmp_path / "s.toml"
    init_config(_sensors(tmp_path, ts_scale=1000), out, Choices(label="alarm"))
    cfg = load_config(out)
    ts = cfg.schema.field("ts")
    assert ts.type == "timestamp" and ts.unit == "s"


def test_what_it_cannot_settle_is_one_line_naming_the_flag(tmp_path):
    two_ids = tmp_path / "two.jsonl"
    two_ids.write_text(
        "\n".join(
            json.dumps({"a": f"x{i}", "b": f"y{i}", "k": f"k{i % 5}", "v": i, "t": T0 + i})
            for i in range(50)
        )
    )
    with pytest.raises(ConfigError, match="--event-id"):
        init_config(two_ids, tmp_path / "t.toml", Choices())
    init_config(two_ids, tmp_path / "t.toml", Choices(event_id="a"))
    assert load_config(tmp_path / "t.toml").schema.event_id == "a"
    with pytest.raises(ConfigError, match="exists"):
        init_config(two_ids, tmp_path / "t.toml", Choices(event_id="a"))
