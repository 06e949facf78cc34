"""Bias mitigation at training: reweighing by group and label (Kamiran and Calders, 2012).

Each training row of group g with label y gets weight

    w(g, y) = P(g) * P(y) / P(g, y)

(the frequency it would have if group and label were independent, over the frequency seen).
Under these weights every group has the same label rate as the whole training set, so the
classifier cannot learn the label's dependence on the group from the base rates alone; the
weights sum to the number of rows. It changes no row and no feature, only how much each
counts in the fit. A group in which one label never occurs cannot be balanced (there is no
row to weigh up); its rows keep the weights of the cells it has.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np


def reweighing_weights(
    groups: Sequence[object], labels: Sequence[int]
) -> tuple[np.ndarray, dict[str, dict[str, float]]]:
    """Per-row weights, and the weight table ``{group: {label: weight}}`` for the model card."""
    n = len(labels)
    if n == 0 or len(groups) != n:
        raise ValueError("reweighing needs one group per label and at least one row")
    g = [str(x) for x in groups]
    y = [int(v) for v in labels]
    n_g, n_y, n_gy = Counter(g), Counter(y), Counter(zip(g, y, strict=True))
    table = {
        grp: {
            str(lab): (n_g[grp] * n_y[lab]) / (n * cnt)
            for (gg, lab), cnt in n_gy.items()
            if gg == grp
        }
        for grp in sorted(n_g)
    }
    weights = np.array([table[gi][str(yi)] for gi, yi in zip(g, y, strict=True)], dtype=np.float64)
    return weights, table
