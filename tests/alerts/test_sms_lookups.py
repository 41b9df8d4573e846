"""Looking messages up at the provider, for reconciliation: TwilioSms against FakeTwilio over real HTTP
(the list filtered by To and From, newest first, paged; one message by SID), and ConsoleSms."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import SecretStr

from alerts.sms import ConsoleSms, DeliveryStatus, OutgoingSms, SmsError
from alerts.twilio_sms import LOOKUP_CLOCK_SLACK, TwilioSms
from tests.fakes.twilio_server import FakeTwilio

TO = "+8613800138000"
OTHER = "+8613800138001"
BODY = "【执行查控 K7Q】浙J12345 出现在椒江万达广场停车场1号入口。回复1 K7Q接手"


@pytest.fixture
async def twilio() -> AsyncIterator[FakeTwilio]:
    async with FakeTwilio() as fake:
        yield fake


def adapter(fake: FakeTwilio, sender: str | None = None) -> TwilioSms:
    return TwilioSms(
        account_sid=fake.account_sid,
        auth_token=SecretStr(fake.auth_token),
        sender=sender or fake.phone_number,
        api_base_url=fake.base_url,
        timeout_s=5,
    )


@pytest.fixture
async def sms(twilio: FakeTwilio) -> AsyncIterator[TwilioSms]:
    client = adapter(twilio)
    try:
        yield client
    finally:
        await client.close()


def message(body: str = BODY, to: str = TO) -> OutgoingSms:
    return OutgoingSms(
        to=to, body=body, idempotency_key="k", status_callback_url=None, validity_period_s=None
    )


def since() -> datetime:
    return datetime.now(UTC) - timedelta(seconds=1)


def lists(fake: FakeTwilio) -> list[dict[str, str]]:
    return [r.query for r in fake.requests if r.method == "GET" and r.path.endswith("/Messages.json")]


async def test_find_returns_the_message_with_this_body_to_this_number(
    twilio: FakeTwilio, sms: TwilioSms
) -> None:
    start = since()
    await sms.send(message("another page", TO))
    sent = await sms.send(message(BODY, TO))
    await sms.send(message(BODY, OTHER))  # the same text to someone else is not ours
    found = await sms.find(TO, BODY, start)
    assert found is not None
    assert (found.provider_message_id, found.status) == (sent.provider_message_id, "queued")
    [query] = lists(twilio)
    assert query == {"To": TO, "From": twilio.phone_number, "PageSize": "50"}


async def test_find_says_none_when_the_provider_has_no_such_message(
    twilio: FakeTwilio, sms: TwilioSms
) -> None:
    await sms.send(message("another page"))
    assert await sms.find(TO, BODY, since()) is None


async def test_find_pages_through_newest_first_until_it_is_found(twilio: FakeTwilio, sms: TwilioSms) -> None:
    start = since()
    oldest = await sms.send(message(BODY))
    await asyncio.gather(*(sms.send(message(f"page {i}")) for i in range(110)))  # 111 messages: 3 pages
    found = await sms.find(TO, BODY, start)
    assert found is not None
    assert found.provider_message_id == oldest.provider_message_id
    queries = lists(twilio)
    assert len(queries) == 3
    assert "PageToken" in queries[1]
    assert "PageToken" in queries[2]


async def test_find_stops_at_messages_older_than_the_claim(twilio: FakeTwilio, sms: TwilioSms) -> None:
    old = await sms.send(message(BODY))
    await asyncio.gather(*(sms.send(message(f"page {i}")) for i in range(60)))
    for m in twilio.messages.values():  # all of them before the claim, beyond the clock slack
        m.created_at -= LOOKUP_CLOCK_SLACK + timedelta(minutes=1)
    assert await sms.find(TO, BODY, since()) is None
    assert len(lists(twilio)) == 1  # newest first: the first old one ends the search
    assert old.provider_message_id in twilio.messages


async def test_a_messaging_service_is_looked_up_by_recipient_only(twilio: FakeTwilio) -> None:
    client = adapter(twilio, sender="MG" + "0" * 32)
    try:
        await client.find(TO, BODY, since())
    finally:
        await client.close()
    [query] = lists(twilio)
    assert "From" not in query


async def test_a_failed_lookup_is_retriable_and_tells_nothing(twilio: FakeTwilio, sms: TwilioSms) -> None:
    await sms.send(message(BODY))
    twilio.fail_lookups(1)
    with pytest.raises(SmsError) as caught:
        await sms.find(TO, BODY, since() - timedelta(minutes=1))
    assert caught.value.kind == "retriable"
    assert TO not in str(caught.value)


async def test_status_fetches_one_message_by_its_sid(twilio: FakeTwilio, sms: TwilioSms) -> None:
    sent = await sms.send(message())
    assert await sms.status(sent.provider_message_id) == DeliveryStatus("queued", None, final=False)
    twilio.set_status(sent.provider_message_id, "undelivered", 30003)
    assert await sms.status(sent.provider_message_id) == DeliveryStatus("undelivered", "30003", final=True)
    with pytest.raises(SmsError) as missing:
        await sms.status("SM" + "0" * 32)
    assert missing.value.kind == "permanent"
    twilio.fail_lookups(1)
    with pytest.raises(SmsError) as failed:
        await sms.status(sent.provider_message_id)
    assert failed.value.kind == "retriable"


async def test_console_sms_answers_lookups_from_what_it_printed() -> None:
    console = ConsoleSms(lambda _: None)
    sent = await console.send(message())
    found = await console.find(TO, BODY, since())
    assert found is not None
    assert found.provider_message_id == sent.provider_message_id
    assert await console.find(OTHER, BODY, since()) is None
    assert (await console.status(sent.provider_message_id)).final
    with pytest.raises(SmsError):
        await console.status("SMunknown")
