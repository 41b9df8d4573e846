"""Sends whose outcome is unknown, reconciled with the provider; statuses no callback brought, fetched.

A send is ``reconciling`` when the provider may or may not have the message: a 5xx, a timeout or a broken
connection after the request left, or a claim whose lease ran out with no outcome (its pager died). It
is looked up (:meth:`alerts.sms.SmsProvider.find`: recipient, sender, the body with its own reply code,
created since the first claim) once its lease has passed, when any request of the attempt has landed:

- found: recorded as sent with the provider's id, never sent again;
- provably absent: sent again (``pending``), unless the attempts are used up or its validity period is
  over (then ``failed``, and a step nobody can answer escalates at once);
- the lookup failed: asked again later (5 s, 10 s, … 60 s); once the SMS would be useless (its validity
  period and one lease are over) it is left ``ambiguous``: an outcome nobody will learn, never resent.

A lookup is leased like a send (``claimed_by``, the due time pushed past the lease), so two pagers never
ask at once, and what it found is written only while its pager still holds it.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from alerts import metrics, replies
from alerts.sending import RETRY_CAP_S, AfterCommit, SendPolicy, held_by, mark_failed, mark_sent, settle
from alerts.sms import DeliveryStatus, SentSms, SmsError, SmsProvider
from streams.db import Connection

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Reconciling:
    """A send whose outcome is unknown, claimed for a lookup."""

    notification_id: uuid.UUID
    page_id: uuid.UUID | None
    step: int
    phone: str
    body: str
    attempts: int
    lookups: int
    sighted_at: datetime
    first_claimed_at: datetime


@dataclass(frozen=True, slots=True)
class StatusCheck:
    """A sent SMS whose final status no callback brought, claimed for a lookup by its id."""

    notification_id: uuid.UUID
    provider_message_id: str
    accepted_at: datetime


async def claim_reconciliations(
    conn: Connection, now: datetime, owner: str, policy: SendPolicy, *, limit: int
) -> list[Reconciling]:
    """Claim up to ``limit`` sends of unknown outcome whose lookup is due; each is leased to ``owner``
    (no other pager looks it up meanwhile)."""
    if limit <= 0:
        return []
    async with conn.transaction():
        rows = await conn.fetch(
            "SELECT n.notification_id, n.page_id, n.step, n.phone, n.body, n.attempts, n.lookups,"
            " COALESCE(n.first_claimed_at, n.created_at) AS first_claimed_at,"
            " COALESCE(p.sighted_at, n.created_at) AS sighted_at"
            " FROM notifications n LEFT JOIN pages p USING (page_id)"
            " WHERE n.send_state = 'reconciling' AND n.next_attempt_at <= $1"
            " ORDER BY n.next_attempt_at LIMIT $2 FOR UPDATE OF n SKIP LOCKED",
            now,
            limit,
        )
        for row in rows:
            await conn.execute(
                "UPDATE notifications SET claimed_by = $2, next_attempt_at = $3 WHERE notification_id = $1",
                row["notification_id"],
                owner,
                now + policy.lease,
            )
    return [
        Reconciling(
            notification_id=row["notification_id"],
            page_id=row["page_id"],
            step=row["step"],
            phone=row["phone"],
            body=row["body"],
            attempts=row["attempts"],
            lookups=row["lookups"],
            sighted_at=row["sighted_at"],
            first_claimed_at=row["first_claimed_at"],
        )
        for row in rows
    ]


async def look_up(provider: SmsProvider, item: Reconciling) -> SentSms | SmsError | None:
    """Ask the provider for the message of a send whose outcome is unknown: found, absent (None), or why
    the lookup failed."""
    try:
        return await provider.find(item.phone, item.body, item.first_claimed_at)
    except SmsError as exc:
        return exc


async def record_reconciliation(
    conn: Connection,
    provider: str,
    item: Reconciling,
    found: SentSms | SmsError | None,
    now: datetime,
    policy: SendPolicy,
    owner: str,
) -> None:
    """Store what a lookup found: the message (sent, never resent), its absence (sent again, unless the
    attempts are used up or the SMS would arrive too late), or a failed lookup (tried later)."""
    after = AfterCommit()
    async with conn.transaction():
        await _record_reconciliation(conn, provider, item, found, now, policy, owner, after)
    after.done()


async def _record_reconciliation(
    conn: Connection,
    provider: str,
    item: Reconciling,
    found: SentSms | SmsError | None,
    now: datetime,
    policy: SendPolicy,
    owner: str,
    after: AfterCommit,
) -> None:
    if not await held_by(conn, item.notification_id, owner, item.attempts, "reconciling"):
        return  # the lookup's lease ran out and another pager took it over
    if isinstance(found, SentSms) and await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM notifications WHERE provider_message_id = $1"
        " AND notification_id <> $2)",
        found.provider_message_id,
        item.notification_id,
    ):
        # The message found is another notification's, with the same text (two operator alerts of one
        # kind within minutes carry no reply code of their own): this one is not at the provider.
        log.warning(
            "notification %s: the message found (%s) is another notification's; taken as absent",
            item.notification_id,
            found.provider_message_id,
        )
        found = None
    if isinstance(found, SentSms):
        await mark_sent(
            conn, provider, item.notification_id, item.page_id, item.sighted_at, found, now, policy, after
        )
        after.count(metrics.RECONCILIATIONS, "found")
        log.info(
            "notification %s: the provider has it (%s): recorded as sent, not resent",
            item.notification_id,
            found.provider_message_id,
        )
        await settle(conn, item.page_id, item.step, now, policy)
        return
    if found is None:
        after.count(metrics.RECONCILIATIONS, "absent")
        late = now > item.first_claimed_at + policy.validity
        if item.attempts >= policy.max_attempts or late:
            why = (
                f"not at the provider after {item.attempts} attempt(s)"
                if not late
                else "not at the provider, and its validity period is over: not sent any more"
            )
            await mark_failed(conn, item.notification_id, "failed", None, why, now, after)
            log.error("notification %s failed: %s", item.notification_id, why)
            await settle(conn, item.page_id, item.step, now, policy)
            return
        await conn.execute(
            "UPDATE notifications SET send_state = 'pending', next_attempt_at = $2, claimed_by = NULL,"
            " lease_until = NULL WHERE notification_id = $1",
            item.notification_id,
            now,
        )
        after.count(metrics.NOTIFICATIONS, "retried")
        log.warning("notification %s: not at the provider; sending it again", item.notification_id)
        return
    # The lookup failed: nothing is known. Ask again later, until the SMS would be useless anyway.
    if now > item.first_claimed_at + policy.validity + policy.lease:
        await mark_failed(
            conn,
            item.notification_id,
            "ambiguous",
            found.code,
            f"outcome never learned (lookups failed until its validity period was over): {found}",
            now,
            after,
        )
        after.count(metrics.RECONCILIATIONS, "gave_up")
        log.error("notification %s: outcome never learned; left ambiguous", item.notification_id)
        await settle(conn, item.page_id, item.step, now, policy)
        return
    lookups = item.lookups + 1
    delay = timedelta(seconds=min(5 * 2 ** (lookups - 1), RETRY_CAP_S))
    await conn.execute(
        "UPDATE notifications SET lookups = $2, next_attempt_at = $3, claimed_by = NULL"
        " WHERE notification_id = $1",
        item.notification_id,
        lookups,
        now + delay,
    )
    after.count(metrics.RECONCILIATIONS, "lookup_failed")
    log.warning("notification %s: lookup failed (%s); again in %s", item.notification_id, found, delay)


# ---------------------------------------------------------------------------------------- status checks


async def claim_status_checks(
    conn: Connection, now: datetime, policy: SendPolicy, *, limit: int
) -> list[StatusCheck]:
    """Claim up to ``limit`` sent SMS whose final status is overdue; the next check is pushed past the
    lease so that no other pager asks meanwhile."""
    if limit <= 0:
        return []
    async with conn.transaction():
        rows = await conn.fetch(
            "SELECT notification_id, provider_message_id, accepted_at FROM notifications"
            " WHERE status_check_at <= $1 AND send_state = 'sent' AND provider_message_id IS NOT NULL"
            " ORDER BY status_check_at LIMIT $2 FOR UPDATE SKIP LOCKED",
            now,
            limit,
        )
        for row in rows:
            await conn.execute(
                "UPDATE notifications SET status_check_at = $2 WHERE notification_id = $1",
                row["notification_id"],
                now + policy.lease,
            )
    return [StatusCheck(r["notification_id"], r["provider_message_id"], r["accepted_at"]) for r in rows]


async def check_status(provider: SmsProvider, item: StatusCheck) -> DeliveryStatus | SmsError:
    try:
        return await provider.status(item.provider_message_id)
    except SmsError as exc:
        return exc


async def record_status_check(
    conn: Connection, item: StatusCheck, outcome: DeliveryStatus | SmsError, now: datetime, policy: SendPolicy
) -> None:
    """Apply a looked-up status as a callback would be (never backwards, failures escalate), and plan
    the next lookup: twice as long after acceptance each time, none after a final status or once the
    validity period (plus one wait) is over."""
    after = AfterCommit()
    async with conn.transaction():
        final = False
        if isinstance(outcome, DeliveryStatus):
            # As a callback would be applied; the row's own update comes after (see mark_sent).
            changed = await replies.record_status(
                conn, item.provider_message_id, outcome.status, outcome.error_code, now
            )
            after.count(metrics.STATUS_LOOKUPS, "changed" if changed else "unchanged")
            final = outcome.final
        else:
            after.count(metrics.STATUS_LOOKUPS, "failed")
            # No such message at the provider is an answer too: asking again changes nothing.
            final = outcome.kind == "permanent"
            log.warning("status of %s not looked up: %s", item.provider_message_id, outcome)
        age = now - item.accepted_at
        deadline = item.accepted_at + policy.validity + policy.status_lookup_after
        following = now + max(age, policy.status_lookup_after)
        await conn.execute(
            "UPDATE notifications SET status_check_at = $2 WHERE notification_id = $1",
            item.notification_id,
            None if final or following > deadline else following,
        )
    after.done()
