"""Logic that runs inside Flink workers.

Everything in this package except ``udfs.flink`` is pure Python (no pyflink import), so it is
unit-testable without a JVM and reusable offline: training computes features with exactly the
same code as the live job.
"""
