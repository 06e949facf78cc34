"""Bundle-end keyed-state writes sent together, not one blocking round trip per key.

At the end of every bundle (so before every checkpoint barrier is passed on), PyFlink writes
back each key's changed state: ``RemoteKeyedStateBackend.commit`` calls Beam's
``SynchronousBagRuntimeState.commit`` key after key, and each call waits for its own
clear/append round trip to the JVM before the next key's write is sent. Profiled on the
scoring pipeline (docs/benchmark.md), that commit was 45% of the account-features
operator's time: a bundle of 1,000 events touched about 650 accounts, so 650 sequential
round trips.

``install()`` replaces that method, on the PyFlink release it was checked against, with one
that sends every write first and then waits for all of them. What is written, in which
order, and when the bundle counts as finished do not change: the requests travel in order on
one gRPC stream and the JVM applies them in order (Beam's own commit relies on this when it
sends a key's clear and append without waiting in between), and ``commit`` returns only once
every write is acknowledged, so a checkpoint never sees half a bundle. A failed write raises,
as a failed state read does. Measured in bounded runs of 30,000 events, one after another:
748 and 809 events/s without it, 831 to 979 with it (one Python worker).

PyFlink's commit also visits every internal state in the worker's state cache at every
bundle end (``python.state.cache-size`` entries, 100,000 here), changed or not: with the
10 ms bundles of the latency defaults that is a hundred walks a second over every cached key.
``install()`` therefore also records, per state backend, the internal states handed out during
the bundle; ``pipelined_commit`` writes those and the current key's, which are the only ones
user code can have changed since the last commit (a state is reached only through
``_get_internal_bag_state``/``_get_internal_map_state``, or as a key's memoized one, which
``cache_internal_state`` moves into the cache when the key changes: all three are
recorded). The first commit of a backend still walks the whole cache, as PyFlink does.
``tests/unit/test_state_writes.py`` checks it against PyFlink's commit on random runs.

It is switchable (``[job] pipelined_state_writes = false`` keeps PyFlink's commit: ``use``)
and probed: before patching, ``missing()`` looks for every private name it relies on, in
PyFlink's and Beam's classes and in the attributes their constructors set, and a release
without one keeps PyFlink's commit, with a warning.
"""

from __future__ import annotations

import logging

from apache_beam.runners.worker.bundle_processor import SynchronousBagRuntimeState
from pyflink.fn_execution.state_impl import RemoteKeyedStateBackend

log = logging.getLogger("rtml.state")

# the PyFlink release whose RemoteKeyedStateBackend.commit this replacement was checked against
CHECKED_PYFLINK = "2.2."

_installed = False


def _send(internal_state) -> list:
    """Send one state's pending writes and reset it as PyFlink does; returns the futures.
    Called for every state in the worker's cache at every bundle end: no imports in here."""
    if not isinstance(internal_state, SynchronousBagRuntimeState):
        # map states (and None): PyFlink's own commit, which batches a map's writes already
        RemoteKeyedStateBackend.commit_internal_state(internal_state)
        return []
    futures = []
    if internal_state._cleared:
        futures.append(internal_state._state_handler.clear(internal_state._state_key))
    if internal_state._added_elements:
        futures.append(
            internal_state._state_handler.extend(
                internal_state._state_key,
                internal_state._value_coder.get_impl(),
                internal_state._added_elements,
            )
        )
    internal_state._cleared = False
    internal_state._added_elements = []
    return futures


def _await(futures: list) -> None:
    for f in futures:
        response = f.get()
        if response is not None and response.error:
            raise RuntimeError(f"rtml: a keyed-state write failed in the JVM: {response.error}")


# per backend: the internal states handed out since its last commit (id -> state), and
# whether its commit has walked the whole cache once since the tracking began
TOUCHED = "_rtml_touched"
TRACKED = "_rtml_tracked"
# the RemoteKeyedStateBackend methods install() replaces
PATCHED = ("commit", "_get_internal_bag_state", "_get_internal_map_state", "cache_internal_state")


def _touched(backend) -> dict:
    touched = backend.__dict__.get(TOUCHED)
    if touched is None:
        touched = backend.__dict__[TOUCHED] = {}
    return touched


def _tracking(get_internal_state):
    """``get_internal_state`` (one of the backend's two getters), recording what it returns."""

    def tracked(backend, *args, **kwargs):
        internal_state = get_internal_state(backend, *args, **kwargs)
        _touched(backend)[id(internal_state)] = internal_state
        return internal_state

    tracked.__wrapped__ = get_internal_state
    return tracked


def _tracking_cache(cache_internal_state):
    """The backend's ``cache_internal_state`` (a key switch moves the old key's states, which
    their wrappers handed out, possibly in an earlier bundle, into the cache), recording
    what it caches."""

    def tracked(backend, encoded_key, internal_kv_state):
        cache_internal_state(backend, encoded_key, internal_kv_state)
        internal_state = internal_kv_state._internal_state
        if internal_state is not None:
            _touched(backend)[id(internal_state)] = internal_state

    tracked.__wrapped__ = cache_internal_state
    return tracked


def _changed_since_commit(backend) -> list:
    """The internal states user code can have written since the backend's last commit."""
    touched = backend.__dict__.pop(TOUCHED, {})
    if backend.__dict__.get(TRACKED):
        states = list(touched.values())
    else:  # the first commit since tracking began: every cached state, as PyFlink commits
        backend.__dict__[TRACKED] = True
        states = list(backend._internal_state_cache)
    # the current key's states, memoized by their wrappers (possibly from an earlier bundle)
    states += [s._internal_state for s in backend._all_states.values()]
    return list({id(st): st for st in states if st is not None}.values())


def pipelined_commit(backend) -> None:
    """``RemoteKeyedStateBackend.commit`` with every write sent before any is awaited, over
    the states handed out since the last commit rather than the whole state cache."""
    futures: list = []
    for internal_state in _changed_since_commit(backend):
        futures += _send(internal_state)
    _await(futures)


# the private names pipelined_commit and the trackers use: methods of the two classes, and
# attributes their constructors set on each instance
NEEDED_METHODS = {
    RemoteKeyedStateBackend: (*PATCHED, "commit_internal_state"),
    SynchronousBagRuntimeState: (),
}
NEEDED_ATTRIBUTES = {
    RemoteKeyedStateBackend: ("_internal_state_cache", "_all_states"),
    SynchronousBagRuntimeState: (
        "_cleared",
        "_added_elements",
        "_state_handler",
        "_state_key",
        "_value_coder",
    ),
}
_originals: dict[str, object] = {}


def _set_in_init(cls: type) -> set[str]:
    """The attribute names a class's constructor stores on ``self``."""
    code = getattr(cls.__init__, "__code__", None)
    return set(code.co_names) if code is not None else set()


def missing() -> list[str]:
    """The private names this module relies on that this PyFlink/Beam release lacks."""
    out = []
    for cls, names in NEEDED_METHODS.items():
        out += [f"{cls.__name__}.{n}" for n in names if not callable(getattr(cls, n, None))]
    for cls, names in NEEDED_ATTRIBUTES.items():
        have = _set_in_init(cls)
        out += [f"{cls.__name__}().{n}" for n in names if n not in have]
    return out


def use(enabled: bool) -> bool:
    """``[job] pipelined_state_writes``: install the pipelined commit in this Python worker,
    or put PyFlink's own back (a worker can run in the test process, across jobs); returns
    whether it is in use."""
    if enabled:
        return install()
    uninstall()
    return False


def uninstall() -> None:
    """PyFlink's own commit and getters again, as before ``install``."""
    global _installed
    for name, original in _originals.items():
        setattr(RemoteKeyedStateBackend, name, original)
    _originals.clear()
    _installed = False


def install() -> bool:
    """Use ``pipelined_commit`` in this Python worker; returns whether it is in use. On other
    PyFlink releases, or one without a private name it relies on, PyFlink's own commit stays
    (slower, equally correct)."""
    global _installed
    if _installed:
        return True
    from pyflink.version import __version__

    if not __version__.startswith(CHECKED_PYFLINK):
        log.warning(
            "rtml: PyFlink %s is not the release the pipelined state writes were checked "
            "against (%sx); keeping its own commit",
            __version__,
            CHECKED_PYFLINK,
        )
        return False
    absent = missing()
    if absent:
        log.warning(
            "rtml: PyFlink %s lacks %s, which the pipelined state writes rely on; keeping "
            "its own commit",
            __version__,
            ", ".join(absent),
        )
        return False
    _originals.update({n: getattr(RemoteKeyedStateBackend, n) for n in PATCHED})
    RemoteKeyedStateBackend._get_internal_bag_state = _tracking(
        RemoteKeyedStateBackend._get_internal_bag_state
    )
    RemoteKeyedStateBackend._get_internal_map_state = _tracking(
        RemoteKeyedStateBackend._get_internal_map_state
    )
    RemoteKeyedStateBackend.cache_internal_state = _tracking_cache(
        RemoteKeyedStateBackend.cache_internal_state
    )
    RemoteKeyedStateBackend.commit = pipelined_commit
    _installed = True
    return True
