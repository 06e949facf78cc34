"""A small client for the Flink REST API (JobManager): jobs, savepoints, metrics.

Used for any JobManager address, the local session cluster or a remote one; errors say
what to check.
"""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

from deploy.process import wait_for
from rtml.core.errors import JobError, ServiceError

# the last line of a Python traceback for an error rtml raises on purpose (rtml.core.errors): its
# message says what to do
_RTML_ERROR = re.compile(r"rtml\.core\.errors\.(\w+): (.+)")


def rtml_error_in(trace: str) -> str | None:
    """``"<Error class>: <message -> what to do>"`` of the last rtml error in a stack trace
    (a Python worker's traceback travels inside the JVM's), or None."""
    found = _RTML_ERROR.findall(trace)
    return f"{found[-1][0]}: {found[-1][1].strip()}" if found else None


def _is_gauge(metric_id: str) -> bool:
    """rtml's gauges (latency percentiles, model versions, the largest key's state); everything
    else adds up (the
    sources' ``pendingRecords``, the consumer lag, adds up over the subtasks' partitions)."""
    return metric_id.endswith(("_us", "_ms", "model_version", "shadow_version", "_largest_key"))


@dataclass(frozen=True)
class FlinkRest:
    address: str  # host:port of the JobManager's REST endpoint

    def _call(self, method: str, path: str, body: dict | None = None, timeout: float = 10.0) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            f"http://{self.address}{path}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json"} if data else {},
        )
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                raw = r.read()
        except urllib.error.HTTPError as e:
            detail = e.read().decode(errors="replace")
            try:
                detail = "; ".join(json.loads(detail).get("errors", [detail]))
            except ValueError:
                pass
            raise JobError(
                f"the Flink REST API at {self.address} refused {method} {path}: HTTP {e.code} {detail.strip()[:300]}",
                hint="check the job id with `rtml jobs list`",
            ) from None
        except OSError as e:
            raise ServiceError(
                f"cannot reach the Flink REST API at {self.address} ({e})",
                hint="start the local cluster with `rtml cluster start`, or pass --jobmanager HOST:PORT",
            ) from None
        return json.loads(raw) if raw else {}

    def get(self, path: str) -> Any:
        return self._call("GET", path)

    def overview(self) -> dict | None:
        """The cluster overview, or None when nothing answers."""
        try:
            return self.get("/overview")
        except (ServiceError, JobError):
            return None

    def jobs(self) -> list[dict]:
        return self.get("/jobs/overview").get("jobs", [])

    def job(self, job_id: str) -> dict:
        return self.get(f"/jobs/{job_id}")

    def cancel(self, job_id: str) -> None:
        self._call("PATCH", f"/jobs/{job_id}")

    def stop_with_savepoint(
        self, job_id: str, directory: str | None, timeout: float = 300.0, drain: bool = False
    ) -> str:
        """Stop the job with a savepoint; returns the savepoint's path. Without ``drain`` the
        sources stop with no end-of-input watermark, so event-time windows stay open in the
        savepoint (resume to carry on); with it, the maximum watermark flows first and fires
        every window and timer (the end of a bounded run). Returns once the job has finished,
        so its last transaction is committed and its slots are free."""
        body: dict[str, Any] = {"drain": drain}
        if directory:
            body["targetDirectory"] = directory
        self.wait_all_running(job_id)
        trigger = self._call("POST", f"/jobs/{job_id}/stop", body)["request-id"]
        location = self._await_savepoint(job_id, trigger, timeout)
        self.wait_for_state(job_id, {"FINISHED"}, 60)
        return location

    def wait_all_running(self, job_id: str, timeout: float = 180.0) -> None:
        """Wait until every task of the job runs (or has finished): Flink declines a savepoint
        while any is still deploying or initializing, as just after a submit or a restart."""
        deadline = time.monotonic() + timeout
        while True:
            statuses = {v.get("status") for v in self.vertices(job_id)}
            if statuses and statuses <= {"RUNNING", "FINISHED"}:
                return
            if time.monotonic() > deadline:
                raise JobError(
                    f"job {job_id} still has tasks {', '.join(sorted(statuses - {'RUNNING', 'FINISHED'}))} after {timeout:.0f}s; a savepoint needs every task running",
                    hint="see `rtml jobs list` and the TaskManager logs; retry once the job runs",
                )
            time.sleep(0.5)

    def savepoint(self, job_id: str, directory: str | None, timeout: float = 300.0) -> str:
        """Take a savepoint and keep the job running; returns the savepoint's path."""
        body: dict[str, Any] = {"cancel-job": False}
        if directory:
            body["target-directory"] = directory
        self.wait_all_running(job_id)
        trigger = self._call("POST", f"/jobs/{job_id}/savepoints", body)["request-id"]
        return self._await_savepoint(job_id, trigger, timeout)

    def _await_savepoint(self, job_id: str, trigger: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            st = self.get(f"/jobs/{job_id}/savepoints/{trigger}")
            if st.get("status", {}).get("id") == "COMPLETED":
                op = st.get("operation", {})
                if "location" in op:
                    return op["location"]
                cause = op.get("failure-cause", {}).get("stack-trace", "unknown cause")
                first = next((ln for ln in cause.splitlines() if ln.strip()), cause)
                raise JobError(
                    f"the savepoint of job {job_id} failed: {first.strip()[:300]}",
                    hint="is a savepoint directory configured (execution.checkpointing.savepoint-dir) or given with --dir?",
                )
            time.sleep(0.5)
        raise JobError(
            f"the savepoint of job {job_id} did not complete in {timeout:.0f}s",
            hint="see the JobManager log; large state may need a longer --timeout",
        )

    def rtml_failure(self, job_id: str) -> str | None:
        """The newest failure of the job that rtml raised on purpose (such as a savepoint
        whose state layout this rtml cannot read), as a line, or None."""
        exc = self.get(f"/jobs/{job_id}/exceptions")
        entries = (exc.get("exceptionHistory") or {}).get("entries") or []
        for e in sorted(entries, key=lambda e: -int(e.get("timestamp") or 0)):
            found = rtml_error_in(e.get("stacktrace") or "")
            if found:
                return found
        return rtml_error_in(exc.get("root-exception") or "")

    def restarts(self, job_id: str) -> int:
        """How often the job has restarted since it was submitted (Flink's numRestarts)."""
        values = self.get(f"/jobs/{job_id}/metrics?get=numRestarts")
        return int(float(values[0]["value"])) if values else 0

    def latest_checkpoint(self, job_id: str) -> dict | None:
        """The latest completed checkpoint's statistics, or None."""
        return (self.get(f"/jobs/{job_id}/checkpoints").get("latest") or {}).get("completed")

    def checkpoint_state_by_vertex(self, job_id: str, checkpoint_id: int) -> dict[str, int]:
        """Vertex name -> state size (bytes) in one completed checkpoint."""
        names = {v["id"]: v["name"] for v in self.vertices(job_id)}
        tasks = self.get(f"/jobs/{job_id}/checkpoints/details/{checkpoint_id}").get("tasks", {})
        return {names.get(vid, vid): int(t.get("state_size", 0)) for vid, t in tasks.items()}

    def vertices(self, job_id: str) -> list[dict]:
        return self.job(job_id).get("vertices", [])

    def operator_metrics(self, job_id: str, prefix: str = "") -> dict[str, dict[str, float]]:
        """Per job vertex: every metric whose name contains ``prefix``, aggregated over the
        vertex's subtasks (counters summed, gauges at their maximum). Read per subtask: the
        vertex-level listings fill in lazily and may omit metrics for a while."""
        out: dict[str, dict[str, float]] = {}
        for v in self.vertices(job_id):
            merged: dict[str, float] = {}
            for i in range(v.get("parallelism", 1)):
                base = f"/jobs/{job_id}/vertices/{v['id']}/subtasks/{i}/metrics"
                names = [m["id"] for m in self.get(base) if prefix in m["id"]]
                if not names:
                    continue
                # metric names hold the operator's name ('+', '(', spaces): quote each one
                query = ",".join(urllib.parse.quote(n, safe="") for n in names)
                for m in self.get(f"{base}?get={query}"):
                    value = float(m.get("value", 0.0))
                    if _is_gauge(m["id"]):
                        merged[m["id"]] = max(merged.get(m["id"], value), value)
                    else:
                        merged[m["id"]] = merged.get(m["id"], 0.0) + value
            if merged:
                out[v["name"]] = merged
        return out

    def wait_for_state(self, job_id: str, states: set[str], timeout: float) -> str:
        seen = {"state": "?"}

        def reached() -> bool:
            seen["state"] = self.job(job_id).get("state", "?")
            return seen["state"] in states

        if wait_for(reached, timeout):
            return seen["state"]
        state = seen["state"]
        raise JobError(
            f"job {job_id} is {state}, not {'/'.join(sorted(states))}, after {timeout:.0f}s",
            hint="see the Flink web UI or the TaskManager logs",
        )
