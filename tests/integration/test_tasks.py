"""Seizure tasks end to end: sightings fold into one task, updates, the traffic police's results,
releases, and officers' replies — through Kafka, PostgreSQL, the pager and the fake Twilio."""

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
from pydantic import SecretStr

from alerts.rosterstore import load_roster
from alerts.settings import PagerSettings
from alerts.traffic_contacts import refresh_contacts
from connectors.auth import API_KEY_HEADER, source_secret
from connectors.registry import AuthMethod, Connector, add_source
from streams import watchstore
from streams.events import SourceKind, new_sighting
from streams.hits import HitV1, record_hit
from streams.matching import Match, MatchKind
from streams.topics import SEIZURE_REQUESTS
from streams.traffic import CustodyKind, ResultKind, SeizureReleaseV1, SeizureRequestV1, SeizureResultV1
from streams.vehicles import Priority
from streams.watchlist import WatchEntry
from tests.conftest import (
    MASTER_KEY,
    Isolated,
    eventually,
    run_seizewatch,
    spawn,
    stop_process,
    topic_records,
)
from tests.fakes.twilio_server import FakeTwilio
from tests.integration.pager_support import (
    API_TOKEN,
    JIAOJIANG,
    Clock,
    RunningPager,
    import_example_roster,
    publish,
    publish_results,
    serve_pager,
)

pytestmark = pytest.mark.integration

DAY = datetime(2026, 11, 23, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
JUDGE = "+8613800001022"  # jj-j2, on duty at DAY


@pytest.fixture(scope="module")
async def pager(isolated: Isolated) -> AsyncIterator[RunningPager]:
    await import_example_roster(isolated.settings.postgres.dsn.get_secret_value())
    # Nobody answers in these tests and the clock jumps minutes: no escalation should get in the way.
    settings = PagerSettings(task_suppress_window_s=180, ack_timeout_s=3600)
    async with FakeTwilio() as fake, serve_pager(isolated, fake, Clock(DAY), settings=settings) as running:
        yield running


async def conn_of(isolated: Isolated) -> asyncpg.Connection:
    return await asyncpg.connect(isolated.settings.postgres.dsn.get_secret_value())


async def watch(isolated: Isolated, plate: str, priority: Priority = Priority.NORMAL) -> WatchEntry:
    conn = await conn_of(isolated)
    try:
        record = await watchstore.add_entry(
            conn,
            watchstore.NewEntry(
                plate=plate, case_number=f"(2026)浙1002执{uuid.uuid4().int % 100000}号", court=JIAOJIANG,
                valid_from=DAY - timedelta(days=30), priority=priority,
            ),
            by="test",
        )  # fmt: skip
        return record.entry
    finally:
        await conn.close()


async def seen(
    pager: RunningPager, isolated: Isolated, entry: WatchEntry, device: str, at: datetime,
    kind: SourceKind = SourceKind.CHECKPOINT,
) -> HitV1:  # fmt: skip
    """The vehicle read at ``device`` at ``at``: a hit recorded and published as the matcher does."""
    pager.clock.now = at
    sighting = new_sighting(
        sighting_id=uuid.uuid4().hex, source_kind=kind, source_id="test", device_id=device,
        plate_raw=entry.plate.text,
        observed_at=at, received_at=at, district="331002", device_name=f"设备 {device}",
    )  # fmt: skip
    hit = HitV1.build(sighting, Match(entry, MatchKind.EXACT, 1.0), matched_at=at)
    conn = await conn_of(isolated)
    try:
        await record_hit(conn, hit)
    finally:
        await conn.close()
    await publish(isolated, hit)
    await eventually(
        lambda: trail(isolated, entry), lambda rows: any(r["hit_id"] == hit.hit_id for r in rows)
    )
    return hit


async def trail(isolated: Isolated, entry: WatchEntry) -> list[asyncpg.Record]:
    conn = await conn_of(isolated)
    try:
        return await conn.fetch(
            "SELECT s.* FROM task_sightings s JOIN tasks t USING (task_id) WHERE t.entry_id = $1"
            " ORDER BY s.observed_at",
            entry.entry_id,
        )
    finally:
        await conn.close()


async def task_of(isolated: Isolated, entry: WatchEntry) -> asyncpg.Record:
    conn = await conn_of(isolated)
    try:
        rows = await conn.fetch("SELECT * FROM tasks WHERE entry_id = $1", entry.entry_id)
    finally:
        await conn.close()
    assert len(rows) == 1, rows
    return rows[0]


async def task_messages(isolated: Isolated, task_id: uuid.UUID, minimum: int = 0) -> list[asyncpg.Record]:
    async def probe() -> list[asyncpg.Record]:
        conn = await conn_of(isolated)
        try:
            return await conn.fetch(
                "SELECT * FROM notifications WHERE task_id = $1 AND send_state = 'sent' ORDER BY step",
                task_id,
            )
        finally:
            await conn.close()

    return await eventually(probe, lambda rows: len(rows) >= minimum)


async def test_five_cameras_in_ten_minutes_make_one_task_and_two_updates(
    pager: RunningPager, isolated: Isolated
) -> None:
    entry = await watch(isolated, "浙J11111")
    for minute, device in ((0, "kk-a"), (2, "kk-b"), (4, "kk-c"), (6, "kk-d"), (8, "kk-e")):
        await seen(pager, isolated, entry, device, DAY + timedelta(minutes=minute))
    outcomes = [r["outcome"] for r in await trail(isolated, entry)]
    # Window 3 min: new places at +4 and +8 are updates; +2 and +6 fall inside the window.
    assert outcomes == ["opened", "suppressed", "update_new_place", "suppressed", "update_new_place"]
    task = await task_of(isolated, entry)
    assert (task["state"], task["updates"], task["last_device_id"]) == ("open", 2, "kk-e")
    updates = await task_messages(isolated, task["task_id"], minimum=4)
    assert len(updates) == 4  # two updates, each to the two officers paged first
    assert all("再次出现在" in u["body"] for u in updates)


async def test_an_exit_read_says_the_vehicle_left_the_lot(pager: RunningPager, isolated: Isolated) -> None:
    entry = await watch(isolated, "浙J22222")
    await seen(pager, isolated, entry, "wanda/in", DAY, SourceKind.PARKING_ENTRY)
    await seen(pager, isolated, entry, "wanda/out", DAY + timedelta(minutes=1), SourceKind.PARKING_EXIT)
    task = await task_of(isolated, entry)
    [left, *_] = await task_messages(isolated, task["task_id"], minimum=2)
    assert "驶离" in left["body"]
    assert [r["outcome"] for r in await trail(isolated, entry)] == ["opened", "update_left"]


async def test_traffic_police_seizure_closes_task_and_entry_and_leaves_their_list(
    pager: RunningPager, isolated: Isolated
) -> None:
    entry = await watch(isolated, "浙J33333")
    await seen(pager, isolated, entry, "kk-a", DAY)
    result = SeizureResultV1(
        result_id=f"tp-{uuid.uuid4().hex[:8]}", request_id=entry.entry_id, plate="浙J33333",
        result=ResultKind.SEIZED, at=DAY + timedelta(minutes=20), place="G15 路桥收费站", district="331004",
        officer="王警官 (警号 12345)", unit="路桥交警大队", custody_kind=CustodyKind.IMPOUND_LOT,
        custody_name="路桥区扣押场", custody_address="路桥区某路 1 号",
    )  # fmt: skip
    await publish_results(isolated, result, result)  # a resend is applied once

    async def closed() -> asyncpg.Record:
        return await task_of(isolated, entry)

    task = await eventually(closed, lambda t: t["state"] == "seized")
    assert (task["custody_kind"], task["custody_name"]) == ("impound_lot", "路桥区扣押场")
    conn = await conn_of(isolated)
    try:
        status = await conn.fetchrow(
            "SELECT status, closed_reason FROM watch_entries WHERE entry_id = $1", entry.entry_id
        )
        applied = await conn.fetchval(
            "SELECT count(*) FROM traffic_results WHERE request_id = $1", entry.entry_id
        )
        page = await conn.fetchval("SELECT state FROM pages WHERE page_id = $1", task["page_id"])
    finally:
        await conn.close()
    assert status is not None
    assert (status["status"], status["closed_reason"]) == ("seized", "seized")
    assert applied == 1
    assert page == "cancelled"  # nobody is paged any more for it
    told = await task_messages(isolated, task["task_id"], minimum=2)
    assert all("路桥交警大队" in n["body"] and "扣押" in n["body"] for n in told)

    async def last_request() -> list[object]:
        return [
            r.value
            for r in await topic_records(isolated, SEIZURE_REQUESTS)
            if r.key == str(entry.entry_id).encode()
        ]

    # The traffic police's list: added when watched, then a tombstone once seized.
    values = await eventually(last_request, lambda v: len(v) >= 2 and v[-1] is None)
    assert values[0] is not None


async def test_a_release_cancels_the_task_and_tells_whoever_took_it(
    pager: RunningPager, isolated: Isolated
) -> None:
    entry = await watch(isolated, "浙J44444")
    await seen(pager, isolated, entry, "kk-a", DAY)
    task = await task_of(isolated, entry)
    conn = await conn_of(isolated)
    try:
        code = await conn.fetchval(
            "SELECT reply_code FROM notifications WHERE page_id = $1 AND officer_id = 'jj-j2'",
            task["page_id"],
        )
    finally:
        await conn.close()
    await eventually(lambda: task_messages_page(isolated, task["page_id"]), lambda n: n >= 2)
    taken = await pager.fake.inbound(f"{pager.url}/twilio/inbound", JUDGE, f"1 {code}")
    assert "已确认" in taken.text
    assert (await task_of(isolated, entry))["assignee"] == "jj-j2"
    conn = await conn_of(isolated)
    try:
        await watchstore.release_entry(conn, entry.entry_id, by="clerk", reason="已履行",
                                       closed=watchstore.ClosedReason.PAID)  # fmt: skip
    finally:
        await conn.close()
    cancelled = await eventually(lambda: task_of(isolated, entry), lambda t: t["state"] == "cancelled")
    [notice] = await task_messages(isolated, cancelled["task_id"], minimum=1)
    assert notice["officer_id"] == "jj-j2"
    assert "解除查封" in notice["body"]


async def task_messages_page(isolated: Isolated, page_id: uuid.UUID) -> int:
    conn = await conn_of(isolated)
    try:
        return int(
            await conn.fetchval(
                "SELECT count(*) FROM notifications WHERE page_id = $1 AND send_state = 'sent'", page_id
            )
        )
    finally:
        await conn.close()


@pytest.mark.parametrize(("digit", "state"), [("3", "seized"), ("4", "not_found")])
async def test_sms_replies_set_the_task_state(
    pager: RunningPager, isolated: Isolated, digit: str, state: str
) -> None:
    entry = await watch(isolated, f"浙J5555{digit}")
    await seen(pager, isolated, entry, "kk-a", DAY)
    task = await task_of(isolated, entry)
    await eventually(lambda: task_messages_page(isolated, task["page_id"]), lambda n: n >= 2)
    conn = await conn_of(isolated)
    try:
        code = await conn.fetchval(
            "SELECT reply_code FROM notifications WHERE page_id = $1 AND officer_id = 'jj-j2'",
            task["page_id"],
        )
    finally:
        await conn.close()
    await pager.fake.inbound(f"{pager.url}/twilio/inbound", JUDGE, f"1 {code}")
    answer = await pager.fake.inbound(f"{pager.url}/twilio/inbound", JUDGE, f"{digit} {code}")
    assert "已记录" in answer.text
    final = await task_of(isolated, entry)
    assert final["state"] == state
    conn = await conn_of(isolated)
    try:
        rows = await conn.fetch(
            "SELECT * FROM task_events WHERE task_id = $1 ORDER BY at, event_id", final["task_id"]
        )
        events = [(e["from_state"], e["to_state"], e["actor"]) for e in rows]
    finally:
        await conn.close()
    assert events == [
        (None, "open", "system"),
        ("open", "acknowledged", "jj-j2"),
        ("acknowledged", state, "jj-j2"),
    ]


async def test_task_api_and_cli_show_officers_only_what_is_theirs(
    pager: RunningPager, isolated: Isolated
) -> None:
    entry = await watch(isolated, "浙J66666")
    await seen(pager, isolated, entry, "kk-a", DAY)
    await seen(pager, isolated, entry, "kk-b", DAY + timedelta(minutes=5))
    task = await task_of(isolated, entry)
    auth = {"Authorization": f"Bearer {API_TOKEN}"}
    async with httpx.AsyncClient(base_url=pager.url) as client:
        assert (await client.get("/api/v1/tasks", headers={**auth})).status_code == 400  # on whose behalf?
        mine = await client.get(
            "/api/v1/tasks", headers={**auth, "X-Officer-Id": "jj-p3"}, params={"district": "331002"}
        )
        assert str(task["task_id"]) in {
            t["task_id"] for t in mine.json()["tasks"]
        }  # same court, another group
        other = await client.get("/api/v1/tasks", headers={**auth, "X-Officer-Id": "hy-j1"})
        assert str(task["task_id"]) not in {t["task_id"] for t in other.json()["tasks"]}  # another court
        url = f"/api/v1/tasks/{task['task_id']}"
        assert (await client.get(url, headers={**auth, "X-Officer-Id": "hy-j1"})).status_code == 404
        detail = (await client.get(url, headers={**auth, "X-Officer-Id": "jj-j2"})).json()
        assert [p["outcome"] for p in detail["trail"]] == ["opened", "update_new_place"]
        no_custody = await client.post(
            f"{url}/state", json={"state": "seized"}, headers={**auth, "X-Officer-Id": "jj-j2"}
        )
        assert no_custody.status_code == 409
        taken = await client.post(
            f"{url}/state", json={"state": "acknowledged"}, headers={**auth, "X-Officer-Id": "jj-p2"}
        )
        assert (taken.status_code, taken.json()["assignee"]) == (200, "jj-p2")
        foreign = await client.post(
            f"{url}/state", json={"state": "cancelled"}, headers={**auth, "X-Officer-Id": "hy-j1"}
        )
        assert foreign.status_code == 404
    listed = run_seizewatch(isolated.env, "tasks", "list", "--officer", "jj-l1", "--district", "331002")
    assert str(task["task_id"]) in listed.stdout
    seized = run_seizewatch(
        isolated.env, "tasks", "state", str(task["task_id"]), "seized", "--officer", "jj-p2",
        "--custody-kind", "custodian", "--custody-name", "台州市某拖车保管公司",
    )  # fmt: skip
    assert "浙J66666: seized" in seized.stdout
    refused = run_seizewatch(isolated.env, "tasks", "list", "--officer", "nobody", check=False)
    assert refused.returncode != 0
    assert "not an active officer" in refused.stderr
    shown = run_seizewatch(isolated.env, "tasks", "show", str(task["task_id"]), "--officer", "jj-j2").stdout
    assert "acknowledged → seized by jj-p2 via cli" in shown


async def test_a_long_lived_task_s_messages_never_take_one_another_s_place(
    pager: RunningPager, isolated: Isolated
) -> None:
    """A vehicle that keeps driving makes a task with many updates over weeks: the 90th update's SMS and
    the cancellation's (and the 50th's and a traffic result's) had the same (task, step, officer), so the
    later one was written nowhere and never sent."""
    entry = await watch(isolated, "浙J45454")
    await seen(pager, isolated, entry, "kk-a", DAY)
    task = await task_of(isolated, entry)
    conn = await conn_of(isolated)
    try:  # weeks of updates, told to the same two officers each time
        await conn.execute("UPDATE tasks SET updates = 90 WHERE task_id = $1", task["task_id"])
    finally:
        await conn.close()
    await seen(pager, isolated, entry, "kk-z", DAY + timedelta(minutes=30))
    updates = await task_messages(isolated, task["task_id"], minimum=2)
    assert [u["body"] for u in updates if "再次出现在" in u["body"]], updates
    conn = await conn_of(isolated)
    try:
        await watchstore.release_entry(conn, entry.entry_id, by="clerk", reason="已履行",
                                       closed=watchstore.ClosedReason.PAID)  # fmt: skip
    finally:
        await conn.close()
    await eventually(lambda: task_of(isolated, entry), lambda t: t["state"] == "cancelled")
    told = await task_messages(isolated, task["task_id"], minimum=4)
    cancelled = [n for n in told if "解除查封" in n["body"]]
    assert {n["officer_id"] for n in cancelled} == {u["officer_id"] for u in updates}, told


def traffic_result(request_id: uuid.UUID, plate: str, kind: ResultKind, **changes: Any) -> SeizureResultV1:
    fields: dict[str, Any] = {
        "result_id": f"tp-{uuid.uuid4().hex[:8]}", "request_id": request_id, "plate": plate, "result": kind,
        "at": DAY + timedelta(minutes=20), "place": "G15 路桥收费站", "district": "331004",
        "officer": "王警官 (警号 12345)", "unit": "路桥交警大队",
    }  # fmt: skip
    return SeizureResultV1(**{**fields, **changes})


async def outcome_of(isolated: Isolated, result: SeizureResultV1) -> asyncpg.Record:
    async def probe() -> asyncpg.Record | None:
        conn = await conn_of(isolated)
        try:
            return await conn.fetchrow(
                "SELECT * FROM traffic_results WHERE result_id = $1 AND outcome <> 'received'",
                result.result_id,
            )
        finally:
            await conn.close()

    row = await eventually(probe, lambda r: r is not None)
    assert row is not None
    return row


async def test_a_stop_is_a_task_state_with_its_place_time_and_holder(
    pager: RunningPager, isolated: Isolated
) -> None:
    entry = await watch(isolated, "浙J77771")
    await seen(pager, isolated, entry, "kk-a", DAY)
    stop = traffic_result(entry.entry_id, "浙J77771", ResultKind.STOPPED)
    await publish_results(isolated, stop)
    assert (await outcome_of(isolated, stop))["outcome"] == "applied_stopped"
    task = await eventually(lambda: task_of(isolated, entry), lambda t: t["state"] == "stopped")
    assert (task["stopped_place"], task["stopped_by"]) == ("G15 路桥收费站", "路桥交警大队")
    assert task["stopped_at"] == DAY + timedelta(minutes=20)
    # The court's duty officers are told to take it over (the judge and judicial police on duty).
    told = await task_messages(isolated, task["task_id"], minimum=2)
    assert all("拦停于G15 路桥收费站" in n["body"] for n in told)
    assert "jj-j2" in {n["officer_id"] for n in told}
    auth = {"Authorization": f"Bearer {API_TOKEN}", "X-Officer-Id": "jj-j2"}
    async with httpx.AsyncClient(base_url=pager.url) as client:
        listed = (await client.get("/api/v1/tasks", headers=auth)).json()["tasks"]
        view = next(t for t in listed if t["task_id"] == str(task["task_id"]))
        assert (view["state"], view["stopped_place"], view["stopped_by"]) == (
            "stopped", "G15 路桥收费站", "路桥交警大队",
        )  # fmt: skip
        assert view["stopped_at"] == "2026-11-23T10:20:00+08:00"
    listed_cli = run_seizewatch(isolated.env, "tasks", "list", "--officer", "jj-j2").stdout
    assert "stopped" in listed_cli
    shown = run_seizewatch(isolated.env, "tasks", "show", str(task["task_id"]), "--officer", "jj-j2").stdout
    assert "open → stopped by traffic:路桥交警大队" in shown
    assert "held by 路桥交警大队" in shown
    # Still the vehicle's one live task: the police's seizure then closes it.
    seized = traffic_result(
        entry.entry_id, "浙J77771", ResultKind.SEIZED, at=DAY + timedelta(minutes=50),
        custody_kind=CustodyKind.IMPOUND_LOT, custody_name="路桥区扣押场",
    )  # fmt: skip
    await publish_results(isolated, seized)
    assert (await outcome_of(isolated, seized))["outcome"] == "applied_seized"
    done = await eventually(lambda: task_of(isolated, entry), lambda t: t["state"] == "seized")
    assert done["stopped_place"] == "G15 路桥收费站"  # where it was stopped stays on record


async def test_results_not_applied_say_why(pager: RunningPager, isolated: Isolated) -> None:
    entry = await watch(isolated, "浙J77772")
    await seen(pager, isolated, entry, "kk-a", DAY)
    other_plate = traffic_result(entry.entry_id, "浙J77773", ResultKind.STOPPED)
    unknown = traffic_result(uuid.uuid4(), "浙J77772", ResultKind.STOPPED)
    await publish_results(isolated, other_plate, unknown)
    mismatch = await outcome_of(isolated, other_plate)
    assert mismatch["outcome"] == "plate_mismatch"
    assert "浙J77773" in mismatch["detail"]
    assert "浙J77772" in mismatch["detail"]
    assert (await outcome_of(isolated, unknown))["outcome"] == "unknown_request"
    assert (await task_of(isolated, entry))["state"] == "open"  # neither was applied
    seized = traffic_result(
        entry.entry_id, "浙J77772", ResultKind.SEIZED, custody_kind=CustodyKind.IMPOUND_LOT,
        custody_name="路桥区扣押场",
    )  # fmt: skip
    await publish_results(isolated, seized)
    await outcome_of(isolated, seized)
    late_stop = traffic_result(entry.entry_id, "浙J77772", ResultKind.STOPPED)
    await publish_results(isolated, late_stop)
    assert (await outcome_of(isolated, late_stop))["outcome"] == "already_settled"
    task = await task_of(isolated, entry)  # one task, still seized: no new task was opened
    assert task["state"] == "seized"


async def test_a_stop_of_a_released_vehicle_gets_release_it_on_the_police_list(
    pager: RunningPager, isolated: Isolated
) -> None:
    entry = await watch(isolated, "浙J77774")
    conn = await conn_of(isolated)
    try:
        await watchstore.release_entry(conn, entry.entry_id, by="clerk", reason="当事人已付清",
                                       closed=watchstore.ClosedReason.PAID)  # fmt: skip
    finally:
        await conn.close()
    stop = traffic_result(entry.entry_id, "浙J77774", ResultKind.STOPPED)
    await publish_results(isolated, stop)
    row = await outcome_of(isolated, stop)
    assert row["outcome"] == "released"
    assert "release it" in row["detail"]

    async def values() -> list[object]:
        return [
            r.value
            for r in await topic_records(isolated, SEIZURE_REQUESTS)
            if r.key == str(entry.entry_id).encode()
        ]

    # The request, its tombstone (released), then "release it" for the stop.
    seen_values = await eventually(values, lambda v: len(v) >= 3 and v[-1] is not None)
    release = SeizureReleaseV1.model_validate_json(seen_values[-1])  # type: ignore[arg-type]
    assert (release.instruction, release.result_id, release.case_number) == (
        "release", stop.result_id, entry.case_number,
    )  # fmt: skip
    assert "解除扣留" in release.text
    assert entry.case_number in release.text
    assert "付清" in release.text
    conn = await conn_of(isolated)
    try:
        assert await conn.fetchval("SELECT count(*) FROM tasks WHERE entry_id = $1", entry.entry_id) == 0
    finally:
        await conn.close()


@pytest.fixture(scope="module")
async def traffic_http(
    pager: RunningPager, isolated: Isolated, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[httpx.AsyncClient]:
    """The connectors beside the running pager, waiting long enough for it to apply what is posted."""
    conn = await conn_of(isolated)
    try:
        await add_source(conn, "tp-luqiao", Connector.TRAFFIC, AuthMethod.API_KEY)
    finally:
        await conn.close()
    env = {
        **isolated.env,
        "SEIZEWATCH_INGEST_MASTER_KEY": MASTER_KEY,
        "SEIZEWATCH_INGEST_TRAFFIC_OUTCOME_WAIT_S": "20",
    }
    proc = spawn("ingest", env, tmp_path_factory.mktemp("ingest") / "ingest.log", "SEIZEWATCH_INGEST_PORT")
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{proc.port}", timeout=60) as client:

            async def healthy() -> bool:
                assert proc.process.poll() is None, f"ingest died:\n{proc.tail()}"
                try:
                    return (await client.get("/healthz")).status_code == 200
                except httpx.TransportError:
                    return False

            await eventually(healthy, bool, within=60)
            yield client
    finally:
        stop_process(proc)


async def post_results(client: httpx.AsyncClient, *results: SeizureResultV1) -> httpx.Response:
    return await client.post(
        "/traffic/v1/sources/tp-luqiao/results",
        json={"results": [r.model_dump(mode="json") for r in results]},
        headers={API_KEY_HEADER: source_secret(SecretStr(MASTER_KEY), "tp-luqiao", 1)},
    )


async def test_the_police_are_answered_each_result_with_its_outcome(
    traffic_http: httpx.AsyncClient, pager: RunningPager, isolated: Isolated
) -> None:
    entry = await watch(isolated, "浙J77775")
    await seen(pager, isolated, entry, "kk-a", DAY)
    stop = traffic_result(entry.entry_id, "浙J77775", ResultKind.STOPPED)
    other_plate = traffic_result(entry.entry_id, "浙J77776", ResultKind.STOPPED)
    unknown = traffic_result(uuid.uuid4(), "浙J77775", ResultKind.NOT_FOUND)
    response = await post_results(traffic_http, stop, other_plate, unknown)
    assert response.status_code == 207, response.text  # not everything was applied
    answers = {a["result_id"]: a for a in response.json()["results"]}
    assert (answers[stop.result_id]["outcome"], answers[stop.result_id]["applied"]) == (
        "applied_stopped",
        True,
    )
    mismatch = answers[other_plate.result_id]
    assert (mismatch["outcome"], mismatch["applied"]) == ("plate_mismatch", False)
    assert "浙J77776" in mismatch["detail"]
    assert "浙J77775" in mismatch["detail"]
    assert (answers[unknown.result_id]["outcome"], answers[unknown.result_id]["applied"]) == (
        "unknown_request", False,
    )  # fmt: skip
    # A resend reads the outcome recorded the first time; a batch applied whole is a plain 200.
    again = await post_results(traffic_http, stop)
    assert again.status_code == 200, again.text
    assert again.json()["results"][0]["outcome"] == "applied_stopped"


async def latest_request(isolated: Isolated, entry: WatchEntry) -> dict[str, Any]:
    conn = await conn_of(isolated)
    try:
        payload = await conn.fetchval(
            "SELECT payload FROM outbox WHERE topic = $1 AND key = $2 ORDER BY id DESC LIMIT 1",
            SEIZURE_REQUESTS,
            str(entry.entry_id),
        )
    finally:
        await conn.close()
    assert payload is not None
    return dict(orjson.loads(payload))


async def test_every_request_carries_the_court_on_duty_contact(
    pager: RunningPager, isolated: Isolated, caplog: pytest.LogCaptureFixture
) -> None:
    async def contact_row() -> asyncpg.Record | None:
        conn = await conn_of(isolated)
        try:
            return await conn.fetchrow("SELECT * FROM court_contacts WHERE court = $1", JIAOJIANG)
        finally:
            await conn.close()

    # The pager computes it from the roster: the duty group's judge at DAY (jj-j2, 周婷).
    await eventually(contact_row, lambda r: r is not None and r["officer_id"] == "jj-j2")
    entry = await watch(isolated, "浙J77777")
    request = await latest_request(isolated, entry)
    assert request["court_contact"] == f"周婷（执行法官） {JUDGE}"
    on_topic = await eventually(
        lambda: topic_records(isolated, SEIZURE_REQUESTS),
        lambda rs: any(r.key == str(entry.entry_id).encode() for r in rs),
    )
    [record] = [r for r in on_topic if r.key == str(entry.entry_id).encode()]
    assert record.value is not None
    assert SeizureRequestV1.model_validate_json(record.value).court_contact == f"周婷（执行法官） {JUDGE}"
    exported = orjson.loads(
        run_seizewatch(isolated.env, "traffic", "export", "--format", "json", "--court", JIAOJIANG).stdout
    )
    [mine] = [r for r in exported if r["request_id"] == str(entry.entry_id)]
    assert mine["court_contact"] == f"周婷（执行法官） {JUDGE}"
    # The duty rotates (the next day's group): the court's requests are published again with the new one.
    conn = await conn_of(isolated)
    tomorrow = DAY + timedelta(days=1)
    pager.clock.now = tomorrow  # the pager's own refreshes (every 30 s) agree with the calls below
    try:
        roster = await load_roster(conn)
        next_judge = roster.officer(roster.on_duty(JIAOJIANG, tomorrow).judge)  # type: ignore[union-attr,arg-type]
        assert next_judge is not None
        assert next_judge.officer_id != "jj-j2"
        assert await refresh_contacts(conn, roster, tomorrow) >= 1
        rotated = await latest_request(isolated, entry)
        assert rotated["court_contact"] == f"{next_judge.name}（执行法官） {next_judge.phone}"
        assert await refresh_contacts(conn, roster, tomorrow) == 0  # unchanged: nothing republished
        # A court nobody is on duty for: no contact, said in a warning (and the request still goes out).
        lonely = await watchstore.add_entry(
            conn, watchstore.NewEntry(plate="浙J77778", case_number="(2026)浙9999执1号", court="某县人民法院",
                                      valid_from=DAY - timedelta(days=1)), by="test",
        )  # fmt: skip
        with caplog.at_level("WARNING", logger="alerts.traffic_contacts"):
            await refresh_contacts(conn, roster, tomorrow)
        assert "某县人民法院 has nobody on duty" in caplog.text
        assert (await latest_request(isolated, lonely.entry))["court_contact"] is None
    finally:
        pager.clock.now = DAY
        await refresh_contacts(conn, await load_roster(conn), DAY)  # back to the pager's day
        await conn.close()


async def test_the_police_s_news_of_an_urgent_entry_is_marked_urgent(
    pager: RunningPager, isolated: Isolated
) -> None:
    """The police stopped an urgent vehicle: the court is asked to come for it, so the SMS carries
    【紧急】 as every other SMS asking something about an urgent entry does (it carried none)."""
    entry = await watch(isolated, "浙J33339", Priority.URGENT)
    await seen(pager, isolated, entry, "kk-a", DAY)
    result = SeizureResultV1(
        result_id=f"tp-{uuid.uuid4().hex[:8]}", request_id=entry.entry_id, plate="浙J33339",
        result=ResultKind.STOPPED, at=DAY + timedelta(minutes=20), place="G15 路桥收费站", district="331004",
        officer="王警官 (警号 12345)", unit="路桥交警大队",
    )  # fmt: skip
    await publish_results(isolated, result)
    task = await eventually(lambda: task_of(isolated, entry), lambda t: t["state"] == "stopped")
    told = [
        n for n in await task_messages(isolated, task["task_id"], minimum=2) if "路桥交警大队" in n["body"]
    ]
    assert told
    assert all(n["body"].startswith("【紧急】【执行查控 ") for n in told), [n["body"] for n in told]
