"""`seizewatch services`: `up` is idempotent, both services answer, the broker keeps its data on restart."""

from __future__ import annotations

import asyncio
import re
import uuid
from pathlib import Path

import asyncpg
import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from seizewatch.localservices import LocalServices
from seizewatch.settings import Settings
from streams import db
from streams.errors import ConfigurationError
from streams.topics import replication_factor


@pytest.fixture(scope="module")
def settings() -> Settings:
    return Settings.from_env()


@pytest.fixture(scope="module")
def local_services(settings: Settings) -> LocalServices:
    return LocalServices(settings)


def _pid(status_line: str) -> int:
    match = re.fullmatch(r"running \(pid (\d+)\) on \S+", status_line)
    assert match, f"not running: {status_line!r}"
    return int(match.group(1))


async def _topics(settings: Settings) -> list[str]:
    client = AIOKafkaAdminClient(bootstrap_servers=settings.kafka.bootstrap_servers)
    try:
        await client.start()
        return list(await client.list_topics())
    finally:
        await client.close()


async def _select_one(settings: Settings) -> int:
    conn = await asyncpg.connect(settings.postgres.dsn.get_secret_value())
    try:
        return int(await conn.fetchval("SELECT 1"))
    finally:
        await conn.close()


# The services are synchronous (they run their own event loop for the readiness probe): a worker thread
# keeps them off the test's loop.


@pytest.mark.integration
async def test_up_twice_changes_nothing(local_services: LocalServices, settings: Settings) -> None:
    await asyncio.to_thread(local_services.up)
    first = await asyncio.to_thread(local_services.status)

    await asyncio.to_thread(local_services.up)
    second = await asyncio.to_thread(local_services.status)

    assert _pid(second["kafka"]) == _pid(first["kafka"])
    assert _pid(second["postgres"]) == _pid(first["postgres"])
    assert isinstance(await _topics(settings), list)
    assert await _select_one(settings) == 1


@pytest.mark.integration
async def test_status_reports_both_running(local_services: LocalServices, settings: Settings) -> None:
    await asyncio.to_thread(local_services.up)

    status = await asyncio.to_thread(local_services.status)

    assert set(status) == {"kafka", "postgres"}
    assert status["kafka"].endswith(f" on {settings.kafka.bootstrap_servers}")
    assert _pid(status["kafka"]) > 0
    assert _pid(status["postgres"]) > 0


@pytest.mark.integration
async def test_broker_restart_keeps_topics(local_services: LocalServices, settings: Settings) -> None:
    await asyncio.to_thread(local_services.up)
    topic = f"test.localservices.{uuid.uuid4().hex[:12]}"
    client = AIOKafkaAdminClient(bootstrap_servers=settings.kafka.bootstrap_servers)
    try:
        await client.start()
        response = await client.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
        assert [error_code for _, error_code, *_ in response.topic_errors] == [0]
    finally:
        await client.close()
    old_pid = _pid((await asyncio.to_thread(local_services.status))["kafka"])

    try:
        await asyncio.to_thread(local_services.stop_kafka)
        assert (await asyncio.to_thread(local_services.status))["kafka"] == "stopped"
    finally:
        # Other tests use the broker: it comes back whatever happened above.
        await asyncio.to_thread(local_services.start_kafka)

    assert _pid((await asyncio.to_thread(local_services.status))["kafka"]) != old_pid
    assert topic in await _topics(settings)

    client = AIOKafkaAdminClient(bootstrap_servers=settings.kafka.bootstrap_servers)
    try:
        await client.start()
        await client.delete_topics([topic])
    finally:
        await client.close()


@pytest.mark.integration
async def test_the_single_node_gives_topics_one_copy(settings: Settings) -> None:
    client = AIOKafkaAdminClient(bootstrap_servers=settings.kafka.bootstrap_servers)
    try:
        await client.start()
        assert await replication_factor(client) == 1
    finally:
        await client.close()


@pytest.mark.integration
async def test_migrate_refuses_a_folder_without_migrations(settings: Settings, tmp_path: Path) -> None:
    # What a wheel install looks like: no deploy/migrations beside the packages. Never "nothing to apply".
    conn = await asyncpg.connect(settings.postgres.dsn.get_secret_value())
    try:
        with pytest.raises(ConfigurationError, match="no migrations in"):
            await db.migrate(conn, tmp_path / "migrations")
    finally:
        await conn.close()
