"""rtml: stateful stream processing for real-time ML on Apache Flink."""

__version__ = "0.1.0"
