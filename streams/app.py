"""The faust engine of the match stage: the sightings topic, the ``match`` agent, the runtime beside it.

The previous design, kept selectable (``SEIZEWATCH_MATCH_ENGINE=faust``) for comparison: faust runs the
consumer group and acknowledges each event after its handler; :class:`MatcherRuntime` runs
:func:`streams.runtime.matcher_resources` as a ``mode`` service. The default engine,
:mod:`streams.batchworker`, consumes with aiokafka directly, a batch at a time
(docs/benchmarks.md shows why).
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

import faust
from mode import Service

from streams.runtime import MatcherResources, group_id, matcher_resources
from streams.settings import KafkaSettings, MatchSettings, PostgresSettings
from streams.supervision import Supervisor
from streams.topics import SIGHTINGS


class MatcherRuntime(Service):
    """Resources of one matcher worker, ready once the watchlist index has caught up."""

    def __init__(
        self, kafka: KafkaSettings, postgres: PostgresSettings, match: MatchSettings, supervisor: Supervisor
    ) -> None:
        super().__init__()
        self._settings = (kafka, postgres, match, supervisor)
        self._supervisor = supervisor
        self._stack = contextlib.AsyncExitStack()
        self._resources: MatcherResources | None = None
        self._resources_up = asyncio.Event()

    @property
    def resources(self) -> MatcherResources:
        if self._resources is None:
            raise RuntimeError("matcher runtime not started")
        return self._resources

    async def on_start(self) -> None:
        self._resources = await self._stack.enter_async_context(matcher_resources(*self._settings))
        self.add_future(self._crash_on_failure())
        self._resources_up.set()

    async def _crash_on_failure(self) -> None:
        await self._supervisor.failed.wait()
        await self.crash(RuntimeError(self._supervisor.failure))

    async def on_stop(self) -> None:
        await self._stack.aclose()

    async def ready(self) -> None:
        """Wait until resources are up and the watchlist index holds every entry."""
        await self._resources_up.wait()
        if not await self.resources.ready():
            raise RuntimeError(f"matcher runtime failed: {self._supervisor.failure}")


def create_app(
    kafka: KafkaSettings,
    postgres: PostgresSettings,
    match: MatchSettings,
    supervisor: Supervisor,
    *,
    datadir: Path,
) -> tuple[Any, MatcherRuntime]:
    """The faust app with its ``match`` agent, and the runtime to run beside it in the worker (its
    background jobs under ``supervisor``: one that fails crashes the faust worker)."""
    runtime = MatcherRuntime(kafka, postgres, match, supervisor)
    app = faust.App(
        group_id(kafka),
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
        stage = runtime.resources.stage
        async for event in stream.events():
            message = event.message
            await stage.handle(message.value, origin=f"{message.topic}/{message.partition}/{message.offset}")

    return app, runtime
