"""One broker of three killed (SIGKILL) in the middle of a burst of reads: nothing acknowledged is lost,
nothing is recorded twice, and the pipeline keeps going.

The module runs its own KRaft cluster of three nodes (replication factor 3, ``min.insync.replicas=2``)
and its own PostgreSQL through :class:`seizewatch.localservices.LocalServices`, in a home of its own
(``<SEIZEWATCH_LOCAL_HOME>/faults/broker-kill``) on ports of its own
(``SEIZEWATCH_FAULTS_CLUSTER_KAFKA_PORT``, default 19100: the nodes on 19100, 19102 and 19104, their
controllers one above; ``SEIZEWATCH_FAULTS_CLUSTER_PG_PORT``, default 55433), so the shared single
broker of the other tests is never touched; it stops them and wipes their data at the end. The
ingest, the worker and the pager run as processes; the pager texts the fake Twilio.

A parking lot posts reads, a few of watched vehicles among them (each read once, so each is one hit and
one page). A quarter of the way through, the broker leading the most partitions of ``plate.sightings`` is
killed; the lot keeps sending, honouring ``Retry-After`` on a 503 (a refused batch is not resent: its reads
are counted, and may still reach the topic from the producer's own retries). At 60 % the broker is
restarted. Then, exactly: every read answered 2xx is on the topic once, no read is on it twice, every
watched read on the topic made one hit and one page, every page's first SMS went out once. The figures
are printed (run with ``-s`` to see them).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from pydantic import SecretStr

from alerts.settings import PagerSettings, TwilioSettings
from connectors.auth import API_KEY_HEADER, source_secret
from connectors.registry import AuthMethod, Connector, add_source, upsert_devices
from connectors.settings import IngestSettings
from seizewatch.localservices import LocalServices
from seizewatch.scratch import free_port
from seizewatch.settings import LocalServicesSettings, MetricsSettings, Settings
from streams import db, watchstore
from streams.errors import ConfigurationError
from streams.events import decode_sighting, sighting_id_for
from streams.settings import KafkaSettings, MatchSettings, PostgresSettings
from streams.topics import SIGHTINGS, TOPICS, ensure_topics
from streams.vehicles import Action
from tests.conftest import (
    MASTER_KEY,
    Isolated,
    Process,
    eventually,
    spawn,
    start_worker,
    stop_process,
    topic_records,
)
from tests.fakes.twilio_server import FakeTwilio
from tests.integration.pager_support import JIAOJIANG, import_example_roster

pytestmark = [pytest.mark.faults, pytest.mark.integration]

READS = 1500
READS_PER_REQUEST = 5
SENDERS = 4
PAUSE_S = 0.2  # between one sender's requests: about 90 reads/s in all, a burst of 20-30 s
WATCHED_EVERY = 50  # every 50th read is of a watched vehicle: 30 in the burst, each read once
KILL_AT = 0.25  # of the reads sent
RESTART_AT = 0.60
SOURCE = "lot-wanda"
DEVICE: dict[str, object] = {
    "device_id": "wanda/g1", "source_id": SOURCE, "name": "椒江万达广场停车场 1号入口",
    "district": "331002", "device_group": "parking-jiaojiang", "kind": "parking_entry",
}  # fmt: skip
# Bounds of the conditions waited for, never of the figures measured (nothing here is timed).
DRAIN_WITHIN_S = 90
IN_SYNC_WITHIN_S = 120


def watched_plate(n: int) -> str:
    return f"浙J9{n:04d}"


def plate_of(n: int) -> str:
    """The plate of the burst's read ``n``: a watched one every ``WATCHED_EVERY``, others never watched."""
    if n % WATCHED_EVERY == WATCHED_EVERY // 2:
        return watched_plate(n // WATCHED_EVERY)
    return f"浙J{10000 + n:05d}"


def read(n: int) -> dict[str, object]:
    observed = datetime.now(UTC) - timedelta(seconds=2)
    return {
        "record_id": f"burst-{n}", "lot_id": "wanda", "gate": "g1", "direction": "in", "plate": plate_of(n),
        "plate_colour": "蓝", "time": observed.isoformat(timespec="seconds"), "confidence": 0.93,
    }  # fmt: skip


def sighting_id(n: int) -> str:
    return sighting_id_for(SOURCE, str(DEVICE["device_id"]), f"burst-{n}")


@pytest.fixture(scope="module")
async def cluster() -> AsyncIterator[tuple[LocalServices, Isolated]]:
    """Three Kafka nodes and a PostgreSQL of this module's own, topics created, schema migrated."""
    port = int(os.environ.get("SEIZEWATCH_FAULTS_CLUSTER_KAFKA_PORT", "19100"))
    pg_port = int(os.environ.get("SEIZEWATCH_FAULTS_CLUSTER_PG_PORT", "55433"))
    home = LocalServicesSettings().home.resolve() / "faults" / "broker-kill"
    bootstrap = ",".join(f"127.0.0.1:{port + 2 * n}" for n in range(3))
    dsn = f"postgresql://seizewatch@127.0.0.1:{pg_port}/seizewatch"
    local = LocalServicesSettings(home=home, kafka_brokers=3, kafka_heap="512m")
    kafka = KafkaSettings(bootstrap_servers=bootstrap, topic_prefix="")
    settings = Settings(
        kafka, PostgresSettings(dsn=SecretStr(dsn)), MatchSettings(), MetricsSettings(), local,
        IngestSettings(), PagerSettings(), TwilioSettings(),
    )  # fmt: skip
    env = {
        **{k: v for k, v in os.environ.items() if k != "SEIZEWATCH_INGEST_MASTER_KEY"},
        "SEIZEWATCH_LOCAL_HOME": str(home),
        "SEIZEWATCH_LOCAL_KAFKA_BROKERS": "3",
        "SEIZEWATCH_LOCAL_KAFKA_HEAP": "512m",
        "SEIZEWATCH_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "SEIZEWATCH_KAFKA_TOPIC_PREFIX": "",
        "SEIZEWATCH_PG_DSN": dsn,
    }
    services = LocalServices(settings)
    try:
        # A previous run that was interrupted left data behind: this scenario starts from nothing.
        await asyncio.to_thread(services.wipe)
        await asyncio.to_thread(services.up)
        await ensure_topics(kafka)
        conn = await asyncpg.connect(dsn)
        try:
            await db.migrate(conn)
        finally:
            await conn.close()
        yield services, Isolated(settings, env)
    finally:
        await asyncio.to_thread(services.wipe)
        with contextlib.suppress(OSError):  # the folder of the fault scenarios, when none is left in it
            home.parent.rmdir()


async def partitions(isolated: Isolated, topics: list[str]) -> list[dict[str, Any]]:
    """The metadata of every partition of ``topics``: leader, replicas, in-sync replicas."""
    admin = AIOKafkaAdminClient(bootstrap_servers=isolated.settings.kafka.bootstrap_servers)
    await admin.start()
    try:
        return [
            {"topic": meta["topic"], **partition}
            for meta in await admin.describe_topics(topics)
            for partition in meta["partitions"]
        ]
    finally:
        await admin.close()


async def test_declared_topics_have_three_replicas_two_in_sync(
    cluster: tuple[LocalServices, Isolated],
) -> None:
    _, isolated = cluster
    found = await partitions(isolated, [t.name for t in TOPICS])
    assert {p["topic"] for p in found} == {t.name for t in TOPICS}
    assert all(len(p["replicas"]) == 3 and len(p["isr"]) == 3 for p in found), found
    # A second `topics ensure` finds everything as declared.
    assert await ensure_topics(isolated.settings.kafka) == []


async def test_ensure_topics_refuses_a_topic_with_fewer_replicas_than_the_cluster(
    cluster: tuple[LocalServices, Isolated],
) -> None:
    _, isolated = cluster
    prefix = f"t{uuid.uuid4().hex[:8]}."
    kafka = isolated.settings.kafka.model_copy(update={"topic_prefix": prefix})
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap_servers)
    await admin.start()
    try:
        # Someone created it by hand with one copy; partitions as declared.
        answer = await admin.create_topics(
            [NewTopic(kafka.topic(SIGHTINGS), num_partitions=6, replication_factor=1)]
        )
        assert [code for _, code, *_ in answer.topic_errors] == [0]
        with pytest.raises(ConfigurationError, match=rf"topic {prefix}plate\.sightings has partitions of 1"):
            await ensure_topics(kafka)
    finally:
        await admin.delete_topics([kafka.topic(t.name) for t in TOPICS])
        await admin.close()


@dataclass
class Burst:
    """What the lot sent and what it was answered, with when (``time.monotonic``)."""

    accepted: list[str] = field(default_factory=list)  # sighting ids answered 2xx
    refused: list[str] = field(default_factory=list)  # sighting ids of reads answered 503
    answers: Counter[int] = field(default_factory=Counter)  # requests by status
    sent: int = 0  # reads answered so far, whatever the answer
    refusals_at: list[float] = field(default_factory=list)
    accepted_at: list[float] = field(default_factory=list)

    async def reached(self, reads: float, sending: asyncio.Task[None]) -> None:
        """Waits until ``reads`` reads were answered (or the burst stopped on an error: raised)."""

        async def progress() -> int:
            if sending.done():
                sending.result()
            return self.sent

        await eventually(progress, lambda sent: sent >= reads, within=120)

    def accepted_again(self, since: float) -> float:
        """When the first 2xx came after the last 503 (``since`` when none was refused)."""
        if not self.refusals_at:
            return since
        return min(t for t in self.accepted_at if t > max(self.refusals_at))


async def send_burst(ingest: Process, burst: Burst) -> None:
    headers = {API_KEY_HEADER: source_secret(SecretStr(MASTER_KEY), SOURCE, 1)}
    batches: asyncio.Queue[list[int]] = asyncio.Queue()
    for first in range(0, READS, READS_PER_REQUEST):
        batches.put_nowait(list(range(first, min(first + READS_PER_REQUEST, READS))))
    url = f"http://127.0.0.1:{ingest.port}/parking/v1/sources/{SOURCE}/records"

    async def sender(client: httpx.AsyncClient) -> None:
        while not batches.empty():
            numbers = batches.get_nowait()
            answer = await client.post(url, json={"records": [read(n) for n in numbers]}, headers=headers)
            burst.answers[answer.status_code] += 1
            burst.sent += len(numbers)
            if answer.status_code == 200:
                burst.accepted.extend(answer.json()["sighting_ids"])
                burst.accepted_at.append(time.monotonic())
                await asyncio.sleep(PAUSE_S)
            else:
                assert answer.status_code == 503, answer.text
                assert answer.json()["error"]["reason"] == "kafka_unavailable"
                burst.refused.extend(sighting_id(n) for n in numbers)
                burst.refusals_at.append(time.monotonic())
                # A sender waits as told, then sends its next reads; the refused ones are not resent.
                await asyncio.sleep(int(answer.headers["Retry-After"]))

    # A connection per request: a kept-alive one idle for Retry-After (5 s) meets uvicorn closing it after
    # 5 s idle, and a request sent on it as it closes fails without an answer (httpx.ReadError).
    no_keepalive = httpx.Limits(max_keepalive_connections=0)
    async with httpx.AsyncClient(timeout=60, limits=no_keepalive) as client:
        await asyncio.gather(*(sender(client) for _ in range(SENDERS)))


async def prepare(isolated: Isolated) -> None:
    """The lot and its gate, the example roster, and a watch entry for each watched plate of the burst."""
    dsn = isolated.settings.postgres.dsn.get_secret_value()
    conn = await asyncpg.connect(dsn)
    try:
        await add_source(conn, SOURCE, Connector.PARKING, AuthMethod.API_KEY)
        await upsert_devices(conn, [DEVICE])
        for n in range(READS // WATCHED_EVERY):
            await watchstore.add_entry(
                conn,
                watchstore.NewEntry(
                    plate=watched_plate(n), case_number=f"(2026)浙1002执{1000 + n}号", court=JIAOJIANG,
                    action=Action.SEIZE, valid_from=datetime.now(UTC) - timedelta(days=30),
                ),
                by="test",
            )  # fmt: skip
    finally:
        await conn.close()
    await import_example_roster(dsn)


async def start_pager(isolated: Isolated, fake: FakeTwilio, log: Path) -> Process:
    """The pager texting the fake Twilio; no escalation step falls due during the scenario."""
    port = free_port()
    env = {
        **isolated.env,
        "SEIZEWATCH_PAGER_PORT": str(port),
        "SEIZEWATCH_PAGER_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "SEIZEWATCH_PAGER_ACK_TIMEOUT_S": "3600",
        "SEIZEWATCH_PAGER_POLL_INTERVAL_S": "0.2",
        "SEIZEWATCH_TWILIO_ACCOUNT_SID": fake.account_sid,
        "SEIZEWATCH_TWILIO_AUTH_TOKEN": fake.auth_token,
        "SEIZEWATCH_TWILIO_SENDER": fake.phone_number,
        "SEIZEWATCH_TWILIO_API_BASE_URL": fake.base_url,
    }
    return await healthy(spawn("pager", env, log, "SEIZEWATCH_METRICS_PORT"), port)


async def start_ingest(isolated: Isolated, log: Path) -> Process:
    env = {**isolated.env, "SEIZEWATCH_INGEST_MASTER_KEY": MASTER_KEY}
    proc = spawn("ingest", env, log, "SEIZEWATCH_INGEST_PORT")
    return await healthy(proc, proc.port)


async def healthy(proc: Process, port: int) -> Process:
    """``proc`` once it answers ``/healthz`` on ``port`` (which then serves its /metrics too)."""
    proc.port = port

    async def answers() -> bool:
        assert proc.process.poll() is None, f"died:\n{proc.tail()}"
        try:
            async with httpx.AsyncClient() as client:
                return (await client.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200
        except httpx.TransportError:
            return False

    try:
        await eventually(answers, bool, within=60)
    except BaseException:
        stop_process(proc)
        raise
    return proc


@dataclass(frozen=True)
class Pipeline:
    """What the pipeline made of the burst, from PostgreSQL."""

    hits: dict[str, int]  # hits per sighting id
    pages: int
    open: int
    pages_texted: int  # pages with at least one SMS sent
    sms_sent: int
    sms_all: int
    sms_recipients: int  # distinct (page, step, officer)


async def pipeline(isolated: Isolated) -> Pipeline:
    conn = await asyncpg.connect(isolated.settings.postgres.dsn.get_secret_value())
    try:
        hits = await conn.fetch("SELECT sighting_id, count(*) AS n FROM hits GROUP BY sighting_id")
        pages = await conn.fetchrow(
            "SELECT count(*) AS pages, count(*) FILTER (WHERE state = 'open') AS open FROM pages"
        )
        sms = await conn.fetchrow(
            "SELECT count(*) FILTER (WHERE send_state = 'sent') AS sent, count(*) AS all,"
            " count(DISTINCT (page_id, step, officer_id)) AS recipients,"
            " count(DISTINCT page_id) FILTER (WHERE send_state = 'sent') AS pages_texted FROM notifications"
        )
    finally:
        await conn.close()
    assert pages is not None
    assert sms is not None
    return Pipeline(
        hits={row["sighting_id"]: int(row["n"]) for row in hits},
        pages=int(pages["pages"]),
        open=int(pages["open"]),
        pages_texted=int(sms["pages_texted"]),
        sms_sent=int(sms["sent"]),
        sms_all=int(sms["all"]),
        sms_recipients=int(sms["recipients"]),
    )


async def test_a_broker_killed_mid_burst_loses_nothing_acknowledged(
    cluster: tuple[LocalServices, Isolated], tmp_path: Path
) -> None:
    services, isolated = cluster
    await prepare(isolated)
    processes: list[Process] = []
    try:
        async with FakeTwilio() as fake:
            worker = start_worker(isolated.env, tmp_path / "worker.log")
            processes.append(worker)
            ingest = await start_ingest(isolated, tmp_path / "ingest.log")
            processes.append(ingest)
            pager = await start_pager(isolated, fake, tmp_path / "pager.log")
            processes.append(pager)
            await worker.wait_metric("seizewatch_watchlist_caught_up", lambda v: v == 1, within=90)
            await worker.wait_metric("seizewatch_watchlist_entries", lambda v: v == READS // WATCHED_EVERY)

            leaders = Counter(p["leader"] for p in await partitions(isolated, [SIGHTINGS]))
            victim = int(max(sorted(leaders), key=leaders.__getitem__))
            burst = Burst()
            sending = asyncio.create_task(send_burst(ingest, burst))
            try:
                await burst.reached(READS * KILL_AT, sending)
                killed_at = time.monotonic()
                await asyncio.to_thread(services.kill_kafka, victim)
                await burst.reached(READS * RESTART_AT, sending)
                restarted_at = time.monotonic()
                await asyncio.to_thread(services.start_kafka, victim)
                restart_s = time.monotonic() - restarted_at
                await sending
            finally:
                sending.cancel()
            burst_end = time.monotonic()

            # Stopped gracefully, the ingest's producer delivers (or gives up) what it still holds: from
            # now on the topic holds every read it ever will.
            stop_process(ingest)
            records = await topic_records(isolated, SIGHTINGS)
            on_topic = Counter(decode_sighting(record.value).sighting_id for record in records)
            watched = {
                sighting_id(n) for n in range(READS) if plate_of(n) == watched_plate(n // WATCHED_EVERY)
            }
            watched_on_topic = watched & set(on_topic)

            async def paged() -> Pipeline:
                for proc in (worker, pager):
                    assert proc.process.poll() is None, f"a process died:\n{proc.tail()}"
                return await pipeline(isolated)

            await eventually(
                paged, lambda p: p.pages >= len(watched_on_topic) and p.pages_texted >= p.pages,
                within=DRAIN_WITHIN_S,
            )  # fmt: skip
            last_page_s = time.monotonic() - burst_end

            async def in_sync() -> bool:
                found = await partitions(isolated, [t.name for t in TOPICS] + ["__consumer_offsets"])
                return all(len(p["isr"]) == 3 for p in found)

            await eventually(in_sync, bool, within=IN_SYNC_WITHIN_S)
            in_sync_s = time.monotonic() - restarted_at
            done = await paged()
            at_provider = len(fake.messages)
    finally:
        for proc in processes:
            stop_process(proc)

    refused_on_topic = sum(1 for sid in burst.refused if sid in on_topic)
    writes_back_s = burst.accepted_again(killed_at) - killed_at
    print(
        f"\nbroker kill: node {victim} of 3 killed (SIGKILL) at {KILL_AT:.0%} of the burst, restarted at "
        f"{RESTART_AT:.0%}\n"
        f"  reads {burst.sent}: 2xx {len(burst.accepted)}, 503 {len(burst.refused)} "
        f"({burst.answers[503]} requests; {refused_on_topic} of their reads reached the topic anyway)\n"
        f"  on plate.sightings {len(on_topic)} distinct, "
        f"duplicates {sum(n - 1 for n in on_topic.values())}, "
        f"2xx missing {sum(1 for sid in burst.accepted if sid not in on_topic)}\n"
        f"  watched reads {len(watched)} ({len(watched_on_topic)} on the topic): "
        f"hits {sum(done.hits.values())}, pages {done.pages} (open {done.open}), "
        f"SMS sent {done.sms_sent}, at the provider {at_provider}\n"
        f"  recovery: writes accepted again {writes_back_s:.1f} s after the kill; the restart took "
        f"{restart_s:.1f} s, every replica in sync {in_sync_s:.1f} s after it began; the last page "
        f"{last_page_s:.1f} s after the burst's last read"
    )
    assert burst.sent == READS
    assert set(burst.answers) <= {200, 503}
    assert len(burst.accepted) + len(burst.refused) == READS
    # Nothing acknowledged is lost, nothing is on the topic twice, nothing is there that was not sent.
    assert all(on_topic[sid] == 1 for sid in burst.accepted), "a read answered 2xx is missing or doubled"
    assert all(n == 1 for n in on_topic.values()), {sid: n for sid, n in on_topic.items() if n > 1}
    assert set(on_topic) <= set(burst.accepted) | set(burst.refused)
    # Every watched read on the topic made exactly one hit and one page; nothing else did.
    assert watched & set(burst.accepted) <= watched_on_topic
    assert done.hits == dict.fromkeys(watched_on_topic, 1), done.hits
    assert done.pages == done.open == len(watched_on_topic)
    # Each page's first step texted each of its recipients once, every one of them at the provider.
    assert done.pages_texted == done.pages
    assert done.sms_sent == done.sms_all == done.sms_recipients == at_provider
