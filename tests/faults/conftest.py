"""The fault suite's own Kafka and PostgreSQL: a second instance of the local services, on other ports.

A fault scenario stops brokers and databases; on the shared services of the rest of the suite that would
fail unrelated tests. So the suite runs against its own instance (``SEIZEWATCH_FAULTS_*``; by default a
broker on 127.0.0.1:29092 and PostgreSQL on 127.0.0.1:55439, data in ``var/faults``), started by the
project's own code like the shared one, and can run beside the rest of the suite; stopped at the end.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from seizewatch.localservices import LocalServices
from seizewatch.settings import LocalServicesSettings, Settings
from streams.settings import KafkaSettings, PostgresSettings
from tests.faults.harness import FaultServices

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def fault_services() -> Iterator[FaultServices]:
    base = Settings.from_env()
    kafka_port = int(os.environ.get("SEIZEWATCH_FAULTS_KAFKA_PORT", "29092"))
    pg_port = int(os.environ.get("SEIZEWATCH_FAULTS_PG_PORT", "55439"))
    home = Path(os.environ.get("SEIZEWATCH_FAULTS_HOME", str(ROOT / "var" / "faults")))
    settings = dataclasses.replace(
        base,
        kafka=KafkaSettings(bootstrap_servers=f"127.0.0.1:{kafka_port}"),
        postgres=PostgresSettings(dsn=SecretStr(f"postgresql://seizewatch@127.0.0.1:{pg_port}/seizewatch")),
        local=LocalServicesSettings(
            home=home, cache_dir=base.local.cache_dir, kafka_version=base.local.kafka_version,
            kafka_heap="512m",
        ),
    )  # fmt: skip
    services = LocalServices(settings)
    services.up()
    yield FaultServices(settings, services)
    # Started by the suite for itself, stopped by it (their data stays for a look at what happened).
    services.down()
