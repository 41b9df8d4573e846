"""The pager end to end: hits from Kafka, rosters and pages in PostgreSQL, SMS through the real twilio
client to a fake Twilio over HTTP, signed callbacks and replies back, time driven by the test."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import pytest

from alerts.messages import segments
from alerts.pages import TAKEN_STEP, overdue_steps, page_id_for
from alerts.tasks import TASK_STEP_BASE, new_reply_code
from streams.vehicles import PlateColour, Priority
from tests.conftest import Isolated, eventually
from tests.fakes.twilio_server import FakeTwilio
from tests.integration.pager_support import (
    API_TOKEN,
    HUANGYAN,
    Clock,
    RunningPager,
    import_example_roster,
    make_hit,
    publish,
    serve_pager,
)

pytestmark = pytest.mark.integration

SHANGHAI = ZoneInfo("Asia/Shanghai")
DAY = datetime(2026, 11, 23, 10, 0, tzinfo=SHANGHAI)  # group jj-2 on duty (handoff 08:30, 22 days in)
NIGHT = datetime(2026, 11, 23, 22, 0, tzinfo=SHANGHAI)
PHONE = {
    "jj-l2": "+8613800001021", "jj-j2": "+8613800001022", "jj-p2": "+8613800001023",
    "jj-chief": "+8613800001000", "st-baiyun": "+8613800003001", "hy-j2": "+8613800002022",
}  # fmt: skip
TIMEOUT = timedelta(seconds=61)  # past the 60 s acknowledgement timeout


@pytest.fixture(scope="module")
async def pager(isolated: Isolated) -> AsyncIterator[RunningPager]:
    await import_example_roster(isolated.settings.postgres.dsn.get_secret_value())
    async with FakeTwilio() as fake, serve_pager(isolated, fake, Clock(DAY)) as running:
        yield running


async def db(isolated: Isolated) -> asyncpg.Connection:
    return await asyncpg.connect(isolated.settings.postgres.dsn.get_secret_value())


async def notifications(isolated: Isolated, page_id: uuid.UUID) -> list[asyncpg.Record]:
    conn = await db(isolated)
    try:
        return await conn.fetch(
            "SELECT * FROM notifications WHERE page_id = $1 ORDER BY step, officer_id", page_id
        )
    finally:
        await conn.close()


async def page_row(isolated: Isolated, page_id: uuid.UUID) -> asyncpg.Record:
    conn = await db(isolated)
    try:
        row = await conn.fetchrow("SELECT * FROM pages WHERE page_id = $1", page_id)
        assert row is not None
        return row
    finally:
        await conn.close()


async def sent_at_step(isolated: Isolated, page_id: uuid.UUID, step: int, count: int) -> list[asyncpg.Record]:
    """Wait until ``count`` notifications of ``step`` were accepted by the provider."""

    async def probe() -> list[asyncpg.Record]:
        return [n for n in await notifications(isolated, page_id) if n["step"] == step]

    return await eventually(
        probe, lambda rows: len(rows) == count and all(r["send_state"] == "sent" for r in rows)
    )


def texts_to(fake: FakeTwilio, code: str) -> list[str]:
    """Numbers the fake Twilio was asked to text a message carrying ``code``."""
    return [m.to for m in fake.messages.values() if code in m.body]


async def start(pager: RunningPager, isolated: Isolated, at: datetime, plate: str, **kw: object) -> uuid.UUID:
    pager.clock.now = at
    hit = await make_hit(isolated, plate=plate, observed_at=at - timedelta(seconds=30), **kw)  # type: ignore[arg-type]
    await publish(isolated, hit)
    return page_id_for(hit.hit_id)


async def test_day_hit_pages_the_on_duty_judge_and_judicial_police(
    pager: RunningPager, isolated: Isolated
) -> None:
    page_id = await start(pager, isolated, DAY, "浙J10001")
    rows = await sent_at_step(isolated, page_id, 0, 2)
    assert {r["officer_id"] for r in rows} == {"jj-j2", "jj-p2"}
    for r in rows:
        [message] = [m for m in pager.fake.messages.values() if m.sid == r["provider_message_id"]]
        assert message.to == PHONE[r["officer_id"]]
        assert "浙J10001" in message.body
        assert r["reply_code"] in message.body
        assert message.status_callback == f"{pager.url}/twilio/status"
        assert message.validity_period == 600
    # Signed status callbacks: recorded, de-duplicated, never moved backwards.
    sid = rows[0]["provider_message_id"]
    assert (await pager.fake.deliver(sid, "delivered")).status_code == 204
    assert (await pager.fake.deliver(sid, "sent")).status_code == 204  # late and out of order
    updated = {n["provider_message_id"]: n for n in await notifications(isolated, page_id)}
    assert updated[sid]["provider_status"] == "delivered"


@pytest.mark.parametrize(
    ("priority", "expected"),
    [(Priority.NORMAL, {"st-baiyun"}), (Priority.URGENT, {"st-baiyun", "jj-j2", "jj-p2"})],
)
async def test_night_hit_goes_to_the_police_station_and_wakes_the_court_only_when_urgent(
    pager: RunningPager, isolated: Isolated, priority: Priority, expected: set[str]
) -> None:
    page_id = await start(pager, isolated, NIGHT, f"浙J2000{len(expected)}", priority=priority)
    rows = await sent_at_step(isolated, page_id, 0, len(expected))
    assert {r["officer_id"] for r in rows} == expected


async def test_another_courts_vehicle_seen_here_tells_both_courts(
    pager: RunningPager, isolated: Isolated
) -> None:
    page_id = await start(pager, isolated, DAY, "浙J30001", court=HUANGYAN)
    rows = await sent_at_step(isolated, page_id, 0, 4)
    officers = {r["officer_id"] for r in rows}
    assert {"jj-j2", "jj-p2"} <= officers  # where it was seen
    assert {o[:3] for o in officers} == {"jj-", "hy-"}  # and the court that sealed it


async def test_unanswered_page_escalates_step_by_step_then_is_exhausted(
    pager: RunningPager, isolated: Isolated
) -> None:
    page_id = await start(pager, isolated, DAY, "浙J40001")
    await sent_at_step(isolated, page_id, 0, 2)
    pager.clock.advance(TIMEOUT)
    assert {r["officer_id"] for r in await sent_at_step(isolated, page_id, 1, 1)} == {"jj-l2"}
    pager.clock.advance(TIMEOUT)
    assert {r["officer_id"] for r in await sent_at_step(isolated, page_id, 2, 1)} == {"jj-chief"}
    pager.clock.advance(TIMEOUT)
    assert {r["officer_id"] for r in await sent_at_step(isolated, page_id, 3, 3)} == {
        "jj-l2",
        "jj-j2",
        "jj-p2",
    }
    pager.clock.advance(TIMEOUT)
    row = await eventually(lambda: page_row(isolated, page_id), lambda r: r["state"] == "exhausted")
    assert row["next_due_at"] is None
    # Each step texted each of its people once, and nothing was texted twice.
    codes = [n["reply_code"] for n in await notifications(isolated, page_id)]
    assert all(len(texts_to(pager.fake, code)) == 1 for code in codes)


async def test_a_page_nobody_runs_is_counted_overdue(pager: RunningPager, isolated: Isolated) -> None:
    page_id = await start(pager, isolated, DAY, "浙J40002")
    await sent_at_step(isolated, page_id, 0, 2)
    conn = await asyncpg.connect(isolated.settings.postgres.dsn.get_secret_value())
    try:
        open_pages = await conn.fetchval("SELECT count(*) FROM pages WHERE state = 'open'")
        due = await conn.fetchval("SELECT next_due_at FROM pages WHERE page_id = $1", page_id)
        assert open_pages >= 1
        # Before the grace minute has passed, this page is not overdue; long after, every open page is.
        assert await overdue_steps(conn, due + timedelta(seconds=30)) < open_pages
        assert await overdue_steps(conn, due + timedelta(days=30)) == open_pages
    finally:
        await conn.close()


async def test_an_sms_reply_takes_the_page_and_escalation_stops(
    pager: RunningPager, isolated: Isolated
) -> None:
    page_id = await start(pager, isolated, DAY, "浙J50001")
    rows = {r["officer_id"]: r for r in await sent_at_step(isolated, page_id, 0, 2)}
    inbound = f"{pager.url}/twilio/inbound"
    code = rows["jj-j2"]["reply_code"]

    forged = await pager.fake.inbound(inbound, PHONE["jj-j2"], f"1 {code}", forged=True)
    assert forged.status_code == 403
    stranger = await pager.fake.inbound(inbound, "+8613999999999", f"1 {code}")
    assert stranger.status_code == 200
    assert "<Message>" not in stranger.text  # no answer to strangers
    not_theirs = await pager.fake.inbound(inbound, PHONE["jj-p2"], f"1 {code}")  # the judge's code
    assert "不是发给您" in not_theirs.text

    taken = await pager.fake.inbound(inbound, PHONE["jj-j2"], f"１ {code.lower()}")  # full-width, lower case
    assert taken.status_code == 200
    assert "已确认" in taken.text
    row = await page_row(isolated, page_id)
    assert (row["state"], row["acknowledged_by"]) == ("acknowledged", "jj-j2")
    pager.clock.advance(TIMEOUT * 3)
    await sent_at_step(isolated, page_id, 0, 2)  # still only step 0 …
    other = await sent_at_step(isolated, (await start(pager, isolated, pager.clock.now, "浙J50002")), 0, 2)
    assert other  # … while the pager kept working on other pages
    # No escalation step after step 0; the other officer of the step was only told who took it.
    assert {r["step"] for r in await notifications(isolated, page_id)} == {0, TAKEN_STEP}


async def test_an_urgent_page_says_so_with_the_plate_colour_and_the_address(
    pager: RunningPager, isolated: Isolated
) -> None:
    page_id = await start(
        pager, isolated, DAY, "浙J50009", priority=Priority.URGENT, plate_colour=PlateColour.GREEN,
        address="椒江区工人西路558号",
    )  # fmt: skip
    rows = await eventually(
        lambda: notifications(isolated, page_id),
        lambda rows: bool(rows) and all(r["step"] == 0 for r in rows),
    )

    for row in rows:
        assert row["body"].startswith(f"【紧急】【执行查控 {row['reply_code']}】绿牌浙J50009")
        assert "出现在椒江万达广场停车场 1号入口（椒江区工人西路558号）。" in row["body"]
        assert segments(row["body"]) <= 2


async def test_acknowledgement_api(pager: RunningPager, isolated: Isolated) -> None:
    page_id = await start(pager, isolated, DAY, "浙J60001")
    await sent_at_step(isolated, page_id, 0, 2)
    async with httpx.AsyncClient(base_url=pager.url) as client:
        url = f"/api/v1/pages/{page_id}/acknowledge"
        assert (await client.post(url, json={"officer_id": "jj-p2"})).status_code == 401
        auth = {"Authorization": f"Bearer {API_TOKEN}"}
        assert (await client.post(url, json={"officer_id": "jj-chief"}, headers=auth)).status_code == 403
        ok = await client.post(url, json={"officer_id": "jj-p2"}, headers=auth)
        assert (ok.status_code, ok.json()["outcome"]) == (200, "taken")
        late = await client.post(url, json={"officer_id": "jj-j2"}, headers=auth)
        assert (late.status_code, late.json()["outcome"]) == (409, "already_taken")
        view = (await client.get(f"/api/v1/pages/{page_id}", headers=auth)).json()
    assert (view["state"], view["acknowledged_by"]) == ("acknowledged", "jj-p2")


async def test_declines_through_the_api_step_out_of_the_escalation_step(
    pager: RunningPager, isolated: Isolated
) -> None:
    """Both officers of step 0 decline through the API: the next step is due at once. The API used the
    code of the officer's highest step, a task message's (step 100 up) once one was sent, so that
    decline stepped out of nothing and the page waited out its timeout."""
    page_id = await start(pager, isolated, DAY, "浙J60007")
    await sent_at_step(isolated, page_id, 0, 2)
    conn = await db(isolated)
    try:  # the task's update the judge was sent since (a message of the task, on the page)
        await conn.execute(
            "INSERT INTO notifications (notification_id, page_id, step, officer_id, phone, reply_code, body,"
            " send_state, next_attempt_at, created_at) VALUES ($1, $2, $3, 'jj-j2', $4, $5, 'update',"
            " 'sent', $6, $6)",
            uuid.uuid4(), page_id, TASK_STEP_BASE + 1, PHONE["jj-j2"], await new_reply_code(conn), DAY,
        )  # fmt: skip
    finally:
        await conn.close()
    auth = {"Authorization": f"Bearer {API_TOKEN}"}
    async with httpx.AsyncClient(base_url=pager.url, headers=auth) as client:
        url = f"/api/v1/pages/{page_id}/acknowledge"
        for officer in ("jj-p2", "jj-j2"):
            answer = await client.post(url, json={"officer_id": officer, "command": "decline"})
            assert (answer.status_code, answer.json()["outcome"]) == (200, "declined"), answer.text
    # No time passes on the pager's clock: only stepping out makes step 1 due.
    assert await sent_at_step(isolated, page_id, 1, 1)


async def test_roster_api_answers_who_is_on_duty_and_takes_a_swapped_shift(
    pager: RunningPager, isolated: Isolated
) -> None:
    auth = {"Authorization": f"Bearer {API_TOKEN}"}
    async with httpx.AsyncClient(base_url=pager.url) as client:
        assert (await client.get("/api/v1/roster/on-duty")).status_code == 401
        day = (
            await client.get("/api/v1/roster/on-duty", params={"at": DAY.isoformat()}, headers=auth)
        ).json()
        jiaojiang = next(c for c in day["courts"] if c["court_id"] == "台州市椒江区人民法院")
        assert jiaojiang["group"] == "jj-2"
        assert jiaojiang["members"]["judge"]["name"] == "周婷"
        assert day["night_contacts"] == []
        night = (
            await client.get("/api/v1/roster/on-duty", params={"at": NIGHT.isoformat()}, headers=auth)
        ).json()
        assert {n["officer_id"] for n in night["night_contacts"]} == {"st-baiyun", "st-xicheng"}
        swap = {
            "court_id": "台州市椒江区人民法院", "group_id": "jj-3", "by": "commander",
            "starts_at": (DAY + timedelta(days=30)).isoformat(),
            "ends_at": (DAY + timedelta(days=31)).isoformat(),
        }  # fmt: skip
        assert (
            await client.post("/api/v1/roster/group-overrides", json=swap, headers=auth)
        ).status_code == 201
        later = (DAY + timedelta(days=30, hours=1)).isoformat()
        swapped = (await client.get("/api/v1/roster/on-duty", params={"at": later}, headers=auth)).json()
        assert (
            next(c for c in swapped["courts"] if c["court_id"] == "台州市椒江区人民法院")["group"] == "jj-3"
        )
        bad = await client.post(
            "/api/v1/roster/group-overrides", json={**swap, "group_id": "nope"}, headers=auth
        )
        assert bad.status_code == 400


async def test_the_same_hit_twice_pages_once(pager: RunningPager, isolated: Isolated) -> None:
    pager.clock.now = DAY
    hit = await make_hit(isolated, plate="浙J70001", observed_at=DAY - timedelta(seconds=30))
    await publish(isolated, hit)
    await publish(isolated, hit)  # Kafka redelivery after a crash looks exactly like this
    page_id = page_id_for(hit.hit_id)
    rows = await sent_at_step(isolated, page_id, 0, 2)
    conn = await db(isolated)
    try:
        pages = await conn.fetchval("SELECT count(*) FROM pages WHERE hit_id = $1", hit.hit_id)
    finally:
        await conn.close()
    assert pages == 1
    assert all(len(texts_to(pager.fake, r["reply_code"])) == 1 for r in rows)


async def test_a_permanent_error_escalates_at_once(pager: RunningPager, isolated: Isolated) -> None:
    pager.fake.fail_next(400, 21211, "The 'To' number is not a valid phone number.", times=2)
    page_id = await start(pager, isolated, DAY, "浙J80001")
    # No clock advance: both first recipients failed for good, so the group leader is paged now.
    await sent_at_step(isolated, page_id, 1, 1)
    failed = [n for n in await notifications(isolated, page_id) if n["step"] == 0]
    assert {(n["send_state"], n["error_code"]) for n in failed} == {("failed", "21211")}


async def test_the_court_is_told_when_the_night_ends_and_takes_over_from_the_station(
    pager: RunningPager, isolated: Isolated
) -> None:
    page_id = await start(pager, isolated, NIGHT, "浙J90009")
    [station] = await sent_at_step(isolated, page_id, 0, 1)
    assert station["officer_id"] == "st-baiyun"
    inbound = f"{pager.url}/twilio/inbound"
    held = await pager.fake.inbound(inbound, PHONE["st-baiyun"], f"1 {station['reply_code']}")
    assert "已确认" in held.text
    pager.clock.now = NIGHT + timedelta(hours=10, minutes=1)  # 08:01 the next morning
    notices = await sent_at_step(isolated, page_id, -1, 2)
    assert {n["officer_id"] for n in notices} == {"jj-j2", "jj-p2"}  # the court's duty, never woken at night
    judge = next(n for n in notices if n["officer_id"] == "jj-j2")
    taken = await pager.fake.inbound(inbound, PHONE["jj-j2"], f"1 {judge['reply_code']}")
    assert "由您从椒江区白云派出所接手" in taken.text
    row = await page_row(isolated, page_id)
    assert (row["state"], row["acknowledged_by"], row["notice_due_at"]) == ("acknowledged", "jj-j2", None)
