"""Polling for a condition on a live job, with a message that says what did not happen."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from deploy import process
from deploy.flink_rest import FlinkRest

T = TypeVar("T")


def wait_for(
    pred: Callable[[], T],
    timeout: float,
    what: str,
    every: float = 0.5,
    detail: Callable[[], str] | None = None,
) -> T:
    """``deploy.process.wait_for`` that fails the test, naming what it waited for and, when
    ``detail`` is given, what it saw at the end (counts so far, the job's state)."""
    v = process.wait_for(pred, timeout, every)
    if not v:
        seen = f"; {_safe(detail)}" if detail else ""
        raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}{seen}")
    return v


def job_detail(rest: FlinkRest, job_id: str) -> str:
    """One line on a job for a failure message: its state, restarts and newest exception."""
    state = rest.job(job_id).get("state", "?")
    restarts = rest.restarts(job_id)
    exc = rest.get(f"/jobs/{job_id}/exceptions")
    root = (exc.get("root-exception") or "").strip().splitlines()
    newest = f", newest exception: {root[0][:300]}" if root else ""
    return f"job {job_id} is {state} after {restarts} restart(s){newest}"


def _safe(detail: Callable[[], str]) -> str:
    try:
        return detail()
    except Exception as e:  # the message must not hide the timeout behind another error
        return f"(could not describe: {e})"
