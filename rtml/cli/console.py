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
    """Progress of long work: on a terminal, a bar with the count, the rate and an estimate of
    the time left (tqdm); elsewhere (a log, a pipe, CI) quiet until the end, when one line says
    how many and how fast."""

    def __init__(self, label: str, total: int | None = None) -> None:
        self.label = label
        self.total = total
        self.start = time.monotonic()
        self.bar = None
        if sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=f"    {label}", unit="", unit_scale=True, leave=False)

    def update(self, n: int, force: bool = False) -> None:
        """``n`` done so far; ``force`` at the end."""
        if self.bar is not None:
            self.bar.update(n - self.bar.n)
        if force:
            if self.bar is not None:
                self.bar.close()
                self.bar = None
            rate = n / max(time.monotonic() - self.start, 1e-9)
            total = f"/{self.total}" if self.total else ""
            say(f"    {self.label}: {n}{total} ({rate:,.0f}/s)")
