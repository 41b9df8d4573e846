"""What a matcher worker runs beside its consumer, whichever engine consumes the sightings.

:func:`matcher_resources` opens the PostgreSQL pool (migrating first), an idempotent producer (acks=all),
the :class:`~streams.matcher.MatchStage` over the worker's watchlist index, and the background jobs: the
watchlist follower, the outbox relay and the consumer-lag monitor. A job that stops with an error sets
``failed``; the engine stops the worker on it, never runs on without its index or relay.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from streams import db
from streams.lag import LagMonitor, Watched
from streams.matcher import MatchStage
from streams.matching import WatchIndex
from streams.outbox import OutboxRelay
from streams.producers import idempotent_producer
from streams.settings import KafkaSettings, MatchSettings, PostgresSettings
from streams.topics import SIGHTINGS
from streams.watchsync import WatchlistFollower

log = logging.getLogger(__name__)


def group_id(kafka: KafkaSettings) -> str:
    """The matchers' consumer group (faust's app id, kept: committed offsets carry over between engines)."""
    return f"{kafka.topic_prefix}seizewatch-matcher"


@dataclass
class MatcherResources:
    index: WatchIndex
    follower: WatchlistFollower
    stage: MatchStage
    failed: asyncio.Future[BaseException] = field(repr=False)

    async def ready(self) -> None:
        """Wait until the index holds the whole watchlist.

        Raises:
            BaseException: a background job failed before the index caught up.
        """
        caught_up = asyncio.ensure_future(self.follower.caught_up.wait())
        either: list[asyncio.Future[Any]] = [caught_up, self.failed]
        await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
        if not caught_up.done():
            caught_up.cancel()
            raise self.failed.result()


@contextlib.asynccontextmanager
async def matcher_resources(
    kafka: KafkaSettings, postgres: PostgresSettings, match: MatchSettings
) -> AsyncIterator[MatcherResources]:
    """The resources of one matcher worker, its background jobs running; all stopped on exit."""
    loop = asyncio.get_running_loop()
    failed: asyncio.Future[BaseException] = loop.create_future()
    index = WatchIndex()
    follower = WatchlistFollower(kafka, index)
    async with contextlib.AsyncExitStack() as stack:
        pool: asyncpg.Pool = await stack.enter_async_context(db.pool(postgres))
        async with pool.acquire() as conn:
            await db.migrate(conn)
        producer = idempotent_producer(kafka, "matcher", linger_ms=0)
        await producer.start()
        stack.push_async_callback(producer.stop)
        stage = MatchStage(index=index, match=match, kafka=kafka, pool=pool, producer=producer)
        relay = OutboxRelay(postgres, kafka, producer)
        lag = LagMonitor(kafka, [Watched("match", group_id(kafka), kafka.topic(SIGHTINGS))])
        jobs: list[asyncio.Task[None]] = []

        def on_done(task: asyncio.Task[None]) -> None:
            error = None if task.cancelled() else task.exception()
            if error is not None and not failed.done():
                log.error("%s stopped: %s; stopping the worker", task.get_name(), error)
                failed.set_result(error)

        for name, job in (
            ("watchlist-follower", follower.run()),
            ("outbox-relay", relay.run()),
            ("consumer-lag", lag.run()),
        ):
            task = asyncio.create_task(job, name=name)
            task.add_done_callback(on_done)
            jobs.append(task)
        try:
            yield MatcherResources(index, follower, stage, failed)
        finally:
            for task in jobs:
                task.cancel()
            await asyncio.gather(*jobs, return_exceptions=True)
