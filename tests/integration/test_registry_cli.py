"""`seizewatch sources` and `seizewatch devices` against the real PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import asyncpg
import pytest

from tests.conftest import MASTER_KEY, ROOT, Isolated

pytestmark = pytest.mark.integration

Cli = Callable[..., subprocess.CompletedProcess[str]]


def test_source_credentials_are_derived_and_rotate(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    added = cli("sources", "add", "lot-cli", "--connector", "parking", "--auth", "hmac")
    assert "added source lot-cli (parking, hmac)" in added.stdout
    assert "set SEIZEWATCH_INGEST_MASTER_KEY" in added.stdout  # no master key: nothing to print
    bad = cli("sources", "add", "Bad Id!", "--connector", "parking", check=False)
    assert bad.returncode != 0
    assert "source ids are" in bad.stderr
    unknown_vendor = cli("sources", "add", "lot-x", "--connector", "parking", "--vendor", "acme", check=False)
    assert "no parking adapter 'acme'" in unknown_vendor.stderr


async def test_credential_printing_and_rotation(isolated: Isolated, tmp_path: Path) -> None:
    env = {**isolated.env, "SEIZEWATCH_INGEST_MASTER_KEY": MASTER_KEY}

    def run(*args: str) -> str:
        return subprocess.run(
            [sys.executable, "-m", "seizewatch.cli", *args],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout

    first = run("sources", "add", "cam-cli", "--connector", "isapi").strip().splitlines()[-1]
    assert first.startswith("API key (version 1): ")
    assert run("sources", "credential", "cam-cli").strip() == first
    rotated = run("sources", "credential", "cam-cli", "--rotate").strip()
    assert rotated.startswith("API key (version 2): ")
    assert rotated.split()[-1] != first.split()[-1]


async def test_devices_import(cli: Cli, isolated: Isolated, tmp_path: Path) -> None:
    good = tmp_path / "devices.csv"
    good.write_text(
        "device_id,source_id,name,district,device_group,kind,latitude,longitude,owner\n"
        "wanda/g9,lot-cli,椒江万达 9号口,331002,parking-jj,parking_entry,28.65,121.42,万达物业\n"
        "kk-7,kk,路桥卡口,331004,checkpoints,checkpoint,,,交警路桥大队\n",
        encoding="utf-8",
    )
    assert "2 devices imported or updated" in cli("devices", "import", str(good)).stdout
    bad = tmp_path / "bad.csv"
    bad.write_text("device_id,source_id,name,district,device_group,latitude\nd1,s,n,331002,g,28.1\n")
    refused = cli("devices", "import", str(bad), check=False)
    assert refused.returncode != 0
    assert "line 2: give both latitude and longitude" in refused.stderr
    conn = await asyncpg.connect(isolated.settings.postgres.dsn.get_secret_value())
    try:
        row = await conn.fetchrow("SELECT * FROM devices WHERE device_id = 'wanda/g9'")
    finally:
        await conn.close()
    assert row is not None
    assert (row["kind"], row["district"], row["owner"]) == ("parking_entry", "331002", "万达物业")
