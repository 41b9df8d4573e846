"""Shared pieces of the pager tests: a controllable clock, hits made the way the matcher makes them,
and the pager served over real HTTP against the fake Twilio."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import asyncpg
import uvicorn
from aiokafka import AIOKafkaProducer
from pydantic import SecretStr

from alerts.rosterstore import import_roster, parse_document
from alerts.settings import PagerSettings, TwilioSettings
from alerts.twilio_sms import TwilioSms
from alerts.webhooks import create_app
from seizewatch.scratch import free_port
from streams import watchstore
from streams.events import SourceKind, new_sighting
from streams.hits import HitV1, record_hit
from streams.matching import Match, MatchKind
from streams.topics import HITS
from streams.vehicles import Action, Priority
from tests.conftest import Isolated, eventually
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
) -> HitV1:
    """A watch entry, and a hit on it recorded in PostgreSQL the way the matcher records it."""
    conn = await asyncpg.connect(isolated.settings.postgres.dsn.get_secret_value())
    try:
        record = await watchstore.add_entry(
            conn,
            watchstore.NewEntry(
                plate=plate, case_number=f"(2026)浙1002执{uuid.uuid4().int % 10000}号", court=court,
                action=action, priority=priority, valid_from=observed_at - timedelta(days=30),
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


@dataclass
class RunningPager:
    url: str
    fake: FakeTwilio
    clock: Clock
    settings: PagerSettings


@contextlib.asynccontextmanager
async def serve_pager(
    isolated: Isolated, fake: FakeTwilio, clock: Clock, *, settings: PagerSettings | None = None
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
    provider = TwilioSms(
        account_sid=fake.account_sid, auth_token=SecretStr(fake.auth_token), sender=fake.phone_number,
        api_base_url=fake.base_url, timeout_s=5,
    )  # fmt: skip
    app = create_app(
        isolated.settings.kafka, isolated.settings.postgres, settings, twilio, provider, clock=clock
    )
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
