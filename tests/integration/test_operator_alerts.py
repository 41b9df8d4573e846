"""The pager's Alertmanager receiver over HTTP: each alert texted once per operator, whatever is resent.

The pager is served on loopback and sends through the real twilio client to the fake Twilio; the test
posts Alertmanager's webhook payloads (version 4) itself, the way Alertmanager sends them again: on
every repeat, after a restart, twice at once (an HA pair).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import pytest
from fastapi import FastAPI, Request

from alerts import operator_alerts
from alerts.messages import segments
from alerts.operator_alerts import ROUTE
from alerts.service import Pager
from alerts.settings import Operator, PagerSettings
from tests.conftest import Isolated, eventually
from tests.fakes.twilio_server import FakeMessage, FakeTwilio
from tests.integration.pager_support import API_TOKEN, Clock, RunningPager, serve_pager

pytestmark = pytest.mark.integration

NOW = datetime(2026, 12, 4, 10, 40, tzinfo=ZoneInfo("Asia/Shanghai"))
OPERATORS = {"ops-wang": "+8613900000021", "ops-li": "+8613900000022"}
AUTH = {"Authorization": f"Bearer {API_TOKEN}"}


@pytest.fixture(scope="module")
async def pager(isolated: Isolated) -> AsyncIterator[RunningPager]:
    settings = PagerSettings(operators=tuple(Operator(k, v) for k, v in OPERATORS.items()))
    async with FakeTwilio() as fake, serve_pager(isolated, fake, Clock(NOW), settings=settings) as running:
        yield running


def alert(
    status: str = "firing",
    *,
    fingerprint: str | None = None,
    starts_at: datetime = NOW - timedelta(minutes=5),
    ends_at: datetime | None = None,
    name: str = "SeizewatchFeedSilent",
    severity: str = "warning",
    group: str = "parking-jiaojiang",
) -> dict[str, Any]:
    return {
        "status": status,
        "labels": {"alertname": name, "severity": severity, "device_group": group},
        "annotations": {
            "summary": f"设备组 {group} 已 20m 没有收到读数 / Device group {group} sent no read for 20m",
            "runbook": "docs/operations.md#feed-silent",
        },
        "startsAt": starts_at.isoformat(),
        "endsAt": (ends_at.isoformat() if ends_at else "0001-01-01T00:00:00Z"),
        "generatorURL": "http://prometheus:9090/graph",
        "fingerprint": fingerprint or uuid.uuid4().hex[:16],
    }


def webhook(*alerts: dict[str, Any]) -> dict[str, Any]:
    firing = any(a["status"] == "firing" for a in alerts)
    return {
        "version": "4", "groupKey": '{}:{alertname="SeizewatchFeedSilent"}', "truncatedAlerts": 0,
        "status": "firing" if firing else "resolved", "receiver": "seizewatch-operators",
        "groupLabels": {"alertname": "SeizewatchFeedSilent"}, "commonLabels": {}, "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093", "alerts": list(alerts),
    }  # fmt: skip


async def post(pager: RunningPager, payload: object, headers: dict[str, str] = AUTH) -> httpx.Response:
    async with httpx.AsyncClient(timeout=10) as client:
        return await client.post(pager.url + ROUTE, json=payload, headers=headers)


async def db(isolated: Isolated) -> asyncpg.Connection:
    return await asyncpg.connect(isolated.settings.postgres.dsn.get_secret_value())


async def texts(pager: RunningPager, isolated: Isolated, fingerprint: str, count: int) -> list[FakeMessage]:
    """The SMS sent for the alert, once ``count`` of them were, and none is still waiting to be sent."""

    async def probe() -> tuple[int, list[str]]:
        conn = await db(isolated)
        try:
            rows = await conn.fetch(
                "SELECT n.send_state, n.provider_message_id FROM notifications n"
                " JOIN operator_alerts a ON a.alert_id = n.operator_alert_id WHERE a.fingerprint = $1",
                fingerprint,
            )
        finally:
            await conn.close()
        waiting = sum(r["send_state"] in ("pending", "sending") for r in rows)
        return waiting, [r["provider_message_id"] for r in rows if r["provider_message_id"]]

    _, sids = await eventually(probe, lambda found: found[0] == 0 and len(found[1]) >= count)
    assert len(sids) == count
    return [pager.fake.messages[sid] for sid in sids]


async def test_alertmanager_must_present_the_api_token(pager: RunningPager) -> None:
    assert (await post(pager, webhook(alert()), headers={})).status_code == 401
    wrong = {"Authorization": "Bearer " + "x" * len(API_TOKEN)}
    assert (await post(pager, webhook(alert()), headers=wrong)).status_code == 401


async def test_what_is_not_an_alertmanager_webhook_is_refused(pager: RunningPager) -> None:
    answer = await post(pager, {**webhook(alert()), "version": "3"})
    assert answer.status_code == 400
    assert answer.json()["error"].startswith("not an Alertmanager webhook")
    broken = webhook(alert())
    del broken["alerts"][0]["fingerprint"]
    assert (await post(pager, broken)).status_code == 400


async def test_each_alert_is_texted_once_to_each_operator_whatever_is_resent(
    pager: RunningPager, isolated: Isolated
) -> None:
    fired = alert()
    first = await post(pager, webhook(fired))
    assert first.status_code == 200, first.text
    assert first.json() == {"alerts": 1, "queued": 2, "duplicates": 0}
    # A repeat, and two copies at once (an HA pair of Alertmanagers): nothing more is queued.
    again = await asyncio.gather(*(post(pager, webhook(fired)) for _ in range(3)))
    assert [a.json()["duplicates"] for a in again] == [2, 2, 2]
    sent = await texts(pager, isolated, fired["fingerprint"], 2)
    assert sorted(m.to for m in sent) == sorted(OPERATORS.values())
    for message in sent:
        assert message.body.startswith("【系统告警·警告】SeizewatchFeedSilent 12-04 10:35起："), message.body
        assert "设备组 parking-jiaojiang 已 20m 没有收到读数" in message.body
        assert "Device group" not in message.body  # the Chinese half of the summary only
        assert message.body.endswith("手册 docs/operations.md#feed-silent")
        assert segments(message.body) <= 2
        assert message.status_callback == f"{pager.url}/twilio/status"
    # The status callback of an operator's SMS is recorded like any other.
    assert (await pager.fake.deliver(sent[0].sid, "delivered")).status_code == 204
    conn = await db(isolated)
    try:
        status = await conn.fetchval(
            "SELECT provider_status FROM notifications WHERE provider_message_id = $1", sent[0].sid
        )
    finally:
        await conn.close()
    assert status == "delivered"

    # Resolved (twice: a resend): "已恢复" once to each operator who was told.
    resolved = {**fired, "status": "resolved", "endsAt": NOW.isoformat()}
    assert (await post(pager, webhook(resolved))).json()["queued"] == 2
    assert (await post(pager, webhook(resolved))).json() == {"alerts": 1, "queued": 0, "duplicates": 2}
    both = await texts(pager, isolated, fired["fingerprint"], 4)
    back = [m for m in both if "已恢复" in m.body]
    assert sorted(m.to for m in back) == sorted(OPERATORS.values())
    for message in back:
        assert message.body == (
            "【系统告警·已恢复】SeizewatchFeedSilent device_group=parking-jiaojiang"
            " 12-04 10:35起，10:40已恢复。"
        )
    # An old "firing" resent after the resolution says nothing.
    assert (await post(pager, webhook(fired))).json()["queued"] == 0
    await texts(pager, isolated, fired["fingerprint"], 4)


async def test_an_alert_that_fires_again_later_is_texted_again(
    pager: RunningPager, isolated: Isolated
) -> None:
    fingerprint = uuid.uuid4().hex[:16]
    earlier = alert(fingerprint=fingerprint, starts_at=NOW - timedelta(hours=2))
    later = alert(fingerprint=fingerprint, starts_at=NOW - timedelta(minutes=1))
    assert (await post(pager, webhook(earlier))).json()["queued"] == 2
    assert (await post(pager, webhook(later))).json()["queued"] == 2
    await texts(pager, isolated, fingerprint, 4)


async def test_a_group_of_alerts_texts_each_alert_and_a_critical_one_says_so(
    pager: RunningPager, isolated: Isolated
) -> None:
    one, two = alert(group="checkpoint-a"), alert(group="checkpoint-b", severity="critical")
    answer = await post(pager, webhook(one, two))
    assert answer.json() == {"alerts": 2, "queued": 4, "duplicates": 0}
    assert all("checkpoint-a" in m.body for m in await texts(pager, isolated, one["fingerprint"], 2))
    assert all(
        m.body.startswith("【系统告警·紧急】") for m in await texts(pager, isolated, two["fingerprint"], 2)
    )


async def test_a_resolved_alert_nobody_was_told_about_sends_nothing(
    pager: RunningPager, isolated: Isolated
) -> None:
    unseen = alert("resolved", ends_at=NOW)
    assert (await post(pager, webhook(unseen))).json() == {"alerts": 1, "queued": 0, "duplicates": 0}
    conn = await db(isolated)
    try:
        recorded = await conn.fetchrow(
            "SELECT resolved_at FROM operator_alerts WHERE fingerprint = $1", unseen["fingerprint"]
        )
    finally:
        await conn.close()
    assert recorded is not None
    assert recorded["resolved_at"] == NOW


async def test_without_operators_the_notification_is_refused_so_alertmanager_retries() -> None:
    # Refused before any pager is asked: the route alone, in-process.
    app = FastAPI()

    def no_pager(request: Request) -> Pager:
        raise AssertionError("the pager must not be reached")

    operator_alerts.add_routes(app, no_pager, lambda _: True, operators=())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://pager") as client:
        answer = await client.post(ROUTE, json=webhook(alert()))
    assert answer.status_code == 503
    assert "SEIZEWATCH_PAGER_OPERATORS" in answer.json()["error"]
