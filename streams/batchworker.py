"""The default engine of the match stage: aiokafka's consumer group, a batch of sightings at a time.

Each ``getmany`` batch (every partition's records) is matched in one pass (:meth:`MatchStage.match_batch`,
CPU only for almost every read). Its hits are then recorded and published, and only after that are its
offsets committed, so a read is acknowledged to Kafka after its hits are recorded and published. That
second step (PostgreSQL, Kafka acknowledgements, the commit: milliseconds of waiting, whatever the number
of hits) is the :class:`Recorder`'s, in the background: while it records, the worker fetches and matches
the next batches, and the recorder's next round takes every batch matched meanwhile, in batch order. So
hits reach ``watch.hits`` in read order, offsets are committed in order, and the waits are paid once per
round instead of once per batch. A crash or a rebalance before a commit replays what it covered: hits are
idempotent (their id derives from the sighting and the entry), so a replay makes no second hit and no
second page.

The worker joins its consumer group only once its watchlist index is loaded (the consumer made by
:func:`streams.consumers.group_consumer`, whose settings say what a restart costs), and stops when a
background job fails (:class:`~streams.supervision.Supervisor`) after recording and committing what it had
matched. Errors of ``getmany`` and of the commit are classified by :func:`streams.errors.translate`.

Why not faust's agent: per event it builds an event object, tracks its acknowledgement and wakes the
agent's coroutine, which cost several times the whole match of a read (docs/benchmarks.md).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from aiokafka import AIOKafkaConsumer, TopicPartition

from streams import metrics
from streams.consumers import commit_processed, group_consumer, join
from streams.errors import translate
from streams.matcher import Found, MatchStage
from streams.runtime import MatcherResources, group_id, matcher_resources
from streams.settings import KafkaSettings, MatchSettings, PostgresSettings
from streams.supervision import Supervisor
from streams.topics import SIGHTINGS

log = logging.getLogger(__name__)

POLL_MS = 500  # the longest a stop request waits for the consumer
MAX_BACKOFF_S = 10.0


async def run(
    kafka: KafkaSettings,
    postgres: PostgresSettings,
    match: MatchSettings,
    *,
    stop: asyncio.Event,
    supervisor: Supervisor,
) -> None:
    """Run one matcher worker until ``stop`` is set or a background job fails (``supervisor`` says
    which: the caller exits with :data:`~streams.supervision.EXIT_LOOP_FAILED`).

    Raises:
        BaseException: what stopped the consuming loop itself (a bug, or Kafka refusing it for good).
    """
    async with matcher_resources(kafka, postgres, match, supervisor) as resources:
        # Connected now, joined only once the index is loaded (streams/consumers.py): while it loads,
        # the group's other workers keep the partitions this one would take, and a static member comes
        # back under its name within its session, without a rebalance.
        consumer = group_consumer(
            kafka, group_id=group_id(kafka), role="matcher", max_poll_records=match.batch_size
        )
        await consumer.start()
        try:
            if not await resources.ready(stop):
                return
            log.info("watchlist index ready (%d entries): consuming sightings", len(resources.index))
            join(consumer, kafka.topic(SIGHTINGS), group_id=group_id(kafka))
            await _consume(consumer, match, resources, stop)
        finally:
            await consumer.stop()  # a dynamic member leaves the group here (LeaveGroup)


async def _consume(
    consumer: AIOKafkaConsumer, match: MatchSettings, resources: MatcherResources, stop: asyncio.Event
) -> None:
    recorder = Recorder(consumer, resources.stage, max_pending=MAX_PENDING_BATCHES * match.batch_size)
    supervisor = resources.supervisor
    delay = 0.2
    try:
        while not stop.is_set() and supervisor.healthy:
            try:
                batch = await consumer.getmany(timeout_ms=POLL_MS, max_records=match.batch_size)
            except Exception as exc:  # the group's errors surface here; classified once, by translate
                if not translate(exc).retriable:
                    raise
                metrics.STAGE_RETRIES.labels("match").inc()
                log.warning("consuming sightings: %s; retrying in %.1f s", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_BACKOFF_S)
                continue
            delay = 0.2
            if not batch:
                continue
            found = await resources.stage.match_batch(
                (f"{tp.topic}/{tp.partition}/", records) for tp, records in batch.items()
            )
            offsets = {tp: records[-1].offset + 1 for tp, records in batch.items()}
            await recorder.add(found, offsets, sum(len(records) for records in batch.values()))
    finally:
        await recorder.close()  # what was matched is recorded and committed before the worker stops


# Matched reads the recorder may hold before the worker waits for it: its rounds stay short and a crash
# replays little, while the waits of one round are shared by many batches.
MAX_PENDING_BATCHES = 8


class Recorder:
    """Records matched batches' hits, then commits their offsets, in the background and in order.

    What is added while a round runs waits for the next round, which takes all of it at once. ``add``
    returns at once unless ``max_pending`` matched reads already wait: then it waits for the recorder.
    """

    def __init__(self, consumer: AIOKafkaConsumer, stage: MatchStage, *, max_pending: int) -> None:
        self._consumer = consumer
        self._stage = stage
        self._max_pending = max_pending
        self._found: list[Found] = []
        self._offsets: dict[TopicPartition, int] = {}
        self._pending = 0  # matched reads not recorded yet
        self._rounds: asyncio.Task[None] | None = None

    async def add(self, found: Sequence[Found], offsets: dict[TopicPartition, int], reads: int) -> None:
        """Hand over a matched batch: its hits and the offsets to commit once they are recorded.

        Raises:
            BaseException: what stopped the recorder (it retries Kafka and PostgreSQL itself, so a bug).
        """
        if self._rounds is not None and self._rounds.done():
            self._rounds.result()  # a recorder that failed stops the worker: nothing is committed past it
        self._found += found
        self._offsets.update(offsets)
        self._pending += reads
        if self._rounds is None or self._rounds.done():
            self._rounds = asyncio.create_task(self._record_rounds(), name="match-recorder")
        elif self._pending >= self._max_pending:
            await self._rounds

    async def close(self) -> None:
        """Wait until everything added is recorded and committed."""
        while self._rounds is not None and not self._rounds.done():
            await self._rounds
        if self._rounds is not None:
            self._rounds.result()

    async def _record_rounds(self) -> None:
        while self._pending:
            found, offsets = self._found, self._offsets
            self._found, self._offsets, self._pending = [], {}, 0
            if found:
                await self._stage.record(found)
            await commit_processed(self._consumer, offsets)
