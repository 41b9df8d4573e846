"""The pager process: hits in from Kafka, pages and escalations in PostgreSQL, SMS out, replies back.

Any number of pager processes may run: hits are shared by a consumer group, due steps and pending
sends are claimed with ``FOR UPDATE SKIP LOCKED`` (sends with an owner and a lease, see
:mod:`alerts.sending`), and every side effect has its key in PostgreSQL.

Failures follow the project's one policy (:func:`streams.errors.translate`): a retriable one (PostgreSQL
or Kafka away) is waited out with backoff; a hit or traffic result that fails for any other reason is
dead-lettered with the reason (:mod:`alerts.intake`), never retried for ever in front of the records
behind it. The loops run under a :class:`streams.supervision.Supervisor`: one that ends takes
``/healthz`` down (503 naming it) and the process with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import asyncpg

from alerts import metrics, reconciling, sending, tasks
from alerts.funnel import refresh_funnel_metrics
from alerts.intake import DeadLetters, apply_result_record, prime_dead_letters, take_hit_record
from alerts.pages import PAGES_CHANNEL, overdue_steps, run_due_notices, run_due_steps
from alerts.rosterstore import load_roster
from alerts.routing import StepKind
from alerts.settings import PagerSettings, TwilioSettings
from alerts.sms import ConsoleSms, SmsProvider
from alerts.traffic_contacts import refresh_contacts
from alerts.traffic_results import apply_traffic_result
from streams import db
from streams import metrics as stream_metrics
from streams.consumers import commit_processed, group_consumer
from streams.errors import ConfigurationError, translate
from streams.hits import HitV1
from streams.lag import LagMonitor, Watched
from streams.outbox import OutboxRelay
from streams.producers import idempotent_producer
from streams.settings import KafkaSettings, PostgresSettings
from streams.supervision import Supervisor
from streams.topics import HITS, SEIZURE_RESULTS
from streams.traffic import SeizureResultV1

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
T = TypeVar("T")
FUNNEL_EVERY = timedelta(minutes=5)
# How often the courts' on-duty contacts for the traffic police are recomputed (real time: the clock
# decides who is on duty, this only how often to look). A rotation shows within this long.
CONTACTS_EVERY_S = 30.0
_MAX_BACKOFF_S = 10.0


def utc_now() -> datetime:
    return datetime.now(UTC)


def claim_owner() -> str:
    """Who holds a claim: this process, told apart from any other pager (host, pid, a random tag)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


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
    """The pager's loops over one pool; each ``*_once`` is one round, for loops and for tests.

    Sends, lookups and status checks run as tasks of their own, at most ``send_concurrency`` at once:
    ``send_once`` starts what is due in the free slots and returns; :meth:`drain` waits for them.
    """

    pool: asyncpg.Pool
    provider: SmsProvider
    settings: PagerSettings
    dsn: str  # for the connection that listens for wake-ups
    clock: Clock = utc_now
    owner: str = field(default_factory=claim_owner)
    supervisor: Supervisor | None = None
    _funnel_at: datetime | None = None
    _contacts_at: float | None = None  # time.monotonic() of the last court-contact refresh
    _calls: set[asyncio.Task[None]] = field(default_factory=set)
    _failed: list[BaseException] = field(default_factory=list)
    _wake: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def send_policy(self) -> sending.SendPolicy:
        return sending.SendPolicy(
            max_attempts=self.settings.max_send_attempts,
            validity_period_s=self.settings.validity_period_s,
            status_callback_url=self.settings.public_url.rstrip("/") + "/twilio/status",
            lease=timedelta(seconds=self.provider.timeout_s + self.settings.in_flight_margin_s),
            status_lookup_after=timedelta(seconds=self.settings.status_lookup_after_s),
            ack_timeout=timedelta(seconds=self.settings.ack_timeout_s),
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
            if self._contacts_at is None or time.monotonic() - self._contacts_at >= CONTACTS_EVERY_S:
                self._contacts_at = time.monotonic()
                await refresh_contacts(conn, roster, self.clock())
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
            ran = await run_due_steps(conn, self.clock())
            ran += await run_due_notices(conn, self.clock())
            await overdue_steps(conn, self.clock())
            await sending.overdue_sends(conn, self.clock())
            return ran

    @property
    def free_slots(self) -> int:
        return self.settings.send_concurrency - len(self._calls)

    async def send_once(self) -> int:
        """Start the sends, lookups and status checks that are due, as many as there are free slots
        (first SMS before lookups: a new page is the most urgent); return how many were started.

        Raises:
            BaseException: what a finished send task failed with that was not a retriable error (a bug,
                or PostgreSQL refusing an outcome): the loop ends and the supervisor says so.
        """
        self._reap()
        free = self.free_slots
        if free <= 0:
            return 0
        now, policy = self.clock(), self.send_policy
        async with self.pool.acquire() as conn:
            await sending.recover_expired(conn, now)
            claimed = await sending.claim(conn, now, self.owner, policy, limit=free)
            free -= len(claimed)
            lookups = await reconciling.claim_reconciliations(conn, now, self.owner, policy, limit=free)
            free -= len(lookups)
            checks = await reconciling.claim_status_checks(conn, now, policy, limit=free)
        for item in claimed:
            self._start(self._send(item, policy))
        for lookup in lookups:
            self._start(self._reconcile(lookup, policy))
        for check in checks:
            self._start(self._check_status(check, policy))
        return len(claimed) + len(lookups) + len(checks)

    async def drain(self) -> None:
        """Wait until every send, lookup and status check under way has finished and been recorded.

        Raises:
            BaseException: as :meth:`send_once`.
        """
        while self._calls:
            await asyncio.gather(*self._calls, return_exceptions=True)
        self._reap()

    def _start(self, call: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(call)
        self._calls.add(task)
        metrics.SENDS_IN_FLIGHT.set(len(self._calls))
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._calls.discard(task)
        metrics.SENDS_IN_FLIGHT.set(len(self._calls))
        if not task.cancelled() and task.exception() is not None:
            self._failed.append(task.exception())  # type: ignore[arg-type]  # not None: checked above
        self._wake.set()  # a slot is free: the loop may claim more

    def _reap(self) -> None:
        if self._failed:
            raise self._failed.pop(0)

    async def _send(self, item: sending.Claimed, policy: sending.SendPolicy) -> None:
        outcome = await sending.send(self.provider, item, policy)
        await self._store(
            lambda conn: sending.record(
                conn, self.provider.name, item, outcome, self.clock(), policy, self.owner
            )
        )

    async def _reconcile(self, item: reconciling.Reconciling, policy: sending.SendPolicy) -> None:
        found = await reconciling.look_up(self.provider, item)
        await self._store(
            lambda conn: reconciling.record_reconciliation(
                conn, self.provider.name, item, found, self.clock(), policy, self.owner
            )
        )

    async def _check_status(self, item: reconciling.StatusCheck, policy: sending.SendPolicy) -> None:
        outcome = await reconciling.check_status(self.provider, item)
        await self._store(
            lambda conn: reconciling.record_status_check(conn, item, outcome, self.clock(), policy)
        )

    async def _store(self, write: Callable[[db.Connection], Awaitable[T]]) -> T:
        """Write an outcome, waiting out PostgreSQL when it is away: what the provider did is known only
        here, so it is kept until it is written (or the claim's lease runs out and it is looked up).

        Raises:
            SeizewatchError: PostgreSQL refused the write (not retriable); a bug is raised as itself.
        """
        delay = 0.5
        while True:
            try:
                async with self.pool.acquire() as conn:
                    return await write(conn)
            except Exception as exc:  # noqa: BLE001  # translate() classifies it; a bug is raised again as itself
                error = translate(exc)  # a bug is raised as itself
                if not error.retriable:
                    raise error from error.__cause__  # the driver's own error, if any
                stream_metrics.STAGE_RETRIES.labels("pager").inc()
                log.warning("cannot record an SMS outcome: %s; retrying in %.1f s", error, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, _MAX_BACKOFF_S)

    async def run_loops(self) -> None:
        """Escalate and send until cancelled; woken early by PostgreSQL notifications and by sends that
        finish. A round that fails for a retriable reason (PostgreSQL away) is tried again with backoff,
        the listening connection made again; anything else ends the loop (and the process)."""
        listener = _Listener(self.dsn, self._wake)
        delay = 1.0
        try:
            while True:
                self._wake.clear()
                try:
                    await listener.ensure()
                    await self.funnel_once()
                    busy = await self.tasks_once() + await self.escalate_once() + await self.send_once()
                except Exception as exc:  # noqa: BLE001  # translate() classifies it; a bug is raised again as itself
                    error = translate(exc)  # a bug is raised as itself: the supervisor reports it
                    if not error.retriable:
                        raise error from error.__cause__  # the driver's own error, if any
                    stream_metrics.STAGE_RETRIES.labels("pager").inc()
                    log.warning("pager round failed: %s; retrying in %.0f s", error, delay)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, _MAX_BACKOFF_S)
                    continue
                delay = 1.0
                if busy and self.free_slots > 0:
                    continue  # more may be due at once
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.settings.poll_interval_s)
        finally:
            # Stopping: sends under way may finish and be recorded (a provider call is bounded by its
            # timeout); what is cut short keeps its claim, reconciled once its lease has run out.
            if self._calls:
                await asyncio.wait(set(self._calls), timeout=self.provider.timeout_s)
            for call in self._calls:
                call.cancel()
            await asyncio.gather(*self._calls, return_exceptions=True)
            await listener.close()


class _Listener:
    """The connection that LISTENs for wake-ups, made again whenever PostgreSQL dropped it (a restart):
    without it the pager would still work, but only at its poll interval."""

    def __init__(self, dsn: str, wake: asyncio.Event) -> None:
        self._dsn = dsn
        self._wake = wake
        self._conn: asyncpg.Connection | None = None

    async def ensure(self) -> None:
        """Listening, or listening again (then the round that follows looks at everything, so nothing
        notified while nobody listened is missed).

        Raises:
            OSError, asyncpg.PostgresError: PostgreSQL is not back yet (the caller retries).
        """
        if self._conn is not None and not self._conn.is_closed():
            return
        if self._conn is not None:
            log.warning("the connection listening for wake-ups was lost; listening again")
            self._conn.terminate()
            self._conn = None
        conn: asyncpg.Connection = await asyncpg.connect(self._dsn)
        await conn.add_listener(PAGES_CHANNEL, lambda *_: self._wake.set())
        # Losing it wakes the loop at once, whose next round listens again (or waits PostgreSQL out).
        conn.add_termination_listener(lambda *_: self._wake.set())
        self._conn = conn

    async def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(OSError, asyncpg.InterfaceError, asyncpg.PostgresError):
                await self._conn.close(timeout=5)
            self._conn = None


async def consume_hits(pager: Pager, kafka: KafkaSettings, letters: DeadLetters) -> None:
    """Open a page per hit; offsets are committed only after the pages are in PostgreSQL (or the hit in
    the dead-letter topic)."""
    consumer = group_consumer(
        kafka, kafka.topic(HITS), group_id=f"{kafka.topic_prefix}seizewatch-pager", role="pager"
    )
    await consumer.start()
    try:
        while True:
            batch = await consumer.getmany(timeout_ms=1000, max_records=200)
            for records in batch.values():
                for record in records:
                    await take_hit_record(
                        pager, record.value, f"{record.topic}/{record.partition}/{record.offset}", letters
                    )
            if batch:
                await commit_processed(consumer)
    finally:
        await consumer.stop()


async def consume_traffic_results(pager: Pager, kafka: KafkaSettings, letters: DeadLetters) -> None:
    """Apply the traffic police's results; offsets committed after they are in PostgreSQL (or the result
    in the dead-letter topic)."""
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
                    await apply_result_record(
                        pager, record.value, f"{record.topic}/{record.partition}/{record.offset}", letters
                    )
            if batch:
                await commit_processed(consumer)
    finally:
        await consumer.stop()


@contextlib.asynccontextmanager
async def running(
    kafka: KafkaSettings,
    postgres: PostgresSettings,
    settings: PagerSettings,
    provider: SmsProvider,
    *,
    clock: Clock = utc_now,
    consume: bool = True,
    on_failure: Callable[[str], None] | None = None,
) -> AsyncIterator[Pager]:
    """A pager with its loops running under a supervisor, stopped on exit.

    Args:
        on_failure: called once when a loop ends on its own (e.g. stops the HTTP server, so the process
            exits for its own supervisor to restart it); ``pager.supervisor`` answers ``/healthz``.
    """
    metrics.prime(step.value for step in StepKind)
    prime_dead_letters()
    supervisor = Supervisor("pager", on_failure)
    async with db.pool(postgres) as pool:
        async with pool.acquire() as conn:
            await db.migrate(conn)
        pager = Pager(pool, provider, settings, postgres.dsn.get_secret_value(), clock, supervisor=supervisor)
        supervisor.spawn("pager-loops", pager.run_loops())
        producer = idempotent_producer(kafka, "pager") if consume else None
        try:
            if producer is not None:
                await producer.start()
                letters = DeadLetters(producer, kafka)
                supervisor.spawn("pager-hits", consume_hits(pager, kafka, letters))
                supervisor.spawn("pager-traffic", consume_traffic_results(pager, kafka, letters))
                # Task changes (a seizure) change the traffic police's list: publish the outbox here too,
                # whether or not a matcher worker runs (one relay publishes at a time, by advisory lock).
                relay = OutboxRelay(postgres, kafka, producer)
                supervisor.spawn("pager-outbox", relay.run())
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
                supervisor.spawn("pager-lag", lag.run())
            yield pager
        finally:
            await supervisor.stop()
            if producer is not None:
                await producer.stop()
            await provider.close()
