"""Rosters in the real PostgreSQL: import the example through the command, load it back, `who` by day and
by night, overrides and replacements, validation."""

from __future__ import annotations

import json
import subprocess
from collections.abc import AsyncIterator
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import asyncpg
import pytest

from alerts import rosterstore
from alerts.rosters import Role
from streams.errors import InvalidInput
from tests.conftest import ROOT, Isolated, run_seizewatch

pytestmark = pytest.mark.integration

EXAMPLE = ROOT / "deploy" / "examples" / "roster.json"
JJ = "台州市椒江区人民法院"
HY = "台州市黄岩区人民法院"
SHANGHAI = ZoneInfo("Asia/Shanghai")
ROSTER_TABLES = (
    "courts, officers, duty_groups, group_overrides, member_overrides, court_districts, night_contacts"
)


def local(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=SHANGHAI)


def roster_cli(isolated: Isolated, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """`seizewatch roster …` as a real process against the isolated database."""
    return run_seizewatch(isolated.env, "roster", *args, check=check)


@pytest.fixture
async def conn(isolated: Isolated) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(isolated.settings.postgres.dsn.get_secret_value())
    try:
        yield connection
    finally:
        await connection.close()


@pytest.fixture
async def example(conn: asyncpg.Connection) -> rosterstore.RosterDocument:
    """The example roster, imported (idempotent: each test starts from it)."""
    doc = rosterstore.parse_document(EXAMPLE.read_bytes())
    await rosterstore.import_roster(conn, doc, by="fixture")
    return doc


async def test_import_through_the_command_then_load_it_back(
    isolated: Isolated, conn: asyncpg.Connection
) -> None:
    await conn.execute(f"TRUNCATE {ROSTER_TABLES}")
    first = roster_cli(isolated, "import", str(EXAMPLE), "--by", "clerk-li").stdout
    assert "roster.json: imported" in first
    assert "│ officers        │ 20       │ 0       │ 0       │ 0" in first
    assert "officers inserted: 20 rows" in first
    assert "courts inserted: 台州市椒江区人民法院" in first
    assert "problem" not in first
    again = roster_cli(isolated, "import", str(EXAMPLE)).stdout
    assert "roster.json: nothing changed" in again

    roster = await rosterstore.load_roster(conn)
    assert (len(roster.courts), len(roster.officers), len(roster.groups)) == (2, 20, 5)
    assert roster.validate() == []
    assert roster.courts_covering("331003") == [HY]
    court = roster.court(JJ)
    assert court is not None
    assert (court.rotation_anchor.isoformat(), court.handoff.isoformat(), court.bureau_duty_leader) == (
        "2026-11-01",
        "08:30:00",
        "jj-chief",
    )
    group = roster.on_duty(JJ, local("2026-11-23 21:00"))
    assert group is not None
    assert (group.group_id, group.bureau_leader, group.judge, group.judicial_police) == (
        "jj-2",
        "jj-l2",
        "jj-j2",
        "jj-p2",
    )
    contact = roster.night_contact("331002", local("2026-11-23 21:00"))
    assert contact is not None
    assert contact.officer_id == "st-baiyun"
    # every row carries who imported it
    assert await conn.fetchval("SELECT count(*) FROM officers WHERE updated_by = 'clerk-li'") == 20


async def test_import_reports_what_changed(
    conn: asyncpg.Connection, example: rosterstore.RosterDocument, tmp_path: Path
) -> None:
    data = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    data["officers"][2]["phone"] = "+86 138 0000 9012"  # spaces are tolerated
    data["courts"][0]["districts"] = ["331002", "331099"]
    data["groups"] = [g for g in data["groups"] if g["group_id"] != "jj-3"]
    del data["courts"][1]["districts"]  # absent: 黄岩's districts stay
    changed = rosterstore.parse_document(json.dumps(data))
    report = await rosterstore.import_roster(conn, changed, by="clerk-li")
    assert report.tables["officers"].updated == ("jj-j1",)
    assert report.tables["officers"].unchanged == 19
    assert report.tables["court_districts"].inserted == (f"{JJ} 331099",)
    assert report.tables["court_districts"].removed == ()
    assert report.kept == (f"group jj-3 of {JJ} is not in the document and stays in the rotation",)
    assert "district 331099: no night contact, its courts are woken at night for every hit" in report.problems
    assert await conn.fetchval("SELECT phone FROM officers WHERE officer_id = 'jj-j1'") == "+8613800009012"

    back = await rosterstore.import_roster(conn, example, by="clerk-li")
    assert back.tables["officers"].updated == ("jj-j1",)
    assert back.tables["court_districts"].removed == (f"{JJ} 331099",)
    assert back.problems == ()


async def test_import_is_all_or_nothing(
    conn: asyncpg.Connection, example: rosterstore.RosterDocument
) -> None:
    before = await conn.fetchval("SELECT count(*) FROM officers")
    data = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    data["officers"].append(
        {"officer_id": "jj-new", "name": "新人", "phone": "+8613800001099", "court_id": JJ, "role": "judge"}
    )
    data["groups"][0]["judge"] = "nobody-by-that-id"
    with pytest.raises(InvalidInput) as unknown:
        await rosterstore.import_roster(conn, rosterstore.parse_document(json.dumps(data)), by="x")
    assert unknown.value.reason == "unknown_reference"
    assert "nobody-by-that-id" in str(unknown.value)
    assert await conn.fetchval("SELECT count(*) FROM officers") == before  # jj-new was not kept either

    data = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    data["officers"][1]["phone"] = data["officers"][2]["phone"]
    with pytest.raises(InvalidInput) as duplicate:
        await rosterstore.import_roster(conn, rosterstore.parse_document(json.dumps(data)), by="x")
    assert duplicate.value.reason == "conflict"

    data = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    data["officers"][3]["phone"] = "013800001013"
    with pytest.raises(InvalidInput) as bad_phone:
        rosterstore.parse_document(json.dumps(data))
    assert bad_phone.value.field == "officers.3.phone"


async def test_who_by_day_and_by_night(isolated: Isolated, example: rosterstore.RosterDocument) -> None:
    day = roster_cli(isolated, "who", "--at", "2026-11-23 10:00", "--district", "331002").stdout
    assert "On duty at 2026-11-23 10:00+08:00 (Asia/Shanghai)" in day
    assert "2026-11-23 08:30+08:00 → 2026-11-24 08:30+08:00" in day  # 椒江's shift, local with offset
    for name in ("刘洋", "周婷", "吴磊", "黄涛", "许芳", "冯军"):  # 椒江 第二组, 黄岩 第一组
        assert name in day
    assert "→ 周婷 (jj-j2) +8613800001022 (judge)" in day
    assert "→ 吴磊 (jj-p2) +8613800001023 (judicial_police)" in day
    assert "→ 白云派出所值班室" not in day
    assert "in force" not in day

    night = roster_cli(isolated, "who", "--at", "2026-11-23 21:00", "--district", "331002").stdout
    assert "in force" in night
    assert "→ 白云派出所值班室 (st-baiyun) +8613800003001 (station_duty)" in night
    assert "→ 周婷" not in night
    assert f"told at 2026-11-24 08:00+08:00, not woken: on-duty judge + judicial_police of {JJ}" in night
    assert "the courts are not woken and are told at 2026-11-24 08:00+08:00" in night  # the plan's note

    urgent = roster_cli(
        isolated, "who", "--at", "2026-11-23 21:00", "--district", "331002", "--priority", "urgent"
    ).stdout
    assert "→ 白云派出所值班室" in urgent
    assert "→ 周婷 (jj-j2)" in urgent

    elsewhere = roster_cli(isolated, "who", "--at", "2026-11-23 10:00", "--district", "331002", "--owner", HY)
    assert "→ 许芳 (hy-j1)" in elsewhere.stdout  # 黄岩's vehicle seen in 椒江: both courts
    assert "→ 周婷 (jj-j2)" in elsewhere.stdout


def on_duty_day(before: date, after: date, days: int) -> set[str]:
    """The local dates ``days`` after today, for a today read before and after a command ran."""
    return {str(d + timedelta(days=days)) for d in (before, after)}


@pytest.mark.parametrize(
    ("typed", "days", "clock"),
    [
        ("10:00", 0, "10:00"),
        ("今天 10:00", 0, "10:00"),
        ("明天 21:00", 1, "21:00"),
        ("明天21:00", 1, "21:00"),
        ("tomorrow 08:30", 1, "08:30"),
        ("Tomorrow 21:00", 1, "21:00"),
    ],
)
async def test_who_at_a_time_of_today_or_tomorrow(
    isolated: Isolated, example: rosterstore.RosterDocument, typed: str, days: int, clock: str
) -> None:
    """`--at` relative to today (Asia/Shanghai) gives what the full date and time gives.

    Time-of-day independent: the expected output is the same command with the date written out, for
    the local date before and after the run (they differ only across a local midnight).
    """
    before = datetime.now(SHANGHAI).date()
    relative = roster_cli(isolated, "who", "--at", typed, "--district", "331002").stdout
    after = datetime.now(SHANGHAI).date()
    spelled = {
        roster_cli(isolated, "who", "--at", f"{day} {clock}", "--district", "331002").stdout
        for day in on_duty_day(before, after, days)
    }
    assert relative in spelled
    assert any(
        f"On duty at {day} {clock}+08:00 (Asia/Shanghai)" in relative
        for day in on_duty_day(before, after, days)
    )


@pytest.mark.parametrize(
    ("typed", "says"),
    [
        ("下周 21:00", "unknown day '下周'"),
        ("21", "'21' is not a time"),
        ("25:00", "no such time of day"),
        ("2026-11-31 10:00", "is not a time"),
        ("", "no time given"),
    ],
)
async def test_who_at_refuses_what_it_cannot_read(
    isolated: Isolated, example: rosterstore.RosterDocument, typed: str, says: str
) -> None:
    result = roster_cli(isolated, "who", "--at", typed, check=False)
    assert result.returncode == 2
    assert "Invalid value for '--at'" in result.stderr
    assert says in result.stderr
    assert "明天 21:00" in result.stderr  # the forms it takes


async def test_overrides_and_replacements_through_the_command(
    isolated: Isolated, conn: asyncpg.Connection, example: rosterstore.RosterDocument
) -> None:
    # 2026-12-01 is 30 days after the anchor: 第一组 (jj-1) by rotation
    made = roster_cli(
        isolated, "override", "--court", JJ, "--group", "jj-3", "--from", "2026-12-01 08:30",
        "--to", "2026-12-02 08:30", "--reason", "第一组外出执行", "--by", "clerk-li",
    )  # fmt: skip
    assert "jj-3 on duty" in made.stdout
    override_id = made.stdout.split("#")[1].split(":")[0]
    overlapping = roster_cli(
        isolated, "override", "--court", JJ, "--group", "jj-2", "--from", "2026-12-02 08:00",
        "--to", "2026-12-02 12:00", check=False,
    )  # fmt: skip
    assert overlapping.returncode == 1
    assert f"overlaps group override #{override_id}" in overlapping.stderr
    assert "+08:00 – " in overlapping.stderr  # its period in the court's time, not UTC
    assert "+00:00" not in overlapping.stderr

    replaced = roster_cli(
        isolated, "replace", "--group", "jj-3", "--role", "judge", "--officer", "jj-j4",
        "--from", "2026-12-01 12:00", "--to", "2026-12-01 18:00", "--reason", "孙丽开庭",
    )  # fmt: skip
    member_id = replaced.stdout.split("#")[1].split(":")[0]
    wrong_role = roster_cli(
        isolated, "replace", "--group", "jj-3", "--role", "judicial_police", "--officer", "jj-j4",
        "--from", "2026-12-01 12:00", "--to", "2026-12-01 18:00", check=False,
    )  # fmt: skip
    assert "is judge, not judicial_police" in wrong_role.stderr

    who = roster_cli(isolated, "who", "--court", JJ, "--at", "2026-12-01 13:00").stdout
    assert f"group override #{override_id}: 第一组外出执行 (rostered: jj-1)" in who
    assert "第三组 (jj-3)" in who
    assert "何静 (jj-j4)" in who
    assert f"replacement #{member_id}: 孙丽开庭" in who
    assert "孙丽" not in who.replace("孙丽开庭", "")

    roster = await rosterstore.load_roster(conn)
    group = roster.on_duty(JJ, local("2026-12-01 13:00"))
    assert group is not None
    assert (group.group_id, group.judge) == ("jj-3", "jj-j4")
    assert roster.validate() == []

    roster_cli(isolated, "cancel", member_id, "--member")
    roster_cli(isolated, "cancel", override_id)
    assert "第一组 (jj-1)" in roster_cli(isolated, "who", "--court", JJ, "--at", "2026-12-01 13:00").stdout
    assert await conn.fetchval("SELECT count(*) FROM group_overrides") == 0


async def test_store_edits_refuse_what_cannot_be(
    conn: asyncpg.Connection, example: rosterstore.RosterDocument
) -> None:
    starts, ends = local("2026-12-10 08:30"), local("2026-12-11 08:30")

    async def override(court_id: str, group_id: str, until: datetime = ends) -> None:
        await rosterstore.add_group_override(
            conn, court_id=court_id, group_id=group_id, starts_at=starts, ends_at=until, by="x"
        )

    async def replace(officer_id: str) -> None:
        await rosterstore.replace_member(
            conn,
            group_id="jj-1",
            role=Role.JUDGE,
            officer_id=officer_id,
            starts_at=starts,
            ends_at=ends,
            by="x",
        )

    with pytest.raises(InvalidInput, match="belongs to"):
        await override(JJ, "hy-1")
    with pytest.raises(InvalidInput, match="no court"):
        await override("某某法院", "hy-1")
    with pytest.raises(InvalidInput, match="later than"):
        await override(JJ, "jj-1", until=starts)
    with pytest.raises(InvalidInput, match="belongs to"):
        await replace("hy-j1")
    with pytest.raises(InvalidInput, match="no officer"):
        await replace("ghost")
    await rosterstore.set_officer_active(conn, "jj-j4", False, by="x")
    try:
        with pytest.raises(InvalidInput, match="inactive"):
            await replace("jj-j4")
    finally:
        await rosterstore.set_officer_active(conn, "jj-j4", True, by="x")
    assert await conn.fetchval("SELECT count(*) FROM member_overrides WHERE starts_at = $1", starts) == 0


async def test_validate_names_an_inactive_member_and_who_reports_them(
    isolated: Isolated, example: rosterstore.RosterDocument
) -> None:
    sound = roster_cli(isolated, "validate")
    assert "roster is sound (2 courts, 20 officers, 5 groups)" in sound.stdout
    roster_cli(isolated, "deactivate", "jj-j2", "--by", "clerk-li")
    try:
        broken = roster_cli(isolated, "validate", check=False)
        assert broken.returncode == 1
        assert f"group 第二组 (jj-2) of {JJ} judge: 周婷 (jj-j2) is inactive" in broken.stdout
        who = roster_cli(isolated, "who", "--at", "2026-11-23 10:00", "--district", "331002").stdout
        assert "✗ 周婷 (jj-j2): inactive" in who  # reported, not silently skipped
        assert "→ 吴磊 (jj-p2)" in who
    finally:
        roster_cli(isolated, "activate", "jj-j2")
    assert roster_cli(isolated, "validate").returncode == 0
