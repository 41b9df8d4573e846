"""What officers may see and do with tasks: listing, taking, setting a state — the same rules for the
API and the CLI.

An officer sees and changes the tasks of their own court — including a vehicle's task opened by another
court's case when their court has a case of the vehicle too — and any task they were texted about (a
police-station contact who held the vehicle, another court's officer told of a vehicle seen in their
district).
"""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from alerts import custody as custody_records
from alerts import tasks
from alerts.rosters import DEFAULT_TIMEZONE, Officer, Roster, time_zone
from streams.db import Connection
from streams.localtime import DEFAULT_ZONE, local_iso


class NotAllowed(Exception):  # an answer to the caller, like PermissionError
    """The officer may not see or change this task (or is not on the roster)."""


@dataclass(frozen=True, slots=True)
class CaseView:
    """One case (watch entry) the task's vehicle stands under, with the entry's status now."""

    entry_id: str
    case_number: str
    court: str
    status: str  # active | seized | seized_other_case | released


@dataclass(frozen=True, slots=True)
class TaskView:
    task_id: uuid.UUID
    plate: str
    case_number: str
    court: str
    kind: str
    state: str
    district: str | None
    assignee: str | None
    first_seen_at: datetime
    last_seen_at: datetime
    last_place: str | None
    custody: str | None  # where a seized vehicle is kept (the impound lot or custodian)
    custody_kind: str | None
    custody_address: str | None
    # Stopped by the traffic police (已拦停): when, where it is held and by whom (kept once it moves on).
    stopped_at: datetime | None = None
    stopped_place: str | None = None
    stopped_by: str | None = None
    timezone: str = DEFAULT_TIMEZONE  # the court's (roster), in which its times are shown
    cases: tuple[CaseView, ...] = ()  # every case of the vehicle's task, the opening one first

    @property
    def zone(self) -> ZoneInfo:
        return time_zone(self.timezone)

    def as_json(self) -> dict[str, Any]:
        """JSON for the API: times as ISO 8601 in the court's zone, with its offset."""
        data = dataclasses.asdict(self)
        data["task_id"] = str(self.task_id)
        data["first_seen_at"] = local_iso(self.first_seen_at, self.zone)
        data["last_seen_at"] = local_iso(self.last_seen_at, self.zone)
        data["stopped_at"] = local_iso(self.stopped_at, self.zone) if self.stopped_at else None
        return data


# A court not on the roster has its times shown in the default zone.
_SELECT = (
    "SELECT t.task_id, e.plate, e.case_number, t.court, t.kind, t.state, t.district, t.assignee,"
    " t.first_seen_at, t.last_seen_at, t.custody_name, t.custody_kind, t.custody_address,"
    " t.stopped_at, t.stopped_place, t.stopped_by,"
    " (SELECT COALESCE(s.device_name, s.device_id) FROM task_sightings s WHERE s.task_id = t.task_id"
    "  ORDER BY s.observed_at DESC LIMIT 1) AS last_place,"
    f" COALESCE(c.timezone, '{DEFAULT_TIMEZONE}') AS timezone,"
    " (SELECT json_agg(json_build_object('entry_id', o.entry_id, 'case_number', o.case_number,"
    "  'court', o.court, 'status', o.status) ORDER BY o.entry_id <> t.entry_id, te.joined_at, o.case_number)"
    "  FROM task_entries te JOIN watch_entries o ON o.entry_id = te.entry_id WHERE te.task_id = t.task_id)"
    " AS cases"
    " FROM tasks t JOIN watch_entries e USING (entry_id) LEFT JOIN courts c ON c.court_id = t.court"
)
_VISIBLE = (
    "(t.court = $1 OR EXISTS (SELECT 1 FROM notifications n WHERE n.officer_id = $2"
    " AND (n.task_id = t.task_id OR n.page_id = t.page_id))"
    " OR EXISTS (SELECT 1 FROM task_entries te JOIN watch_entries o ON o.entry_id = te.entry_id"
    "  WHERE te.task_id = t.task_id AND o.court = $1))"
)


def officer_of(roster: Roster, officer_id: str) -> Officer:
    officer = roster.officer(officer_id)
    if officer is None or not officer.active:
        raise NotAllowed(f"{officer_id} is not an active officer on the roster")
    return officer


def _view(row: Any) -> TaskView:
    return TaskView(
        task_id=row["task_id"], plate=row["plate"], case_number=row["case_number"], court=row["court"],
        kind=row["kind"], state=row["state"], district=row["district"], assignee=row["assignee"],
        first_seen_at=row["first_seen_at"], last_seen_at=row["last_seen_at"], last_place=row["last_place"],
        custody=row["custody_name"], custody_kind=row["custody_kind"], custody_address=row["custody_address"],
        stopped_at=row["stopped_at"], stopped_place=row["stopped_place"], stopped_by=row["stopped_by"],
        timezone=row["timezone"],
        cases=tuple(CaseView(**case) for case in orjson.loads(row["cases"] or "[]")),
    )  # fmt: skip


async def list_tasks(
    conn: Connection,
    officer: Officer,
    *,
    district: str | None = None,
    live_only: bool = True,
    limit: int = 200,
) -> list[TaskView]:
    """The tasks the officer may see, latest sighting first."""
    rows = await conn.fetch(
        f"{_SELECT} WHERE {_VISIBLE} AND ($3::text IS NULL OR t.district = $3)"
        " AND (NOT $4 OR t.state = ANY($5::text[])) ORDER BY t.last_seen_at DESC LIMIT $6",
        officer.court_id or "",
        officer.officer_id,
        district,
        live_only,
        list(tasks.LIVE),
        limit,
    )
    return [_view(r) for r in rows]


async def get_task(conn: Connection, officer: Officer, task_id: uuid.UUID) -> TaskView:
    """Raises: NotAllowed (also for a task that does not exist: nothing is revealed)."""
    row = await conn.fetchrow(
        f"{_SELECT} WHERE t.task_id = $3 AND {_VISIBLE}", officer.court_id or "", officer.officer_id, task_id
    )
    if row is None:
        raise NotAllowed(f"no task {task_id} for {officer.officer_id}")
    return _view(row)


async def trail_and_events(
    conn: Connection, task_id: uuid.UUID, zone: tzinfo = DEFAULT_ZONE
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The task's sightings and state changes as JSON for the API: times ISO 8601 in ``zone``."""
    trail, events = await trail_and_events_at(conn, task_id)
    return (
        [{**point, "at": local_iso(point["at"], zone)} for point in trail],
        [{**event, "at": local_iso(event["at"], zone)} for event in events],
    )


async def trail_and_events_at(
    conn: Connection, task_id: uuid.UUID
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The task's sightings and state changes, oldest first, ``at`` as an aware datetime."""
    trail = [
        {"at": r["observed_at"], "place": r["device_name"] or r["device_id"], "outcome": r["outcome"]}
        for r in await conn.fetch(
            "SELECT * FROM task_sightings WHERE task_id = $1 ORDER BY observed_at", task_id
        )
    ]
    events = [
        {
            "at": r["at"],
            "by": r["actor"],
            "via": r["channel"],
            "from": r["from_state"],
            "to": r["to_state"],
            # What the event says besides the state: a custody amended, a take-over, who was told.
            "detail": orjson.loads(r["detail"]) if isinstance(r["detail"], str) else r["detail"],
        }
        for r in await conn.fetch(
            "SELECT * FROM task_events WHERE task_id = $1 ORDER BY at, event_id", task_id
        )
    ]
    return trail, events


async def set_state(
    conn: Connection,
    officer: Officer,
    task_id: uuid.UUID,
    state: str,
    *,
    channel: str,
    now: datetime,
    custody: tasks.Custody | None = None,
) -> TaskView:
    """Take a task (``acknowledged``) or move it, as this officer.

    Raises:
        NotAllowed: the officer may not change it.
        TaskError: the move is not allowed, or a seizure without custody.
    """
    if state == "seized" and (custody is None or not custody.name):
        raise tasks.TaskError("a seizure names where the vehicle is held (custody kind and name)")
    async with conn.transaction():
        await get_task(conn, officer, task_id)
        await tasks.transition(
            conn, task_id, state, actor=officer.officer_id, channel=channel, now=now, custody=custody
        )
        return await get_task(conn, officer, task_id)


async def amend_custody(
    conn: Connection,
    officer: Officer,
    task_id: uuid.UUID,
    custody: tasks.Custody,
    *,
    channel: str,
    now: datetime,
) -> TaskView:
    """Record where the vehicle of a seized task is kept, as this officer.

    Raises:
        NotAllowed: the officer may not change it.
        TaskError: the task is not seized, or a custody field is empty or too long.
    """
    async with conn.transaction():
        await get_task(conn, officer, task_id)
        await custody_records.amend_custody(
            conn, task_id, custody, actor=officer.officer_id, channel=channel, now=now
        )
        return await get_task(conn, officer, task_id)
