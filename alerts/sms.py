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
Any other is reconciled: :meth:`SmsProvider.find` looks for the message (the recipient, the body — every
page SMS carries its own reply code; a message another notification already owns is not this one's —
created since the first attempt) before anything is sent again,
and :meth:`SmsProvider.status` asks for the status of a message whose callback never came.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
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


@dataclass(frozen=True, slots=True)
class DeliveryStatus:
    """What the provider says of a message it accepted.

    Attributes:
        status: the provider's word (Twilio: ``queued``, ``sent``, ``delivered``, ``undelivered``…).
        error_code: the provider's error code for a failed delivery, if any.
        final: no later status will follow (delivered, undelivered, failed, canceled).
    """

    status: str
    error_code: str | None
    final: bool


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
    #: the longest one call may take, in seconds (its timeout): a claim's lease is longer than this.
    timeout_s: float

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

    async def find(self, to: str, body: str, since: datetime) -> SentSms | None:
        """Look for a message we may have created: to ``to``, from our sender, with exactly ``body``,
        created at or after ``since`` (the first attempt's claim). For a send whose outcome is unknown;
        call it only once every request that could have created it has landed.

        Args:
            to: the recipient in E.164 form.
            body: the text exactly as sent; it carries the notification's own reply code.
            since: no message of this notification is older.

        Returns:
            The message (its id and current status), or None when the provider has none.

        Raises:
            SmsError: the lookup failed; nothing is known (try again later).
        """
        ...

    async def status(self, provider_message_id: str) -> DeliveryStatus:
        """The current status of a message the provider accepted (a status callback that never came).

        Raises:
            SmsError: ``permanent`` when the provider has no such message, else the lookup failed.
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
    ``sent`` keeps every message, in order; lookups answer from it (a restarted demo has forgotten what
    it printed, and prints it again).
    """

    name = "console"
    timeout_s = 1.0

    def __init__(self, write: Callable[[str], None] = print) -> None:
        self._write = write
        self.sent: list[OutgoingSms] = []

    async def send(self, message: OutgoingSms) -> SentSms:
        """Print the message (the number masked) and return a fake ``SM…`` id; never fails."""
        sid = _console_sid(message)
        self.sent.append(message)
        self._write(f"SMS → {mask_number(message.to)} [{sid}]: {message.body}")
        return SentSms(provider_message_id=sid, status="queued")

    async def find(self, to: str, body: str, since: datetime) -> SentSms | None:  # noqa: ARG002  # all it has is what it printed
        """The printed message to ``to`` with this body, if this process printed one."""
        for message in reversed(self.sent):
            if message.to == to and message.body == body:
                return SentSms(provider_message_id=_console_sid(message), status="delivered")
        return None

    async def status(self, provider_message_id: str) -> DeliveryStatus:
        """Printed is delivered; an id this process never printed is unknown.

        Raises:
            SmsError: ``permanent``, for an id this process never printed.
        """
        if any(_console_sid(m) == provider_message_id for m in self.sent):
            return DeliveryStatus(status="delivered", error_code=None, final=True)
        raise SmsError(f"no printed message {provider_message_id}", kind="permanent", fault="provider")

    async def close(self) -> None:
        """Nothing to release."""


def _console_sid(message: OutgoingSms) -> str:
    return "SM" + hashlib.sha256(message.idempotency_key.encode()).hexdigest()[:32]
