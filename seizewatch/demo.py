"""The demo: local services, a real matcher worker, a simulated Taizhou feed; hits shown as SMS drafts.

Everything runs for real: Kafka and PostgreSQL from ``seizewatch services``, the matcher worker and the
HTTP connectors as their own processes (``seizewatch worker``, ``seizewatch ingest``), watch entries
added and released through the same code as the CLI. The simulated devices post to the connectors in
their own wire formats: generic parking JSON, GA/T 1400 (after digest registration) and Hikvision ISAPI.
With ``--reply`` an officer paged for the urgent vehicle answers ``1 <code>``, simulated without a
provider (:func:`simulate_reply`), and the page must end up taken.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from aiokafka import AIOKafkaConsumer
from pydantic import SecretStr
from rich.console import Console
from rich.table import Table

from alerts import replies
from alerts.rosterstore import import_roster, load_roster, parse_document
from alerts.sms import mask_number
from connectors.auth import API_KEY_HEADER, source_secret
from connectors.registry import AuthMethod, Connector, add_source, upsert_devices
from connectors.simulator import (
    TAIZHOU_DEVICES,
    Read,
    city_feed,
    device_rows,
    gat1400_vehicle,
    isapi_alert,
    now_local,
    parking_record,
)
from seizewatch.localservices import LocalServices
from seizewatch.settings import Settings
from streams import db, watchstore
from streams.errors import InvalidInput
from streams.hits import HitV1
from streams.matching import MatchKind
from streams.topics import HITS, ensure_topics
from streams.vehicles import Action, PlateColour, Priority

DEMO_COURT = "台州市椒江区人民法院"  # a court of the example roster (deploy/examples/roster.json)
DEMO_NOTE = "seizewatch demo"  # marks the demo's own watch entries, released at the next run
ROSTER = Path(__file__).resolve().parent.parent / "deploy" / "examples" / "roster.json"


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


DEMO_HIT_KINDS = ",".join(kind.value for kind in MatchKind)
URGENT = WATCHED[0]  # the vehicle whose page the simulated reply takes (--reply)


def run_demo(settings: Settings, *, reads: int, rate: float, console: Console, reply: bool = False) -> int:
    """Run the whole demo; return the exit status (0: every expected hit seen and nothing else, and with
    ``reply`` the urgent vehicle's page taken by the simulated reply)."""
    console.rule("seizewatch demo")
    LocalServices(settings).up()
    return asyncio.run(_demo(settings, reads=reads, rate=rate, console=console, reply=reply))


async def _demo(settings: Settings, *, reads: int, rate: float, console: Console, reply: bool) -> int:
    await ensure_topics(settings.kafka)
    # The connectors need a master key; a demo without one configured makes one for this run only.
    master = settings.ingest.master_key or SecretStr(secrets.token_hex(32))
    entries = await _seed(settings, console)
    metrics_port, ingest_port, pager_port = _free_port(), _free_port(), _free_port()
    env = {
        # No SMS credentials in the demo: the pager prints each SMS where it would have been sent.
        **{k: v for k, v in os.environ.items() if not k.startswith("SEIZEWATCH_TWILIO_")},
        "SEIZEWATCH_METRICS_PORT": str(metrics_port),
        "SEIZEWATCH_INGEST_PORT": str(ingest_port),
        "SEIZEWATCH_INGEST_MASTER_KEY": master.get_secret_value(),
        "SEIZEWATCH_PAGER_PORT": str(pager_port),
        "SEIZEWATCH_PAGER_PUBLIC_URL": f"http://127.0.0.1:{pager_port}",
        # The demo shows every match kind on a handful of vehicles: a misread province (沪A66G88 read as
        # 浙A66G88) and an OCR confusion (浙JD80123 read as 浙JD8O123). A deployment keeps the defaults
        # (when_missing; exact and province hits) unless someone checks each image before an officer is
        # sent: on real roads an ocr match is mostly a look-alike car (docs/configuration.md).
        "SEIZEWATCH_MATCH_PROVINCE_KINDS": os.environ.get("SEIZEWATCH_MATCH_PROVINCE_KINDS", "always"),
        "SEIZEWATCH_MATCH_HIT_KINDS": os.environ.get("SEIZEWATCH_MATCH_HIT_KINDS", DEMO_HIT_KINDS),
    }
    async with (
        _process("worker", env, console),
        _process("ingest", env, console),
        _process("pager", env, console),
    ):
        await _wait_until_ready(metrics_port, ingest_port, pager_port, expected_entries=len(entries))
        console.print(f"worker ready (watchlist loaded); connectors on http://127.0.0.1:{ingest_port}")
        async with (
            _hits(settings) as hits,
            DemoDevices(f"http://127.0.0.1:{ingest_port}", master) as devices,
        ):
            seen = await _feed(settings, devices, hits, entries, reads=reads, rate=rate, console=console)
            pages = await _pages_settled(settings, entries)
            replied = await _reply(settings, entries[URGENT.plate], console) if reply else None
        console.rule("summary")
        console.print(
            f"reads posted: {devices.posted} (parking {devices.by_feed['parking']}, GA/T 1400 "
            f"{devices.by_feed['gat1400']}, ISAPI {devices.by_feed['isapi']}); refused by the connectors: "
            f"{devices.refused}"
        )
    expected = {w.plate for w in WATCHED if w.expect_hit}
    console.print(f"watched vehicles hit: {sorted(seen)}; expected: {sorted(expected)}")
    table = Table("plate", "action", "page", "paged at step 1")
    problems = [] if seen == expected else ["hits differ from what the demo expected"]
    for w in WATCHED:
        page = pages.get(w.plate)
        if not w.expect_hit:
            if page:
                problems.append(f"{w.plate} was released but got a page")
            continue
        if page is None:
            problems.append(f"{w.plate}: no page")
            continue
        state, reason, paged = page
        table.add_row(w.plate, w.action.value, reason or state, ", ".join(paged) or "-")
        if w.action is Action.SOFT_SEAL and state != "not_paged":
            problems.append(f"{w.plate} is a soft seal (活封) but paged someone")
        if w.action is not Action.SOFT_SEAL and not paged:
            problems.append(f"{w.plate}: nobody was paged")
    console.print(table)
    if reply and replied != ("acknowledged", True):
        problems.append(f"{URGENT.plate}: the simulated reply did not take its page ({replied})")
    for problem in problems:
        console.print(f"[red]{problem}[/]")
    if problems:
        return 1
    console.print(
        "[green]every watched vehicle that drove past was caught and the officers on duty paged (the soft"
        " seal only logged); released and unwatched vehicles were not[/]"
    )
    return 0


async def _seed(settings: Settings, console: Console) -> dict[str, uuid.UUID]:
    """Demo sources, devices and watch entries (earlier demo entries are released first)."""
    async with db.pool(settings.postgres) as pool, pool.acquire() as conn:
        await db.migrate(conn)
        for source_id, connector, auth in (
            ("demo-parking", Connector.PARKING, AuthMethod.API_KEY),
            ("demo-kk", Connector.GAT1400, AuthMethod.DIGEST),
            ("demo-cam", Connector.ISAPI, AuthMethod.API_KEY),
        ):
            with contextlib.suppress(InvalidInput):  # already there from an earlier run
                await add_source(conn, source_id, connector, auth, description="demo")
        await upsert_devices(conn, device_rows())
        await import_roster(conn, parse_document(ROSTER.read_bytes()), by="demo")
        # The demo's case numbers are its own: whatever holds them from an earlier run is released.
        demo_cases = {w.case_number for w in WATCHED}
        for record in await watchstore.list_entries(conn, limit=100_000):
            if record.entry.case_number in demo_cases:
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
                    note=DEMO_NOTE,
                ),
                by="demo",
            )
            ids[w.plate] = record.entry.entry_id
            console.print(f"watching {w.plate} ({w.action.value}, {w.priority.value}) {w.case_number}")
    return ids


@contextlib.asynccontextmanager
async def _process(command: str, env: dict[str, str], console: Console) -> AsyncIterator[None]:
    # Our own command with our own interpreter; started once, never waited on while the loop runs.
    process = subprocess.Popen(  # noqa: ASYNC220, S603
        [sys.executable, "-m", "seizewatch.cli", command], env=env, start_new_session=True
    )
    console.print(f"seizewatch {command} started (pid {process.pid})")
    try:
        yield
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.to_thread(process.wait, 30)
        except subprocess.TimeoutExpired:
            process.kill()
            await asyncio.to_thread(process.wait)
        console.print(f"seizewatch {command} stopped (exit {process.returncode})")


async def _wait_until_ready(
    metrics_port: int, ingest_port: int, pager_port: int, *, expected_entries: int
) -> None:
    async with httpx.AsyncClient() as client, asyncio.timeout(90):
        while True:
            values = await scrape(client, metrics_port)
            index_ready = values.get("seizewatch_watchlist_caught_up") == 1 and (
                values.get("seizewatch_watchlist_entries", 0) >= expected_entries
            )
            if index_ready and await scrape(client, ingest_port) and await scrape(client, pager_port):
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


class DemoDevices:
    """The simulated devices, each posting in its own feed's format with its own credential."""

    def __init__(self, base_url: str, master: SecretStr) -> None:
        self._client = httpx.AsyncClient(base_url=base_url, timeout=30)
        self._master = master
        self._registered = False
        self.posted = 0
        self.refused = 0
        self.by_feed: Counter[str] = Counter()

    async def __aenter__(self) -> DemoDevices:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self._client.aclose()

    def _key(self, source_id: str) -> str:
        return source_secret(self._master, source_id, 1)

    async def post(self, reads: list[tuple[str, Read]]) -> None:
        """Post one tick's reads, grouped per feed as the devices would."""
        parking = [parking_record(r, rid) for rid, r in reads if r.device.feed == "parking"]
        checkpoint = [gat1400_vehicle(r, rid) for rid, r in reads if r.device.feed == "gat1400"]
        cameras = [isapi_alert(r, rid) for rid, r in reads if r.device.feed == "isapi"]
        if parking:
            response = await self._client.post(
                "/parking/v1/sources/demo-parking/records",
                json={"records": parking},
                headers={API_KEY_HEADER: self._key("demo-parking")},
            )
            self._count("parking", len(parking), response, len(response.json().get("rejected", [])))
        if checkpoint:
            gat_device = next(d.device_id for d in TAIZHOU_DEVICES if d.feed == "gat1400")
            if not self._registered:
                await self._register(gat_device)
            response = await self._client.post(
                "/VIID/MotorVehicles",
                json={"MotorVehicleListObject": {"MotorVehicleObject": checkpoint}},
                headers={"User-Identify": gat_device},
            )
            statuses = response.json().get("ResponseStatusListObject", {}).get("ResponseStatusObject", [])
            self._count(
                "gat1400", len(checkpoint), response, sum(1 for s in statuses if s["StatusCode"] != 0)
            )
        for alert in cameras:
            response = await self._client.post(
                f"/isapi/v1/sources/demo-cam/events?key={self._key('demo-cam')}",
                content=alert,
                headers={"content-type": "application/xml"},
            )
            self._count("isapi", 1, response, 0 if response.status_code == 200 else 1)

    async def _register(self, device_id: str) -> None:
        response = await self._client.post(
            "/VIID/System/Register",
            json={"RegisterObject": {"DeviceID": device_id}},
            auth=httpx.DigestAuth("demo-kk", self._key("demo-kk")),
        )
        response.raise_for_status()
        self._registered = True

    def _count(self, feed: str, n: int, response: httpx.Response, refused: int) -> None:
        if response.status_code >= 500:
            raise RuntimeError(f"{feed} connector answered {response.status_code}: {response.text}")
        self.posted += n
        self.by_feed[feed] += n
        self.refused += refused


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
    devices: DemoDevices,
    hits: AIOKafkaConsumer,
    entries: dict[str, uuid.UUID],
    *,
    reads: int,
    rate: float,
    console: Console,
) -> set[str]:
    rng = random.Random(20261123)  # noqa: S311  # demo traffic, reproducible on purpose
    feed: list[Read] = list(
        city_feed(rng, count=reads, start=now_local(), mean_gap=timedelta(seconds=1 / rate))
    )
    # The watched vehicles drive past spread over the run; 浙J77777 is released before it appears.
    # Each feed carries at least one: a parking gate, the GA/T 1400 checkpoint, the ISAPI camera.
    route = (
        "wanda/gate-1-in",
        "33100400001320000002",
        "bc:5e:33:0a:1b:2c:1",
        "hy-hospital/in",
        "hy-hospital/out",
    )
    by_id = {d.device_id: d for d in TAIZHOU_DEVICES}
    for i, (w, device_id) in enumerate(zip(WATCHED, route, strict=True)):
        position = (i + 1) * len(feed) // (len(WATCHED) + 2)
        feed.insert(position, Read(by_id[device_id], w.read_as, w.colour, feed[position].observed_at, 0.93))
    feed.append(Read(by_id["wanda/gate-1-out"], WATCHED[0].read_as, WATCHED[0].colour, now_local(), 0.95))

    released = next(w for w in WATCHED if not w.expect_hit)
    async with db.pool(settings.postgres) as pool, pool.acquire() as conn:
        await watchstore.release_entry(conn, entries[released.plate], by="demo", reason="执行和解 (demo)")
    console.print(f"released {released.plate} (settled): it must not be hit when it drives past")

    console.print(f"posting {len(feed)} reads at ~{rate:.0f}/s from {len(TAIZHOU_DEVICES)} devices…")
    seen: set[str] = set()
    ours = set(entries.values())
    run_id = uuid.uuid4().hex[:8]
    batch_size = max(1, int(rate / 10))
    for offset in range(0, len(feed), batch_size):
        tick = time.monotonic()
        batch = feed[offset : offset + batch_size]
        # Replayed as live traffic: each read is observed the moment it is sent.
        live = [(f"{run_id}-{offset + i}", replace(r, observed_at=now_local())) for i, r in enumerate(batch)]
        await devices.post(live)
        await _print_hits(hits, ours, seen, console, wait_ms=0)
        await asyncio.sleep(max(0.0, 0.1 - (time.monotonic() - tick)))
    deadline = time.monotonic() + 20
    expected = {w.plate for w in WATCHED if w.expect_hit}
    while time.monotonic() < deadline and not expected <= seen:
        await _print_hits(hits, ours, seen, console, wait_ms=500)
    await _print_hits(hits, ours, seen, console, wait_ms=2000)  # anything unexpected arriving late
    return seen


async def _print_hits(
    consumer: AIOKafkaConsumer, ours: set[uuid.UUID], seen: set[str], console: Console, *, wait_ms: int
) -> None:
    for records in (await consumer.getmany(timeout_ms=wait_ms)).values():
        for record in records:
            hit = HitV1.model_validate_json(record.value)
            if hit.entry_id not in ours:
                continue
            seen.add(hit.entry_plate)
            s = hit.sighting
            console.print(
                f"[bold yellow]hit[/] {hit.entry_plate} read as {s.plate} ({hit.match_kind.value}"
                f" {hit.score}) at {s.device_name or s.device_id}, district {s.district}"
            )


async def _pages_settled(
    settings: Settings, entries: dict[str, uuid.UUID]
) -> dict[str, tuple[str, str | None, list[str]]]:
    """Each demo entry's page once its first step went out: plate → (state, reason, names paged)."""
    plates = {entry_id: plate for plate, entry_id in entries.items()}
    expected = len([w for w in WATCHED if w.expect_hit])
    found: dict[str, tuple[str, str | None, list[str]]] = {}
    async with db.pool(settings.postgres) as pool, pool.acquire() as conn:
        roster = await load_roster(conn)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            found, settled = {}, True
            for row in await conn.fetch(
                "SELECT DISTINCT ON (entry_id) entry_id, page_id, state, not_paged_reason FROM pages"
                " WHERE entry_id = ANY($1::uuid[]) ORDER BY entry_id, created_at",
                list(plates),
            ):
                sent = await conn.fetch(
                    "SELECT officer_id, send_state FROM notifications WHERE page_id = $1 AND step = 0",
                    row["page_id"],
                )
                settled &= all(n["send_state"] not in {"pending", "sending"} for n in sent)
                names = [getattr(roster.officer(n["officer_id"]), "name", n["officer_id"]) for n in sent]
                found[plates[row["entry_id"]]] = (row["state"], row["not_paged_reason"], names)
            if settled and len(found) == expected:
                break
            await asyncio.sleep(0.5)
    return found


async def _reply(settings: Settings, entry_id: uuid.UUID, console: Console) -> tuple[str, bool] | None:
    console.rule("simulated reply")
    async with db.pool(settings.postgres) as pool, pool.acquire() as conn:
        return await simulate_reply(conn, entry_id, console, now=datetime.now(UTC))


async def simulate_reply(
    conn: db.Connection, entry_id: uuid.UUID, console: Console, *, now: datetime, text: str = "1 {code}"
) -> tuple[str, bool] | None:
    """The first officer sent the entry's latest page answers ``text`` (``{code}``: their reply code).

    The reply goes through :func:`alerts.replies.handle_sms`, what the pager's ``/twilio/inbound`` runs
    once Twilio's signature checks out: the demo has no provider, hence no signature (``seizewatch
    reply`` posts the signed webhook to a pager that has one, docs/alerts.md).

    Returns:
        The page's state afterwards and whether the officer who answered holds it; ``None`` when nobody
        was sent the page.
    """
    row = await conn.fetchrow(
        "SELECT n.page_id, n.officer_id, n.phone, n.reply_code FROM notifications n"
        " JOIN pages p USING (page_id) WHERE p.entry_id = $1 AND n.send_state = 'sent'"
        " ORDER BY p.created_at DESC, n.step, n.officer_id LIMIT 1",
        entry_id,
    )
    if row is None:
        console.print("[red]nobody was sent the page: no reply to simulate[/]")
        return None
    roster = await load_roster(conn)
    officer = roster.officer(row["officer_id"])
    body = text.format(code=row["reply_code"])
    console.print(
        f"SMS from {officer.name if officer else row['officer_id']} ({mask_number(row['phone'])}): {body}"
    )
    result = await replies.handle_sms(conn, roster, row["phone"], body, now)
    console.print(f"pager's answer ({result.outcome}): {result.answer or '-'}")
    page = await conn.fetchrow("SELECT state, acknowledged_by FROM pages WHERE page_id = $1", row["page_id"])
    assert page is not None  # noqa: S101  # the notification's page
    return page["state"], page["acknowledged_by"] == row["officer_id"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
