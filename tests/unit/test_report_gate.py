"""`rtml reports --fail-on`: which final windows count as breaches, and the exit code."""

from __future__ import annotations

import pytest

from rtml.cli.commands.review import BREACH_EXIT, Verdicts, breaches, gate
from rtml.cli.verbs.reports import _gate_kinds, _since
from rtml.core.errors import ConfigError

H = 3_600_000
T0 = 1_767_225_600_000


def drift(h: int, status: str, version: str = "1") -> dict:
    return {
        "window_start": T0 + h * H,
        "window": f"w{h}",
        "status": status,
        "dataset_drift": status == "drift",
        "drift_share": 0.5 if status == "drift" else 0.1,
        "drifted_columns": ["amount"] if status == "drift" else [],
        "model_version": version,
    }


def quality(alert: bool) -> dict:
    return {
        "alert": alert,
        "roc_auc": 0.61 if alert else 0.84,
        "roc_auc_ci95": [0.55, 0.67] if alert else [0.8, 0.88],
        "roc_auc_floor": 0.8,
        "next_step": "rtml train --from-log" if alert else None,
    }


def fair(
    h: int, status: str, alerts: list[str], watch=(), version: str = "1", q: bool = False
) -> dict:
    return {
        "quality": quality(q),
        "window_start": T0 + h * H,
        "window": f"w{h}",
        "status": status,
        "alerts": alerts,
        "watch": list(watch),
        "model_version": version,
    }


VERDICTS = Verdicts(
    fairness=[
        fair(0, "final", ["disparate_impact"]),
        fair(6, "final", [], watch=["disparate_impact"]),  # a point estimate only: no breach
        fair(12, "update", ["disparate_impact"], q=True),  # not final yet
        fair(18, "final", [], q=True),
    ],
    drift=[
        drift(0, "warmup"),
        drift(6, "ok"),
        drift(12, "drift"),
        drift(18, "drift", version="2"),
        drift(24, "insufficient_data"),
    ],
)


def test_only_final_breaches_count():
    found = breaches(VERDICTS, ("drift", "fairness"))
    assert [(b.kind, b.window) for b in found] == [
        ("fairness", "w0"),
        ("drift", "w12"),
        ("drift", "w18"),
    ]
    found = breaches(VERDICTS, ("quality",))
    assert [(b.kind, b.window) for b in found] == [("quality", "w18")]
    assert "0.610 (95% 0.550-0.670) under 0.800; next: rtml train --from-log" in found[0].detail


def test_since_and_model_version_narrow_the_scope():
    assert [b.window for b in breaches(VERDICTS, ("drift",), since_ms=T0 + 13 * H)] == ["w18"]
    assert breaches(VERDICTS, ("drift",), since_ms=T0 + 19 * H) == []
    assert [b.window for b in breaches(VERDICTS, ("drift",), model_version="1")] == ["w12"]


def test_a_run_without_drift_passes_and_one_with_it_gets_the_breach_code():
    clean = Verdicts(fairness=[], drift=[drift(0, "warmup"), drift(6, "ok"), drift(12, "ok")])
    assert gate(breaches(clean, ("drift",)), ("drift",)) == 0
    assert gate(breaches(VERDICTS, ("drift",)), ("drift",)) == BREACH_EXIT
    assert BREACH_EXIT not in range(1, 8)  # apart from every error's code


def test_arguments_are_checked_in_one_line():
    assert _gate_kinds("drift, fairness,quality") == ("drift", "fairness", "quality")
    with pytest.raises(ConfigError, match="accuracy is not a verdict to gate on"):
        _gate_kinds("drift,accuracy")
    assert _since("2026-01-01T01:00:00Z") == T0 + H
    assert _since(str(T0)) == T0
    with pytest.raises(ConfigError, match="is not a time"):
        _since("yesterday")


def test_a_drift_breach_says_what_made_the_verdict():
    plain = drift(0, "drift")
    calibrated = plain | {
        "verdict": "calibrated",
        "p_value": 0.0004,
        "false_alarm_rate": 0.01,
        "calibrated_drifted_columns": ["amount", "score"],
    }
    v = Verdicts(fairness=[], drift=[plain, calibrated | {"window_start": T0 + 6 * H}])
    a, b = breaches(v, ("drift",))
    assert a.detail == "drift share 0.50 (amount)"
    assert b.detail == (
        "calibrated test p = 0.0004 (threshold at 1% false alarms per clean window) (amount, score)"
    )
