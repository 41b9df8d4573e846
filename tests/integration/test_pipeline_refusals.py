"""A hit the system of record refuses is dead-lettered with the refusal's reason, not retried forever.

PostgreSQL refuses a NUL character in text (issue 18, item 4: a NUL in an image URL): the hit of such a
read can never be recorded. The match stage classifies the failure once (streams.errors.translate) as a
refusal, dead-letters the read with reason ``store_refused`` and goes on; the batch's other hits are
recorded, and the reads after it too.
"""

from __future__ import annotations

import asyncpg
import pytest

from connectors.producer import SightingPublisher
from streams.deadletter import read_headers
from streams.topics import SIGHTINGS_DLQ
from tests.conftest import Isolated, Worker, eventually, topic_records
from tests.integration.test_pipeline import CONSUMED, add, counted, hit_rows, read

pytestmark = pytest.mark.integration


async def test_a_hit_postgresql_refuses_is_dead_lettered_as_store_refused(
    isolated: Isolated, worker: Worker
) -> None:
    conn = await asyncpg.connect(isolated.settings.postgres.dsn.get_secret_value())
    try:
        before = await counted(worker, "seizewatch_watchlist_entries")
        refused_id, kept_id, later_id = [await add(conn, p) for p in ("浙J61001", "浙J61002", "浙J61003")]
        await worker.wait_metric("seizewatch_watchlist_entries", lambda v: v == before + 3)
        poisoned = read("浙J61001").model_copy(update={"image_ref": "https://cam.example/1\x00.jpg"})
        consumed = await counted(worker, CONSUMED)
        async with SightingPublisher(isolated.settings.kafka, role="test") as publisher:
            await publisher.publish_many([poisoned, read("浙J61002")])  # one batch, one partition or two
            await publisher.publish(read("浙J61003"))

        async def letters() -> list[tuple[bytes, dict[str, str]]]:
            return [
                (r.value, read_headers(r.headers))
                for r in await topic_records(isolated, SIGHTINGS_DLQ)
                if r.value == poisoned.encode()
            ]

        [(_, headers)] = await eventually(letters, lambda found: len(found) >= 1)
        assert headers["seizewatch.reason"] == "store_refused"
        assert headers["seizewatch.stage"] == "match"
        assert "PostgreSQL refused it" in headers["seizewatch.message"]
        await eventually(lambda: hit_rows(conn, later_id), lambda rows: len(rows) == 1)
        assert len(await hit_rows(conn, kept_id)) == 1  # the other hit of its batch was recorded
        assert await hit_rows(conn, refused_id) == []
        await worker.wait_metric(CONSUMED, lambda v: v == consumed + 3)
        assert (await worker.metrics())[
            'seizewatch_dead_letters_total{reason="store_refused",stage="match"}'
        ] == 1
    finally:
        await conn.close()
