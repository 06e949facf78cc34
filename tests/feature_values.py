"""How a test compares a feature the job emitted with the offline replay's: equal, or both
missing (the job emits a NaN feature as null, the replay holds NaN)."""

from __future__ import annotations

import math


def same_feature(want: float, have: float | None) -> bool:
    have = math.nan if have is None else have
    return (math.isnan(want) and math.isnan(have)) or want == have
