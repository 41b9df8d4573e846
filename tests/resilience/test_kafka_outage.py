"""With the Kafka broker stopped, connectors answer 503 + Retry-After and accept nothing; once it is
back, every read that got a 2xx is in the topic exactly once.

Runs after the integration tests (it stops the shared broker) and always brings the broker back.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest

from connectors.auth import API_KEY_HEADER
from connectors.registry import AuthMethod, Connector, add_source
from seizewatch.localservices import LocalServices
from tests.conftest import Isolated, Process, eventually
from tests.integration.test_connectors import generic, key, sightings_by_id

pytestmark = pytest.mark.integration


@pytest.fixture
async def client(ingest: Process, isolated: Isolated) -> AsyncIterator[httpx.AsyncClient]:
    conn = await asyncpg.connect(isolated.settings.postgres.dsn.get_secret_value())
    try:
        await add_source(conn, "lot-wanda", Connector.PARKING, AuthMethod.API_KEY)
    finally:
        await conn.close()
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{ingest.port}", timeout=60) as c:
        # The new source reaches the server's registry by notification, within moments.
        await eventually(lambda: post(c, "probe"), lambda r: r.status_code != 401)
        yield c


async def post(client: httpx.AsyncClient, record_id: str) -> httpx.Response:
    return await client.post(
        "/parking/v1/sources/lot-wanda/records",
        json={"records": [generic(record_id)]},
        headers={API_KEY_HEADER: key("lot-wanda")},
    )


async def test_kafka_down_means_503_and_nothing_acknowledged_is_lost(
    client: httpx.AsyncClient, isolated: Isolated
) -> None:
    services = LocalServices(isolated.settings)
    accepted: list[str] = []
    refused = 0

    async def send(n: int) -> None:
        nonlocal refused
        for _ in range(n):
            response = await post(client, uuid.uuid4().hex)
            if response.status_code == 200:
                accepted.extend(response.json()["sighting_ids"])
            else:
                assert response.status_code == 503, response.text
                assert int(response.headers["Retry-After"]) > 0
                assert response.json()["error"]["reason"] == "kafka_unavailable"
                refused += 1

    await send(20)
    assert len(accepted) == 20
    await asyncio.to_thread(services.stop_kafka)
    try:
        started = time.monotonic()
        await send(10)
        assert refused == 10, "every request while the broker is down must be refused"
        assert len(accepted) == 20
        assert time.monotonic() - started < 30, "after the first timeout the breaker answers at once"
    finally:
        await asyncio.to_thread(services.start_kafka)
    # Back: senders retry after Retry-After until accepted, then keep sending.
    async with asyncio.timeout(90):
        while True:
            response = await post(client, uuid.uuid4().hex)
            if response.status_code == 200:
                accepted.extend(response.json()["sighting_ids"])
                break
            await asyncio.sleep(int(response.headers.get("Retry-After", "1")))
    await send(20)
    assert len(accepted) == 41

    counts = Counter({sid: len(copies) for sid, copies in (await sightings_by_id(isolated)).items()})
    assert all(counts[sid] == 1 for sid in accepted), {
        sid: counts[sid] for sid in accepted if counts[sid] != 1
    }
