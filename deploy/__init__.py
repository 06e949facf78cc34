"""Everything to run the real components locally: jars, Kafka broker, Flink cluster, UI."""
