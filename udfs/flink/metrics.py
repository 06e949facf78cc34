"""rtml's operator metrics, registered in Flink's metric system under the group ``rtml``.

Names as the Prometheus reporter exports them (operator scope):
``flink_taskmanager_job_task_operator_rtml_<name>``; in the REST API and web UI they are
``<operator>.rtml.<name>``. docs/operations.md ("Metrics") lists every one.
"""

from __future__ import annotations

from collections.abc import Callable

from pyflink.datastream import RuntimeContext

from udfs.flink.context import is_thread_mode
from udfs.latency import RecentLatencies

GROUP = "rtml"


class _NoCounter:
    def inc(self, n: int = 1) -> None:
        pass


def _group(runtime_context: RuntimeContext):
    """The operator's ``rtml`` metric group, or None when Python metrics are switched off."""
    try:
        return runtime_context.get_metrics_group().add_group(GROUP)
    except Exception:  # python.metric.enabled=false: metrics are optional, the job is not
        return None


def counters(runtime_context: RuntimeContext, *names: str) -> list:
    group = _group(runtime_context)
    if group is None:
        return [_NoCounter() for _ in names]
    return [group.counter(n) for n in names]


def gauges(runtime_context: RuntimeContext, values: dict[str, Callable[[], int]]) -> None:
    """Python gauges; none in thread mode. There Flink's metric thread calls a gauge straight
    into the embedded interpreter, off the task's thread: measured, the TaskManager died of a
    SIGSEGV in libpython (``MetricGauge.getValue`` from thread ``flink-metrics``)."""
    if is_thread_mode(runtime_context):
        return
    group = _group(runtime_context)
    if group is not None:
        for name, fn in values.items():
            group.gauge(name, fn)


def latency_gauges(
    runtime_context: RuntimeContext, prefix: str, window: RecentLatencies, unit: str
) -> None:
    """p50/p95/p99/max gauges (in ``unit``, as recorded) over the window's recent samples: a
    histogram as Flink's Python metrics can export it (see ``udfs.latency``)."""
    gauges(
        runtime_context,
        {
            f"{prefix}_p50_{unit}": lambda: window.quantile(0.5),
            f"{prefix}_p95_{unit}": lambda: window.quantile(0.95),
            f"{prefix}_p99_{unit}": lambda: window.quantile(0.99),
            f"{prefix}_max_{unit}": lambda: window.quantile(1.0),
        },
    )
