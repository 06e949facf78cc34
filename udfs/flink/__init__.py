"""Thin pyflink adapters over the pure logic in ``udfs``.

Each adapter keeps whatever must survive a failure in Flink state (never in a Python
attribute); attributes only hold things rebuilt in ``open`` (a model session, a config).
Output tags are injected by the job graph, which defines each tag once.
"""
