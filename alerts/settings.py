"""``SEIZEWATCH_PAGER_*`` and ``SEIZEWATCH_TWILIO_*``: who is paged how fast, and through which gateway."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

# A guessable bearer token is no token: this many characters at least.
MIN_API_TOKEN_LENGTH = 24
_OPERATOR_ID = re.compile(r"^[a-z0-9][a-z0-9._-]{0,31}$")
_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")


@dataclass(frozen=True, slots=True)
class Operator:
    """One of the system's own on-call operators, texted when Alertmanager reports an alert."""

    operator_id: str
    phone: str  # E.164

    def __repr__(self) -> str:  # the number stays out of logs and tracebacks
        return f"Operator({self.operator_id!r})"


def parse_operators(value: object) -> object:
    """``id:+8613800000000,id2:+8613900000000`` → operators; anything else is left to pydantic.

    Raises:
        ValueError: an entry is not ``id:+E164``, or an id or a number repeats.
    """
    if not isinstance(value, str):
        return value
    operators: list[Operator] = []
    for entry in (part.strip() for part in value.split(",")):
        if not entry:
            continue
        operator_id, sep, phone = (piece.strip() for piece in entry.partition(":"))
        if not sep or not _OPERATOR_ID.match(operator_id) or not _E164.match(phone):
            # The entry itself is not repeated: it carries a phone number.
            raise ValueError(
                f"entry {len(operators) + 1} is not id:+E164 (id of a-z 0-9 . _ -; ops-wang:+8613800000000)"
            )
        operators.append(Operator(operator_id, phone))
    for name, values in (
        ("id", [o.operator_id for o in operators]),
        ("number", [o.phone for o in operators]),
    ):
        if len(set(values)) != len(values):
            raise ValueError(f"an operator {name} appears twice")
    return tuple(operators)


def _blank_to_none(value: object) -> object:
    """A blank variable (``SEIZEWATCH_TWILIO_AUTH_TOKEN=``) is unset, never a secret of zero length."""
    if isinstance(value, str) and not value.strip():
        return None
    return value


class PagerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SEIZEWATCH_PAGER_", frozen=True, extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=8471, ge=0, le=65535)
    # The address the SMS provider calls back (status callbacks, inbound replies): what it signs.
    public_url: str = "http://127.0.0.1:8471"
    # No acknowledgement within this long → the next escalation step.
    ack_timeout_s: int = Field(default=300, ge=5, le=3600)
    # Pages waiting at the provider expire after this long (Twilio validity period, 1..36000 s), so a page
    # never arrives after someone else took the car.
    validity_period_s: int = Field(default=600, ge=1, le=36000)
    # Sends of one notification (a send found absent at the provider after a 5xx counts too).
    max_send_attempts: int = Field(default=5, ge=1, le=20)
    # SMS one pager hands to the provider at once: a slow provider delays a page by one call, not by the
    # queue ahead of it. A pager claims only as many as it can send now.
    send_concurrency: int = Field(default=8, ge=1, le=64)
    # How long after a request was given up (timeout, broken connection, a crash) it may still land at
    # the provider and show in its list. A claim's lease is the provider's timeout plus this; a send whose
    # outcome is unknown is looked up only then, so "not found" means not sent. 15 s is taken to cover a
    # request still in transit and the list showing a new message (raise it if a lookup ever misses a
    # message the provider has: a second SMS follows); a pager killed mid-send has its SMS looked up, and
    # the absent ones sent, 25 s after they were claimed with the default 10 s timeout.
    in_flight_margin_s: float = Field(default=15.0, gt=0, le=600)
    # A sent SMS whose status callback brought no final status this long after the provider accepted it
    # is looked up by its id (again after twice as long, …, until its validity period is over).
    status_lookup_after_s: int = Field(default=120, ge=1, le=3600)
    poll_interval_s: float = Field(default=1.0, gt=0, le=60)
    # A vehicle with a live task seen at a new place within this long of the last update is only trailed.
    task_suppress_window_s: int = Field(default=600, ge=0, le=86400)
    # An open task nobody took, whose vehicle has not been seen for this long, expires.
    task_expiry_h: int = Field(default=24, ge=1, le=24 * 30)
    # Bearer token of the acknowledgement API (command centre integrations) and of Alertmanager's webhook.
    # Unset or empty: the API refuses.
    api_token: SecretStr | None = None
    # The system's own on-call operators, texted about alerts on seizewatch itself
    # (alerts/operator_alerts.py): `id:+E164` pairs, comma-separated. None: Alertmanager is refused (503).
    operators: Annotated[tuple[Operator, ...], NoDecode] = ()

    @field_validator("operators", mode="before")
    @classmethod
    def _parse_operators(cls, value: object) -> object:
        return parse_operators(value)

    @field_validator("api_token", mode="before")
    @classmethod
    def _token_or_unset(cls, value: object) -> object:
        return _blank_to_none(value)

    @field_validator("api_token")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < MIN_API_TOKEN_LENGTH:
            raise ValueError(
                f"SEIZEWATCH_PAGER_API_TOKEN must be at least {MIN_API_TOKEN_LENGTH} characters "
                "(openssl rand -hex 32)"
            )
        return value


class TwilioSettings(BaseSettings):
    """Unset account: the console sender prints what would be sent (the demo)."""

    model_config = SettingsConfigDict(env_prefix="SEIZEWATCH_TWILIO_", frozen=True, extra="forbid")

    account_sid: str | None = None
    auth_token: SecretStr | None = None
    # A sending number (E.164) or a Messaging Service SID (MG…).
    sender: str | None = None
    # Another Messages API endpoint (a regional edge or a local test server); Twilio's own when unset.
    api_base_url: str | None = None
    timeout_s: float = Field(default=10.0, gt=0, le=60)

    @field_validator("account_sid", "auth_token", "sender", "api_base_url", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        return _blank_to_none(value)

    @model_validator(mode="after")
    def _complete(self) -> TwilioSettings:
        given = [self.account_sid is not None, self.auth_token is not None, self.sender is not None]
        if any(given) and not all(given):
            raise ValueError(
                "set SEIZEWATCH_TWILIO_ACCOUNT_SID, SEIZEWATCH_TWILIO_AUTH_TOKEN and "
                "SEIZEWATCH_TWILIO_SENDER together (or none, for the console sender)"
            )
        return self

    @property
    def configured(self) -> bool:
        return self.account_sid is not None
