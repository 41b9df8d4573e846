"""The Twilio adapter: the only module that imports the twilio SDK.

It sends through ``client.messages.create_async`` and translates every failure into
:class:`alerts.sms.SmsError`, looks messages up for reconciliation (the Messages list filtered by ``To``
and ``From``, newest first; one message by SID), and checks the signature of Twilio's webhooks. Decisions
that the SDK's defaults would get wrong:

- ``AsyncTwilioHttpClient`` ignores the timeout given to its constructor (twilio-python issue #925) and
  hands aiohttp ``timeout=None``, which means no timeout at all: :class:`_HttpClient` applies ours, with
  a separate connect timeout so "never reached Twilio" is told apart from "no answer".
- No ``max_retries``: the SDK's retry re-sends after a server error, and creating a message is not
  idempotent. Retrying is the caller's decision, made from :attr:`SmsError.may_have_sent`.
- ``Client`` falls back to ``os.environ`` (``TWILIO_REGION``, ``TWILIO_EDGE``…) when given no environment;
  it gets an explicit one so configuration comes only from the settings object.
- A local server (tests, :mod:`tests.fakes.twilio_server`) is reached by a custom ``http_client`` that
  rewrites ``https://api.twilio.com``, the way Twilio documents for custom clients.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, Final, Self
from urllib.parse import urlsplit

import aiohttp
from pydantic import SecretStr
from twilio.base.exceptions import (  # type: ignore[import-untyped]  # twilio ships no type information
    TwilioException,
    TwilioRestException,
    TwilioServiceException,
)
from twilio.http import AsyncHttpClient  # type: ignore[import-untyped]
from twilio.http.response import Response  # type: ignore[import-untyped]
from twilio.request_validator import RequestValidator  # type: ignore[import-untyped]
from twilio.rest import Client  # type: ignore[import-untyped]

from alerts.sms import (
    DeliveryStatus,
    OutgoingSms,
    SentSms,
    SmsError,
    SmsErrorKind,
    SmsFault,
    SmsProvider,
    mask_number,
)
from streams.errors import ConfigurationError

logger = logging.getLogger(__name__)

TWILIO_API: Final = "https://api.twilio.com"

# Error codes Twilio answers at send time (https://www.twilio.com/docs/api/errors).
# This recipient cannot get SMS from us, whatever we retry: escalate to the next person now.
_RECIPIENT_CODES: Final = frozenset(
    {
        21211,  # invalid 'To' number
        21610,  # the recipient replied STOP
        21612,  # 'To' not reachable via SMS (from this sender)
        21614,  # 'To' is not a mobile number
        21635,  # 'To' is a landline
    }
)
# Permanent for this message, and our doing: escalating still helps (maybe another number works), but
# someone must fix the account.
_OURS_PERMANENT_CODES: Final = frozenset(
    {
        21408,  # SMS to this region is not enabled in the account's geo permissions
    }
)
# Every send will fail until the configuration changes.
_CONFIGURATION_CODES: Final = frozenset(
    {
        20003,  # authentication failed
        20404,  # account (or resource) not found: wrong account SID
        21606,  # 'From' is not an SMS-capable number of this account
        21660,  # 'From' does not belong to this account
    }
)
_TOO_MANY_REQUESTS: Final = 20429

#: Order of message statuses: a status callback may move a message only to a higher rank (callbacks
#: arrive out of order and more than once). ``delivered``, ``undelivered``, ``failed`` and ``canceled``
#: are terminal and share the top rank, so nothing moves a message out of them.
STATUS_RANK: Final[Mapping[str, int]] = {
    "accepted": 0,  # a Messaging Service took it and has not picked a sender yet
    "scheduled": 0,
    "queued": 1,
    "sending": 2,
    "sent": 3,
    "delivered": 4,
    "undelivered": 4,
    "failed": 4,
    "canceled": 4,
}
FAILURE_STATUSES: Final = frozenset({"undelivered", "failed"})
_FINAL_RANK: Final = 4

# A lookup compares Twilio's date_created (whole seconds, Twilio's clock) with our claim time: this much
# earlier still counts, so neither the rounding nor a clock a little off makes a message look absent.
LOOKUP_CLOCK_SLACK: Final = timedelta(minutes=5)
# Messages to one recipient read per lookup at most (50 a page): more than that since the claim is not
# a page's SMS being looked for but something else, and "absent" must never be guessed.
_LOOKUP_PAGE_SIZE: Final = 50
_LOOKUP_MAX_PAGES: Final = 20


def status_is_failure(status: str) -> bool:
    """Whether a callback status means the SMS will not arrive (``undelivered``, ``failed``).

    Escalation is driven by acknowledgement, not delivery; a failure only lets it move on sooner.
    """
    return status in FAILURE_STATUSES


def status_is_final(status: str) -> bool:
    """Whether no later status will follow (delivered, undelivered, failed, canceled)."""
    return STATUS_RANK.get(status) == _FINAL_RANK


def status_advances(current: str | None, new: str) -> bool:
    """Whether a callback's ``new`` status should replace ``current`` (``None``: nothing recorded).

    Unknown statuses never replace a known one: they are logged by the caller, not trusted.
    """
    if new not in STATUS_RANK:
        return False
    if current is None or current not in STATUS_RANK:
        return True
    return STATUS_RANK[new] > STATUS_RANK[current]


def validate_signature(
    auth_token: SecretStr, url: str, params: Mapping[str, str], signature: str | None
) -> bool:
    """Check a webhook's ``X-Twilio-Signature``.

    Args:
        auth_token: the account's auth token.
        url: the public URL Twilio called, exactly (scheme, host, path and query as Twilio saw them; it
            differs from the local one behind a proxy).
        params: the form fields of the POST.
        signature: the ``X-Twilio-Signature`` header, ``None`` when absent.

    Returns:
        True only for a signature made with this token over this URL and these fields.

    Raises:
        ConfigurationError: the token is empty. A webhook must then be refused; there is no weaker check.
    """
    token = auth_token.get_secret_value()
    if not token:
        raise ConfigurationError("no Twilio auth token configured: webhooks cannot be verified")
    if not signature:
        return False
    return bool(RequestValidator(token).validate(url, dict(params), signature))


def sign_webhook(auth_token: SecretStr, url: str, params: Mapping[str, str]) -> str:
    """The ``X-Twilio-Signature`` Twilio would send for a POST of ``params`` to ``url`` (what
    :func:`validate_signature` checks): for simulating a webhook, e.g. ``seizewatch reply``.

    Raises:
        ConfigurationError: the token is empty.
    """
    token = auth_token.get_secret_value()
    if not token:
        raise ConfigurationError("no Twilio auth token configured: a webhook cannot be signed")
    return str(RequestValidator(token).compute_signature(url, dict(params)))


class _HttpClient(AsyncHttpClient):  # type: ignore[misc]  # the SDK's base class is untyped
    """An aiohttp client for the SDK whose timeout applies, optionally aimed at another API host.

    Not a subclass of ``AsyncTwilioHttpClient``: its ``request`` drops the client's timeout (issue #925)
    and takes only a total, so a connect timeout (nothing sent) could not be told from a read timeout
    (maybe sent). Here connecting gets half the budget and fails with ``ConnectionTimeoutError``.
    """

    def __init__(self, *, timeout_s: float, api_base_url: str | None) -> None:
        super().__init__(logger, True, timeout_s)
        self._client_timeout = aiohttp.ClientTimeout(total=timeout_s, connect=timeout_s / 2)
        self._base = api_base_url.rstrip("/") if api_base_url else None
        # Created on first use: aiohttp sessions belong to the running event loop.
        self._session: aiohttp.ClientSession | None = None

    async def request(
        self,
        method: str,
        uri: str,
        params: dict[str, Any] | None = None,
        data: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,  # noqa: ASYNC109  # the SDK's interface; applied below
        allow_redirects: bool = False,
    ) -> Response:
        if self._base is not None and uri.startswith(TWILIO_API + "/"):
            uri = self._base + uri[len(TWILIO_API) :]
        if self._session is None:
            self._session = aiohttp.ClientSession()
        client_timeout = (
            self._client_timeout
            if timeout is None
            else aiohttp.ClientTimeout(total=timeout, connect=timeout / 2)
        )
        headers = dict(headers or {})
        if auth is not None:
            # Built here: aiohttp 3.14 deprecates BasicAuth, and its replacement is not in older releases.
            credentials = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
            headers["Authorization"] = f"Basic {credentials}"
        async with self._session.request(
            method.upper(),
            uri,
            params=params,
            data=data,
            headers=headers,
            timeout=client_timeout,
            allow_redirects=allow_redirects,
        ) as response:
            text = await response.text()
        return Response(response.status, text, response.headers)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class TwilioSms(SmsProvider):
    """Sends SMS through Twilio's Messages API.

    Args:
        account_sid: ``AC…``.
        auth_token: the account's auth token.
        sender: a Twilio number in E.164 form (``From``) or a Messaging Service SID (``MG…``).
        api_base_url: another API host instead of ``https://api.twilio.com`` (tests, a local fake).
        timeout_s: the whole request; connecting may take half of it (failing then is retriable: nothing
            was sent). Past it the outcome is unknown (ambiguous).

    Raises:
        ConfigurationError: naming the invalid argument.
    """

    name = "twilio"

    def __init__(
        self,
        *,
        account_sid: str,
        auth_token: SecretStr,
        sender: str,
        api_base_url: str | None = None,
        timeout_s: float = 10,
    ) -> None:
        if not account_sid.startswith("AC"):
            raise ConfigurationError(f"Twilio account SID must start with AC, not {account_sid[:2]!r}")
        if not auth_token.get_secret_value():
            raise ConfigurationError("Twilio auth token is empty")
        if not (sender.startswith("MG") or (sender.startswith("+") and sender[1:].isdigit())):
            raise ConfigurationError(
                "Twilio sender must be an E.164 number (+…) or a Messaging Service SID (MG…)"
            )
        if not timeout_s > 0:
            raise ConfigurationError(f"Twilio timeout must be positive, not {timeout_s}")
        if api_base_url is not None and urlsplit(api_base_url).scheme not in ("http", "https"):
            raise ConfigurationError(f"Twilio API base URL must be http(s)://…, not {api_base_url!r}")
        self._sender = sender
        self.timeout_s = timeout_s
        self._http = _HttpClient(timeout_s=timeout_s, api_base_url=api_base_url)
        self._client = Client(
            account_sid,
            auth_token.get_secret_value(),
            http_client=self._http,
            # Non-empty, so the SDK does not read TWILIO_* from os.environ.
            environment={"SEIZEWATCH": "Twilio settings come from seizewatch's settings object"},
        )

    async def send(self, message: OutgoingSms) -> SentSms:
        """Create the message at Twilio; never retries.

        Args:
            message: the message; its idempotency key is only logged.

        Returns:
            Twilio's ``MessageSid`` and initial status (``queued``, or ``accepted`` with a Messaging
            Service).

        Raises:
            SmsError: ``retriable`` (429/20429, 5xx, no connection), ``permanent`` (the recipient cannot
                be reached: 21211, 21610, 21612, 21614, 21635; or another refusal of our request),
                ``configuration`` (credentials, account, sender), ``ambiguous`` (timeout or broken
                connection after the request was sent: the message may exist).
        """
        sender = (
            {"messaging_service_sid": self._sender}
            if self._sender.startswith("MG")
            else {"from_": self._sender}
        )
        optional: dict[str, object] = {}
        if message.status_callback_url is not None:
            optional["status_callback"] = message.status_callback_url
        if message.validity_period_s is not None:
            optional["validity_period"] = message.validity_period_s
        try:
            created = await self._client.messages.create_async(
                to=message.to, body=message.body, **sender, **optional
            )
        except (TwilioRestException, TwilioServiceException) as exc:
            error = _from_twilio(exc, message.to)
        except aiohttp.ClientError as exc:
            error = _from_transport(exc)
        except TimeoutError as exc:
            error = SmsError(
                f"Twilio did not answer within {self.timeout_s} s: the message may have been created",
                kind="ambiguous",
                fault="provider",
            )
            error.__cause__ = exc
        except ValueError as exc:  # a 2xx whose body is not the message resource (JSON decoding)
            error = SmsError(f"unreadable answer from Twilio: {exc}", kind="ambiguous", fault="provider")
            error.__cause__ = exc
        else:
            sid, status = created.sid, created.status
            if not sid:
                raise SmsError("Twilio's answer carries no message SID", kind="ambiguous", fault="provider")
            logger.info(
                "SMS to %s accepted by Twilio as %s (%s), key %s",
                mask_number(message.to),
                sid,
                status,
                message.idempotency_key,
            )
            return SentSms(provider_message_id=str(sid), status=str(status or "queued"))
        logger.warning(
            "SMS to %s (key %s) failed: %s, %s fault, code %s: %s",
            mask_number(message.to),
            message.idempotency_key,
            error.kind,
            error.fault,
            error.code,
            error,
        )
        raise error

    async def find(self, to: str, body: str, since: datetime) -> SentSms | None:
        """Look through the messages to ``to`` from our sender, newest first, back to ``since`` (less
        :data:`LOOKUP_CLOCK_SLACK`), for one with exactly this body.

        With a Messaging Service as sender the list is filtered by ``To`` only (Twilio picks the number).

        Returns:
            The message's SID and current status, or None when there is none since then.

        Raises:
            SmsError: ``retriable``: the lookup failed (any answer but the list, no answer, or more
                messages than one lookup reads); nothing is known.
        """
        filters: dict[str, str] = {"to": to}
        if not self._sender.startswith("MG"):
            filters["from_"] = self._sender
        oldest = since - LOOKUP_CLOCK_SLACK
        try:
            page = await self._client.messages.page_async(page_size=_LOOKUP_PAGE_SIZE, **filters)
            for _ in range(_LOOKUP_MAX_PAGES):
                for message in page:
                    created = message.date_created
                    if isinstance(created, datetime) and created < oldest:
                        return None  # newest first: everything further is older still
                    if message.body == body and message.sid:
                        logger.info("lookup: the SMS to %s exists as %s (%s)", mask_number(to), message.sid,
                                    message.status)  # fmt: skip
                        return SentSms(provider_message_id=str(message.sid), status=str(message.status))
                page = await page.next_page_async()
                if page is None:
                    return None
        except (TwilioException, aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise _lookup_failed(exc, to) from exc
        raise SmsError(
            f"more than {_LOOKUP_PAGE_SIZE * _LOOKUP_MAX_PAGES} messages to {mask_number(to)} since"
            f" {oldest.isoformat()}: not looked through",
            kind="retriable",
            fault="provider",
        )

    async def status(self, provider_message_id: str) -> DeliveryStatus:
        """Fetch one message by SID: its status now.

        Raises:
            SmsError: ``permanent`` when Twilio has no such message (404), else ``retriable``.
        """
        try:
            message = await self._client.messages(provider_message_id).fetch_async()
        except TwilioRestException as exc:
            if int(exc.status) == 404:
                raise SmsError(
                    f"Twilio has no message {provider_message_id}", kind="permanent", fault="provider",
                    code=str(exc.code), http_status=404,
                ) from exc  # fmt: skip
            raise _lookup_failed(exc, "") from exc
        except (TwilioException, aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise _lookup_failed(exc, "") from exc
        status = str(message.status or "")
        code = message.error_code
        return DeliveryStatus(
            status=status, error_code=str(code) if code else None, final=status_is_final(status)
        )

    async def close(self) -> None:
        """Close the HTTP session. Idempotent."""
        await self._http.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


def _from_twilio(exc: TwilioRestException | TwilioServiceException, to: str) -> SmsError:
    """Twilio answered with an error: its HTTP status and code decide the kind."""
    status = int(exc.status)
    # Without a code in the body the SDK repeats the HTTP status as the code.
    code = int(exc.code) if isinstance(exc.code, int) and exc.code != status else None
    text = getattr(exc, "msg", None) or getattr(exc, "detail", None) or getattr(exc, "title", "")
    # Twilio's messages quote the number ("The 'To' number +86… is not valid"); ours end up in logs.
    text = str(text).replace(to, mask_number(to))
    message = f"Twilio refused the message (HTTP {status}, code {code}): {text}"

    def error(kind: SmsErrorKind, fault: SmsFault, *, may_have_sent: bool = False) -> SmsError:
        return SmsError(
            message,
            kind=kind,
            fault=fault,
            code=str(code) if code is not None else None,
            may_have_sent=may_have_sent,
            http_status=status,
        )

    if status == 429 or code == _TOO_MANY_REQUESTS:
        return error("retriable", "provider")
    if status >= 500:
        # Twilio's servers answered without a clear refusal: the message may exist.
        return error("retriable", "provider", may_have_sent=True)
    if code in _RECIPIENT_CODES:
        return error("permanent", "recipient")
    if code in _OURS_PERMANENT_CODES:
        return error("permanent", "ours")
    if code in _CONFIGURATION_CODES or status in (401, 403):
        return error("configuration", "ours")
    return error("permanent", "ours")


def _lookup_failed(exc: Exception, to: str) -> SmsError:
    """A lookup has no side effect: whatever went wrong, trying again later is safe."""
    text = str(exc).replace(to, mask_number(to)) if to else str(exc)
    status = getattr(exc, "status", None)
    return SmsError(
        f"Twilio lookup failed: {type(exc).__name__}: {text}",
        kind="retriable",
        fault="provider",
        http_status=int(status) if isinstance(status, int) else None,
    )


def _from_transport(exc: aiohttp.ClientError) -> SmsError:
    """No usable answer: did the request reach Twilio?"""
    error: SmsError
    if isinstance(exc, aiohttp.ClientSSLError):
        # TLS to the API failed before anything was sent: retrying will not fix a certificate.
        error = SmsError(f"TLS to Twilio failed: {exc}", kind="configuration", fault="ours")
    elif isinstance(exc, aiohttp.ClientConnectorError | aiohttp.ConnectionTimeoutError):
        # No connection was made (refused, DNS, connect timeout): nothing reached Twilio.
        error = SmsError(f"cannot connect to Twilio: {exc}", kind="retriable", fault="provider")
    else:
        # The connection broke after the request went out (server disconnected, reset, read timeout).
        error = SmsError(
            f"connection to Twilio broke after sending: {exc}", kind="ambiguous", fault="provider"
        )
    error.__cause__ = exc
    return error
