"""The bench's input: a preloaded backlog, and a paced producer for a fixed offered load."""

from __future__ import annotations

import time
from collections.abc import Sequence

from deploy.kafka_client import client_settings
from rtml.core.config import JobConfig
from rtml.core.errors import ServiceError

TICK_S = 0.005  # the paced producer sends every 5 ms


def produce_paced(cfg: JobConfig, topic: str, records: Sequence[str], rate: float) -> float:
    """Send ``records`` at ``rate`` per second (batches every 5 ms, no linger); returns the
    rate achieved."""
    from kafka import KafkaProducer

    p = KafkaProducer(
        bootstrap_servers=cfg.kafka.bootstrap_servers,
        acks=1,
        linger_ms=0,
        **client_settings(cfg),
    )
    try:
        t0 = time.monotonic()
        sent = 0
        while sent < len(records):
            due = min(len(records), int((time.monotonic() - t0) * rate) + 1)
            for r in records[sent:due]:
                p.send(topic, r.encode("utf-8", "surrogatepass"))
            sent = due
            p.flush()
            time.sleep(TICK_S)
        took = time.monotonic() - t0
    finally:
        p.close()
    if took > 1.5 * len(records) / rate:
        raise ServiceError(
            f"the paced producer reached {len(records) / took:.0f} events/s of {rate:.0f}",
            hint="the broker or this machine is saturated: lower --rate or stop other load",
        )
    return len(records) / took
