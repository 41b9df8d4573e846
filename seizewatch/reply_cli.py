"""``seizewatch reply``: an officer's SMS reply, simulated as the signed inbound webhook Twilio would post.

So ``1 K7Q`` can be tried without a provider: the command posts Twilio's form (``From``, ``To``,
``Body``, ``MessageSid``…) to the running pager's ``/twilio/inbound``, signed with
``SEIZEWATCH_TWILIO_AUTH_TOKEN`` over ``SEIZEWATCH_PAGER_PUBLIC_URL`` + path (what the pager checks),
and prints the pager's answer (the SMS the officer would get back).
"""

from __future__ import annotations

import asyncio
import secrets
import xml.etree.ElementTree as ET
from dataclasses import dataclass

import click
import httpx
from pydantic import SecretStr

from alerts.twilio_sms import sign_webhook
from seizewatch.common import console, settings_from_env

INBOUND_PATH = "/twilio/inbound"
API_VERSION = "2010-04-01"


@dataclass(frozen=True, slots=True)
class ReplyAnswer:
    """What the pager answered: its HTTP status and the text it sends back (``None``: no answer)."""

    status: int
    message: str | None


def inbound_form(*, from_phone: str, to: str, body: str, account_sid: str) -> dict[str, str]:
    """The form of Twilio's incoming-message webhook, as it posts it."""
    sid = "SM" + secrets.token_hex(16)
    return {
        "AccountSid": account_sid, "ApiVersion": API_VERSION, "MessageSid": sid, "SmsSid": sid,
        "SmsMessageSid": sid, "SmsStatus": "received", "From": from_phone, "To": to, "Body": body,
        "NumMedia": "0",
    }  # fmt: skip


async def send_reply(
    *,
    pager_url: str,
    public_url: str,
    auth_token: SecretStr,
    from_phone: str,
    body: str,
    to: str = "+15005550006",
    account_sid: str = "AC" + "0" * 32,
    timeout_s: float = 10.0,
) -> ReplyAnswer:
    """Post a signed inbound SMS to the pager at ``pager_url``; the signature is over ``public_url``.

    Raises:
        ConfigurationError: ``auth_token`` is empty.
        httpx.TransportError: the pager is not reachable.
    """
    form = inbound_form(from_phone=from_phone, to=to, body=body, account_sid=account_sid)
    signature = sign_webhook(auth_token, public_url.rstrip("/") + INBOUND_PATH, form)
    async with httpx.AsyncClient(timeout=timeout_s) as client:
        response = await client.post(
            pager_url.rstrip("/") + INBOUND_PATH, data=form, headers={"X-Twilio-Signature": signature}
        )
    message = None
    if response.status_code == 200 and response.text:
        found = ET.fromstring(response.text).find("Message")  # noqa: S314  # our own pager's TwiML
        message = found.text if found is not None else None
    return ReplyAnswer(response.status_code, message)


@click.command("reply")
@click.option("--from", "from_phone", required=True, help="The officer's number (E.164), as on the roster.")
@click.option(
    "--pager",
    "pager_url",
    default=None,
    help="Where the pager listens [default: http://SEIZEWATCH_PAGER_HOST:SEIZEWATCH_PAGER_PORT].",
)
@click.argument("text")
def reply(from_phone: str, pager_url: str | None, text: str) -> None:
    """Simulate an officer's SMS reply (e.g. "1 K7Q") to the running pager, signed as Twilio signs it.

    Needs the pager's SEIZEWATCH_TWILIO_AUTH_TOKEN and SEIZEWATCH_PAGER_PUBLIC_URL (the pager refuses
    unsigned webhooks); with the fake Twilio of the tests as the provider (python -m
    tests.fakes.twilio_server) they are the ones it prints.
    """
    settings = settings_from_env()
    token = settings.twilio.auth_token
    if token is None:
        raise click.ClickException(
            "SEIZEWATCH_TWILIO_AUTH_TOKEN is not set: the pager refuses webhooks it cannot verify, so a reply"
            " must be signed with the pager's token (docs/alerts.md#trying-the-webhooks-locally)"
        )
    host = "127.0.0.1" if settings.pager.host in {"0.0.0.0", "::", ""} else settings.pager.host  # noqa: S104
    url = pager_url or f"http://{host}:{settings.pager.port}"
    simulated = send_reply(
        pager_url=url, public_url=settings.pager.public_url, auth_token=token, from_phone=from_phone,
        body=text, to=settings.twilio.sender or "+15005550006",
        account_sid=settings.twilio.account_sid or "AC" + "0" * 32,
    )  # fmt: skip
    try:
        answer = asyncio.run(simulated)
    except httpx.TransportError as exc:
        raise click.ClickException(f"--pager {url}: not reachable ({exc!r})") from exc
    if answer.status == 403:
        raise click.ClickException(
            f"the pager at {url} refused the signature: sign with its SEIZEWATCH_TWILIO_AUTH_TOKEN and its"
            " SEIZEWATCH_PAGER_PUBLIC_URL"
        )
    if answer.status != 200:
        raise click.ClickException(f"the pager at {url} answered {answer.status}")
    console.print(f"pager's answer: {answer.message}" if answer.message else "the pager sent no answer")
