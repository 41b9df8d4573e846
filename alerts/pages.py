"""Pages and their escalation: a hit opens a page with a frozen plan; due steps run under row locks.

Every function takes the pager's clock reading (``now``) and passes it into SQL, so a test can drive
time and two pager processes agree on what is due. A step runs only while its page is open: the check
and the decision commit together (``FOR UPDATE SKIP LOCKED``), and SMS are sent only afterwards by
:mod:`alerts.sending`, from notification rows this transaction wrote.

A step's wait (the acknowledgement timeout) runs from when its SMS are settled — sent, failed or given
up — not from when they were queued: until then the page has no due time (``next_due_at`` is NULL), so a
slow or failing provider never makes a step, or the page's exhaustion, overtake its own SMS. A step
whose every recipient is out of reach (failed, undelivered, declined) escalates at once.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta

import orjson

from alerts import metrics
from alerts.messages import render_alert, render_escalated, render_morning, reply_code
from alerts.overnight import NightOutcome, Overnight, overnight
from alerts.rosters import Officer, Role, Roster
from alerts.rosterstore import load_roster
from alerts.routing import Plan, Step, StepKind, plan, resolve
from streams.db import Connection
from streams.hits import HitV1
from streams.matching import MatchKind
from streams.vehicles import Action, PlateColour, Priority

log = logging.getLogger(__name__)

PAGES_CHANNEL = "seizewatch_pages"
_PAGE_NAMESPACE = uuid.UUID("0c1d9a64-5e12-4c3a-a6ad-9a6e5f3b7a01")
_NOT_REACHED = ("failed",)
_UNDELIVERED = ("undelivered", "failed")
_UNSETTLED = ("pending", "sending", "reconciling")


def page_id_for(hit_id: uuid.UUID) -> uuid.UUID:
    return uuid.uuid5(_PAGE_NAMESPACE, str(hit_id))


async def open_page(
    conn: Connection,
    hit: HitV1,
    roster: Roster,
    now: datetime,
    *,
    also_owners: tuple[str, ...] = (),
    priority: Priority | None = None,
    action: Action | None = None,
) -> bool:
    """Open the page of a hit (or record why nobody is paged); False when it already existed (a replay).

    ``also_owners``, ``priority``, ``action``: the vehicle's other cases' courts, its most urgent
    priority, and seize when any of its cases wants it seized (:func:`alerts.routing.plan`)."""
    frozen = plan(hit, roster, now, also_owners=also_owners, priority=priority, action=action)
    state = "open" if frozen.pages else "not_paged"
    reason = frozen.reason.value if frozen.reason else None
    inserted = await conn.fetchval(
        "INSERT INTO pages (page_id, hit_id, entry_id, hit, plan, info_only, state, not_paged_reason,"
        " next_due_at, sighted_at, created_at, updated_at, notice_due_at)"
        " VALUES ($1, $2, $3, $4::jsonb, $5::jsonb, $6, $7, $8, $9, $10, $11, $11, $12)"
        " ON CONFLICT (hit_id) DO NOTHING RETURNING true",
        page_id_for(hit.hit_id),
        hit.hit_id,
        hit.entry_id,
        hit.encode().decode(),
        orjson.dumps(frozen.to_json()).decode(),
        frozen.info_only,
        state,
        reason,
        now if frozen.pages else None,
        hit.sighting.observed_at,
        now,
        frozen.deferred_until if frozen.pages and frozen.deferred else None,
    )
    if inserted:
        metrics.PAGES.labels("opened" if frozen.pages else f"not_paged_{reason}").inc()
        await conn.execute(f"NOTIFY {PAGES_CHANNEL}")
    return bool(inserted)


async def run_due_steps(conn: Connection, now: datetime, *, limit: int = 20) -> int:
    """Run the steps due at ``now`` (each page locked, skipped if another pager holds it); return how many."""
    async with conn.transaction():
        rows = await conn.fetch(
            "SELECT page_id, hit, plan, next_step FROM pages WHERE state = 'open' AND next_due_at <= $1"
            " ORDER BY next_due_at LIMIT $2 FOR UPDATE SKIP LOCKED",
            now,
            limit,
        )
        if not rows:
            return 0
        roster = await load_roster(conn)  # who is on duty is resolved when the step runs, not earlier
        for row in rows:
            hit = HitV1.model_validate_json(row["hit"])
            frozen = Plan.from_json(orjson.loads(row["plan"]))
            await _run_step(conn, row["page_id"], hit, frozen, row["next_step"], roster, now)
    return len(rows)


NOTICE_STEP = -1  # notifications of the morning notice, apart from the escalation steps
# "Taken by …" told to the others paged with a page (alerts/handover.py): the first take, and the court
# taking the vehicle over from the police station that held it. Steps below zero never escalate and go out
# whatever became of the page.
TAKEN_STEP = -2
TAKEN_OVER_STEP = -3
# "Seized under case …" told to each court whose entry of the vehicle it is (alerts/tasks.py): once per
# page (or task) and officer, whatever became of the page.
SEIZED_TOLD_STEP = -4


async def page_cases(conn: Connection, page_id: uuid.UUID, hit: HitV1) -> list[str]:
    """The other case numbers of the vehicle the page's task stands for (its own first, not repeated)."""
    rows = await conn.fetch(
        "SELECT e.case_number FROM tasks t JOIN task_entries te USING (task_id)"
        " JOIN watch_entries e ON e.entry_id = te.entry_id"
        " WHERE t.page_id = $1 AND te.entry_id <> $2 ORDER BY te.joined_at, e.case_number",
        page_id,
        hit.entry_id,
    )
    return [r["case_number"] for r in rows if r["case_number"] != hit.case_number]


async def run_due_notices(conn: Connection, now: datetime, *, limit: int = 20) -> int:
    """Tell the courts that were not woken at night, when the night ends, what became of the page then
    (:mod:`alerts.overnight`): the station may hold or have seized the car, and the court must take it
    over; or nobody found it; or nobody answered all night (an exhausted page: the worst night, told
    too). A page cancelled for another reason (the entry released, the task expired) tells nobody."""
    async with conn.transaction():
        rows = await conn.fetch(
            "SELECT page_id, hit, plan FROM pages"
            " WHERE notice_due_at <= $1 AND (state IN ('open', 'acknowledged', 'exhausted') OR EXISTS"
            " (SELECT 1 FROM tasks t WHERE t.page_id = pages.page_id AND t.state IN ('seized', 'not_found')))"
            " ORDER BY notice_due_at LIMIT $2 FOR UPDATE OF pages SKIP LOCKED",
            now,
            limit,
        )
        if not rows:
            return 0
        roster = await load_roster(conn)
        for row in rows:
            frozen = Plan.from_json(orjson.loads(row["plan"]))
            hit = HitV1.model_validate_json(row["hit"])
            notice = Step(StepKind.FIRST, frozen.deferred)
            resolution = resolve(notice, roster, now)
            for who, why in resolution.unreachable:
                metrics.UNREACHABLE.inc()
                log.warning("page %s morning notice: cannot reach %s: %s", row["page_id"], who, why)
            night = await overnight(conn, roster, row["page_id"], hit.sighting.district)
            cases = await page_cases(conn, row["page_id"], hit)
            await _notify(
                conn, row["page_id"], NOTICE_STEP, resolution.recipients, hit, notice, [], frozen, now, cases,
                night=night,
            )  # fmt: skip
            await conn.execute("UPDATE pages SET notice_due_at = NULL WHERE page_id = $1", row["page_id"])
            metrics.ESCALATIONS.labels(metrics.MORNING_NOTICE_STEP).inc()
    return len(rows)


async def _run_step(
    conn: Connection,
    page_id: uuid.UUID,
    hit: HitV1,
    frozen: Plan,
    index: int,
    roster: Roster,
    now: datetime,
) -> None:
    if index >= len(frozen.steps):
        await conn.execute(
            "UPDATE pages SET state = 'exhausted', next_due_at = NULL, updated_at = $2 WHERE page_id = $1",
            page_id,
            now,
        )
        metrics.ESCALATIONS_EXHAUSTED.inc()
        log.error("page %s exhausted its escalation: nobody took it", page_id)
        return
    step = frozen.steps[index]
    resolution = resolve(step, roster, now)
    for who, why in resolution.unreachable:
        metrics.UNREACHABLE.inc()
        log.warning("page %s step %d (%s): cannot reach %s: %s", page_id, index, step.kind.value, who, why)
    previous = [
        officer.name if (officer := roster.officer(officer_id)) else officer_id
        for officer_id in await _previous_recipients(conn, page_id, index)
    ]
    cases = await page_cases(conn, page_id, hit)
    await _notify(conn, page_id, index, resolution.recipients, hit, step, previous, frozen, now, cases)
    metrics.ESCALATIONS.labels(step.kind.value).inc()
    # Nobody reachable at this step: go on to the next one at once. Otherwise the step's wait starts
    # when its SMS are settled (step_settled), and until then nothing of this page is due.
    due = now if resolution.nobody else None
    await conn.execute(
        "UPDATE pages SET next_step = $2, next_due_at = $3, updated_at = $4 WHERE page_id = $1",
        page_id,
        index + 1,
        due,
        now,
    )


async def _notify(
    conn: Connection,
    page_id: uuid.UUID,
    index: int,
    recipients: tuple[Officer, ...],
    hit: HitV1,
    step: Step,
    previous: list[str],
    frozen: Plan,
    now: datetime,
    cases: list[str],
    *,
    night: NightOutcome | None = None,
) -> None:
    """One pending notification per recipient, committed with the decision; the sender does the rest.

    ``night``: this is the morning notice, told what happened overnight.
    """
    for officer in recipients:
        code = reply_code(int(await conn.fetchval("SELECT nextval('reply_code_seq')")))
        await conn.execute(
            "INSERT INTO notifications (notification_id, page_id, step, officer_id, phone, reply_code, body,"
            " send_state, next_attempt_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', $8, $8)"
            " ON CONFLICT (page_id, step, officer_id) DO NOTHING",
            uuid.uuid4(),
            page_id,
            index,
            officer.officer_id,
            officer.phone,
            code,
            _render(hit, step, code, previous, frozen.info_only, cases, officer, night),
            now,
        )


async def _previous_recipients(conn: Connection, page_id: uuid.UUID, index: int) -> list[str]:
    if index == 0:
        return []
    return [
        row["officer_id"]
        for row in await conn.fetch(
            "SELECT officer_id FROM notifications WHERE page_id = $1 AND step = $2 ORDER BY officer_id",
            page_id,
            index - 1,
        )
    ]


def _render(
    hit: HitV1,
    step: Step,
    code: str,
    previous: list[str],
    info_only: bool,
    cases: list[str],
    officer: Officer,
    night: NightOutcome | None,
) -> str:
    s = hit.sighting
    # The plan's (info_only: every case of the vehicle locate-only), not the hit's entry alone: a
    # locate-only hit of a vehicle another case wants seized asks for the seizure.
    locate = info_only
    # The police station at night holds the vehicle for the court; it does not seize it.
    seize = "hold" if officer.role is Role.STATION_DUTY else "seize"
    facts = {
        "plate": hit.entry_plate,
        "place": s.device_name or s.device_id,
        "observed_at": s.observed_at,
        "case_number": hit.case_number,
        "action": "locate" if locate else seize,
        "match_kind": hit.match_kind.value,
        "score": hit.score if hit.match_kind is not MatchKind.EXACT else 1.0,
        "reply_code": code,
        "vehicle": hit.vehicle or None,
        "urgent": hit.priority is Priority.URGENT,
        "address": s.address,
        # The court's record of the colour, else the camera's (often wrong at night, but better than none).
        "plate_colour": hit.plate_colour if hit.plate_colour is not PlateColour.UNKNOWN else s.plate_colour,
        "cases": cases,
    }
    if night is not None and night.kind is not Overnight.NOTHING and not locate:
        del facts["action"]
        return render_morning(
            overnight=night.kind.value,  # type: ignore[arg-type]  # a value of the Literal (not NOTHING)
            holder=night.holder_name,
            custody=night.custody,
            left_at=night.left_at,
            take_over=night.by_station,
            **facts,  # type: ignore[arg-type]  # the keys are render_morning's parameters
        )
    if step.kind is StepKind.FIRST:
        return render_alert(**facts)  # type: ignore[arg-type]  # the keys are render_alert's parameters
    return render_escalated(previous="、".join(previous) or "值班人员", **facts)  # type: ignore[arg-type]


async def step_settled(
    conn: Connection, page_id: uuid.UUID, step: int, now: datetime, ack_timeout: timedelta
) -> bool:
    """A notification of the page's current step was settled: once one of them was sent, or all of them
    are settled, start the step's wait (``now + ack_timeout``), or escalate now when nobody at the step
    can answer. True when it changed the page's due time.

    Runs in the caller's transaction, after the notification's outcome was written.
    """
    page = await conn.fetchrow(
        "SELECT state, next_step, next_due_at FROM pages WHERE page_id = $1 FOR UPDATE", page_id
    )
    if page is None or page["state"] != "open" or page["next_step"] != step + 1:
        return False
    unsettled = await conn.fetchval(
        "SELECT count(*) FROM notifications"
        " WHERE page_id = $1 AND step = $2 AND send_state = ANY($3::text[])",
        page_id,
        step,
        list(_UNSETTLED),
    )
    if unsettled:
        # Someone at the step has the SMS and can answer: the wait starts from it. The others' SMS still
        # go out, but escalation does not wait for them (a send looked up at a degraded provider may stay
        # unsettled for its whole validity period, ten minutes).
        reached = await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM notifications"
            " WHERE page_id = $1 AND step = $2 AND send_state = 'sent')",
            page_id,
            step,
        )
        if not reached:
            return False
    elif await step_out_of_reach(conn, page_id, step, now):
        return True
    if page["next_due_at"] is not None:
        return False  # already waiting (a step settled before, e.g. by a callback)
    await conn.execute(
        "UPDATE pages SET next_due_at = $2, updated_at = $3 WHERE page_id = $1",
        page_id,
        now + ack_timeout,
        now,
    )
    return True


async def step_out_of_reach(conn: Connection, page_id: uuid.UUID, step: int, now: datetime) -> bool:
    """If every recipient of the page's current step is out (failed, undelivered or declined), make the
    next step due now and return True. Escalation is driven by acknowledgement, never by delivery: this
    only shortens the wait when nobody can possibly answer."""
    page = await conn.fetchrow(
        "SELECT state, next_step, next_due_at FROM pages WHERE page_id = $1 FOR UPDATE", page_id
    )
    if page is None or page["state"] != "open" or page["next_step"] != step + 1:
        return False
    rows = await conn.fetch(
        "SELECT n.officer_id, n.send_state, n.provider_status,"
        " EXISTS (SELECT 1 FROM page_replies r WHERE r.page_id = n.page_id AND r.officer_id = n.officer_id"
        "         AND r.outcome = 'declined') AS declined"
        " FROM notifications n WHERE n.page_id = $1 AND n.step = $2",
        page_id,
        step,
    )
    out = all(
        r["send_state"] in _NOT_REACHED or r["provider_status"] in _UNDELIVERED or r["declined"] for r in rows
    )
    if rows and out:
        if page["next_due_at"] is not None and page["next_due_at"] <= now:
            return False  # due already
        await conn.execute(
            "UPDATE pages SET next_due_at = $2, updated_at = $2 WHERE page_id = $1", page_id, now
        )
        await conn.execute(f"NOTIFY {PAGES_CHANNEL}")
        log.info("page %s: nobody at step %d can answer; escalating now", page_id, step)
        return True
    return False


async def overdue_steps(conn: Connection, now: datetime, grace: timedelta = timedelta(minutes=1)) -> int:
    """Open pages whose next step should have run more than ``grace`` ago: a stuck pager, said out loud.

    Sets the gauges of open pages and of overdue ones; returns the overdue count.
    """
    row = await conn.fetchrow(
        "SELECT count(*), count(*) FILTER (WHERE next_due_at < $1) FROM pages WHERE state = 'open'",
        now - grace,
    )
    open_pages, overdue = row or (0, 0)  # an aggregate always has its row
    metrics.OPEN_PAGES.set(open_pages)
    metrics.OVERDUE_STEPS.set(overdue)
    return int(overdue)
