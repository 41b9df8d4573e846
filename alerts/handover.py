"""Who took a page, told to the others: one short SMS to everyone else who was texted about it.

When an officer takes a page (``1 <code>`` or the acknowledgement API), or a court officer takes the
vehicle over from the police station that held it, everyone else who was sent an SMS for the page (the
others of the step, earlier steps, the station at night, the court's morning notice) gets
``【执行查控 K7Q】浙J12345 已由周婷(执行法官)接手，无需处理。``. Each is a notification row like any other,
sent exactly once by :mod:`alerts.sending`; its step (:data:`alerts.pages.TAKEN_STEP`, or
:data:`~alerts.pages.TAKEN_OVER_STEP` for a take-over) makes a repeated acknowledgement write nothing
new (one row per page, step and officer).
"""

from __future__ import annotations

import uuid
from datetime import datetime

from alerts.messages import render_held_by_station, render_taken
from alerts.overnight import holder_name
from alerts.pages import PAGES_CHANNEL, TAKEN_OVER_STEP, TAKEN_STEP
from alerts.rosters import ROLE_NAMES, Officer, Role, Roster
from alerts.tasks import new_reply_code
from streams.db import Connection
from streams.vehicles import Priority

# An SMS that went out, or may have: its recipient knows of the page. Escalation SMS still pending when
# the page is taken are skipped by the sender, so their recipients never hear of it and are not told.
_SENT = ("sending", "reconciling", "sent", "ambiguous")


async def tell_taken(
    conn: Connection,
    roster: Roster,
    *,
    page_id: uuid.UUID | None,
    task_id: uuid.UUID | None,
    taker: Officer,
    plate: str,
    over_station: bool,
    now: datetime,
) -> list[str]:
    """Queue the "taken by" SMS of a page (or, for a task the traffic police started, of the task) to
    everyone texted about it but the taker; return the officer ids newly queued, sorted.

    Runs in the caller's transaction, the one that recorded the take.
    """
    if page_id is None and task_id is None:
        return []
    step = TAKEN_OVER_STEP if over_station else TAKEN_STEP
    others = await conn.fetch(
        "SELECT DISTINCT officer_id FROM notifications"
        " WHERE (page_id = $1 OR ($1::uuid IS NULL AND task_id = $2)) AND officer_id <> $3"
        " AND send_state = ANY($4::text[]) AND step NOT IN ($5, $6) ORDER BY officer_id",
        page_id,
        task_id,
        taker.officer_id,
        list(_SENT),
        TAKEN_STEP,
        TAKEN_OVER_STEP,
    )
    # The station took it: it holds the vehicle for the court (that is all it was asked), so the court's
    # officers are asked to take it over, with a code that does (alerts.replies: a court officer's "1" on
    # a page the station holds is the hand-over), not told that nothing is left to do.
    station_holds = taker.role is Role.STATION_DUTY and not over_station and page_id is not None
    station, urgent = "", False
    if station_holds:
        page = await conn.fetchrow(
            "SELECT hit->'sighting'->>'district' AS district, hit->>'priority' AS priority FROM pages"
            " WHERE page_id = $1",
            page_id,
        )
        district = page["district"] if page is not None else None
        station = holder_name(roster, taker, district)
        urgent = page is not None and page["priority"] == Priority.URGENT.value
    told: list[str] = []
    for row in others:
        officer = roster.officer(row["officer_id"])
        if officer is None or officer.unreachable is not None:
            continue  # left the roster, or no longer reachable: nothing to tell
        code = await new_reply_code(conn)
        if station_holds and officer.role is not Role.STATION_DUTY:
            body = render_held_by_station(plate=plate, station=station, reply_code=code, urgent=urgent)
        else:
            body = render_taken(
                plate=plate, taker=taker.name, role=ROLE_NAMES.get(taker.role), reply_code=code,
                over_station=over_station,
            )  # fmt: skip
        inserted = await conn.fetchval(
            "INSERT INTO notifications (notification_id, page_id, task_id, step, officer_id, phone,"
            " reply_code, body, send_state, next_attempt_at, created_at)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending', $9, $9)"
            " ON CONFLICT DO NOTHING RETURNING true",
            uuid.uuid4(),
            page_id,
            task_id if page_id is None else None,  # a page's notice is the page's, not a task message
            step,
            officer.officer_id,
            officer.phone,
            code,
            body,
            now,
        )
        if inserted:
            told.append(officer.officer_id)
    if told:
        await conn.execute(f"NOTIFY {PAGES_CHANNEL}")  # wakes the sender
    return told
