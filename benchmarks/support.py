"""What the pipeline benchmarks run on: a fresh topic prefix and database, real processes, Kafka helpers.

Mirrors the integration tests' ``isolated`` fixture and ``spawn`` (tests/conftest.py) without pytest, on
the topic and database plumbing of :mod:`benchmarks.infra`: every run gets its own topics and database,
dropped afterwards, and runs the real ``seizewatch`` commands as processes whose output goes to a log in
a temporary directory. On failure the tail of every log is printed and the directory kept; on success it
is deleted. :func:`drive` is a parking lot posting reads on a fixed schedule.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import TypeVar

import aiohttp
import asyncpg
import httpx
import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from pydantic import SecretStr

from benchmarks import infra
from connectors.auth import API_KEY_HEADER, source_secret
from connectors.registry import AuthMethod, Connector, add_source, upsert_devices
from seizewatch.demo import scrape
from seizewatch.scratch import free_port
from streams import watchstore
from streams.settings import KafkaSettings, PostgresSettings
from streams.watchlist import WatchEntry
from tests.fakes.twilio_server import FakeTwilio
from tests.integration.pager_support import import_example_roster

# Polling /metrics often: uncompressed, so the gzip of each answer does not eat the measured process's CPU.
UNCOMPRESSED = {"Accept-Encoding": "identity"}
ROOT = Path(__file__).resolve().parents[1]
# The benchmark's own master key for the connectors (never a developer's).
MASTER_KEY = "bench-master-key-" + "0123456789abcdef" * 3
T = TypeVar("T")


async def eventually(
    probe: Callable[[], Awaitable[T]], done: Callable[[T], bool], *, within: float, every: float = 0.2
) -> T:
    """Poll ``probe`` until ``done`` holds; raise TimeoutError after ``within`` seconds."""
    async with asyncio.timeout(within):
        while True:
            value = await probe()
            if done(value):
                return value
            await asyncio.sleep(every)


@dataclass
class Proc:
    """A ``seizewatch`` process with its HTTP port (metrics, or the service's own) and its log."""

    name: str
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    def tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:]

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            raise RuntimeError(f"{self.name} exited with {self.process.returncode}:\n{self.tail()}")

    def cpu_seconds(self) -> float:
        """User + system CPU time the process used so far (``/proc/PID/stat``)."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    async def metrics(self, client: httpx.AsyncClient) -> dict[str, float]:
        self.check_alive()
        return await scrape(client, self.port)


def total(values: dict[str, float], prefix: str) -> float:
    """The sum of every series whose ``name{labels}`` starts with ``prefix``."""
    return sum(v for k, v in values.items() if k.startswith(prefix))


# Every read a worker is done with: ruled out by its key, matched, or dead-lettered.
PROCESSED = ("seizewatch_sightings_consumed_total",)


async def summed(
    client: httpx.AsyncClient, workers: list[Proc], prefixes: tuple[str, ...] = PROCESSED
) -> int:
    """The sum over the workers of the series starting with any of ``prefixes``."""
    values = await asyncio.gather(*(w.metrics(client) for w in workers))
    return int(sum(total(v, prefix) for v in values for prefix in prefixes))


class DataLost(RuntimeError):
    """The pipeline did not record what it had to: the figures of that run mean nothing."""


class Processes:
    """Spawns processes and stops them all (SIGTERM, then kill) when the context ends."""

    def __init__(self, logdir: Path) -> None:
        self.logdir = logdir
        self.started: list[Proc] = []

    def spawn(
        self, name: str, command: str, env: dict[str, str], port_variable: str, port: int | None = None
    ) -> Proc:
        """Start ``seizewatch COMMAND`` with ``port_variable`` set to ``port`` (a free one if not given)."""
        port = port or free_port()
        log = self.logdir / f"{name}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(  # noqa: S603  # our own command with our own interpreter
                [sys.executable, "-m", "seizewatch.cli", command],
                env={**env, port_variable: str(port)},
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
                start_new_session=True,
            )
        proc = Proc(name, process, port, log)
        self.started.append(proc)
        return proc

    def worker(self, name: str, env: dict[str, str]) -> Proc:
        """A ``seizewatch worker`` with a ``SEIZEWATCH_LOCAL_HOME`` of its own (faust's data dir)."""
        home = self.logdir / f"home-{name}"
        home.mkdir()
        return self.spawn(
            name, "worker", {**env, "SEIZEWATCH_LOCAL_HOME": str(home)}, "SEIZEWATCH_METRICS_PORT"
        )

    async def stop_all(self) -> None:
        await asyncio.gather(*(asyncio.to_thread(stop, p) for p in self.started))


def stop(proc: Proc) -> int:
    """SIGTERM, up to 30 s to finish, then SIGKILL; the exit code."""
    if proc.process.poll() is None:
        proc.process.send_signal(signal.SIGTERM)
        try:
            proc.process.wait(30)
        except subprocess.TimeoutExpired:
            proc.process.kill()
            proc.process.wait()
    return proc.process.returncode


@contextlib.asynccontextmanager
async def processes(label: str) -> AsyncIterator[Processes]:
    """A temporary log directory and the processes started in it; logs printed if the block fails."""
    logdir = Path(tempfile.mkdtemp(prefix=f"seizewatch-bench-{label}-"))
    group = Processes(logdir)
    try:
        yield group
    except BaseException:
        await group.stop_all()
        for proc in group.started:
            print(f"----- {proc.name} ({proc.log}) -----\n{proc.tail()}", file=sys.stderr)
        print(f"logs kept in {logdir}", file=sys.stderr)
        raise
    await group.stop_all()
    shutil.rmtree(logdir, ignore_errors=True)


@dataclass(frozen=True)
class Isolated:
    """A topic prefix and a migrated database of their own; ``env`` runs seizewatch commands on them."""

    kafka: KafkaSettings
    postgres: PostgresSettings
    env: dict[str, str] = field(repr=False)

    @property
    def dsn(self) -> str:
        return self.postgres.dsn.get_secret_value()


@contextlib.asynccontextmanager
async def isolated() -> AsyncIterator[Isolated]:
    """Every declared topic under a fresh prefix, a fresh migrated database; both deleted on exit.

    Processes get this process's environment without any ``SEIZEWATCH_*`` variable (a developer's
    settings and secrets stay out), then the run's prefix and database.
    """
    settings = await asyncio.to_thread(infra.services)
    tag = infra.new_tag()
    kafka = infra.bench_kafka(settings.kafka, tag)
    async with infra.fresh_database(settings.postgres, tag) as postgres, infra.all_topics(kafka):
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("SEIZEWATCH_")},
            "SEIZEWATCH_KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
            "SEIZEWATCH_KAFKA_TOPIC_PREFIX": kafka.topic_prefix,
            "SEIZEWATCH_PG_DSN": postgres.dsn.get_secret_value(),
        }
        yield Isolated(kafka, postgres, env)


async def load_entries(dsn: str, entries: Sequence[WatchEntry], *, by: str = "bench") -> None:
    """Write watch entries straight into ``watch_entries`` (COPY), as rows the hits can refer to.

    The benchmark publishes their change records itself; no outbox row is written.
    """
    rows = [
        (e.entry_id, e.plate.text, e.plate_colour.value, e.vehicle, e.case_number, e.court, e.action.value,
         e.priority.value, e.valid_from, e.valid_until, e.status.value, e.version, by, by)
        for e in entries
    ]  # fmt: skip
    conn = await asyncpg.connect(dsn)
    try:
        await conn.copy_records_to_table(
            "watch_entries",
            records=rows,
            columns=[
                "entry_id", "plate", "plate_colour", "vehicle", "case_number", "court", "action",
                "priority", "valid_from", "valid_until", "status", "version", "created_by", "updated_by",
            ],
        )  # fmt: skip
    finally:
        await conn.close()


class GroupProgress:
    """Committed offsets of a consumer group against the end offsets of a topic."""

    def __init__(self, kafka: KafkaSettings, group: str, topic: str) -> None:
        self._group = group
        self._topic = topic
        self._admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap_servers)
        self._offsets = AIOKafkaConsumer(bootstrap_servers=kafka.bootstrap_servers, group_id=None)
        self._partitions: list[TopicPartition] = []

    async def __aenter__(self) -> GroupProgress:
        await self._admin.start()
        await self._offsets.start()
        described = await self._admin.describe_topics([self._topic])
        self._partitions = [TopicPartition(self._topic, p["partition"]) for p in described[0]["partitions"]]
        return self

    async def __aexit__(self, *_: object) -> None:
        await self._offsets.stop()
        await self._admin.close()

    async def lag(self) -> int:
        """Records produced and not yet committed by the group (all of them before its first commit)."""
        committed = await self._admin.list_consumer_group_offsets(self._group, partitions=self._partitions)
        end = await self._offsets.end_offsets(self._partitions)
        lag = 0
        for tp in self._partitions:
            done = committed.get(tp)
            lag += end[tp] - (done.offset if done is not None and done.offset >= 0 else 0)
        return int(lag)


def now() -> float:
    """Wall-clock seconds (comparable with timestamps the processes write)."""
    return time.time()


@dataclass(frozen=True)
class Pipeline:
    """The processes of a whole pipeline run."""

    worker: Proc
    ingest: Proc
    pager: Proc


async def _healthy(client: httpx.AsyncClient, proc: Proc) -> bool:
    proc.check_alive()
    try:
        return (await client.get(f"http://127.0.0.1:{proc.port}/healthz")).status_code == 200
    except httpx.TransportError:
        return False


async def start_pipeline(
    procs: Processes,
    iso: Isolated,
    fake: FakeTwilio,
    *,
    entries: int,
    worker_env: dict[str, str],
    pager_env: dict[str, str],
) -> Pipeline:
    """A worker, the connectors and the pager (texting ``fake``) on the run's topics and database.

    Returns once the worker's index holds ``entries`` entries and both HTTP services answer /healthz.
    ``worker_env`` and ``pager_env`` add or override the worker's and the pager's settings.
    """
    worker = procs.worker("worker", {**iso.env, **worker_env})
    key = {"SEIZEWATCH_INGEST_MASTER_KEY": MASTER_KEY}
    ingest = procs.spawn("ingest", "ingest", {**iso.env, **key}, "SEIZEWATCH_INGEST_PORT")
    port = free_port()
    twilio = {
        "SEIZEWATCH_PAGER_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "SEIZEWATCH_TWILIO_ACCOUNT_SID": fake.account_sid,
        "SEIZEWATCH_TWILIO_AUTH_TOKEN": fake.auth_token,
        "SEIZEWATCH_TWILIO_SENDER": fake.phone_number,
        "SEIZEWATCH_TWILIO_API_BASE_URL": fake.base_url,
    }
    pager = procs.spawn("pager", "pager", {**iso.env, **twilio, **pager_env}, "SEIZEWATCH_PAGER_PORT", port)
    async with httpx.AsyncClient(timeout=5) as client:

        async def ready() -> bool:
            values = await worker.metrics(client)
            index = values.get("seizewatch_watchlist_caught_up") == 1
            if not index or values.get("seizewatch_watchlist_entries") != entries:
                return False
            return await _healthy(client, ingest) and await _healthy(client, pager)

        await eventually(ready, bool, within=600)
    return Pipeline(worker, ingest, pager)


# ------------------------------------------------------------------------------ a parking lot, posting

SOURCE, LOT, GATE = "bench-lot", "bench", "g1"
COURT = "台州市椒江区人民法院"  # in the example roster, with a night contact for the device's district
SHANGHAI = timezone(timedelta(hours=8), "Asia/Shanghai")


async def register_lot(dsn: str, watched: Sequence[str]) -> list[uuid.UUID]:
    """The lot's source and gate (in district 331002), the example roster, and one entry of the court
    per watched plate, added as a clerk adds it (outbox → ``watchlist.changes``); their ids."""
    conn = await asyncpg.connect(dsn)
    try:
        await add_source(conn, SOURCE, Connector.PARKING, AuthMethod.API_KEY)
        device: dict[str, object] = {
            "device_id": f"{LOT}/{GATE}",
            "source_id": SOURCE,
            "name": "基准停车场入口",
        }
        device |= {"district": "331002", "device_group": "bench", "kind": "parking_entry"}
        await upsert_devices(conn, [device])
        ids = []
        for i, plate in enumerate(watched):
            new = watchstore.NewEntry(
                plate=plate, case_number=f"(2026)浙1002执{i + 1}号", court=COURT,
                valid_from=datetime.now(UTC) - timedelta(days=1),
            )  # fmt: skip
            ids.append((await watchstore.add_entry(conn, new, by="bench")).entry.entry_id)
    finally:
        await conn.close()
    await import_example_roster(dsn)
    return ids


@dataclass
class Drive:
    """What :func:`drive` did: when each watched plate's request left and was answered, what was taken."""

    sent_at: dict[str, float] = field(default_factory=dict)  # watched plate → wall time sent
    answered_at: dict[str, float] = field(default_factory=dict)  # watched plate → wall time answered
    reads: int = 0
    accepted: int = 0
    refused: int = 0  # reads of requests not answered 200, or refused in a 200's body
    first_sent: float = 0.0
    last_answer: float = 0.0
    lag_max_s: float = 0.0  # how late a request left against its schedule


def parking_body(tag: str, plates: Sequence[str]) -> bytes:
    """A request of the generic parking schema: one entry read per plate, observed now."""
    at = datetime.now(SHANGHAI).isoformat(timespec="milliseconds")
    records = [
        {"record_id": f"{tag}-{i}", "lot_id": LOT, "gate": GATE, "direction": "in", "plate": plate,
         "plate_colour": "蓝", "time": at, "confidence": 0.9}
        for i, plate in enumerate(plates)
    ]  # fmt: skip
    return orjson.dumps({"records": records})


async def drive(
    port: int,
    batches: Sequence[Sequence[str]],
    *,
    rate: float,
    concurrency: int,
    watched: Collection[str],
    tag: str,
) -> Drive:
    """Post ``batches`` of plates as the lot to the connectors on ``port`` at ``rate`` reads/s, on a
    fixed schedule; ``tag`` makes the record ids of this drive.

    Open loop: a request leaves when its time comes, whether or not earlier ones were answered; only
    ``concurrency`` requests may be in flight (a late one is counted in ``lag_max_s``).
    """
    result = Drive()
    slots = asyncio.Semaphore(concurrency)
    loop = asyncio.get_running_loop()
    pending: set[asyncio.Task[None]] = set()
    url = f"http://127.0.0.1:{port}/parking/v1/sources/{SOURCE}/records"
    key = source_secret(SecretStr(MASTER_KEY), SOURCE, 1)
    headers = {API_KEY_HEADER: key, "Content-Type": "application/json"}
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(headers=headers, connector=connector) as session:

        async def post(body: bytes, plates: Sequence[str]) -> None:
            try:
                async with session.post(url, data=body) as response:
                    answer = await response.read()
                taken = int(orjson.loads(answer)["accepted"]) if response.status == 200 else 0
                result.accepted += taken
                result.refused += len(plates) - taken
            except aiohttp.ClientError:
                result.refused += len(plates)
            finally:
                result.last_answer = now()
                for plate in plates:
                    if plate in watched:
                        result.answered_at[plate] = result.last_answer
                slots.release()

        due = loop.time()
        result.first_sent = now()
        for k, plates in enumerate(batches):
            if (wait := due - loop.time()) > 0:
                await asyncio.sleep(wait)
            await slots.acquire()
            result.lag_max_s = max(result.lag_max_s, loop.time() - due)
            body = parking_body(f"{tag}-{k}", plates)
            sent = now()
            result.sent_at.update((plate, sent) for plate in plates if plate in watched)
            task = asyncio.create_task(post(body, plates))
            pending.add(task)
            task.add_done_callback(pending.discard)
            result.reads += len(plates)
            due += len(plates) / rate
        await asyncio.gather(*pending)
    return result
