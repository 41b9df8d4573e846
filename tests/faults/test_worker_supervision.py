"""The matcher worker's supervision, on real failures: what may pass is waited out, what cannot ends it.

- ``watchlist.changes`` deleted under a running worker: its follower can no longer follow the watchlist
  (aiokafka would silently drop the partitions and the index would serve what it last read). The loop
  ends, ``/healthz`` answers 503 naming it, and the process exits with EXIT_LOOP_FAILED for its
  supervisor to restart it.
- PostgreSQL stopped and started again under a running worker, reads flowing: the worker stays up and
  healthy, holds the reads it cannot record, and once PostgreSQL is back every watched read of the outage
  makes exactly one hit.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import asyncpg
import httpx
import pytest
from aiokafka.admin import AIOKafkaAdminClient

from seizewatch.localservices import LocalServices
from seizewatch.settings import Settings
from streams import watchstore
from streams.supervision import EXIT_LOOP_FAILED
from streams.topics import WATCHLIST_CHANGES
from tests.conftest import Process, eventually, start_worker, stop_process
from tests.faults.matcher_support import Stream, all_hits_published, check_exact, fresh, since, watch

pytestmark = [pytest.mark.faults, pytest.mark.integration]

RECOVERY_BOUND_S = 30.0


async def _health(client: httpx.AsyncClient, worker: Process) -> tuple[int, dict[str, str]] | None:
    """``/healthz``'s status and body; None once the worker no longer answers."""
    try:
        response = await client.get(f"http://127.0.0.1:{worker.port}/healthz", timeout=2)
    except httpx.TransportError:
        return None
    return response.status_code, response.json()


async def test_a_worker_whose_watchlist_topic_vanishes_says_so_and_exits_for_its_supervisor(
    services: Settings, tmp_path: Path
) -> None:
    async with fresh(services, "lost_watchlist") as isolated:
        conn = await asyncpg.connect(isolated.settings.postgres.dsn.get_secret_value())
        worker = start_worker(isolated.env, tmp_path / "worker.log")
        try:
            entries = await watch(conn)
            await worker.wait_metric("seizewatch_watchlist_entries", lambda v: v == len(entries))
            async with httpx.AsyncClient() as client:
                assert await _health(client, worker) == (200, {"status": "ok"})
                admin = AIOKafkaAdminClient(bootstrap_servers=isolated.settings.kafka.bootstrap_servers)
                await admin.start()
                try:
                    await admin.delete_topics([isolated.settings.kafka.topic(WATCHLIST_CHANGES)])
                finally:
                    await admin.close()
                # Every answer until the process is gone: the 503 lasts while the worker winds down
                # (its consumer, producer and pool closed in order), a few hundred milliseconds.
                seen: list[tuple[int, dict[str, str]]] = []
                async with asyncio.timeout(60):
                    while worker.process.poll() is None:
                        if (answer := await _health(client, worker)) is not None:
                            seen.append(answer)
                        await asyncio.sleep(0.01)
            failed = [body for status, body in seen if status == 503]
            assert failed, f"no 503 before the exit; answers {seen[-3:]}; log:\n{worker.tail()}"
            print(f"\nwatchlist topic deleted: /healthz answered 503 {len(failed)} times before the exit")
            assert failed[0]["status"] == "failed"
            assert failed[0]["failure"].startswith("watchlist-follower: WatchlistLost(")
            assert worker.process.wait(30) == EXIT_LOOP_FAILED, worker.tail()
            assert "loop watchlist-follower ended" in worker.tail()
        finally:
            stop_process(worker)
            await conn.close()


async def test_postgresql_stopped_under_the_worker_delays_the_hits_of_the_outage_but_loses_none(
    services: Settings, tmp_path: Path
) -> None:
    local = LocalServices(services)
    async with fresh(services, "pg_outage") as isolated:
        dsn = isolated.settings.postgres.dsn.get_secret_value()
        conn = await asyncpg.connect(dsn)
        worker = start_worker(isolated.env, tmp_path / "worker.log")
        stream: Stream | None = None
        producing: asyncio.Task[None] | None = None
        try:
            stream = Stream(isolated.settings.kafka, await watch(conn))
            await worker.wait_metric("seizewatch_watchlist_entries", lambda v: v == len(stream.watched))
            await conn.close()
            producing = asyncio.create_task(stream.run())
            await stream.produced("before", 400)
            stream.phase = "outage"
            await asyncio.to_thread(local.stop_postgres)
            try:
                await stream.produced("outage", 1200)
                async with httpx.AsyncClient() as client:
                    # Waiting for PostgreSQL is no failure: the worker stays healthy.
                    assert await _health(client, worker) == (200, {"status": "ok"})
            finally:
                stream.phase = "after"
                await asyncio.to_thread(local.start_postgres)
            back = time.time()
            await stream.produced("after", 400)
            stream.stop()
            await producing
            conn = await asyncpg.connect(dsn)
            rows = await all_hits_published(conn, stream, worker)
            first, last = since(rows, stream, "outage", back)
            duplicates = await check_exact(isolated, conn, stream)
            retries = (await worker.metrics()).get('seizewatch_stage_retries_total{stage="match"}', 0)
            print(
                f"\nPostgreSQL stopped under the worker: reads produced during the outage: first hit"
                f" {first:.1f} s, last hit {last:.1f} s after PostgreSQL was back; reads {dict(stream.sent)},"
                f" hits {len(rows)}, match-stage retries {retries:.0f}, on watch.hits more than once"
                f" {duplicates}"
            )
            assert worker.process.poll() is None, "the worker waited PostgreSQL out, it did not exit"
            assert last <= RECOVERY_BOUND_S
        finally:
            if producing is not None and stream is not None:
                stream.stop()
                await asyncio.gather(producing, return_exceptions=True)
            stop_process(worker)
            await conn.close()
            await asyncio.to_thread(local.up)


async def test_kafka_restarted_under_the_worker_is_waited_out(services: Settings, tmp_path: Path) -> None:
    """The broker stopped (controlled shutdown) for a while and started again: every loop of the worker
    (consumer, follower, relay, lag monitor, producer) waits it out; the worker stays up and healthy,
    matches the reads produced after it, and follows watchlist changes made during the outage."""
    local = LocalServices(services)
    async with fresh(services, "kafka_outage") as isolated:
        conn = await asyncpg.connect(isolated.settings.postgres.dsn.get_secret_value())
        worker = start_worker(isolated.env, tmp_path / "worker.log")
        stream: Stream | None = None
        producing: asyncio.Task[None] | None = None
        try:
            stream = Stream(isolated.settings.kafka, await watch(conn))
            await worker.wait_metric("seizewatch_watchlist_entries", lambda v: v == len(stream.watched))
            producing = asyncio.create_task(stream.run())
            await stream.produced("before", 400)
            stream.stop()
            await producing
            await asyncio.to_thread(local.stop_kafka)
            try:
                # A change while the broker is away waits in the outbox (the relay retries).
                await watchstore.add_entry(
                    conn,
                    watchstore.NewEntry(plate="浙J39999", case_number="(2026)浙1002执1号", court="椒江法院"),
                    by="test",
                )
                async with httpx.AsyncClient() as client:
                    for _ in range(20):  # 20 s without a broker, healthy all along
                        assert worker.process.poll() is None, worker.tail()
                        assert await _health(client, worker) == (200, {"status": "ok"})
                        await asyncio.sleep(1)
            finally:
                await asyncio.to_thread(local.start_kafka)
            back = time.time()
            await worker.wait_metric("seizewatch_watchlist_entries", lambda v: v == len(stream.watched) + 1)
            producing = stream.resume("after")
            await stream.produced("after", 400)
            stream.stop()
            await producing
            rows = await all_hits_published(conn, stream, worker)
            _, last = since(rows, stream, "after", back)
            duplicates = await check_exact(isolated, conn, stream)
            async with httpx.AsyncClient() as client:
                assert await _health(client, worker) == (200, {"status": "ok"})
            print(
                f"\nKafka stopped 20 s under the worker: last hit {last:.1f} s after the broker was back;"
                f" reads {dict(stream.sent)}, hits {len(rows)}, on watch.hits more than once {duplicates}"
            )
        finally:
            if producing is not None and stream is not None:
                stream.stop()
                await asyncio.gather(producing, return_exceptions=True)
            await asyncio.to_thread(local.start_kafka)
            stop_process(worker)
            await conn.close()


async def _probe_ok(worker: Process) -> bool:
    async with httpx.AsyncClient() as client:
        answer = await _health(client, worker)
    return answer is not None and answer[0] == 200


async def test_the_worker_answers_healthz_beside_metrics(services: Settings, tmp_path: Path) -> None:
    async with fresh(services, "healthz") as isolated:
        worker = start_worker(isolated.env, tmp_path / "worker.log")
        try:
            assert await eventually(lambda: _probe_ok(worker), bool, within=60)
            assert "seizewatch_process_healthy" in str(await worker.metrics())
            assert stop_process(worker) == 0  # SIGTERM: a clean stop, no failure
        finally:
            stop_process(worker)
