"""rtml's bundle-end state commit: every write sent before the first is awaited, in order.

Runs PyFlink's and Beam's real state classes over a recording state handler (no JVM); the
Flink tier runs it for real (tests/flink, small bundles and a tiny state cache)."""

from __future__ import annotations

from contextlib import contextmanager

import pytest
from apache_beam.coders import coders
from apache_beam.runners.worker.bundle_processor import SynchronousBagRuntimeState
from hypothesis import given, settings
from hypothesis import strategies as st

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


@contextmanager
def pyflinks_own_methods_afterwards():
    """Yields PyFlink's own methods that ``install()`` replaces, and puts them back after."""
    from pyflink.fn_execution.state_impl import RemoteKeyedStateBackend

    original = {n: getattr(RemoteKeyedStateBackend, n) for n in state_writes.PATCHED}
    try:
        yield original
    finally:
        for n, f in original.items():
            setattr(RemoteKeyedStateBackend, n, f)
        state_writes._installed = False
        state_writes._originals.clear()


def test_installed_only_on_the_checked_pyflink_release():
    from pyflink.fn_execution.state_impl import RemoteKeyedStateBackend
    from pyflink.version import __version__

    with pyflinks_own_methods_afterwards():
        installed = state_writes.install()
        assert installed == __version__.startswith(state_writes.CHECKED_PYFLINK)
        if installed:
            assert RemoteKeyedStateBackend.commit is state_writes.pipelined_commit


def test_every_private_name_it_relies_on_is_there_on_this_release():
    assert state_writes.missing() == []


def test_a_release_without_one_of_them_keeps_pyflinks_commit(monkeypatch):
    """Plant the absence of one private method and of one constructor attribute."""
    from apache_beam.runners.worker.bundle_processor import SynchronousBagRuntimeState
    from pyflink.fn_execution.state_impl import RemoteKeyedStateBackend

    monkeypatch.delattr(RemoteKeyedStateBackend, "commit_internal_state")
    monkeypatch.setattr(
        state_writes,
        "_set_in_init",
        lambda cls: (
            {"_cleared"}
            if cls is SynchronousBagRuntimeState
            else {"_internal_state_cache", "_all_states"}
        ),
    )
    absent = state_writes.missing()
    assert "RemoteKeyedStateBackend.commit_internal_state" in absent
    assert "SynchronousBagRuntimeState()._added_elements" in absent
    with pyflinks_own_methods_afterwards() as original:
        assert state_writes.install() is False
        assert RemoteKeyedStateBackend.commit is original["commit"]


def test_switched_off_puts_pyflinks_own_methods_back():
    from pyflink.fn_execution.state_impl import RemoteKeyedStateBackend

    with pyflinks_own_methods_afterwards() as original:
        assert state_writes.use(True)
        assert RemoteKeyedStateBackend.commit is state_writes.pipelined_commit
        assert state_writes.use(False) is False
        assert {n: getattr(RemoteKeyedStateBackend, n) for n in state_writes.PATCHED} == original
        assert state_writes.use(True)  # and on again
        assert RemoteKeyedStateBackend.commit is state_writes.pipelined_commit


class StoreHandler:
    """A state handler over a dict, as the JVM's keyed state would hold the writes."""

    # what PyFlink's map-state handler reads of a caching handler when it is built (no map
    # state is used here)
    _state_cache = _underlying = _context = None

    def __init__(self) -> None:
        self.store: dict[bytes, list] = {}
        self.writes = 0

    def clear(self, key):
        self.writes += 1
        self.store[key.SerializeToString()] = []
        return _Future([], "clear")

    def extend(self, key, coder, elements):
        self.writes += 1
        self.store.setdefault(key.SerializeToString(), []).extend(list(elements))
        return _Future([], "append")

    def blocking_get(self, key, coder):
        return list(self.store.get(key.SerializeToString(), []))


def _backend(handler, cache_size: int):
    from pyflink.fn_execution.state_impl import RemoteKeyedStateBackend

    coder = coders.StrUtf8Coder()
    return RemoteKeyedStateBackend(handler, coder, None, cache_size, 16, 16)


# (key, action, value): action 0 updates the value state, 1 clears it, 2 adds to the list
# state, 3 reads both, 4 ends the bundle (commit)
STEPS = st.lists(
    st.tuples(st.sampled_from("abcdefg"), st.integers(0, 4), st.integers(0, 9)), max_size=60
)


def _run(steps, commit, cache_size: int) -> dict:
    h = StoreHandler()
    b = _backend(h, cache_size)
    value = b.get_value_state("v", coders.StrUtf8Coder())
    listed = b.get_list_state("l", coders.StrUtf8Coder())
    reads = []
    for key, action, n in steps:
        b.set_current_key(key)
        if action == 0:
            value.update(str(n))
        elif action == 1:
            value.clear()
        elif action == 2:
            listed.add(str(n))
        elif action == 3:
            reads.append((key, value.value(), list(listed.get())))
        else:
            commit(b)
    commit(b)
    return {"store": h.store, "reads": reads}


@settings(max_examples=1000, deadline=None)
@given(steps=STEPS, cache_size=st.sampled_from([1, 3, 100]))
def test_the_tracked_commit_writes_what_pyflinks_commit_writes(steps, cache_size):
    """PyFlink's own commit (every cached state, every bundle) and rtml's (the states handed
    out since the last commit, and the current key's) leave the same keyed state and read
    the same values, over random keys, writes, reads, bundle ends and cache sizes."""
    with pyflinks_own_methods_afterwards() as original:
        reference = _run(steps, original["commit"], cache_size)
        assert state_writes.install()
        tracked = _run(steps, state_writes.pipelined_commit, cache_size)
    assert tracked == reference


def test_the_tracked_commit_leaves_untouched_states_alone():
    """After the first commit, a bundle that touches one key of many sends that key's
    writes only (PyFlink's commit visits every cached state)."""
    with pyflinks_own_methods_afterwards():
        assert state_writes.install()
        h = StoreHandler()
        b = _backend(h, 1000)
        value = b.get_value_state("v", coders.StrUtf8Coder())
        for i in range(200):
            b.set_current_key(f"k{i}")
            value.update(str(i))
        state_writes.pipelined_commit(b)
        assert h.writes == 400  # a clear and an append per key
        assert len(b._internal_state_cache) >= 199
        b.set_current_key("k7")
        value.update("new")
        # k199 (cached when the key changed) and k7, of 200 cached
        assert len(b.__dict__[state_writes.TOUCHED]) == 2
        state_writes.pipelined_commit(b)
        assert h.writes == 402
        state_writes.pipelined_commit(b)  # a bundle that changed nothing writes nothing
        assert h.writes == 402
        b.set_current_key("k7")
        assert value.value() == "new"
