"""What a matcher worker runs beside its consumer, whichever engine consumes the sightings.

:func:`matcher_resources` opens the PostgreSQL pool (migrating first), an idempotent producer (acks=all),
the :class:`~streams.matcher.MatchStage` over the worker's watchlist index, and the background jobs under
the process's :class:`~streams.supervision.Supervisor`: the watchlist follower, the outbox relay and the
consumer-lag monitor. Each retries what may pass by itself (:func:`streams.errors.translate`); one that
ends anyway fails the supervisor, and the engine stops the worker on it (``/healthz`` 503, exit code
:data:`~streams.supervision.EXIT_LOOP_FAILED`): it never runs on without its index or its relay.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg

from streams import db
from streams.lag import LagMonitor, Watched
from streams.matcher import MatchStage
from streams.matching import WatchIndex
from streams.outbox import OutboxRelay
from streams.producers import idempotent_producer
from streams.settings import KafkaSettings, MatchSettings, PostgresSettings
from streams.supervision import Supervisor
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
    supervisor: Supervisor

    async def ready(self, stop: asyncio.Event | None = None) -> bool:
        """Wait until the index holds the whole watchlist; False when a background job failed first (the
        supervisor says which) or ``stop`` was set."""
        waits = [
            asyncio.ensure_future(self.follower.caught_up.wait()),
            asyncio.ensure_future(self.supervisor.failed.wait()),
        ]
        if stop is not None:
            waits.append(asyncio.ensure_future(stop.wait()))
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()
        return self.follower.caught_up.is_set() and self.supervisor.healthy


@contextlib.asynccontextmanager
async def matcher_resources(
    kafka: KafkaSettings, postgres: PostgresSettings, match: MatchSettings, supervisor: Supervisor
) -> AsyncIterator[MatcherResources]:
    """The resources of one matcher worker, its background jobs running under ``supervisor``; all stopped
    on exit."""
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
        # Stopped before the producer and the pool they use (the stack unwinds in reverse).
        stack.push_async_callback(supervisor.stop)
        supervisor.spawn("watchlist-follower", follower.run())
        supervisor.spawn("outbox-relay", relay.run())
        supervisor.spawn("consumer-lag", lag.run())
        yield MatcherResources(index, follower, stage, supervisor)
