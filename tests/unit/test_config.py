"""Job config parsing: the demo config loads; mistakes fail with what to do."""

from __future__ import annotations

import re
import tomllib

import pytest

from rtml.core.config import MAX_FALSE_ALARM_RATE, load_config, parse_config, parse_duration
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
        (lambda r: r["schema"].update(sensitive_attribute=["age_band", "nope"]), "'nope'"),
        (
            lambda r: r["schema"].update(sensitive_attribute=["age_band", "age_band"]),
            "list of distinct field names",
        ),
        (lambda r: r["schema"].update(sensitive_attribute=[]), "list of distinct"),
        (lambda r: r["monitoring"].update(quality_sample_cap=10), "quality_sample_cap = 10"),
        (lambda r: r["monitoring"].update(quality_auc_margin=1.5), "quality_auc_margin"),
        (lambda r: r["monitoring"].update(drift_false_alarm_rate=0.2), "not in (0, 0.1)"),
        (lambda r: r["monitoring"].update(drift_false_alarm_rate=0), "drift_false_alarm_rate"),
        (lambda r: r["monitoring"].update(drift_false_alarm_rate="1%"), "not a number"),
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


WRONG_VALUES = ["two", 3.5, [], {}, True, -1]


def _paths(doc, path=()):
    """Every key path of a parsed TOML document (tables, lists and their elements)."""
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from _paths(v, (*path, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from _paths(v, (*path, i))
    if path:
        yield path


def test_a_wrong_value_anywhere_is_a_one_line_error_never_a_traceback():
    """Every key of the demo config, set to each kind of wrong value in turn (or removed):
    the config either still parses or fails with a one-line ConfigError; no other
    exception. Spot checks that the message names the key."""
    import copy

    base = raw()
    tried = 0
    for path in list(_paths(base)):
        for wrong in [*WRONG_VALUES, None]:
            r = copy.deepcopy(base)
            parent = r
            for p in path[:-1]:
                parent = parent[p]
            if wrong is None:
                if not isinstance(parent, dict):
                    continue
                del parent[path[-1]]
            else:
                parent[path[-1]] = wrong
            tried += 1
            try:
                parse_config(r, "cards.toml")
            except ConfigError as e:
                assert "\n" not in str(e), (path, wrong, str(e))
    assert tried > 1000


@pytest.mark.parametrize(
    "mutate,message",
    [
        (lambda r: r["job"].update(parallelism="two"), "parallelism = 'two' is not an integer"),
        (
            lambda r: r["monitoring"].update(four_fifths="x"),
            "[monitoring] four_fifths = 'x' is a string, not a number",
        ),
        (
            lambda r: r["schema"]["fields"].update(amount="float"),
            "[schema.fields] amount is a string, not a table",
        ),
        (
            lambda r: r["schema"]["fields"]["category"].update(values="food"),
            "[schema.fields.category] values = 'food' is not a list of strings",
        ),
        (lambda r: r["kafka"].update(topics="cards"), "[kafka] topics is a string, not a table"),
    ],
)
def test_wrong_types_name_the_key(mutate, message):
    r = raw()
    mutate(r)
    with pytest.raises(ConfigError) as e:
        parse_config(r, "cards.toml")
    assert message in str(e.value)


def test_several_sensitive_fields():
    r = raw()
    r["schema"]["sensitive_attribute"] = ["age_band", "country"]
    s = parse_config(r).schema
    assert s.sensitive_attribute == "age_band" and s.more_sensitive == ("country",)
    assert s.sensitive_attributes == ("age_band", "country")


def test_the_drift_false_alarm_rate_defaults_to_one_percent_inside_the_fitted_tail():
    from udfs.drift_calibration import TAIL_SHARE

    assert parse_config(raw()).monitoring.drift_false_alarm_rate == 0.01
    assert MAX_FALSE_ALARM_RATE == TAIL_SHARE
