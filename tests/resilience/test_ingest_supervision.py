"""The ingest's background loop (the registry's reloads) under supervision, on real PostgreSQL failures.

A lost connection is retriable: the loop reconnects, reloads, and changes made meanwhile take effect. A
failure retrying cannot fix (the ingest's role may no longer read the registry) ends the loop: /healthz
answers 503 naming it, and the process exits 70 for its own supervisor to restart it (issue 21).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from connectors.auth import API_KEY_HEADER
from connectors.registry import CHANNEL, AuthMethod, Connector, add_source
from streams.supervision import EXIT_LOOP_FAILED
from tests.conftest import Isolated, Process, eventually, stop_process
from tests.integration.test_connectors import generic, key
from tests.resilience.ingest_support import spawn_ingest

pytestmark = pytest.mark.integration


@pytest.fixture
async def db(isolated: Isolated) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(isolated.settings.postgres.dsn.get_secret_value())
    try:
        yield conn
    finally:
        await conn.close()


@pytest.fixture
async def ingest_process(isolated: Isolated, tmp_path: Path) -> AsyncIterator[Process]:
    proc = spawn_ingest(isolated, tmp_path / "ingest.log")
    try:
        await eventually(lambda: health(proc), lambda answer: answer[0] == 200, within=60)
        yield proc
    finally:
        stop_process(proc)


async def health(proc: Process) -> tuple[int, dict[str, str]]:
    assert proc.process.poll() is None, f"ingest exited ({proc.process.returncode}):\n{proc.tail()}"
    async with httpx.AsyncClient() as client:
        try:
            response = await client.get(f"http://127.0.0.1:{proc.port}/healthz", timeout=5)
        except httpx.TransportError:
            return 0, {}
        return response.status_code, response.json()


async def post(proc: Process, source: str) -> int:
    async with httpx.AsyncClient() as client:
        response = await client.post(
            f"http://127.0.0.1:{proc.port}/parking/v1/sources/{source}/records",
            json={"records": [generic("r-1")]},
            headers={API_KEY_HEADER: key(source)},
            timeout=30,
        )
        return response.status_code


async def terminate_other_backends(conn: asyncpg.Connection) -> int:
    """pg_terminate_backend on every other session of this database (the ingest's registry listener)."""
    terminated = await conn.fetch(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
        " WHERE datname = current_database() AND pid <> pg_backend_pid()"
    )
    return sum(1 for row in terminated if row[0])


async def test_a_lost_registry_connection_is_reopened_and_changes_made_meanwhile_apply(
    ingest_process: Process, db: asyncpg.Connection
) -> None:
    await add_source(db, "lot-before", Connector.PARKING, AuthMethod.API_KEY)
    await eventually(lambda: post(ingest_process, "lot-before"), lambda status: status == 200)
    assert await terminate_other_backends(db) >= 1
    # Made while the listener is gone: its notification reaches nobody, the reload after reconnecting
    # finds it.
    await add_source(db, "lot-after", Connector.PARKING, AuthMethod.API_KEY)
    await eventually(lambda: post(ingest_process, "lot-after"), lambda status: status == 200, within=30)
    # And notifications flow again on the new connection.
    await add_source(db, "lot-later", Connector.PARKING, AuthMethod.API_KEY)
    await eventually(lambda: post(ingest_process, "lot-later"), lambda status: status == 200, within=30)
    assert await health(ingest_process) == (200, {"status": "ok"})
    assert "registry: connected to PostgreSQL again" in ingest_process.log.read_text()


async def test_a_registry_it_may_no_longer_read_fails_its_health_and_the_process(
    ingest_process: Process, db: asyncpg.Connection
) -> None:
    # The owner revokes its own right to read the table (as a least-privilege change gone wrong would):
    # SQLSTATE 42501, which no retry cures.
    await db.execute("REVOKE SELECT ON devices FROM CURRENT_USER")
    try:
        await db.execute("SELECT pg_notify($1, 'devices')", CHANNEL)
        status, body = await eventually(
            lambda: health(ingest_process), lambda answer: answer[0] != 200, within=30
        )
        assert status == 503, body
        assert body["status"] == "failed"
        assert body["failure"].startswith("registry: "), body
        assert "42501" in body["failure"], body
        code = await asyncio.to_thread(ingest_process.process.wait, 60)
        assert code == EXIT_LOOP_FAILED, ingest_process.tail()
    finally:
        await db.execute("GRANT SELECT ON devices TO CURRENT_USER")
