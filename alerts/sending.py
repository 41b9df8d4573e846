"""Sending the SMS of pending notifications, exactly once per (page, step, officer), or saying why not.

A notification's ``send_state``::

    pending ──claim──► sending ──the provider answered──► sent │ failed │ pending (429, never connected)
                          │
                          └─ no clear answer (5xx, timeout, broken connection), or the lease ran out
                             with no outcome recorded (its pager died) ──► reconciling
    reconciling ──lookup at the provider──► sent (found: its id recorded, never sent again)
                                          │ pending (provably absent: sent again) │ failed (attempts used up)
                                          └ the lookup failed: tried later; ambiguous once it no longer
                                            matters (the validity period is over)

A claim (``pending`` → ``sending``, attempts + 1) is committed *before* the provider is called, and it
names its owner (the pager process) and a lease: the provider's timeout plus the in-flight margin, longer
than any send can take. Only a claim whose lease ran out is taken over, as ``reconciling``: another
pager's live claims are never touched. A pager claims only as many sends as it has free slots
(``SEIZEWATCH_PAGER_SEND_CONCURRENCY``), so a claimed send is under way, never queued behind others.

Creating a message is not idempotent, so an unknown outcome is never resent blindly: the provider is
asked first (:meth:`alerts.sms.SmsProvider.find`: the recipient, the sender, the body — every body carries
its own reply code — created since the first claim), once the lease has passed, i.e. once any request
of the attempt has either landed at the provider or never will. A sent SMS whose status callback has not
brought a final status is looked up by its id after ``SEIZEWATCH_PAGER_STATUS_LOOKUP_AFTER_S``.

Every outcome that settles a notification of an escalation step starts that step's wait
(:func:`alerts.pages.step_settled`): the acknowledgement timeout runs from when the step's SMS went out
or failed, and a step nobody can answer escalates at once.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from prometheus_client import Counter, Histogram

from alerts import metrics
from alerts.pages import step_settled
from alerts.sms import OutgoingSms, SentSms, SmsError, SmsProvider
from alerts.tasks import TASK_STEP_BASE
from streams.db import Connection

log = logging.getLogger(__name__)

# Notifications not settled yet: an escalation step waits for these before its timer runs.
UNSETTLED = ("pending", "sending", "reconciling")
RETRY_CAP_S = 60


@dataclass(frozen=True, slots=True)
class SendPolicy:
    max_attempts: int
    validity_period_s: int
    status_callback_url: str | None
    # A claim's lease: the provider's timeout plus the in-flight margin. Past it, any request of the
    # attempt has landed at the provider or never will, so a lookup then is conclusive.
    lease: timedelta
    # A sent SMS with no final status this long after the provider accepted it is looked up.
    status_lookup_after: timedelta
    # The escalation step's wait, started when its SMS are settled.
    ack_timeout: timedelta

    @property
    def validity(self) -> timedelta:
        return timedelta(seconds=self.validity_period_s)


@dataclass(frozen=True, slots=True)
class Claimed:
    notification_id: uuid.UUID
    page_id: uuid.UUID | None  # None: a message of a task the traffic police started
    step: int
    phone: str
    body: str
    attempts: int
    sighted_at: datetime
    claimed_at: datetime


class AfterCommit:
    """Metrics of a transaction, counted once it committed: a write retried after a deadlock or a lost
    connection is counted once, not once per attempt."""

    def __init__(self) -> None:
        self._actions: list[Callable[[], None]] = []

    def count(self, counter: Counter, *labels: str) -> None:
        self._actions.append(lambda: (counter.labels(*labels) if labels else counter).inc())

    def observe(self, histogram: Histogram, value: float) -> None:
        self._actions.append(lambda: histogram.observe(value))

    def done(self) -> None:
        for action in self._actions:
            action()
        self._actions.clear()


def _escalates(page_id: uuid.UUID | None, step: int) -> bool:
    """Whether a notification belongs to an escalation step (not a morning notice, a "taken by" notice
    (steps below zero) or a task message)."""
    return page_id is not None and 0 <= step < TASK_STEP_BASE


async def settle(
    conn: Connection, page_id: uuid.UUID | None, step: int, now: datetime, policy: SendPolicy
) -> None:
    """The notification's outcome is written: its escalation step may start its wait (or escalate)."""
    if page_id is not None and _escalates(page_id, step):
        await step_settled(conn, page_id, step, now, policy.ack_timeout)


# ------------------------------------------------------------------------------------------- claiming


async def recover_expired(conn: Connection, now: datetime) -> int:
    """Claims whose lease ran out with no outcome recorded become ``reconciling``, due now: their pager
    died (or lost PostgreSQL) while sending; the provider is asked before anything is sent again."""
    rows = await conn.fetch(
        "UPDATE notifications SET send_state = 'reconciling', next_attempt_at = $1,"
        " error_message = 'the claim''s lease ran out with no outcome recorded (its pager stopped)'"
        " WHERE send_state = 'sending' AND lease_until <= $1 RETURNING notification_id, claimed_by",
        now,
    )
    if rows:
        metrics.CLAIMS_RECOVERED.inc(len(rows))
        owners = sorted({str(r["claimed_by"]) for r in rows})
        log.warning(
            "%d SMS claim(s) of %s lapsed with no outcome; looking them up before any resend",
            len(rows),
            ", ".join(owners),
        )
    return len(rows)


async def claim(
    conn: Connection, now: datetime, owner: str, policy: SendPolicy, *, limit: int
) -> list[Claimed]:
    """Claim up to ``limit`` due notifications for ``owner``, leased until ``now + policy.lease``.

    Escalation SMS of a page someone took (acknowledged) or that was cancelled are skipped for good;
    those of an exhausted page still go out (they were queued while it was open), and the court's
    morning notice, the "taken by" notices and task messages go out whatever became of the page.
    """
    if limit <= 0:
        return []
    skipped = 0
    async with conn.transaction():
        rows = await conn.fetch(
            "SELECT n.notification_id, n.page_id, n.step, n.phone, n.body, n.attempts,"
            " COALESCE(p.state, 'open') AS state, COALESCE(p.sighted_at, n.created_at) AS sighted_at,"
            " (n.step < 0 OR n.step >= $3) AS beyond_escalation"
            " FROM notifications n LEFT JOIN pages p USING (page_id)"
            " WHERE n.send_state = 'pending' AND n.next_attempt_at <= $1"
            " ORDER BY n.next_attempt_at LIMIT $2 FOR UPDATE OF n SKIP LOCKED",
            now,
            limit,
            TASK_STEP_BASE,
        )
        claimed: list[Claimed] = []
        for row in rows:
            if row["state"] in ("acknowledged", "cancelled") and not row["beyond_escalation"]:
                await conn.execute(
                    "UPDATE notifications SET send_state = 'skipped' WHERE notification_id = $1",
                    row["notification_id"],
                )
                skipped += 1
                continue
            await conn.execute(
                "UPDATE notifications SET send_state = 'sending', attempts = attempts + 1,"
                " next_attempt_at = $2, claimed_by = $3, claimed_at = $2, lease_until = $4,"
                " first_claimed_at = COALESCE(first_claimed_at, $2) WHERE notification_id = $1",
                row["notification_id"],
                now,
                owner,
                now + policy.lease,
            )
            claimed.append(
                Claimed(
                    notification_id=row["notification_id"],
                    page_id=row["page_id"],
                    step=row["step"],
                    phone=row["phone"],
                    body=row["body"],
                    attempts=row["attempts"] + 1,
                    sighted_at=row["sighted_at"],
                    claimed_at=now,
                )
            )
    if skipped:
        metrics.NOTIFICATIONS.labels("skipped").inc(skipped)
    return claimed


async def send(provider: SmsProvider, item: Claimed, policy: SendPolicy) -> SentSms | SmsError:
    """Hand one claimed notification to the provider; the outcome, never an exception of the provider."""
    try:
        return await provider.send(
            OutgoingSms(
                to=item.phone,
                body=item.body,
                idempotency_key=str(item.notification_id),
                status_callback_url=policy.status_callback_url,
                validity_period_s=policy.validity_period_s,
            )
        )
    except SmsError as exc:
        return exc


# ------------------------------------------------------------------------------------------ recording


async def held_by(
    conn: Connection, notification_id: uuid.UUID, owner: str, attempts: int, state: str
) -> bool:
    """Lock the row; whether ``owner`` still holds it in ``state`` at this attempt (False: it was taken
    over, its lease having run out)."""
    row = await conn.fetchrow(
        "SELECT send_state, claimed_by, attempts FROM notifications WHERE notification_id = $1 FOR UPDATE",
        notification_id,
    )
    return (
        row is not None
        and row["attempts"] == attempts
        and row["send_state"] == state
        and row["claimed_by"] == owner
    )


async def mark_sent(
    conn: Connection,
    provider: str,
    notification_id: uuid.UUID,
    page_id: uuid.UUID | None,
    sighted_at: datetime,
    sent: SentSms,
    now: datetime,
    policy: SendPolicy,
    after: AfterCommit,
) -> None:
    """Record the provider's message (one UPDATE of the row: a second one in the same transaction would
    make PostgreSQL check the row's foreign keys, share-locking the page, and two such transactions
    deadlock on the page lock :func:`alerts.pages.step_settled` takes next)."""
    first = page_id is not None and not await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM notifications WHERE page_id = $1 AND accepted_at IS NOT NULL)", page_id
    )
    operator_alert = await conn.fetchval(
        "UPDATE notifications SET send_state = 'sent', provider = $2, provider_message_id = $3,"
        " provider_status = $4, accepted_at = $5, status_at = $5, lease_until = NULL, claimed_by = NULL,"
        " error_message = NULL, status_check_at = $6 WHERE notification_id = $1"
        " RETURNING operator_alert_id IS NOT NULL",
        notification_id,
        provider,
        sent.provider_message_id,
        sent.status,
        now,
        now + policy.status_lookup_after,
    )
    after.count(metrics.NOTIFICATIONS, "sent")
    if operator_alert:  # an alert on seizewatch itself, to an operator (alerts/operator_alerts.py)
        after.count(metrics.OPERATOR_ALERT_SMS, "sent")
    if first:
        after.observe(metrics.SIGHTING_TO_PROVIDER_SECONDS, max(0.0, (now - sighted_at).total_seconds()))


async def mark_failed(
    conn: Connection,
    notification_id: uuid.UUID,
    state: str,
    code: str | None,
    message: str,
    now: datetime,
    after: AfterCommit,
) -> None:
    operator_alert = await conn.fetchval(
        "UPDATE notifications SET send_state = $2, error_code = $3, error_message = $4, status_at = $5,"
        " lease_until = NULL, claimed_by = NULL WHERE notification_id = $1"
        " RETURNING operator_alert_id IS NOT NULL",
        notification_id,
        state,
        code,
        message,
        now,
    )
    after.count(metrics.NOTIFICATIONS, state)
    if operator_alert and state in metrics.OPERATOR_ALERT_SMS_OUTCOMES:
        after.count(metrics.OPERATOR_ALERT_SMS, state)


async def record(
    conn: Connection,
    provider: str,
    item: Claimed,
    outcome: SentSms | SmsError,
    now: datetime,
    policy: SendPolicy,
    owner: str,
) -> None:
    """Store what became of a send claimed by ``owner``; a claim taken over meanwhile is left to the new
    holder (unless the provider accepted the message: that is known better than any lookup)."""
    after = AfterCommit()
    async with conn.transaction():
        await _record(conn, provider, item, outcome, now, policy, owner, after)
    after.done()


async def _record(
    conn: Connection,
    provider: str,
    item: Claimed,
    outcome: SentSms | SmsError,
    now: datetime,
    policy: SendPolicy,
    owner: str,
    after: AfterCommit,
) -> None:
    if not await held_by(conn, item.notification_id, owner, item.attempts, "sending"):
        # Taken over (its lease ran out) and not looked up yet: the provider's acceptance settles it.
        # Anything else is left to whoever holds the row now.
        taken_over = await conn.fetchval(
            "SELECT send_state FROM notifications WHERE notification_id = $1 AND attempts = $2",
            item.notification_id,
            item.attempts,
        )
        if not (isinstance(outcome, SentSms) and taken_over == "reconciling"):
            log.warning(
                "notification %s: the claim was taken over before its outcome (%s) was recorded",
                item.notification_id,
                "sent" if isinstance(outcome, SentSms) else outcome.kind,
            )
            return
    if isinstance(outcome, SentSms):
        await mark_sent(
            conn, provider, item.notification_id, item.page_id, item.sighted_at, outcome, now, policy, after
        )
        await settle(conn, item.page_id, item.step, now, policy)
        return
    error = outcome
    if error.may_have_sent:
        # 5xx, timeout, broken connection: the message may exist. Looked up once every request of this
        # attempt has landed (the lease), then found → sent, absent → sent again.
        await conn.execute(
            "UPDATE notifications SET send_state = 'reconciling', next_attempt_at = $2, error_code = $3,"
            " error_message = $4, claimed_by = NULL WHERE notification_id = $1",
            item.notification_id,
            item.claimed_at + policy.lease,
            error.code,
            str(error),
        )
        after.count(metrics.NOTIFICATIONS, "reconciling")
        log.warning(
            "notification %s: outcome unknown (%s); looking it up before any resend",
            item.notification_id,
            error,
        )
        return
    if error.kind == "retriable" and item.attempts < policy.max_attempts:
        # The provider provably has nothing (429, never connected): safe to send again, later.
        delay = timedelta(seconds=min(2**item.attempts, RETRY_CAP_S))
        await conn.execute(
            "UPDATE notifications SET send_state = 'pending', next_attempt_at = $2, error_code = $3,"
            " error_message = $4, claimed_by = NULL, lease_until = NULL WHERE notification_id = $1",
            item.notification_id,
            now + delay,
            error.code,
            str(error),
        )
        after.count(metrics.NOTIFICATIONS, "retried")
        log.warning("notification %s: %s; retry %d in %s", item.notification_id, error, item.attempts, delay)
        return
    await mark_failed(conn, item.notification_id, "failed", error.code, str(error), now, after)
    log.error("notification %s failed: %s", item.notification_id, error)
    await settle(conn, item.page_id, item.step, now, policy)


async def overdue_sends(conn: Connection, now: datetime, grace: timedelta = timedelta(minutes=1)) -> int:
    """SMS that should be under way for more than ``grace`` and are not: due and unclaimed, a claim past
    its lease, a lookup overdue (a stuck sender, said out loud). Sets the gauge; returns the count."""
    overdue = await conn.fetchval(  # three counts, each on its partial index
        "SELECT (SELECT count(*) FROM notifications WHERE send_state = 'pending' AND next_attempt_at < $1)"
        " + (SELECT count(*) FROM notifications WHERE send_state = 'reconciling' AND next_attempt_at < $1)"
        " + (SELECT count(*) FROM notifications WHERE send_state = 'sending' AND lease_until < $1)",
        now - grace,
    )
    metrics.OVERDUE_SENDS.set(overdue or 0)
    return int(overdue or 0)
