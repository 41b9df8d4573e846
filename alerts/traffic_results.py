"""The traffic police's results (一键扣车), applied to tasks and watch entries once each, the court told.

A result for any case of a vehicle applies to the vehicle's live task (whichever case opened it, a
stopped one included), the case joining it. A seizure closes task and entry (the vehicle's other cases
as ``seized_other_case``, :func:`alerts.tasks.seize_entries`); a stop moves the task to ``stopped`` with
its place, time and the unit holding the vehicle, and the owning court is asked to take over. Nothing is
applied, and the outcome says why, for a result naming another plate than its request (both plates
recorded), an unknown request, or a vehicle already in custody (seized under this case or another)
with no live task; a stop or seizure of a vehicle whose seal was lifted gets a "release it" message
(:class:`~streams.traffic.SeizureReleaseV1`) on the police's list topic. A stop of a vehicle no camera
saw starts a task (with no page). Every outcome is recorded in ``traffic_results`` (``outcome``,
``detail``), where the connectors read it back for the police.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from alerts import metrics
from alerts.messages import URGENT_MARK
from alerts.overnight import TRAFFIC_ACTOR
from alerts.rosters import Roster
from alerts.tasks import (
    TRAFFIC_RESULT_STEP_BASE,
    Custody,
    Stop,
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
from streams.topics import SEIZURE_REQUESTS
from streams.traffic import ResultKind, ResultOutcome, SeizureReleaseV1, SeizureResultV1
from streams.vehicles import EntryStatus, Priority
from streams.watchstore import OUTBOX_CHANNEL, ClosedReason

log = logging.getLogger(__name__)

# Why a seal was lifted, as the officer on the road reads it.
_CLOSED_WORDS = {
    ClosedReason.PAID.value: "已履行（款已付清）",
    ClosedReason.SETTLED.value: "已执行和解",
    ClosedReason.EXPIRED.value: "查封期限届满",
    ClosedReason.WITHDRAWN.value: "已撤回",
}


@dataclass(frozen=True, slots=True)
class Applied:
    """What became of a result: its outcome, why in words, and the task it touched."""

    outcome: ResultOutcome
    detail: str = ""
    task_id: uuid.UUID | None = None


async def apply_traffic_result(
    conn: Connection, result: SeizureResultV1, roster: Roster, now: datetime
) -> ResultOutcome:
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
            metrics.TRAFFIC_RESULTS.labels(ResultOutcome.REPLAY.value).inc()
            return ResultOutcome.REPLAY
        applied = await _apply_result(conn, result, roster, now)
        await conn.execute(
            "UPDATE traffic_results SET outcome = $2, task_id = $3, detail = $4 WHERE result_id = $1",
            result.result_id,
            applied.outcome.value,
            applied.task_id,
            applied.detail,
        )
        metrics.TRAFFIC_RESULTS.labels(applied.outcome.value).inc()
        return applied.outcome


async def _apply_result(conn: Connection, result: SeizureResultV1, roster: Roster, now: datetime) -> Applied:
    known = await conn.fetchrow(
        "SELECT plate, plate_colour FROM watch_entries WHERE entry_id = $1", result.request_id
    )
    if known is None:
        log.warning("traffic result %s for unknown request %s", result.result_id, result.request_id)
        return Applied(ResultOutcome.UNKNOWN_REQUEST, f"no request {result.request_id}")
    # Everything done to one vehicle's task is serialized (its hits, taken by several pagers, and the
    # police's results on any of its cases): the vehicle's lock first, then the entry's row.
    vehicle = vehicle_key(known["plate"], known["plate_colour"])
    await lock_vehicle(conn, vehicle)
    entry = await conn.fetchrow(
        "SELECT entry_id, plate, plate_colour, court, status, case_number, closed_reason, updated_at,"
        " priority FROM watch_entries WHERE entry_id = $1 FOR UPDATE",
        result.request_id,
    )
    assert entry is not None  # noqa: S101  # watch entries are never deleted
    try:
        plate_ok = read_plate(result.plate).text == entry["plate"]
    except PlateError:
        plate_ok = False
    if not plate_ok:
        log.warning("traffic result %s names another plate than its request: not applied", result.result_id)
        why = f"result plate {result.plate!r} is not the request's plate {entry['plate']!r}"
        return Applied(ResultOutcome.PLATE_MISMATCH, why)
    under_other = ""
    if entry["status"] == EntryStatus.RELEASED:
        # Released under this request's case: the vehicle may still be wanted under another (one vehicle,
        # several cases). Then the result is that case's, and nobody is told to let the car go.
        wanted = await conn.fetchrow(
            "SELECT entry_id, plate, plate_colour, court, status, case_number, closed_reason, updated_at,"
            " priority FROM watch_entries WHERE plate = $1 AND plate_colour = $2 AND status = 'active'"
            " AND action = 'seize' ORDER BY valid_from, entry_id LIMIT 1 FOR UPDATE",
            entry["plate"],
            entry["plate_colour"],
        )
        if wanted is None:
            return await _released(conn, result, entry)
        log.info("traffic result %s: its request's case was released, applied under case %s",
                 result.result_id, wanted["case_number"])  # fmt: skip
        under_other = (
            f"the request's case {entry['case_number']} was released; applied under case"
            f" {wanted['case_number']} ({wanted['court']}), which still wants it seized"
        )
        entry = wanted
    # The vehicle's live task (a stopped one too), whichever of its cases opened it (one vehicle, several
    # cases), locked.
    task = await live_task_of(conn, vehicle)
    if task is None and entry["status"] in (EntryStatus.SEIZED, EntryStatus.SEIZED_OTHER_CASE):
        log.warning("traffic result %s: the vehicle is in custody already (entry %s is %s)",
                    result.result_id, entry["entry_id"], entry["status"])  # fmt: skip
        if entry["status"] == EntryStatus.SEIZED:
            return Applied(ResultOutcome.ALREADY_SETTLED, "the vehicle is already seized: nothing to do")
        why = "the vehicle is already seized under another case (entry seized_other_case): nothing to do"
        return Applied(ResultOutcome.ALREADY_SETTLED, why)
    if task is None and result.result is ResultKind.NOT_FOUND:
        return Applied(ResultOutcome.NOT_FOUND_RECORDED, under_other)
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
        await record_event(conn, task_id, now, f"{TRAFFIC_ACTOR}{result.unit}", "traffic_police", None,
                           "open", {"result_id": result.result_id})  # fmt: skip
        metrics.TASKS.labels("opened").inc()
        task = await conn.fetchrow("SELECT * FROM tasks WHERE task_id = $1", task_id)
        assert task is not None  # noqa: S101  # inserted above
    task_id = task["task_id"]
    actor = f"{TRAFFIC_ACTOR}{result.unit}/{result.officer}"
    detail: dict[str, object] = {"result_id": result.result_id, "place": result.place, "unit": result.unit}
    if result.result is ResultKind.SEIZED:
        custody = Custody(result.custody_kind.value if result.custody_kind else "impound_lot",
                          result.custody_name, result.custody_address)  # fmt: skip
        if task["state"] != "seized":
            await transition(conn, task_id, "seized", actor=actor, channel="traffic_police", now=now,
                             custody=custody, detail=detail, under=entry["entry_id"])  # fmt: skip
        text = f"已由{result.unit}扣押于{result.place}，存放：{result.custody_name}"
    elif result.result is ResultKind.STOPPED:
        stop = Stop(at=result.at, place=result.place, held_by=result.unit)
        if task["state"] != "stopped":
            await transition(conn, task_id, "stopped", actor=actor, channel="traffic_police", now=now,
                             stop=stop, detail={**detail, "traffic": "stopped"})  # fmt: skip
        else:  # stopped again (moved, another unit): the task keeps the latest place
            await conn.execute(
                "UPDATE tasks SET stopped_at = $2, stopped_place = $3, stopped_by = $4, updated_at = $5"
                " WHERE task_id = $1",
                task_id, stop.at, stop.place, stop.held_by, now,
            )  # fmt: skip
            await record_event(conn, task_id, now, actor, "traffic_police", "stopped", "stopped",
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
    step = TRAFFIC_RESULT_STEP_BASE + int(applied)
    for officer in recipients.values():
        code = await new_reply_code(conn)
        # The police's news asks for something (take it over, collect it): marked when the entry is urgent.
        urgent = URGENT_MARK if entry["priority"] == Priority.URGENT.value else ""
        body = fit_sms(f"{urgent}【执行查控 {code}】{entry['plate']} {text}。")
        await queue_notification(conn, task_id, task["page_id"], step, officer, code, body, now)
    return Applied(ResultOutcome(f"applied_{result.result.value}"), under_other, task_id=task_id)


async def _released(conn: Connection, result: SeizureResultV1, entry: Any) -> Applied:
    """The seal was lifted: nothing is applied; a stopped or seized vehicle is to be let go."""
    note = await conn.fetchval(
        "SELECT reason FROM watch_entry_history WHERE entry_id = $1 AND change = 'released'"
        " ORDER BY version DESC LIMIT 1",
        entry["entry_id"],
    )
    words = _CLOSED_WORDS.get(entry["closed_reason"] or "", "已解除查封")
    reason = f"{words}：{note}" if note else words
    if result.result is ResultKind.NOT_FOUND:
        return Applied(ResultOutcome.RELEASED, f"the seal was lifted ({reason})")
    release = SeizureReleaseV1(
        request_id=entry["entry_id"],
        result_id=result.result_id,
        plate=entry["plate"],
        case_number=entry["case_number"],
        court=entry["court"],
        reason=reason,
        released_at=entry["updated_at"],
        text=f"解除扣留，放行：{entry['plate']}（{entry['case_number']}，{entry['court']}）已解除查封，{reason}",
    )
    # In place of the request's tombstone: the police's integration reads the key's latest value.
    await conn.execute(
        "INSERT INTO outbox (topic, key, payload) VALUES ($1, $2, $3)",
        SEIZURE_REQUESTS,
        str(entry["entry_id"]),
        orjson.dumps(release.model_dump(mode="json")),
    )
    await conn.execute(f"NOTIFY {OUTBOX_CHANNEL}")
    log.warning("traffic result %s: the seal was lifted; release published", result.result_id)
    return Applied(ResultOutcome.RELEASED, f"the seal was lifted ({reason}): release it (解除扣留，放行)")
