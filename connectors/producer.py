"""Publishing canonical sightings: the one way every connector hands a read to Kafka."""

from __future__ import annotations

from types import TracebackType

from streams.events import Sighting
from streams.producers import idempotent_producer
from streams.settings import KafkaSettings
from streams.topics import SIGHTINGS


class SightingPublisher:
    """Sends sightings keyed by normalized plate; :meth:`publish` returns only once Kafka has the record."""

    def __init__(self, kafka: KafkaSettings, *, role: str = "connector") -> None:
        self._topic = kafka.topic(SIGHTINGS)
        self._producer = idempotent_producer(kafka, role)

    async def __aenter__(self) -> SightingPublisher:
        await self._producer.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._producer.stop()

    async def publish(self, sighting: Sighting) -> None:
        """Raises: aiokafka's KafkaError when the broker did not acknowledge (nothing was accepted)."""
        await self._producer.send_and_wait(self._topic, key=sighting.plate.encode(), value=sighting.encode())

    async def publish_many(self, sightings: list[Sighting]) -> None:
        """Send a batch and wait until every record is acknowledged."""
        futures = [
            await self._producer.send(self._topic, key=s.plate.encode(), value=s.encode()) for s in sightings
        ]
        for future in futures:
            await future

    async def publish_raw(self, value: bytes, key: bytes | None = None) -> None:
        """Put bytes on the sightings topic as they are (tests of the match stage's dead-letter path)."""
        await self._producer.send_and_wait(self._topic, key=key, value=value)
