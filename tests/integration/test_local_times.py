"""Every list and show a person reads gives times in the court's zone with the offset: tasks list and
show, the task API's JSON, watchlist list, traffic list — never UTC ISO, never the machine's zone.

Two courts: 天山 on the roster in Asia/Urumqi (+06:00 in the tz database), 椒江 not on the roster (the
default, Asia/Shanghai). The rows are written in SQL; the commands run as real processes (in UTC, as CI
machines do, so the machine's zone would show +00:00)."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import asyncpg
import pytest

from alerts import taskviews
from alerts.rosterstore import load_roster
from tests.conftest import Isolated, run_seizewatch

pytestmark = pytest.mark.integration

TS = "乌鲁木齐市天山区人民法院"
JJ = "台州市椒江区人民法院"
SEEN = datetime(2026, 11, 23, 2, 51, tzinfo=UTC)  # 08:51 in Urumqi, 10:51 in Shanghai
TAKEN = datetime(2026, 11, 23, 3, 5, tzinfo=UTC)
UNTIL = datetime(2027, 5, 31, 16, 0, tzinfo=UTC)  # midnight of 1 June in Shanghai, 22:00 in Urumqi
CHANGED = datetime(2026, 11, 1, 1, 30, tzinfo=UTC)


def cli(isolated: Isolated, *args: str) -> subprocess.CompletedProcess[str]:
    return run_seizewatch({**isolated.env, "TZ": "UTC"}, *args)


@pytest.fixture(scope="module")
async def world(isolated: Isolated) -> AsyncIterator[dict[str, uuid.UUID]]:
    conn = await asyncpg.connect(isolated.settings.postgres.dsn.get_secret_value())
    ids = {
        "ts": uuid.uuid4(),
        "jj": uuid.uuid4(),
        "task": uuid.uuid4(),
        "hit": uuid.uuid4(),
        "page": uuid.uuid4(),
    }
    try:
        async with conn.transaction():
            await conn.execute(
                "INSERT INTO courts (court_id, timezone, rotation_anchor, updated_by)"
                " VALUES ($1, 'Asia/Urumqi', '2026-01-01', 'test')",
                TS,
            )
            await conn.execute(
                "INSERT INTO officers (officer_id, name, phone, court_id, role, updated_by)"
                " VALUES ('ts-j1', '阿依古丽', '+8613900000001', $1, 'judge', 'test')",
                TS,
            )
            for key, court, plate in (("ts", TS, "新A12345"), ("jj", JJ, "浙J12345")):
                await conn.execute(
                    "INSERT INTO watch_entries (entry_id, plate, case_number, court, action, valid_from,"
                    " valid_until, created_by, created_at, updated_by, updated_at)"
                    " VALUES ($1, $2, '(2026)执1号', $3, 'seize', $4, $5, 'clerk', $4, 'clerk', $4)",
                    ids[key], plate, court, CHANGED, UNTIL,
                )  # fmt: skip
            await conn.execute(
                "INSERT INTO hits (hit_id, sighting_id, entry_id, match_kind, score, plate_read, plate_raw,"
                " source_kind, source_id, device_id, observed_at, observed_offset_min, received_at, backfill)"
                " VALUES ($1, 's-1', $2, 'exact', 1, '新A12345', '新A12345', 'parking_entry', 'lot', 'dev-1',"
                " $3, 360, $3, false)",
                ids["hit"], ids["ts"], SEEN,
            )  # fmt: skip
            await conn.execute(
                "INSERT INTO pages (page_id, hit_id, entry_id, hit, plan, info_only, state, sighted_at,"
                " created_at, updated_at) VALUES ($1, $2, $3, '{}', '{}', false, 'acknowledged', $4, $4, $4)",
                ids["page"], ids["hit"], ids["ts"], SEEN,
            )  # fmt: skip
            await conn.execute(
                "INSERT INTO tasks (task_id, entry_id, kind, state, court, page_id, first_seen_at,"
                " last_seen_at, created_at, updated_at)"
                " VALUES ($1, $2, 'seize', 'acknowledged', $3, $4, $5, $5, $5, $6)",
                ids["task"], ids["ts"], TS, ids["page"], SEEN, TAKEN,
            )  # fmt: skip
            await conn.execute(
                "INSERT INTO task_sightings (hit_id, task_id, observed_at, device_id, device_name,"
                " source_kind, outcome)"
                " VALUES ($1, $2, $3, 'dev-1', '天山万达停车场', 'parking_entry', 'opened')",
                ids["hit"], ids["task"], SEEN,
            )  # fmt: skip
            for at, from_state, to_state in ((SEEN, None, "open"), (TAKEN, "open", "acknowledged")):
                await conn.execute(
                    "INSERT INTO task_events (task_id, at, actor, channel, from_state, to_state)"
                    " VALUES ($1, $2, 'ts-j1', 'sms', $3, $4)",
                    ids["task"], at, from_state, to_state,
                )  # fmt: skip
        yield ids
    finally:
        await conn.close()


async def test_tasks_list_and_show_in_the_courts_zone(
    isolated: Isolated, world: dict[str, uuid.UUID]
) -> None:
    listed = cli(isolated, "tasks", "list", "--officer", "ts-j1", "--all").stdout
    assert "2026-11-23 08:51+06:00" in listed
    shown = cli(isolated, "tasks", "show", str(world["task"]), "--officer", "ts-j1").stdout
    assert "first seen 2026-11-23 08:51+06:00, last 2026-11-23 08:51+06:00" in shown
    assert "seen 2026-11-23 08:51+06:00 at 天山万达停车场 (opened)" in shown
    assert "2026-11-23 09:05+06:00 open → acknowledged by ts-j1 via sms" in shown
    assert "+00:00" not in listed + shown
    assert "T02:51" not in shown  # no UTC ISO string


async def test_the_task_json_is_local_iso(isolated: Isolated, world: dict[str, uuid.UUID]) -> None:
    conn = await asyncpg.connect(isolated.settings.postgres.dsn.get_secret_value())
    try:
        who = taskviews.officer_of(await load_roster(conn), "ts-j1")
        view = await taskviews.get_task(conn, who, world["task"])
        trail, events = await taskviews.trail_and_events(conn, world["task"], view.zone)
    finally:
        await conn.close()
    data = view.as_json()
    assert (data["timezone"], data["first_seen_at"]) == ("Asia/Urumqi", "2026-11-23T08:51:00+06:00")
    assert trail[0]["at"] == "2026-11-23T08:51:00+06:00"
    assert [e["at"] for e in events] == ["2026-11-23T08:51:00+06:00", "2026-11-23T09:05:00+06:00"]


async def test_watchlist_list_in_each_courts_zone(isolated: Isolated, world: dict[str, uuid.UUID]) -> None:
    listed = cli(isolated, "watchlist", "list").stdout
    lines = {line.split("│")[2].strip(): line for line in listed.splitlines() if "执1号" in line}
    assert "2027-05-31 22:00+06:00" in lines["新A12345"]  # the seal's end, on Urumqi's clock
    assert "2026-11-01 07:30+06:00 clerk" in lines["新A12345"]  # the last change
    assert "2027-06-01 00:00+08:00" in lines["浙J12345"]  # not on the roster: Asia/Shanghai
    assert "2026-11-01 09:30+08:00 clerk" in lines["浙J12345"]


async def test_traffic_list_gives_instants_with_the_offset(
    isolated: Isolated, world: dict[str, uuid.UUID]
) -> None:
    listed = cli(isolated, "traffic", "list", "--court", JJ).stdout
    assert "2027-06-01 00:00+08:00" in listed  # until, as the export gives it
    assert "2026-11-01 09:30+08:00" in listed  # requested


async def test_watchlist_add_reads_until_on_the_courts_clock(
    isolated: Isolated, world: dict[str, uuid.UUID]
) -> None:
    """`--until 2027-06-01 00:00` is midnight where the court is, whatever the machine's zone (UTC here)."""
    for plate, court in (("新A54321", TS), ("浙J54321", JJ)):
        cli(isolated, "watchlist", "add", plate, "--case", "(2026)执2号", "--court", court,
            "--until", "2027-06-01 00:00")  # fmt: skip
    conn = await asyncpg.connect(isolated.settings.postgres.dsn.get_secret_value())
    try:
        rows = await conn.fetch(
            "SELECT plate, valid_until FROM watch_entries WHERE case_number = '(2026)执2号'"
        )
        until: dict[str, datetime] = {r["plate"]: r["valid_until"] for r in rows}
    finally:
        await conn.close()
    assert until["新A54321"] == datetime(2027, 6, 1, tzinfo=ZoneInfo("Asia/Urumqi"))
    assert until["浙J54321"] == datetime(2027, 6, 1, tzinfo=ZoneInfo("Asia/Shanghai"))  # not on the roster
