"""Bundles without Beam's state-sampler thread: a bundle's end no longer waits for it.

Beam's Python SDK harness (2.61, under PyFlink 2.2) times each bundle's operations with a
``StateSampler``. ``BundleProcessor.process_bundle`` calls its ``start()`` at every bundle's
start, which spawns a sampling thread, and its ``stop()`` at the end, which joins it. That
thread sleeps 2 ms, then each sleep 1.2 times the last, up to 200 ms, and ``stop()`` waits
for the sleep in progress to run out: at the end of a 10 ms bundle up to 3.5 ms, of a 100 ms
bundle up to 21 ms, of a bundle that runs a second up to 200 ms. While it waits, the worker
has finished the bundle's records, and the JVM task that sent them blocks in
``invokeFinishBundle``: every Python stage of the job pays it on every bundle, plus a thread
start and join.

What the thread measures is execution time per Beam step (``msec`` counters) and "lull"
logs of a Beam worker-status page; PyFlink passes only user metrics to the JVM
(``FunctionOperation.monitoring_infos``) and serves no status page, so nothing rtml or
Flink reads comes from it. ``install()`` keeps the sampler as the bundle's state tracker
(the scoped states operators enter and leave still switch, as before) and drops the thread.
``tests/unit/test_bundle_sampler.py`` checks it against Beam's own class.
"""

from __future__ import annotations

import logging
import threading

from apache_beam.runners.worker import statesampler

log = logging.getLogger("rtml.sampler")

# the Beam SDK release whose StateSampler.start/stop these replacements were checked against
CHECKED_BEAM = "2.61."
# the StateSampler methods install() replaces
PATCHED = ("start", "stop")

_installed = False
# Beam's own methods, kept by install() so that uninstall() can put them back
_beams: dict = {}


def start(sampler: statesampler.StateSampler) -> None:
    """``StateSampler.start`` without the sampling thread."""
    sampler.tracked_thread = threading.current_thread()
    statesampler.set_current_tracker(sampler)
    sampler.started = True


def stop(sampler: statesampler.StateSampler) -> None:
    """``StateSampler.stop`` with no thread to join."""
    statesampler.set_current_tracker(None)
    sampler.finished = True


def install() -> bool:
    """Use the thread-less ``start``/``stop`` in this Python worker; returns whether they are
    in use. On other Beam releases Beam's own sampler stays (slower, equally correct)."""
    global _installed
    if _installed:
        return True
    from apache_beam.version import __version__

    if not __version__.startswith(CHECKED_BEAM):
        log.warning(
            "rtml: Beam %s is not the release the thread-less state sampler was checked "
            "against (%sx); keeping its own",
            __version__,
            CHECKED_BEAM,
        )
        return False
    for name, ours in zip(PATCHED, (start, stop), strict=True):
        _beams[name] = getattr(statesampler.StateSampler, name)
        setattr(statesampler.StateSampler, name, ours)
    _installed = True
    return True


def is_installed() -> bool:
    return _installed


def uninstall() -> None:
    """Beam's own ``start``/``stop`` again (the tests compare against them, in a process
    where an rtml function's ``open`` may have installed ours)."""
    global _installed
    for name, beams in _beams.items():
        setattr(statesampler.StateSampler, name, beams)
    _beams.clear()
    _installed = False
