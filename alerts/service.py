"""The pager process: hits in from Kafka, pages and escalations in PostgreSQL, SMS out, replies back.

Any number of pager processes may run: hits are shared by a consumer group, due steps and pending
sends are claimed with ``FOR UPDATE SKIP LOCKED``, and every side effect has its key in PostgreSQL.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg
from pydantic import ValidationError

from alerts import metrics, sending, tasks
from alerts.funnel import refresh_funnel_metrics
from alerts.pages import (
    PAGES_CHANNEL,
    EscalationPolicy,
    overdue_steps,
    run_due_notices,
    run_due_steps,
)
from alerts.rosterstore import load_roster
from alerts.routing import StepKind
from alerts.settings import PagerSettings, TwilioSettings
from alerts.sms import ConsoleSms, SmsProvider
from alerts.traffic_results import apply_traffic_result
from streams import db
from streams.consumers import group_consumer
from streams.errors import ConfigurationError
from streams.hits import HitV1
from streams.lag import LagMonitor, Watched
from streams.outbox import OutboxRelay
from streams.producers import idempotent_producer
from streams.settings import KafkaSettings, PostgresSettings
from streams.topics import HITS, SEIZURE_RESULTS
from streams.traffic import SeizureResultV1

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
FUNNEL_EVERY = timedelta(minutes=5)


def utc_now() -> datetime:
    return datetime.now(UTC)


def build_provider(twilio: TwilioSettings) -> SmsProvider:
    """Twilio when configured, else the console sender (what would be sent, printed)."""
    if not twilio.configured:
        log.warning("no SMS provider configured: pages are printed, not sent")
        return ConsoleSms()
    from alerts.twilio_sms import TwilioSms

    if twilio.account_sid is None or twilio.auth_token is None or twilio.sender is None:
        raise ConfigurationError("incomplete SEIZEWATCH_TWILIO_* settings")  # settings refuse this already
    return TwilioSms(
        account_sid=twilio.account_sid,
        auth_token=twilio.auth_token,
        sender=twilio.sender,
        api_base_url=twilio.api_base_url,
        timeout_s=twilio.timeout_s,
    )


@dataclass
class Pager:
    """The pager's loops over one pool; each ``*_once`` is one round, for loops and for tests."""

    pool: asyncpg.Pool
    provider: SmsProvider
    settings: PagerSettings
    dsn: str  # for the connection that listens for wake-ups
    clock: Clock = utc_now
    _funnel_at: datetime | None = None

    @property
    def escalation(self) -> EscalationPolicy:
        return EscalationPolicy(ack_timeout=timedelta(seconds=self.settings.ack_timeout_s))

    @property
    def send_policy(self) -> sending.SendPolicy:
        return sending.SendPolicy(
            max_attempts=self.settings.max_send_attempts,
            validity_period_s=self.settings.validity_period_s,
            status_callback_url=self.settings.public_url.rstrip("/") + "/twilio/status",
        )

    @property
    def task_policy(self) -> tasks.TaskPolicy:
        return tasks.TaskPolicy(
            suppress_window=timedelta(seconds=self.settings.task_suppress_window_s),
            expiry=timedelta(hours=self.settings.task_expiry_h),
        )

    async def take_hit(self, hit: HitV1) -> str:
        """Fold the hit into its vehicle's live task, or open a page and a task."""
        async with self.pool.acquire() as conn, conn.transaction():
            roster = await load_roster(conn)
            return await tasks.take_hit(conn, hit, roster, self.clock(), self.task_policy)

    async def take_traffic_result(self, result: SeizureResultV1) -> str:
        async with self.pool.acquire() as conn:
            roster = await load_roster(conn)
            return await apply_traffic_result(conn, result, roster, self.clock())

    async def funnel_once(self) -> None:
        """This year's enforcement funnel as gauges, every few minutes (cheap: a few aggregate queries)."""
        now = self.clock()
        if self._funnel_at is not None and now - self._funnel_at < FUNNEL_EVERY:
            return
        self._funnel_at = now
        await refresh_funnel_metrics(self.pool, now)

    async def tasks_once(self) -> int:
        """Cancel tasks of released entries, expire stale ones, refresh the open-task gauges."""
        async with self.pool.acquire() as conn:
            roster = await load_roster(conn)
            changed = await tasks.cancel_released(conn, roster, self.clock())
            changed += await tasks.expire_stale(conn, self.clock(), self.task_policy)
            rows = await conn.fetch(
                "SELECT state, count(*) AS n FROM tasks WHERE state = ANY($1::text[]) GROUP BY state",
                list(tasks.LIVE),
            )
        counts: dict[str, int] = {row["state"]: row["n"] for row in rows}
        for state in tasks.LIVE:
            metrics.OPEN_TASKS.labels(state).set(counts.get(state, 0))
        return changed

    async def escalate_once(self) -> int:
        async with self.pool.acquire() as conn:
            ran = await run_due_steps(conn, self.clock(), self.escalation)
            ran += await run_due_notices(conn, self.clock())
            await overdue_steps(conn, self.clock())
            return ran

    async def send_once(self) -> int:
        async with self.pool.acquire() as conn:
            await sending.recover_interrupted(conn, self.clock(), self.send_policy)
            claimed = await sending.claim(conn, self.clock())
        for item in claimed:
            outcome = await sending.send(self.provider, item, self.send_policy)
            async with self.pool.acquire() as conn:
                await sending.record(conn, self.provider.name, item, outcome, self.clock(), self.send_policy)
        return len(claimed)

    async def run_loops(self) -> None:
        """Escalate and send until cancelled; woken early by PostgreSQL notifications."""
        wake = asyncio.Event()
        listener: asyncpg.Connection = await asyncpg.connect(self.dsn)
        await listener.add_listener(PAGES_CHANNEL, lambda *_: wake.set())
        try:
            while True:
                try:
                    await self.funnel_once()
                    busy = await self.tasks_once() + await self.escalate_once() + await self.send_once()
                except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                    log.warning("pager round failed: %s; retrying", exc)
                    busy = 0
                    await asyncio.sleep(2)
                if not busy:
                    wake.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(wake.wait(), self.settings.poll_interval_s)
        finally:
            await listener.close()


async def consume_hits(pager: Pager, kafka: KafkaSettings) -> None:
    """Open a page per hit; offsets are committed only after the pages are in PostgreSQL."""
    consumer = group_consumer(
        kafka, kafka.topic(HITS), group_id=f"{kafka.topic_prefix}seizewatch-pager", role="pager"
    )
    await consumer.start()
    try:
        while True:
            batch = await consumer.getmany(timeout_ms=1000, max_records=200)
            for records in batch.values():
                for record in records:
                    await _take_with_retry(
                        pager, record.value, f"{record.topic}/{record.partition}/{record.offset}"
                    )
            if batch:
                await consumer.commit()
    finally:
        await consumer.stop()


async def consume_traffic_results(pager: Pager, kafka: KafkaSettings) -> None:
    """Apply the traffic police's results; offsets committed after they are in PostgreSQL."""
    consumer = group_consumer(
        kafka,
        kafka.topic(SEIZURE_RESULTS),
        group_id=f"{kafka.topic_prefix}seizewatch-pager-traffic",
        role="pager-traffic",
    )
    await consumer.start()
    try:
        while True:
            batch = await consumer.getmany(timeout_ms=1000, max_records=200)
            for records in batch.values():
                for record in records:
                    await _apply_result_with_retry(pager, record.value)
            if batch:
                await consumer.commit()
    finally:
        await consumer.stop()


async def _apply_result_with_retry(pager: Pager, raw: bytes) -> None:
    try:
        result = SeizureResultV1.model_validate_json(raw)
    except ValidationError:
        # The connector validated it before producing: unreadable here is a bug, said loudly.
        log.exception("unreadable traffic-police result skipped")
        return
    delay = 0.5
    while True:
        try:
            outcome = await pager.take_traffic_result(result)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning(
                "cannot apply traffic result %s: %s; retrying in %.1f s", result.result_id, exc, delay
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10)
        else:
            log.info("traffic result %s: %s", result.result_id, outcome)
            return


async def _take_with_retry(pager: Pager, raw: bytes, origin: str) -> None:
    try:
        hit = HitV1.model_validate_json(raw)
    except ValidationError:
        # Written by our own matcher: a hit we cannot read is a bug to fix, said loudly, never paged.
        log.exception("unreadable hit at %s skipped", origin)
        return
    delay = 0.5
    while True:
        try:
            await pager.take_hit(hit)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("cannot open the page of hit %s: %s; retrying in %.1f s", hit.hit_id, exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10)
        else:
            return


@contextlib.asynccontextmanager
async def running(
    kafka: KafkaSettings,
    postgres: PostgresSettings,
    settings: PagerSettings,
    provider: SmsProvider,
    *,
    clock: Clock = utc_now,
    consume: bool = True,
) -> AsyncIterator[Pager]:
    """A pager with its loops running in the background, stopped on exit."""
    metrics.prime(step.value for step in StepKind)
    async with db.pool(postgres) as pool:
        async with pool.acquire() as conn:
            await db.migrate(conn)
        pager = Pager(pool, provider, settings, postgres.dsn.get_secret_value(), clock)
        jobs = [asyncio.create_task(pager.run_loops(), name="pager-loops")]
        producer = idempotent_producer(kafka, "pager")
        if consume:
            await producer.start()
            jobs.append(asyncio.create_task(consume_hits(pager, kafka), name="pager-hits"))
            jobs.append(asyncio.create_task(consume_traffic_results(pager, kafka), name="pager-traffic"))
            # Task changes (a seizure) change the traffic police's list: publish the outbox here too,
            # whether or not a matcher worker runs (one relay publishes at a time, by advisory lock).
            relay = OutboxRelay(postgres, kafka, producer)
            jobs.append(asyncio.create_task(relay.run(), name="pager-outbox"))
            lag = LagMonitor(
                kafka,
                [
                    Watched("pager_hits", f"{kafka.topic_prefix}seizewatch-pager", kafka.topic(HITS)),
                    Watched(
                        "pager_traffic",
                        f"{kafka.topic_prefix}seizewatch-pager-traffic",
                        kafka.topic(SEIZURE_RESULTS),
                    ),
                ],
            )
            jobs.append(asyncio.create_task(lag.run(), name="pager-lag"))
        try:
            yield pager
        finally:
            for job in jobs:
                job.cancel()
            await asyncio.gather(*jobs, return_exceptions=True)
            if consume:
                await producer.stop()
            await provider.close()
