"""One thread at a time in Evidently, per process.

The monitors of a slot share one Python process, and Beam opens and runs their bundles on
separate threads: two monitors importing Evidently for the first time at once can stop on
Python's import lock (``_DeadlockError`` on one of Evidently's modules, seen in a monitoring
job at parallelism 2). Evidently's work is Python under the GIL, so serializing it costs no
parallelism; other processes are not held up.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")

EVIDENTLY_LOCK = threading.RLock()  # re-entrant: a guarded call may call another


def one_thread_in_evidently(fn: Callable[P, R]) -> Callable[P, R]:
    """``fn`` (which imports or runs Evidently) holds the process's Evidently lock."""

    @functools.wraps(fn)
    def guarded(*args: P.args, **kwargs: P.kwargs) -> R:
        with EVIDENTLY_LOCK:
            return fn(*args, **kwargs)

    return guarded
