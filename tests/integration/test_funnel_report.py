"""The funnel report over the real PostgreSQL: a small world of entries, hits, tasks, seizures and
releases written in SQL, figures checked against counts made here from the world's own list of events
(and once against figures worked out on paper), then the real command with ``--csv``, and the gauges the
pager refreshes.

Every figure but cases counts vehicles (plate and colour): the world has one vehicle sealed in two
cases, seen again and again and tasked twice; the same plate in another colour; one vehicle sealed by two
courts; soft-seal and locate entries with hits; a vehicle only backfilled history saw; one the traffic
police stopped before any camera saw it; hits no task followed."""

from __future__ import annotations

import csv
import statistics
import subprocess
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import date, datetime
from zoneinfo import ZoneInfo

import asyncpg
import pytest
from prometheus_client import REGISTRY

from alerts.funnel import (
    DEFINITIONS,
    TOTAL,
    FunnelRow,
    funnel,
    local_days,
    month_of,
    refresh_funnel_metrics,
)
from tests.conftest import Isolated, run_seizewatch

pytestmark = pytest.mark.integration

SHANGHAI = ZoneInfo("Asia/Shanghai")
JJ = "台州市椒江区人民法院"
HY = "台州市黄岩区人民法院"
LQ = "台州市路桥区人民法院"  # only activity before the period: no row


def local(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=SHANGHAI)


START, END = local("2026-01-01 00:00"), local("2027-01-01 00:00")  # --from 2026-01-01 --to 2026-12-31


@dataclass(frozen=True)
class Entry:
    key: str
    court: str
    case: str
    valid_from: datetime
    valid_until: datetime | None = None
    closed: tuple[str, datetime, str] | None = None  # (released | seized, when, closed_reason)
    plate: str = ""  # default: made from the key, one plate per entry
    colour: str = "unknown"
    action: str = "seize"
    entry_id: uuid.UUID = field(default_factory=uuid.uuid4)

    @property
    def vehicle(self) -> tuple[str, str]:
        return (self.plate or f"浙J{self.key.upper():0>5}", self.colour)


@dataclass(frozen=True)
class Task:
    entry: str
    created_at: datetime
    first_seen_at: datetime
    state: str
    seized: tuple[datetime, ...] = ()  # every task_events row with to_state 'seized'
    traffic: bool = False  # opened by the traffic police's stop: no page, no hit
    task_id: uuid.UUID = field(default_factory=uuid.uuid4)


@dataclass(frozen=True)
class Hit:
    entry: str
    observed_at: datetime
    backfill: bool = False


def entry(
    key: str,
    court: str,
    case: str,
    since: str,
    *,
    until: str | None = None,
    released: tuple[str, str] | None = None,  # (when, closed_reason)
    seized: str | None = None,
    plate: str = "",
    colour: str = "unknown",
    action: str = "seize",
) -> Entry:
    closed = ("released", local(released[0]), released[1]) if released else None
    if seized:
        closed = ("seized", local(seized), "seized")
    return Entry(
        key, court, case, local(since), local(until) if until else None, closed, plate, colour, action
    )


def task(entry: str, opened: str, first_seen: str, state: str, *seized: str, traffic: bool = False) -> Task:
    return Task(
        entry, local(opened), local(first_seen), state, tuple(local(at) for at in seized), traffic=traffic
    )


V1, V3 = "浙J0V001", "浙J0V003"


ENTRIES = [
    entry("j1", JJ, "(2025)浙1002执1", "2025-06-01 09:00", seized="2026-03-01 11:30"),
    entry("j2", JJ, "(2026)浙1002执2", "2026-02-01 09:00", released=("2026-05-01 10:00", "paid")),
    # A second vehicle of the same case, also paid: the case is settled once.
    entry("j3", JJ, "(2026)浙1002执2", "2026-02-01 09:00", released=("2026-05-02 10:00", "paid")),
    # Closed half an hour before the period starts (15:30 UTC on 31 December).
    entry("j4", JJ, "(2024)浙1002执3", "2024-01-01 09:00", released=("2025-12-31 23:30", "settled")),
    # Closed ten minutes into the period (16:10 UTC on 31 December: still 2025 in UTC).
    entry("j5", JJ, "(2025)浙1002执4", "2025-03-01 09:00", released=("2026-01-01 00:10", "settled")),
    entry("j6", JJ, "(2026)浙1002执5", "2026-04-01 09:00", released=("2026-06-01 10:00", "expired")),
    entry("j7", JJ, "(2026)浙1002执6", "2026-01-01 09:00", seized="2026-07-01 09:15"),
    entry("j8", JJ, "(2026)浙1002执7", "2027-01-01 00:05"),  # watched from after the period
    entry("j9", JJ, "(2024)浙1002执8", "2024-06-01 09:00", until="2025-12-01 00:00"),  # lapsed, still active
    entry("j10", JJ, "(2025)浙1002执9", "2025-01-01 09:00", seized="2026-01-01 00:20"),
    entry("h1", HY, "(2026)浙1003执1", "2026-01-10 09:00"),
    entry("h2", HY, "(2025)浙1003执2", "2025-05-01 09:00", seized="2026-08-10 14:40"),
    entry("h3", HY, "(2026)浙1003执3", "2026-09-01 09:00", seized="2027-01-01 00:30"),
    entry("h4", HY, "(2026)浙1003执4", "2026-02-01 09:00", released=("2026-10-01 10:00", "settled")),
    entry("h5", HY, "(2026)浙1003执5", "2026-03-01 09:00", seized="2026-11-01 10:20"),
    entry("h6", HY, "(2026)浙1003执6", "2026-03-01 09:00", seized="2026-04-01 12:30"),
    entry("h7", HY, "(2026)浙1003执7", "2026-06-01 09:00", until="2027-06-01 00:00"),
    entry("l1", LQ, "(2025)浙1004执1", "2025-01-01 09:00", released=("2025-11-01 10:00", "paid")),
    # One vehicle sealed in two cases of JJ: one vehicle watched, alarmed and seized, whatever the entries.
    entry("v1a", JJ, "(2026)浙1002执21", "2026-02-01 09:00", plate=V1, colour="blue"),
    entry(
        "v1b", JJ, "(2026)浙1002执22", "2026-03-01 09:00", seized="2026-09-01 10:00", plate=V1, colour="blue"
    ),
    # The same plate on a yellow plate: another vehicle.
    entry("v2", JJ, "(2026)浙1002执23", "2026-01-05 09:00", plate=V1, colour="yellow"),
    # One vehicle sealed by both courts: in each court's row, once in the total.
    entry("v3j", JJ, "(2026)浙1002执24", "2026-01-05 09:00", plate=V3, colour="blue"),
    entry("v3h", HY, "(2026)浙1003执24", "2026-01-06 09:00", plate=V3, colour="blue"),
    # Soft seal (活封) and locate-only: nobody is asked to seize; not in the funnel, hits or not.
    entry("s1", JJ, "(2026)浙1002执25", "2026-01-05 09:00", action="soft_seal"),
    entry("s2", JJ, "(2026)浙1002执26", "2026-01-05 09:00", action="locate"),
    entry("b1", HY, "(2026)浙1003执21", "2026-01-05 09:00"),  # only backfilled history saw it
    entry("t1", HY, "(2026)浙1003执22", "2026-01-05 09:00", seized="2026-06-01 10:45"),  # traffic stop
    entry("n1", HY, "(2026)浙1003执23", "2026-01-05 09:00"),  # hits, no task (yet)
]

TASKS = [  # (entry, opened, first seen, state, seized events…)
    task("j1", "2026-03-01 10:05", "2026-03-01 10:00", "seized", "2026-03-01 11:30"),
    task("j7", "2026-02-01 10:00", "2026-02-01 09:58", "not_found"),
    task("j7", "2026-07-01 08:01", "2026-07-01 08:00", "seized", "2026-07-01 09:15"),
    # Opened before the period, seized in it: a seizure of 2026, an alarm of 2025.
    task("j10", "2025-12-31 23:00", "2025-12-31 22:40", "seized", "2026-01-01 00:20"),
    task("h1", "2026-12-31 23:50", "2026-12-31 23:45", "acknowledged"),  # the last minutes of --to
    # Seized, then said again an hour later: the first event is the seizure.
    task("h2", "2026-08-10 14:00", "2026-08-10 13:58", "seized", "2026-08-10 14:40", "2026-08-10 15:40"),
    task("h3", "2026-09-02 10:01", "2026-09-02 10:00", "seized", "2027-01-01 00:30"),
    task("h5", "2026-11-01 07:01", "2026-11-01 07:00", "seized", "2026-11-01 10:20"),
    task("h6", "2026-04-01 12:00", "2026-04-01 12:00", "seized", "2026-04-01 12:30"),
    # Opened just after the period, but seen in its last minute: an alarm of 2026 (the hit is the alarm).
    task("h7", "2027-01-01 00:00", "2026-12-31 23:59", "open"),
    task("l1", "2025-10-01 10:00", "2025-10-01 09:00", "not_found"),
    task("v1a", "2026-05-01 10:01", "2026-05-01 10:00", "not_found"),
    task("v1b", "2026-09-01 08:01", "2026-09-01 08:00", "seized", "2026-09-01 10:00"),
    task("v3j", "2026-04-01 10:01", "2026-04-01 10:00", "open"),
    task("v3h", "2026-04-01 10:01", "2026-04-01 10:00", "open"),
    task("s1", "2026-04-01 10:01", "2026-04-01 10:00", "open"),
    task("s2", "2026-04-01 10:01", "2026-04-01 10:00", "seized", "2026-04-01 11:00"),
    task("t1", "2026-06-01 10:50", "2026-06-01 10:00", "seized", "2026-06-01 10:45", traffic=True),
]

# Every task but the traffic police's opened on a hit at its first sighting; these are the others.
HITS = [
    # v1 seen again and again while its task is live, and by one read matching both of its entries.
    *(Hit("v1a", local(f"2026-05-01 {hh}:00")) for hh in ("10", "11", "12", "13")),
    Hit("v1b", local("2026-05-01 10:00")),
    Hit("b1", local("2026-03-01 10:00"), backfill=True),
    Hit("n1", local("2026-10-01 10:00")),
    Hit("n1", local("2026-10-01 10:05")),
    Hit("n1", local("2026-10-02 10:00")),
]

BY_KEY = {e.key: e for e in ENTRIES}


def hits() -> list[Hit]:
    return [Hit(t.entry, t.first_seen_at) for t in TASKS if not t.traffic] + HITS


def expected_rows(start: datetime, end: datetime) -> dict[str, FunnelRow]:
    """The definitions of alerts/funnel.py, counted in Python over the lists above."""

    def within(at: datetime) -> bool:
        return start <= at < end

    def figures(entries: list[Entry]) -> FunnelRow | None:
        seize = [e for e in entries if e.action == "seize"]
        keys = {e.key for e in seize}
        watched = {
            e.vehicle
            for e in seize
            if e.valid_from < end
            and (e.valid_until is None or e.valid_until > start)
            and (e.closed is None or e.closed[1] >= start)
        }
        tasks = [t for t in TASKS if t.entry in keys]
        alarms = {
            BY_KEY[h.entry].vehicle
            for h in hits()
            if h.entry in keys and not h.backfill and within(h.observed_at)
        }
        alarms |= {BY_KEY[t.entry].vehicle for t in tasks if t.traffic and within(t.first_seen_at)}
        seizures = [(t, min(t.seized)) for t in tasks if t.seized and within(min(t.seized))]
        settled = {
            (e.court, e.case)
            for e in seize
            if e.closed
            and e.closed[0] == "released"
            and within(e.closed[1])
            and e.closed[2] in ("paid", "settled")
        }
        minutes = [(at - t.first_seen_at).total_seconds() / 60 for t, at in seizures]
        if not (watched or alarms or seizures or settled):
            return None
        return FunnelRow(
            entries[0].court if len({e.court for e in entries}) == 1 else None,
            watched=len(watched),
            alarms=len(alarms),
            seized=len({BY_KEY[t.entry].vehicle for t, _ in seizures}),
            settled=len(settled),
            median_minutes_to_seizure=statistics.median(minutes) if minutes else None,
        )

    rows = {court: figures([e for e in ENTRIES if e.court == court]) for court in (JJ, HY, LQ)}
    total = figures(ENTRIES) or FunnelRow(None, 0, 0, 0, 0, None)
    return {**{c: r for c, r in rows.items() if r is not None}, TOTAL: total}


def test_the_world_is_the_one_worked_out_by_hand() -> None:
    """The Python counts above, checked once against figures worked out on paper."""
    rows = expected_rows(START, END)
    assert set(rows) == {JJ, HY, TOTAL}
    # JJ: j1 j2 j3 j5 j6 j7 j10, v1 (two entries), v2, v3 watched (10); alarms j1, j7 (two tasks), v1
    # (five hits, two tasks), v3 (4; j10's hit was in 2025, s1 and s2 are no seize entries); j1 (90),
    # j7 (75), j10 (100), v1 (120) seized; cases 2 and 4.
    assert rows[JJ] == FunnelRow(JJ, 10, 4, 4, 2, 95.0)
    # HY: h1-h7, v3, b1, t1, n1 watched (11); alarms h1 h2 h3 h5 h6, h7 (seen at 23:59, tasked after
    # midnight), v3, t1 (the traffic police's stop), n1 (three hits, no task): 9, not b1 (backfill);
    # h2 (42), h5 (200), h6 (30), t1 (45) seized; case 4.
    assert rows[HY] == FunnelRow(HY, 11, 9, 4, 1, 43.5)
    # v3 once: 20 vehicles, 12 alarms. Eight seizures, an even count: (75 + 90) / 2.
    assert rows[TOTAL] == FunnelRow(None, 20, 12, 8, 3, 82.5)


async def insert_hit(conn: asyncpg.Connection, entry: Entry, at: datetime, *, backfill: bool) -> uuid.UUID:
    hit_id = uuid.uuid4()
    await conn.execute(
        "INSERT INTO hits (hit_id, sighting_id, entry_id, match_kind, score, plate_read, plate_raw,"
        " source_kind, source_id, device_id, observed_at, observed_offset_min, received_at, backfill)"
        " VALUES ($1, $2, $3, 'exact', 1, 'plate', 'plate', 'checkpoint', 'src', 'dev-1', $4, 480, $4, $5)",
        hit_id, f"sighting-{hit_id}", entry.entry_id, at, backfill,
    )  # fmt: skip
    return hit_id


async def build_world(conn: asyncpg.Connection) -> None:
    for e in ENTRIES:
        status, closed_at, reason = e.closed or ("active", e.valid_from, None)
        await conn.execute(
            "INSERT INTO watch_entries (entry_id, plate, plate_colour, case_number, court, action,"
            " valid_from, valid_until, status, version, closed_reason, created_by, created_at, updated_by,"
            " updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 'clerk', $7, 'clerk', $12)",
            e.entry_id, e.vehicle[0], e.colour, e.case, e.court, e.action, e.valid_from, e.valid_until,
            status, 1 if e.closed is None else 2, reason, closed_at,
        )  # fmt: skip
        history = [("added", e.valid_from)] + ([(e.closed[0], e.closed[1])] if e.closed else [])
        for version, (change, at) in enumerate(history, start=1):
            await conn.execute(
                "INSERT INTO watch_entry_history (entry_id, version, change, changed_by, changed_at,"
                " snapshot) VALUES ($1, $2, $3, 'clerk', $4, '{}')",
                e.entry_id, version, change, at,
            )  # fmt: skip
    for h in HITS:
        await insert_hit(conn, BY_KEY[h.entry], h.observed_at, backfill=h.backfill)
    for t in TASKS:
        entry = BY_KEY[t.entry]
        page_id: uuid.UUID | None = None
        if not t.traffic:
            page_id = uuid.uuid4()
            hit_id = await insert_hit(conn, entry, t.first_seen_at, backfill=False)
            await conn.execute(
                "INSERT INTO pages (page_id, hit_id, entry_id, hit, plan, info_only, state, sighted_at,"
                " created_at, updated_at) VALUES ($1, $2, $3, '{}', '{}', false, 'acknowledged', $4, $5, $5)",
                page_id, hit_id, entry.entry_id, t.first_seen_at, t.created_at,
            )  # fmt: skip
        await conn.execute(
            "INSERT INTO tasks (task_id, entry_id, kind, state, court, page_id, first_seen_at, last_seen_at,"
            " created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8, $8)",
            t.task_id, entry.entry_id, "locate" if entry.action == "locate" else "seize", t.state,
            entry.court, page_id, t.first_seen_at, t.created_at,
        )  # fmt: skip
        # The events before a seizure, which must not count as one.
        trail = [(None, "open", t.created_at), ("open", "acknowledged", t.created_at)]
        trail += [("en_route", "seized", at) for at in t.seized]
        if t.state == "not_found":
            trail.append(("acknowledged", "not_found", t.created_at))
        for from_state, to_state, at in trail:
            await conn.execute(
                "INSERT INTO task_events (task_id, at, actor, channel, from_state, to_state)"
                " VALUES ($1, $2, 'officer-1', 'sms', $3, $4)",
                t.task_id, at, from_state, to_state,
            )  # fmt: skip


@pytest.fixture(scope="module")
async def conn(isolated: Isolated) -> AsyncIterator[asyncpg.Connection]:
    """A connection to the module's database with the world written into it (once)."""
    connection = await asyncpg.connect(isolated.settings.postgres.dsn.get_secret_value())
    try:
        async with connection.transaction():
            await build_world(connection)
        yield connection
    finally:
        await connection.close()


async def test_figures_per_court_and_in_total(conn: asyncpg.Connection) -> None:
    expected = expected_rows(START, END)
    rows = await funnel(conn, start=START, end=END)
    assert [r.label for r in rows] == [*sorted([JJ, HY]), TOTAL]  # courts by name, then the total
    assert {r.label: r for r in rows} == expected


@pytest.mark.parametrize(
    ("first", "last", "courts"),
    [
        ("2025-01-01", "2025-12-31", {JJ, HY, LQ}),  # the lapsed entry, the case settled at 23:30
        ("2026-01-01", "2026-01-01", {JJ, HY}),  # the first day: seizure at 00:20, release at 00:10
        # The last day: the alarms at 23:45 and 23:59; of JJ only the entries without an end (j8 not yet).
        ("2026-12-31", "2026-12-31", {JJ, HY}),
        ("2030-01-01", "2030-03-31", {JJ, HY}),  # only the entries still active without an end
        ("2023-01-01", "2023-12-31", set()),  # before everything: only a zero total
    ],
)
async def test_other_periods(conn: asyncpg.Connection, first: str, last: str, courts: set[str]) -> None:
    start, end = local_days(date.fromisoformat(first), date.fromisoformat(last))
    expected = expected_rows(start, end)
    assert set(expected) == courts | {TOTAL}
    assert {r.label: r for r in await funnel(conn, start=start, end=end)} == expected


async def test_one_court(conn: asyncpg.Connection) -> None:
    assert await funnel(conn, start=START, end=END, court=HY) == [expected_rows(START, END)[HY]]
    assert await funnel(conn, start=START, end=END, court="无此法院") == [
        FunnelRow("无此法院", 0, 0, 0, 0, None)
    ]


async def test_a_naive_or_empty_period_is_refused(conn: asyncpg.Connection) -> None:
    with pytest.raises(ValueError, match="aware"):
        await funnel(conn, start=datetime(2026, 1, 1), end=END)  # noqa: DTZ001  # the naive time is the point
    with pytest.raises(ValueError, match="ends"):
        await funnel(conn, start=END, end=START)


def shown(row: FunnelRow, missing: str) -> list[str]:
    """A row as the table and the CSV show it: minutes to one decimal, ``missing`` for no median."""
    median = row.median_minutes_to_seizure
    figures = (row.watched, row.alarms, row.seized, row.settled)
    return [row.label, *map(str, figures), missing if median is None else f"{median:.1f}"]


def table_cells(out: str) -> list[list[str]]:
    """The body rows of the rich table in ``out``, cell by cell (the header row is drawn with ┃)."""
    lines = [line for line in out.splitlines() if line.startswith("│")]
    return [[cell.strip() for cell in line.strip("│").split("│")] for line in lines]


def report_funnel(isolated: Isolated, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """`seizewatch report funnel ARGS…` as a real process against the module's database."""
    return run_seizewatch(isolated.env, "report", "funnel", *args, check=check)


async def test_the_command_prints_the_table_and_writes_the_csv(
    isolated: Isolated, conn: asyncpg.Connection, tmp_path_factory: pytest.TempPathFactory
) -> None:
    path = tmp_path_factory.mktemp("report") / "funnel.csv"
    out = report_funnel(isolated, "--from", "2026-01-01", "--to", "2026-12-31", "--csv", str(path)).stdout
    assert "Enforcement funnel 2026-01-01 – 2026-12-31 (Asia/Shanghai days)" in out
    assert f"wrote 3 rows to {path}" in out
    expected = expected_rows(START, END)
    assert table_cells(out) == [shown(expected[court], "-") for court in (*sorted([JJ, HY]), TOTAL)]

    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # the BOM Excel needs to read UTF-8
    assert b"\r\n" in raw
    assert b"\r\r\n" not in raw
    written = list(csv.reader(raw.decode("utf-8-sig").splitlines()))
    assert written[0] == [
        "court", "watched_vehicles", "alarms", "seized_vehicles", "settled_cases",
        "median_minutes_to_seizure",
    ]  # fmt: skip
    assert written[1:] == [shown(expected[court], "") for court in (*sorted([JJ, HY]), TOTAL)]


async def test_the_command_for_one_court(isolated: Isolated, conn: asyncpg.Connection) -> None:
    out = report_funnel(isolated, "--from", "2026-01-01", "--to", "2026-12-31", "--court", JJ).stdout
    assert table_cells(out) == [shown(expected_rows(START, END)[JJ], "-")]


async def test_the_command_refuses_a_backward_period(isolated: Isolated) -> None:
    result = report_funnel(isolated, "--from", "2026-02-01", "--to", "2026-01-31", check=False)
    assert result.returncode == 2
    assert "ends (2026-01-31) before it starts (2026-02-01)" in result.stderr


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (("--from", "2026-13-01"), "'--from'"),
        (("--to", "2026/12/31"), "'--to'"),
        (("--from", "yesterday"), "'--from'"),
    ],
)
async def test_the_command_names_a_bad_day(isolated: Isolated, args: tuple[str, ...], named: str) -> None:
    result = report_funnel(isolated, *args, check=False)
    assert result.returncode == 2
    assert f"Invalid value for {named}" in result.stderr
    assert "%Y-%m-%d" in result.stderr  # the form it wants


async def test_the_command_states_what_each_figure_counts(
    isolated: Isolated, conn: asyncpg.Connection
) -> None:
    out = report_funnel(isolated, "--from", "2026-01-01", "--to", "2026-12-31").stdout
    assert "What is counted:" in out
    for figure, meaning in DEFINITIONS:
        assert f"{figure}: {meaning}" in " ".join(out.split())  # however the terminal wrapped it


async def test_the_command_covers_this_month_by_default(isolated: Isolated, conn: asyncpg.Connection) -> None:
    before = datetime.now(SHANGHAI).date()
    out = report_funnel(isolated).stdout
    after = datetime.now(SHANGHAI).date()
    # Run across a local midnight at the end of a month, the command may have seen either month.
    titles = {f"Enforcement funnel {a} – {b} (Asia/Shanghai days)" for a, b in map(month_of, {before, after})}
    assert any(title in out for title in titles)


async def test_the_command_for_any_period(isolated: Isolated, conn: asyncpg.Connection) -> None:
    """A week of September: v1 seized (its second entry), nothing else."""
    out = report_funnel(isolated, "--from", "2026-08-31", "--to", "2026-09-06").stdout
    start, end = local_days(date(2026, 8, 31), date(2026, 9, 6))
    expected = expected_rows(start, end)
    assert expected[JJ].seized == 1
    assert expected[TOTAL].seized == 1
    assert table_cells(out) == [shown(expected[court], "-") for court in (*sorted([JJ, HY]), TOTAL)]


async def test_the_pager_refresh_publishes_this_year(isolated: Isolated, conn: asyncpg.Connection) -> None:
    pool = await asyncpg.create_pool(
        isolated.settings.postgres.dsn.get_secret_value(), min_size=1, max_size=1
    )
    try:
        rows = await refresh_funnel_metrics(pool, local("2026-11-23 12:00"))
    finally:
        await pool.close()
    expected = expected_rows(START, END)
    assert {r.label: r for r in rows} == expected
    for label, row in expected.items():
        labels = {"court": label}
        assert REGISTRY.get_sample_value("seizewatch_funnel_watched_vehicles", labels) == row.watched
        assert REGISTRY.get_sample_value("seizewatch_funnel_alarms", labels) == row.alarms
        assert REGISTRY.get_sample_value("seizewatch_funnel_seized_vehicles", labels) == row.seized
        assert REGISTRY.get_sample_value("seizewatch_funnel_settled_cases", labels) == row.settled
        assert REGISTRY.get_sample_value("seizewatch_funnel_median_seconds_to_seizure", labels) == (
            None if row.median_minutes_to_seizure is None else row.median_minutes_to_seizure * 60
        )
    assert REGISTRY.get_sample_value("seizewatch_funnel_watched_vehicles", {"court": LQ}) is None
