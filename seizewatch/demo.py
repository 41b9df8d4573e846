"""The demo: local services, a real matcher worker, a simulated Taizhou feed; hits shown as SMS drafts.

Everything runs for real: Kafka and PostgreSQL from ``seizewatch services``, the worker as its own
process (``seizewatch worker``), watch entries added and released through the same code as the CLI.
Until the connectors issue lands, the feed publishes canonical sightings straight to Kafka.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
from aiokafka import AIOKafkaConsumer
from rich.console import Console

from connectors.producer import SightingPublisher
from connectors.simulator import SHANGHAI, TAIZHOU_DEVICES, Device, Read, city_feed
from seizewatch.localservices import LocalServices
from seizewatch.settings import Settings
from streams import db, watchstore
from streams.events import new_sighting, sighting_id_for
from streams.hits import HitV1
from streams.matching import MatchKind
from streams.topics import HITS, ensure_topics
from streams.vehicles import Action, PlateColour, Priority

DEMO_COURT = "台州市椒江区人民法院(演示)"


@dataclass(frozen=True, slots=True)
class Watched:
    plate: str
    case_number: str
    action: Action
    priority: Priority
    colour: PlateColour
    vehicle: str
    read_as: str  # how the camera reads it in the demo
    expect_hit: bool


WATCHED = (
    Watched("浙J12345", "(2024)浙1002执1201号", Action.SEIZE, Priority.URGENT, PlateColour.BLUE,
            "白色 大众帕萨特", "浙J12345", True),
    Watched("浙JD80123", "(2024)浙1002执1388号", Action.SEIZE, Priority.NORMAL, PlateColour.GREEN,
            "蓝色 比亚迪汉EV", "浙JD8O123", True),  # OCR: O for 0
    Watched("沪A66G88", "(2023)浙1002执2290号", Action.LOCATE, Priority.NORMAL, PlateColour.BLUE,
            "黑色 奔驰E300", "浙A66G88", True),  # province character misread
    Watched("浙J5S678", "(2024)浙1002执0917号", Action.SOFT_SEAL, Priority.LOW, PlateColour.YELLOW,
            "黄色 江铃厢式货车", "浙J5S678", True),
    Watched("浙J77777", "(2022)浙1002执3310号", Action.SEIZE, Priority.NORMAL, PlateColour.BLUE,
            "红色 丰田凯美瑞", "浙J77777", False),  # released before it shows up
)  # fmt: skip

_KIND_ZH = {
    MatchKind.EXACT: "",
    MatchKind.PROVINCE: "（省份字识别不同，需目视核对）",
    MatchKind.OCR: "（字符疑似误识，需目视核对）",
    MatchKind.OCR_PROVINCE: "（疑似误识，需目视核对）",
}
_ACTION_ZH = {Action.SEIZE: "请扣押", Action.LOCATE: "仅查找位置", Action.SOFT_SEAL: "活封车辆，仅记录"}


def sms_draft(hit: HitV1, device_names: dict[str, str]) -> str:
    """The text an officer would get (the alerts issue sizes it for SMS segments and adds reply codes)."""
    s = hit.sighting
    place = device_names.get(s.device_id, s.device_id)
    at = s.observed_at.astimezone(SHANGHAI).strftime("%H:%M")
    return (
        f"【执行查控】{hit.entry_plate}{_KIND_ZH[hit.match_kind]} {at} 出现在{place}。"
        f"案号{hit.case_number}，{_ACTION_ZH[hit.action]}。"
    )


def run_demo(settings: Settings, *, reads: int, rate: float, console: Console) -> int:
    """Run the whole demo; return the exit status (0: every expected hit seen and nothing else)."""
    console.rule("seizewatch demo")
    LocalServices(settings).up()
    return asyncio.run(_demo(settings, reads=reads, rate=rate, console=console))


async def _demo(settings: Settings, *, reads: int, rate: float, console: Console) -> int:
    await ensure_topics(settings.kafka)
    entries = await _seed_watchlist(settings, console)
    metrics_port = _free_port()
    async with _worker(metrics_port, console):
        await _wait_for_index(metrics_port, expected_at_least=len(entries))
        console.print(f"worker ready: watchlist loaded (metrics on :{metrics_port})")
        async with _hits(settings) as hits, SightingPublisher(settings.kafka, role="demo") as publisher:
            seen = await _feed(settings, publisher, hits, entries, reads=reads, rate=rate, console=console)
    expected = {w.plate for w in WATCHED if w.expect_hit}
    console.rule("summary")
    console.print(f"reads sent: {reads + len(WATCHED) + 1}; watched vehicles seen: {len(seen)}")
    console.print(f"watched vehicles hit: {sorted(seen)}; expected: {sorted(expected)}")
    if seen != expected:
        console.print("[red]hits differ from what the demo expected[/]")
        return 1
    console.print(
        "[green]every watched vehicle that drove past was caught; released and unwatched ones were not[/]"
    )
    return 0


async def _seed_watchlist(settings: Settings, console: Console) -> dict[str, uuid.UUID]:
    async with db.pool(settings.postgres) as pool, pool.acquire() as conn:
        await db.migrate(conn)
        for record in await watchstore.list_entries(conn, court=DEMO_COURT, limit=10_000):
            await watchstore.release_entry(conn, record.entry.entry_id, by="demo", reason="demo reset")
        ids = {}
        for w in WATCHED:
            record = await watchstore.add_entry(
                conn,
                watchstore.NewEntry(
                    plate=w.plate,
                    case_number=w.case_number,
                    court=DEMO_COURT,
                    action=w.action,
                    priority=w.priority,
                    plate_colour=w.colour,
                    vehicle=w.vehicle,
                ),
                by="demo",
            )
            ids[w.plate] = record.entry.entry_id
            console.print(f"watching {w.plate} ({w.action.value}, {w.priority.value}) {w.case_number}")
    return ids


@contextlib.asynccontextmanager
async def _worker(metrics_port: int, console: Console) -> AsyncIterator[None]:
    env = {**os.environ, "SEIZEWATCH_METRICS_PORT": str(metrics_port)}
    process = subprocess.Popen(  # noqa: ASYNC220  # started once; we never wait on it blocking
        [sys.executable, "-m", "seizewatch.cli", "worker"], env=env, start_new_session=True
    )
    console.print(f"matcher worker started (pid {process.pid})")
    try:
        yield
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.to_thread(process.wait, 30)
        except subprocess.TimeoutExpired:
            process.kill()
            await asyncio.to_thread(process.wait)
        console.print(f"matcher worker stopped (exit {process.returncode})")


async def _wait_for_index(metrics_port: int, *, expected_at_least: int) -> None:
    async with httpx.AsyncClient() as client, asyncio.timeout(90):
        while True:
            values = await scrape(client, metrics_port)
            if values.get("seizewatch_watchlist_caught_up") == 1 and (
                values.get("seizewatch_watchlist_entries", 0) >= expected_at_least
            ):
                return
            await asyncio.sleep(0.3)


async def scrape(client: httpx.AsyncClient, port: int) -> dict[str, float]:
    """Sample values of a process's /metrics by ``name{labels}`` (empty while it is not serving yet)."""
    try:
        response = await client.get(f"http://127.0.0.1:{port}/metrics", timeout=2)
    except httpx.TransportError:
        return {}
    values = {}
    for line in response.text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            values[name] = float(value)
    return values


@contextlib.asynccontextmanager
async def _hits(settings: Settings) -> AsyncIterator[AIOKafkaConsumer]:
    consumer = AIOKafkaConsumer(
        settings.kafka.topic(HITS),
        bootstrap_servers=settings.kafka.bootstrap_servers,
        group_id=None,
        auto_offset_reset="latest",
    )
    await consumer.start()
    try:
        await consumer.getmany(timeout_ms=100)  # settle the assignment at the current end
        yield consumer
    finally:
        await consumer.stop()


async def _feed(
    settings: Settings,
    publisher: SightingPublisher,
    hits: AIOKafkaConsumer,
    entries: dict[str, uuid.UUID],
    *,
    reads: int,
    rate: float,
    console: Console,
) -> set[str]:
    rng = random.Random(20261123)  # noqa: S311  # demo traffic, reproducible on purpose
    start = datetime.now(SHANGHAI)
    feed: list[Read] = list(city_feed(rng, count=reads, start=start, mean_gap=timedelta(seconds=1 / rate)))
    devices = {d.device_id: d for d in TAIZHOU_DEVICES}
    # The watched vehicles drive past spread over the run; 浙J77777 is released before it appears.
    for i, w in enumerate(WATCHED):
        position = (i + 1) * len(feed) // (len(WATCHED) + 2)
        device = TAIZHOU_DEVICES[i % len(TAIZHOU_DEVICES)]
        feed.insert(position, Read(device, w.read_as, w.colour, feed[position].observed_at, 0.93))
    exit_device: Device = devices["wanda-gate-1-out"]
    feed.append(Read(exit_device, WATCHED[0].read_as, WATCHED[0].colour, datetime.now(SHANGHAI), 0.95))

    released = next(w for w in WATCHED if not w.expect_hit)
    async with db.pool(settings.postgres) as pool, pool.acquire() as conn:
        await watchstore.release_entry(conn, entries[released.plate], by="demo", reason="执行和解 (demo)")
    console.print(f"released {released.plate} (settled): it must not be hit when it drives past")

    console.print(f"feeding {len(feed)} reads at ~{rate:.0f}/s from {len(TAIZHOU_DEVICES)} devices…")
    names = {d.device_id: d.name for d in TAIZHOU_DEVICES}
    seen: set[str] = set()
    run_id = uuid.uuid4().hex[:8]
    batch_size = max(1, int(rate / 10))
    for offset in range(0, len(feed), batch_size):
        tick = time.monotonic()
        batch = [
            new_sighting(
                sighting_id=sighting_id_for(r.device.source_id, r.device.device_id, f"{run_id}-{offset + i}"),
                source_kind=r.device.kind,
                source_id=r.device.source_id,
                device_id=r.device.device_id,
                plate_raw=r.plate_raw,
                plate_colour=r.colour,
                observed_at=datetime.now(SHANGHAI),  # replayed as live traffic
                received_at=datetime.now(UTC),
                confidence=r.confidence,
            )
            for i, r in enumerate(feed[offset : offset + batch_size])
        ]
        await publisher.publish_many(batch)
        await _print_hits(hits, names, seen, console, wait_ms=0)
        await asyncio.sleep(max(0.0, 0.1 - (time.monotonic() - tick)))
    deadline = time.monotonic() + 20
    expected = {w.plate for w in WATCHED if w.expect_hit}
    while time.monotonic() < deadline and not expected <= seen:
        await _print_hits(hits, names, seen, console, wait_ms=500)
    await _print_hits(hits, names, seen, console, wait_ms=2000)  # anything unexpected arriving late
    return seen


async def _print_hits(
    consumer: AIOKafkaConsumer, names: dict[str, str], seen: set[str], console: Console, *, wait_ms: int
) -> None:
    for records in (await consumer.getmany(timeout_ms=wait_ms)).values():
        for record in records:
            hit = HitV1.model_validate_json(record.value)
            if hit.court != DEMO_COURT:
                continue
            seen.add(hit.entry_plate)
            console.print(
                f"[bold yellow]SMS →[/] {sms_draft(hit, names)}  [dim]({hit.match_kind.value} {hit.score})[/]"
            )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
