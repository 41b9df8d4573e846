"""The batch engine's recorder: hits of many small batches recorded once each, offsets committed after them.

A worker with tiny batches (25 reads) turns a few thousand reads into a hundred batches, so rounds of the
background recorder take several batches at once; every hit must still be recorded and published exactly
once, and the group's committed offsets must reach the end of every partition, also across a clean stop.
"""

from __future__ import annotations

import os
import signal
import uuid
from pathlib import Path

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from connectors.producer import SightingPublisher
from streams.hits import HitV1
from streams.runtime import group_id
from streams.topics import HITS, SIGHTINGS, spec
from tests.conftest import Isolated, Process, eventually, start_worker, stop_process, topic_records
from tests.integration.test_pipeline import CONSUMED, add, read

pytestmark = pytest.mark.integration

WATCHED = [f"浙J{10000 + 37 * i}" for i in range(20)]
# Another province and authority: under the default settings none of these can match a watched plate.
OTHERS = [f"鲁Q{i:05d}" for i in range(2980)]


async def committed_and_end(isolated: Isolated) -> tuple[dict[int, int | None], dict[int, int]]:
    """The matchers' committed offset and the end offset of each partition of the sightings topic."""
    kafka = isolated.settings.kafka
    topic = kafka.topic(SIGHTINGS)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=kafka.bootstrap_servers, group_id=group_id(kafka), enable_auto_commit=False
    )
    await consumer.start()
    try:
        # The declared partitions, not the client's metadata cache, which may still be empty here.
        partitions = [TopicPartition(topic, p) for p in range(spec(SIGHTINGS).partitions)]
        committed = {tp.partition: await consumer.committed(tp) for tp in partitions}
        ends = await consumer.end_offsets(partitions)
        return committed, {tp.partition: offset for tp, offset in ends.items()}
    finally:
        await consumer.stop()


async def watch_and_publish(
    isolated: Isolated, worker: Process, conn: asyncpg.Connection, watched: list[str]
) -> tuple[set[uuid.UUID], float, int]:
    """Watch ``watched`` (once the worker holds them), then publish one read of each among the others.

    Returns the entry ids, the worker's consumed count before the reads, and how many reads were sent.
    """
    await worker.wait_metric("seizewatch_watchlist_caught_up", lambda v: v == 1, within=90)
    before = (await worker.metrics())["seizewatch_watchlist_entries"]
    entry_ids = {await add(conn, plate) for plate in watched}
    await worker.wait_metric("seizewatch_watchlist_entries", lambda v: v == before + len(watched))
    consumed = (await worker.metrics()).get(CONSUMED, 0.0)
    reads = [read(plate) for plate in OTHERS]
    for k, plate in enumerate(watched):  # spread over the stream, so over many batches
        reads.insert(k * 150, read(plate))
    async with SightingPublisher(isolated.settings.kafka, role="test") as publisher:
        for i in range(0, len(reads), 500):
            await publisher.publish_many(reads[i : i + 500])
    return entry_ids, consumed, len(reads)


async def hit_rows(conn: asyncpg.Connection, entry_ids: set[uuid.UUID]) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT entry_id, published_at FROM hits WHERE entry_id = ANY($1::uuid[])", list(entry_ids)
    )


async def test_small_batches_record_every_hit_once_and_commit_to_the_end(
    isolated: Isolated, tmp_path: Path
) -> None:
    worker = start_worker({**isolated.env, "SEIZEWATCH_MATCH_BATCH_SIZE": "25"}, tmp_path / "worker.log")
    conn = await asyncpg.connect(isolated.settings.postgres.dsn.get_secret_value())
    try:
        entry_ids, consumed, sent = await watch_and_publish(isolated, worker, conn, WATCHED)
        await worker.wait_metric(CONSUMED, lambda v: v == consumed + sent, within=60)
        rows = await eventually(
            lambda: hit_rows(conn, entry_ids),
            lambda rows: len(rows) >= len(entry_ids) and all(r["published_at"] for r in rows),
        )
        assert sorted(r["entry_id"] for r in rows) == sorted(entry_ids)  # one hit per watched read
        await eventually(
            lambda: committed_and_end(isolated), lambda offsets: offsets[0] == offsets[1], within=30
        )
        assert stop_process(worker) == 0  # a clean stop: what was matched is recorded and committed
        published = [HitV1.model_validate_json(r.value) for r in await topic_records(isolated, HITS)]
        assert sorted(h.entry_id for h in published if h.entry_id in entry_ids) == sorted(entry_ids)
        committed, ends = await committed_and_end(isolated)
        assert committed == ends
    finally:
        await conn.close()
        stop_process(worker)


async def test_a_worker_killed_mid_stream_loses_no_hit_and_makes_none_twice(
    isolated: Isolated, tmp_path: Path
) -> None:
    env = {**isolated.env, "SEIZEWATCH_MATCH_BATCH_SIZE": "25"}
    conn = await asyncpg.connect(isolated.settings.postgres.dsn.get_secret_value())
    worker = start_worker(env, tmp_path / "first.log")
    try:
        plates = [f"苏E{20000 + 41 * i}" for i in range(20)]
        entry_ids, consumed, _ = await watch_and_publish(isolated, worker, conn, plates)
        # Killed (no chance to record or commit what it holds) as soon as it is part of the way through.
        await worker.wait_metric(CONSUMED, lambda v: v >= consumed + 300, within=60)
        stop_process(worker, signal.SIGKILL)
        worker = start_worker(env, tmp_path / "second.log")
        await eventually(
            lambda: committed_and_end(isolated), lambda offsets: offsets[0] == offsets[1], within=90
        )
        rows = await hit_rows(conn, entry_ids)
        assert sorted(r["entry_id"] for r in rows) == sorted(entry_ids)  # each once: none lost, none twice
        assert all(r["published_at"] is not None for r in rows)
    finally:
        await conn.close()
        stop_process(worker)


def _procfs(path: str) -> bytes | None:
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        return None


async def test_the_worker_runs_on_huge_pages_as_the_same_process(worker: Process) -> None:
    """It re-executed itself with glibc's tunable (streams/hugepages.py): same PID, the tunable set."""
    if "glibc.malloc.hugetlb" in os.environ.get("GLIBC_TUNABLES", ""):
        pytest.skip("this environment chooses the pages itself: the worker does not re-execute")
    if not (os.confstr("CS_GNU_LIBC_VERSION") or "").startswith("glibc 2."):
        pytest.skip("not glibc: nothing to re-execute for")
    started_with = _procfs(f"/proc/{worker.process.pid}/environ") or b""
    environ = dict(item.partition(b"=")[::2] for item in started_with.split(b"\0"))
    assert b"glibc.malloc.hugetlb=1" in environ.get(b"GLIBC_TUNABLES", b"").split(b":")
    assert b"SEIZEWATCH_HUGE_PAGES_REEXECUTED" in environ
    thp = (_procfs("/sys/kernel/mm/transparent_hugepage/enabled") or b"[never]").decode()
    huge = (await worker.metrics())["seizewatch_worker_huge_pages_bytes"]
    if "[never]" in thp:
        assert huge == 0
    else:
        assert huge > 0, f"the kernel gives huge pages on request ({thp.strip()}), the worker has none"
