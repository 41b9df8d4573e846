"""Settings of the core: Kafka, PostgreSQL and matching, each read from its own environment prefix."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from streams.matching import MatchKind

_TOPIC_PREFIX = re.compile(r"^[A-Za-z0-9._-]*$")
_INSTANCE_ID = re.compile(r"^[A-Za-z0-9._-]{1,200}$")


class KafkaSettings(BaseSettings):
    """``SEIZEWATCH_KAFKA_*``: where the broker is and how topics are named."""

    model_config = SettingsConfigDict(env_prefix="SEIZEWATCH_KAFKA_", frozen=True, extra="forbid")

    bootstrap_servers: str = "127.0.0.1:19092"
    # Prepended to every topic name: lets tests and several deployments share one broker.
    topic_prefix: str = ""
    client_id: str = "seizewatch"
    # Static membership of this process in its consumer groups (streams/consumers.py): a name of its own,
    # stable across its restarts and unique among the group's processes (worker-1, worker-2, pager-1…).
    # A process back under its name within a session takes its partitions back without a rebalance.
    # Unset: dynamic membership (a killed member's partitions wait out its session).
    instance_id: str | None = None
    # How long the group coordinator waits for a silent member before giving its partitions to others
    # (the broker accepts 6 s to 30 min by default).
    session_timeout_ms: int = Field(default=10_000, ge=6_000, le=1_800_000)

    @field_validator("instance_id", mode="before")
    @classmethod
    def _check_instance_id(cls, value: object) -> object:
        if isinstance(value, str):
            value = value.strip() or None  # `KEY=` in an env file: not set, as for the secrets
            if value is not None and not _INSTANCE_ID.match(value):
                raise ValueError(
                    "must be 1-200 letters, digits, '.', '_' or '-' (or unset: dynamic membership)"
                )
        return value

    @field_validator("topic_prefix")
    @classmethod
    def _check_prefix(cls, value: str) -> str:
        if not _TOPIC_PREFIX.match(value):
            raise ValueError("may contain only letters, digits, '.', '_' and '-'")
        return value

    def topic(self, name: str) -> str:
        """The real name of the declared topic ``name``."""
        return f"{self.topic_prefix}{name}"


class PostgresSettings(BaseSettings):
    """``SEIZEWATCH_PG_*``: the system of record."""

    model_config = SettingsConfigDict(env_prefix="SEIZEWATCH_PG_", frozen=True, extra="forbid")

    # The local development cluster trusts loopback connections; a deployment puts its password here.
    dsn: SecretStr = SecretStr("postgresql://seizewatch@127.0.0.1:55432/seizewatch")
    pool_min_size: int = Field(default=1, ge=1)
    pool_max_size: int = Field(default=10, ge=1)


class MatchSettings(BaseSettings):
    """``SEIZEWATCH_MATCH_*``: which reads match an entry, and which matches become hits."""

    model_config = SettingsConfigDict(env_prefix="SEIZEWATCH_MATCH_", frozen=True, extra="forbid")

    # Comma-separated match kinds that produce hits. Not the OCR kinds by default: in a densely issued
    # plate space a watched plate has about four look-alikes on the road (same skeleton), each read as
    # often as it, so an ocr match is a misread of the watched car a few times in a thousand; paging on
    # them teaches officers to ignore pages. Enable them where someone checks the image before anyone
    # is sent (docs/configuration.md, docs/performance.md).
    hit_kinds: Annotated[frozenset[MatchKind], NoDecode] = frozenset({MatchKind.EXACT, MatchKind.PROVINCE})
    # A match below this score produces no hit.
    min_score: float = Field(default=0.6, ge=0.0, le=1.0)
    # when_missing: the kinds that ignore the province (province, ocr_province) apply only to reads
    # without a province character; always: to every read (a small watchlist can afford it). With a
    # province-scale watchlist "always" matches a fifth of all reads (docs/performance.md).
    province_kinds: Literal["when_missing", "always"] = "when_missing"
    # batch: aiokafka's consumer group, a batch at a time (streams.batchworker); faust: the previous
    # engine, one event at a time (streams.app), kept to compare (docs/benchmarks.md).
    engine: Literal["batch", "faust"] = "batch"
    # Most reads handled per partition batch before its offsets are committed (batch engine).
    batch_size: int = Field(default=2000, ge=1, le=100_000)

    @property
    def across_provinces(self) -> bool:
        """Whether a read with a province may match an entry of another province."""
        return self.province_kinds == "always"

    @property
    def fuzzy_hits(self) -> bool:
        """Whether an OCR kind (``ocr``, ``ocr_province``) makes hits. When neither does, the match stage
        skips reads that only such a kind could match: not decoded, not matched (streams/matcher.py)."""
        return bool(self.hit_kinds & {MatchKind.OCR, MatchKind.OCR_PROVINCE})

    @field_validator("hit_kinds", mode="before")
    @classmethod
    def _split_kinds(cls, value: object) -> object:
        if isinstance(value, str):
            names = [part.strip() for part in value.split(",") if part.strip()]
            known = {kind.value for kind in MatchKind}
            unknown = [name for name in names if name not in known]
            if unknown:
                raise ValueError(f"unknown match kind(s) {unknown}; known: {sorted(known)}")
            return frozenset(MatchKind(name) for name in names)
        return value
