"""Publishing to Kafka from the connectors: sightings and dead letters, acknowledged or refused.

Every call returns only after Kafka acknowledged (acks=all, idempotent) or raises
:class:`KafkaUnavailable` within the produce timeout, so a connector answers 2xx for what Kafka holds
and 503 for what it could not store. After a failure the breaker stays open for ``retry_after_s``:
requests are refused at once instead of piling up on a dead broker; then one request probes it.

A request that timed out may still be delivered later by the producer's own retries; its reads carry
the same sighting ids as the sender's retry, and every later stage is idempotent on them.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Sequence
from types import TracebackType

from aiokafka.errors import KafkaError

from connectors import metrics
from streams.deadletter import DeadLetter
from streams.errors import ServiceUnavailable
from streams.events import Sighting
from streams.producers import idempotent_producer
from streams.settings import KafkaSettings
from streams.topics import SIGHTINGS, SIGHTINGS_DLQ


class KafkaUnavailable(ServiceUnavailable):
    """Kafka did not acknowledge in time; ``retry_after_s`` is the hint for the sender."""

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class SightingPublisher:
    """Sends sightings keyed by normalized plate, and dead letters with their reasons."""

    def __init__(
        self,
        kafka: KafkaSettings,
        *,
        role: str = "connector",
        timeout_s: float = 5.0,
        retry_after_s: int = 5,
    ) -> None:
        self._kafka = kafka
        self._topic = kafka.topic(SIGHTINGS)
        self._dlq = kafka.topic(SIGHTINGS_DLQ)
        self._producer = idempotent_producer(kafka, role)
        self._timeout_s = timeout_s
        self._retry_after_s = retry_after_s
        self._open_until = 0.0

    async def __aenter__(self) -> SightingPublisher:
        await self._producer.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._producer.stop()

    async def publish(self, sighting: Sighting) -> None:
        """Raises: KafkaUnavailable."""
        await self.publish_many([sighting])

    async def publish_many(self, sightings: Sequence[Sighting]) -> None:
        """Send a batch and wait until every record is acknowledged.

        Raises:
            KafkaUnavailable: not every record was acknowledged within the timeout.
        """
        # The key is the normalized plate: the match stage rules reads out by it without decoding them
        # (streams/matcher.py), so it must be exactly the value's plate.
        await self._acknowledged([(self._topic, s.plate.encode(), s.encode(), None) for s in sightings])
        published = Counter((s.source_kind.value, s.district or "unknown") for s in sightings)
        for (kind, district), count in published.items():
            metrics.SIGHTINGS_PUBLISHED.labels(kind, district).inc(count)

    async def dead_letter(self, letter: DeadLetter) -> None:
        """Raises: KafkaUnavailable."""
        await self._acknowledged([(self._dlq, None, letter.raw, letter.headers())])

    async def publish_keyed(
        self,
        topic: str,
        records: Sequence[tuple[bytes, bytes]],
        *,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> None:
        """Send (key, value) records to another declared topic (logical name), with the same promise.

        Raises:
            KafkaUnavailable: not every record was acknowledged within the timeout.
        """
        real = self._kafka.topic(topic)
        await self._acknowledged([(real, key, value, headers) for key, value in records])

    async def publish_raw(self, value: bytes, key: bytes | None = None) -> None:
        """Put bytes on the sightings topic as they are (tests of the match stage's dead-letter path)."""
        await self._acknowledged([(self._topic, key, value, None)])

    async def _acknowledged(
        self, records: list[tuple[str, bytes | None, bytes, list[tuple[str, bytes]] | None]]
    ) -> None:
        if time.monotonic() < self._open_until:
            raise KafkaUnavailable("Kafka was unreachable moments ago", self._retry_after_s)
        try:
            async with asyncio.timeout(self._timeout_s):
                futures = [
                    await self._producer.send(topic, key=key, value=value, headers=headers)
                    for topic, key, value, headers in records
                ]
                await asyncio.gather(*futures)
        except (TimeoutError, KafkaError) as exc:
            self._open_until = time.monotonic() + self._retry_after_s
            raise KafkaUnavailable(f"Kafka did not acknowledge: {exc!r}", self._retry_after_s) from exc
        self._open_until = 0.0
