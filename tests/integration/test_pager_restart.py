"""A pager process killed (SIGKILL) mid-escalation: after a restart the next step runs, on time, and
nothing already sent is sent again."""

from __future__ import annotations

import signal
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest

from alerts.pages import page_id_for
from seizewatch.scratch import free_port
from tests.conftest import Isolated, eventually, stop_process
from tests.fakes.twilio_server import FakeTwilio
from tests.integration.pager_support import import_example_roster, make_hit, pager_env, publish, start_pager

pytestmark = pytest.mark.integration


@pytest.fixture
async def fake() -> AsyncIterator[FakeTwilio]:
    async with FakeTwilio() as f:
        yield f


async def steps_sent(isolated: Isolated, page_id: uuid.UUID) -> dict[int, list[asyncpg.Record]]:
    conn = await asyncpg.connect(isolated.settings.postgres.dsn.get_secret_value())
    try:
        rows = await conn.fetch("SELECT * FROM notifications WHERE page_id = $1 ORDER BY step", page_id)
    finally:
        await conn.close()
    steps: dict[int, list[asyncpg.Record]] = {}
    for row in rows:
        steps.setdefault(row["step"], []).append(row)
    return steps


async def test_a_killed_pager_resumes_the_escalation(
    isolated: Isolated, fake: FakeTwilio, tmp_path: Path
) -> None:
    await import_example_roster(isolated.settings.postgres.dsn.get_secret_value())
    port = free_port()
    env = pager_env(isolated, fake, port)
    first = await start_pager(env, tmp_path / "pager-1.log", port)
    try:
        now = datetime.now(UTC)
        hit = await make_hit(isolated, plate="浙J90001", observed_at=now - timedelta(seconds=5))
        await publish(isolated, hit)
        page_id = page_id_for(hit.hit_id)
        steps = await eventually(
            lambda: steps_sent(isolated, page_id),
            lambda s: bool(s.get(0)) and all(n["send_state"] == "sent" for n in s[0]),
        )
        assert 1 not in steps
    finally:
        stop_process(first, signal.SIGKILL)
    assert first.process.returncode == -signal.SIGKILL

    second = await start_pager(env, tmp_path / "pager-2.log", port)
    try:
        steps = await eventually(
            lambda: steps_sent(isolated, page_id),
            lambda s: bool(s.get(1)) and all(n["send_state"] == "sent" for n in s[1]),
            within=60,
        )
    finally:
        stop_process(second)
    # Every notification went out exactly once: none lost with the first process, none repeated by the second.
    for rows in steps.values():
        for n in rows:
            assert [m.to for m in fake.messages.values() if n["reply_code"] in m.body] == [n["phone"]]
