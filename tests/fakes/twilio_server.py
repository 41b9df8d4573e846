"""A fake Twilio: a real HTTP server on loopback speaking the Messages API, and the webhooks Twilio sends.

The test double of the far end (GoAlert ships one the same way): :class:`alerts.twilio_sms.TwilioSms`
talks HTTP to it exactly as to api.twilio.com, and it calls the application back with status callbacks and
inbound SMS signed like Twilio's. It signs with its own implementation of Twilio's algorithm, independent
of the twilio library, so a test can check one against the other.

Usage::

    async with FakeTwilio() as twilio:
        sms = TwilioSms(account_sid=twilio.account_sid, auth_token=SecretStr(twilio.auth_token),
                        sender=twilio.phone_number, api_base_url=twilio.base_url)
        twilio.fail_next(400, 21211, "The 'To' number is not a valid phone number.")
        ...
        await twilio.deliver(sid)                       # POSTs to the message's StatusCallback
        await twilio.inbound(url, "+8613800138000", "1 K7Q")
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import hmac
import secrets
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from types import TracebackType
from typing import Any, Self

import httpx
from aiohttp import web

API_VERSION = "2010-04-01"


def twilio_signature(auth_token: str, url: str, params: Mapping[str, str]) -> str:
    """Twilio's webhook signature: HMAC-SHA1 (key: the auth token) over the URL followed by each form
    field's name and value, sorted by name; base64."""
    payload = url + "".join(name + params[name] for name in sorted(params))
    digest = hmac.new(auth_token.encode(), payload.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


@dataclass(frozen=True)
class RecordedRequest:
    """One request the fake received, whatever it answered."""

    method: str
    path: str
    form: dict[str, str]
    authorized: bool
    status: int  # what the fake answered (0 while it is still hanging)


@dataclass
class FakeMessage:
    """A message as the fake holds it (the fields of Twilio's message resource that matter here)."""

    sid: str
    to: str
    from_: str | None
    messaging_service_sid: str | None
    body: str
    status: str
    status_callback: str | None
    validity_period: int | None
    created_at: datetime
    error_code: int | None = None
    callbacks: list[str] = field(default_factory=list)  # statuses posted to the callback, in order


@dataclass
class _Failure:
    status: int
    code: int | None
    message: str
    times: int


class FakeTwilio:
    """A fake Twilio REST API on 127.0.0.1 (free port), as an async context manager.

    Attributes:
        account_sid, auth_token: the credentials it accepts (HTTP Basic auth); random unless given.
        phone_number: the account's number, used as ``To`` of inbound SMS.
        requests: every request received, in order.
        messages: messages created, by SID.
    """

    def __init__(
        self,
        *,
        account_sid: str | None = None,
        auth_token: str | None = None,
        phone_number: str = "+15005550006",
    ) -> None:
        self.account_sid = account_sid or "AC" + secrets.token_hex(16)
        self.auth_token = auth_token or secrets.token_hex(16)
        self.phone_number = phone_number
        self.requests: list[RecordedRequest] = []
        self.messages: dict[str, FakeMessage] = {}
        self._failures: list[_Failure] = []
        self._hangs: list[float] = []
        self._closing = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self._client: httpx.AsyncClient | None = None

    # ------------------------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> Self:
        app = web.Application()
        app.router.add_post(f"/{API_VERSION}/Accounts/{{account}}/Messages.json", self._create)
        app.router.add_get(f"/{API_VERSION}/Accounts/{{account}}/Messages/{{sid}}.json", self._fetch)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        self._port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()
        self._client = httpx.AsyncClient(timeout=10)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._closing.set()  # release hanging handlers
        try:
            if self._client is not None:
                await self._client.aclose()
        finally:
            if self._runner is not None:
                await self._runner.cleanup()

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``: give it to the client as its API base URL."""
        if self._port is None:
            raise RuntimeError("FakeTwilio is not started: use `async with`")
        return f"http://127.0.0.1:{self._port}"

    # ---------------------------------------------------------------------------- failure injection

    def fail_next(
        self, status: int, code: int | None = None, message: str = "injected failure", times: int = 1
    ) -> None:
        """Answer the next ``times`` authorized create requests with a Twilio error (nothing is created)."""
        self._failures.append(_Failure(status, code, message, times))

    def hang_next(self, seconds: float) -> None:
        """Create the next message, then wait ``seconds`` before answering: the client times out although
        the message exists (what makes a timeout ambiguous)."""
        self._hangs.append(seconds)

    # ------------------------------------------------------------------------------------- webhooks

    def sign(self, url: str, params: Mapping[str, str]) -> str:
        """The ``X-Twilio-Signature`` Twilio would send for this URL and form."""
        return twilio_signature(self.auth_token, url, params)

    async def deliver(
        self, sid: str, status: str = "delivered", error_code: int | None = None
    ) -> httpx.Response:
        """POST a status callback for message ``sid`` to its StatusCallback, signed; return the answer.

        Raises:
            KeyError: no such message.
            ValueError: the message was sent without a StatusCallback.
        """
        message = self.messages[sid]
        if message.status_callback is None:
            raise ValueError(f"message {sid} has no StatusCallback")
        message.status = status
        message.error_code = error_code
        message.callbacks.append(status)
        form = {
            "AccountSid": self.account_sid,
            "ApiVersion": API_VERSION,
            "MessageSid": sid,
            "SmsSid": sid,
            "MessageStatus": status,
            "SmsStatus": status,
            "To": message.to,
            "From": message.from_ or self.phone_number,
        }
        if message.messaging_service_sid:
            form["MessagingServiceSid"] = message.messaging_service_sid
        if error_code is not None:
            form["ErrorCode"] = str(error_code)
        return await self._post_webhook(message.status_callback, form, forged=False)

    async def inbound(
        self, to_url: str, from_: str, body: str, *, to: str | None = None, forged: bool = False
    ) -> httpx.Response:
        """POST an incoming SMS webhook (as configured on the number) to ``to_url``; return the answer.

        ``forged``: signed with another key, as an attacker without the auth token would.
        """
        sid = "SM" + secrets.token_hex(16)
        form = {
            "AccountSid": self.account_sid,
            "ApiVersion": API_VERSION,
            "MessageSid": sid,
            "SmsSid": sid,
            "SmsMessageSid": sid,
            "SmsStatus": "received",
            "From": from_,
            "To": to or self.phone_number,
            "Body": body,
            "NumMedia": "0",
            "NumSegments": str(_num_segments(body)),
        }
        return await self._post_webhook(to_url, form, forged=forged)

    async def _post_webhook(self, url: str, form: dict[str, str], *, forged: bool) -> httpx.Response:
        if self._client is None:
            raise RuntimeError("FakeTwilio is not started: use `async with`")
        key = secrets.token_hex(16) if forged else self.auth_token
        headers = {
            "X-Twilio-Signature": twilio_signature(key, url, form),
            "I-Twilio-Idempotency-Token": secrets.token_hex(16),
            "User-Agent": "TwilioProxy/1.1",
        }
        return await self._client.post(url, data=form, headers=headers)

    # -------------------------------------------------------------------------------------- the API

    def _authorized(self, request: web.Request) -> bool:
        scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            sid, _, token = base64.b64decode(credentials, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        return (
            hmac.compare_digest(sid, self.account_sid)
            and hmac.compare_digest(token, self.auth_token)
            and request.match_info["account"] == self.account_sid
        )

    async def _create(self, request: web.Request) -> web.Response:
        form = {name: str(value) for name, value in (await request.post()).items()}
        authorized = self._authorized(request)
        index = len(self.requests)
        self.requests.append(RecordedRequest(request.method, request.path, form, authorized, 0))
        response = await self._answer_create(form, authorized)
        self.requests[index] = RecordedRequest(
            request.method, request.path, form, authorized, response.status
        )
        return response

    async def _answer_create(self, form: dict[str, str], authorized: bool) -> web.Response:
        if not authorized:
            response = _error(401, 20003, "Authenticate")
            response.headers["WWW-Authenticate"] = 'Basic realm="Twilio API"'
            return response
        if self._failures:
            failure = self._failures[0]
            failure.times -= 1
            if failure.times <= 0:
                self._failures.pop(0)
            return _error(failure.status, failure.code, failure.message)
        problem = _invalid(form)
        if problem is not None:
            return problem
        message = self._store(form)
        if self._hangs:
            seconds = self._hangs.pop(0)
            with contextlib.suppress(TimeoutError):  # the time is up, or the fake is closing
                await asyncio.wait_for(self._closing.wait(), seconds)
        return web.json_response(self._resource(message), status=201)

    async def _fetch(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return _error(401, 20003, "Authenticate")
        message = self.messages.get(request.match_info["sid"])
        if message is None:
            return _error(404, 20404, "The requested resource was not found")
        return web.json_response(self._resource(message))

    def _store(self, form: dict[str, str]) -> FakeMessage:
        sid = "SM" + secrets.token_hex(16)
        service = form.get("MessagingServiceSid")
        validity = form.get("ValidityPeriod")
        message = FakeMessage(
            sid=sid,
            to=form["To"],
            from_=form.get("From"),
            messaging_service_sid=service,
            body=form["Body"],
            # A Messaging Service picks the sender later: Twilio answers "accepted" then.
            status="accepted" if service and not form.get("From") else "queued",
            status_callback=form.get("StatusCallback"),
            validity_period=int(validity) if validity else None,
            created_at=datetime.now(UTC),
        )
        self.messages[sid] = message
        return message

    def _resource(self, message: FakeMessage) -> dict[str, Any]:
        created = format_datetime(message.created_at, usegmt=True)
        uri = f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{message.sid}.json"
        return {
            "account_sid": self.account_sid,
            "api_version": API_VERSION,
            "body": message.body,
            "date_created": created,
            "date_sent": None,
            "date_updated": created,
            "direction": "outbound-api",
            "error_code": message.error_code,
            "error_message": None,
            "from": message.from_,
            "messaging_service_sid": message.messaging_service_sid,
            "num_media": "0",
            "num_segments": str(_num_segments(message.body)),
            "price": None,
            "price_unit": "USD",
            "sid": message.sid,
            "status": message.status,
            "subresource_uris": {"media": uri.replace(".json", "/Media.json")},
            "to": message.to,
            "uri": uri,
        }


def _error(status: int, code: int | None, message: str) -> web.Response:
    """Twilio's error body: code, message, more_info, status."""
    more_info = f"https://www.twilio.com/docs/errors/{code}" if code is not None else None
    return web.json_response(
        {"code": code, "message": message, "more_info": more_info, "status": status}, status=status
    )


def _invalid(form: dict[str, str]) -> web.Response | None:
    """Twilio's own checks of a create request, for the parameters this project sends."""
    if not form.get("To"):
        return _error(400, 21604, "A 'To' phone number is required.")
    if not form.get("From") and not form.get("MessagingServiceSid"):
        return _error(400, 21603, "A 'From' phone number is required.")
    if not form.get("Body"):
        return _error(400, 21602, "Message body is required.")
    if len(form["Body"]) > 1600:
        return _error(400, 21617, "The concatenated message body exceeds the 1600 character limit.")
    validity = form.get("ValidityPeriod")
    if validity is not None and not (validity.isdigit() and 1 <= int(validity) <= 36000):
        return _error(400, 21624, f"Invalid validity period value: {validity} (1..36000).")
    return None


def _num_segments(body: str) -> int:
    """Twilio's count, roughly: ASCII as GSM-7 (160 / 153 per part), anything else UCS-2 (70 / 67)."""
    if body.isascii():
        return 1 if len(body) <= 160 else -(-len(body) // 153)
    units = len(body.encode("utf-16-le")) // 2
    return 1 if units <= 70 else -(-units // 67)
