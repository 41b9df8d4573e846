"""A feed goes silent, the alert fires, Alertmanager posts to the pager, each operator gets one SMS.

Real processes and servers: the connectors (``seizewatch ingest``) and the pager (``seizewatch pager``)
as processes on the module's database and topics, the pager sending through the real twilio client to
the fake Twilio (which counts exactly what was sent), Debian's Prometheus scraping the connectors every
second and Debian's Alertmanager (:mod:`seizewatch.alertmanager`) posting to the pager's receiver.

The shipped ``SeizewatchFeedSilent`` waits 15 minutes of silence and 5 more of ``for:``: too long for a
test. Prometheus here loads a copy of it derived from the shipped rule (same expression, labels and
annotations) with only its threshold and ``for:`` shortened (:func:`derived_silent_feed_rules`); the
shipped rule itself is left as it is and unit-tested by promtool (deploy/prometheus/tests/). Alertmanager
runs the deployment's route and receiver with one-second intervals and a two-second repeat, so the test
sees it send the same alert again and the pager text nobody twice.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import httpx
import pytest
import yaml
from pydantic import SecretStr

from connectors.auth import API_KEY_HEADER, source_secret
from connectors.registry import AuthMethod, Connector, add_source, upsert_devices
from seizewatch.alertmanager import LocalAlertmanager
from seizewatch.prometheus import LocalPrometheus
from tests.conftest import MASTER_KEY, Isolated, Process, eventually, stop_process
from tests.fakes.twilio_server import FakeMessage, FakeTwilio
from tests.observability import RULES_FILE
from tests.observability.test_prometheus_e2e import start_pager

pytestmark = pytest.mark.integration
T = TypeVar("T")

ALERT = "SeizewatchFeedSilent"
SILENCE_S = 4  # the derived rule's threshold, for the shipped one's 900 s
FOR = "2s"  # and its for:, for the shipped 5m
API_TOKEN = "alertmanager-e2e-" + "0123456789abcdef" * 2
OPERATORS = {"ops-wang": "+8613900000011", "ops-li": "+8613900000012"}
GROUP = "parking-e2e"
DEVICE: dict[str, object] = {
    "device_id": "e2e/g1", "source_id": "lot-e2e", "name": "测试停车场 1号入口",
    "district": "331002", "device_group": GROUP, "kind": "parking_entry",
}  # fmt: skip
_THRESHOLD = re.compile(r">\s*(?P<seconds>\d+)\s*$")


def derived_silent_feed_rules(folder: Path) -> Path:
    """A rule file holding the shipped silent-feed rule with a threshold of SILENCE_S and ``for: FOR``.

    Only those two change; the test fails if the shipped rule stops having that shape (a comparison
    ``> N`` seconds closing its expression), rather than quietly testing something else.
    """
    shipped: dict[str, Any] = yaml.safe_load(RULES_FILE.read_text())
    [rule] = [r for g in shipped["groups"] for r in g["rules"] if r.get("alert") == ALERT]
    expr = rule["expr"].strip()
    threshold = _THRESHOLD.search(expr)
    assert threshold, f"{ALERT} no longer ends in `> seconds`: derive the test's copy anew\n{expr}"
    assert int(threshold["seconds"]) > SILENCE_S
    assert rule.get("for"), f"{ALERT} has no for: any more"
    derived = {**rule, "expr": _THRESHOLD.sub(f"> {SILENCE_S}", expr), "for": FOR}
    path = folder / "derived.rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "derived", "rules": [derived]}]}, allow_unicode=True))
    return path


@dataclass
class Stack:
    isolated: Isolated
    ingest: Process
    pager: Process
    fake: FakeTwilio
    prometheus: LocalPrometheus
    alertmanager: LocalAlertmanager
    reads: int = 0

    async def post_reads(self, count: int) -> None:
        """``count`` reads from the lot, accepted (2xx)."""
        headers = {API_KEY_HEADER: source_secret(SecretStr(MASTER_KEY), "lot-e2e", 1)}
        url = f"http://127.0.0.1:{self.ingest.port}/parking/v1/sources/lot-e2e/records"
        records = []
        for _ in range(count):
            self.reads += 1
            observed = datetime.now(UTC) - timedelta(seconds=1)
            records.append({
                "record_id": f"e2e-{self.reads}", "lot_id": "e2e", "gate": "g1", "direction": "in",
                "plate": "浙J11111", "plate_colour": "蓝", "time": observed.isoformat(timespec="seconds"),
            })  # fmt: skip
        async with httpx.AsyncClient(headers=headers, timeout=30) as client:
            answer = await client.post(url, json={"records": records})
        assert answer.status_code == 200, answer.text

    def texts(self, word: str) -> list[FakeMessage]:
        """Messages the fake Twilio was asked to send that name the alert and carry ``word``."""
        return [m for m in self.fake.messages.values() if ALERT in m.body and word in m.body]

    async def alert_state(self) -> str:
        """The alert's state in Prometheus: inactive, pending or firing."""
        async with httpx.AsyncClient(base_url=self.prometheus.url, timeout=10) as client:
            groups = (await client.get("/api/v1/rules")).json()["data"]["groups"]
        [rule] = [r for g in groups for r in g["rules"] if r["name"] == ALERT]
        return str(rule["state"])

    async def operator_rows(self) -> list[asyncpg.Record]:
        conn = await asyncpg.connect(self.isolated.settings.postgres.dsn.get_secret_value())
        try:
            return await conn.fetch(
                "SELECT n.step, n.officer_id, n.phone, n.send_state, a.alertname, a.labels"
                " FROM notifications n JOIN operator_alerts a ON a.alert_id = n.operator_alert_id"
                " ORDER BY n.step, n.officer_id"
            )
        finally:
            await conn.close()

    def diagnosis(self) -> str:
        return (
            f"pager log:\n{self.pager.tail()}\n\nalertmanager log:\n{self.alertmanager.tail()}"
            f"\n\nprometheus log:\n{self.prometheus.tail(1500)}"
        )


@pytest.fixture(scope="module")
async def stack(
    isolated: Isolated, ingest: Process, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    conn = await asyncpg.connect(isolated.settings.postgres.dsn.get_secret_value())
    try:
        await add_source(conn, "lot-e2e", Connector.PARKING, AuthMethod.API_KEY)
        await upsert_devices(conn, [DEVICE])
    finally:
        await conn.close()
    folder = tmp_path_factory.mktemp("alertmanager-e2e")
    operators = ",".join(f"{name}:{phone}" for name, phone in OPERATORS.items())
    async with FakeTwilio() as fake:
        pager = await start_pager(
            isolated, fake, folder / "pager.log",
            {"SEIZEWATCH_PAGER_API_TOKEN": API_TOKEN, "SEIZEWATCH_PAGER_OPERATORS": operators},
        )  # fmt: skip
        alertmanager = LocalAlertmanager(
            f"http://127.0.0.1:{pager.port}", SecretStr(API_TOKEN),
            group_wait="1s", group_interval="1s", repeat_interval="2s",
        )  # fmt: skip
        prometheus: LocalPrometheus | None = None
        try:
            await asyncio.to_thread(alertmanager.start)
            prometheus = LocalPrometheus(
                {"seizewatch-ingest": [f"127.0.0.1:{ingest.port}"]},
                interval_s=1.0,
                alertmanagers=[alertmanager.address],
                rule_files=[derived_silent_feed_rules(folder)],
            )
            await asyncio.to_thread(prometheus.start)
            yield Stack(isolated, ingest, pager, fake, prometheus, alertmanager)
        finally:
            if prometheus is not None:
                await asyncio.to_thread(prometheus.stop)
            await asyncio.to_thread(alertmanager.stop)
            stop_process(pager)


async def wait_for(
    stack: Stack, what: str, probe: Callable[[], Awaitable[T]], done: Callable[[T], bool], within: float
) -> T:
    """``eventually``, failing with ``what`` went wrong and the logs of the pager and both servers."""
    try:
        return await eventually(probe, done, within=within)
    except TimeoutError:
        pytest.fail(f"{what} within {within} s\n{stack.diagnosis()}")


async def test_a_silent_feed_texts_each_operator_once_and_once_more_when_it_is_back(stack: Stack) -> None:
    # The feed sends reads, a few seconds apart, then goes silent: the alert must not fire meanwhile.
    for _ in range(3):
        await stack.post_reads(2)
        await asyncio.sleep(1)  # pacing the feed, not waiting for anything
        assert await stack.alert_state() == "inactive"

    async def firing_texts() -> list[FakeMessage]:
        return stack.texts("【系统告警·警告】")

    sent = await wait_for(stack, "no operator was texted", firing_texts, lambda m: len(m) >= 2, within=60)
    assert await stack.alert_state() == "firing"
    assert sorted(m.to for m in sent) == sorted(OPERATORS.values())
    for message in sent:
        assert "设备组 parking-e2e" in message.body, message.body
        assert "docs/operations.md#feed-silent" in message.body

    # Alertmanager repeats the group every two seconds: the pager hears it again and texts nobody twice.
    async def duplicates() -> float:
        return (await stack.pager.metrics()).get(
            'seizewatch_operator_alert_notifications_total{outcome="duplicate"}', 0
        )

    await wait_for(
        stack, "Alertmanager sent the alert once only", duplicates, lambda n: n >= 2 * len(OPERATORS), 30
    )
    metrics = await stack.pager.metrics()
    assert metrics['seizewatch_operator_alerts_received_total{status="firing"}'] >= 2
    assert metrics['seizewatch_operator_alert_notifications_total{outcome="queued"}'] == len(OPERATORS)
    assert len(stack.texts("【系统告警·警告】")) == len(OPERATORS)
    rows = await stack.operator_rows()
    assert [(r["step"], r["officer_id"], r["send_state"]) for r in rows] == [
        (0, "operator:ops-li", "sent"), (0, "operator:ops-wang", "sent"),
    ]  # fmt: skip
    assert {r["alertname"] for r in rows} == {ALERT}

    # The feed is back: the alert resolves, and each operator hears so once.
    await stack.post_reads(1)

    async def resolved_texts() -> list[FakeMessage]:
        return stack.texts("已恢复")

    back = await wait_for(
        stack, "nobody was told it resolved", resolved_texts, lambda m: len(m) >= 2, within=30
    )
    assert sorted(m.to for m in back) == sorted(OPERATORS.values())
    assert all(m.body.startswith("【系统告警·已恢复】") for m in back)

    async def settled() -> list[asyncpg.Record]:
        return await stack.operator_rows()

    rows = await wait_for(stack, "the SMS did not all go out", settled,
                          lambda rs: all(r["send_state"] == "sent" for r in rs), within=15)  # fmt: skip
    assert len(rows) == 2 * len(OPERATORS)
    assert len(stack.fake.messages) == 2 * len(OPERATORS), [m.body for m in stack.fake.messages.values()]
    assert (await stack.pager.metrics())['seizewatch_operator_alert_sms_total{outcome="sent"}'] == 4
