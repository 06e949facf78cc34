"""rtml's bundle-end state commit: every write sent before the first is awaited, in order.

Runs PyFlink's and Beam's real state classes over a recording state handler (no JVM); the
Flink tier runs it for real (tests/flink, small bundles and a tiny state cache)."""

from __future__ import annotations

import pytest
from apache_beam.coders import coders
from apache_beam.runners.worker.bundle_processor import SynchronousBagRuntimeState

from udfs.flink import state_writes


class _Response:
    error = ""


class _Future:
    def __init__(self, log: list, what: str) -> None:
        self.log, self.what = log, what

    def get(self):
        self.log.append(("await", self.what))
        return _Response()


class RecordingHandler:
    """Stands in for Beam's caching gRPC state handler: logs sends and awaits."""

    def __init__(self) -> None:
        self.log: list = []

    def clear(self, key):
        self.log.append(("send", f"clear {key}"))
        return _Future(self.log, f"clear {key}")

    def extend(self, key, coder, elements):
        self.log.append(("send", f"append {key} {list(elements)}"))
        return _Future(self.log, f"append {key}")


class _LRU(list):
    def __contains__(self, key):  # the backend asks by (name, key, namespace)
        return False


class FakeBackend:
    """The attributes of RemoteKeyedStateBackend that commit reads."""

    def __init__(self, states) -> None:
        self._internal_state_cache = _LRU(states)
        self._all_states: dict = {}
        self._encoded_current_key = b"k"

    def _encode_namespace(self, ns):
        return b""


def _bag(handler, key: str, value: str) -> SynchronousBagRuntimeState:
    st = SynchronousBagRuntimeState(handler, key, coders.StrUtf8Coder())
    st.clear()
    st.add(value)
    return st


def test_every_write_is_sent_before_any_is_awaited_and_each_key_in_order():
    h = RecordingHandler()
    states = [_bag(h, f"k{i}", f"v{i}") for i in range(3)]
    state_writes.pipelined_commit(FakeBackend(states))
    kinds = [k for k, _ in h.log]
    assert kinds == ["send"] * 6 + ["await"] * 6
    sends = [w for k, w in h.log if k == "send"]
    for i in range(3):  # a key's clear goes before its append
        assert sends.index(f"clear k{i}") < sends.index(f"append k{i} ['v{i}']")
    # the states are reset as PyFlink resets them: nothing is written twice
    assert all(not s._cleared and not s._added_elements for s in states)
    h.log.clear()
    state_writes.pipelined_commit(FakeBackend(states))
    assert h.log == []


def test_a_failed_write_raises():
    class Failing(RecordingHandler):
        def extend(self, key, coder, elements):
            f = super().extend(key, coder, elements)
            r = _Response()
            r.error = "no such state"
            f.get = lambda: r
            return f

    with pytest.raises(RuntimeError, match="no such state"):
        state_writes.pipelined_commit(FakeBackend([_bag(Failing(), "k", "v")]))


def test_installed_only_on_the_checked_pyflink_release():
    from pyflink.fn_execution.state_impl import RemoteKeyedStateBackend
    from pyflink.version import __version__

    original = RemoteKeyedStateBackend.commit
    try:
        installed = state_writes.install()
        assert installed == __version__.startswith(state_writes.CHECKED_PYFLINK)
        if installed:
            assert RemoteKeyedStateBackend.commit is state_writes.pipelined_commit
    finally:
        RemoteKeyedStateBackend.commit = original
        state_writes._installed = False
