"""One vehicle, several cases (issue 15 item 1): one page and one task per vehicle listing every case, a
seizure under one case that sets the others `seized_other_case` and tells each court — through the
hits topic, the pager's real intake, PostgreSQL and the fake Twilio.

Time-of-day independent: the pager's clock is injected (10:00 Asia/Shanghai, both courts' day shift),
so routing never depends on the hour the tests run at.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import pytest

from alerts.messages import segments
from alerts.pages import SEIZED_TOLD_STEP
from alerts.rosterstore import load_roster
from alerts.settings import PagerSettings
from alerts.tasks import cancel_released, court_duty
from streams import watchstore
from streams.events import SourceKind, new_sighting
from streams.hits import HitV1, record_hit
from streams.matching import Match, MatchKind
from streams.topics import SEIZURE_REQUESTS
from streams.traffic import CustodyKind, ResultKind, SeizureResultV1
from streams.vehicles import Action, PlateColour
from streams.watchlist import WatchEntry
from tests.conftest import Isolated, eventually, run_seizewatch, topic_records
from tests.fakes.twilio_server import FakeTwilio
from tests.integration.pager_support import (
    API_TOKEN,
    HUANGYAN,
    JIAOJIANG,
    Clock,
    RunningPager,
    bare_pager,
    import_example_roster,
    publish,
    publish_results,
    serve_pager,
)

pytestmark = pytest.mark.integration

DAY = datetime(2026, 11, 23, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))


@pytest.fixture(scope="module")
async def pager(isolated: Isolated) -> AsyncIterator[RunningPager]:
    await import_example_roster(isolated.settings.postgres.dsn.get_secret_value())
    settings = PagerSettings(task_suppress_window_s=180, ack_timeout_s=3600)
    async with FakeTwilio() as fake, serve_pager(isolated, fake, Clock(DAY), settings=settings) as running:
        yield running


async def conn_of(isolated: Isolated) -> asyncpg.Connection:
    return await asyncpg.connect(isolated.settings.postgres.dsn.get_secret_value())


async def watch(
    isolated: Isolated, plate: str, court: str, case_number: str, action: Action = Action.SEIZE
) -> WatchEntry:
    conn = await conn_of(isolated)
    try:
        record = await watchstore.add_entry(
            conn,
            watchstore.NewEntry(
                plate=plate, plate_colour=PlateColour.BLUE, case_number=case_number, court=court,
                action=action, valid_from=DAY - timedelta(days=30),
            ),
            by="test",
        )  # fmt: skip
        return record.entry
    finally:
        await conn.close()


def case(n: int) -> str:
    return f"(2026)浙1002执{n}号"


async def two_cases(isolated: Isolated, plate: str) -> tuple[WatchEntry, WatchEntry]:
    """One blue car sealed by 椒江 and by 黄岩, each under its own case."""
    suffix = uuid.uuid4().int % 10000
    return (
        await watch(isolated, plate, JIAOJIANG, case(suffix)),
        await watch(isolated, plate, HUANGYAN, f"(2026)浙1003执{suffix}号"),
    )


async def read(
    pager: RunningPager, isolated: Isolated, entries: tuple[WatchEntry, ...], device: str, at: datetime
) -> list[HitV1]:
    """One camera read of the vehicle: a hit per entry, recorded and published as the matcher does, and
    taken by the pager."""
    pager.clock.now = at
    sighting = new_sighting(
        sighting_id=uuid.uuid4().hex, source_kind=SourceKind.CHECKPOINT, source_id="test", device_id=device,
        plate_raw=entries[0].plate.text, observed_at=at, received_at=at, district="331002",
        device_name=f"设备 {device}",
    )  # fmt: skip
    hits = [HitV1.build(sighting, Match(entry, MatchKind.EXACT, 1.0), matched_at=at) for entry in entries]
    conn = await conn_of(isolated)
    try:
        for hit in hits:
            await record_hit(conn, hit)
    finally:
        await conn.close()
    for hit in hits:
        await publish(isolated, hit)
    await eventually(lambda: taken(isolated, hits), bool)
    return hits


async def taken(isolated: Isolated, hits: list[HitV1]) -> bool:
    """Every hit is in a task's trail, or was logged as a page."""
    conn = await conn_of(isolated)
    try:
        n = await conn.fetchval(
            "SELECT count(*) FROM unnest($1::uuid[]) AS h(hit_id) WHERE EXISTS"
            " (SELECT 1 FROM task_sightings s WHERE s.hit_id = h.hit_id)"
            " OR EXISTS (SELECT 1 FROM pages p WHERE p.hit_id = h.hit_id)",
            [h.hit_id for h in hits],
        )
    finally:
        await conn.close()
    return bool(n == len(hits))


async def tasks_of(isolated: Isolated, entries: tuple[WatchEntry, ...]) -> list[asyncpg.Record]:
    """The tasks opened by any of the vehicle's entries."""
    conn = await conn_of(isolated)
    try:
        return await conn.fetch(
            "SELECT * FROM tasks WHERE entry_id = ANY($1::uuid[]) ORDER BY created_at",
            [e.entry_id for e in entries],
        )
    finally:
        await conn.close()


async def pages_of(isolated: Isolated, entries: tuple[WatchEntry, ...]) -> list[asyncpg.Record]:
    conn = await conn_of(isolated)
    try:
        return await conn.fetch(
            "SELECT * FROM pages WHERE entry_id = ANY($1::uuid[]) ORDER BY created_at",
            [e.entry_id for e in entries],
        )
    finally:
        await conn.close()


async def sent(isolated: Isolated, page_id: uuid.UUID, step: int, minimum: int) -> list[asyncpg.Record]:
    async def probe() -> list[asyncpg.Record]:
        conn = await conn_of(isolated)
        try:
            return await conn.fetch(
                "SELECT * FROM notifications WHERE page_id = $1 AND step = $2 AND send_state = 'sent'"
                " ORDER BY officer_id",
                page_id,
                step,
            )
        finally:
            await conn.close()

    return await eventually(probe, lambda rows: len(rows) >= minimum)


async def duty_of(isolated: Isolated, *courts: str) -> set[str]:
    """The duty judge and judicial police of each court at DAY (who a day page's first step texts)."""
    conn = await conn_of(isolated)
    try:
        roster = await load_roster(conn)
    finally:
        await conn.close()
    return {o.officer_id for court in courts for o in court_duty(roster, court, DAY)}


async def statuses(isolated: Isolated, *entries: WatchEntry) -> list[str]:
    conn = await conn_of(isolated)
    try:
        return [
            await conn.fetchval("SELECT status FROM watch_entries WHERE entry_id = $1", e.entry_id)
            for e in entries
        ]
    finally:
        await conn.close()


async def test_one_read_on_two_cases_makes_one_page_and_one_task_texting_each_person_once(
    pager: RunningPager, isolated: Isolated
) -> None:
    jj, hy = await two_cases(isolated, "浙J70001")
    await read(pager, isolated, (jj, hy), "kk-a", DAY)

    [task] = await tasks_of(isolated, (jj, hy))
    paged = [p for p in await pages_of(isolated, (jj, hy)) if p["state"] != "not_paged"]
    assert len(paged) == 1
    assert task["page_id"] == paged[0]["page_id"]
    conn = await conn_of(isolated)
    try:
        entries = {r["entry_id"] for r in await conn.fetch(
            "SELECT entry_id FROM task_entries WHERE task_id = $1", task["task_id"])}  # fmt: skip
    finally:
        await conn.close()
    assert entries == {jj.entry_id, hy.entry_id}

    # The union of both courts' duty people, each texted once, about both cases, within two segments.
    people = await duty_of(isolated, JIAOJIANG, HUANGYAN)
    first = await sent(isolated, task["page_id"], 0, len(people))
    assert {n["officer_id"] for n in first} == people
    assert len(first) == len(people)
    for n in first:
        assert segments(n["body"]) <= 2
        both = jj.case_number in n["body"] and hy.case_number in n["body"]
        assert both or "等2案" in n["body"], n["body"]
    assert len(pager.fake.messages) >= len(people)


async def test_a_later_read_on_another_case_joins_the_open_task(
    pager: RunningPager, isolated: Isolated
) -> None:
    jj, hy = await two_cases(isolated, "浙J70002")
    await read(pager, isolated, (jj,), "kk-a", DAY)  # say the 黄岩 hit of this read never came
    await read(pager, isolated, (hy,), "kk-a", DAY + timedelta(minutes=1))
    [task] = await tasks_of(isolated, (jj, hy))
    assert [p["entry_id"] for p in await pages_of(isolated, (jj, hy))] == [jj.entry_id]
    conn = await conn_of(isolated)
    try:
        rows = await conn.fetch(
            "SELECT outcome FROM task_sightings WHERE task_id = $1 ORDER BY observed_at", task["task_id"]
        )
        outcomes = [r["outcome"] for r in rows]
    finally:
        await conn.close()
    assert outcomes == ["opened", "suppressed"]  # same place, a minute later: trailed, no second SMS


async def test_seizing_under_one_case_closes_the_others_as_seized_under_another_case(
    pager: RunningPager, isolated: Isolated
) -> None:
    jj, hy = await two_cases(isolated, "浙J70003")
    await read(pager, isolated, (jj, hy), "kk-a", DAY)
    [task] = await tasks_of(isolated, (jj, hy))
    people = await duty_of(isolated, JIAOJIANG, HUANGYAN)
    await sent(isolated, task["page_id"], 0, len(people))
    pager.clock.now = DAY + timedelta(minutes=30)
    async with httpx.AsyncClient(base_url=pager.url) as client:
        response = await client.post(
            f"/api/v1/tasks/{task['task_id']}/state",
            headers={"Authorization": f"Bearer {API_TOKEN}", "X-Officer-Id": "jj-j2"},
            json={"state": "seized", "custody_kind": "impound_lot", "custody_name": "椒江区扣押场"},
        )
    assert response.status_code == 200, response.text

    # Custody once, on the one task. The case it was seized under (the task's own: whichever hit of the
    # read the pager took first, the hits being keyed by entry) closes as seized, the other is not active.
    own, other = (jj, hy) if task["entry_id"] == jj.entry_id else (hy, jj)
    [after] = await tasks_of(isolated, (jj, hy))
    assert (after["state"], after["custody_name"]) == ("seized", "椒江区扣押场")
    assert await statuses(isolated, own, other) == ["seized", "seized_other_case"]

    # Each court is told once (its duty judge and judicial police), through the notification path.
    told = await sent(isolated, task["page_id"], SEIZED_TOLD_STEP, len(people))
    assert {n["officer_id"] for n in told} == people
    own_duty = await duty_of(isolated, own.court)
    for n in told:
        assert segments(n["body"]) <= 2
        assert own.case_number in n["body"]
        assert "椒江区扣押场" in n["body"]
        if n["officer_id"] not in own_duty:
            assert other.case_number in n["body"]
            assert "他案已扣押" in n["body"]

    # Both courts' officers see the one task with both cases and their states.
    async with httpx.AsyncClient(base_url=pager.url) as client:
        shown = await client.get(
            f"/api/v1/tasks/{task['task_id']}",
            headers={"Authorization": f"Bearer {API_TOKEN}", "X-Officer-Id": "hy-chief"},  # never texted
        )
    assert shown.status_code == 200, shown.text
    cases = [(c["case_number"], c["status"]) for c in shown.json()["cases"]]
    assert cases == [(own.case_number, "seized"), (other.case_number, "seized_other_case")]

    # Off the traffic police's list: a tombstone for the other case too.
    async def requests() -> list[object]:
        return [
            r.value
            for r in await topic_records(isolated, SEIZURE_REQUESTS)
            if r.key == str(other.entry_id).encode()
        ]

    await eventually(requests, lambda v: len(v) >= 2 and v[-1] is None)

    # A hit on the other case the matcher made before it heard: nobody paged, no new task.
    await read(pager, isolated, (other,), "kk-b", DAY + timedelta(minutes=40))
    assert len(await tasks_of(isolated, (jj, hy))) == 1
    assert [p["entry_id"] for p in await pages_of(isolated, (jj, hy))] == [own.entry_id]

    # The other court settles its own entry afterwards, by plate and case, as a clerk does.
    done = run_seizewatch(
        isolated.env, "watchlist", "release", "--plate", "浙J70003", "--case", other.case_number,
        "--reason", "已履行", "--category", "paid", "--by", "clerk",
    )  # fmt: skip
    assert str(other.entry_id) in done.stdout
    assert await statuses(isolated, own, other) == ["seized", "released"]


async def test_a_traffic_police_seizure_under_the_other_case_closes_both(
    pager: RunningPager, isolated: Isolated
) -> None:
    jj, hy = await two_cases(isolated, "浙J70004")
    await read(pager, isolated, (jj, hy), "kk-a", DAY)
    [task] = await tasks_of(isolated, (jj, hy))
    result = SeizureResultV1(
        result_id=f"tp-{uuid.uuid4().hex[:8]}", request_id=hy.entry_id, plate="浙J70004",
        result=ResultKind.SEIZED, at=DAY + timedelta(minutes=20), place="G15 路桥收费站", district="331004",
        officer="王警官 (警号 12345)", unit="路桥交警大队", custody_kind=CustodyKind.IMPOUND_LOT,
        custody_name="路桥区扣押场",
    )  # fmt: skip
    await publish_results(isolated, result)

    async def closed() -> list[asyncpg.Record]:
        return await tasks_of(isolated, (jj, hy))

    [after] = await eventually(closed, lambda ts: len(ts) == 1 and ts[0]["state"] == "seized")
    assert after["task_id"] == task["task_id"]  # the police's seizure closed the vehicle's one task
    assert await statuses(isolated, jj, hy) == ["seized_other_case", "seized"]
    # 椒江 is told its case is seized under 黄岩's; 黄岩 hears it from the police's news, not twice.
    jj_duty = await duty_of(isolated, JIAOJIANG)
    told = await sent(isolated, task["page_id"], SEIZED_TOLD_STEP, len(jj_duty))
    assert {n["officer_id"] for n in told} == jj_duty
    assert all(hy.case_number in n["body"] and jj.case_number in n["body"] for n in told)


async def police_report(isolated: Isolated, entry: WatchEntry, kind: ResultKind, at: datetime) -> str:
    """A traffic-police result on the entry's request, through their topic; the recorded outcome."""
    result = SeizureResultV1(
        result_id=f"tp-{uuid.uuid4().hex[:8]}", request_id=entry.entry_id, plate=entry.plate.text,
        result=kind, at=at, place="G15 路桥收费站", district="331004", officer="王警官 (警号 12345)",
        unit="路桥交警大队",
        custody_kind=CustodyKind.IMPOUND_LOT if kind is ResultKind.SEIZED else None,
        custody_name="路桥区扣押场" if kind is ResultKind.SEIZED else None,
    )  # fmt: skip
    await publish_results(isolated, result)

    async def outcome() -> asyncpg.Record | None:
        conn = await conn_of(isolated)
        try:
            return await conn.fetchrow(
                "SELECT outcome, detail FROM traffic_results WHERE result_id = $1 AND outcome <> 'received'",
                result.result_id,
            )
        finally:
            await conn.close()

    row = await eventually(outcome, lambda r: r is not None)
    assert row is not None
    return f"{row['outcome']}: {row['detail']}"


async def test_a_stop_under_the_other_case_holds_the_vehicles_one_task_and_a_late_result_changes_nothing(
    pager: RunningPager, isolated: Isolated
) -> None:
    jj, hy = await two_cases(isolated, "浙J70008")
    await read(pager, isolated, (jj,), "kk-a", DAY)  # only 椒江's case seen: its task
    [task] = await tasks_of(isolated, (jj, hy))
    # The police stop it on 黄岩's request: the vehicle's one task (opened by 椒江's case) is stopped.
    assert (await police_report(isolated, hy, ResultKind.STOPPED, DAY + timedelta(minutes=5))).startswith(
        "applied_stopped"
    )
    [stopped] = await tasks_of(isolated, (jj, hy))
    assert (stopped["task_id"], stopped["state"]) == (task["task_id"], "stopped")
    # A stopped task is the vehicle's live task: a later read on 黄岩's case joins it, no second task.
    later = await read(pager, isolated, (hy,), "kk-b", DAY + timedelta(minutes=10))
    assert [t["task_id"] for t in await tasks_of(isolated, (jj, hy))] == [task["task_id"]]
    conn = await conn_of(isolated)
    try:
        trailed = await conn.fetchval("SELECT task_id FROM task_sightings WHERE hit_id = $1", later[0].hit_id)
        cases = await conn.fetchval("SELECT count(*) FROM task_entries WHERE task_id = $1", task["task_id"])
    finally:
        await conn.close()
    assert (trailed, cases) == (task["task_id"], 2)
    # Seized on 椒江's request: 黄岩's case is seized under it (seize_entries), its court told.
    seized = await police_report(isolated, jj, ResultKind.SEIZED, DAY + timedelta(minutes=30))
    assert seized.startswith("applied_seized")
    assert await statuses(isolated, jj, hy) == ["seized", "seized_other_case"]
    hy_duty = await duty_of(isolated, HUANGYAN)
    told = await sent(isolated, task["page_id"], SEIZED_TOLD_STEP, len(hy_duty))
    assert {n["officer_id"] for n in told} == hy_duty
    # A late result on 黄岩's request: in custody under another case, nothing applied, and said why.
    late = await police_report(isolated, hy, ResultKind.STOPPED, DAY + timedelta(minutes=40))
    assert late == (
        "already_settled: the vehicle is already seized under another case (entry seized_other_case):"
        " nothing to do"
    )
    [after] = await tasks_of(isolated, (jj, hy))
    assert after["state"] == "seized"


async def test_a_stop_on_a_released_case_of_a_vehicle_still_wanted_under_another_is_applied_not_released(
    pager: RunningPager, isolated: Isolated
) -> None:
    """椒江 settled its case; 黄岩's still wants the car seized. The police stop it on 椒江's (older) request:
    they were told to let it go ("解除扣留，放行"), a car another court is seizing."""
    jj, hy = await two_cases(isolated, "浙J70011")
    conn = await conn_of(isolated)
    try:
        await watchstore.release_entry(conn, jj.entry_id, by="jj-clerk", reason="执行和解",
                                       closed=watchstore.ClosedReason.SETTLED)  # fmt: skip
    finally:
        await conn.close()
    outcome = await police_report(isolated, jj, ResultKind.STOPPED, DAY + timedelta(minutes=5))
    assert outcome.startswith("applied_stopped"), outcome
    assert "黄岩" in outcome or hy.case_number in outcome, outcome  # says under which case it was applied
    [task] = await tasks_of(isolated, (jj, hy))
    assert task["state"] == "stopped"
    conn = await conn_of(isolated)
    try:
        releases = await conn.fetchval(
            "SELECT count(*) FROM outbox WHERE key = $1 AND convert_from(payload, 'UTF8') LIKE '%放行%'",
            str(jj.entry_id),
        )
    finally:
        await conn.close()
    assert releases == 0  # no "release it" for a vehicle still wanted


async def test_releasing_one_case_keeps_the_task_until_the_vehicles_last_case_is_released(
    pager: RunningPager, isolated: Isolated
) -> None:
    jj, hy = await two_cases(isolated, "浙J70005")
    await read(pager, isolated, (jj, hy), "kk-a", DAY)
    [task] = await tasks_of(isolated, (jj, hy))
    conn = await conn_of(isolated)
    try:
        await watchstore.release_entry(conn, jj.entry_id, by="jj-clerk", reason="执行和解",
                                       closed=watchstore.ClosedReason.SETTLED)  # fmt: skip
        # The round the pager's loop runs (run here, so the test knows it ran after the release).
        assert await cancel_released(conn, await load_roster(conn), DAY) == 0
        assert await conn.fetchval("SELECT state FROM tasks WHERE task_id = $1", task["task_id"]) == "open"
        await watchstore.release_entry(conn, hy.entry_id, by="hy-clerk", reason="已履行",
                                       closed=watchstore.ClosedReason.PAID)  # fmt: skip
    finally:
        await conn.close()
    [after] = await eventually(lambda: tasks_of(isolated, (jj, hy)), lambda ts: ts[0]["state"] == "cancelled")
    assert after["task_id"] == task["task_id"]


async def test_two_pagers_taking_the_hits_of_one_read_at_once_open_one_task(isolated: Isolated) -> None:
    """Hits are keyed by entry: the two hits of one read may reach two pager processes at the same time."""
    jj, hy = await two_cases(isolated, "浙J70006")
    sighting = new_sighting(
        sighting_id=uuid.uuid4().hex, source_kind=SourceKind.CHECKPOINT, source_id="test", device_id="kk-z",
        plate_raw="浙J70006", observed_at=DAY, received_at=DAY, district="331002", device_name="设备 kk-z",
    )  # fmt: skip
    hits = [HitV1.build(sighting, Match(e, MatchKind.EXACT, 1.0), matched_at=DAY) for e in (jj, hy)]
    conn = await conn_of(isolated)
    try:
        for hit in hits:
            await record_hit(conn, hit)
    finally:
        await conn.close()
    settings = PagerSettings(task_suppress_window_s=180, ack_timeout_s=3600)
    async with (
        FakeTwilio() as fake,
        bare_pager(isolated, fake, Clock(DAY), settings) as one,
        bare_pager(isolated, fake, Clock(DAY), settings) as other,
    ):
        outcomes = await asyncio.gather(one.take_hit(hits[0]), other.take_hit(hits[1]))
    assert sorted(outcomes) == ["opened", "suppressed"]
    assert len(await tasks_of(isolated, (jj, hy))) == 1


async def test_a_locate_only_case_beside_a_case_to_seize_makes_a_seizure_task(
    pager: RunningPager, isolated: Isolated
) -> None:
    suffix = uuid.uuid4().int % 10000
    locate = await watch(isolated, "浙J70007", JIAOJIANG, case(suffix), Action.LOCATE)
    seize = await watch(isolated, "浙J70007", HUANGYAN, f"(2026)浙1003执{suffix}号")
    await read(pager, isolated, (locate,), "kk-a", DAY)  # the locate case's hit comes first
    await read(pager, isolated, (seize,), "kk-a", DAY)
    [task] = await tasks_of(isolated, (locate, seize))
    assert task["kind"] == "seize"
    people = await duty_of(isolated, JIAOJIANG, HUANGYAN)
    for n in await sent(isolated, task["page_id"], 0, len(people)):
        assert "扣押。" in n["body"]
        assert "勿扣押" not in n["body"]
