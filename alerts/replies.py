"""What comes back: delivery statuses, officers' SMS replies and API acknowledgements.

A reply counts only from a number on the roster, and only for a page that number was sent (the reply
code is looked up together with the officer). Everything received is logged in ``page_replies`` with
its outcome, accepted or not. Answers to input we cannot read are capped (one help text per number per
10 minutes) so a typo never starts an SMS loop.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg

from alerts import custody, handover, metrics, overnight, tasks
from alerts.messages import Command, Reply, StopStart, parse_reply
from alerts.pages import NOTICE_STEP, PAGES_CHANNEL, step_out_of_reach
from alerts.rosters import Officer, Role, Roster
from alerts.twilio_sms import status_advances, status_is_failure, status_is_final
from streams.db import Connection

log = logging.getLogger(__name__)

HELP_INTERVAL = timedelta(minutes=10)
HELP_TEXT = "未识别的回复。请回复 1 加代码 接手，2 加代码 非本人，例如：1 K7Q"


@dataclass(frozen=True, slots=True)
class ReplyResult:
    outcome: str
    answer: str | None = None  # text to send back, if any
    page_id: uuid.UUID | None = None


async def record_status(
    conn: Connection, message_id: str, status: str, error_code: str | None, now: datetime
) -> bool:
    """Apply a provider status callback; never moves a status backwards, tolerates duplicates.

    Returns True when it changed the notification.
    """
    async with conn.transaction():
        row = await conn.fetchrow(
            "SELECT notification_id, page_id, step, provider_status FROM notifications"
            " WHERE provider_message_id = $1 FOR UPDATE",
            message_id,
        )
        if row is None:
            log.warning("status %s for unknown message %s", status, message_id)
            return False
        if not status_advances(row["provider_status"], status):
            return False
        await conn.execute(
            "UPDATE notifications SET provider_status = $2, error_code = COALESCE($3, error_code),"
            " status_at = $4, status_check_at = CASE WHEN $5 THEN NULL ELSE status_check_at END"
            " WHERE notification_id = $1",
            row["notification_id"],
            status,
            error_code,
            now,
            status_is_final(status),  # a final status ends the lookups for a missing callback
        )
        metrics.DELIVERY.labels(status).inc()
        if status_is_failure(status):
            log.warning("notification %s %s (error %s)", row["notification_id"], status, error_code)
            await step_out_of_reach(conn, row["page_id"], row["step"], now)
    return True


def officer_by_phone(roster: Roster, phone: str) -> Officer | None:
    for officer in roster.officers:
        if officer.phone == phone:
            return officer
    return None


async def handle_sms(
    conn: Connection, roster: Roster, from_phone: str, body: str, now: datetime
) -> ReplyResult:
    """An inbound SMS: who sent it, what it says, and what it does."""
    officer = officer_by_phone(roster, from_phone)
    if officer is None:
        log.warning("reply from a number not on the roster refused")
        return await _log(conn, now, "sms", from_phone, None, None, None, body, ReplyResult("unknown_sender"))
    parsed = parse_reply(body)
    if isinstance(parsed, StopStart):
        # The carrier and Twilio act on STOP themselves (later sends fail with 21610 and escalate).
        return await _log(conn, now, "sms", from_phone, officer.officer_id, None, parsed.kind, body,
                          ReplyResult(f"keyword_{parsed.kind}"))  # fmt: skip
    if parsed is None:
        recent = await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM page_replies WHERE from_phone = $1 AND outcome = 'unreadable'"
            " AND received_at > $2)",
            from_phone,
            now - HELP_INTERVAL,
        )
        answer = None if recent else HELP_TEXT
        return await _log(conn, now, "sms", from_phone, officer.officer_id, None, None, body,
                          ReplyResult("unreadable", answer))  # fmt: skip
    return await _apply(conn, roster, now, "sms", officer, parsed, body, from_phone)


async def handle_api(
    conn: Connection, roster: Roster, page_id: uuid.UUID, officer_id: str, command: Command, now: datetime
) -> ReplyResult:
    """An acknowledgement through the API: the officer must have been paged for this page."""
    officer = roster.officer(officer_id)
    # The code of the officer's latest escalation step, else of the morning notice: a task message's
    # (steps from TASK_STEP_BASE up) or a "taken by" notice's would make a decline step out of nothing.
    code = await conn.fetchval(
        "SELECT reply_code FROM notifications WHERE page_id = $1 AND officer_id = $2"
        " AND (step >= 0 AND step < $3 OR step = $4)"
        " ORDER BY step >= 0 DESC, step DESC LIMIT 1",
        page_id,
        officer_id,
        tasks.TASK_STEP_BASE,
        NOTICE_STEP,
    )
    body = f"api {command} {page_id}"
    if officer is None or code is None:
        return await _log(conn, now, "api", None, officer_id, None, command, body, ReplyResult("not_yours"))
    return await _apply(conn, roster, now, "api", officer, Reply(command, code), body, None)


async def _apply(
    conn: Connection,
    roster: Roster,
    now: datetime,
    channel: str,
    officer: Officer,
    reply: Reply,
    body: str,
    phone: str | None,
) -> ReplyResult:
    async with conn.transaction():
        row = await conn.fetchrow(
            "SELECT n.page_id, n.task_id, n.step, p.state, p.acknowledged_by, p.created_at,"
            " COALESCE(p.hit->>'entry_plate', e.plate) AS plate, p.hit->'sighting'->>'district' AS district"
            " FROM notifications n LEFT JOIN pages p USING (page_id)"
            " LEFT JOIN tasks t ON t.task_id = n.task_id LEFT JOIN watch_entries e ON e.entry_id = t.entry_id"
            " WHERE n.officer_id = $1 AND n.reply_code = $2"
            " ORDER BY n.created_at DESC LIMIT 1 FOR UPDATE OF n",
            officer.officer_id,
            reply.code,
        )
        if row is None:
            mine = ReplyResult("not_yours", f"代码 {reply.code} 不是发给您的页面。")
            return await _log(conn, now, channel, phone, officer.officer_id, None, reply.command, body, mine)
        page_id, plate = row["page_id"], row["plate"]
        task_id = row["task_id"] or (await tasks.task_of_page(conn, page_id) if page_id else None)
        if page_id is not None:
            await conn.execute("SELECT 1 FROM pages WHERE page_id = $1 FOR UPDATE", page_id)
        actor = officer.officer_id
        if reply.command == "take":
            if page_id is not None:
                result = await _take(conn, roster, now, officer, row, plate)
            else:
                result = ReplyResult("taken", f"已确认：{plate} 由您接手。")
            if result.outcome == "taken_over" and page_id is not None:
                # The station may have seized it already: the hand-over is of that task, state and all.
                task_id = await tasks.task_of_page(conn, page_id, live=False)
            if result.outcome in {"taken", "taken_over"}:
                await _tell_and_take_task(
                    conn, roster, now, channel, officer, page_id, task_id, plate, result
                )
        elif reply.command == "decline":
            result = ReplyResult("declined", f"已记录：{plate} 非本人处理，将通知他人。", page_id)
            await _log(conn, now, channel, phone, officer.officer_id, page_id, reply.command, body, result)
            if page_id is not None:
                await step_out_of_reach(conn, page_id, row["step"], now)
            return result
        elif reply.command == "custody":
            seized = row["task_id"] or (
                await tasks.task_of_page(conn, page_id, live=False) if page_id else None
            )
            result = await _amend_custody(conn, now, channel, officer, seized, reply, plate, page_id)
        elif task_id is None:
            result = ReplyResult("no_task", f"{plate} 没有进行中的扣押任务。", page_id)
        elif len(reply.place or "") > custody.NAME_MAX:
            result = ReplyResult("refused", f"{plate}：存放地点过长（最多 {custody.NAME_MAX} 字）。", page_id)
        else:
            to_state = "seized" if reply.command == "seized" else "not_found"
            held = tasks.Custody(None, reply.place) if to_state == "seized" and reply.place else None
            try:
                await tasks.transition(
                    conn, task_id, to_state, actor=actor, channel=channel, now=now, custody=held
                )
            except tasks.TaskError as exc:
                result = ReplyResult("refused", f"{plate}：{exc}", page_id)
            else:
                result = ReplyResult(f"task_{to_state}", _recorded(plate, to_state, reply), page_id)
        return await _log(conn, now, channel, phone, officer.officer_id, page_id, reply.command, body, result)


def _recorded(plate: str, to_state: str, reply: Reply) -> str:
    if to_state == "not_found":
        return f"{plate} 已记录未找到。"
    if reply.place:
        return tasks.fit_sms(f"{plate} 已记录扣押，存放：{reply.place}。", limit=1)
    return f"{plate} 已记录扣押。请补录存放地点：回复 存 {reply.code} 加地点"


async def _amend_custody(
    conn: Connection,
    now: datetime,
    channel: str,
    officer: Officer,
    task_id: uuid.UUID | None,
    reply: Reply,
    plate: str,
    page_id: uuid.UUID | None,
) -> ReplyResult:
    """``存 <code> <place>``: where the vehicle of a seized task is kept."""
    state = await conn.fetchval("SELECT state FROM tasks WHERE task_id = $1", task_id) if task_id else None
    if state is None:
        return ReplyResult("no_task", f"{plate} 没有扣押任务。", page_id)
    if state != "seized":
        return ReplyResult(
            "refused", f"{plate} 尚未记录扣押，不能补录存放地点。先回复 3 {reply.code} 加地点", page_id
        )
    if len(reply.place or "") > custody.NAME_MAX:
        return ReplyResult("refused", f"{plate}：存放地点过长（最多 {custody.NAME_MAX} 字）。", page_id)
    assert task_id is not None  # noqa: S101  # it has a state
    amended = await custody.amend_custody(
        conn, task_id, tasks.Custody(None, reply.place), actor=officer.officer_id, channel=channel, now=now
    )
    return ReplyResult(
        "task_custody", tasks.fit_sms(f"{plate} 已补录存放地点：{amended.name}。", limit=1), page_id
    )


async def _tell_and_take_task(
    conn: Connection,
    roster: Roster,
    now: datetime,
    channel: str,
    officer: Officer,
    page_id: uuid.UUID | None,
    task_id: uuid.UUID | None,
    plate: str,
    result: ReplyResult,
) -> None:
    """A take: the others texted about the page are told who took it, and the task records it."""
    over_station = result.outcome == "taken_over"
    told = await handover.tell_taken(
        conn, roster, page_id=page_id, task_id=task_id, taker=officer, plate=plate,
        over_station=over_station, now=now,
    )  # fmt: skip
    if task_id is not None:
        await _take_task(conn, task_id, officer, channel, now, told, over_station=over_station)


async def _take_task(
    conn: Connection,
    task_id: uuid.UUID,
    officer: Officer,
    channel: str,
    now: datetime,
    told: list[str],
    *,
    over_station: bool = False,
) -> None:
    """The page's taker becomes the task's assignee (a court taking over from the station included).

    Either is a task event naming who was told: the first take moves the task to ``acknowledged``; a
    take-over of a task someone else holds keeps its state (detail ``{"event": "taken_over", "from": …}``),
    a seized one's custody included: the court takes over a vehicle the station seized, it does not seize
    it again.
    """
    task = await conn.fetchrow("SELECT state, assignee FROM tasks WHERE task_id = $1 FOR UPDATE", task_id)
    if task is None or task["assignee"] == officer.officer_id:
        return
    if task["state"] == "open":
        await tasks.transition(conn, task_id, "acknowledged", actor=officer.officer_id, channel=channel,
                               now=now, detail={"event": "taken", "told": told})  # fmt: skip
    elif task["state"] in tasks.LIVE or (over_station and task["state"] == "seized"):
        await conn.execute("UPDATE tasks SET assignee = $2, updated_at = $3 WHERE task_id = $1", task_id,
                           officer.officer_id, now)  # fmt: skip
        held_by = task["assignee"] or await conn.fetchval(
            "SELECT actor FROM task_events WHERE task_id = $1 AND to_state = 'seized'"
            " ORDER BY at DESC, event_id DESC LIMIT 1",
            task_id,
        )
        detail: dict[str, object] = {"event": "taken_over", "from": held_by, "told": told}
        await tasks.record_event(
            conn, task_id, now, officer.officer_id, channel, task["state"], task["state"], detail
        )


async def _take(
    conn: Connection, roster: Roster, now: datetime, officer: Officer, row: asyncpg.Record, plate: str
) -> ReplyResult:
    page_id = row["page_id"]
    state = row["state"]
    if state == "open":
        await conn.execute(
            "UPDATE pages SET state = 'acknowledged', acknowledged_by = $2, acknowledged_at = $3,"
            " next_due_at = NULL, updated_at = $3 WHERE page_id = $1",
            page_id,
            officer.officer_id,
            now,
        )
        # Nothing more goes out for this page (the sender skips pending rows of pages no longer open).
        await conn.execute(f"NOTIFY {PAGES_CHANNEL}")
        metrics.TIME_TO_ACK_SECONDS.observe(max(0.0, (now - row["created_at"]).total_seconds()))
        log.info("page %s taken by %s", page_id, officer.officer_id)
        return ReplyResult("taken", f"已确认：{plate} 由您接手。", page_id)
    if row["acknowledged_by"] == officer.officer_id:
        return ReplyResult("already_yours", f"{plate} 已由您接手。", page_id)
    # Who holds the vehicle: whoever took the page, or the station that seized it without taking the page
    # first (a seizure cancels an open page).
    night = await overnight.overnight(conn, roster, page_id, row["district"])
    holder = roster.officer(row["acknowledged_by"]) if row["acknowledged_by"] else None
    if state == "cancelled" and night.kind is overnight.Overnight.SEIZED:
        holder = night.holder
    if (
        state in ("acknowledged", "cancelled")
        and (state == "acknowledged" or night.kind is overnight.Overnight.SEIZED)
        and holder is not None
        and holder.role is Role.STATION_DUTY
        and (officer.role is not Role.STATION_DUTY)
    ):
        # The police station held (or seized) the vehicle overnight; the court now takes it over. A seized
        # page stays as it is (its task keeps its state and custody): only who holds it changes.
        await conn.execute(
            "UPDATE pages SET acknowledged_by = $2, updated_at = $3 WHERE page_id = $1",
            page_id,
            officer.officer_id,
            now,
        )
        log.info("page %s taken over from the station by %s", page_id, officer.officer_id)
        station = overnight.holder_name(roster, holder, row["district"])
        answer = f"已确认：{plate} 由您从{station}接手"
        if night.kind is overnight.Overnight.SEIZED:
            answer += (
                f"，车辆已扣押，存放于{night.custody}。" if night.custody else "，车辆已扣押，存放地点未录。"
            )
        else:
            answer += "，请与其交接车辆。"
        return ReplyResult("taken_over", tasks.fit_sms(answer), page_id)
    if state == "acknowledged":
        return ReplyResult("already_taken", f"{plate} 已由他人接手，无需处理。", page_id)
    return ReplyResult(f"page_{state}", f"{plate} 的查控已结束（{state}）。", page_id)


async def _log(
    conn: Connection,
    now: datetime,
    channel: str,
    phone: str | None,
    officer_id: str | None,
    page_id: uuid.UUID | None,
    command: str | None,
    body: str,
    result: ReplyResult,
) -> ReplyResult:
    await conn.execute(
        "INSERT INTO page_replies (received_at, channel, from_phone, officer_id, page_id, command, body,"
        " outcome) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        now,
        channel,
        phone,
        officer_id,
        page_id,
        command,
        body[:500],
        result.outcome,
    )
    metrics.REPLIES.labels(channel, result.outcome).inc()
    return result
