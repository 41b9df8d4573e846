"""The traffic police's results (一键扣车), applied to tasks and watch entries once each, the court told.

A seizure closes task and entry; a stop is recorded and the owning court asked to take over; a result
naming another plate than its request is refused and logged. A stop of a vehicle no camera saw starts
a task (with no page).
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime

from alerts import metrics
from alerts.rosters import Roster
from alerts.tasks import (
    TASK_STEP_BASE,
    Custody,
    court_duty,
    fit_sms,
    join_case,
    live_task_of,
    lock_vehicle,
    new_reply_code,
    queue_notification,
    record_event,
    transition,
    vehicle_key,
)
from streams.db import Connection
from streams.plates import PlateError, read_plate
from streams.traffic import ResultKind, SeizureResultV1
from streams.vehicles import EntryStatus

log = logging.getLogger(__name__)


async def apply_traffic_result(
    conn: Connection, result: SeizureResultV1, roster: Roster, now: datetime
) -> str:
    """Apply what the traffic police report (once per result id) and tell the owning court."""
    async with conn.transaction():
        first = await conn.fetchval(
            "INSERT INTO traffic_results (result_id, request_id, result, received_at, outcome, payload)"
            " VALUES ($1, $2, $3, $4, 'received', $5::jsonb)"
            " ON CONFLICT (result_id) DO NOTHING RETURNING true",
            result.result_id,
            result.request_id,
            result.result.value,
            now,
            result.model_dump_json(),
        )
        if not first:
            return "replay"
        outcome, task_id = await _apply_result(conn, result, roster, now)
        await conn.execute(
            "UPDATE traffic_results SET outcome = $2, task_id = $3 WHERE result_id = $1",
            result.result_id,
            outcome,
            task_id,
        )
        metrics.TRAFFIC_RESULTS.labels(outcome).inc()
        return outcome


async def _apply_result(
    conn: Connection, result: SeizureResultV1, roster: Roster, now: datetime
) -> tuple[str, uuid.UUID | None]:
    entry = await conn.fetchrow(
        "SELECT entry_id, plate, plate_colour, court, status FROM watch_entries WHERE entry_id = $1",
        result.request_id,
    )
    if entry is None:
        log.warning("traffic result %s for unknown request %s", result.result_id, result.request_id)
        return "unknown_request", None
    try:
        plate_ok = read_plate(result.plate).text == entry["plate"]
    except PlateError:
        plate_ok = False
    if not plate_ok:
        log.warning("traffic result %s names another plate than its request: not applied", result.result_id)
        return "plate_mismatch", None
    # The vehicle's live task, whichever of its cases opened it (one vehicle, several cases).
    vehicle = vehicle_key(entry["plate"], entry["plate_colour"])
    await lock_vehicle(conn, vehicle)
    task = await live_task_of(conn, vehicle)
    if task is None and entry["status"] in (EntryStatus.SEIZED, EntryStatus.SEIZED_OTHER_CASE):
        log.warning("traffic result %s: the vehicle is in custody already (entry %s is %s)",
                    result.result_id, entry["entry_id"], entry["status"])  # fmt: skip
        return "in_custody", None
    if task is None and result.result is ResultKind.NOT_FOUND:
        return "not_found_recorded", None
    if task is not None:
        await join_case(conn, task, entry["entry_id"], now)
    if task is None:
        # The police stopped a vehicle on their list before any camera saw it: the task starts here.
        task_id = uuid.uuid4()
        await conn.execute(
            "INSERT INTO tasks (task_id, entry_id, kind, state, court, district, page_id, first_seen_at,"
            " last_seen_at, created_at, updated_at, vehicle)"
            " VALUES ($1, $2, 'seize', 'open', $3, $4, NULL, $5, $5, $6, $6, $7)",
            task_id,
            entry["entry_id"],
            entry["court"],
            result.district,
            result.at,
            now,
            vehicle,
        )
        await record_event(conn, task_id, now, f"traffic:{result.unit}", "traffic_police", None, "open",
                     {"result_id": result.result_id})  # fmt: skip
        metrics.TASKS.labels("opened").inc()
        task = await conn.fetchrow("SELECT * FROM tasks WHERE task_id = $1", task_id)
        assert task is not None  # noqa: S101  # inserted above
    task_id = task["task_id"]
    actor = f"traffic:{result.unit}/{result.officer}"
    detail: dict[str, object] = {"result_id": result.result_id, "place": result.place, "unit": result.unit}
    if result.result is ResultKind.SEIZED:
        custody = Custody(result.custody_kind.value if result.custody_kind else "impound_lot",
                          result.custody_name, result.custody_address)  # fmt: skip
        if task["state"] != "seized":
            await transition(conn, task_id, "seized", actor=actor, channel="traffic_police", now=now,
                             custody=custody, detail=detail, under=entry["entry_id"])  # fmt: skip
        text = f"已由{result.unit}扣押于{result.place}，存放：{result.custody_name}"
    elif result.result is ResultKind.STOPPED:
        await record_event(conn, task_id, now, actor, "traffic_police", task["state"], task["state"],
                     {**detail, "traffic": "stopped"})  # fmt: skip
        text = f"已由{result.unit}拦停于{result.place}，请派员接手"
    else:
        await record_event(conn, task_id, now, actor, "traffic_police", task["state"], task["state"],
                     {**detail, "traffic": "not_found"})  # fmt: skip
        text = f"{result.unit}在{result.place}未找到该车"
    # The owning court is told, wherever it is: its duty officers (and whoever took the task).
    recipients = {o.officer_id: o for o in court_duty(roster, entry["court"], now)}
    if task["assignee"] and (assignee := roster.officer(task["assignee"])) and assignee.unreachable is None:
        recipients[assignee.officer_id] = assignee
    applied = await conn.fetchval("SELECT count(*) FROM traffic_results WHERE task_id = $1", task_id)
    step = TASK_STEP_BASE + 50 + int(applied)
    for officer in recipients.values():
        code = await new_reply_code(conn)
        body = fit_sms(f"【执行查控 {code}】{entry['plate']} {text}。")
        await queue_notification(conn, task_id, task["page_id"], step, officer, code, body, now)
    return f"applied_{result.result.value}", task_id
