"""A fake Twilio: a real HTTP server on loopback speaking the Messages API, and the webhooks Twilio sends.

The test double of the far end (GoAlert ships one the same way): :class:`alerts.twilio_sms.TwilioSms`
talks HTTP to it exactly as to api.twilio.com, and it calls the application back with status callbacks and
inbound SMS signed like Twilio's. It signs with its own implementation of Twilio's algorithm, independent
of the twilio library, so a test can check one against the other.

Usage::

    python -m tests.fakes.twilio_server [--port 8479] [--deliver]   # standalone: see main()

    async with FakeTwilio() as twilio:
        sms = TwilioSms(account_sid=twilio.account_sid, auth_token=SecretStr(twilio.auth_token),
                        sender=twilio.phone_number, api_base_url=twilio.base_url)
        twilio.fail_next(400, 21211, "The 'To' number is not a valid phone number.")
        twilio.faults = Faults(server_error=0.3)        # from now on, changeable while a pager sends
        twilio.hold(create_first=True)                  # sends wait at the fake until release()
        ...
        await twilio.deliver(sid)                       # POSTs to the message's StatusCallback
        twilio.set_status(sid, "undelivered", 30003)    # ...or changes it without a callback
        await twilio.inbound(url, "+8613800138000", "1 K7Q")

Besides creating messages it answers the two reads a sender reconciles with, as Twilio does: the list of
messages (``GET …/Messages.json`` filtered by ``To`` and ``From``, newest first, ``PageSize`` and
``next_page_uri`` paging) and one message by SID (``GET …/Messages/{Sid}.json``).

Faults are attributes and methods of the object, so a test drives them while a pager runs as another
process: a fraction of creates answered 5xx (with or without the message created: Twilio can create it
and still answer 500), created and then not answered past the client's timeout, refused for good
(21211), every create slowed down, sends held until released, lookups failing.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import contextlib
import hashlib
import hmac
import random
import secrets
import signal
import socket
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlencode

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
    query: dict[str, str] = field(default_factory=dict)  # of a GET


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
class Faults:
    """What the fake does to create requests, drawn per request (a seeded generator: the same run
    draws the same faults). Fractions add up to at most 1; the rest are answered normally.

    Attributes:
        server_error: answered 500, nothing created.
        server_error_after_create: the message is created, then answered 500 (its SID never told).
        timeout: the message is created, then no answer for ``hang_s`` (past the client's timeout).
        permanent: answered 400 with code 21211 (invalid 'To' number), nothing created.
        invalid_numbers: ``To`` numbers always answered 21211.
        delay_s: every create is answered this much later (a slow provider); the message is created
            when the answer goes out.
        hang_s: how long a ``timeout`` fault withholds its answer.
    """

    server_error: float = 0.0
    server_error_after_create: float = 0.0
    timeout: float = 0.0
    permanent: float = 0.0
    invalid_numbers: frozenset[str] = frozenset()
    delay_s: float = 0.0
    hang_s: float = 30.0


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
        faults: what happens to create requests (:class:`Faults`); replace it at any time.
        in_flight, max_in_flight: create requests being answered now, and the most at once.
    """

    def __init__(
        self,
        *,
        account_sid: str | None = None,
        auth_token: str | None = None,
        phone_number: str = "+15005550006",
        seed: int = 21,
        port: int = 0,
    ) -> None:
        self.account_sid = account_sid or "AC" + secrets.token_hex(16)
        self.auth_token = auth_token or secrets.token_hex(16)
        self.phone_number = phone_number
        self.requests: list[RecordedRequest] = []
        self.messages: dict[str, FakeMessage] = {}
        self._failures: list[_Failure] = []
        self._hangs: list[float] = []
        self.faults = Faults()
        self.random = random.Random(seed)
        self.in_flight = 0
        self.max_in_flight = 0
        self._gate: asyncio.Event | None = None  # set: held sends go on
        self._create_first = False
        self._held: list[web.Request] = []  # Request is a mapping: not hashable
        self._lookup_failures = 0
        self._closing = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._bind_port = port  # 0: a free one
        self._port: int | None = None
        self._client: httpx.AsyncClient | None = None

    # ------------------------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> Self:
        app = web.Application()
        app.router.add_post(f"/{API_VERSION}/Accounts/{{account}}/Messages.json", self._create)
        app.router.add_get(f"/{API_VERSION}/Accounts/{{account}}/Messages.json", self._list)
        app.router.add_get(f"/{API_VERSION}/Accounts/{{account}}/Messages/{{sid}}.json", self._fetch)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", self._bind_port))
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

    def hold(self, *, create_first: bool) -> None:
        """Hold every create request from now on until :meth:`release`.

        ``create_first``: the message is created when the request arrives and only the answer is held
        (the sender cannot know it exists); otherwise the request waits at the door, and one whose client
        has gone away by the release (a killed sender) is dropped, never created. Calling it again
        changes how requests arriving later are held.
        """
        if self._gate is None or self._gate.is_set():
            self._gate = asyncio.Event()
        self._create_first = create_first

    def release(self) -> None:
        """Let the held create requests go on (see :meth:`hold`); later ones are not held."""
        if self._gate is not None:
            self._gate.set()
        self._gate = None

    @property
    def held(self) -> int:
        """Create requests waiting in :meth:`hold` now whose client still waits for the answer (one that
        gave up, timed out or was killed, no longer counts)."""
        return sum(1 for r in self._held if r.transport is not None and not r.transport.is_closing())

    def fail_lookups(self, times: int) -> None:
        """Answer the next ``times`` authorized GET requests (list or fetch) with a 500."""
        self._lookup_failures += times

    def answer_lookups(self) -> None:
        """Answer GET requests normally again, whatever :meth:`fail_lookups` had left."""
        self._lookup_failures = 0

    def set_status(self, sid: str, status: str, error_code: int | None = None) -> None:
        """Change a message's status without a callback (the status callback that never comes).

        Raises:
            KeyError: no such message.
        """
        message = self.messages[sid]
        message.status = status
        message.error_code = error_code

    def sent_to(self, to: str, body: str) -> list[FakeMessage]:
        """Messages created for ``to`` with exactly this body."""
        return [m for m in self.messages.values() if m.to == to and m.body == body]

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
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            response = await self._answer_create(request, form, authorized)
        finally:
            self.in_flight -= 1
        self.requests[index] = RecordedRequest(
            request.method, request.path, form, authorized, response.status
        )
        return response

    async def _answer_create(
        self, request: web.Request, form: dict[str, str], authorized: bool
    ) -> web.Response:
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
        faults = self.faults
        if form["To"] in faults.invalid_numbers:
            return _error(400, 21211, "The 'To' number is not a valid phone number.")
        message: FakeMessage | None = None
        if self._gate is not None:
            gate, create_first = self._gate, self._create_first
            if create_first:
                message = self._store(form)
            self._held.append(request)
            try:
                await self._until(gate.wait())
            finally:
                self._held.remove(request)
            if message is None and (request.transport is None or request.transport.is_closing()):
                return _error(503, None, "the client went away while held: not created")
        if faults.delay_s > 0:
            await self._until(asyncio.sleep(faults.delay_s))
        draw = self.random.random()
        if message is None:
            if draw < faults.permanent:
                return _error(400, 21211, "The 'To' number is not a valid phone number.")
            draw -= faults.permanent
            if draw < faults.server_error:
                return _error(500, None, "Internal Server Error")
            draw -= faults.server_error
            message = self._store(form)
            if draw < faults.server_error_after_create:
                return _error(500, None, "Internal Server Error")
            draw -= faults.server_error_after_create
            if draw < faults.timeout:
                await self._until(asyncio.sleep(faults.hang_s))
        if self._hangs:
            await self._until(asyncio.sleep(self._hangs.pop(0)))
        return web.json_response(self._resource(message), status=201)

    async def _until(self, waiting: Awaitable[object]) -> None:
        """Wait for ``waiting`` unless the fake closes first (releasing every held or hanging request)."""
        task = asyncio.ensure_future(waiting)
        closing = asyncio.ensure_future(self._closing.wait())
        try:
            await asyncio.wait({task, closing}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for pending in (task, closing):
                pending.cancel()

    def _lookup_refused(self, request: web.Request) -> web.Response | None:
        """Unauthorized, or an injected lookup failure: the answer; else None."""
        if not self._authorized(request):
            return _error(401, 20003, "Authenticate")
        if self._lookup_failures > 0:
            self._lookup_failures -= 1
            return _error(500, None, "Internal Server Error")
        return None

    async def _list(self, request: web.Request) -> web.Response:
        """Twilio's list of messages: filtered by To and From, newest first, paged by ``PageSize`` with a
        ``PageToken`` (the SID of the previous page's last message) in ``next_page_uri``."""
        query = dict(request.query)
        response = self._lookup_refused(request) or self._page(query)
        self.requests.append(
            RecordedRequest(
                request.method, request.path, {}, self._authorized(request), response.status, query
            )
        )
        return response

    def _page(self, query: dict[str, str]) -> web.Response:
        try:
            size = min(max(int(query.get("PageSize", "50")), 1), 1000)
            page = int(query.get("Page", "0"))
        except ValueError:
            return _error(400, 20001, "Invalid PageSize or Page")
        # Newest first; messages created in the same instant, last created first.
        listed = [
            m
            for _, m in sorted(
                enumerate(self.messages.values()), key=lambda im: (im[1].created_at, im[0]), reverse=True
            )
            if ("To" not in query or m.to == query["To"])
            and ("From" not in query or m.from_ == query["From"])
        ]
        token = query.get("PageToken")
        if token is not None:
            after = [i for i, m in enumerate(listed) if "PA" + m.sid == token]
            listed = listed[after[0] + 1 :] if after else []
        rows, more = listed[:size], len(listed) > size
        base = f"/{API_VERSION}/Accounts/{self.account_sid}/Messages.json"
        filters: dict[str, object] = {k: query[k] for k in ("To", "From") if k in query}

        def uri(**extra: object) -> str:
            return base + "?" + urlencode({**filters, "PageSize": size, **extra})

        return web.json_response(
            {
                "messages": [self._resource(m) for m in rows],
                "end": page * size + max(len(rows) - 1, 0),
                "first_page_uri": uri(Page=0),
                "next_page_uri": uri(Page=page + 1, PageToken="PA" + rows[-1].sid) if more else None,
                "previous_page_uri": uri(Page=page - 1) if page > 0 else None,
                "page": page,
                "page_size": size,
                "start": page * size,
                "uri": uri(Page=page),
            }
        )

    async def _fetch(self, request: web.Request) -> web.Response:
        response = self._lookup_refused(request)
        if response is None:
            message = self.messages.get(request.match_info["sid"])
            if message is None:
                response = _error(404, 20404, "The requested resource was not found")
            else:
                response = web.json_response(self._resource(message))
        self.requests.append(
            RecordedRequest(request.method, request.path, {}, self._authorized(request), response.status)
        )
        return response

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


# ------------------------------------------------------------------------------------------ standalone

STANDALONE_PORT = 8479
STANDALONE_ACCOUNT_SID = "AC" + "5e12" * 8  # fixed, so a pager's environment can be kept between runs
STANDALONE_AUTH_TOKEN = "fake-twilio-auth-token-0123456789"  # noqa: S105  # a local fake's credential


async def serve(*, port: int, account_sid: str, auth_token: str, deliver: bool, ready: asyncio.Event) -> None:
    """Run the fake until cancelled, printing each message created and, with ``deliver``, posting
    ``sent`` then ``delivered`` to its status callback a moment later (as Twilio does)."""
    async with FakeTwilio(account_sid=account_sid, auth_token=auth_token, port=port) as fake:
        print(f"fake Twilio listening on {fake.base_url} (account {fake.account_sid})", flush=True)
        print("point a pager at it with:", flush=True)
        print(f"  export SEIZEWATCH_TWILIO_API_BASE_URL={fake.base_url}", flush=True)
        print(f"  export SEIZEWATCH_TWILIO_ACCOUNT_SID={fake.account_sid}", flush=True)
        print(f"  export SEIZEWATCH_TWILIO_AUTH_TOKEN={fake.auth_token}", flush=True)
        print(f"  export SEIZEWATCH_TWILIO_SENDER={fake.phone_number}", flush=True)
        ready.set()
        seen: set[str] = set()
        while True:
            for sid, message in list(fake.messages.items()):
                if sid in seen:
                    continue
                seen.add(sid)
                print(f"SMS {sid} to {message.to}: {message.body}", flush=True)
                if deliver:
                    for status in ("sent", "delivered"):
                        await _callback(fake, sid, status)
            await asyncio.sleep(0.2)


async def _callback(fake: FakeTwilio, sid: str, status: str) -> None:
    message = fake.messages[sid]
    if message.status_callback is None:
        fake.set_status(sid, status)
        return
    try:
        answer = await fake.deliver(sid, status)
    except httpx.TransportError as exc:  # the pager is away: the status changes all the same
        print(f"  status {status}: callback to {message.status_callback} failed ({exc!r})", flush=True)
        return
    print(f"  status {status}: callback answered {answer.status_code}", flush=True)


def main(argv: list[str] | None = None) -> None:
    """``python -m tests.fakes.twilio_server``: the fake as a local server, for trying the webhooks."""
    parser = argparse.ArgumentParser(prog="python -m tests.fakes.twilio_server", description=main.__doc__)
    parser.add_argument("--port", type=int, default=STANDALONE_PORT, help="on 127.0.0.1 (0: a free one)")
    parser.add_argument("--account-sid", default=STANDALONE_ACCOUNT_SID)
    parser.add_argument("--auth-token", default=STANDALONE_AUTH_TOKEN)
    parser.add_argument(
        "--deliver", action="store_true", help="post sent and delivered to each message's status callback"
    )
    args = parser.parse_args(argv)

    async def run() -> None:
        task = asyncio.create_task(
            serve(port=args.port, account_sid=args.account_sid, auth_token=args.auth_token,
                  deliver=args.deliver, ready=asyncio.Event())
        )  # fmt: skip
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, task.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await task

    asyncio.run(run())


if __name__ == "__main__":
    main()
