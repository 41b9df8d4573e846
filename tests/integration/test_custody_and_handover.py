"""Custody recorded after a seizure (SMS, API, CLI), and the others told when someone takes a page — through
Kafka, PostgreSQL, the pager and the fake Twilio, with the pager's clock driven by the test."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import orjson
import pytest

from alerts.messages import segments
from alerts.pages import TAKEN_OVER_STEP, TAKEN_STEP, page_id_for
from alerts.settings import PagerSettings
from tests.conftest import Isolated, eventually, run_seizewatch
from tests.fakes.twilio_server import FakeTwilio
from tests.integration.pager_support import (
    API_TOKEN,
    Clock,
    RunningPager,
    import_example_roster,
    make_hit,
    publish,
    serve_pager,
)

pytestmark = pytest.mark.integration

SHANGHAI = ZoneInfo("Asia/Shanghai")
DAY = datetime(2026, 11, 23, 10, 0, tzinfo=SHANGHAI)  # group jj-2 on duty: jj-j2 and jj-p2 are paged
NIGHT = datetime(2026, 11, 23, 22, 0, tzinfo=SHANGHAI)  # the police station alone is paged
PHONE = {"jj-j2": "+8613800001022", "jj-p2": "+8613800001023", "st-baiyun": "+8613800003001"}
AUTH = {"Authorization": f"Bearer {API_TOKEN}"}


@pytest.fixture(scope="module")
async def pager(isolated: Isolated) -> AsyncIterator[RunningPager]:
    await import_example_roster(isolated.settings.postgres.dsn.get_secret_value())
    # Nobody is slow to answer here: no escalation should get in the way.
    settings = PagerSettings(ack_timeout_s=3600)
    async with FakeTwilio() as fake, serve_pager(isolated, fake, Clock(DAY), settings=settings) as running:
        yield running


async def fetch(isolated: Isolated, query: str, *args: object) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(isolated.settings.postgres.dsn.get_secret_value())
    try:
        return await conn.fetch(query, *args)
    finally:
        await conn.close()


async def paged(pager: RunningPager, isolated: Isolated, plate: str, at: datetime) -> uuid.UUID:
    """A hit on a new watch entry at ``at``; its page id."""
    pager.clock.now = at
    hit = await make_hit(isolated, plate=plate, observed_at=at - timedelta(seconds=30))
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


async def task_now(isolated: Isolated, task_id: uuid.UUID) -> asyncpg.Record:
    [task] = await fetch(isolated, "SELECT * FROM tasks WHERE task_id = $1", task_id)
    return task


Event = tuple[str | None, str, str, str, dict[str, Any]]  # from, to, actor, channel, detail


async def events(isolated: Isolated, task_id: uuid.UUID) -> list[Event]:
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


def texts_to(pager: RunningPager, officer: str, words: str) -> list[str]:
    """What the fake Twilio was asked to text ``officer`` that contains ``words``."""
    return [m.body for m in pager.fake.messages.values() if m.to == PHONE[officer] and words in m.body]


# --------------------------------------------------------------------------------------------- custody


async def test_an_sms_seizure_names_the_custody_and_a_later_sms_amends_it(
    pager: RunningPager, isolated: Isolated
) -> None:
    page_id = await paged(pager, isolated, "浙J71001", DAY)
    code = (await sent(isolated, page_id, 0, 2))["jj-j2"]["reply_code"]
    task = await task_of(isolated, page_id)
    assert "已确认" in await reply(pager, "jj-j2", f"1 {code}")

    early = await reply(pager, "jj-j2", f"存 {code} 椒江区扣押场")
    assert "尚未记录扣押" in early  # only a seized task has a custody
    assert (await task_now(isolated, task["task_id"]))["custody_name"] is None

    seized = await reply(pager, "jj-j2", f"３ {code.lower()} 已扣押，存放地点：椒江区扣押场")
    assert "已记录扣押，存放：椒江区扣押场" in seized
    row = await task_now(isolated, task["task_id"])
    assert (row["state"], row["custody_name"], row["custody_kind"]) == ("seized", "椒江区扣押场", None)

    pager.clock.advance(timedelta(minutes=40))
    amended = await reply(pager, "jj-j2", f"存 {code} 台州某拖车保管公司 2号库")
    assert "已补录存放地点：台州某拖车保管公司 2号库" in amended
    row = await task_now(isolated, task["task_id"])
    assert (row["state"], row["custody_name"]) == ("seized", "台州某拖车保管公司 2号库")
    *_, last = await events(isolated, task["task_id"])
    assert last[:4] == ("seized", "seized", "jj-j2", "sms")
    assert last[4]["event"] == "custody"
    assert last[4]["custody"]["name"] == "台州某拖车保管公司 2号库"
    assert last[4]["previous"]["name"] == "椒江区扣押场"
    [when] = await fetch(
        isolated,
        "SELECT at FROM task_events WHERE task_id = $1 ORDER BY event_id DESC LIMIT 1",
        task["task_id"],
    )
    assert when["at"] == pager.clock.now  # the pager's clock: when it was amended
    outcomes = await fetch(
        isolated, "SELECT outcome FROM page_replies WHERE page_id = $1 ORDER BY reply_id", page_id
    )
    assert [r["outcome"] for r in outcomes] == ["taken", "refused", "task_seized", "task_custody"]


async def test_custody_is_amended_through_the_api_and_the_cli_only_on_a_seized_task(
    pager: RunningPager, isolated: Isolated
) -> None:
    page_id = await paged(pager, isolated, "浙J71002", DAY)
    code = (await sent(isolated, page_id, 0, 2))["jj-j2"]["reply_code"]
    task_id = (await task_of(isolated, page_id))["task_id"]
    url = f"/api/v1/tasks/{task_id}/custody"
    body = {
        "custody_name": "椒江区扣押场",
        "custody_kind": "impound_lot",
        "custody_address": "椒江区某路 1 号",
    }
    async with httpx.AsyncClient(base_url=pager.url) as client:
        as_judge = {**AUTH, "X-Officer-Id": "jj-j2"}
        not_seized = await client.post(url, json=body, headers=as_judge)
        assert not_seized.status_code == 409
        assert "only for a seized task" in not_seized.json()["error"]
        refused = run_seizewatch(
            isolated.env,
            "tasks",
            "custody",
            str(task_id),
            "--officer",
            "jj-j2",
            "--place",
            "某地",
            check=False,
        )
        assert refused.returncode != 0
        assert "only for a seized task" in refused.stderr

        answer = await reply(pager, "jj-j2", f"3 {code}")
        assert f"回复 存 {code}" in answer  # how to add the custody later
        assert segments(answer.split("<Message>")[1].split("</Message>")[0]) == 1

        assert (await client.post(url, json=body)).status_code == 401
        foreign = await client.post(url, json=body, headers={**AUTH, "X-Officer-Id": "hy-j1"})
        assert foreign.status_code == 404  # another court's task
        empty = await client.post(url, json={"custody_name": ""}, headers=as_judge)
        assert empty.status_code == 422
        assert "custody_name" in empty.text
        kind = await client.post(url, json={**body, "custody_kind": "garage"}, headers=as_judge)
        assert kind.status_code == 422
        ok = await client.post(url, json=body, headers=as_judge)
        assert ok.status_code == 200, ok.text
        assert (ok.json()["custody"], ok.json()["custody_kind"], ok.json()["custody_address"]) == (
            "椒江区扣押场", "impound_lot", "椒江区某路 1 号",
        )  # fmt: skip

    moved = run_seizewatch(
        isolated.env, "tasks", "custody", str(task_id), "--officer", "jj-p2", "--place", "台州某拖车保管公司",
        "--kind", "custodian",
    )  # fmt: skip
    assert "浙J71002: custody 台州某拖车保管公司" in moved.stdout
    row = await task_now(isolated, task_id)
    # A new place: the old address is not carried over to it.
    assert (row["custody_name"], row["custody_kind"], row["custody_address"]) == (
        "台州某拖车保管公司", "custodian", None,
    )  # fmt: skip
    custody_events = [e for e in await events(isolated, task_id) if e[4].get("event") == "custody"]
    assert [e[:4] for e in custody_events] == [
        ("seized", "seized", "jj-j2", "api"),
        ("seized", "seized", "jj-p2", "cli"),
    ]
    shown = run_seizewatch(isolated.env, "tasks", "show", str(task_id), "--officer", "jj-j2").stdout
    assert "seized → seized by jj-p2 via cli (custody: 台州某拖车保管公司)" in shown
    assert "custody: 台州某拖车保管公司, custodian" in shown


# -------------------------------------------------------------------------------------------- handover


@pytest.mark.parametrize("channel", ["sms", "api"])
async def test_taking_a_page_tells_the_others_paged_with_it_once(
    pager: RunningPager, isolated: Isolated, channel: str
) -> None:
    plate = "浙J72001" if channel == "sms" else "浙J72002"
    page_id = await paged(pager, isolated, plate, DAY)
    first = await sent(isolated, page_id, 0, 2)
    task_id = (await task_of(isolated, page_id))["task_id"]
    for _ in range(2):  # a repeated acknowledgement tells nobody twice
        if channel == "sms":
            assert "由您接手" in await reply(pager, "jj-j2", f"1 {first['jj-j2']['reply_code']}")
        else:
            async with httpx.AsyncClient(base_url=pager.url) as client:
                ack = await client.post(
                    f"/api/v1/pages/{page_id}/acknowledge", json={"officer_id": "jj-j2"}, headers=AUTH
                )
            assert ack.json()["outcome"] in {"taken", "already_yours"}
    told = await sent(isolated, page_id, TAKEN_STEP, 1)
    assert set(told) == {"jj-p2"}  # not the one who took it
    body = told["jj-p2"]["body"]
    assert f"{plate} 已由周婷(执行法官)接手，无需处理。" in body
    assert segments(body) == 1
    assert len(texts_to(pager, "jj-p2", f"{plate} 已由")) == 1
    assert texts_to(pager, "jj-j2", f"{plate} 已由") == []
    opened, *taken = await events(isolated, task_id)
    assert opened[:2] == (None, "open")
    assert taken == [("open", "acknowledged", "jj-j2", channel, {"event": "taken", "told": ["jj-p2"]})]


async def test_the_court_taking_over_from_the_station_tells_the_station_and_records_it(
    pager: RunningPager, isolated: Isolated
) -> None:
    page_id = await paged(pager, isolated, "浙J73001", NIGHT)
    station = (await sent(isolated, page_id, 0, 1))["st-baiyun"]
    task_id = (await task_of(isolated, page_id))["task_id"]
    assert "已确认" in await reply(pager, "st-baiyun", f"1 {station['reply_code']}")
    pager.clock.now = NIGHT + timedelta(hours=10, minutes=1)  # 08:01: the court's morning notice
    notices = await sent(isolated, page_id, -1, 2)
    judge_code = notices["jj-j2"]["reply_code"]
    assert "由您从椒江区白云派出所接手" in await reply(pager, "jj-j2", f"1 {judge_code}")
    assert "已由您接手" in await reply(pager, "jj-j2", f"1 {judge_code}")  # again: nobody told twice

    told = await sent(isolated, page_id, TAKEN_OVER_STEP, 2)
    assert set(told) == {"st-baiyun", "jj-p2"}  # the station that held it, and the court's other officer
    for notice in told.values():
        assert "浙J73001 已由周婷(执行法官)从派出所接手，请配合交接。" in notice["body"]
        assert segments(notice["body"]) == 1
    # When the station took it at night, nobody else had been texted: nobody to tell.
    assert (
        await fetch(
            isolated, "SELECT 1 FROM notifications WHERE page_id = $1 AND step = $2", page_id, TAKEN_STEP
        )
        == []
    )
    assert len(texts_to(pager, "st-baiyun", "浙J73001 已由")) == 1
    task = await task_now(isolated, task_id)
    assert (task["state"], task["assignee"]) == ("acknowledged", "jj-j2")
    *_, took, over = await events(isolated, task_id)
    assert took == ("open", "acknowledged", "st-baiyun", "sms", {"event": "taken", "told": []})
    assert over == (
        "acknowledged", "acknowledged", "jj-j2", "sms",
        {"event": "taken_over", "from": "st-baiyun", "told": ["jj-p2", "st-baiyun"]},
    )  # fmt: skip
