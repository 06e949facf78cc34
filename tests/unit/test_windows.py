"""Window assignment for the monitors."""

from __future__ import annotations

import pytest

from rtml.core.config import parse_config
from rtml.core.errors import ConfigError
from udfs.windows import window_start, windows_for

H = 3_600_000


def test_tumbling_is_one_window():
    assert windows_for(7 * H + 5, 6 * H, 6 * H) == [6 * H] == [window_start(7 * H + 5, 6 * H)]


def test_sliding_windows_cover_the_timestamp():
    starts = windows_for(7 * H + 5, 6 * H, 2 * H)
    assert starts == [6 * H, 4 * H, 2 * H]
    assert all(s <= 7 * H + 5 < s + 6 * H for s in starts)


def test_slide_must_divide_window():
    import tomllib

    from tests.conftest import DEMO_CONFIG

    raw = tomllib.loads(DEMO_CONFIG.read_text())
    raw["monitoring"]["slide"] = "5h"
    with pytest.raises(ConfigError, match="must divide"):
        parse_config(raw)
