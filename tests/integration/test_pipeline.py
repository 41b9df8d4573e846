"""End to end on the real Kafka and PostgreSQL with a real matcher worker process.

One worker serves the module; each test uses its own plates and measures what it caused (counter deltas),
so the tests do not depend on their order.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import orjson
import pytest

from connectors.producer import SightingPublisher
from streams import watchstore
from streams.deadletter import read_headers
from streams.events import SourceKind, new_sighting
from streams.hits import HitV1
from streams.topics import HITS, SIGHTINGS_DLQ
from streams.vehicles import Action
from tests.conftest import Isolated, Worker, eventually, start_worker, stop_process, topic_records

pytestmark = pytest.mark.integration

CONSUMED = "seizewatch_sightings_consumed_total"
PROVINCE_HITS = 'seizewatch_matches_total{match_kind="province",outcome="hit"}'
FUZZY_ONLY_SKIPPED = "seizewatch_match_fuzzy_only_skipped_total"


def read(plate: str, sighting_id: str | None = None):
    # Observed now: a read from before an entry's valid_from (set when it was added) must not hit it.
    now = datetime.now(UTC)
    return new_sighting(
        sighting_id=sighting_id or uuid.uuid4().hex,
        source_kind=SourceKind.CHECKPOINT,
        source_id="checkpoints-test",
        device_id="kk-1",
        plate_raw=plate,
        observed_at=now,
        received_at=now,
    )


async def counted(worker: Worker, name: str) -> float:
    return (await worker.metrics()).get(name, 0.0)


async def add(conn: asyncpg.Connection, plate: str, action: Action = Action.SEIZE) -> uuid.UUID:
    record = await watchstore.add_entry(
        conn,
        watchstore.NewEntry(
            plate=plate,
            case_number=f"(2026)浙1002执{uuid.uuid4().int % 10000}号",
            court="椒江法院",
            action=action,
        ),
        by="test",
    )
    return record.entry.entry_id


async def hit_rows(conn: asyncpg.Connection, entry_id: uuid.UUID) -> list[asyncpg.Record]:
    return await conn.fetch("SELECT * FROM hits WHERE entry_id = $1", entry_id)


async def test_a_watched_read_makes_exactly_one_hit_even_when_replayed(
    isolated: Isolated, worker: Worker
) -> None:
    conn = await asyncpg.connect(isolated.settings.postgres.dsn.get_secret_value())
    try:
        before = await counted(worker, "seizewatch_watchlist_entries")
        entry_id = await add(conn, "浙J12345")
        await worker.wait_metric("seizewatch_watchlist_entries", lambda v: v == before + 1)
        sighting = read("浙J·12345")
        consumed = await counted(worker, CONSUMED)
        async with SightingPublisher(isolated.settings.kafka, role="test") as publisher:
            await publisher.publish(sighting)
            rows = await eventually(lambda: hit_rows(conn, entry_id), lambda rows: len(rows) == 1)
            assert rows[0]["sighting_id"] == sighting.sighting_id
            assert rows[0]["match_kind"] == "exact"
            assert rows[0]["observed_offset_min"] == 0
            await eventually(
                lambda: hit_rows(conn, entry_id), lambda rows: rows[0]["published_at"] is not None
            )
            # The same read again (a connector resend, or Kafka redelivery after a crash).
            await publisher.publish(sighting)
            await worker.wait_metric(CONSUMED, lambda v: v == consumed + 2)
        assert len(await hit_rows(conn, entry_id)) == 1
        hits = [HitV1.model_validate_json(r.value) for r in await topic_records(isolated, HITS)]
        mine = [h for h in hits if h.entry_id == entry_id]
        assert len(mine) == 1
        assert mine[0].sighting == sighting
        assert mine[0].case_number.startswith("(2026)浙1002执")
    finally:
        await conn.close()


async def test_a_released_entry_makes_no_hit(isolated: Isolated, worker: Worker) -> None:
    conn = await asyncpg.connect(isolated.settings.postgres.dsn.get_secret_value())
    try:
        before = await counted(worker, "seizewatch_watchlist_entries")
        entry_id = await add(conn, "苏E88888")
        await worker.wait_metric("seizewatch_watchlist_entries", lambda v: v == before + 1)
        await watchstore.release_entry(conn, entry_id, by="test", reason="执行和解")
        await worker.wait_metric("seizewatch_watchlist_entries", lambda v: v == before)
        consumed = await counted(worker, CONSUMED)
        async with SightingPublisher(isolated.settings.kafka, role="test") as publisher:
            await publisher.publish(read("苏E88888"))
            await publisher.publish(read("E88888"))  # province missing: would be a province match
        await worker.wait_metric(CONSUMED, lambda v: v == consumed + 2)
        assert await hit_rows(conn, entry_id) == []
        history = await conn.fetch(
            "SELECT change, changed_by, reason FROM watch_entry_history WHERE entry_id = $1 ORDER BY version",
            entry_id,
        )
        assert [(h["change"], h["changed_by"], h["reason"]) for h in history] == [
            ("added", "test", ""),
            ("released", "test", "执行和解"),
        ]
    finally:
        await conn.close()


async def test_fuzzy_reads_hit_with_their_kind_ocr_only_when_configured(
    isolated: Isolated, worker: Worker
) -> None:
    conn = await asyncpg.connect(isolated.settings.postgres.dsn.get_secret_value())
    try:
        before = await counted(worker, "seizewatch_watchlist_entries")
        ocr_id = await add(conn, "浙JD80123")
        province_id = await add(conn, "沪A66G88", Action.LOCATE)
        await worker.wait_metric("seizewatch_watchlist_entries", lambda v: v == before + 2)
        consumed = await counted(worker, CONSUMED)
        province_hits = await counted(worker, PROVINCE_HITS)
        skipped = await counted(worker, FUZZY_ONLY_SKIPPED)
        async with SightingPublisher(isolated.settings.kafka, role="test") as publisher:
            other_province = read("浙A66G88")  # by default a readable province is taken as read
            await publisher.publish(other_province)
            await publisher.publish(read("浙JD8O123"))  # an ocr match: by default no hit
            await publisher.publish(read("A66G88"))  # the province not read: any province's entry
        province = await eventually(lambda: hit_rows(conn, province_id), lambda rows: len(rows) == 1)
        assert (province[0]["match_kind"], province[0]["score"]) == ("province", pytest.approx(0.9))
        await worker.wait_metric(CONSUMED, lambda v: v == consumed + 3)  # all three matched (or not)
        assert await counted(worker, PROVINCE_HITS) == province_hits + 1  # counted when matched
        assert await counted(worker, FUZZY_ONLY_SKIPPED) == skipped + 1  # the ocr read, undecoded
        assert province[0]["sighting_id"] != other_province.sighting_id
        assert await hit_rows(conn, ocr_id) == []
    finally:
        await conn.close()
    # With the OCR kinds enabled the same read hits, with its kind and score (tests/integration/
    # test_ocr_hits.py runs a worker so configured end to end).


async def test_invalid_payloads_land_in_the_dead_letter_topic_with_their_reason(
    isolated: Isolated, worker: Worker
) -> None:
    garbage = b"\xff\xfe\x00 not json at all"
    valid = orjson.loads(read("浙J12345").encode())
    del valid["observed_at"]
    missing_field = orjson.dumps(valid)
    bad_plate = orjson.dumps({**orjson.loads(read("浙J12345").encode()), "plate": "无牌"})
    async with SightingPublisher(isolated.settings.kafka, role="test") as publisher:
        for payload in (garbage, missing_field, bad_plate):
            await publisher.publish_raw(payload)

    async def letters() -> list[tuple[bytes, dict[str, str]]]:
        return [(r.value, read_headers(r.headers)) for r in await topic_records(isolated, SIGHTINGS_DLQ)]

    found = await eventually(letters, lambda found: len(found) >= 3)
    by_value = dict(found)
    assert by_value[garbage]["seizewatch.reason"] == "not_json"
    assert by_value[missing_field]["seizewatch.reason"] == "invalid_field"
    assert by_value[missing_field]["seizewatch.field"] == "observed_at"
    assert by_value[bad_plate]["seizewatch.reason"] == "no_plate"
    assert by_value[bad_plate]["seizewatch.stage"] == "match"
    assert by_value[garbage]["seizewatch.origin"].startswith(isolated.settings.kafka.topic("plate.sightings"))
    # All consumed and committed: the match stage's consumer lag comes back to zero.
    await worker.wait_metric('seizewatch_kafka_consumer_lag_records{stage="match"}', lambda v: v == 0)


async def test_the_faust_engine_kept_for_comparison_matches_the_same(
    isolated: Isolated, worker: Worker, tmp_path: Path
) -> None:
    # The batch engine (the default) stops first: one consumer group, so the faust worker gets every
    # partition and this read is certainly its.
    assert stop_process(worker) == 0
    faust_worker = start_worker({**isolated.env, "SEIZEWATCH_MATCH_ENGINE": "faust"}, tmp_path / "faust.log")
    conn = await asyncpg.connect(isolated.settings.postgres.dsn.get_secret_value())
    try:
        await faust_worker.wait_metric("seizewatch_watchlist_caught_up", lambda v: v == 1, within=90)
        entry_id = await add(conn, "浙J24680")
        await faust_worker.wait_metric("seizewatch_watchlist_entries", lambda v: v >= 1)
        async with SightingPublisher(isolated.settings.kafka, role="test") as publisher:
            await publisher.publish(read("浙J24680"))
        rows = await eventually(lambda: hit_rows(conn, entry_id), lambda rows: len(rows) == 1)
        assert rows[0]["match_kind"] == "exact"
    finally:
        await conn.close()
        stop_process(faust_worker)
