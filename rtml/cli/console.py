"""Terminal output: progress lines and one-line failures."""

from __future__ import annotations

import sys
import time


def say(msg: str) -> None:
    print(msg, flush=True)


def step(msg: str) -> None:
    print(f"==> {msg}", flush=True)


def fail(msg: str) -> None:
    print(f"rtml: error: {msg}", file=sys.stderr, flush=True)


class Progress:
    """Prints 'label: n/total (rate/s)' at most every ``every`` seconds."""

    def __init__(self, label: str, total: int | None = None, every: float = 2.0) -> None:
        self.label = label
        self.total = total
        self.every = every
        self.start = time.monotonic()
        self.last = 0.0

    def update(self, n: int, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.last < self.every:
            return
        self.last = now
        rate = n / max(now - self.start, 1e-9)
        total = f"/{self.total}" if self.total else ""
        say(f"    {self.label}: {n}{total} ({rate:,.0f}/s)")
