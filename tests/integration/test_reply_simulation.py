"""Trying the webhooks without a provider: `seizewatch reply` acknowledges a real page, and the fake
Twilio run standalone (``python -m tests.fakes.twilio_server``) answers the real twilio client and posts
status callbacks a pager accepts."""

from __future__ import annotations

import asyncio
import contextlib
import io
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import asyncpg
import pytest
import uvicorn
from pydantic import SecretStr
from rich.console import Console

from alerts.pages import page_id_for
from alerts.settings import PagerSettings, TwilioSettings
from alerts.twilio_sms import TwilioSms
from alerts.webhooks import create_app
from seizewatch.demo import simulate_reply
from seizewatch.reply_cli import send_reply
from seizewatch.scratch import free_port
from streams.vehicles import Priority
from tests.conftest import Isolated, eventually, run_seizewatch
from tests.fakes.twilio_server import FakeTwilio
from tests.integration.pager_support import Clock, import_example_roster, make_hit, publish, serve_pager

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SHANGHAI = ZoneInfo("Asia/Shanghai")
DAY = datetime(2026, 11, 23, 10, 0, tzinfo=SHANGHAI)  # the pager's clock: group jj-2 on duty, at any hour
JUDGE = "+8613800001022"  # jj-j2, on duty at DAY


async def first_step(isolated: Isolated, page_id: uuid.UUID) -> dict[str, asyncpg.Record]:
    """The page's step-0 notifications by officer, once all were sent."""
    conn = await asyncpg.connect(isolated.settings.postgres.dsn.get_secret_value())
    try:

        async def probe() -> list[asyncpg.Record]:
            return list(await conn.fetch("SELECT * FROM notifications WHERE page_id = $1", page_id))

        rows = await eventually(
            probe, lambda rows: len(rows) == 2 and all(r["send_state"] == "sent" for r in rows)
        )
        return {r["officer_id"]: r for r in rows}
    finally:
        await conn.close()


async def page_state(isolated: Isolated, page_id: uuid.UUID) -> tuple[str, str | None]:
    conn = await asyncpg.connect(isolated.settings.postgres.dsn.get_secret_value())
    try:
        row = await conn.fetchrow("SELECT state, acknowledged_by FROM pages WHERE page_id = $1", page_id)
        assert row is not None
        return row["state"], row["acknowledged_by"]
    finally:
        await conn.close()


async def open_page(isolated: Isolated, plate: str) -> uuid.UUID:
    hit = await make_hit(isolated, plate=plate, observed_at=DAY - timedelta(seconds=30))
    await publish(isolated, hit)
    return page_id_for(hit.hit_id)


async def test_a_simulated_reply_takes_a_real_page(isolated: Isolated) -> None:
    await import_example_roster(isolated.settings.postgres.dsn.get_secret_value())
    async with FakeTwilio() as fake, serve_pager(isolated, fake, Clock(DAY)) as pager:
        page_id = await open_page(isolated, "浙J60001")
        code = (await first_step(isolated, page_id))["jj-j2"]["reply_code"]

        forged = await send_reply(
            pager_url=pager.url, public_url=pager.settings.public_url, auth_token=SecretStr("not-the-token"),
            from_phone=JUDGE, body=f"1 {code}",
        )  # fmt: skip
        assert forged.status == 403
        answer = await send_reply(
            pager_url=pager.url, public_url=pager.settings.public_url, auth_token=SecretStr(fake.auth_token),
            from_phone=JUDGE, body=f"1 {code}",
        )  # fmt: skip

        assert answer.status == 200
        assert answer.message is not None
        assert "已确认" in answer.message
        assert await page_state(isolated, page_id) == ("acknowledged", "jj-j2")


async def test_the_reply_command_acknowledges_a_page_and_names_what_is_missing(isolated: Isolated) -> None:
    await import_example_roster(isolated.settings.postgres.dsn.get_secret_value())
    async with FakeTwilio() as fake, serve_pager(isolated, fake, Clock(DAY)) as pager:
        page_id = await open_page(isolated, "浙J60002")
        code = (await first_step(isolated, page_id))["jj-j2"]["reply_code"]
        env = {
            **isolated.env,
            "SEIZEWATCH_PAGER_PUBLIC_URL": pager.settings.public_url,
            "SEIZEWATCH_TWILIO_ACCOUNT_SID": fake.account_sid,
            "SEIZEWATCH_TWILIO_AUTH_TOKEN": fake.auth_token,
            "SEIZEWATCH_TWILIO_SENDER": fake.phone_number,
        }
        unsigned = {k: v for k, v in env.items() if not k.startswith("SEIZEWATCH_TWILIO_")}

        refused = await asyncio.to_thread(
            run_seizewatch, unsigned, "reply", "--from", JUDGE, "--pager", pager.url, f"1 {code}", check=False
        )
        assert refused.returncode == 1
        assert "SEIZEWATCH_TWILIO_AUTH_TOKEN" in refused.stderr
        assert await page_state(isolated, page_id) == ("open", None)

        taken = await asyncio.to_thread(
            run_seizewatch, env, "reply", "--from", JUDGE, "--pager", pager.url, f"１ {code.lower()}"
        )
        assert "已确认" in taken.stdout
        assert await page_state(isolated, page_id) == ("acknowledged", "jj-j2")


async def test_the_demo_s_simulated_reply_takes_the_urgent_page(isolated: Isolated) -> None:
    await import_example_roster(isolated.settings.postgres.dsn.get_secret_value())
    async with FakeTwilio() as fake, serve_pager(isolated, fake, Clock(DAY)):
        hit = await make_hit(
            isolated, plate="浙J60004", observed_at=DAY - timedelta(seconds=30), priority=Priority.URGENT
        )
        await publish(isolated, hit)
        await first_step(isolated, page_id_for(hit.hit_id))
        out = io.StringIO()
        conn = await asyncpg.connect(isolated.settings.postgres.dsn.get_secret_value())
        try:
            result = await simulate_reply(conn, hit.entry_id, Console(file=out), now=DAY)
        finally:
            await conn.close()

    assert result == ("acknowledged", True)
    assert "已确认" in out.getvalue()
    assert "+8613800001022" not in out.getvalue()  # the number is masked
    assert await page_state(isolated, page_id_for(hit.hit_id)) == ("acknowledged", "jj-j2")


@contextlib.asynccontextmanager
async def standalone_twilio(tmp_path: Path) -> AsyncIterator[tuple[str, str, str]]:
    """``python -m tests.fakes.twilio_server --deliver`` as a process: (base URL, account SID, token)
    as it prints them."""
    log = tmp_path / "fake-twilio.log"
    port = free_port()
    with log.open("w") as out:
        process = subprocess.Popen(  # noqa: ASYNC220  # our own module, started once
            [sys.executable, "-m", "tests.fakes.twilio_server", "--port", str(port), "--deliver"],
            stdout=out, stderr=subprocess.STDOUT, cwd=ROOT,
        )  # fmt: skip
    try:

        async def printed() -> dict[str, str]:
            assert process.poll() is None, log.read_text()
            lines = [
                line.split("export ", 1)[1] for line in log.read_text().splitlines() if "export " in line
            ]
            return dict(line.split("=", 1) for line in lines)

        exported = await eventually(printed, lambda values: len(values) == 4)
        assert exported["SEIZEWATCH_TWILIO_API_BASE_URL"] == f"http://127.0.0.1:{port}"
        yield (
            exported["SEIZEWATCH_TWILIO_API_BASE_URL"],
            exported["SEIZEWATCH_TWILIO_ACCOUNT_SID"],
            exported["SEIZEWATCH_TWILIO_AUTH_TOKEN"],
        )
    finally:
        process.terminate()
        await asyncio.to_thread(process.wait, 10)


async def test_the_standalone_fake_twilio_serves_a_pager_end_to_end(
    isolated: Isolated, tmp_path: Path
) -> None:
    await import_example_roster(isolated.settings.postgres.dsn.get_secret_value())
    async with standalone_twilio(tmp_path) as (base_url, account_sid, token):
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        settings = PagerSettings(ack_timeout_s=60, port=port, public_url=url, poll_interval_s=0.1)
        twilio = TwilioSettings(
            account_sid=account_sid, auth_token=SecretStr(token), sender="+15005550006", api_base_url=base_url
        )
        provider = TwilioSms(  # the real twilio client
            account_sid=account_sid, auth_token=SecretStr(token), sender="+15005550006",
            api_base_url=base_url, timeout_s=5,
        )  # fmt: skip
        app = create_app(
            isolated.settings.kafka, isolated.settings.postgres, settings, twilio, provider, clock=Clock(DAY)
        )
        server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on")
        )
        task = asyncio.create_task(server.serve())
        try:

            async def started() -> bool:
                return bool(server.started)

            await eventually(started, bool)
            page_id = await open_page(isolated, "浙J60003")
            rows = await first_step(isolated, page_id)

            async def statuses() -> set[str | None]:
                conn = await asyncpg.connect(isolated.settings.postgres.dsn.get_secret_value())
                try:
                    return {
                        r["provider_status"]
                        for r in await conn.fetch(
                            "SELECT provider_status FROM notifications WHERE page_id = $1", page_id
                        )
                    }
                finally:
                    await conn.close()

            # The fake posted signed status callbacks, which the pager accepted and recorded.
            assert await eventually(statuses, lambda found: found == {"delivered"})
            answer = await send_reply(
                pager_url=url, public_url=url, auth_token=SecretStr(token), from_phone=JUDGE,
                body=f"1 {rows['jj-j2']['reply_code']}",
            )  # fmt: skip
            assert answer.message is not None
            assert "已确认" in answer.message
            assert await page_state(isolated, page_id) == ("acknowledged", "jj-j2")
        finally:
            server.should_exit = True
            await task
