"""The match stage: one sighting in, its hits recorded and published. Thin glue over pure functions.

Per event it decodes once, matches against the index, records each new hit in PostgreSQL (idempotent)
and publishes it to ``watch.hits``. It never raises: what cannot be processed goes to the dead-letter
topic with the reason, and failures of Kafka or PostgreSQL are retried until they answer (the event is
held, never skipped, because faust acknowledges an event whose handler raised).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TypeVar

import asyncpg
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from streams import metrics
from streams.deadletter import DeadLetter
from streams.errors import InvalidInput
from streams.events import decode_sighting
from streams.hits import HitV1, mark_published, record_hit
from streams.matching import Match, WatchIndex
from streams.plates import mask, read_plate
from streams.settings import KafkaSettings, MatchSettings
from streams.topics import HITS, SIGHTINGS_DLQ

log = logging.getLogger(__name__)

T = TypeVar("T")
_RETRIABLE = (KafkaError, OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError, TimeoutError)


class MatchStage:
    def __init__(
        self,
        *,
        index: WatchIndex,
        match: MatchSettings,
        kafka: KafkaSettings,
        pool: asyncpg.Pool,
        producer: AIOKafkaProducer,
        max_backoff: float = 10.0,
    ) -> None:
        self._index = index
        self._match = match
        self._kafka = kafka
        self._pool = pool
        self._producer = producer
        self._max_backoff = max_backoff

    def outcome(self, match: Match) -> str:
        """``hit``, or why the match does not become one (configuration)."""
        if match.kind not in self._match.hit_kinds:
            return "kind_disabled"
        if match.score < self._match.min_score:
            return "below_min_score"
        return "hit"

    async def handle(self, raw: bytes | None, *, origin: str) -> list[HitV1]:
        """Process one record of the sightings topic; return the hits it produced (new or replayed)."""
        started = time.perf_counter()
        try:
            return await self._handle(raw, origin)
        except Exception as exc:  # a bug must not lose the read: keep its bytes with the error
            log.exception("match stage failed on %s", origin)
            await self.dead_letter(
                DeadLetter(raw or b"", "internal_error", repr(exc), stage="match", origin=origin)
            )
            return []
        finally:
            metrics.MATCH_SECONDS.observe(time.perf_counter() - started)

    async def _handle(self, raw: bytes | None, origin: str) -> list[HitV1]:
        try:
            sighting = decode_sighting(raw or b"")
            plate = read_plate(sighting.plate)
        except InvalidInput as exc:
            await self.dead_letter(
                DeadLetter(raw or b"", exc.reason, str(exc), stage="match", field=exc.field, origin=origin)
            )
            return []
        metrics.SIGHTINGS_CONSUMED.labels(sighting.source_kind.value, sighting.district or "unknown").inc()
        hits: list[HitV1] = []
        for match in self._index.match(plate, sighting.plate_colour, sighting.observed_at):
            outcome = self.outcome(match)
            metrics.MATCHES.labels(match.kind.value, outcome).inc()
            if outcome == "hit":
                hits.append(HitV1.build(sighting, match))
        for hit in hits:
            await self._retrying(lambda hit=hit: self._record_and_publish(hit))  # type: ignore[misc]
            log.info(
                "hit: %s read as %s (%s, %.2f) at %s/%s",
                mask(hit.entry_plate),
                mask(sighting.plate),
                hit.match_kind.value,
                hit.score,
                sighting.source_id,
                sighting.device_id,
            )
        metrics.SIGHTING_AGE_SECONDS.observe(
            max(0.0, (datetime.now(UTC) - sighting.observed_at).total_seconds())
        )
        return hits

    async def _record_and_publish(self, hit: HitV1) -> None:
        async with self._pool.acquire() as conn:
            inserted, published = await record_hit(conn, hit)
            if inserted:
                metrics.HITS.labels(hit.match_kind.value, hit.action.value).inc()
            else:
                metrics.HITS_REPLAYED.inc()
            if published:
                return
            await self._producer.send_and_wait(
                self._kafka.topic(HITS), key=str(hit.entry_id).encode(), value=hit.encode()
            )
            await mark_published(conn, hit.hit_id)

    async def dead_letter(self, letter: DeadLetter) -> None:
        metrics.DEAD_LETTERS.labels(letter.stage, letter.reason).inc()
        await self._retrying(
            lambda: self._producer.send_and_wait(
                self._kafka.topic(SIGHTINGS_DLQ), value=letter.raw, headers=letter.headers()
            )
        )

    async def _retrying(self, attempt: Callable[[], Awaitable[T]]) -> T:
        delay = 0.2
        while True:
            try:
                return await attempt()
            except _RETRIABLE as exc:
                metrics.STAGE_RETRIES.labels("match").inc()
                log.warning("match stage: %s; retrying in %.1f s", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._max_backoff)
