"""Sending the SMS of pending notifications, exactly once per (page, step, officer), or saying why not.

A notification is claimed (``pending`` → ``sending``, attempts + 1) and committed *before* the provider
is called, so a crash never leads to a blind resend: a row left in ``sending`` is marked ``ambiguous``
(the provider may or may not have it) and never retried. Retriable errors come back as ``pending`` with
backoff until ``max_attempts`` — only when the provider provably did not get the message (429,
connection refused); a permanent error (invalid number, opted out…) fails the notification and,
when nobody else at that step can answer, escalates at once.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from alerts import metrics
from alerts.pages import NOTICE_STEP, step_out_of_reach
from alerts.sms import OutgoingSms, SentSms, SmsError, SmsProvider
from alerts.tasks import TASK_STEP_BASE
from streams.db import Connection

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SendPolicy:
    max_attempts: int
    validity_period_s: int
    status_callback_url: str | None
    # A claim older than this with no outcome recorded was interrupted (a crash): the send is ambiguous.
    stale_claim: timedelta = timedelta(minutes=2)


@dataclass(frozen=True, slots=True)
class Claimed:
    notification_id: uuid.UUID
    page_id: uuid.UUID | None  # None: a message of a task the traffic police started
    step: int
    phone: str
    body: str
    attempts: int
    sighted_at: datetime
    operator_alert: bool = False  # an alert on seizewatch itself, to an operator (alerts/operator_alerts.py)


async def claim(conn: Connection, now: datetime, *, limit: int = 20) -> list[Claimed]:
    """Claim due notifications of open pages; those of pages no longer open are skipped for good."""
    async with conn.transaction():
        rows = await conn.fetch(
            "SELECT n.notification_id, n.page_id, n.step, n.phone, n.body, n.attempts,"
            " COALESCE(p.state, 'open') AS state, COALESCE(p.sighted_at, n.created_at) AS sighted_at,"
            # the court's morning notice and task messages go out whatever became of the page's escalation
            " (n.step = $3 OR n.step >= $4) AS beyond_escalation,"
            " n.operator_alert_id IS NOT NULL AS operator_alert"
            " FROM notifications n LEFT JOIN pages p USING (page_id)"
            " WHERE n.send_state = 'pending' AND n.next_attempt_at <= $1"
            " ORDER BY n.next_attempt_at LIMIT $2 FOR UPDATE OF n SKIP LOCKED",
            now,
            limit,
            NOTICE_STEP,
            TASK_STEP_BASE,
        )
        claimed: list[Claimed] = []
        for row in rows:
            # Taken or over meanwhile: no more escalation steps go out (notices and task messages do).
            if row["state"] != "open" and not row["beyond_escalation"]:
                await conn.execute(
                    "UPDATE notifications SET send_state = 'skipped' WHERE notification_id = $1",
                    row["notification_id"],
                )
                metrics.NOTIFICATIONS.labels("skipped").inc()
                continue
            await conn.execute(
                "UPDATE notifications SET send_state = 'sending', attempts = attempts + 1,"
                " next_attempt_at = $2 WHERE notification_id = $1",
                row["notification_id"],
                now,
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
                    operator_alert=row["operator_alert"],
                )
            )
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


async def record(
    conn: Connection,
    provider: str,
    item: Claimed,
    outcome: SentSms | SmsError,
    now: datetime,
    policy: SendPolicy,
) -> None:
    """Store what became of a send; escalate at once when a permanent failure leaves nobody at the step."""
    async with conn.transaction():
        if isinstance(outcome, SentSms):
            first = item.page_id is not None and not await conn.fetchval(
                "SELECT EXISTS (SELECT 1 FROM notifications WHERE page_id = $1 AND accepted_at IS NOT NULL)",
                item.page_id,
            )
            await conn.execute(
                "UPDATE notifications SET send_state = 'sent', provider = $2, provider_message_id = $3,"
                " provider_status = $4, accepted_at = $5, status_at = $5 WHERE notification_id = $1",
                item.notification_id,
                provider,
                outcome.provider_message_id,
                outcome.status,
                now,
            )
            metrics.NOTIFICATIONS.labels("sent").inc()
            if item.operator_alert:
                metrics.OPERATOR_ALERT_SMS.labels("sent").inc()
            if first:
                metrics.SIGHTING_TO_PROVIDER_SECONDS.observe(
                    max(0.0, (now - item.sighted_at).total_seconds())
                )
            return
        error = outcome
        # Retried only when the provider provably has nothing: creating a message is not idempotent, so a
        # 5xx or a timeout after sending becomes ambiguous instead (the escalation timer still runs).
        if error.kind == "retriable" and not error.may_have_sent and item.attempts < policy.max_attempts:
            delay = timedelta(seconds=min(2**item.attempts, 60))
            await conn.execute(
                "UPDATE notifications SET send_state = 'pending', next_attempt_at = $2, error_code = $3,"
                " error_message = $4 WHERE notification_id = $1",
                item.notification_id,
                now + delay,
                error.code,
                str(error),
            )
            metrics.NOTIFICATIONS.labels("retried").inc()
            log.warning(
                "notification %s: %s; retry %d in %s", item.notification_id, error, item.attempts, delay
            )
            return
        state = "ambiguous" if error.kind == "ambiguous" or error.may_have_sent else "failed"
        await conn.execute(
            "UPDATE notifications SET send_state = $2, error_code = $3, error_message = $4, status_at = $5"
            " WHERE notification_id = $1",
            item.notification_id,
            state,
            error.code,
            str(error),
            now,
        )
        metrics.NOTIFICATIONS.labels(state).inc()
        if item.operator_alert:
            metrics.OPERATOR_ALERT_SMS.labels(state).inc()
        log.error("notification %s %s: %s", item.notification_id, state, error)
        if state == "failed" and item.page_id is not None:
            await step_out_of_reach(conn, item.page_id, item.step, now)


async def recover_interrupted(conn: Connection, now: datetime, policy: SendPolicy) -> int:
    """Claims a crashed pager left behind become ``ambiguous``: the provider may have the message, so it
    is not sent again; the escalation timer still runs, so someone is reached regardless."""
    result = await conn.execute(
        "UPDATE notifications SET send_state = 'ambiguous', error_message = 'interrupted while sending',"
        " status_at = $1 WHERE send_state = 'sending' AND next_attempt_at < $2",
        now,
        now - policy.stale_claim,
    )
    count = int(result.split()[-1])
    if count:
        metrics.NOTIFICATIONS.labels("ambiguous").inc(count)
        log.warning("%d notification(s) were interrupted while sending; not resent", count)
    return count
