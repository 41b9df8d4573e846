"""Publishing to Kafka from the connectors: sightings and dead letters, acknowledged or refused.

Every call returns only after Kafka acknowledged (acks=all, idempotent) or raises within the produce
timeout, so a connector answers 2xx for what Kafka holds and 503 for what it did not acknowledge. After
Kafka failed to answer the breaker stays open for ``retry_after_s``: requests are refused at once instead
of piling up on a dead broker; then one request probes it.

**A producer that only a new one cures is replaced.** aiokafka's idempotent producer numbers the records
of each partition; a batch that fails without reaching the log leaves a gap in those numbers, and from
then on the broker refuses every batch of that partition with ``OutOfOrderSequenceNumber`` — for as long
as the process lives, with the broker healthy (issue 21: a batch that waited out the request timeout
while its partition had no leader, during a broker restart, expires that way). The same holds for an
unknown producer id, a fenced producer, any refusal that :func:`~streams.errors.translate` calls not
retriable, and sends that keep timing out while the broker answers metadata. Then the publisher stops
that producer (bounded: it would wait for batches no broker takes) and starts a new one; one replacement
at a time; requests meanwhile, and those still waiting on the old producer, get 503. Nothing is reported
acknowledged that the producer it was sent by did not acknowledge, so nothing answered 2xx is lost.
Counted in ``seizewatch_ingest_producer_restarts_total{reason}``.

A refusal of one payload's records for what they are (too large, a bad timestamp) is the sender's
problem, not Kafka's: :class:`RecordRefused`, neither the breaker nor a new producer.

A request that was refused may still have been stored (a batch the broker wrote whose answer was lost,
or one the producer delivered after the request stopped waiting); its reads carry the same sighting ids
as the sender's retry, and every later stage is idempotent on them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, NoReturn

from aiokafka import AIOKafkaProducer
from aiokafka.errors import (
    CorruptRecordException,
    InvalidProducerEpoch,
    InvalidTimestampError,
    KafkaError,
    KafkaTimeoutError,
    MessageSizeTooLargeError,
    OutOfOrderSequenceNumber,
    ProducerFenced,
    RecordListTooLargeError,
    RecordTooLargeError,
    UnknownProducerId,
)

from connectors import metrics
from connectors.logs import RefusalLog
from connectors.producer_lifecycle import CLOSE_TIMEOUT_S, broker_answers, stop_bounded
from streams.deadletter import DeadLetter
from streams.errors import BrokerRefused, ServiceUnavailable, translate
from streams.events import Sighting
from streams.producers import idempotent_producer
from streams.settings import KafkaSettings
from streams.topics import SIGHTINGS, SIGHTINGS_DLQ

log = logging.getLogger(__name__)

# Refusals of the records themselves: retrying the same fails the same way, a new producer changes
# nothing, and other requests are fine (issue 18: only real broker failures open the breaker).
_RECORD_REFUSALS = (
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    RecordTooLargeError,
    InvalidTimestampError,
    CorruptRecordException,
)
# The restart reasons (a metric label) of the producer states named by the broker.
_REASONS: tuple[tuple[type[KafkaError], str], ...] = (
    (OutOfOrderSequenceNumber, "out_of_order_sequence"),
    (UnknownProducerId, "unknown_producer_id"),
    (ProducerFenced, "producer_fenced"),
    (InvalidProducerEpoch, "producer_fenced"),
)
RESTART_REASONS = ("out_of_order_sequence", "unknown_producer_id", "producer_fenced", "batch_expired",
                   "broker_refused", "stuck")  # fmt: skip
#: How long a new producer may take to start (bootstrap, producer id) before it is tried again.
START_TIMEOUT_S = 15.0


class KafkaUnavailable(ServiceUnavailable):
    """Kafka did not acknowledge in time; ``retry_after_s`` is the hint for the sender."""

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class RecordRefused(BrokerRefused):
    """Kafka refused this payload's records for what they are (size, timestamp): retrying cannot help."""

    def __init__(self, message: str) -> None:
        super().__init__(message, record_fault=True)


class ProducerFailed(BrokerRefused):
    """No producer could be started for a reason retrying cannot fix; the process must stop."""


_Record = tuple[str, bytes | None, bytes, list[tuple[str, bytes]] | None]  # topic, key, value, headers


@dataclass(eq=False)
class _Generation:
    """One producer and whether it has been retired (requests waiting on it then give up)."""

    producer: AIOKafkaProducer
    number: int
    retired: asyncio.Event = field(default_factory=asyncio.Event)


class SightingPublisher:
    """Sends sightings keyed by normalized plate, and dead letters with their reasons.

    Args:
        on_fatal: told (once) when no new producer can be started for a reason retrying cannot fix; a
            process under a :class:`~streams.supervision.Supervisor` fails with it. Callers get
            :class:`ProducerFailed` from then on, with or without it.
        stuck_after_s: sends failing this long without one acknowledgement, while the broker answers
            metadata, mean the producer is stuck: it is replaced.
    """

    def __init__(
        self,
        kafka: KafkaSettings,
        *,
        role: str = "connector",
        timeout_s: float = 5.0,
        retry_after_s: int = 5,
        stuck_after_s: float | None = None,
        on_fatal: Callable[[str], None] | None = None,
    ) -> None:
        self._kafka = kafka
        self._role = role
        self._topic = kafka.topic(SIGHTINGS)
        self._dlq = kafka.topic(SIGHTINGS_DLQ)
        self._timeout_s = timeout_s
        self._retry_after_s = retry_after_s
        # Three failed probes of the breaker, at least: a broker back from a restart leaves the old
        # producer a few seconds to reconnect on its own before it is taken for stuck.
        self._stuck_after_s = stuck_after_s if stuck_after_s is not None else max(10.0, 3 * timeout_s)
        self._on_fatal = on_fatal
        self._current = _Generation(idempotent_producer(kafka, role), 1)
        self._open_until = 0.0
        self._failing_since: float | None = None  # since when no request was acknowledged
        self._probing = False
        self._replacement: asyncio.Task[None] | None = None
        self._check: asyncio.Task[None] | None = None
        self._closing: set[asyncio.Task[None]] = set()
        self._fatal: ProducerFailed | None = None
        self._refusals = RefusalLog(log)
        for reason in RESTART_REASONS:  # zero series first, so the first restart shows in increase()
            metrics.PRODUCER_RESTARTS.labels(reason)

    async def __aenter__(self) -> SightingPublisher:
        await self._current.producer.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for task in (self._check, self._replacement):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await self._close(self._current)
        if self._closing:
            await asyncio.wait(self._closing, timeout=CLOSE_TIMEOUT_S)

    @property
    def producer_number(self) -> int:
        """Which producer this is: 1 at start, one more per replacement."""
        return self._current.number

    async def publish(self, sighting: Sighting) -> None:
        """Raises: KafkaUnavailable, RecordRefused, ProducerFailed."""
        await self.publish_many([sighting])

    async def publish_many(self, sightings: Sequence[Sighting]) -> None:
        """Send a batch and wait until every record is acknowledged.

        Raises:
            KafkaUnavailable: not every record was acknowledged (some may be stored nonetheless).
            RecordRefused: Kafka refused a record for what it is.
            ProducerFailed: no producer can be started; the process is stopping.
        """
        # The key is the normalized plate: the match stage rules reads out by it without decoding them
        # (streams/matcher.py), so it must be exactly the value's plate.
        await self._acknowledged([(self._topic, s.plate.encode(), s.encode(), None) for s in sightings])
        published = Counter((s.source_kind.value, s.district or "unknown") for s in sightings)
        for (kind, district), count in published.items():
            metrics.SIGHTINGS_PUBLISHED.labels(kind, district).inc(count)

    async def dead_letter(self, letter: DeadLetter) -> None:
        """Raises: KafkaUnavailable, RecordRefused, ProducerFailed."""
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
            KafkaUnavailable, RecordRefused, ProducerFailed: as :meth:`publish_many`.
        """
        real = self._kafka.topic(topic)
        await self._acknowledged([(real, key, value, headers) for key, value in records])

    async def publish_raw(self, value: bytes, key: bytes | None = None) -> None:
        """Put bytes on the sightings topic as they are (tests of the match stage's dead-letter path)."""
        await self._acknowledged([(self._topic, key, value, None)])

    # ---- one request

    async def _acknowledged(self, records: list[_Record]) -> None:
        if self._fatal is not None:
            self._refusals.refused("no_producer", str(self._fatal))
            raise self._fatal
        if self._replacement is not None:
            self._refusals.refused("replacing_producer", "the Kafka producer is being replaced")
            raise KafkaUnavailable("the Kafka producer is being replaced", self._retry_after_s)
        # While Kafka fails, one request at a time probes it once the breaker's time is up.
        failing = self._failing_since is not None
        if time.monotonic() < self._open_until or (failing and self._probing):
            self._refusals.refused("breaker_open", "Kafka was unreachable moments ago")
            raise KafkaUnavailable("Kafka was unreachable moments ago", self._retry_after_s)
        self._probing = failing
        try:
            await self._send(records)
        except KafkaUnavailable as exc:
            self._refusals.refused("not_acknowledged", str(exc))
            raise
        finally:
            if failing:
                self._probing = False
        self._refusals.acknowledged()

    async def _send(self, records: list[_Record]) -> None:
        generation = self._current
        try:
            async with asyncio.timeout(self._timeout_s):
                futures = [
                    await generation.producer.send(topic, key=key, value=value, headers=headers)
                    for topic, key, value, headers in records
                ]
                acked = await self._all_acknowledged(generation, futures)
                try:
                    acked.result()
                except KafkaError as exc:
                    self._refused(generation, exc, queued=True)
        except (TimeoutError, KafkaTimeoutError) as exc:
            self._timed_out(generation)
            raise KafkaUnavailable(f"Kafka did not acknowledge: {exc!r}", self._retry_after_s) from exc
        except KafkaError as exc:  # from send(): the record was not queued
            self._refused(generation, exc, queued=False)
        if generation is self._current:
            self._open_until = 0.0
            self._failing_since = None

    async def _all_acknowledged(
        self, generation: _Generation, futures: list[asyncio.Future[Any]]
    ) -> asyncio.Future[list[Any]]:
        """Every record's acknowledgement by ``generation``'s producer, done; 503 once it is retired."""
        acked = asyncio.gather(*futures)
        retired = asyncio.ensure_future(generation.retired.wait())
        try:
            waiters: set[asyncio.Future[Any]] = {acked, retired}
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            retired.cancel()
            if not acked.done():
                # Its records belong to a producer that went away or a request that stopped waiting:
                # nothing is promised of them. Retrieving their end keeps it out of the log.
                acked.add_done_callback(lambda f: f.cancelled() or f.exception())
        if not acked.done():
            raise KafkaUnavailable(
                "the Kafka producer was replaced before it acknowledged this", self._retry_after_s
            )
        return acked

    def _timed_out(self, generation: _Generation) -> None:
        if generation is not self._current:
            return
        now = self._open_breaker()
        failing_for = now - (self._failing_since or now)
        if failing_for >= self._stuck_after_s and self._check is None:
            self._check = asyncio.create_task(self._check_stuck(generation), name="kafka-producer-check")

    def _open_breaker(self) -> float:
        """Refuse requests at once for ``retry_after_s``; return the time."""
        now = time.monotonic()
        self._open_until = now + self._retry_after_s
        if self._failing_since is None:
            self._failing_since = now
        return now

    def _refused(self, generation: _Generation, exc: KafkaError, *, queued: bool) -> NoReturn:
        """Raise RecordRefused or KafkaUnavailable, once it is decided whether the producer is done for."""
        if isinstance(exc, _RECORD_REFUSALS):
            # (A refusal from the broker leaves a gap in the producer's sequence numbers; the next batch
            # of that partition then fails out of sequence, and that replaces the producer.)
            raise RecordRefused(f"Kafka refused a record: {exc!r}") from exc
        error = translate(exc)
        if generation is not self._current:
            pass  # a retired producer's failure says nothing of the current one
        elif not error.retriable:
            reason = next((r for kind, r in _REASONS if isinstance(exc, kind)), "broker_refused")
            self._replace(generation, reason, repr(exc))
        elif queued:
            # An idempotent producer retries a retriable error itself, for ever; one reaches a record
            # only when its batch expired in the queue, never sent, its sequence number spent.
            self._replace(generation, "batch_expired", repr(exc))
        else:
            self._open_breaker()
        raise KafkaUnavailable(f"Kafka did not acknowledge: {exc!r}", self._retry_after_s) from exc

    # ---- replacing the producer

    async def _check_stuck(self, generation: _Generation) -> None:
        """Replace the producer if the broker answers while its sends keep timing out."""
        try:
            answers = await broker_answers(self._kafka, f"{self._kafka.client_id}-{self._role}-probe")
            if answers and generation is self._current and self._failing_since is not None:
                stuck_for = time.monotonic() - self._failing_since
                self._replace(generation, "stuck", f"no acknowledgement for {stuck_for:.0f} s")
        finally:
            self._check = None

    def _replace(self, generation: _Generation, reason: str, why: str) -> None:
        if generation is not self._current or self._replacement is not None or self._fatal is not None:
            return
        metrics.PRODUCER_RESTARTS.labels(reason).inc()
        log.warning(
            "Kafka producer %d cannot go on (%s: %s): replacing it; requests get 503 meanwhile",
            generation.number, reason, why,
        )  # fmt: skip
        generation.retired.set()
        self._replacement = asyncio.create_task(self._replaced(generation), name="kafka-producer-restart")

    async def _replaced(self, old: _Generation) -> None:
        started = time.monotonic()
        new: _Generation | None = None
        try:
            closing = asyncio.create_task(self._close(old), name="kafka-producer-close")
            self._closing.add(closing)
            closing.add_done_callback(self._closing.discard)
            # The old producer stops on its own time (bounded by _close); the new one need not wait.
            await asyncio.wait({closing}, timeout=CLOSE_TIMEOUT_S)
            new = _Generation(idempotent_producer(self._kafka, self._role), old.number + 1)
            delay = 0.5
            while True:
                try:
                    # start() waits for a producer id without end while the broker answers but grants
                    # none: bounded, and tried again.
                    async with asyncio.timeout(START_TIMEOUT_S):
                        await new.producer.start()
                    break
                except Exception as exc:  # noqa: BLE001  # translate() re-raises what is no Kafka failure
                    await self._close(new)
                    error = translate(exc)
                    if not error.retriable:
                        self._fail(f"no Kafka producer can be started: {error}")
                        return
                    log.warning("Kafka producer %d could not start (%s); retrying in %.1f s",
                                new.number, error, delay)  # fmt: skip
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 5.0)
                    new = _Generation(idempotent_producer(self._kafka, self._role), new.number)
            self._current = new
            self._open_until = 0.0
            self._failing_since = None
            log.warning("Kafka producer %d started, %.1f s after producer %d was retired",
                        new.number, time.monotonic() - started, old.number)  # fmt: skip
        except asyncio.CancelledError:
            if new is not None and new is not self._current:  # shut down while starting one
                await self._close(new)
            raise
        except BaseException as exc:  # a bug: the publisher cannot go on without a producer
            self._fail(f"replacing the Kafka producer failed: {exc!r}")
            raise
        finally:
            self._replacement = None

    def _fail(self, why: str) -> None:
        self._fatal = ProducerFailed(why)
        log.critical("%s", why)
        if self._on_fatal is not None:
            self._on_fatal(why)

    async def _close(self, generation: _Generation) -> None:
        """Retire ``generation`` (requests waiting on it get 503 now) and stop its producer, bounded."""
        generation.retired.set()
        await stop_bounded(generation.producer, generation.number)
