"""Plumbing the measurements share: the local services, prefixed topics, a throwaway database, processes.

Every benchmark run uses its own topic prefix (``bench<tag>.``) and database (``bench_<tag>``), the way
the integration tests isolate themselves, and removes both afterwards.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from seizewatch.localservices import LocalServices
from seizewatch.scratch import scratch_database
from seizewatch.settings import Settings
from streams.producers import idempotent_producer
from streams.settings import KafkaSettings, PostgresSettings
from streams.topics import TOPICS, TopicSpec, ensure_topics

ROOT = Path(__file__).resolve().parents[1]


def services() -> Settings:
    """The process settings, with the local Kafka and PostgreSQL started (idempotent)."""
    settings = Settings.from_env()
    LocalServices(settings).up()
    return settings


def new_tag() -> str:
    """A short random tag naming one run's topics and database."""
    return uuid.uuid4().hex[:10]


def bench_kafka(base: KafkaSettings, tag: str) -> KafkaSettings:
    """``base`` with the topic prefix ``bench<tag>.``."""
    return KafkaSettings(bootstrap_servers=base.bootstrap_servers, topic_prefix=f"bench{tag}.")


async def create_topics(kafka: KafkaSettings, specs: Sequence[TopicSpec]) -> list[str]:
    """Create the declared topics ``specs`` under the prefix, as ``topics ensure`` would; real names."""
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap_servers, client_id="seizewatch-bench")
    await admin.start()
    try:
        await admin.create_topics(
            [
                NewTopic(
                    name=kafka.topic(s.name),
                    num_partitions=s.partitions,
                    replication_factor=1,
                    topic_configs=s.config,
                )
                for s in specs
            ]
        )
    finally:
        await admin.close()
    return [kafka.topic(s.name) for s in specs]


async def delete_topics(kafka: KafkaSettings, names: Sequence[str]) -> None:
    """Delete the topics of the prefix among ``names`` (real names); missing ones are ignored."""
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap_servers, client_id="seizewatch-bench")
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        doomed = [n for n in names if n in existing and n.startswith(kafka.topic_prefix)]
        if doomed:
            await admin.delete_topics(doomed)
    finally:
        await admin.close()


@asynccontextmanager
async def all_topics(kafka: KafkaSettings) -> AsyncIterator[KafkaSettings]:
    """Every declared topic under the prefix (``ensure_topics``), deleted on exit."""
    await ensure_topics(kafka)
    try:
        yield kafka
    finally:
        await delete_topics(kafka, [kafka.topic(t.name) for t in TOPICS])


async def produce(kafka: KafkaSettings, topic: str, records: Iterable[tuple[bytes, bytes]]) -> int:
    """Send (key, value) records to the real topic ``topic`` with the production producer; return count.

    The producer is :func:`streams.producers.idempotent_producer` (acks=all, idempotent, linger 5 ms), so
    partitioning and batching are those of the connectors and the outbox relay.
    """
    producer = idempotent_producer(kafka, "bench")
    await producer.start()
    sent = 0
    try:
        pending: list[asyncio.Future[object]] = []
        for key, value in records:
            pending.append(await producer.send(topic, key=key, value=value))
            sent += 1
            if len(pending) >= 10_000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return sent


@asynccontextmanager
async def fresh_database(base: PostgresSettings, tag: str) -> AsyncIterator[PostgresSettings]:
    """A new database ``bench_<tag>``, migrated; dropped on exit."""
    async with scratch_database(base.dsn.get_secret_value(), f"bench_{tag}") as dsn:
        yield PostgresSettings(dsn=dsn)  # type: ignore[arg-type]  # pydantic turns str into SecretStr


def worker_env(
    kafka: KafkaSettings, postgres: PostgresSettings, metrics_port: int, home: Path
) -> dict[str, str]:
    """The environment of a ``seizewatch worker`` on the run's topics and database."""
    return {
        **{k: v for k, v in os.environ.items() if k != "SEIZEWATCH_INGEST_MASTER_KEY"},
        "SEIZEWATCH_KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "SEIZEWATCH_KAFKA_TOPIC_PREFIX": kafka.topic_prefix,
        "SEIZEWATCH_PG_DSN": postgres.dsn.get_secret_value(),
        "SEIZEWATCH_METRICS_PORT": str(metrics_port),
        "SEIZEWATCH_LOCAL_HOME": str(home),
    }


# --- memory of processes, from /proc ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Memory:
    """Resident memory of a process tree: now (VmRSS) and at its peak (VmHWM), summed over ``pids``."""

    rss_bytes: int
    hwm_bytes: int
    pids: tuple[int, ...]

    @property
    def rss_mib(self) -> float:
        return self.rss_bytes / 2**20

    @property
    def hwm_mib(self) -> float:
        return self.hwm_bytes / 2**20


def _status_kib(pid: int | str, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    return 0


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (from /proc/PID/task/*/children)."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*/children"):
            try:
                todo.extend(int(child) for child in task.read_text().split())
            except FileNotFoundError:  # the thread or process ended meanwhile
                continue
    return found


def tree_memory(pid: int) -> Memory:
    """VmRSS and VmHWM of ``pid`` and its descendants (processes that end meanwhile are skipped)."""
    rss = hwm = 0
    seen: list[int] = []
    for p in process_tree(pid):
        try:
            rss += _status_kib(p, "VmRSS") * 1024
            hwm += _status_kib(p, "VmHWM") * 1024
        except FileNotFoundError:
            continue
        seen.append(p)
    return Memory(rss, hwm, tuple(seen))


def own_rss_bytes() -> int:
    """VmRSS of this process."""
    return _status_kib("self", "VmRSS") * 1024
