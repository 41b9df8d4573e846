"""The outbox relay: publishes rows written beside each change, in order, to their Kafka topics.

Only one relay publishes at a time (a PostgreSQL advisory lock), so changes to one key keep their
order even with several worker processes each running a relay; the others wait to take over. A row
is marked published only after Kafka acknowledged it: a crash in between publishes it again, which the
consumers tolerate (compacted topic, versioned entries).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import asyncpg
from aiokafka import AIOKafkaProducer

from streams import metrics
from streams.errors import translate
from streams.settings import KafkaSettings, PostgresSettings
from streams.watchstore import OUTBOX_CHANNEL

log = logging.getLogger(__name__)

_RELAY_LOCK = 0x5E12F
_BATCH = 500
_RETRY_S = 2.0  # one connection attempt per interval while PostgreSQL or Kafka is away


class OutboxRelay:
    def __init__(
        self,
        postgres: PostgresSettings,
        kafka: KafkaSettings,
        producer: AIOKafkaProducer,
        *,
        poll_seconds: float = 1.0,
    ) -> None:
        self._postgres = postgres
        self._kafka = kafka
        self._producer = producer
        self._poll_seconds = poll_seconds
        self._wake = asyncio.Event()

    async def run(self) -> None:
        """Relay until cancelled; reconnects after PostgreSQL or Kafka failures that may pass.

        Raises:
            SeizewatchError: a refusal retrying cannot cure (:func:`streams.errors.translate`: the broker
                refused a record, PostgreSQL a statement): the loop ends, and its supervisor stops the
                process, rather than skipping a watchlist change or retrying it forever unseen.
        """
        while True:
            try:
                await self._lead()
            except Exception as exc:  # classified by translate, which re-raises a bug
                error = translate(exc)
                metrics.OUTBOX_LEADER.set(0)
                if not error.retriable:
                    raise error from exc
                metrics.STAGE_RETRIES.labels("outbox").inc()
                log.warning("outbox relay: %s; retrying in %.0f s", error, _RETRY_S)
                await asyncio.sleep(_RETRY_S)

    async def _lead(self) -> None:
        conn: asyncpg.Connection = await asyncpg.connect(self._postgres.dsn.get_secret_value())
        try:
            # Polling the lock: another process holds it and PostgreSQL has no event for its release.
            while not await conn.fetchval("SELECT pg_try_advisory_lock($1)", _RELAY_LOCK):  # noqa: ASYNC110
                await asyncio.sleep(self._poll_seconds * 5)
            metrics.OUTBOX_LEADER.set(1)
            log.info("outbox relay: leading")
            await conn.add_listener(OUTBOX_CHANNEL, self._notified)
            while True:
                if await self.publish_batch(conn) == _BATCH:
                    continue
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._poll_seconds)
        finally:
            metrics.OUTBOX_LEADER.set(0)
            await conn.close()  # also releases the advisory lock

    def _notified(self, *_: object) -> None:
        self._wake.set()

    async def publish_batch(self, conn: asyncpg.Connection) -> int:
        """Publish up to one batch of unpublished rows; return how many."""
        async with conn.transaction():
            rows = await conn.fetch(
                "SELECT id, topic, key, payload FROM outbox WHERE published_at IS NULL"
                " ORDER BY id LIMIT $1 FOR UPDATE",
                _BATCH,
            )
            if not rows:
                return 0
            sent = [
                await self._producer.send(
                    self._kafka.topic(row["topic"]), key=row["key"].encode(), value=row["payload"]
                )
                for row in rows
            ]
            await asyncio.gather(*sent)  # every record acknowledged (acks=all) before we mark any
            await conn.execute(
                "UPDATE outbox SET published_at = now() WHERE id = ANY($1)", [r["id"] for r in rows]
            )
        for row in rows:
            metrics.OUTBOX_PUBLISHED.labels(row["topic"]).inc()
        return len(rows)
