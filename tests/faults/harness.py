"""The fault-injection harness: the real pipeline, a burst of reads, one fault, and exact counts.

A :class:`Pipeline` is one scenario's world on the fault suite's own services: a scratch database and
topic prefix, a parking source and its device, the example roster, a set of watched vehicles, the fake
Twilio in this process, and the real processes (``seizewatch ingest``, ``worker``, ``pager``) as children.
:meth:`Pipeline.burst` posts reads through the parking connector the way a device does (a batch per
request, several senders at once, a 503 or a dropped connection retried after its Retry-After), with
the watched vehicles spread through it; the scenario injects its fault meanwhile. Then
:meth:`Pipeline.count` counts exactly, from the topic, PostgreSQL and the fake's own record of what it
was asked to send:

- every read that got a 2xx is on ``plate.sightings`` (once, when its first attempt got the 2xx;
  a read retried after a 503 may have been stored by the refused attempt too: extra copies are
  counted, and harmless downstream);
- one hit per (read, entry), every watched read that got a 2xx has one;
- one page per hit, and every page's first step reached the provider;
- one SMS per (page, step, officer) at the provider, none twice;
- the recovery time: from the faulty part being back to the last page's first SMS.

A scenario asserts with :meth:`Figures.check`, and every scenario's figures are appended to
``var/faults/figures.jsonl`` (``SEIZEWATCH_FAULTS_FIGURES``) for the table in docs/operations.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from connectors.auth import API_KEY_HEADER
from connectors.registry import AuthMethod, Connector, add_source, upsert_devices
from seizewatch.localservices import LocalServices
from seizewatch.scratch import free_port, scratch_database
from seizewatch.settings import Settings
from streams import watchstore
from streams.events import EventError, decode_sighting
from streams.settings import KafkaSettings
from streams.topics import HITS, SIGHTINGS, TOPICS, ensure_topics
from tests.conftest import MASTER_KEY, ROOT, Process, eventually, stop_process, topic_records
from tests.fakes.twilio_server import FakeTwilio
from tests.integration.pager_support import JIAOJIANG, import_example_roster

SOURCE = "lot-fault"
LOT = "fault"
GATE = "g1"
DEVICE = f"{LOT}/{GATE}"
FIGURES = Path(os.environ.get("SEIZEWATCH_FAULTS_FIGURES", str(ROOT / "var" / "faults" / "figures.jsonl")))
# Each watched vehicle is read once: one hit, one task, one page (repeated reads would fold into one).
WATCHED_PREFIX = "浙JF"


# Twilio's codes for a recipient that cannot get SMS (alerts/twilio_sms.py): the notification fails for good
# and its step escalates at once. Any other failure without a message at the provider is a lost SMS.
_REFUSED = frozenset({"21211", "21610", "21612", "21614", "21635"})


@dataclass(frozen=True)
class FaultServices:
    settings: Settings
    services: LocalServices


def now() -> float:
    return time.time()


@dataclass
class Attempted:
    """One read as the senders saw it."""

    record_id: str
    plate: str
    watched: bool
    attempts: int = 0
    accepted_at: float | None = None  # wall clock of its 2xx
    sighting_id: str | None = None


@dataclass
class Figures:
    """What one scenario caused, counted exactly."""

    scenario: str
    reads: int = 0
    accepted: int = 0  # reads that got a 2xx
    unaccepted: int = 0  # reads still refused when the senders' deadline ran out (a sender that retries)
    refused_503: int = 0  # requests answered 503
    transport_errors: int = 0  # requests with no answer (a process killed)
    on_topic: int = 0  # accepted reads found on plate.sightings
    extra_copies: int = 0  # copies beyond the first of retried reads (stored by a refused attempt)
    first_try_duplicates: int = 0  # reads accepted at their first attempt found more than once: a bug
    lost_reads: int = 0  # accepted reads not on the topic
    watched: int = 0  # watched reads accepted
    hits: int = 0
    missing_hits: int = 0
    pages: int = 0
    missing_pages: int = 0
    sms: int = 0  # messages the provider accepted
    sms_duplicates: int = 0  # messages beyond one per (page, step, officer)
    unpaged: int = 0  # pages of which no SMS ever reached the provider
    unsent: int = 0  # notifications that never reached the provider (skipped, ambiguous, pending…)
    failed_permanent: int = 0  # refused by the provider for good (invalid number): escalated, not lost
    exhausted: int = 0
    dead_letters: int = 0  # records on the dead-letter topics
    # From the faulty part back to the moment every page opened so far had its first SMS out, and every
    # SMS decided before it was back had reached the provider.
    recovery_s: float | None = None
    # The longest an SMS waited from the pager's decision (its notification row) to the provider. Reported,
    # not bounded: a send whose outcome is unknown waits out its lease before it is looked up (18 s here),
    # and two such failures in a row of one SMS are no fault (54 s in a run of the 30 %-failing scenario).
    max_sms_wait_s: float | None = None
    restarts: int = 0  # processes that exited on their own and were started again (a supervisor's job)
    bound_s: float = 30.0
    notes: list[str] = field(default_factory=list)

    def problems(self, *, expect_exhausted: bool = False, dead_letters: int = 0) -> list[str]:
        found = []
        names = (
            "unaccepted",
            "lost_reads",
            "first_try_duplicates",
            "missing_hits",
            "missing_pages",
            "unpaged",
        )
        for name in names:
            if getattr(self, name):
                found.append(f"{name}={getattr(self, name)}")
        if self.sms_duplicates:
            found.append(f"sms_duplicates={self.sms_duplicates}")
        if self.unsent:
            found.append(f"unsent={self.unsent}")
        if self.dead_letters != dead_letters:
            found.append(f"dead_letters={self.dead_letters}, expected {dead_letters}")
        if expect_exhausted and self.exhausted != self.pages:
            found.append(f"exhausted {self.exhausted} of {self.pages} pages")
        if self.recovery_s is None or self.recovery_s > self.bound_s:
            found.append(f"recovery {self.recovery_s} s over the bound of {self.bound_s} s")
        return found

    def record(self) -> None:
        FIGURES.parent.mkdir(parents=True, exist_ok=True)
        with FIGURES.open("a") as out:
            out.write(json.dumps({"at": datetime.now(UTC).isoformat(), **dataclasses.asdict(self)}) + "\n")
        print(f"\nfault figures {self.scenario}: {json.dumps(dataclasses.asdict(self), ensure_ascii=False)}")


class Pipeline:
    """One scenario's pipeline; use :func:`pipeline` to get one."""

    def __init__(self, faults: FaultServices, env: dict[str, str], kafka: KafkaSettings, dsn: str,
                 fake: FakeTwilio, logs: Path) -> None:  # fmt: skip
        self.faults = faults
        self.env = env
        self.kafka = kafka
        self.dsn = dsn
        self.fake = fake
        self.logs = logs
        self.processes: dict[str, Process] = {}
        self.attempted: list[Attempted] = []
        self.refused_503 = 0
        self.transport_errors = 0
        self.watched_plates: list[str] = []
        self.entries: dict[str, uuid.UUID] = {}
        self._sent = 0
        self._ports: dict[str, int] = {}
        self.exits: list[tuple[str, int]] = []  # processes that exited on their own: (name, exit code)
        self._down: set[str] = set()  # killed by the scenario, or stopping: not restarted
        self._supervisor: asyncio.Task[None] | None = None
        self.settle_notes: list[str] = []

    # ------------------------------------------------------------------------------------ processes

    def start(self, name: str, *, command: str | None = None, env: dict[str, str] | None = None) -> Process:
        """Start process ``name`` (``ingest``, ``worker``, ``pager``, ``pager-2``…) on a port of its own,
        the same port again when it is restarted."""
        command = command or name.split("-")[0]
        port_variable = {
            "ingest": "SEIZEWATCH_INGEST_PORT",
            "worker": "SEIZEWATCH_METRICS_PORT",
            "pager": "SEIZEWATCH_PAGER_PORT",
        }[command]
        port = self._ports.setdefault(name, free_port())
        extra = {port_variable: str(port)}
        if command == "pager":
            extra["SEIZEWATCH_PAGER_PUBLIC_URL"] = f"http://127.0.0.1:{port}"
        log = self.logs / f"{name}.log"
        with log.open("ab") as out:
            out.write(f"\n===== started at {datetime.now(UTC).isoformat()}\n".encode())
            process = subprocess.Popen(
                [sys.executable, "-m", "seizewatch.cli", command],
                env={**self.env, **(env or {}), **extra},
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
                start_new_session=True,
            )
        proc = Process(process, port, log)
        self.processes[name] = proc
        self._down.discard(name)
        return proc

    def kill(self, name: str, sig: int = signal.SIGKILL) -> int:
        self._down.add(name)
        proc = self.processes[name]
        return stop_process(proc, sig)

    async def _supervise(self) -> None:
        """What systemd or compose's ``restart: unless-stopped`` does for a deployment: a process that
        exits on its own (exit 70: a loop of it failed) is started again a second later. Each such exit
        is recorded for the figures."""
        while True:
            await asyncio.sleep(0.5)
            for name, proc in list(self.processes.items()):
                code = proc.process.poll()
                if code is None or name in self._down:
                    continue
                self.exits.append((name, code))
                self._down.add(name)
                await asyncio.sleep(1.0)
                if self._supervisor is not None:  # not stopping meanwhile
                    self.start(name)

    async def ready(self, name: str, within: float = 90) -> None:
        """Wait until process ``name`` serves: the worker caught up, the others answering /healthz."""
        proc = self.processes[name]
        if name.startswith("worker"):
            await proc.wait_metric("seizewatch_watchlist_caught_up", lambda v: v == 1, within=within)
            return
        async with httpx.AsyncClient() as client:

            async def healthy() -> bool:
                assert proc.process.poll() is None, f"{name} died:\n{proc.tail()}"
                try:
                    response = await client.get(f"http://127.0.0.1:{proc.port}/healthz", timeout=2)
                except httpx.TransportError:
                    return False
                return response.status_code == 200

            await eventually(healthy, bool, within=within)

    async def start_all(self) -> None:
        for name in ("ingest", "worker", "pager"):
            self.start(name)
        self._supervisor = asyncio.create_task(self._supervise(), name="fault-supervisor")
        for name in ("ingest", "worker", "pager"):
            await self.ready(name)
        await self.processes["worker"].wait_metric(
            "seizewatch_watchlist_entries", lambda v: v == len(self.watched_plates), within=60
        )

    def stop_all(self) -> None:
        if self._supervisor is not None:
            self._supervisor.cancel()
            self._supervisor = None
        self._down.update(self.processes)
        for proc in self.processes.values():
            stop_process(proc)

    # ------------------------------------------------------------------------------------ the burst

    async def burst(
        self,
        *,
        reads: int = 2000,
        per_request: int = 10,
        senders: int = 4,
        rate: float = 250.0,
        deadline_s: float = 180.0,
    ) -> None:
        """Post ``reads`` reads (the watched vehicles spread evenly among them) at about ``rate`` reads/s;
        a request refused with 503, or left unanswered, is retried after its Retry-After, the same
        payload (the same record ids), until accepted or the deadline."""
        watched_every = max(1, reads // max(1, len(self.watched_plates)))
        pending_watched = list(self.watched_plates)
        batch: list[Attempted] = []
        batches: list[list[Attempted]] = []
        for i in range(reads):
            watched = bool(pending_watched) and i % watched_every == watched_every // 2
            plate = pending_watched.pop(0) if watched else f"浙A{i:05d}"
            batch.append(Attempted(uuid.uuid4().hex, plate, watched))
            if len(batch) == per_request:
                batches.append(batch)
                batch = []
        if batch:
            batches.append(batch)
        self.attempted.extend(a for b in batches for a in b)
        queue: asyncio.Queue[list[Attempted]] = asyncio.Queue()
        for b in batches:
            queue.put_nowait(b)
        interval = per_request / rate * senders
        stop_at = time.monotonic() + deadline_s
        ingest = self.processes["ingest"]

        async def sender() -> None:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{ingest.port}", timeout=15) as client:
                while not queue.empty():
                    b = queue.get_nowait()
                    started = time.monotonic()
                    await self._post_until_accepted(client, b, stop_at)
                    self._sent += len(b)
                    await asyncio.sleep(max(0.0, interval - (time.monotonic() - started)))

        await asyncio.gather(*(sender() for _ in range(senders)))

    async def _post_until_accepted(
        self, client: httpx.AsyncClient, batch: list[Attempted], stop_at: float
    ) -> None:
        observed = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(time.time() - 2))
        body = {
            "records": [
                {"record_id": a.record_id, "lot_id": LOT, "gate": GATE, "direction": "in", "plate": a.plate,
                 "plate_colour": "蓝", "time": observed, "confidence": 0.93}
                for a in batch
            ]
        }  # fmt: skip
        while time.monotonic() < stop_at:
            for a in batch:
                a.attempts += 1
            try:
                response = await client.post(
                    f"/parking/v1/sources/{SOURCE}/records", json=body, headers={API_KEY_HEADER: self.key}
                )
            except httpx.TransportError:
                self.transport_errors += 1
                await asyncio.sleep(0.5)
                continue
            if response.status_code == 503:
                self.refused_503 += 1
                await asyncio.sleep(min(2.0, float(response.headers.get("Retry-After", "1"))))
                continue
            assert response.status_code == 200, response.text
            ids = response.json()["sighting_ids"]
            assert len(ids) == len(batch), response.text
            at = now()
            for a, sighting_id in zip(batch, ids, strict=True):
                a.accepted_at, a.sighting_id = at, sighting_id
            return

    async def sent_at_least(self, share: float) -> None:
        """Wait until ``share`` of the burst's reads were posted and answered."""
        total = len(self.attempted) or 1
        await eventually(lambda: _value(self._sent / total), lambda v: v >= share, within=120)

    @property
    def key(self) -> str:
        from pydantic import SecretStr

        from connectors.auth import source_secret

        return source_secret(SecretStr(MASTER_KEY), SOURCE, 1)

    # ------------------------------------------------------------------------------------ settling

    async def settled(self, *, within: float = 120, exhausted: bool = False) -> None:
        """Wait until every accepted watched read's page reached the provider (and, with ``exhausted``,
        every page ran out its escalation with every SMS of it settled), or the time is up."""
        expected = sum(1 for a in self.attempted if a.watched and a.accepted_at is not None)
        conn = await asyncpg.connect(self.dsn)
        try:

            async def state() -> tuple[int, int, int]:
                bodies = {m.body for m in list(self.fake.messages.values())}
                # A page is reached by its first SMS out, of whichever step: one refused for good at
                # the first step escalates at once, and the next step's reaches it (as count() counts).
                rows = await conn.fetch(
                    "SELECT p.page_id, p.state, n.body, n.send_state FROM pages p"
                    " JOIN notifications n USING (page_id) WHERE n.step >= 0 AND n.step < 100"
                )
                paged = {r["page_id"] for r in rows if r["body"] in bodies}
                done = await conn.fetchval(
                    "SELECT count(*) FROM pages WHERE state = 'exhausted' AND NOT EXISTS (SELECT 1"
                    " FROM notifications n WHERE n.page_id = pages.page_id"
                    " AND n.send_state IN ('pending', 'sending', 'reconciling'))"
                )
                return len(paged), int(done), expected

            try:
                await eventually(
                    state, lambda s: s[0] >= s[2] and (not exhausted or s[1] >= s[2]), within=within
                )
            except TimeoutError:  # counted as it is: the figures say what is missing
                paged, done, _ = await state()
                self.settle_notes.append(
                    f"not settled after {within:.0f} s: {paged} of {expected} pages at the provider"
                    + (f", {done} exhausted" if exhausted else "")
                )
        finally:
            await conn.close()

    # ------------------------------------------------------------------------------------ counting

    async def count(self, scenario: str, *, back_at: float | None, bound_s: float = 30.0) -> Figures:
        """Count what the scenario caused. Escalation goes on while it counts: the SMS decided until now
        are waited for (bounded) until each has its outcome; those decided later are not counted."""
        cutoff = datetime.now(UTC)
        await self._outcomes_of_sms_decided_before(cutoff)
        figures = Figures(scenario, bound_s=bound_s)
        figures.reads = len(self.attempted)
        accepted = [a for a in self.attempted if a.accepted_at is not None]
        figures.accepted = len(accepted)
        figures.unaccepted = figures.reads - figures.accepted
        figures.refused_503 = self.refused_503
        figures.transport_errors = self.transport_errors
        figures.restarts = len(self.exits)
        figures.notes.extend(
            f"{name} exited on its own with code {code}, restarted" for name, code in self.exits
        )
        figures.notes.extend(self.settle_notes)

        copies: Counter[str] = Counter()
        sightings: dict[str, list[Any]] = {}
        for record in await self.records(SIGHTINGS):
            with contextlib.suppress(EventError):  # a scenario's poison record is nobody's read
                sighting_id = decode_sighting(record.value).sighting_id
                copies[sighting_id] += 1
                sightings.setdefault(sighting_id, []).append(record)
        for a in accepted:
            n = copies[a.sighting_id or ""]
            if n == 0:
                figures.lost_reads += 1
                continue
            figures.on_topic += 1
            if n > 1:
                if a.attempts == 1:
                    figures.first_try_duplicates += 1
                else:
                    figures.extra_copies += n - 1

        watched = [a for a in accepted if a.watched]
        figures.watched = len(watched)
        conn = await asyncpg.connect(self.dsn)
        try:
            hits = await conn.fetch("SELECT hit_id, sighting_id, entry_id FROM hits")
            by_read = Counter((h["sighting_id"], h["entry_id"]) for h in hits)
            figures.hits = len(hits)
            missing = [a for a in watched if by_read[(a.sighting_id, self.entries[a.plate])] == 0]
            figures.missing_hits = len(missing)
            if missing:
                figures.notes.extend(await self._where_lost(conn, missing, sightings))
            pages = await conn.fetch("SELECT page_id, hit_id, state FROM pages")
            paged_hits = {p["hit_id"] for p in pages}
            figures.pages = len(pages)
            figures.missing_pages = sum(1 for h in hits if h["hit_id"] not in paged_hits)
            figures.exhausted = sum(1 for p in pages if p["state"] == "exhausted")
            notifications = await conn.fetch(
                "SELECT page_id, step, officer_id, body, send_state, error_code, created_at"
                " FROM notifications"
                " WHERE created_at <= $1",
                cutoff,
            )
        finally:
            await conn.close()

        messages = list(self.fake.messages.values())
        figures.sms = len(messages)
        per_body = Counter(m.body for m in messages)
        figures.sms_duplicates = sum(n - 1 for n in per_body.values() if n > 1)
        first_sms: dict[Any, float] = {}
        decided_before_back: list[float] = []  # SMS times of notifications decided before the fault ended
        # The first copy's time (newest first, so the oldest is written last).
        by_time = sorted(messages, key=lambda m: m.created_at, reverse=True)
        created = {m.body: m.created_at.timestamp() for m in by_time}
        for row in notifications:
            refused = row["send_state"] == "failed" and row["error_code"] in _REFUSED
            if per_body[row["body"]] == 0 and refused:
                figures.failed_permanent += 1
                continue
            if per_body[row["body"]] == 0:
                figures.unsent += 1
                figures.notes.append(
                    f"not sent: page {row['page_id']} step {row['step']} {row['officer_id']}:"
                    f" {row['send_state']}"
                )
                continue
            wait = created[row["body"]] - row["created_at"].timestamp()
            figures.max_sms_wait_s = round(max(figures.max_sms_wait_s or 0.0, wait), 2)
            if back_at is not None and row["created_at"].timestamp() <= back_at:
                decided_before_back.append(created[row["body"]])
            # A page is reached by its first SMS that went out, of whichever step (a permanent failure at
            # the first step moves it to the next at once).
            page = row["page_id"]
            first_sms[page] = min(first_sms.get(page, float("inf")), created[row["body"]])
        figures.unpaged = sum(1 for p in pages if p["page_id"] not in first_sms)
        for topic in TOPICS:
            if topic.name.endswith(".dlq"):
                figures.dead_letters += len(await self.records(topic.name))
        if first_sms:
            last = max([*first_sms.values(), *decided_before_back])
            reference = back_at if back_at is not None else max(a.accepted_at or 0 for a in accepted)
            figures.recovery_s = round(max(0.0, last - reference), 2)
        del figures.notes[20:]
        figures.record()
        return figures

    async def _where_lost(
        self, conn: asyncpg.Connection, missing: list[Attempted], sightings: dict[str, list[Any]]
    ) -> list[str]:
        """For each watched read without a hit, where it got to: its copies on the sightings topic, a
        hit of it on the hits topic or in PostgreSQL under another entry, a dead letter of it; so that
        a failure says which stage lost it."""
        on_hits: dict[str, int] = Counter()
        for record in await self.records(HITS):
            with contextlib.suppress(Exception):  # the poison scenario's record
                on_hits[json.loads(record.value)["sighting"]["sighting_id"]] += 1
        dead = [r.value for t in TOPICS if t.name.endswith(".dlq") for r in await self.records(t.name)]
        notes = []
        worker = self.processes.get("worker")
        if worker is not None and worker.process.poll() is None:
            with contextlib.suppress(Exception):
                m = await worker.metrics()
                wanted = ("seizewatch_sightings_consumed_total", "seizewatch_watchlist_entries",
                          "seizewatch_dead_letters_total", "seizewatch_stage_retries_total")  # fmt: skip
                shown = {k: v for k, v in m.items() if k.startswith(wanted) or "lag" in k or "hits" in k}
                notes.append(f"worker metrics at the count: {shown}")
            notes.append(f"worker log tail: {worker.tail()[-1500:]}")
        for a in missing:
            copies = [f"p{r.partition}@{r.offset}" for r in sightings.get(a.sighting_id or "", [])]
            observed = [
                decode_sighting(r.value).observed_at.isoformat()
                for r in sightings.get(a.sighting_id or "", [])
            ]
            rows = await conn.fetch(
                "SELECT entry_id, published_at FROM hits WHERE sighting_id = $1", a.sighting_id
            )
            valid_from = await conn.fetchval(
                "SELECT valid_from FROM watch_entries WHERE entry_id = $1", self.entries[a.plate]
            )
            in_dlq = sum(1 for raw in dead if (a.sighting_id or "-").encode() in raw)
            notes.append(
                f"no hit: read {a.plate} sighting {a.sighting_id} (attempts {a.attempts}) on sightings"
                f" {copies or 'nowhere'} observed {observed}, entry valid from {valid_from.isoformat()};"
                f" on the hits topic {on_hits.get(a.sighting_id or '', 0)}×, hit rows"
                f" {[dict(r) for r in rows]}, in dead letters {in_dlq}×"
            )
        return notes

    async def _outcomes_of_sms_decided_before(self, cutoff: datetime, within: float = 90) -> None:
        conn = await asyncpg.connect(self.dsn)
        try:
            with contextlib.suppress(TimeoutError):  # what is still open then is counted as not sent
                await eventually(
                    lambda: conn.fetchval(
                        "SELECT count(*) FROM notifications WHERE created_at <= $1"
                        " AND send_state IN ('pending', 'sending', 'reconciling')",
                        cutoff,
                    ),
                    lambda open_: open_ == 0,
                    within=within,
                )
        finally:
            await conn.close()

    async def records(self, topic: str) -> list[Any]:
        class _Isolated:  # topic_records wants something with .settings.kafka
            settings = dataclasses.replace(self.faults.settings, kafka=self.kafka)

        return await topic_records(_Isolated(), topic)  # type: ignore[arg-type]


def _value(v: float) -> Awaitable[float]:
    future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
    future.set_result(v)
    return future


@contextlib.asynccontextmanager
async def pipeline(
    faults: FaultServices,
    logs: Path,
    *,
    watched: int = 30,
    env: dict[str, str] | None = None,
) -> AsyncIterator[Pipeline]:
    """A scenario's pipeline on the fault services: its own database and topics, ``watched`` vehicles
    under watch, the roster, the fake Twilio; processes started by the scenario (``start_all``)."""
    tag = uuid.uuid4().hex[:10]
    base_dsn = faults.settings.postgres.dsn.get_secret_value()
    kafka = KafkaSettings(bootstrap_servers=faults.settings.kafka.bootstrap_servers, topic_prefix=f"f{tag}.")
    async with scratch_database(base_dsn, f"fault_{tag}") as dsn, FakeTwilio() as fake:
        await ensure_topics(kafka)
        conn = await asyncpg.connect(dsn)
        try:
            await add_source(conn, SOURCE, Connector.PARKING, AuthMethod.API_KEY)
            device: dict[str, object] = {
                "device_id": DEVICE, "source_id": SOURCE, "name": "椒江故障演练停车场 入口",
                "district": "331002", "device_group": "parking-fault",
            }  # fmt: skip
            await upsert_devices(conn, [device])
        finally:
            await conn.close()
        await import_example_roster(dsn)
        full_env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("SEIZEWATCH_")},
            "SEIZEWATCH_LOCAL_HOME": str(faults.settings.local.home),
            "SEIZEWATCH_KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
            "SEIZEWATCH_KAFKA_TOPIC_PREFIX": kafka.topic_prefix,
            "SEIZEWATCH_PG_DSN": dsn,
            "SEIZEWATCH_INGEST_MASTER_KEY": MASTER_KEY,
            "SEIZEWATCH_INGEST_PRODUCE_TIMEOUT_S": "3",
            "SEIZEWATCH_INGEST_RETRY_AFTER_S": "1",
            "SEIZEWATCH_PAGER_ACK_TIMEOUT_S": "5",
            "SEIZEWATCH_PAGER_POLL_INTERVAL_S": "0.2",
            "SEIZEWATCH_TWILIO_ACCOUNT_SID": fake.account_sid,
            "SEIZEWATCH_TWILIO_AUTH_TOKEN": fake.auth_token,
            "SEIZEWATCH_TWILIO_SENDER": fake.phone_number,
            "SEIZEWATCH_TWILIO_API_BASE_URL": fake.base_url,
            "SEIZEWATCH_TWILIO_TIMEOUT_S": "3",
            **(env or {}),
        }
        p = Pipeline(faults, full_env, kafka, dsn, fake, logs)
        conn = await asyncpg.connect(dsn)
        try:
            for i in range(watched):
                plate = f"{WATCHED_PREFIX}{i:04d}"
                record = await watchstore.add_entry(
                    conn,
                    # In force well before the burst: a read is stamped 2 s before it is posted, to the
                    # second, so an entry valid from its insertion (the default) did not yet cover a read
                    # posted within ~3 s of it, and that read rightly made no hit (the "missing hit" of
                    # the CI runs: always the burst's first watched read).
                    watchstore.NewEntry(
                        plate=plate,
                        case_number=f"(2026)浙1002执{9000 + i}号",
                        court=JIAOJIANG,
                        valid_from=datetime.now(UTC) - timedelta(hours=1),
                    ),
                    by="fault-suite",
                )
                p.entries[plate] = record.entry.entry_id
                p.watched_plates.append(plate)
        finally:
            await conn.close()
        try:
            yield p
        finally:
            p.stop_all()
            from aiokafka.admin import AIOKafkaAdminClient

            admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap_servers)
            with contextlib.suppress(Exception):
                await admin.start()
                await admin.delete_topics([kafka.topic(t.name) for t in TOPICS])
            with contextlib.suppress(Exception):
                await admin.close()


Fault = Callable[[Pipeline], Awaitable[float | None]]
