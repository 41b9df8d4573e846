"""The night hand-over end to end: the police station asked to hold a vehicle for the court, the court's
morning notice saying what the station did, and the court taking the vehicle over — through Kafka,
PostgreSQL, the pager and the fake Twilio, with the pager's clock driven by the test."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import orjson
import pytest

from alerts.messages import segments
from alerts.pages import NOTICE_STEP, TAKEN_OVER_STEP, TAKEN_STEP, page_id_for
from alerts.settings import PagerSettings
from alerts.tasks import TASK_STEP_BASE
from streams import watchstore
from streams.events import SourceKind, new_sighting
from streams.hits import HitV1, record_hit
from streams.matching import Match, MatchKind
from streams.vehicles import Priority
from streams.watchlist import WatchEntry
from tests.conftest import Isolated, eventually
from tests.fakes.twilio_server import FakeTwilio
from tests.integration.pager_support import (
    JIAOJIANG,
    Clock,
    RunningPager,
    import_example_roster,
    publish,
    publish_results,
    serve_pager,
)

pytestmark = pytest.mark.integration

SHANGHAI = ZoneInfo("Asia/Shanghai")
NIGHT = datetime(2026, 11, 23, 22, 0, tzinfo=SHANGHAI)  # 椒江区白云派出所 (st-baiyun) holds what is found
MORNING = NIGHT + timedelta(hours=10, minutes=1)  # 08:01: the night window is over; group jj-2 is on duty
STATION = "椒江区白云派出所"
PHONE = {"jj-j2": "+8613800001022", "jj-p2": "+8613800001023", "st-baiyun": "+8613800003001"}


@pytest.fixture(scope="module")
async def pager(isolated: Isolated) -> AsyncIterator[RunningPager]:
    await import_example_roster(isolated.settings.postgres.dsn.get_secret_value())
    # The longest acknowledgement timeout: the tests answer within it (an unanswered page escalating on
    # the way to the morning changes nothing they look at).
    settings = PagerSettings(ack_timeout_s=3600)
    async with FakeTwilio() as fake, serve_pager(isolated, fake, Clock(NIGHT), settings=settings) as running:
        yield running


async def fetch(isolated: Isolated, query: str, *args: object) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(isolated.settings.postgres.dsn.get_secret_value())
    try:
        return await conn.fetch(query, *args)
    finally:
        await conn.close()


async def watch(isolated: Isolated, plate: str, priority: Priority = Priority.NORMAL) -> WatchEntry:
    conn = await asyncpg.connect(isolated.settings.postgres.dsn.get_secret_value())
    try:
        record = await watchstore.add_entry(
            conn,
            watchstore.NewEntry(
                plate=plate, case_number=f"(2026)浙1002执{uuid.uuid4().int % 100000}号", court=JIAOJIANG,
                valid_from=NIGHT - timedelta(days=30), priority=priority,
            ),
            by="test",
        )  # fmt: skip
        return record.entry
    finally:
        await conn.close()


async def seen(
    pager: RunningPager, isolated: Isolated, entry: WatchEntry, at: datetime,
    kind: SourceKind = SourceKind.PARKING_ENTRY,
) -> uuid.UUID:  # fmt: skip
    """The vehicle read at the Wanda lot at ``at`` (the pager's clock set there); the page id of its hit."""
    pager.clock.now = at
    device = "wanda/gate-1-out" if kind is SourceKind.PARKING_EXIT else "wanda/gate-1-in"
    sighting = new_sighting(
        sighting_id=uuid.uuid4().hex, source_kind=kind, source_id="lot-wanda", device_id=device,
        plate_raw=entry.plate.text, observed_at=at - timedelta(seconds=30), received_at=at,
        district="331002", device_name="椒江万达广场停车场 1号入口",
    )  # fmt: skip
    hit = HitV1.build(sighting, Match(entry, MatchKind.EXACT, 1.0), matched_at=at)
    conn = await asyncpg.connect(isolated.settings.postgres.dsn.get_secret_value())
    try:
        await record_hit(conn, hit)
    finally:
        await conn.close()
    await publish(isolated, hit)
    return page_id_for(hit.hit_id)


async def sent(isolated: Isolated, page_id: uuid.UUID, step: int, count: int) -> dict[str, asyncpg.Record]:
    """The ``count`` notifications of ``step`` once all were accepted by the provider, by officer."""

    async def probe() -> list[asyncpg.Record]:
        return await fetch(
            isolated, "SELECT * FROM notifications WHERE page_id = $1 AND step = $2", page_id, step
        )

    rows = await eventually(probe, lambda r: len(r) == count and all(n["send_state"] == "sent" for n in r))
    return {r["officer_id"]: r for r in rows}


async def task_of(isolated: Isolated, page_id: uuid.UUID) -> asyncpg.Record:
    [task] = await eventually(
        lambda: fetch(isolated, "SELECT * FROM tasks WHERE page_id = $1", page_id), lambda r: len(r) == 1
    )
    return task


async def task_events(isolated: Isolated, task_id: uuid.UUID) -> list[tuple[Any, ...]]:
    rows = await fetch(
        isolated, "SELECT * FROM task_events WHERE task_id = $1 ORDER BY at, event_id", task_id
    )
    return [
        (r["from_state"], r["to_state"], r["actor"], r["channel"], orjson.loads(r["detail"])) for r in rows
    ]


async def reply(pager: RunningPager, officer: str, text: str) -> str:
    answer = await pager.fake.inbound(f"{pager.url}/twilio/inbound", PHONE[officer], text)
    assert answer.status_code == 200, answer.text
    return answer.text


async def station_paged(pager: RunningPager, isolated: Isolated, plate: str) -> tuple[uuid.UUID, str]:
    """A night sighting of a new watch entry; its page id and the station's reply code."""
    page_id = await seen(pager, isolated, await watch(isolated, plate), NIGHT)
    station = (await sent(isolated, page_id, 0, 1))["st-baiyun"]
    return page_id, station["reply_code"]


async def morning_notice(pager: RunningPager, isolated: Isolated, page_id: uuid.UUID) -> dict[str, str]:
    """The court's morning notices of the page, by officer: (body, reply code)."""
    pager.clock.now = MORNING
    notices = await sent(isolated, page_id, NOTICE_STEP, 2)
    for notice in notices.values():
        assert segments(notice["body"]) <= 2
    return {officer: notice["body"] for officer, notice in notices.items()} | {
        f"{officer}:code": notice["reply_code"] for officer, notice in notices.items()
    }


# ------------------------------------------------------------------------------------------- the night


@pytest.mark.parametrize("priority", [Priority.NORMAL, Priority.URGENT])
async def test_the_station_is_asked_to_hold_the_vehicle_for_the_court_not_to_seize_it(
    pager: RunningPager, isolated: Isolated, priority: Priority
) -> None:
    entry = await watch(isolated, f"浙J6100{1 if priority is Priority.NORMAL else 2}", priority)
    page_id = await seen(pager, isolated, entry, NIGHT)
    told = await sent(isolated, page_id, 0, 1 if priority is Priority.NORMAL else 3)
    station = told.pop("st-baiyun")
    assert "请控制车辆，留置待法院接手。" in station["body"]
    assert f"回复1 {station['reply_code']}接手" in station["body"]
    assert "扣押" not in station["body"]
    for court in told.values():  # urgent: the court is woken, and asked to seize it
        assert "请扣押。" in court["body"]


async def test_a_station_that_takes_an_urgent_night_page_asks_the_woken_court_to_take_it_over(
    pager: RunningPager, isolated: Isolated
) -> None:
    """Urgent at night: the station and the court are paged together. The station's "1" only means it
    holds the vehicle for the court: the court's officers were told "无需处理" and, an urgent page having
    no morning notice, nobody at the court was ever asked to take it over."""
    entry = await watch(isolated, "浙J61009", Priority.URGENT)
    page_id = await seen(pager, isolated, entry, NIGHT)
    told = await sent(isolated, page_id, 0, 3)
    station = told.pop("st-baiyun")
    assert "已确认" in await reply(pager, "st-baiyun", f"1 {station['reply_code']}")
    notices = await sent(isolated, page_id, TAKEN_STEP, 2)
    assert set(notices) == set(told)  # the court's two, not the station itself
    for notice in notices.values():
        body = notice["body"]
        assert body.startswith("【紧急】"), body
        assert f"已由{STATION}控制，留置待法院接手。回复1 {notice['reply_code']}接手" in body, body
        assert "无需处理" not in body
        assert segments(body) == 1
    court, notice = sorted(notices.items())[0]
    answer = await pager.fake.inbound(
        f"{pager.url}/twilio/inbound", notice["phone"], f"1 {notice['reply_code']}"
    )
    assert f"由您从{STATION}接手" in answer.text, answer.text
    [page] = await fetch(isolated, "SELECT acknowledged_by FROM pages WHERE page_id = $1", page_id)
    assert page["acknowledged_by"] == court
    handed = await sent(isolated, page_id, TAKEN_OVER_STEP, 2)  # the station and the court's other one
    assert "请配合交接" in handed["st-baiyun"]["body"]


# ------------------------------------------------------------------------------------------ the morning


async def test_the_morning_notice_of_a_vehicle_the_station_holds_asks_the_court_to_take_it_over(
    pager: RunningPager, isolated: Isolated
) -> None:
    page_id, code = await station_paged(pager, isolated, "浙J62001")
    task_id = (await task_of(isolated, page_id))["task_id"]
    assert "已确认" in await reply(pager, "st-baiyun", f"1 {code}")

    notice = await morning_notice(pager, isolated, page_id)
    for officer in ("jj-j2", "jj-p2"):
        assert f"已由{STATION}控制。请接手。回复1 {notice[officer + ':code']}接手" in notice[officer]
        assert "请扣押" not in notice[officer]

    answer = await reply(pager, "jj-j2", f"1 {notice['jj-j2:code']}")
    assert f"由您从{STATION}接手" in answer
    task = (await fetch(isolated, "SELECT * FROM tasks WHERE task_id = $1", task_id))[0]
    assert (task["state"], task["assignee"]) == ("acknowledged", "jj-j2")
    *_, over = await task_events(isolated, task_id)
    assert over[:3] == ("acknowledged", "acknowledged", "jj-j2")
    assert (over[4]["event"], over[4]["from"]) == ("taken_over", "st-baiyun")


@pytest.mark.parametrize("taken_first", [True, False], ids=["taken-then-seized", "seized-at-once"])
async def test_the_morning_notice_of_a_seized_vehicle_names_the_custody_and_the_court_takes_it_over(
    pager: RunningPager, isolated: Isolated, taken_first: bool
) -> None:
    page_id, code = await station_paged(pager, isolated, f"浙J6300{int(taken_first)}")
    task_id = (await task_of(isolated, page_id))["task_id"]
    if taken_first:
        assert "已确认" in await reply(pager, "st-baiyun", f"1 {code}")
    assert "已记录扣押" in await reply(pager, "st-baiyun", f"3 {code} 椒江区扣押场")

    notice = await morning_notice(pager, isolated, page_id)
    judge_code = notice["jj-j2:code"]
    assert f"已由{STATION}扣押，存放于椒江区扣押场。请接手。回复1 {judge_code}接手" in notice["jj-j2"]
    assert "请扣押" not in notice["jj-j2"]

    answer = await reply(pager, "jj-j2", f"1 {judge_code}")
    assert f"由您从{STATION}接手" in answer
    assert "存放于椒江区扣押场" in answer
    assert "已由您接手" in await reply(pager, "jj-j2", f"1 {judge_code}")  # again: nothing twice

    # A hand-over, not a seizure: the task stays seized, where it was kept; only who holds it changes.
    [task] = await fetch(isolated, "SELECT * FROM tasks WHERE task_id = $1", task_id)
    assert (task["state"], task["custody_name"], task["assignee"]) == ("seized", "椒江区扣押场", "jj-j2")
    *_, seized, over = await task_events(isolated, task_id)
    assert seized[1:3] == ("seized", "st-baiyun")
    assert over[:4] == ("seized", "seized", "jj-j2", "sms")
    assert (over[4]["event"], over[4]["from"]) == ("taken_over", "st-baiyun")
    told = await sent(isolated, page_id, TAKEN_OVER_STEP, 2)
    assert set(told) == {"st-baiyun", "jj-p2"}  # the station is told the court has it
    [entry] = await fetch(isolated, "SELECT status FROM watch_entries WHERE entry_id = $1", task["entry_id"])
    assert entry["status"] == "seized"


async def test_the_morning_notice_says_the_station_did_not_find_the_vehicle(
    pager: RunningPager, isolated: Isolated
) -> None:
    page_id, code = await station_paged(pager, isolated, "浙J64001")
    assert "已确认" in await reply(pager, "st-baiyun", f"1 {code}")
    assert "未找到" in await reply(pager, "st-baiyun", f"4 {code}")

    notice = await morning_notice(pager, isolated, page_id)
    assert f"{STATION}未找到该车。" in notice["jj-j2"]
    assert "请扣押" not in notice["jj-j2"]
    assert "接手" not in notice["jj-j2"]


async def test_the_morning_notice_names_the_traffic_police_unit_that_seized_it_overnight(
    pager: RunningPager, isolated: Isolated
) -> None:
    """The traffic police stopped and seized it in the night: the notice named "派出所" (their actor is no
    roster officer), as if the station held it."""
    from streams.traffic import CustodyKind, ResultKind, SeizureResultV1

    entry = await watch(isolated, "浙J64501")
    page_id = await seen(pager, isolated, entry, NIGHT)
    await sent(isolated, page_id, 0, 1)
    result = SeizureResultV1(
        result_id=f"tp-{uuid.uuid4().hex[:8]}", request_id=entry.entry_id, plate="浙J64501",
        result=ResultKind.SEIZED, at=NIGHT + timedelta(hours=2), place="G15 路桥收费站", district="331004",
        officer="王警官 (警号 12345)", unit="路桥交警大队", custody_kind=CustodyKind.IMPOUND_LOT,
        custody_name="路桥区扣押场", custody_address="路桥区某路 1 号",
    )  # fmt: skip
    await publish_results(isolated, result)
    await eventually(lambda: task_of(isolated, page_id), lambda t: t["state"] == "seized")

    notice = await morning_notice(pager, isolated, page_id)
    assert "已由路桥交警大队扣押，存放于路桥区扣押场" in notice["jj-j2"], notice["jj-j2"]
    assert "派出所" not in notice["jj-j2"]


async def test_a_night_page_that_ran_out_its_escalation_still_gets_its_morning_notice(
    pager: RunningPager, isolated: Isolated
) -> None:
    """Nobody at the station answered all night and its escalation ran out: the court was never told,
    the worst night of all (an exhausted page was left out of the morning notices)."""
    page_id, _ = await station_paged(pager, isolated, "浙J64801")

    async def exhausted() -> str:
        pager.clock.now += timedelta(hours=1)  # the acknowledgement timeout of each step, before 08:00
        [row] = await fetch(isolated, "SELECT state FROM pages WHERE page_id = $1", page_id)
        return str(row["state"])

    assert await eventually(exhausted, lambda state: state == "exhausted", within=30) == "exhausted"
    assert pager.clock.now < MORNING
    notice = await morning_notice(pager, isolated, page_id)
    assert "请扣押" in notice["jj-j2"], notice["jj-j2"]


async def test_after_the_morning_notice_the_task_s_news_goes_to_the_court_not_the_night_station(
    pager: RunningPager, isolated: Isolated
) -> None:
    """Nobody took it at night; the court got the morning notice. The car then leaves the lot: that news
    went to the station of the night (the page's "last" step was the station's step 0, the notice's step
    being -1), not to the court that now has to act."""
    entry = await watch(isolated, "浙J64901")
    # Seen at 07:30: its next step (an hour on) is not due yet when the car leaves at 08:06.
    page_id = await seen(pager, isolated, entry, MORNING - timedelta(minutes=31))
    await sent(isolated, page_id, 0, 1)
    notice = await morning_notice(pager, isolated, page_id)
    court = {officer for officer in notice if ":" not in officer}
    await seen(pager, isolated, entry, MORNING + timedelta(minutes=5), SourceKind.PARKING_EXIT)
    [task] = await fetch(isolated, "SELECT task_id FROM tasks WHERE page_id = $1", page_id)
    rows = await eventually(
        lambda: fetch(
            isolated, "SELECT officer_id, body FROM notifications WHERE task_id = $1 AND step >= $2",
            task["task_id"], TASK_STEP_BASE,
        ),
        lambda rows: len(rows) >= len(court),
    )  # fmt: skip
    assert {r["officer_id"] for r in rows} == court, rows
    assert all("驶离" in r["body"] for r in rows)


async def test_the_morning_notice_of_a_vehicle_nobody_took_asks_for_a_seizure_and_says_when_it_left(
    pager: RunningPager, isolated: Isolated
) -> None:
    quiet_page, _ = await station_paged(pager, isolated, "浙J65001")
    entry = await watch(isolated, "浙J65002")
    left_page = await seen(pager, isolated, entry, NIGHT)
    await sent(isolated, left_page, 0, 1)
    await seen(pager, isolated, entry, NIGHT + timedelta(hours=1, minutes=40), SourceKind.PARKING_EXIT)
    await eventually(
        lambda: fetch(
            isolated,
            "SELECT 1 FROM task_sightings s JOIN tasks t USING (task_id)"
            " WHERE t.page_id = $1 AND s.outcome = 'update_left'",
            left_page,
        ),
        lambda rows: len(rows) == 1,
    )

    quiet = await morning_notice(pager, isolated, quiet_page)
    assert f"请扣押。回复1 {quiet['jj-j2:code']}接手" in quiet["jj-j2"]
    assert "派出所" not in quiet["jj-j2"]
    left = await morning_notice(pager, isolated, left_page)
    assert "11-23 23:39已驶离。请扣押。" in left["jj-j2"]
