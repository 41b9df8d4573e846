"""Shared pieces of the pager tests: a controllable clock, hits made the way the matcher makes them,
the pager served over real HTTP against the fake Twilio, and a bare pager whose rounds a test runs."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
import uvicorn
from aiokafka import AIOKafkaProducer
from pydantic import SecretStr

from alerts.rosterstore import import_roster, parse_document
from alerts.service import Pager
from alerts.settings import PagerSettings, TwilioSettings
from alerts.twilio_sms import TwilioSms
from alerts.webhooks import create_app
from seizewatch.scratch import free_port
from streams import db, watchstore
from streams.events import SourceKind, new_sighting
from streams.hits import HitV1, record_hit
from streams.matching import Match, MatchKind
from streams.topics import HITS, SEIZURE_RESULTS
from streams.traffic import SeizureResultV1
from streams.vehicles import Action, PlateColour, Priority
from tests.conftest import Isolated, Process, eventually, spawn
from tests.fakes.twilio_server import FakeTwilio

ROSTER = Path(__file__).resolve().parents[2] / "deploy" / "examples" / "roster.json"
JIAOJIANG = "台州市椒江区人民法院"
HUANGYAN = "台州市黄岩区人民法院"
API_TOKEN = "pager-api-token-for-tests-0123456789"  # noqa: S105  # a test token


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


async def import_example_roster(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await import_roster(conn, parse_document(ROSTER.read_bytes()), by="test")
    finally:
        await conn.close()


async def make_hit(
    isolated: Isolated,
    *,
    plate: str,
    observed_at: datetime,
    court: str = JIAOJIANG,
    district: str | None = "331002",
    priority: Priority = Priority.NORMAL,
    action: Action = Action.SEIZE,
    plate_colour: PlateColour = PlateColour.UNKNOWN,
    address: str | None = None,
) -> HitV1:
    """A watch entry, and a hit on it recorded in PostgreSQL the way the matcher records it."""
    conn = await asyncpg.connect(isolated.settings.postgres.dsn.get_secret_value())
    try:
        record = await watchstore.add_entry(
            conn,
            watchstore.NewEntry(
                plate=plate, case_number=f"(2026)浙1002执{uuid.uuid4().int % 10000}号", court=court,
                action=action, priority=priority, valid_from=observed_at - timedelta(days=30),
                plate_colour=plate_colour,
            ),
            by="test",
        )  # fmt: skip
        sighting = new_sighting(
            sighting_id=uuid.uuid4().hex,
            source_kind=SourceKind.PARKING_ENTRY,
            source_id="lot-wanda",
            device_id="wanda/gate-1-in",
            plate_raw=plate,
            observed_at=observed_at,
            received_at=observed_at + timedelta(seconds=1),
            district=district,
            device_name="椒江万达广场停车场 1号入口",
            address=address,
        )
        hit = HitV1.build(sighting, Match(record.entry, MatchKind.EXACT, 1.0), matched_at=observed_at)
        await record_hit(conn, hit)
        return hit
    finally:
        await conn.close()


async def publish(isolated: Isolated, hit: HitV1) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=isolated.settings.kafka.bootstrap_servers, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(
            isolated.settings.kafka.topic(HITS), key=str(hit.entry_id).encode(), value=hit.encode()
        )
    finally:
        await producer.stop()


async def publish_results(isolated: Isolated, *results: SeizureResultV1) -> None:
    """The traffic police's integration producing to their result topic, keyed by request, in order."""
    producer = AIOKafkaProducer(bootstrap_servers=isolated.settings.kafka.bootstrap_servers, acks="all")
    await producer.start()
    try:
        for r in results:
            await producer.send_and_wait(
                isolated.settings.kafka.topic(SEIZURE_RESULTS), key=str(r.request_id).encode(),
                value=r.model_dump_json().encode(),
            )  # fmt: skip
    finally:
        await producer.stop()


@dataclass
class RunningPager:
    url: str
    fake: FakeTwilio
    clock: Clock
    settings: PagerSettings


def twilio_to(fake: FakeTwilio, *, timeout_s: float = 5) -> TwilioSms:
    """The real Twilio adapter, aimed at the fake."""
    return TwilioSms(
        account_sid=fake.account_sid, auth_token=SecretStr(fake.auth_token), sender=fake.phone_number,
        api_base_url=fake.base_url, timeout_s=timeout_s,
    )  # fmt: skip


@contextlib.asynccontextmanager
async def bare_pager(
    isolated: Isolated, fake: FakeTwilio, clock: Clock, settings: PagerSettings, *, timeout_s: float = 5
) -> AsyncIterator[Pager]:
    """A pager with no loop running: the test runs its rounds (``escalate_once``, ``send_once``…)."""
    async with db.pool(isolated.settings.postgres) as pool:
        provider = twilio_to(fake, timeout_s=timeout_s)
        try:
            yield Pager(pool, provider, settings, isolated.settings.postgres.dsn.get_secret_value(), clock)
        finally:
            await provider.close()


@contextlib.asynccontextmanager
async def serve_pager(
    isolated: Isolated,
    fake: FakeTwilio,
    clock: Clock,
    *,
    settings: PagerSettings | None = None,
    timeout_s: float = 5,
    consume: bool = True,
) -> AsyncIterator[RunningPager]:
    """The pager app served by uvicorn on loopback, sending through the real twilio client to the fake."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    settings = (settings or PagerSettings(ack_timeout_s=60)).model_copy(
        update={"port": port, "public_url": url, "poll_interval_s": 0.1, "api_token": SecretStr(API_TOKEN)}
    )
    twilio = TwilioSettings(
        account_sid=fake.account_sid,
        auth_token=SecretStr(fake.auth_token),
        sender=fake.phone_number,
        api_base_url=fake.base_url,
    )
    provider = twilio_to(fake, timeout_s=timeout_s)
    app = create_app(
        isolated.settings.kafka, isolated.settings.postgres, settings, twilio, provider, clock=clock,
        consume=consume,
    )  # fmt: skip
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on"))
    task = asyncio.create_task(server.serve())
    try:

        async def started() -> bool:
            return bool(server.started)

        await eventually(started, bool)
        yield RunningPager(url, fake, clock, settings)
    finally:
        server.should_exit = True
        await task


def pager_env(isolated: Isolated, fake: FakeTwilio, port: int, **settings: str) -> dict[str, str]:
    """The environment of a `seizewatch pager` process sending to the fake; ``settings`` are more
    SEIZEWATCH_* variables (names without the prefix, e.g. ``PAGER_ACK_TIMEOUT_S="5"``)."""
    return {
        **isolated.env,
        "SEIZEWATCH_PAGER_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "SEIZEWATCH_PAGER_ACK_TIMEOUT_S": "5",
        "SEIZEWATCH_PAGER_POLL_INTERVAL_S": "0.2",
        "SEIZEWATCH_TWILIO_ACCOUNT_SID": fake.account_sid,
        "SEIZEWATCH_TWILIO_AUTH_TOKEN": fake.auth_token,
        "SEIZEWATCH_TWILIO_SENDER": fake.phone_number,
        "SEIZEWATCH_TWILIO_API_BASE_URL": fake.base_url,
        **{f"SEIZEWATCH_{name}": value for name, value in settings.items()},
    }


async def start_pager(env: dict[str, str], log: Path, port: int) -> Process:
    """`seizewatch pager` as a process on ``port``, once its /healthz answers 200."""
    proc = spawn("pager", {**env, "SEIZEWATCH_PAGER_PORT": str(port)}, log, "SEIZEWATCH_METRICS_PORT")
    proc.port = port  # the pager serves /metrics and /healthz on its own port

    async def healthy() -> bool:
        assert proc.process.poll() is None, f"pager died:\n{proc.tail()}"
        try:
            async with httpx.AsyncClient() as client:
                return (await client.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200
        except httpx.TransportError:
            return False

    await eventually(healthy, bool, within=60)
    return proc
