"""The one settings object of a process, composed from each package's piece.

Only this module's :meth:`Settings.from_env` reads seizewatch's environment; everything else receives
the frozen object (or the piece it needs). (glibc's ``GLIBC_TUNABLES`` is looked at by the worker's
re-execution onto huge pages, :mod:`streams.hugepages`.) A bad value stops start-up with the variable's
name. Every variable is documented in ``docs/configuration.md``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from alerts.settings import PagerSettings, TwilioSettings
from connectors.settings import IngestSettings
from streams.errors import ConfigurationError
from streams.settings import KafkaSettings, MatchSettings, PostgresSettings


class LocalServicesSettings(BaseSettings):
    """``SEIZEWATCH_LOCAL_*``: the development Kafka and PostgreSQL that ``seizewatch services`` runs.

    Their addresses are not repeated here: the broker listens where ``SEIZEWATCH_KAFKA_BOOTSTRAP_SERVERS``
    points and PostgreSQL where ``SEIZEWATCH_PG_DSN`` points (both must be on loopback).
    """

    model_config = SettingsConfigDict(env_prefix="SEIZEWATCH_LOCAL_", frozen=True, extra="forbid")

    # Data and logs of the local services; `seizewatch services wipe` deletes it.
    home: Path = Path("var")
    # Downloaded Kafka jars and the Maven repository, reused across clones.
    cache_dir: Path = Field(default_factory=lambda: Path.home() / ".cache" / "seizewatch")
    kafka_version: str = "3.9.1"
    # Maximum heap of each local Kafka node.
    kafka_heap: str = "1g"
    # 1: one node (the demo, most tests); 3: a KRaft cluster of three, replication factor 3 and
    # min.insync.replicas=2, the production shape (seizewatch/localkafka.py has where each node listens).
    kafka_brokers: int = 1

    @field_validator("kafka_brokers")
    @classmethod
    def _cluster_shape(cls, value: int) -> int:
        if value not in (1, 3):
            raise ValueError("expected 1 (one node) or 3 (a cluster of three nodes)")
        return value


class MetricsSettings(BaseSettings):
    """``SEIZEWATCH_METRICS_*``: where this process serves ``/metrics``."""

    model_config = SettingsConfigDict(env_prefix="SEIZEWATCH_METRICS_", frozen=True, extra="forbid")

    host: str = "127.0.0.1"
    # 0 picks a free port (tests); a deployment gives each process its own.
    port: int = Field(default=9470, ge=0, le=65535)


@dataclass(frozen=True, slots=True)
class Settings:
    kafka: KafkaSettings
    postgres: PostgresSettings
    match: MatchSettings
    metrics: MetricsSettings
    local: LocalServicesSettings
    ingest: IngestSettings
    pager: PagerSettings
    twilio: TwilioSettings

    @classmethod
    def from_env(cls) -> Settings:
        """Read every piece from the environment.

        Raises:
            ConfigurationError: naming each variable whose value is invalid.
        """
        pieces: dict[str, BaseSettings] = {}
        problems: list[str] = []
        for name, piece in (
            ("kafka", KafkaSettings),
            ("postgres", PostgresSettings),
            ("match", MatchSettings),
            ("metrics", MetricsSettings),
            ("local", LocalServicesSettings),
            ("ingest", IngestSettings),
            ("pager", PagerSettings),
            ("twilio", TwilioSettings),
        ):
            try:
                pieces[name] = piece()
            except ValidationError as exc:
                prefix = str(piece.model_config.get("env_prefix", ""))
                for error in exc.errors():
                    variable = prefix + "_".join(str(part) for part in error["loc"][:1]).upper()
                    problems.append(f"{variable}: {error['msg']}")
        if problems:
            raise ConfigurationError("invalid configuration:\n  " + "\n  ".join(problems))
        return cls(**pieces)  # type: ignore[arg-type]  # keys and types are the fields above
