"""TwilioSms against FakeTwilio over real HTTP on loopback: what is sent, how failures translate, and
the signatures of Twilio's webhooks."""

from __future__ import annotations

import asyncio
import secrets
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from aiohttp import web
from pydantic import SecretStr
from twilio.request_validator import RequestValidator  # type: ignore[import-untyped]  # untyped SDK

from alerts.sms import ConsoleSms, OutgoingSms, SmsError
from alerts.twilio_sms import STATUS_RANK, TwilioSms, status_advances, status_is_failure, validate_signature
from streams.errors import ConfigurationError
from tests.fakes.twilio_server import FakeTwilio, twilio_signature

TO = "+8613800138000"
BODY = (
    "【执行查控 K7Q】浙J12345 11-23 02:51 出现在椒江万达广场停车场1号入口。请扣押。回复1 K7Q接手，2 K7Q非本人"
)


@pytest.fixture
async def twilio() -> AsyncIterator[FakeTwilio]:
    async with FakeTwilio() as fake:
        yield fake


def provider(fake: FakeTwilio, *, token: str | None = None, sender: str | None = None, timeout_s: float = 5):
    return TwilioSms(
        account_sid=fake.account_sid,
        auth_token=SecretStr(token or fake.auth_token),
        sender=sender or fake.phone_number,
        api_base_url=fake.base_url,
        timeout_s=timeout_s,
    )


@pytest.fixture
async def sms(twilio: FakeTwilio) -> AsyncIterator[TwilioSms]:
    client = provider(twilio)
    try:
        yield client
    finally:
        await client.close()


def message(callback: str | None = "https://pager.example.cn/sms/status", validity: int | None = 600):
    return OutgoingSms(
        to=TO,
        body=BODY,
        idempotency_key="page-1:step-0",
        status_callback_url=callback,
        validity_period_s=validity,
    )


async def send_error(sms: TwilioSms, msg: OutgoingSms | None = None) -> SmsError:
    with pytest.raises(SmsError) as caught:
        await sms.send(msg or message())
    return caught.value


# ------------------------------------------------------------------------------------------------- send


async def test_send_posts_the_message_and_returns_twilios_sid(twilio: FakeTwilio, sms: TwilioSms) -> None:
    sent = await sms.send(message())

    [request] = twilio.requests
    assert request.authorized
    assert request.path == f"/2010-04-01/Accounts/{twilio.account_sid}/Messages.json"
    assert request.form == {
        "To": TO,
        "From": twilio.phone_number,
        "Body": BODY,
        "StatusCallback": "https://pager.example.cn/sms/status",
        "ValidityPeriod": "600",
    }
    assert sent.provider_message_id in twilio.messages
    assert sent.provider_message_id.startswith("SM")
    assert len(sent.provider_message_id) == 34
    assert sent.status == "queued"


async def test_optional_fields_are_left_out(twilio: FakeTwilio, sms: TwilioSms) -> None:
    await sms.send(message(callback=None, validity=None))

    assert set(twilio.requests[0].form) == {"To", "From", "Body"}


async def test_a_messaging_service_sender_is_sent_as_such(twilio: FakeTwilio) -> None:
    service = "MG" + "0" * 32
    client = provider(twilio, sender=service)
    try:
        sent = await client.send(message())
    finally:
        await client.close()

    assert twilio.requests[0].form["MessagingServiceSid"] == service
    assert "From" not in twilio.requests[0].form
    assert sent.status == "accepted"


async def test_the_client_is_reusable_across_sends(twilio: FakeTwilio, sms: TwilioSms) -> None:
    sids = {(await sms.send(message())).provider_message_id for _ in range(3)}

    assert len(sids) == 3
    assert len(twilio.messages) == 3


# ------------------------------------------------------------------------------------------- failures


@pytest.mark.parametrize(
    ("status", "code", "kind", "fault"),
    [
        (400, 21211, "permanent", "recipient"),  # invalid number
        (400, 21610, "permanent", "recipient"),  # recipient sent STOP
        (400, 21614, "permanent", "recipient"),  # not a mobile
        (400, 21635, "permanent", "recipient"),  # landline
        (400, 21612, "permanent", "recipient"),  # not reachable via SMS
        (400, 21408, "permanent", "ours"),  # region not enabled in our geo permissions
        (400, 21602, "permanent", "ours"),  # a request of ours Twilio refuses
        (400, 21606, "configuration", "ours"),  # From is not ours
        (403, 20005, "configuration", "ours"),
        (429, 20429, "retriable", "provider"),
        (500, None, "retriable", "provider"),
        (503, 20503, "retriable", "provider"),
    ],
)
async def test_twilio_errors_translate_by_status_and_code(
    twilio: FakeTwilio, sms: TwilioSms, status: int, code: int | None, kind: str, fault: str
) -> None:
    twilio.fail_next(status, code, "injected")

    error = await send_error(sms)

    assert (error.kind, error.fault, error.http_status) == (kind, fault, status)
    assert error.code == (str(code) if code is not None else None)
    assert error.retriable is (kind == "retriable")
    assert not twilio.messages


async def test_too_many_requests_is_safe_to_retry_but_a_server_error_may_have_sent(
    twilio: FakeTwilio, sms: TwilioSms
) -> None:
    twilio.fail_next(429, 20429, "Too Many Requests")
    throttled = await send_error(sms)
    twilio.fail_next(500, None, "Internal Server Error")
    broken = await send_error(sms)

    assert throttled.retriable
    assert not throttled.may_have_sent
    assert broken.retriable
    assert broken.may_have_sent  # only reconciliation tells whether Twilio created it


async def test_the_number_quoted_by_twilio_is_masked_in_the_error(twilio: FakeTwilio, sms: TwilioSms) -> None:
    twilio.fail_next(400, 21211, f"The 'To' number {TO} is not a valid phone number.")

    error = await send_error(sms)

    assert TO not in str(error)
    assert "+86138****8000" in str(error)


async def test_a_failure_applies_as_many_times_as_asked(twilio: FakeTwilio, sms: TwilioSms) -> None:
    twilio.fail_next(429, 20429, times=2)

    assert (await send_error(sms)).kind == "retriable"
    assert (await send_error(sms)).kind == "retriable"
    await sms.send(message())
    assert len(twilio.messages) == 1


async def test_bad_credentials_are_a_configuration_error(twilio: FakeTwilio) -> None:
    client = provider(twilio, token=secrets.token_hex(16))  # not the fake's
    try:
        error = await send_error(client)
    finally:
        await client.close()

    assert (error.kind, error.fault, error.code, error.http_status) == ("configuration", "ours", "20003", 401)
    assert not error.retriable
    assert not twilio.requests[0].authorized


async def test_a_timeout_after_sending_is_ambiguous_and_the_message_may_exist(twilio: FakeTwilio) -> None:
    client = provider(twilio, timeout_s=0.5)
    twilio.hang_next(30)
    started = time.monotonic()
    try:
        error = await send_error(client)
    finally:
        await client.close()

    assert time.monotonic() - started < 3
    assert isinstance(error.__cause__, TimeoutError)
    assert error.kind == "ambiguous"
    assert error.may_have_sent
    assert not error.retriable
    assert len(twilio.messages) == 1  # Twilio created it: resending blindly would page twice


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_connection_refused_is_retriable_and_nothing_was_sent() -> None:
    client = TwilioSms(
        account_sid="AC" + "0" * 32,
        auth_token=SecretStr("token"),
        sender="+15005550006",
        api_base_url=f"http://127.0.0.1:{_closed_port()}",
        timeout_s=2,
    )
    try:
        error = await send_error(client)
    finally:
        await client.close()

    assert (error.kind, error.fault) == ("retriable", "provider")
    assert not error.may_have_sent


async def test_the_provider_closes_as_a_context_manager(twilio: FakeTwilio) -> None:
    async with provider(twilio) as client:
        await client.send(message())
    await client.close()  # idempotent

    assert len(twilio.messages) == 1


async def test_the_console_provider_prints_instead_of_sending() -> None:
    lines: list[str] = []
    console = ConsoleSms(lines.append)

    first = await console.send(message())
    again = await console.send(message())

    assert first == again  # the id derives from the idempotency key
    assert first.provider_message_id.startswith("SM")
    assert len(first.provider_message_id) == 34
    assert lines[0] == f"SMS → +86138****8000 [{first.provider_message_id}]: {BODY}"
    assert console.sent == [message(), message()]


@pytest.mark.parametrize(
    ("argument", "value"),
    [
        ("account_sid", "XX123"),
        ("auth_token", SecretStr("")),
        ("sender", "seizewatch"),
        ("timeout_s", 0),
        ("api_base_url", "127.0.0.1:8080"),
    ],
)
def test_invalid_configuration_is_refused_at_construction(argument: str, value: object) -> None:
    arguments: dict[str, object] = {
        "account_sid": "AC" + "0" * 32,
        "auth_token": SecretStr("token"),
        "sender": "+15005550006",
        argument: value,
    }
    with pytest.raises(ConfigurationError):
        TwilioSms(**arguments)  # type: ignore[arg-type]  # values of several types, on purpose


def test_an_invalid_validity_period_is_refused_before_sending() -> None:
    with pytest.raises(ValueError, match="validity_period_s"):
        message(validity=36001)


# ------------------------------------------------------------------------------------------- webhooks


@dataclass
class Received:
    url: str
    form: dict[str, str]
    signature: str | None
    headers: dict[str, str]


@dataclass
class Receiver:
    """The application's end of Twilio's webhooks: records every POST and answers 204."""

    base_url: str = ""
    received: list[Received] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    state = Receiver()

    async def record(request: web.Request) -> web.Response:
        form = {name: str(value) for name, value in (await request.post()).items()}
        state.received.append(
            Received(str(request.url), form, request.headers.get("X-Twilio-Signature"), dict(request.headers))
        )
        state.arrived.set()
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/{tail:.*}", record)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    state.base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    await web.SockSite(runner, sock).start()
    try:
        yield state
    finally:
        await runner.cleanup()


async def test_a_status_callback_is_signed_so_that_validate_signature_accepts_it(
    twilio: FakeTwilio, sms: TwilioSms, receiver: Receiver
) -> None:
    callback = f"{receiver.base_url}/sms/status?page=42"
    sent = await sms.send(message(callback=callback))

    answer = await twilio.deliver(sent.provider_message_id, "undelivered", error_code=30003)

    assert answer.status_code == 204
    [got] = receiver.received
    assert got.url == callback
    assert got.form["MessageSid"] == sent.provider_message_id
    assert got.form["MessageStatus"] == "undelivered"
    assert got.form["ErrorCode"] == "30003"
    assert got.form["To"] == TO
    assert got.form["AccountSid"] == twilio.account_sid
    assert got.headers["I-Twilio-Idempotency-Token"]
    token = SecretStr(twilio.auth_token)
    assert validate_signature(token, callback, got.form, got.signature)
    # Tampered: another status, another URL, another token, another or no signature.
    assert not validate_signature(token, callback, {**got.form, "MessageStatus": "delivered"}, got.signature)
    assert not validate_signature(token, f"{receiver.base_url}/sms/status", got.form, got.signature)
    assert not validate_signature(SecretStr("another-token"), callback, got.form, got.signature)
    assert not validate_signature(token, callback, got.form, "AAAA" + (got.signature or "")[4:])
    assert not validate_signature(token, callback, got.form, None)


async def test_inbound_sms_is_signed_unless_forged(twilio: FakeTwilio, receiver: Receiver) -> None:
    url = f"{receiver.base_url}/sms/inbound"

    await twilio.inbound(url, TO, "1 K7Q")
    await twilio.inbound(url, TO, "1 K7Q", forged=True)

    genuine, forged = receiver.received
    assert genuine.form["Body"] == "1 K7Q"
    assert genuine.form["From"] == TO
    assert genuine.form["To"] == twilio.phone_number
    token = SecretStr(twilio.auth_token)
    assert validate_signature(token, url, genuine.form, genuine.signature)
    assert not validate_signature(token, url, forged.form, forged.signature)


def test_the_fakes_signature_matches_the_twilio_librarys() -> None:
    url = "https://pager.example.cn/sms/status?page=42"
    params = {"MessageSid": "SM" + "ab" * 16, "MessageStatus": "delivered", "Body": "回复1 K7Q", "To": TO}

    ours = twilio_signature("secret-token", url, params)

    assert ours == RequestValidator("secret-token").compute_signature(url, params)
    assert RequestValidator("secret-token").validate(url, params, ours)


def test_a_webhook_cannot_be_checked_without_a_token() -> None:
    with pytest.raises(ConfigurationError):
        validate_signature(SecretStr(""), "https://pager.example.cn/sms/status", {}, "anything")


# ------------------------------------------------------------------------------------------- statuses


def test_statuses_never_move_backwards() -> None:
    assert status_advances(None, "queued")
    assert status_advances("queued", "sent")
    assert status_advances("sent", "delivered")
    assert not status_advances("delivered", "sent")  # a late "sent" after "delivered"
    assert not status_advances("delivered", "delivered")  # a duplicate
    assert not status_advances("failed", "delivered")  # terminal
    assert not status_advances("queued", "something-new")
    assert STATUS_RANK["queued"] < STATUS_RANK["sending"] < STATUS_RANK["sent"] < STATUS_RANK["delivered"]


def test_failure_statuses() -> None:
    assert status_is_failure("undelivered")
    assert status_is_failure("failed")
    assert not any(status_is_failure(s) for s in ("queued", "sending", "sent", "delivered"))
