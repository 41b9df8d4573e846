"""Fixtures over the real services: Kafka and PostgreSQL from `seizewatch services up`.

Each test module gets its own topic prefix and its own database, so tests never see each other's data;
a matcher worker runs as a real process (``python -m seizewatch.cli worker``) against them.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import httpx
import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import ConsumerRecord

from seizewatch.demo import scrape
from seizewatch.localservices import LocalServices
from seizewatch.scratch import free_port, scratch_database
from seizewatch.settings import Settings
from streams.settings import KafkaSettings, PostgresSettings
from streams.topics import TOPICS, ensure_topics, wait_for_assignment

ROOT = Path(__file__).resolve().parents[1]
T = TypeVar("T")


@pytest.fixture(scope="session")
def services() -> Settings:
    """The local Kafka and PostgreSQL, started (idempotently) by the project's own code."""
    settings = Settings.from_env()
    LocalServices(settings).up()
    return settings


@dataclass(frozen=True)
class Isolated:
    settings: Settings
    env: dict[str, str]


@pytest.fixture(scope="module")
async def isolated(services: Settings) -> AsyncIterator[Isolated]:
    """A fresh topic prefix and database, migrated, with every declared topic created."""
    tag = uuid.uuid4().hex[:10]
    base_dsn = services.postgres.dsn.get_secret_value()
    async with scratch_database(base_dsn, f"test_{tag}") as dsn:
        kafka = KafkaSettings(topic_prefix=f"t{tag}.")
        postgres = PostgresSettings(dsn=dsn)  # type: ignore[arg-type]  # pydantic turns str into SecretStr
        settings = Settings(
            kafka, postgres, services.match, services.metrics, services.local, services.ingest,
            services.pager, services.twilio,
        )  # fmt: skip
        await ensure_topics(kafka)
        env = {
            # A developer's own secrets never leak into tests: those that need a master key set their own.
            **{k: v for k, v in os.environ.items() if k != "SEIZEWATCH_INGEST_MASTER_KEY"},
            "SEIZEWATCH_KAFKA_TOPIC_PREFIX": kafka.topic_prefix,
            "SEIZEWATCH_PG_DSN": dsn,
            "SEIZEWATCH_LOCAL_HOME": str(services.local.home.resolve()),
        }
        yield Isolated(settings, env)
        client = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap_servers)
        await client.start()
        try:
            await client.delete_topics([kafka.topic(t.name) for t in TOPICS])
        finally:
            await client.close()


@dataclass
class Process:
    """A seizewatch process under test, with its /metrics port and its log."""

    process: subprocess.Popen[bytes]
    port: int
    log: Path

    async def metrics(self) -> dict[str, float]:
        async with httpx.AsyncClient() as client:
            return await scrape(client, self.port)

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    async def wait_metric(self, name: str, predicate: Callable[[float], bool], within: float = 60) -> float:
        """Wait until the metric satisfies ``predicate``; fail naming what it last was."""
        last: float | None = None
        try:
            async with asyncio.timeout(within):
                while True:
                    assert self.process.poll() is None, f"process died:\n{self.tail()}"
                    last = (await self.metrics()).get(name)
                    if last is not None and predicate(last):
                        return last
                    await asyncio.sleep(0.2)
        except TimeoutError:
            pytest.fail(f"{name} stayed at {last} for {within} s; log:\n{self.tail()}")


Worker = Process


def spawn(command: str, env: dict[str, str], log: Path, port_variable: str) -> Process:
    """Start ``seizewatch COMMAND`` with its metrics/HTTP port set to a free one."""
    port = free_port()
    out = log.open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "seizewatch.cli", command],
        env={**env, port_variable: str(port)},
        stdout=out,
        stderr=subprocess.STDOUT,
        cwd=ROOT,
        start_new_session=True,
    )
    out.close()
    return Process(process, port, log)


def start_worker(env: dict[str, str], log: Path) -> Process:
    return spawn("worker", env, log, "SEIZEWATCH_METRICS_PORT")


def stop_process(proc: Process, sig: int = signal.SIGTERM) -> int:
    if proc.process.poll() is None:
        proc.process.send_signal(sig)
        try:
            proc.process.wait(30)
        except subprocess.TimeoutExpired:
            proc.process.kill()
            proc.process.wait()
    return proc.process.returncode


stop_worker = stop_process


@pytest.fixture(scope="module")
async def worker(isolated: Isolated, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Process]:
    """A matcher worker process, started and caught up with the (empty) watchlist."""
    w = start_worker(isolated.env, tmp_path_factory.mktemp("worker") / "worker.log")
    try:
        await w.wait_metric("seizewatch_watchlist_caught_up", lambda v: v == 1, within=90)
        yield w
    finally:
        stop_process(w)


MASTER_KEY = "test-master-key-" + "0123456789abcdef" * 3


@pytest.fixture(scope="module")
async def ingest(isolated: Isolated, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Process]:
    """The HTTP connectors as a process (`seizewatch ingest`), answering /healthz."""
    env = {
        **isolated.env,
        "SEIZEWATCH_INGEST_MASTER_KEY": MASTER_KEY,
        "SEIZEWATCH_INGEST_PRODUCE_TIMEOUT_S": "3",
        # No pager runs beside it: traffic results are answered "pending" at once, not after a wait.
        "SEIZEWATCH_INGEST_TRAFFIC_OUTCOME_WAIT_S": "0",
    }
    proc = spawn("ingest", env, tmp_path_factory.mktemp("ingest") / "ingest.log", "SEIZEWATCH_INGEST_PORT")
    try:
        async with httpx.AsyncClient() as client:

            async def healthy() -> bool:
                assert proc.process.poll() is None, f"ingest died:\n{proc.tail()}"
                try:
                    return (await client.get(f"http://127.0.0.1:{proc.port}/healthz")).status_code == 200
                except httpx.TransportError:
                    return False

            await eventually(healthy, bool, within=60)
        yield proc
    finally:
        stop_process(proc)


async def eventually(probe: Callable[[], Awaitable[T]], done: Callable[[T], bool], within: float = 30) -> T:
    """Poll ``probe`` until ``done`` holds (bounded); return the last value."""
    async with asyncio.timeout(within):
        while True:
            value = await probe()
            if done(value):
                return value
            await asyncio.sleep(0.2)


@pytest.fixture
def cli(isolated: Isolated) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run the real `seizewatch` command against the isolated topics and database."""

    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return run_seizewatch(isolated.env, *args, check=check)

    return run


def run_seizewatch(env: dict[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """`seizewatch ARGS…` as a real process; a failure (when ``check``) fails the test with its output."""
    result = subprocess.run(
        [sys.executable, "-m", "seizewatch.cli", *args],
        env={**env, "COLUMNS": "200"},
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    if check and result.returncode != 0:
        pytest.fail(
            f"seizewatch {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
        )
    return result


async def topic_records(isolated: Isolated, name: str) -> list[ConsumerRecord]:
    """Every record of the declared topic ``name`` now, read from the start to the end offsets."""
    topic = isolated.settings.kafka.topic(name)
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=isolated.settings.kafka.bootstrap_servers,
        group_id=None,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        partitions = await wait_for_assignment(consumer, topic)
        await consumer.seek_to_beginning(*partitions)
        end = await consumer.end_offsets(partitions)
        records: list[ConsumerRecord] = []
        pending = [tp for tp in partitions if end[tp] > 0]
        while pending:
            for batch in (await consumer.getmany(timeout_ms=1000)).values():
                records.extend(batch)
            pending = [tp for tp in pending if await consumer.position(tp) < end[tp]]
        return records
    finally:
        await consumer.stop()
