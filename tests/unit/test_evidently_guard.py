"""Evidently is entered by one thread at a time per process (two monitors importing it at
once from Beam's threads can stop on Python's import lock): while another thread holds the
lock, a drift monitor's construction does not even start importing Evidently."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def test_a_drift_monitor_waits_for_the_evidently_lock_before_importing_it():
    script = textwrap.dedent(
        """
        import sys, threading, time
        import pandas as pd
        from udfs.drift import DriftColumns, DriftMonitor
        from udfs.evidently_guard import EVIDENTLY_LOCK

        assert "evidently" not in sys.modules
        ref = pd.DataFrame({"x": [1.0, 2.0, 3.0], "c": ["a", "b", "a"]})
        made = []
        with EVIDENTLY_LOCK:
            t = threading.Thread(
                target=lambda: made.append(DriftMonitor(ref, DriftColumns(("x",), ("c",))))
            )
            t.start()
            time.sleep(1.0)
            waiting = "evidently" not in sys.modules and not made
        t.join(120)
        print(waiting, bool(made), "evidently" in sys.modules)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=180, check=True
    ).stdout.split()
    assert out == ["True", "True", "True"]
