"""The match stage: sightings in, their hits recorded and published. Thin glue over pure functions.

Per read it parses the JSON once, checks what matching relies on (schema v1, a valid normalized plate,
source kind, observed time) and looks the plate's match key up in the index
(:meth:`WatchIndex.may_match`): almost every read ends there, counted and nothing else. Any other read
(a possible match, a partial or nonstandard plate, a payload that fails those checks) takes the full
path on its own: validated as a :class:`~streams.events.Sighting` (what fails is dead-lettered with
the field and the reason), matched, its hits recorded in PostgreSQL (idempotent) and published to
``watch.hits``. The stage never raises: what cannot be processed goes to the dead-letter topic, and
failures of Kafka or PostgreSQL are retried until they answer (the read is held, never skipped).

A read that matches nothing is not validated beyond those checks: the connectors, the only writers of
``plate.sightings``, validated every read with the same model before publishing it, and such a read is
stored nowhere. Validating it again cost more than the whole bare consumer (docs/benchmarks.md).
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
import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from streams import metrics
from streams.deadletter import DeadLetter
from streams.errors import InvalidInput
from streams.events import SIGHTING_SCHEMA_VERSION, Sighting, SourceKind, decode_sighting
from streams.hits import HitV1, mark_published, record_hit
from streams.matching import Match, WatchIndex
from streams.plates import is_strict_plate, mask, match_key, read_plate
from streams.settings import KafkaSettings, MatchSettings
from streams.topics import HITS, SIGHTINGS_DLQ

log = logging.getLogger(__name__)

T = TypeVar("T")
_SOURCE_KINDS = frozenset(kind.value for kind in SourceKind)
_MAX_DISTRICT = 64  # Sighting.district's limit
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

    async def handle_batch(self, origin: str, records: Sequence[tuple[bytes | None, int]]) -> list[HitV1]:
        """Process a batch of (value, offset) records of one partition (``origin``: "topic/partition/").

        Return the hits they produced. The batch's hits are recorded and published together once every
        read is matched (in read order), before the call returns: the caller may then commit the batch.
        Records the same metrics as :meth:`handle`, aggregated: counts once per batch, the processing
        time as the batch's mean per read, the sighting age of the batch's last read.
        """
        started = time.perf_counter()
        found: list[tuple[bytes | None, str, HitV1]] = []
        consumed: Counter[tuple[str, str]] = Counter()
        last: object = None
        for raw, offset in records:
            quick = self._cannot_match(raw)
            if quick is not None:
                consumed[quick[0], quick[1]] += 1
                last = quick[2]
                continue
            where = f"{origin}{offset}"
            try:
                found += [(raw, where, hit) for hit in await self._matched(raw, where)]
            except Exception as exc:  # a bug must not lose the read: keep its bytes with the error
                log.exception("match stage failed on %s", where)
                await self._internal_error(raw, where, exc)
            last = None
        for (kind, district), count in consumed.items():
            metrics.SIGHTINGS_CONSUMED.labels(kind, district).inc(count)
        if last is not None:
            _observe_age_of(last)
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

    def _cannot_match(self, raw: bytes | None) -> tuple[str, str, object] | None:
        """(source kind, district, observed time) of a read that certainly matches nothing, else None.

        Checks what matching relies on (a JSON object of schema v1, a valid normalized plate, a source
        kind, an observed time) and looks the plate's match key up: one parse and one lookup. Anything
        else, invalid or possibly matching, returns None and takes the full path.
        """
        try:
            data = orjson.loads(raw or b"")
        except orjson.JSONDecodeError:
            return None
        if type(data) is not dict or data.get("schema_version") != SIGHTING_SCHEMA_VERSION:
            return None
        plate, kind, district = data.get("plate"), data.get("source_kind"), data.get("district")
        observed_at = data.get("observed_at")
        if kind not in _SOURCE_KINDS or type(plate) is not str or type(observed_at) is not str:
            return None
        if district is None:
            district = "unknown"
        elif type(district) is not str or len(district) > _MAX_DISTRICT:
            return None
        if not is_strict_plate(plate) or self._index.may_match(match_key(plate)):
            return None
        return kind, district, observed_at

    async def _internal_error(self, raw: bytes | None, origin: str, exc: Exception) -> None:
        """Dead-letter a read an unexpected error stopped (the caller has logged it)."""
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
        # The same read twice in one batch (a resend) makes the same hit: recorded and published once.
        hits = list({hit.hit_id: hit for _, _, hit in found}.values())
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
            async with conn.transaction():  # one commit (one WAL flush) for the batch's hits
                recorded = [(hit, *await record_hit(conn, hit)) for hit in hits]
            unpublished: list[HitV1] = []
            for hit, inserted, published in recorded:
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
            if unpublished:
                await mark_published(conn, *(hit.hit_id for hit in unpublished))

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


def _observe_age_of(observed_at: object) -> None:
    """The age of a read known only by its wire form (the quick path does not build a Sighting)."""
    try:
        at = datetime.fromisoformat(observed_at) if isinstance(observed_at, str) else None
    except ValueError:
        return
    if at is not None and at.tzinfo is not None:
        metrics.SIGHTING_AGE_SECONDS.observe(max(0.0, (datetime.now(UTC) - at).total_seconds()))
