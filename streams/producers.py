"""The one way seizewatch builds a Kafka producer: nothing is reported sent before every replica has it."""

from __future__ import annotations

from aiokafka import AIOKafkaProducer

from streams.settings import KafkaSettings


def idempotent_producer(kafka: KafkaSettings, role: str, *, linger_ms: int = 5) -> AIOKafkaProducer:
    """acks=all with idempotence: an acknowledged record is on every in-sync replica, written once.

    ``linger_ms``: how long a record may wait for others to share its batch. The matcher sends its
    hits together and then waits for them, so it lingers for nothing (0): waiting is pure latency.
    """
    return AIOKafkaProducer(
        bootstrap_servers=kafka.bootstrap_servers,
        client_id=f"{kafka.client_id}-{role}",
        acks="all",
        enable_idempotence=True,
        linger_ms=linger_ms,
    )
