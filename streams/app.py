"""The faust app of the match stage: the sightings topic, the ``match`` agent, and the runtime it needs.

faust runs the consumer group (partition assignment, offsets committed after each event is handled);
:class:`MatcherRuntime` owns everything else the agent uses — PostgreSQL pool, an idempotent producer
(acks=all), the watchlist follower and the outbox relay — started and stopped with the worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import Any

import asyncpg
import faust
from mode import Service

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


class MatcherRuntime(Service):
    """Resources of one matcher worker, ready once the watchlist index has caught up."""

    def __init__(self, kafka: KafkaSettings, postgres: PostgresSettings, match: MatchSettings) -> None:
        super().__init__()
        self._kafka = kafka
        self._postgres = postgres
        self._match = match
        self.index = WatchIndex()
        self.follower = WatchlistFollower(kafka, self.index)
        self._resources_up = asyncio.Event()
        self._stack = contextlib.AsyncExitStack()
        self._jobs: list[asyncio.Task[None]] = []
        self._stage: MatchStage | None = None
        self._crashing: asyncio.Future[None] | None = None

    @property
    def stage(self) -> MatchStage:
        if self._stage is None:
            raise RuntimeError("matcher runtime not started")
        return self._stage

    async def on_start(self) -> None:
        pool: asyncpg.Pool = await self._stack.enter_async_context(db.pool(self._postgres))
        async with pool.acquire() as conn:
            await db.migrate(conn)
        producer = idempotent_producer(self._kafka, "matcher")
        await producer.start()
        self._stack.push_async_callback(producer.stop)
        self._stage = MatchStage(
            index=self.index, match=self._match, kafka=self._kafka, pool=pool, producer=producer
        )
        relay = OutboxRelay(self._postgres, self._kafka, producer)
        lag = LagMonitor(
            self._kafka,
            [Watched("match", f"{self._kafka.topic_prefix}seizewatch-matcher", self._kafka.topic(SIGHTINGS))],
        )
        for name, job in (
            ("watchlist-follower", self.follower.run()),
            ("outbox-relay", relay.run()),
            ("consumer-lag", lag.run()),
        ):
            task = asyncio.create_task(job, name=name)
            task.add_done_callback(self._on_task_done)
            self._jobs.append(task)
        self._resources_up.set()

    def _on_task_done(self, task: asyncio.Task[None]) -> None:
        error = None if task.cancelled() else task.exception()
        if error is not None:
            log.error("%s stopped: %s; stopping the worker", task.get_name(), error)
            self._crashing = asyncio.ensure_future(self.crash(error))

    async def on_stop(self) -> None:
        for task in self._jobs:
            task.cancel()
        await asyncio.gather(*self._jobs, return_exceptions=True)
        await self._stack.aclose()

    async def ready(self) -> None:
        """Wait until resources are up and the watchlist index holds every entry."""
        await self._resources_up.wait()
        await self.follower.caught_up.wait()


def create_app(
    kafka: KafkaSettings, postgres: PostgresSettings, match: MatchSettings, *, datadir: Path
) -> tuple[Any, MatcherRuntime]:
    """The faust app with its ``match`` agent, and the runtime to run beside it in the worker."""
    runtime = MatcherRuntime(kafka, postgres, match)
    app = faust.App(
        f"{kafka.topic_prefix}seizewatch-matcher",
        broker=f"kafka://{kafka.bootstrap_servers}",
        datadir=str(datadir),
        store="memory://",
        web_enabled=False,
        # We declare every topic ourselves (streams.topics); faust must not create its leader topic.
        topic_disable_leader=True,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
    )
    sightings = app.topic(
        kafka.topic(SIGHTINGS),
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
    )

    @app.agent(sightings, name="match")
    async def match_agent(stream: Any) -> None:
        await runtime.ready()
        async for event in stream.events():
            message = event.message
            await runtime.stage.handle(
                message.value, origin=f"{message.topic}/{message.partition}/{message.offset}"
            )

    return app, runtime
