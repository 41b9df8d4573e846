"""The ingest core every connector shares: enrich, validate, publish, and say what became of each read.

Adapters hand over :class:`~connectors.records.RawRead` objects (or per-record errors). Each read is
enriched from the device registry (place, district, the device's true kind), built into a canonical
sighting (which validates it) and published; the batch is acknowledged by Kafka as a whole before
anything is reported accepted. Refused records are dead-lettered with the raw payload and reasons.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from connectors import metrics
from connectors.producer import SightingPublisher
from connectors.records import AdapterError, RawRead
from connectors.registry import UNKNOWN_GROUP, Device, Registry
from streams.deadletter import DeadLetter
from streams.errors import InvalidInput
from streams.events import EventError, Sighting, SightingFlag, new_sighting, sighting_id_for
from streams.metrics import DEAD_LETTERS

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one record of a payload."""

    index: int
    accepted: bool
    sighting_id: str | None = None
    reason: str | None = None
    field: str | None = None
    message: str | None = None

    @classmethod
    def refused(cls, index: int, error: InvalidInput) -> Outcome:
        return cls(index, False, reason=error.reason, field=error.field, message=str(error))


class Ingestor:
    def __init__(
        self,
        *,
        connector: str,
        registry: Registry,
        publisher: SightingPublisher,
        freshness: timedelta,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._connector = connector
        self._registry = registry
        self._publisher = publisher
        self._freshness = freshness
        self._clock = clock

    def build(self, source_id: str, read: RawRead, *, received_at: datetime, backfill: bool) -> Sighting:
        """The canonical sighting for one read, enriched from the registry.

        Raises:
            EventError: the read is not valid (field and reason named).
        """
        device = self._registry.device(read.device_id)
        flags: list[SightingFlag] = []
        if device is None:
            flags.append(SightingFlag.UNKNOWN_DEVICE)
            metrics.UNKNOWN_DEVICE_READS.labels(self._connector).inc()
        if not backfill and received_at - read.observed_at > self._freshness:
            flags.append(SightingFlag.LATE)
        return new_sighting(
            sighting_id=sighting_id_for(source_id, read.device_id, read.record_id),
            source_kind=device.kind if device and device.kind else read.source_kind,
            source_id=source_id,
            device_id=read.device_id,
            plate_raw=read.plate_raw,
            plate_colour=read.plate_colour,
            observed_at=read.observed_at,
            received_at=received_at,
            location=read.location or (device.location if device else None),
            district=device.district if device else None,
            device_name=device.name if device else None,
            address=_address(read, device),
            confidence=read.confidence,
            image_ref=read.image_ref,
            backfill=backfill,
            flags=tuple(flags),
        )

    async def submit(
        self,
        source_id: str,
        items: Sequence[RawRead | AdapterError],
        *,
        raw: bytes,
        backfill: bool = False,
    ) -> list[Outcome]:
        """Publish the valid reads of one payload; return an outcome per item, in order.

        Raises:
            KafkaUnavailable: Kafka did not acknowledge the reads (none is accepted) or the dead letter.
        """
        received_at = self._clock()
        outcomes: list[Outcome] = []
        sightings: list[Sighting] = []
        for index, item in enumerate(items):
            metrics.READS_RECEIVED.labels(self._connector).inc()
            if isinstance(item, AdapterError):
                outcomes.append(Outcome.refused(index, item))
                continue
            try:
                sighting = self.build(source_id, item, received_at=received_at, backfill=backfill)
            except EventError as exc:
                outcomes.append(Outcome.refused(index, exc))
                continue
            sightings.append(sighting)
            outcomes.append(Outcome(index, True, sighting_id=sighting.sighting_id))
        if sightings:
            started = time.perf_counter()
            await self._publisher.publish_many(sightings)
            metrics.PRODUCE_SECONDS.labels(self._connector).observe(time.perf_counter() - started)
            metrics.READS_ACCEPTED.labels(self._connector).inc(len(sightings))
            if not backfill:
                for s in sightings:
                    group = self._group_of(s.device_id)
                    metrics.LAST_READ.labels(group).set(received_at.timestamp())
        refused = [o for o in outcomes if not o.accepted]
        if refused:
            await self.dead_letter(source_id, raw, refused)
        return outcomes

    async def dead_letter(self, source_id: str, raw: bytes, refused: Sequence[Outcome]) -> None:
        """Keep the payload with every refusal's reason (one dead letter per payload).

        Raises:
            KafkaUnavailable: the dead letter could not be stored.
        """
        for o in refused:
            metrics.READS_REJECTED.labels(self._connector, o.reason or "unknown").inc()
        first = refused[0]
        message = "; ".join(f"[{o.index}] {o.message}" for o in refused)
        await self._publisher.dead_letter(
            DeadLetter(
                raw,
                first.reason or "unknown",
                message,
                stage=self._connector,
                source=source_id,
                field=first.field,
            )
        )
        DEAD_LETTERS.labels(self._connector, first.reason or "unknown").inc()

    async def refuse_payload(self, source_id: str, raw: bytes, error: InvalidInput) -> None:
        """A payload that could not be parsed at all: dead-letter it whole.

        Raises:
            KafkaUnavailable: the dead letter could not be stored.
        """
        metrics.READS_REJECTED.labels(self._connector, error.reason).inc()
        await self._publisher.dead_letter(
            DeadLetter(
                raw, error.reason, str(error), stage=self._connector, source=source_id, field=error.field
            )
        )
        DEAD_LETTERS.labels(self._connector, error.reason).inc()

    def _group_of(self, device_id: str) -> str:
        device = self._registry.device(device_id)
        return device.device_group if device else UNKNOWN_GROUP


def _address(read: RawRead, device: Device | None) -> str | None:
    """The read's own address (a vendor that sends one knows the spot), else the registry's, else None."""
    if read.location is not None and read.location.address:
        return read.location.address
    return (device.address or None) if device is not None else None
