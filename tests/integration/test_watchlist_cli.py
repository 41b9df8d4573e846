"""The `seizewatch watchlist` command against the real PostgreSQL: import, list, add, release."""

from __future__ import annotations

import csv
import re
import subprocess
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import orjson
import pytest

from streams.topics import SEIZURE_REQUESTS, WATCHLIST_CHANGES
from tests.conftest import Isolated, Worker, eventually, topic_records

pytestmark = pytest.mark.integration

Cli = Callable[..., subprocess.CompletedProcess[str]]

CSV = """plate,case_number,court,action,priority,vehicle,valid_until
浙J10001,(2024)浙1002执101号,椒江法院,seize,urgent,白色 大众帕萨特,
浙Ｊ·10002,(2024)浙1002执102号,椒江法院,soft_seal,low,黄色 货车,2030-01-01T00:00:00+08:00
浙JO0003,(2024)浙1002执103号,椒江法院,seize,normal,,
浙J10004,,椒江法院,seize,normal,,
浙J10005,(2024)浙1002执105号,椒江法院,tow,normal,,
浙J10001,(2024)浙1002执101号,椒江法院,seize,urgent,重复,
"""


SHANGHAI = ZoneInfo("Asia/Shanghai")


async def count(isolated: Isolated, sql: str) -> int:
    return int(await value(isolated, sql))


async def value(isolated: Isolated, sql: str, *args: object) -> Any:
    conn = await asyncpg.connect(isolated.settings.postgres.dsn.get_secret_value())
    try:
        return await conn.fetchval(sql, *args)
    finally:
        await conn.close()


def added_id(result: subprocess.CompletedProcess[str]) -> str:
    match = re.search(r"added ([0-9a-f-]{36}) ", result.stdout)
    assert match, result.stdout
    return match.group(1)


async def test_import_reports_accepted_and_rejected_rows_with_reasons(
    cli: Cli, isolated: Isolated, tmp_path: Path
) -> None:
    path = tmp_path / "entries.csv"
    path.write_text(CSV, encoding="utf-8")
    result = cli("watchlist", "import", str(path), "--by", "clerk-li")
    assert "2 accepted, 4 rejected" in result.stdout
    assert "line 4:" in result.stdout
    assert "letter O" in result.stdout
    assert "line 5:" in result.stdout
    assert "case_number" in result.stdout
    assert "line 6:" in result.stdout
    assert "action" in result.stdout
    assert "line 7:" in result.stdout
    assert "already watched" in result.stdout
    assert await count(isolated, "SELECT count(*) FROM watch_entries WHERE status = 'active'") == 2
    # every accepted change is audited and written to the outbox for the matchers
    assert (
        await count(isolated, "SELECT count(*) FROM watch_entry_history WHERE changed_by = 'clerk-li'") == 2
    )
    assert await count(isolated, "SELECT count(*) FROM outbox WHERE topic = 'watchlist.changes'") == 2

    listed = cli("watchlist", "list", "--court", "椒江法院").stdout
    assert "浙J10001" in listed
    assert "浙J10002" in listed
    assert "soft_seal" in listed
    assert "2 entries" in listed


async def test_gbk_file_is_read_without_being_told_and_an_encoding_can_still_be_given(
    cli: Cli, isolated: Isolated, tmp_path: Path
) -> None:
    path = tmp_path / "excel-export.csv"
    path.write_bytes("plate,case_number,court\n浙J20001,(2024)浙1002执201号,黄岩法院\n".encode("gbk"))
    accepted = cli("watchlist", "import", str(path))
    assert "(gb18030): 1 accepted, 0 rejected" in accepted.stdout
    path.write_bytes("plate,case_number,court\n浙J20002,(2024)浙1002执202号,黄岩法院\n".encode("gbk"))
    refused = cli("watchlist", "import", str(path), "--encoding", "utf-8", check=False)
    assert refused.returncode != 0
    assert "encoding" in refused.stderr
    assert "(gbk): 1 accepted" in cli("watchlist", "import", str(path), "--encoding", "gbk").stdout


async def test_add_then_release_by_command(cli: Cli, isolated: Isolated) -> None:
    added = cli(
        "watchlist", "add", "皖A·d12345", "--case", "(2025)皖0102执9号", "--court", "合肥包河法院",
        "--priority", "urgent", "--colour", "green", "--by", "judge-wang",
    )  # fmt: skip
    match = re.search(r"added ([0-9a-f-]{36}) 皖AD12345", added.stdout)
    assert match, added.stdout
    entry_id = match.group(1)
    bad = cli("watchlist", "add", "皖I12345", "--case", "x", "--court", "y", check=False)
    assert bad.returncode != 0
    assert "plate" in bad.stderr
    cli("watchlist", "release", entry_id, "--reason", "已履行", "--by", "judge-wang")
    again = cli("watchlist", "release", entry_id, "--reason", "twice", check=False)
    assert again.returncode != 0
    assert "released, not active" in again.stderr
    released = cli("watchlist", "list", "--status", "released", "--plate", "皖AD12345").stdout
    assert entry_id[:8] in released
    # the release travels as a tombstone so the compacted topic forgets the entry
    assert (
        await count(
            isolated,
            f"SELECT count(*) FROM outbox WHERE key = '{entry_id}' AND topic = 'watchlist.changes'"
            " AND payload IS NULL",
        )
        == 1
    )


CHINESE_CSV = (
    "车牌号,车牌颜色,案号,法院,措施,优先级,生效日期,失效日期,备注\n"
    "浙J30001,蓝,(2026)浙1002执301号,椒江法院,扣押,紧急,2027-01-01,2027-12-31,首次\n"
    "浙J30002,黄,(2026)浙1002执302号,椒江法院,活封,低,,,\n"
    + "".join(f"浙I{i:05d},蓝,(2026)浙1002执{400 + i}号,椒江法院,扣押,普通,,,\n" for i in range(60))
    + "浙J30003,蓝,(2026)浙1002执303号,椒江法院,扣押,普通,,2027年12月31日,\n"
    + "浙J30001,蓝,(2026)浙1002执301号,椒江法院,扣押,紧急,,,重复\n"
)


async def test_a_chinese_excel_file_imports_with_plain_dates_and_every_reject_in_its_file(
    cli: Cli, isolated: Isolated, tmp_path: Path
) -> None:
    path = tmp_path / "清单.csv"
    path.write_bytes(CHINESE_CSV.encode("gbk"))
    result = cli("watchlist", "import", str(path), "--by", "clerk-zhao")
    assert "(gb18030): 2 accepted, 62 rejected" in result.stdout
    rejects = tmp_path / "清单.rejects.csv"
    assert str(rejects) in result.stdout.replace("\n", "")
    table = list(csv.reader(rejects.read_text(encoding="utf-8-sig").splitlines()))
    header = ["车牌号", "车牌颜色", "案号", "法院", "措施", "优先级", "生效日期", "失效日期", "备注"]
    assert table[0] == [*header, "reject_reason"]
    assert len(table) == 1 + 62  # every rejected row, not the first 50
    reasons = {row[0]: row[-1] for row in table[1:]}
    assert "2027年12月31日" in reasons["浙J30003"]
    assert "失效日期" in reasons["浙J30003"]
    assert "already watched" in reasons["浙J30001"]
    assert "letter" in reasons["浙I00059"] or "authority" in reasons["浙I00059"]
    # 2027-12-31 is valid through that day, Shanghai time; 2027-01-01 from its start
    until = await value(isolated, "SELECT valid_until FROM watch_entries WHERE plate = '浙J30001'")
    since = await value(isolated, "SELECT valid_from FROM watch_entries WHERE plate = '浙J30001'")
    assert until == datetime(2028, 1, 1, tzinfo=SHANGHAI)
    assert since == datetime(2027, 1, 1, tzinfo=SHANGHAI)
    row = await value(
        isolated, "SELECT action || ' ' || priority FROM watch_entries WHERE plate = '浙J30002'"
    )
    assert row == "soft_seal low"
    chosen = tmp_path / "fix-me.csv"
    again = cli("watchlist", "import", str(path), "--rejects", str(chosen), check=False)
    assert "0 accepted, 64 rejected" in again.stdout
    assert len(chosen.read_text(encoding="utf-8-sig").splitlines()) == 65
    over = cli("watchlist", "import", str(chosen), "--rejects", str(chosen), check=False)
    assert over.returncode != 0
    assert "would overwrite the input" in over.stderr
    assert len(chosen.read_text(encoding="utf-8-sig").splitlines()) == 65


async def test_edit_changes_an_entry_audited_and_published(cli: Cli, isolated: Isolated) -> None:
    entry = added_id(cli("watchlist", "add", "浙J40001", "--case", "(2026)浙1002执401号",
                         "--court", "椒江法院", "--by", "clerk-li"))  # fmt: skip
    edited = cli("watchlist", "edit", entry, "--priority", "紧急", "--valid-until", "2027-12-31",
                 "--note", "债务人在逃", "--reason", "法官要求", "--by", "clerk-wu")  # fmt: skip
    assert "priority: normal → urgent" in edited.stdout
    assert "valid_until: - → 2028-01-01 00:00+08:00" in edited.stdout
    assert await value(isolated, "SELECT version FROM watch_entries WHERE entry_id = $1::uuid", entry) == 2
    changes = await value(
        isolated, "SELECT changes FROM watch_entry_history WHERE entry_id = $1::uuid AND version = 2", entry
    )
    assert isinstance(changes, str)
    assert orjson.loads(changes)["priority"] == ["normal", "urgent"]
    assert orjson.loads(changes)["note"] == ["", "债务人在逃"]
    # published like any change: the matchers' topic and the traffic police's list each get the new version
    for topic in (WATCHLIST_CHANGES, SEIZURE_REQUESTS):
        payloads = await value(
            isolated,
            "SELECT array_agg(payload ORDER BY id) FROM outbox WHERE key = $1 AND topic = $2",
            entry,
            topic,
        )
        assert isinstance(payloads, list)
        assert len(payloads) == 2
        assert orjson.loads(payloads[-1])["priority"] == "urgent"
    # no longer a seizure: it leaves the traffic police's list (a tombstone), stays on the watchlist
    cli("watchlist", "edit", entry, "--action", "查找", "--by", "clerk-wu")
    last = await value(
        isolated, "SELECT payload FROM outbox WHERE key = $1 AND topic = $2 ORDER BY id DESC LIMIT 1",
        entry, SEIZURE_REQUESTS,
    )  # fmt: skip
    assert last is None
    history = cli("watchlist", "history", entry).stdout
    assert "clerk-li" in history
    assert "clerk-wu" in history
    assert "法官要求" in history
    assert "priority: normal → urgent" in history
    assert "action: seize → locate" in history
    assert re.search(r"20\d\d-\d\d-\d\d \d\d:\d\d\+08:00", history), history
    same = cli("watchlist", "edit", entry, "--action", "locate", check=False)
    assert same.returncode != 0
    assert "already has these values" in same.stderr
    early = cli("watchlist", "edit", entry, "--valid-until", "2020-01-01", check=False)
    assert early.returncode != 0
    assert "valid_until" in early.stderr
    nothing = cli("watchlist", "edit", entry, check=False)
    assert nothing.returncode != 0
    assert "nothing to change" in nothing.stderr
    cli("watchlist", "release", entry, "--reason", "已履行")
    closed = cli("watchlist", "edit", entry, "--priority", "low", check=False)
    assert closed.returncode != 0
    assert "released, not active" in closed.stderr
    missing = cli("watchlist", "history", "00000000-0000-0000-0000-000000000000", check=False)
    assert missing.returncode != 0
    assert "no watch entry" in missing.stderr


async def test_an_edit_reaches_the_matchers_topic(cli: Cli, isolated: Isolated, worker: Worker) -> None:
    entry = added_id(
        cli("watchlist", "add", "浙J40002", "--case", "(2026)浙1002执402号", "--court", "椒江法院")
    )
    cli("watchlist", "edit", entry, "--priority", "urgent", "--valid-until", "2027-12-31")

    async def versions() -> list[dict[str, object]]:
        records = await topic_records(isolated, WATCHLIST_CHANGES)
        return [orjson.loads(r.value) for r in records if r.key == entry.encode() and r.value is not None]

    published = await eventually(versions, lambda found: any(v["version"] == 2 for v in found), within=60)
    edited = next(v for v in published if v["version"] == 2)
    assert edited["priority"] == "urgent"
    assert datetime.fromisoformat(str(edited["valid_until"])) == datetime(2028, 1, 1, tzinfo=SHANGHAI)


async def test_release_by_plate_and_case_number(cli: Cli, isolated: Isolated) -> None:
    first = added_id(
        cli("watchlist", "add", "浙A12345", "--case", "(2026)浙1002执123号", "--court", "椒江法院")
    )
    other = added_id(
        cli("watchlist", "add", "浙A12345", "--case", "(2026)浙1002执124号", "--court", "椒江法院")
    )
    # the clerk types full-width brackets and a plate in lower case with a dot
    released = cli("watchlist", "release", "--plate", "浙a·12345", "--case", "（2026）浙1002执123号",
                   "--reason", "已履行")  # fmt: skip
    assert f"released {first}" in released.stdout
    assert (
        await value(isolated, "SELECT status FROM watch_entries WHERE entry_id = $1::uuid", other) == "active"
    )
    again = cli("watchlist", "release", "--plate", "浙A12345", "--case", "(2026)浙1002执123号",
                "--reason", "twice", check=False)  # fmt: skip
    assert again.returncode != 0
    assert "no active entry of 浙A12345 for case (2026)浙1002执123号" in again.stderr
    assert "released" in again.stderr
    absent = cli("watchlist", "release", "--plate", "浙A54321", "--case", "(2026)浙1002执123号",
                 "--reason", "x", check=False)  # fmt: skip
    assert absent.returncode != 0
    assert "no active entry of 浙A54321" in absent.stderr
    half = cli("watchlist", "release", "--plate", "浙A12345", "--reason", "x", check=False)
    assert half.returncode != 0
    assert "both --plate and --case" in half.stderr
    both = cli(
        "watchlist", "release", other, "--plate", "浙A12345", "--case", "x", "--reason", "x", check=False
    )
    assert both.returncode != 0


async def test_an_ambiguous_plate_and_case_is_refused_naming_the_entries(
    cli: Cli, isolated: Isolated
) -> None:
    # two active entries differ only in the width of their brackets: which one the clerk means is unclear
    one = added_id(
        cli("watchlist", "add", "浙A22222", "--case", "(2026)浙1002执222号", "--court", "椒江法院")
    )
    two = added_id(
        cli("watchlist", "add", "浙A22222", "--case", "（2026）浙1002执222号", "--court", "椒江法院")
    )
    refused = cli("watchlist", "release", "--plate", "浙A22222", "--case", "(2026)浙1002执222号",
                  "--reason", "x", check=False)  # fmt: skip
    assert refused.returncode != 0
    assert "2 active entries" in refused.stderr
    assert one in refused.stderr
    assert two in refused.stderr


async def test_a_court_never_seen_is_warned_about_not_refused(
    cli: Cli, isolated: Isolated, tmp_path: Path
) -> None:
    cli("watchlist", "add", "浙J50001", "--case", "(2026)浙1002执501号", "--court", "椒江法院")
    typo = cli("watchlist", "add", "浙J50002", "--case", "(2026)浙1002执502号", "--court", "椒江发院")
    assert "warning: court '椒江发院' is new" in typo.stdout
    assert "did you mean '椒江法院'" in typo.stdout
    assert "known courts:" in typo.stdout
    assert "added " in typo.stdout
    known = cli("watchlist", "add", "浙J50003", "--case", "(2026)浙1002执503号", "--court", "椒江法院")
    assert "warning" not in known.stdout
    path = tmp_path / "typo.csv"
    path.write_text(
        "车牌号,案号,法院\n浙J50004,(2026)浙1002执504号,路桥法浣\n浙J50005,(2026)浙1002执505号,路桥法浣\n"
    )
    imported = cli("watchlist", "import", str(path))
    assert "warning: court '路桥法浣' (2 rows) is new" in imported.stdout
    assert "2 accepted, 0 rejected" in imported.stdout
