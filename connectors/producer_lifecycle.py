"""Ending an aiokafka producer within a bound, and asking whether the broker answers at all.

Both serve :class:`~connectors.producer.SightingPublisher` when it replaces a producer that cannot go
on; they are apart because they reach into what aiokafka offers no public way to do.
"""

from __future__ import annotations

import asyncio
import logging

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from streams.settings import KafkaSettings

log = logging.getLogger(__name__)

#: How long a producer may take to stop before its pending batches are abandoned (and as long again
#: for it to finish after that).
CLOSE_TIMEOUT_S = 5.0
#: How long a metadata request may take to count as "the broker answers".
PROBE_TIMEOUT_S = 5.0


async def stop_bounded(producer: AIOKafkaProducer, number: int) -> None:
    """Stop ``producer`` (the ``number``-th of its publisher); abandon its pending batches if it does
    not stop within :data:`CLOSE_TIMEOUT_S`. Never raises for the producer's own failures."""
    stopping = asyncio.ensure_future(producer.stop())
    await asyncio.wait({stopping}, timeout=CLOSE_TIMEOUT_S)
    if not stopping.done():
        # stop() flushes first, and a producer out of sequence or without a broker holds batches that
        # will never be acknowledged. aiokafka has no stop without flushing: fail what it holds (every
        # request waiting on it has had its 503) and end its sender, which lets stop() finish.
        log.warning("Kafka producer %d did not stop within %.0f s: abandoning its pending batches",
                    number, CLOSE_TIMEOUT_S)  # fmt: skip
        producer._message_accumulator.fail_all(KafkaError("producer abandoned"))
        sender = producer._sender.sender_task
        if sender is not None:
            sender.cancel()
        await asyncio.wait({stopping}, timeout=CLOSE_TIMEOUT_S)
    if stopping.done():
        if not stopping.cancelled() and stopping.exception() is not None:
            log.warning("Kafka producer %d stopped with %r", number, stopping.exception())
    else:
        log.warning("Kafka producer %d still stopping; left to finish on its own", number)
        stopping.add_done_callback(lambda f: f.cancelled() or f.exception())


async def broker_answers(kafka: KafkaSettings, client_id: str) -> bool:
    """Whether the broker answers a metadata request now, on a connection of its own."""
    client = AIOKafkaAdminClient(
        bootstrap_servers=kafka.bootstrap_servers,
        client_id=client_id,
        request_timeout_ms=int(PROBE_TIMEOUT_S * 1000),
    )
    try:
        async with asyncio.timeout(PROBE_TIMEOUT_S):
            await client.start()
    except (KafkaError, OSError, TimeoutError):
        return False
    finally:
        await client.close()
    return True
