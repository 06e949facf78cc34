"""Job config parsing: the demo config loads; mistakes fail with what to do."""

from __future__ import annotations

import re
import tomllib

import pytest

from rtml.core.config import load_config, parse_config, parse_duration
from rtml.core.errors import ConfigError
from tests.conftest import DEMO_CONFIG


def raw():
    return tomllib.loads(DEMO_CONFIG.read_text())


def test_demo_config_loads(cfg):
    assert cfg.features.entities == ("account", "merchant")
    assert "account_amount_mean_1h" in cfg.features.names
    assert cfg.model_inputs[:4] == ("amount", "category", "channel", "country")
    assert cfg.schema.sensitive_attribute == "age_band"


def test_topic_prefix_and_bootstrap_override(cfg):
    c = cfg.with_topic_prefix("t.").with_bootstrap("127.0.0.1:1")
    assert c.kafka.topics.scores == "t.cards.scores" and c.kafka.bootstrap_servers == "127.0.0.1:1"


@pytest.mark.parametrize(
    "text,ms",
    [
        ("500ms", 500),
        ("30s", 30_000),
        ("5m", 300_000),
        ("1h", 3_600_000),
        ("7d", 604_800_000),
        (42, 42),
    ],
)
def test_durations(text, ms):
    assert parse_duration(text, "x") == ms


@pytest.mark.parametrize(
    "mutate,message",
    [
        (lambda r: r["job"].update(delivery="twice"), "exactly-once"),
        (
            lambda r: r["job"].update(pipelined_state_writes="yes"),
            "pipelined_state_writes = 'yes' is not true or false",
        ),
        (
            lambda r: r["features"].append(
                {"entity": "planet", "aggregations": ["count"], "windows": ["1h"]}
            ),
            "entity 'planet'",
        ),
        (
            lambda r: r["features"].append(
                {
                    "entity": "account",
                    "field": "country",
                    "aggregations": ["mean"],
                    "windows": ["1h"],
                }
            ),
            "numeric field",
        ),
        (
            lambda r: r["features"].append(
                {"entity": "account", "aggregations": ["median"], "windows": ["1h"]}
            ),
            "unknown",
        ),
        (
            lambda r: r["features"].append(
                {"entity": "account", "aggregations": ["count"], "windows": ["1h"]}
            ),
            "declared twice",
        ),
        (
            lambda r: r["features"].append(
                {"entity": "account", "field": "amount", "aggregations": ["sum"]}
            ),
            "needs windows",
        ),
        (lambda r: r["schema"].update(event_time="amount"), "must have type 'timestamp'"),
        (lambda r: r["model"].update(raw_inputs=["nope"]), "raw_inputs"),
        (lambda r: r["monitoring"].update(window="soon"), "not a duration"),
        (lambda r: r.pop("model"), "missing section [model]"),
        (lambda r: r["job"].update(feature_order="random"), "feature_order = 'random'"),
        (lambda r: r["job"].update(state_backend="disk"), "state_backend = 'disk'"),
        (lambda r: r["job"].update(python_workers=3), "python_workers = 3"),
    ],
)
def test_mistakes_are_explained(mutate, message):
    r = raw()
    mutate(r)
    with pytest.raises(ConfigError, match=re.escape(message)) as e:
        parse_config(r)
    assert e.value.hint  # every config error says what to do


def test_missing_file():
    with pytest.raises(ConfigError, match="does not exist"):
        load_config("/nonexistent.toml")
