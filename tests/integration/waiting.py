"""Polling for a condition on a live job, with a message that says what did not happen."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from deploy import process

T = TypeVar("T")


def wait_for(pred: Callable[[], T], timeout: float, what: str, every: float = 0.5) -> T:
    """``deploy.process.wait_for`` that fails the test, naming what it waited for."""
    v = process.wait_for(pred, timeout, every)
    if not v:
        raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
    return v
