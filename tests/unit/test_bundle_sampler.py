"""The thread-less state sampler, on Beam's own StateSampler class (no JVM).

What a bundle does with its sampler (``BundleProcessor.process_bundle``: reset, start, the
operations' scoped states, stop_if_still_running) must behave as with Beam's, minus the
sampling thread; the Flink tier runs every job with it."""

from __future__ import annotations

import threading
from contextlib import contextmanager

from apache_beam.runners.worker import statesampler
from apache_beam.utils.counters import CounterFactory

from udfs.flink import bundle_sampler


@contextmanager
def beams_own_sampler():
    """Beam's own start/stop inside, whatever an earlier test in this process installed
    (any rtml function's ``open`` does), and the state found put back after."""
    was = bundle_sampler.is_installed()
    bundle_sampler.uninstall()
    try:
        yield
    finally:
        bundle_sampler.uninstall()
        if was:
            bundle_sampler.install()


@contextmanager
def threads_started():
    """Records each thread started inside (other tests' threads may end meanwhile, so the
    number of live threads would not do)."""
    started: list[threading.Thread] = []
    thread_start = threading.Thread.start

    def recording(thread):
        started.append(thread)
        return thread_start(thread)

    threading.Thread.start = recording
    try:
        yield started
    finally:
        threading.Thread.start = thread_start


def _bundle(sampler: statesampler.StateSampler) -> tuple[int, list]:
    """One bundle as Beam's BundleProcessor drives the sampler; returns the threads the
    bundle started and what the operations saw as the current tracker and state."""
    seen = []
    sampler.reset()
    with threads_started() as threads:
        sampler.start()
    started = len(threads)
    state = sampler.scoped_state("step", "process")
    with state:
        seen.append((statesampler.get_current_tracker() is sampler, sampler.current_state()))
    seen.append(sampler.current_state().name)
    sampler.stop_if_still_running()
    seen.append((sampler.started, sampler.finished, statesampler.get_current_tracker()))
    return started, seen


def test_a_bundle_starts_no_thread_and_sees_what_beams_sampler_shows():
    with beams_own_sampler():
        beams = _bundle(statesampler.StateSampler("fnapi-step-1", CounterFactory()))
        assert bundle_sampler.install()
        sampler = statesampler.StateSampler("fnapi-step-1", CounterFactory())
        ours = [_bundle(sampler) for _ in range(3)]  # reused across bundles, as Beam does
    assert beams[0] == 1  # Beam's sampler starts its thread on every bundle
    for started, seen in ours:
        assert started == 0
        (tracked, state), after_scope, end = seen
        assert tracked and state.name == beams[1][0][1].name
        assert after_scope == beams[1][1]
        assert end == beams[1][2] == (True, True, None)


def test_installed_only_on_the_checked_beam_release():
    from apache_beam.version import __version__

    with beams_own_sampler():
        installed = bundle_sampler.install()
        assert installed == __version__.startswith(bundle_sampler.CHECKED_BEAM)
        if installed:
            assert statesampler.StateSampler.start is bundle_sampler.start
