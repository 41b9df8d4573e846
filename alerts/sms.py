"""The SMS provider interface: what is sent, what comes back, and how a send fails.

Callers (escalation, the demo) depend on :class:`SmsProvider` only; the Twilio adapter
(:mod:`alerts.twilio_sms`) is the one module that imports the vendor SDK, and translates its errors into
:class:`SmsError`. Failures are told apart by what the caller should do next, not by vendor codes::

    SeizewatchError
    └── SmsError                      kind says what to do next, fault says whose it is
          kind="retriable"            the same send may succeed later (429, 5xx, never connected)
          kind="permanent"            this recipient cannot be reached by SMS: escalate now
          kind="ambiguous"            the provider may have accepted it: reconcile, never resend blindly
          kind="configuration"        credentials or sender are wrong: every send will fail

Creating a message is not idempotent. ``may_have_sent`` says whether the provider may have created the
message despite the error: only a failure with ``may_have_sent=False`` is safe to retry automatically.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol

from streams.errors import SeizewatchError

logger = logging.getLogger(__name__)

SmsErrorKind = Literal["retriable", "permanent", "ambiguous", "configuration"]
SmsFault = Literal["ours", "recipient", "provider"]

# Twilio's accepted range for ValidityPeriod, in seconds.
MIN_VALIDITY_S = 1
MAX_VALIDITY_S = 36000


@dataclass(frozen=True, slots=True)
class OutgoingSms:
    """One SMS to one recipient.

    Attributes:
        to: the recipient in E.164 form, e.g. ``+8613800138000``.
        body: the text, already sized by :mod:`alerts.messages`.
        idempotency_key: recorded by the caller *before* sending; passed for logging and tracing only
            (the provider has no idempotent create).
        status_callback_url: the public URL the provider posts delivery statuses to, if any.
        validity_period_s: how long the message may wait in the provider's queue before it expires
            (1..36000 s); set near the escalation wait so a late page never arrives after someone else
            took the car. ``None``: the provider's default (10 hours for Twilio).

    Raises:
        ValueError: on an empty body or a validity period outside 1..36000 s.
    """

    to: str
    body: str
    idempotency_key: str
    status_callback_url: str | None
    validity_period_s: int | None

    def __post_init__(self) -> None:
        if not self.body:
            raise ValueError("an SMS body cannot be empty")
        if self.validity_period_s is not None and not (
            MIN_VALIDITY_S <= self.validity_period_s <= MAX_VALIDITY_S
        ):
            raise ValueError(
                f"validity_period_s must be within {MIN_VALIDITY_S}..{MAX_VALIDITY_S}, "
                f"not {self.validity_period_s}"
            )


@dataclass(frozen=True, slots=True)
class SentSms:
    """The provider accepted the message.

    Attributes:
        provider_message_id: the provider's id (Twilio's ``MessageSid``); status callbacks carry it.
        status: the provider's initial status, e.g. ``queued`` or ``accepted``. No callback is sent for
            it, so the caller records it as the first status.
    """

    provider_message_id: str
    status: str


class SmsError(SeizewatchError):
    """A send failed; ``kind`` says what to do next, ``fault`` whose problem it is.

    Attributes:
        kind: ``retriable`` (a later identical attempt may succeed: 429, 5xx, connection refused),
            ``permanent`` (this recipient cannot be reached by SMS: escalate now), ``ambiguous`` (a
            timeout or broken connection after the request may have reached the provider: do not resend
            blindly, reconcile first), ``configuration`` (credentials, account or sender are wrong).
        code: the provider's error code as text (``"21211"``), ``None`` when there is none.
        fault: ``ours`` (our configuration or request), ``recipient`` (the number), ``provider``.
        may_have_sent: the provider may have created the message anyway (an answer from its servers
            that is not a clear refusal, or no answer at all). Retrying such a failure can send a second
            SMS; only ``retriable`` errors with ``may_have_sent=False`` are safe to retry automatically.
        http_status: the HTTP status of the provider's answer, if there was one.
        retriable: ``kind == "retriable"`` (the project-wide flag).
    """

    def __init__(
        self,
        message: str,
        *,
        kind: SmsErrorKind,
        fault: SmsFault,
        code: str | None = None,
        may_have_sent: bool = False,
        http_status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.kind: SmsErrorKind = kind
        self.fault: SmsFault = fault
        self.code = code
        self.may_have_sent = may_have_sent or kind == "ambiguous"
        self.http_status = http_status
        self.retriable = kind == "retriable"

    def __repr__(self) -> str:
        return (
            f"SmsError({str(self)!r}, kind={self.kind!r}, fault={self.fault!r}, code={self.code!r}, "
            f"may_have_sent={self.may_have_sent!r}, http_status={self.http_status!r})"
        )


class SmsProvider(Protocol):
    """Sends SMS. Implementations: :class:`alerts.twilio_sms.TwilioSms`, :class:`ConsoleSms`.

    A provider owns its HTTP client: call :meth:`close` when done (``try``/``finally``).
    """

    #: short stable name for logs and metric labels, e.g. ``"twilio"``.
    name: str

    async def send(self, message: OutgoingSms) -> SentSms:
        """Hand one message to the provider. Never retries by itself.

        Args:
            message: the message; its idempotency key must already be recorded by the caller.

        Returns:
            The provider's id and initial status.

        Raises:
            SmsError: see its ``kind`` for what to do next. An ``ambiguous`` error means the message may
                exist: reconcile by status before resending.
        """
        ...

    async def close(self) -> None:
        """Release the provider's connections. Idempotent."""
        ...


def mask_number(number: str) -> str:
    """A phone number fit for logs: ``+8613800138000`` → ``+86138****8000``."""
    if len(number) <= 7:
        return "*" * len(number)
    return number[:-8] + "****" + number[-4:]


class ConsoleSms(SmsProvider):
    """Prints what would be sent instead of sending it (the demo without credentials).

    Ids are deterministic (derived from the idempotency key), so a demo run reads the same every time.
    ``sent`` keeps every message, in order.
    """

    name = "console"

    def __init__(self, write: Callable[[str], None] = print) -> None:
        self._write = write
        self.sent: list[OutgoingSms] = []

    async def send(self, message: OutgoingSms) -> SentSms:
        """Print the message (the number masked) and return a fake ``SM…`` id; never fails."""
        sid = "SM" + hashlib.sha256(message.idempotency_key.encode()).hexdigest()[:32]
        self.sent.append(message)
        self._write(f"SMS → {mask_number(message.to)} [{sid}]: {message.body}")
        return SentSms(provider_message_id=sid, status="queued")

    async def close(self) -> None:
        """Nothing to release."""
