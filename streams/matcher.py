"""The match stage: sightings in, their hits recorded and published. Thin glue over pure functions.

Per record it looks the key up first: a sightings record is keyed by the read's normalized plate (the
connectors, the only writers of ``plate.sightings``, key it so), and the plate's confusion skeleton, a
byte translation of the key (:func:`~streams.plates.skeleton_key`), rules out almost every read with one
set lookup (:meth:`WatchIndex.may_match`). Such a read is counted and nothing else: its value is
never decoded. When the configuration makes no hit of the OCR kinds, a read only they could match is
ruled out by its plate as well (:meth:`WatchIndex.may_match_by_plate`): with a million entries those are
most of the reads the skeleton lets through (docs/performance.md). Any other read (a possible match, a
record without a key) takes the full path on its own: validated as a :class:`~streams.events.Sighting`
(what fails is dead-lettered with the field and the reason), matched, its hits recorded in PostgreSQL
(idempotent) and published to ``watch.hits``. The stage never raises: what cannot be processed goes to
the dead-letter topic, and failures of Kafka or PostgreSQL are classified once
(:func:`streams.errors.translate`): those that pass (a service that does not answer) are retried with
backoff until it answers (the read is held, never skipped); a hit that PostgreSQL or Kafka refuses for
what it holds (``store_refused``, ``broker_refused``) is dead-lettered with the reason, with the read's
bytes, instead of being retried forever; an unexpected error (a bug) dead-letters as ``internal_error``.

A read ruled out by its key is not validated here: the connectors validated every read with the same
model before publishing it, and such a read is stored nowhere. Decoding it again cost more than the
whole match (docs/performance.md). A record whose key is not its plate would be missed, which is why the
key is part of the topic's contract (streams/topics.py) and set in one place (connectors/producer.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import TypeAlias, TypeVar

import asyncpg
import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.structs import ConsumerRecord

from streams import metrics
from streams.deadletter import DeadLetter
from streams.errors import BrokerRefused, InvalidInput, SeizewatchError, is_record_fault, translate
from streams.events import decode_sighting
from streams.hits import HitV1, mark_published, record_hit
from streams.matching import Match, WatchIndex
from streams.plates import PROVINCE_BYTES, SKELETON_BYTES, mask, read_plate
from streams.settings import KafkaSettings, MatchSettings
from streams.topics import HITS, SIGHTINGS_DLQ

log = logging.getLogger(__name__)

T = TypeVar("T")
Record: TypeAlias = ConsumerRecord[bytes, bytes]
# A hit not recorded yet, with the bytes and place ("topic/partition/offset") of the read that made it.
Found: TypeAlias = tuple[bytes | None, str, HitV1]


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
        """Process one record of the sightings topic; return the hits it produced (new or replayed).

        The per-event path (the faust engine): every read decoded and matched, none ruled out by its key.
        """
        started = time.perf_counter()
        metrics.SIGHTINGS_CONSUMED.inc()
        outcomes: Counter[tuple[str, str]] = Counter()
        try:
            hits = await self._matched(raw, origin, outcomes)
            _count(outcomes)
            return await self._record([(raw, origin, hit) for hit in hits])
        except Exception as exc:  # a bug, or a refusal: the read is kept with the reason, not lost
            log.exception("match stage failed on %s", origin)
            await self._failed(raw, origin, exc)
            return []
        finally:
            _observe_age_of(raw)
            metrics.MATCH_SECONDS.observe(time.perf_counter() - started)

    async def match_batch(self, batch: Iterable[tuple[str, Sequence[Record]]]) -> list[Found]:
        """Match every record of a batch, in order: (origin, records) per partition, origin being
        "topic/partition/". Return the hits they make, not recorded yet (:meth:`record` does).

        A read its key rules out costs a byte translation and a lookup; the rest take the full path one
        by one. When no OCR kind makes hits (``SEIZEWATCH_MATCH_HIT_KINDS``), a read its skeleton lets
        through is ruled out by its plate too, so only reads that may hit by plate are decoded. Metrics
        once per batch: the records counted, the processing time as the batch's mean per read, the
        sighting age of the batch's last read.
        """
        started = time.perf_counter()
        found: list[Found] = []
        index = self._index
        keys = index.skeleton_keys
        across = self._match.across_provinces
        fuzzy = self._match.fuzzy_hits
        count = skipped = 0
        last: bytes | None = None
        outcomes: Counter[tuple[str, str]] = Counter()
        for origin, records in batch:
            for record in records:  # the hot loop: what follows runs for (almost) every read
                key = record.key
                if key is not None:
                    skeleton = key.translate(SKELETON_BYTES)
                    if skeleton not in keys and not (
                        across and skeleton[:3] in PROVINCE_BYTES and skeleton[3:] in keys
                    ):
                        continue
                    if not fuzzy and not index.may_match_by_plate(key, across_provinces=across):
                        skipped += 1  # its skeleton only: an OCR kind, and those make no hit
                        continue
                where = f"{origin}{record.offset}"
                try:
                    hits = await self._matched(record.value, where, outcomes)
                    found += [(record.value, where, hit) for hit in hits]
                except Exception as exc:  # a bug must not lose the read: keep its bytes with the error
                    log.exception("match stage failed on %s", where)
                    await self._failed(record.value, where, exc)
            if records:
                count += len(records)
                last = records[-1].value
        _count(outcomes)
        if skipped:
            metrics.FUZZY_ONLY_SKIPPED.inc(skipped)
        if count:
            metrics.SIGHTINGS_CONSUMED.inc(count)
            _observe_age_of(last)
            metrics.MATCH_SECONDS.observe((time.perf_counter() - started) / count)
        return found

    async def record(self, found: Sequence[Found]) -> list[HitV1]:
        """Record the hits in PostgreSQL and publish them (those not published yet), all together; then
        one by one if that failed for a reason retrying cannot cure (a refusal, or a bug): each hit that
        fails again is dead-lettered with its read and the reason. Return the hits recorded."""
        try:
            return await self._record(found)
        except Exception as exc:  # noqa: BLE001  # one hit that cannot be recorded must not take the others
            log.warning("recording %d hits together failed (%s); one by one", len(found), _reason(exc))
        hits: list[HitV1] = []
        for raw, origin, hit in found:
            try:
                hits += await self._record([(raw, origin, hit)])
            except Exception as exc:
                if not _record_at_fault(exc):
                    # The service or the client is at fault, not this read (a producer out of sequence
                    # after a broker restart, a revoked grant): dead-lettering would lose a watched read
                    # for good. The worker stops uncommitted; its restart (a new producer) replays it.
                    log.critical("recording a hit of %s failed, no read at fault: %s; stopping", origin, exc)
                    raise
                log.exception("recording a hit of %s failed; its read is dead-lettered", origin)
                await self._failed(raw, origin, exc)
        return hits

    async def _failed(self, raw: bytes | None, origin: str, exc: Exception) -> None:
        """Dead-letter a read that failed for good, with the reason (the caller has logged it)."""
        message = str(exc) if isinstance(exc, SeizewatchError) else repr(exc)
        await self.dead_letter(DeadLetter(raw or b"", _reason(exc), message, stage="match", origin=origin))

    async def _matched(
        self, raw: bytes | None, origin: str, outcomes: Counter[tuple[str, str]]
    ) -> list[HitV1]:
        """The hits one read makes (not recorded yet); an invalid read is dead-lettered and makes none.

        Each match's (kind, outcome) is added to ``outcomes``, for the caller to count once per batch.
        """
        try:
            sighting = decode_sighting(raw or b"")
            plate = read_plate(sighting.plate)
        except InvalidInput as exc:
            await self.dead_letter(
                DeadLetter(raw or b"", exc.reason, str(exc), stage="match", field=exc.field, origin=origin)
            )
            return []
        hits: list[HitV1] = []
        at, across = sighting.observed_at, self._match.across_provinces
        for match in self._index.match(plate, sighting.plate_colour, at, across_provinces=across):
            outcome = self.outcome(match)
            outcomes[match.kind.value, outcome] += 1
            if outcome == "hit":
                hits.append(HitV1.build(sighting, match))
        return hits

    async def _record(self, found: Sequence[Found]) -> list[HitV1]:
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
        """``attempt()`` until it passes or fails for a reason retrying cannot cure.

        Raises:
            SeizewatchError: the refusal (not retriable), translated (:func:`streams.errors.translate`).
            BaseException: an error that is no failure of a service (a bug), as it was.
        """
        delay = 0.2
        while True:
            try:
                return await attempt()
            except Exception as exc:  # classified by translate, which re-raises a bug
                error = translate(exc)
                if not error.retriable:
                    raise error from exc
                metrics.STAGE_RETRIES.labels("match").inc()
                log.warning("match stage: %s; retrying in %.1f s", error, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._max_backoff)


def _record_at_fault(exc: Exception) -> bool:
    """A bug on one read, or a refusal of the read itself: dead-letter it and go on. Anything else stops."""
    try:
        error = translate(exc)
    except Exception:  # noqa: BLE001  # a bug: a poison read must not stop every vehicle's matching
        return True
    return is_record_fault(error)


def _reason(exc: BaseException) -> str:
    """The dead letter's reason for a read that failed for good: the refusal's code, or internal_error."""
    if isinstance(exc, InvalidInput):
        return exc.reason  # store_refused, or the event's own reasons
    if isinstance(exc, BrokerRefused):
        return "broker_refused"  # only a record Kafka refuses for what it is (over the size limit)
    return "internal_error"  # a bug (what may pass is retried, never dead-lettered)


def _count(outcomes: Counter[tuple[str, str]]) -> None:
    for (kind, outcome), n in outcomes.items():
        metrics.MATCHES.labels(kind, outcome).inc(n)


def _observe_age_of(value: bytes | None) -> None:
    """The age of a read known only by its bytes (a batch's reads ruled out by key are not decoded)."""
    try:
        observed_at = orjson.loads(value or b"").get("observed_at")
        at = datetime.fromisoformat(observed_at) if isinstance(observed_at, str) else None
    except (orjson.JSONDecodeError, AttributeError, ValueError):
        return
    if at is not None and at.tzinfo is not None:
        metrics.SIGHTING_AGE_SECONDS.observe(max(0.0, (datetime.now(UTC) - at).total_seconds()))
