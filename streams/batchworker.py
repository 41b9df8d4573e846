"""The default engine of the match stage: aiokafka's consumer group, a batch of sightings at a time.

Per partition batch the stage handles every read in order (:meth:`MatchStage.handle_batch`); only then
are the batch's offsets committed, so a read is acknowledged to Kafka after its hits are recorded and
published. A crash or a rebalance between the two replays the batch: hits are idempotent (their id
derives from the sighting and the entry), so a replay makes no second hit and no second page.

Why not faust's agent: per event it builds an event object, tracks its acknowledgement and wakes the
agent's coroutine, which cost several times the whole match of a read (docs/benchmarks.md).
"""

from __future__ import annotations

import asyncio
import logging

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError

from streams.runtime import MatcherResources, group_id, matcher_resources
from streams.settings import KafkaSettings, MatchSettings, PostgresSettings
from streams.topics import SIGHTINGS

log = logging.getLogger(__name__)

POLL_MS = 500  # the longest a stop request waits for the consumer


async def run(
    kafka: KafkaSettings, postgres: PostgresSettings, match: MatchSettings, *, stop: asyncio.Event
) -> None:
    """Run one matcher worker until ``stop`` is set.

    Raises:
        BaseException: what stopped a background job (watchlist follower, outbox relay, lag monitor).
    """
    async with matcher_resources(kafka, postgres, match) as resources:
        consumer = AIOKafkaConsumer(
            kafka.topic(SIGHTINGS),
            bootstrap_servers=kafka.bootstrap_servers,
            client_id=f"{kafka.client_id}-matcher",
            group_id=group_id(kafka),
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=match.batch_size,
        )
        # Joined while the index loads (nothing is fetched before the first getmany), so matching starts
        # the moment the index is ready; a load far longer than max.poll.interval.ms only rejoins.
        await consumer.start()
        try:
            await resources.ready()
            log.info("watchlist index ready (%d entries): consuming sightings", len(resources.index))
            await _consume(consumer, match, resources, stop)
        finally:
            await consumer.stop()
        if resources.failed.done():
            raise resources.failed.result()


async def _consume(
    consumer: AIOKafkaConsumer, match: MatchSettings, resources: MatcherResources, stop: asyncio.Event
) -> None:
    while not stop.is_set() and not resources.failed.done():
        batch = await consumer.getmany(timeout_ms=POLL_MS, max_records=match.batch_size)
        if not batch:
            continue
        for tp, records in batch.items():
            origin = f"{tp.topic}/{tp.partition}/"
            await resources.stage.handle_batch(origin, [(r.value, r.offset) for r in records])
        await _commit(consumer, {tp: records[-1].offset + 1 for tp, records in batch.items()})


async def _commit(consumer: AIOKafkaConsumer, offsets: dict[TopicPartition, int]) -> None:
    """Commit processed offsets; a failure only means the batch may be handled again (idempotently)."""
    try:
        await consumer.commit(offsets)
    except (CommitFailedError, IllegalStateError) as exc:
        log.warning("offsets not committed (partitions reassigned): %s; the new owner replays them", exc)
    except KafkaError as exc:
        log.warning("offsets not committed: %s; the next commit covers them", exc)
