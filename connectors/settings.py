"""``SEIZEWATCH_INGEST_*``: the HTTP connectors and the backfill."""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class IngestSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SEIZEWATCH_INGEST_", frozen=True, extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=8470, ge=0, le=65535)
    # Every source's credential (API key, HMAC secret, digest password) is derived from this key and the
    # source's id and key version, so no credential is stored anywhere. Required to serve.
    master_key: SecretStr | None = None
    # How long a request may wait for Kafka to acknowledge before the sender gets 503 + Retry-After.
    produce_timeout_s: float = Field(default=5.0, gt=0, le=60)
    retry_after_s: int = Field(default=5, ge=1, le=3600)
    # A read observed longer ago than this when received is flagged late (history, not a page).
    freshness_s: int = Field(default=900, ge=1)
    max_json_bytes: int = Field(default=1 << 20, ge=1024)
    max_isapi_bytes: int = Field(default=8 << 20, ge=1024)  # multipart bodies carry pictures
    # How long a traffic-police POST waits, after Kafka acknowledged, for the pager to apply its results
    # and record their outcomes; a result not applied by then is answered "pending" (0: answer at once).
    traffic_outcome_wait_s: float = Field(default=3.0, ge=0, le=30)
    # GA/T 1400 registration lapses after this long without a keepalive.
    gat1400_registration_s: int = Field(default=180, ge=10)

    @field_validator("master_key")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 32:
            raise ValueError("must be at least 32 characters (e.g. `openssl rand -hex 32`)")
        return value
