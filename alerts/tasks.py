"""Seizure tasks: one live task per watched vehicle, the sightings that fold into it, and its lifecycle.

A vehicle is a plate with its colour, as on a watch entry; sealed under several cases it has several
entries, and the matcher makes one hit per (sighting, entry). The task is the vehicle's: the first hit
opens one page and one task listing every active case of the vehicle (their courts all paged, each person
once), and hits on any of its entries join that task (``task_entries``). A seizure closes the entry it was
made under as seized and every other entry of the vehicle as ``seized_other_case`` (off every list, no
more pages), and tells each court whose entry it is; each court then settles its own entry (release).

Correlation state lives in PostgreSQL, not in a faust table. Hits are keyed by watch entry, so a
vehicle's hits on two entries may reach two pagers: its hits are serialized by a transaction-scoped
advisory lock on the vehicle, and the live task row is locked (``FOR UPDATE``) while a hit folds into it.
Tasks are the system of record people query, report on and audit (task events); a changelog topic would
have to be mirrored into PostgreSQL anyway.

A sighting of a vehicle with a live task sends an update only when it is somewhere new (another
device, outside the suppression window) or leaves a parking lot (exit read); otherwise it only joins
the trail. Backfilled and late reads only join the trail. States::

    open → acknowledged → en_route → seized | not_found        (any live state → cancelled | expired)
    open | acknowledged | en_route → stopped → en_route | seized | not_found

``stopped`` (已拦停): the traffic police stopped the vehicle and hold it at a place until the court takes
it over; the task keeps the place, the time and the unit holding it.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg
import orjson

from alerts import metrics
from alerts.messages import render_update, reply_code, segments
from alerts.pages import NOTICE_STEP, PAGES_CHANNEL, SEIZED_TOLD_STEP, open_page
from alerts.rosters import GROUP_ROLES, Officer, Role, Roster
from alerts.rosterstore import load_roster
from streams.db import Connection
from streams.events import SightingFlag, SourceKind
from streams.hits import HitV1
from streams.vehicles import Action, EntryStatus, PlateColour, Priority
from streams.watchstore import mark_seized, mark_seized_other_case

log = logging.getLogger(__name__)

LIVE = ("open", "acknowledged", "en_route", "stopped")
TERMINAL = ("seized", "not_found", "cancelled", "expired")
ALLOWED: dict[str, frozenset[str]] = {
    "open": frozenset({"acknowledged", "en_route", "stopped", "seized", "not_found", "cancelled", "expired"}),
    "acknowledged": frozenset({"open", "en_route", "stopped", "seized", "not_found", "cancelled", "expired"}),
    "en_route": frozenset({"acknowledged", "stopped", "seized", "not_found", "cancelled", "expired"}),
    # Held by the police: the court goes there (en_route) or records the seizure; the car may be let go.
    "stopped": frozenset({"en_route", "seized", "not_found", "cancelled"}),
}
# Task messages are notifications with steps of their own, apart from the page's escalation steps, in
# bands that never meet: a (task, step, officer) is written once, so two kinds of message on one step
# would leave the later one unwritten and unsent. A task's n-th update: TASK_STEP_BASE + n (a car seen
# somewhere new several times a day for years stays below the next band); the n-th traffic-police
# result applied: TRAFFIC_RESULT_STEP_BASE + n; the cancellation, once: CANCELLED_STEP.
TASK_STEP_BASE = 100
TRAFFIC_RESULT_STEP_BASE = 100_000_000
CANCELLED_STEP = 200_000_000


class TaskError(Exception):
    """A transition that is not allowed, or a task that does not exist (message for people)."""


@dataclass(frozen=True, slots=True)
class TaskPolicy:
    suppress_window: timedelta  # a new place within this long of the last update is only trailed
    expiry: timedelta  # an open task nobody took, unseen this long, expires


# --- correlation --------------------------------------------------------------------------------------

# Entries whose vehicle is in custody: a hit on them (one the matcher made before it heard) pages nobody.
_IN_CUSTODY = (EntryStatus.SEIZED.value, EntryStatus.SEIZED_OTHER_CASE.value)


def vehicle_key(plate: str, colour: PlateColour | str) -> str:
    """The vehicle of an entry: its plate with its colour (``tasks.vehicle``)."""
    return f"{plate}/{PlateColour(colour).value}"


async def lock_vehicle(conn: Connection, vehicle: str) -> None:
    """Serialize everything done to one vehicle's task until the caller's transaction ends (its hits on
    several entries may be taken by several pagers at once)."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 15))", vehicle)


async def live_task_of(conn: Connection, vehicle: str) -> asyncpg.Record | None:
    """The vehicle's live task, locked (the caller holds :func:`lock_vehicle`)."""
    return await conn.fetchrow(
        "SELECT * FROM tasks WHERE vehicle = $1 AND state = ANY($2::text[])"
        " ORDER BY created_at LIMIT 1 FOR UPDATE",
        vehicle,
        list(LIVE),
    )


async def join_case(conn: Connection, task: asyncpg.Record, entry_id: uuid.UUID, now: datetime) -> bool:
    """Add an entry (another case of the vehicle) to its live task; True when it was not there yet."""
    joined = await conn.fetchval(
        "INSERT INTO task_entries (task_id, entry_id, joined_at) VALUES ($1, $2, $3)"
        " ON CONFLICT DO NOTHING RETURNING true",
        task["task_id"],
        entry_id,
        now,
    )
    if joined:
        await record_event(conn, task["task_id"], now, "system", "system", task["state"], task["state"],
                           {"event": "case_joined", "entry_id": str(entry_id)})  # fmt: skip
    return bool(joined)


async def take_hit(conn: Connection, hit: HitV1, roster: Roster, now: datetime, policy: TaskPolicy) -> str:
    """Fold a hit into its vehicle's live task, or open a page and a task; return what happened.

    Runs in the caller's transaction.
    """
    if await conn.fetchval("SELECT EXISTS (SELECT 1 FROM task_sightings WHERE hit_id = $1)", hit.hit_id):
        return "replay"
    if hit.action is Action.SOFT_SEAL:
        return await _open(conn, hit, roster, now, "")  # logged as a not_paged page, never a task
    status = await conn.fetchval("SELECT status FROM watch_entries WHERE entry_id = $1", hit.entry_id)
    if status in _IN_CUSTODY:
        log.info("hit %s: entry %s is %s: the vehicle is in custody, nobody paged", hit.hit_id,
                 hit.entry_id, status)  # fmt: skip
        seizing = await conn.fetchval(
            "SELECT t.task_id FROM tasks t JOIN task_entries te USING (task_id) WHERE te.entry_id = $1"
            " ORDER BY t.created_at DESC LIMIT 1",
            hit.entry_id,
        )
        if isinstance(seizing, uuid.UUID):
            await _trail(conn, seizing, hit, "in_custody")
        metrics.TASK_SIGHTINGS.labels("in_custody").inc()
        return "in_custody"
    vehicle = vehicle_key(hit.entry_plate, hit.plate_colour)
    await lock_vehicle(conn, vehicle)
    live = await live_task_of(conn, vehicle)
    if live is None:
        return await _open(conn, hit, roster, now, vehicle)
    await join_case(conn, live, hit.entry_id, now)
    return await _fold(conn, hit, live, roster, now, policy)


async def _open(conn: Connection, hit: HitV1, roster: Roster, now: datetime, vehicle: str) -> str:
    # Every other case of the vehicle in force when it was seen: one page and one task for all of them.
    others = (
        await conn.fetch(
            "SELECT entry_id, court, priority, action FROM watch_entries"
            " WHERE plate = $1 AND plate_colour = $2 AND status = 'active' AND action <> 'soft_seal'"
            " AND entry_id <> $3 AND valid_from <= $4 AND (valid_until IS NULL OR valid_until > $4)"
            " ORDER BY valid_from, case_number",
            hit.entry_plate,
            hit.plate_colour.value,
            hit.entry_id,
            hit.sighting.observed_at,
        )
        if vehicle
        else []
    )
    urgent = any(r["priority"] == Priority.URGENT.value for r in others)
    seize = any(r["action"] == Action.SEIZE.value for r in others)  # a locate hit, another case to seize
    opened = await open_page(
        conn, hit, roster, now, also_owners=tuple(r["court"] for r in others),
        priority=Priority.URGENT if urgent else None, action=Action.SEIZE if seize else None,
    )  # fmt: skip
    if not opened:
        return "replay"
    page = await conn.fetchrow("SELECT page_id, state, info_only FROM pages WHERE hit_id = $1", hit.hit_id)
    assert page is not None  # noqa: S101  # opened just above, in this transaction
    if page["state"] == "not_paged":  # soft seal, backfill, late: logged as a page record, no task
        return "not_paged"
    s = hit.sighting
    task_id = uuid.uuid4()
    await conn.execute(
        "INSERT INTO tasks (task_id, entry_id, kind, state, court, district, page_id, first_seen_at,"
        " last_seen_at, last_device_id, last_update_at, created_at, updated_at, vehicle)"
        " VALUES ($1, $2, $3, 'open', $4, $5, $6, $7, $7, $8, $9, $9, $9, $10)",
        task_id,
        hit.entry_id,
        "locate" if page["info_only"] else "seize",
        hit.court,
        s.district,
        page["page_id"],
        s.observed_at,
        s.device_id,
        now,
        vehicle,
    )
    await conn.execute(
        # its own entry is listed already (the tasks trigger of 0015_multicase): only the others are new
        "INSERT INTO task_entries (task_id, entry_id, joined_at) SELECT $1, unnest($2::uuid[]), $3"
        " ON CONFLICT DO NOTHING",
        task_id,
        [hit.entry_id, *(r["entry_id"] for r in others)],
        now,
    )
    await _trail(conn, task_id, hit, "opened")
    detail: dict[str, object] = {"hit_id": str(hit.hit_id)}
    if others:
        detail["entries"] = [str(hit.entry_id), *(str(r["entry_id"]) for r in others)]
    await record_event(conn, task_id, now, "system", "system", None, "open", detail)
    metrics.TASKS.labels("opened").inc()
    return "opened"


async def _fold(
    conn: Connection, hit: HitV1, live: asyncpg.Record, roster: Roster, now: datetime, policy: TaskPolicy
) -> str:
    s = hit.sighting
    if s.backfill or SightingFlag.LATE in s.flags:
        outcome = "suppressed"  # history: the trail, never an SMS
    elif s.source_kind is SourceKind.PARKING_EXIT:
        outcome = "update_left"
    elif s.device_id != live["last_device_id"] and (
        live["last_update_at"] is None or now - live["last_update_at"] >= policy.suppress_window
    ):
        outcome = "update_new_place"
    else:
        outcome = "suppressed"
    await _trail(conn, live["task_id"], hit, outcome)
    await conn.execute(
        "UPDATE tasks SET last_seen_at = GREATEST(last_seen_at, $2), updated_at = $3 WHERE task_id = $1",
        live["task_id"],
        s.observed_at,
        now,
    )
    metrics.TASK_SIGHTINGS.labels(outcome).inc()
    if outcome == "suppressed":
        return outcome
    recipients = await _task_recipients(conn, live, roster, now)
    step = TASK_STEP_BASE + live["updates"]
    taken = live["assignee"] is not None
    for officer in recipients:
        code = await new_reply_code(conn)
        body = render_update(
            event="left" if outcome == "update_left" else "seen_again",
            plate=hit.entry_plate,
            place=s.device_name or s.device_id,
            observed_at=s.observed_at,
            reply_code=code,
            taken=taken,
            urgent=hit.priority is Priority.URGENT,
        )
        await queue_notification(conn, live["task_id"], live["page_id"], step, officer, code, body, now)
    await conn.execute(
        "UPDATE tasks SET updates = updates + 1, last_device_id = $2, last_update_at = $3 WHERE task_id = $1",
        live["task_id"],
        s.device_id,
        now,
    )
    return outcome


async def _trail(conn: Connection, task_id: uuid.UUID, hit: HitV1, outcome: str) -> None:
    s = hit.sighting
    await conn.execute(
        "INSERT INTO task_sightings (hit_id, task_id, observed_at, device_id, device_name, district,"
        " source_kind, outcome) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (hit_id) DO NOTHING",
        hit.hit_id,
        task_id,
        s.observed_at,
        s.device_id,
        s.device_name,
        s.district,
        s.source_kind.value,
        outcome,
    )


async def _task_recipients(
    conn: Connection, task: asyncpg.Record, roster: Roster, now: datetime
) -> list[Officer]:
    """Whoever took the task; else whoever its page reached last (the latest escalation step, or the
    court's morning notice after a night nobody answered: not the night's station); else the owning
    court's duty."""
    ids: list[str] = []
    if task["assignee"]:
        ids = [task["assignee"]]
    elif task["page_id"] is not None:
        ids = [
            r["officer_id"]
            for r in await conn.fetch(
                "SELECT officer_id FROM notifications WHERE page_id = $1 AND step = (SELECT step FROM"
                " notifications WHERE page_id = $1 AND (step >= 0 AND step < $2 OR step = $3)"
                " ORDER BY created_at DESC, step DESC LIMIT 1)",
                task["page_id"],
                TASK_STEP_BASE,
                NOTICE_STEP,
            )
        ]
    officers = [o for i in ids if (o := roster.officer(i)) is not None and o.unreachable is None]
    if officers:
        return officers
    return court_duty(roster, task["court"], now)


def court_duty(roster: Roster, court: str, now: datetime) -> list[Officer]:
    """The court's on-duty judge and judicial police (who take a vehicle over)."""
    group = roster.on_duty(court, now)
    if group is None:
        log.warning("court %s has no duty group: nobody to tell", court)
        return []
    officers = []
    for role in GROUP_ROLES:
        if role is Role.BUREAU_LEADER:
            continue
        officer_id = group.member(role)
        officer = roster.officer(officer_id) if officer_id else None
        if officer is not None and officer.unreachable is None:
            officers.append(officer)
    return officers


async def new_reply_code(conn: Connection) -> str:
    return reply_code(int(await conn.fetchval("SELECT nextval('reply_code_seq')")))


async def queue_notification(
    conn: Connection,
    task_id: uuid.UUID,
    page_id: uuid.UUID | None,
    step: int,
    officer: Officer,
    code: str,
    body: str,
    now: datetime,
) -> None:
    await conn.execute(
        "INSERT INTO notifications (notification_id, page_id, task_id, step, officer_id, phone, reply_code,"
        " body, send_state, next_attempt_at, created_at)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending', $9, $9)"
        " ON CONFLICT DO NOTHING",
        uuid.uuid4(),
        page_id,
        task_id,
        step,
        officer.officer_id,
        officer.phone,
        code,
        body,
        now,
    )


async def record_event(
    conn: Connection,
    task_id: uuid.UUID,
    now: datetime,
    actor: str,
    channel: str,
    from_state: str | None,
    to_state: str,
    detail: dict[str, object] | None = None,
) -> None:
    await conn.execute(
        "INSERT INTO task_events (task_id, at, actor, channel, from_state, to_state, detail)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb)",
        task_id,
        now,
        actor,
        channel,
        from_state,
        to_state,
        orjson.dumps(detail or {}).decode(),
    )


# --- lifecycle ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Custody:
    """Where a seized vehicle is kept (amended later by :func:`alerts.custody.amend_custody`)."""

    kind: str | None  # impound_lot | custodian; None: not said (an SMS names only the place)
    name: str | None  # the impound lot or custodian: the place
    address: str | None = None


@dataclass(frozen=True, slots=True)
class Stop:
    """Where and when the traffic police stopped a vehicle, and who holds it there (已拦停)."""

    at: datetime
    place: str
    held_by: str  # the police unit (交警大队) or station holding the vehicle


async def transition(
    conn: Connection,
    task_id: uuid.UUID,
    to_state: str,
    *,
    actor: str,
    channel: str,
    now: datetime,
    custody: Custody | None = None,
    stop: Stop | None = None,
    detail: dict[str, object] | None = None,
    under: uuid.UUID | None = None,
) -> str:
    """Move a task to ``to_state`` (in the caller's transaction); return the state it came from.

    ``stopped`` records ``stop`` (required for it) on the task. A seizure closes the entry it was made
    under (``under``, e.g. the traffic police's request; default the task's own entry) as seized and the
    vehicle's other active entries as ``seized_other_case``, and tells each court of a vehicle with several
    cases (:func:`seize_entries`); any terminal state stops the page's escalation.

    Raises:
        TaskError: no such task, or the move is not allowed from its state.
    """
    row = await conn.fetchrow("SELECT * FROM tasks WHERE task_id = $1 FOR UPDATE", task_id)
    if row is None:
        raise TaskError(f"no task {task_id}")
    current = row["state"]
    if to_state not in ALLOWED.get(current, frozenset()):
        raise TaskError(f"task {task_id} is {current}: cannot become {to_state}")
    if to_state == "stopped" and stop is None:
        raise TaskError(f"task {task_id}: a stop names its place, time and who holds the vehicle")
    terminal = to_state in TERMINAL
    await conn.execute(
        "UPDATE tasks SET state = $2, updated_at = $3, closed_at = CASE WHEN $4 THEN $3 ELSE closed_at END,"
        " assignee = CASE WHEN $2 = 'acknowledged' AND $5 THEN $6 ELSE assignee END,"
        " custody_kind = COALESCE($7, custody_kind), custody_name = COALESCE($8, custody_name),"
        " custody_address = COALESCE($9, custody_address), stopped_at = COALESCE($10, stopped_at),"
        " stopped_place = COALESCE($11, stopped_place), stopped_by = COALESCE($12, stopped_by)"
        " WHERE task_id = $1",
        task_id,
        to_state,
        now,
        terminal,
        channel in ("sms", "api", "cli"),
        actor,
        custody.kind if custody else None,
        custody.name if custody else None,
        custody.address if custody else None,
        stop.at if stop else None,
        stop.place if stop else None,
        stop.held_by if stop else None,
    )
    await record_event(conn, task_id, now, actor, channel, current, to_state, detail)
    metrics.TASKS.labels(to_state).inc()
    if to_state == "seized":
        await seize_entries(conn, row, actor=actor, channel=channel, now=now, custody=custody, under=under)
    if terminal and row["page_id"] is not None:
        await conn.execute(
            "UPDATE pages SET state = 'cancelled', next_due_at = NULL, updated_at = $2"
            " WHERE page_id = $1 AND state = 'open'",
            row["page_id"],
            now,
        )
    return str(current)


async def seize_entries(
    conn: Connection,
    task: asyncpg.Record,
    *,
    actor: str,
    channel: str,
    now: datetime,
    custody: Custody | None,
    under: uuid.UUID | None = None,
) -> None:
    """The vehicle of ``task`` is in custody: the entry it was seized under closes as seized, every other
    active entry of the vehicle (the task's cases and any other) as ``seized_other_case``; when there
    were several, each court whose entry it is is told once, its duty judge and judicial police
    (:data:`alerts.pages.SEIZED_TOLD_STEP`). The traffic police's news already reaches the court of the
    request: that court is told here only for its other cases."""
    task_id = task["task_id"]
    where = "custody to be recorded"
    if custody and custody.name:
        where = f"{custody.kind}: {custody.name}" if custody.kind else custody.name
    own = await conn.fetchrow(
        "SELECT plate, plate_colour FROM watch_entries WHERE entry_id = $1", task["entry_id"]
    )
    assert own is not None  # noqa: S101  # tasks.entry_id references watch_entries
    entries = await conn.fetch(
        "SELECT e.entry_id, e.case_number, e.court, e.status, te.joined_at FROM watch_entries e"
        " LEFT JOIN task_entries te ON te.entry_id = e.entry_id AND te.task_id = $1"
        " WHERE (te.task_id IS NOT NULL OR (e.plate = $2 AND e.plate_colour = $3)) AND e.status = 'active'"
        " ORDER BY te.joined_at NULLS LAST, e.valid_from, e.case_number",
        task_id,
        own["plate"],
        own["plate_colour"],
    )
    if not entries:
        return
    ids = [e["entry_id"] for e in entries]
    chosen: uuid.UUID = ids[0]
    for candidate in (under, task["entry_id"]):  # the entry named, else the task's own, else the first
        if candidate is not None and candidate in ids:
            chosen = candidate
            break
    seized = next(e for e in entries if e["entry_id"] == chosen)
    await mark_seized(conn, chosen, by=actor, reason=f"task {task_id} ({where})")
    others = [e for e in entries if e["entry_id"] != chosen]
    for entry in others:
        await mark_seized_other_case(
            conn, entry["entry_id"], by=actor,
            reason=f"seized under case {seized['case_number']} ({seized['court']}), task {task_id} ({where})",
        )  # fmt: skip
        await conn.execute(
            "INSERT INTO task_entries (task_id, entry_id, joined_at) VALUES ($1, $2, $3)"
            " ON CONFLICT DO NOTHING",
            task_id,
            entry["entry_id"],
            now,
        )
    if not others:
        return  # one case: its court follows the task as before
    await record_event(conn, task_id, now, actor, channel, "seized", "seized", {
        "event": "seized_other_case", "under": str(chosen),
        "entries": [str(e["entry_id"]) for e in others],
    })  # fmt: skip
    await _tell_courts(conn, task, own["plate"], seized, others, channel, custody, now)


async def _tell_courts(
    conn: Connection,
    task: asyncpg.Record,
    plate: str,
    seized: asyncpg.Record,
    others: list[asyncpg.Record],
    channel: str,
    custody: Custody | None,
    now: datetime,
) -> None:
    roster = await load_roster(conn)
    cases: dict[str, list[str]] = {}
    if channel != "traffic_police":
        cases[seized["court"]] = []
    for entry in others:
        cases.setdefault(entry["court"], []).append(entry["case_number"])
    place = f"存放：{custody.name}" if custody and custody.name else "存放地点待补录"
    told: set[str] = set()
    for court, own_cases in cases.items():
        if own_cases:
            yours = f"贵院案号{'、'.join(own_cases)}转为他案已扣押，请自行解封或续封。"
        else:
            yours = f"同车另有{len(others)}案转为他案已扣押，已告知各院。"
        for officer in court_duty(roster, court, now):
            if officer.officer_id in told:
                continue  # each person once, with the first court's text
            told.add(officer.officer_id)
            code = await new_reply_code(conn)
            body = fit_sms(
                f"【执行查控 {code}】{plate} 已按案号{seized['case_number']}扣押，{place}。{yours}"
            )
            await conn.execute(
                "INSERT INTO notifications (notification_id, page_id, task_id, step, officer_id, phone,"
                " reply_code, body, send_state, next_attempt_at, created_at)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending', $9, $9) ON CONFLICT DO NOTHING",
                uuid.uuid4(),
                task["page_id"],
                task["task_id"] if task["page_id"] is None else None,  # as alerts.handover's notices
                SEIZED_TOLD_STEP,
                officer.officer_id,
                officer.phone,
                code,
                body,
                now,
            )
    if told:
        await conn.execute(f"NOTIFY {PAGES_CHANNEL}")


async def task_of_page(conn: Connection, page_id: uuid.UUID, *, live: bool = True) -> uuid.UUID | None:
    """The live task a page opened, if any (``live=False``: the task it opened, whatever its state)."""
    value = await conn.fetchval(
        "SELECT task_id FROM tasks WHERE page_id = $1 AND state = ANY($2::text[])"
        " ORDER BY created_at DESC LIMIT 1",
        page_id,
        list(LIVE) if live else [*LIVE, *TERMINAL],
    )
    return value if isinstance(value, uuid.UUID) else None


async def cancel_released(conn: Connection, roster: Roster, now: datetime) -> int:
    """Live tasks whose entry was released are cancelled and their people told not to go."""
    async with conn.transaction():
        rows = await conn.fetch(
            "SELECT t.* , e.plate FROM tasks t JOIN watch_entries e USING (entry_id)"
            " WHERE t.state = ANY($1::text[]) AND e.status = 'released'"
            # another case of the vehicle still in force keeps the task going
            " AND NOT EXISTS (SELECT 1 FROM task_entries te JOIN watch_entries o ON o.entry_id = te.entry_id"
            "                 WHERE te.task_id = t.task_id AND o.status = 'active')"
            " FOR UPDATE OF t SKIP LOCKED",
            list(LIVE),
        )
        for task in rows:
            recipients = await _task_recipients(conn, task, roster, now)
            await transition(conn, task["task_id"], "cancelled", actor="system", channel="system", now=now,
                             detail={"reason": "watch entry released"})  # fmt: skip
            for officer in recipients:
                code = await new_reply_code(conn)
                body = fit_sms(f"【执行查控 {code}】{task['plate']} 已解除查封，扣押任务取消，无需前往。")
                step = CANCELLED_STEP
                await queue_notification(
                    conn, task["task_id"], task["page_id"], step, officer, code, body, now
                )
    return len(rows)


async def expire_stale(conn: Connection, now: datetime, policy: TaskPolicy) -> int:
    """Open tasks nobody took and nobody has seen the vehicle for since ``policy.expiry`` expire."""
    async with conn.transaction():
        rows = await conn.fetch(
            "SELECT task_id FROM tasks WHERE state = 'open' AND last_seen_at < $1 FOR UPDATE SKIP LOCKED",
            now - policy.expiry,
        )
        for row in rows:
            await transition(conn, row["task_id"], "expired", actor="system", channel="system", now=now)
    return len(rows)


def fit_sms(text: str, limit: int = 2) -> str:
    """Short task messages: cut to ``limit`` UCS-2 segments (they are written short; this is a guard)."""
    while segments(text) > limit:
        text = text[:-2] + "…"
    return text
