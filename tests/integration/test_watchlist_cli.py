"""The `seizewatch watchlist` command against the real PostgreSQL: import, list, add, release."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import asyncpg
import pytest

from tests.conftest import Isolated

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


async def count(isolated: Isolated, sql: str) -> int:
    conn = await asyncpg.connect(isolated.settings.postgres.dsn.get_secret_value())
    try:
        return int(await conn.fetchval(sql))
    finally:
        await conn.close()


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


async def test_gbk_file_needs_and_accepts_its_encoding(cli: Cli, isolated: Isolated, tmp_path: Path) -> None:
    path = tmp_path / "excel-export.csv"
    path.write_bytes("plate,case_number,court\n浙J20001,(2024)浙1002执201号,黄岩法院\n".encode("gbk"))
    refused = cli("watchlist", "import", str(path), check=False)
    assert refused.returncode != 0
    assert "--encoding gbk" in refused.stderr
    accepted = cli("watchlist", "import", str(path), "--encoding", "gbk")
    assert "1 accepted, 0 rejected" in accepted.stdout


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
