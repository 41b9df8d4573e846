"""The pager as a real process under faults: killed (SIGKILL) while its sends are in flight, a provider
failing a third of its sends, one of its loops dying, PostgreSQL stopped and started again under it.

The fake Twilio runs in this process and holds the sends while the pager is killed; what it counts is
the truth of what was sent: exactly one SMS per (page, step, officer), none missing.
"""

from __future__ import annotations

import asyncio
import signal
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
import pytest

from alerts.pages import page_id_for
from seizewatch.localservices import LocalServices
from seizewatch.scratch import free_port
from streams.supervision import EXIT_LOOP_FAILED
from tests.conftest import Isolated, eventually, stop_process
from tests.fakes.twilio_server import FakeTwilio, Faults
from tests.integration.pager_support import (
    Clock,
    import_example_roster,
    make_hit,
    pager_env,
    publish,
    serve_pager,
    start_pager,
)

pytestmark = pytest.mark.integration

# A send may take 4 s (the adapter's timeout) and may land up to 1 s after it was given up: a claim's
# lease is 5 s, so a restarted pager takes over a killed one's claims 5 s after they were made.
FAST = {
    "TWILIO_TIMEOUT_S": "4",
    "PAGER_IN_FLIGHT_MARGIN_S": "1",
    "PAGER_SEND_CONCURRENCY": "4",
    "PAGER_ACK_TIMEOUT_S": "300",  # no escalation step while a test looks at the first one
}


@pytest.fixture(scope="module")
async def roster(isolated: Isolated) -> None:
    await import_example_roster(isolated.settings.postgres.dsn.get_secret_value())


@pytest.fixture
async def fake(roster: None) -> AsyncIterator[FakeTwilio]:
    async with FakeTwilio() as f:
        yield f


async def fetch(isolated: Isolated, query: str, *args: object) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(isolated.settings.postgres.dsn.get_secret_value())
    try:
        return await conn.fetch(query, *args)
    finally:
        await conn.close()


async def first_steps(isolated: Isolated, pages: list[uuid.UUID]) -> list[asyncpg.Record]:
    return await fetch(
        isolated,
        "SELECT * FROM notifications WHERE page_id = ANY($1::uuid[]) AND step = 0"
        " ORDER BY page_id, officer_id",
        pages,
    )


async def hits(isolated: Isolated, plates: list[str]) -> list[uuid.UUID]:
    """Publish a hit per plate, seen just now; their pages' ids. Seen where no police station covers the
    night, so each page's first step is the court's judge and judicial police (2 SMS) at any hour."""
    pages = []
    for plate in plates:
        hit = await make_hit(
            isolated, plate=plate, observed_at=datetime.now(UTC) - timedelta(seconds=5), district=None
        )
        await publish(isolated, hit)
        pages.append(page_id_for(hit.hit_id))
    return pages


@pytest.mark.parametrize("create_first", [True, False], ids=["created-then-held", "held-before-creating"])
async def test_a_pager_killed_while_sending_sends_each_claimed_sms_once(
    isolated: Isolated, fake: FakeTwilio, tmp_path: Path, create_first: bool
) -> None:
    port = free_port()
    env = pager_env(isolated, fake, port, **FAST)

    async def held() -> int:
        return fake.held

    fake.hold(create_first=create_first)
    first = await start_pager(env, tmp_path / "pager-1.log", port)
    try:
        tag = "1" if create_first else "2"
        pages = await hits(isolated, [f"浙J8{tag}00{i}" for i in range(4)])  # 2 officers each: 8 SMS
        await eventually(lambda: first_steps(isolated, pages), lambda rows: len(rows) == 8)
        await eventually(held, lambda n: n >= 1)
    finally:
        stop_process(first, signal.SIGKILL)
    await eventually(held, lambda n: n == 0)  # the killed pager's connections are gone
    created_before = len(fake.messages)
    fake.release()  # requests held before creating are dropped: their sender is dead

    second = await start_pager(env, tmp_path / "pager-2.log", port)
    try:
        rows = await eventually(
            lambda: first_steps(isolated, pages),
            lambda rows: [r["send_state"] for r in rows] == ["sent"] * 8,
            within=45,
        )
    except TimeoutError:
        states = Counter(r["send_state"] for r in await first_steps(isolated, pages))
        pytest.fail(f"45 s after the restart: {dict(states)}; {len(fake.messages)} SMS at the fake for 8"
                    f" notifications ({created_before} when killed)")  # fmt: skip
    finally:
        stop_process(second)
    # Exactly one SMS per (page, step, officer) at the provider: none lost with the killed process,
    # none sent again by the new one (the fake's count, not the pager's word).
    assert [len(fake.sent_to(r["phone"], r["body"])) for r in rows] == [1] * 8
    assert len(fake.messages) == 8
    assert {r["provider_message_id"] for r in rows} == set(fake.messages)
    print(f"kill -9 ({'created' if create_first else 'not created'} while held): {created_before} SMS at the"
          f" fake when killed, {len(fake.messages)} after the restart, for 8 notifications")  # fmt: skip


async def test_a_failing_provider_loses_no_sms_and_sends_none_twice(
    isolated: Isolated, fake: FakeTwilio, tmp_path: Path
) -> None:
    # 40 % of creates fail without a clear answer: 500 before creating, 500 after creating, created and
    # then not answered within the adapter's 1 s. Every one must be looked up, the absent ones resent.
    fake.faults = Faults(server_error=0.15, server_error_after_create=0.15, timeout=0.1, hang_s=3)
    port = free_port()
    env = pager_env(isolated, fake, port, **{**FAST, "TWILIO_TIMEOUT_S": "1", "PAGER_MAX_SEND_ATTEMPTS": "8"})
    proc = await start_pager(env, tmp_path / "pager.log", port)
    try:
        pages = await hits(isolated, [f"浙J840{i:02d}" for i in range(12)])  # 24 first-step SMS
        try:
            rows = await eventually(
                lambda: first_steps(isolated, pages),
                lambda rows: len(rows) == 24 and all(r["send_state"] == "sent" for r in rows),
                within=60,
            )
        except TimeoutError:
            rows = await first_steps(isolated, pages)
            states = Counter(r["send_state"] for r in rows)
            at_fake = sum(len(fake.sent_to(r["phone"], r["body"])) > 0 for r in rows)
            pytest.fail(f"60 s on: {dict(states)}; {at_fake} of {len(rows)} notifications at the fake")
    finally:
        stop_process(proc)
    creates = [r for r in fake.requests if r.method == "POST"]
    assert [len(fake.sent_to(r["phone"], r["body"])) for r in rows] == [1] * 24
    answered_5xx = sum(1 for r in creates if r.status >= 500)
    print(f"failing provider: {len(creates)} create requests, {answered_5xx} answered 5xx; 24 of 24"
          " notifications at the fake exactly once")  # fmt: skip


async def test_a_dead_loop_takes_health_down_and_the_process_exits(
    isolated: Isolated, fake: FakeTwilio, tmp_path: Path
) -> None:
    port = free_port()
    proc = await start_pager(pager_env(isolated, fake, port, **FAST), tmp_path / "pager.log", port)
    # The sending loop's table is gone: a statement PostgreSQL refuses for good, not a failure to wait out.
    await fetch(isolated, "ALTER TABLE notifications RENAME TO notifications_away")
    try:

        async def exited() -> int | None:
            return proc.process.poll()

        code = await eventually(exited, lambda c: c is not None, within=30)
    finally:
        stop_process(proc)
        await fetch(isolated, "ALTER TABLE notifications_away RENAME TO notifications")
    assert code == EXIT_LOOP_FAILED, proc.tail()
    assert "loop pager-loops ended" in proc.tail()


async def test_healthz_names_the_loop_that_died(isolated: Isolated, fake: FakeTwilio) -> None:
    async with (
        serve_pager(isolated, fake, Clock(datetime.now(UTC)), consume=False) as pager,
        httpx.AsyncClient(base_url=pager.url) as client,
    ):
        assert (await client.get("/healthz")).status_code == 200
        await fetch(isolated, "ALTER TABLE notifications RENAME TO notifications_away")
        try:
            answer = await eventually(lambda: client.get("/healthz"), lambda r: r.status_code != 200)
        finally:
            await fetch(isolated, "ALTER TABLE notifications_away RENAME TO notifications")
    assert answer.status_code == 503
    assert answer.json()["status"] == "failed"
    assert answer.json()["failure"].startswith("pager-loops: StoreUnusable(")


# It stops the shared PostgreSQL: run with the fault scenarios, when no other test uses it.
@pytest.mark.faults
async def test_the_pager_sends_again_once_postgres_is_back(
    isolated: Isolated, fake: FakeTwilio, tmp_path: Path
) -> None:
    # Polling once a minute: within the 30 s below only a wake-up by notification sends the page, so
    # the listening connection must have been made again after the restart.
    port = free_port()
    env = pager_env(isolated, fake, port, **{**FAST, "PAGER_POLL_INTERVAL_S": "60"})
    proc = await start_pager(env, tmp_path / "pager.log", port)
    services = LocalServices(isolated.settings)
    try:
        before = await hits(isolated, ["浙J83001"])
        await eventually(
            lambda: first_steps(isolated, before),
            lambda rows: [r["send_state"] for r in rows] == ["sent"] * 2,
        )
        hit = await make_hit(isolated, plate="浙J83002", observed_at=datetime.now(UTC), district=None)
        await asyncio.to_thread(services.stop_postgres)
        try:
            await publish(isolated, hit)  # taken while PostgreSQL is down: retried until it is back
        finally:
            await asyncio.to_thread(services.start_postgres)
        after = [page_id_for(hit.hit_id)]
        rows = await eventually(
            lambda: first_steps(isolated, after),
            lambda rows: [r["send_state"] for r in rows] == ["sent"] * 2,
            within=30,
        )
        assert proc.process.poll() is None, proc.tail()
        async with httpx.AsyncClient() as client:
            assert (await client.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200
    finally:
        stop_process(proc)
    assert [len(fake.sent_to(r["phone"], r["body"])) for r in rows] == [1, 1]
