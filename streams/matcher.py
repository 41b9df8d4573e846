"""The match stage: sightings in, their hits recorded and published. Thin glue over pure functions.

Per read it decodes and validates once (``Sighting.model_validate_json``: parse and check in one pass),
checks the plate is a valid one and looks its match key up in the index (:meth:`WatchIndex.may_match`):
almost every read ends there, counted and nothing else. Any other read (a partial or nonstandard plate,
a payload that does not validate, a possible match) takes the full path on its own: matched, each new
hit recorded in PostgreSQL (idempotent) and published to ``watch.hits``. The stage never raises: what
cannot be processed goes to the dead-letter topic with the reason, and failures of Kafka or PostgreSQL
are retried until they answer (the read is held, never skipped).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import TypeVar

import asyncpg
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from pydantic import ValidationError

from streams import metrics
from streams.deadletter import DeadLetter
from streams.errors import InvalidInput
from streams.events import Sighting, decode_sighting
from streams.hits import HitV1, mark_published, record_hit
from streams.matching import Match, WatchIndex
from streams.plates import is_strict_plate, mask, match_key, read_plate
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
            return await self._record([(raw, origin, hit) for hit in await self._matched(raw, origin)])
        except Exception as exc:  # a bug must not lose the read: keep its bytes with the error
            log.exception("match stage failed on %s", origin)
            await self._internal_error(raw, origin, exc)
            return []
        finally:
            metrics.MATCH_SECONDS.observe(time.perf_counter() - started)

    async def handle_batch(self, records: Sequence[tuple[bytes | None, str]]) -> list[HitV1]:
        """Process a batch of (value, origin) records; return the hits they produced.

        The batch's hits are recorded and published together once every read is matched (in read order),
        before the call returns: the caller may then commit the batch. Records the same metrics as
        :meth:`handle`, aggregated: counts once per batch, the processing time as the batch's mean per
        read, the sighting age of the batch's last read.
        """
        started = time.perf_counter()
        found: list[tuple[bytes | None, str, HitV1]] = []
        consumed: Counter[tuple[str, str]] = Counter()
        last: Sighting | None = None
        for raw, origin in records:
            try:
                sighting = Sighting.model_validate_json(raw or b"")
            except ValidationError:
                sighting = None  # the full path names what is wrong and dead-letters it
            if (
                sighting is not None
                and is_strict_plate(sighting.plate)
                and not self._index.may_match(match_key(sighting.plate))
            ):
                consumed[sighting.source_kind.value, sighting.district or "unknown"] += 1
                last = sighting
                continue
            try:
                found += [(raw, origin, hit) for hit in await self._matched(raw, origin, sighting)]
            except Exception as exc:  # a bug must not lose the read: keep its bytes with the error
                log.exception("match stage failed on %s", origin)
                await self._internal_error(raw, origin, exc)
            last = None
        for (kind, district), count in consumed.items():
            metrics.SIGHTINGS_CONSUMED.labels(kind, district).inc(count)
        if last is not None:
            _observe_age(last)
        try:
            hits = await self._record(found)
        except Exception:  # one hit that cannot be recorded must not take the batch's others with it
            log.exception("recording %d hits together failed; recording them one by one", len(found))
            hits = []
            for raw, origin, hit in found:
                try:
                    hits += await self._record([(raw, origin, hit)])
                except Exception as exc:
                    log.exception("recording a hit of %s failed", origin)
                    await self._internal_error(raw, origin, exc)
        if records:
            metrics.MATCH_SECONDS.observe((time.perf_counter() - started) / len(records))
        return hits

    async def _internal_error(self, raw: bytes | None, origin: str, exc: Exception) -> None:
        log.exception("match stage failed on %s", origin, exc_info=exc)
        await self.dead_letter(
            DeadLetter(raw or b"", "internal_error", repr(exc), stage="match", origin=origin)
        )

    async def _matched(self, raw: bytes | None, origin: str, decoded: Sighting | None = None) -> list[HitV1]:
        """The hits one read makes (not recorded yet); an invalid read is dead-lettered and makes none."""
        try:
            sighting = decoded or decode_sighting(raw or b"")
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
        _observe_age(sighting)
        return hits

    async def _record(self, found: Sequence[tuple[bytes | None, str, HitV1]]) -> list[HitV1]:
        """Record the hits in PostgreSQL and publish those not published yet, all together, retrying."""
        hits = [hit for _, _, hit in found]
        if hits:
            await self._retrying(lambda: self._record_and_publish(hits))
        for hit in hits:
            s = hit.sighting
            log.info(
                "hit: %s read as %s (%s, %.2f) at %s/%s",
                mask(hit.entry_plate),
                mask(s.plate),
                hit.match_kind.value,
                hit.score,
                s.source_id,
                s.device_id,
            )
        return hits

    async def _record_and_publish(self, hits: Sequence[HitV1]) -> None:
        """Idempotent as a whole: a retry after any failure records nothing twice and publishes only what
        was not marked published."""
        async with self._pool.acquire() as conn:
            unpublished: list[HitV1] = []
            for hit in hits:
                inserted, published = await record_hit(conn, hit)
                if inserted:
                    metrics.HITS.labels(hit.match_kind.value, hit.action.value).inc()
                else:
                    metrics.HITS_REPLAYED.inc()
                if not published:
                    unpublished.append(hit)
            topic = self._kafka.topic(HITS)
            sent = [
                await self._producer.send(topic, key=str(hit.entry_id).encode(), value=hit.encode())
                for hit in unpublished
            ]
            await asyncio.gather(*sent)  # every one acknowledged (acks=all), in order per entry
            for hit in unpublished:
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


def _observe_age(sighting: Sighting) -> None:
    metrics.SIGHTING_AGE_SECONDS.observe(max(0.0, (datetime.now(UTC) - sighting.observed_at).total_seconds()))
