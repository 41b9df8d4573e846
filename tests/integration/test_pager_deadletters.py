"""Hits the pager cannot take are dead-lettered with their reason, and the hits behind them are paged.

The refusal is real: PostgreSQL refuses a NUL character in text and jsonb, so a hit carrying one can
never be stored, however often it is retried. Before, such a hit was retried for ever and blocked its
partition: every later hit of the vehicle (and of the others on that partition) went unpaged.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer
from prometheus_client import REGISTRY

from alerts.pages import page_id_for
from streams.deadletter import read_headers
from streams.topics import HITS, HITS_DLQ, SEIZURE_RESULTS, SIGHTINGS_DLQ
from tests.conftest import Isolated, eventually, topic_records
from tests.fakes.twilio_server import FakeTwilio
from tests.integration.pager_support import (
    Clock,
    RunningPager,
    import_example_roster,
    make_hit,
    serve_pager,
)

pytestmark = pytest.mark.integration

DAY = datetime(2026, 11, 23, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))


@pytest.fixture(scope="module")
async def pager(isolated: Isolated) -> AsyncIterator[RunningPager]:
    await import_example_roster(isolated.settings.postgres.dsn.get_secret_value())
    async with FakeTwilio() as fake, serve_pager(isolated, fake, Clock(DAY)) as running:
        yield running


async def produce(isolated: Isolated, topic: str, records: list[tuple[bytes, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=isolated.settings.kafka.bootstrap_servers, acks="all")
    await producer.start()
    try:
        for key, value in records:
            await producer.send_and_wait(isolated.settings.kafka.topic(topic), key=key, value=value)
    finally:
        await producer.stop()


async def sent(isolated: Isolated, page_id: uuid.UUID) -> list[str]:
    conn = await asyncpg.connect(isolated.settings.postgres.dsn.get_secret_value())
    try:
        rows = await conn.fetch("SELECT send_state FROM notifications WHERE page_id = $1", page_id)
    finally:
        await conn.close()
    return [r["send_state"] for r in rows]


def dead_letters(stage: str, reason: str) -> float:
    return REGISTRY.get_sample_value("seizewatch_dead_letters_total", {"stage": stage, "reason": reason}) or 0


async def test_a_hit_postgresql_refuses_is_dead_lettered_and_the_next_one_paged(
    pager: RunningPager, isolated: Isolated
) -> None:
    refused, unreadable = dead_letters("pager", "store_refused"), dead_letters("pager", "invalid_hit")
    good = await make_hit(isolated, plate="浙J91001", observed_at=DAY - timedelta(seconds=30))
    # Another read of the same vehicle whose device name carries a NUL: valid JSON, refused by PostgreSQL.
    poisoned = good.sighting.model_copy(
        update={"sighting_id": uuid.uuid4().hex, "device_name": "椒江\x00万达"}
    )
    bad = good.model_copy(update={"hit_id": uuid.uuid4(), "sighting": poisoned})
    key = str(good.entry_id).encode()  # one vehicle, one partition: the bad records come first
    await produce(
        isolated,
        HITS,
        [(key, bad.encode()), (key, b'{"schema_version": 1, "hit_id": "x"'), (key, good.encode())],
    )

    assert await eventually(lambda: sent(isolated, page_id_for(good.hit_id)), lambda s: s == ["sent"] * 2)
    letters = {r.value: read_headers(r.headers) for r in await topic_records(isolated, HITS_DLQ)}
    refusal = letters[bad.encode()]
    assert (refusal["seizewatch.stage"], refusal["seizewatch.reason"]) == ("pager", "store_refused")
    assert "22P05" in refusal["seizewatch.message"]  # untranslatable character: the NUL
    assert refusal["seizewatch.origin"].startswith(isolated.settings.kafka.topic(HITS) + "/")
    garbage = letters[b'{"schema_version": 1, "hit_id": "x"']
    assert (garbage["seizewatch.stage"], garbage["seizewatch.reason"]) == ("pager", "invalid_hit")
    assert dead_letters("pager", "store_refused") == refused + 1
    assert dead_letters("pager", "invalid_hit") == unreadable + 1
    assert not await sent(isolated, page_id_for(bad.hit_id))  # nobody paged for what was not taken


async def test_an_unreadable_traffic_result_is_dead_lettered(pager: RunningPager, isolated: Isolated) -> None:
    await produce(isolated, SEIZURE_RESULTS, [(b"entry", b"not a result")])

    async def letters() -> dict[bytes, dict[str, str]]:
        return {r.value: read_headers(r.headers) for r in await topic_records(isolated, SIGHTINGS_DLQ)}

    found = await eventually(letters, lambda ls: b"not a result" in ls)
    assert (found[b"not a result"]["seizewatch.stage"], found[b"not a result"]["seizewatch.reason"]) == (
        "pager_traffic",
        "invalid_result",
    )
