"""A real Prometheus scraping a running pipeline: every alert rule and every dashboard query runs on it.

The worker, the connectors and the pager run as processes against the module's own topics and database;
Prometheus (`seizewatch.prometheus`) scrapes all three every second with the deployment's jobs and rules.
In two rounds a parking lot posts reads (watched cars, a soft-sealed one, an unknown lot, a bad plate,
garbage), the pager texts the fake Twilio, the officer's phone gets a delivery receipt and replies. Then:

(a) every alert rule's expression runs, Prometheus evaluates the rule without error, and every metric it
    names exists as a series (so no rule watches a misspelt metric);
(b) every query of every dashboard panel (and every variable's ``label_values``) runs and returns data
    (at least one sample).

Grafana variables are replaced before a query is sent: ``$__rate_interval``, ``$__interval`` and
``$__range`` (also as ``${…}``) by ``1m`` (a minute at a 1 s scrape holds every sample of this run);
a dashboard variable (``$court``…) by its "All" value (``allValue``, else ``.*``), as its regex matchers
expect. What may stay empty in this run is listed below, each with the reason.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from pydantic import SecretStr

from connectors.auth import API_KEY_HEADER, source_secret
from connectors.registry import AuthMethod, Connector, add_source, upsert_devices
from seizewatch.prometheus import LocalPrometheus
from seizewatch.scratch import free_port
from streams import watchstore
from streams.vehicles import Action
from tests.conftest import MASTER_KEY, Isolated, Process, eventually, spawn, stop_process
from tests.fakes.twilio_server import FakeTwilio
from tests.integration.pager_support import JIAOJIANG, import_example_roster
from tests.observability import alert_rules, metric_names

pytestmark = pytest.mark.integration

DASHBOARDS = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "dashboards"

# Metrics some rule watches that cannot have a series in this run, with the reason. Their processes must
# still declare them (HELP/TYPE in /metrics, seen in Prometheus's metadata). Empty today: the labelled
# counters the rules rate over are primed at zero when their process starts.
RULE_METRICS_WITHOUT_SERIES: dict[str, str] = {}

# Panel queries that may return nothing in this run, by their text in the dashboard, with the reason.
# Every other query must return data; an entry no dashboard has any more fails the test (keep it honest).
_NO_OUTAGE = "Kafka and PostgreSQL stay up in this run"
_NO_SEIZURE = "absent until a vehicle is seized; nothing is seized in this run"
EMPTY_IN_THIS_RUN = {
    "sum by (stage) (rate(seizewatch_stage_retries_total[$__rate_interval]))": f"{_NO_OUTAGE}: no retries",
    "sum by (connector) (rate(seizewatch_ingest_ignored_events_total[$__rate_interval]))": (
        "only ISAPI cameras send heartbeats and other alarms; this run has a parking feed"
    ),
    "sum by (outcome) (rate(seizewatch_traffic_results_total[$__rate_interval])) * 3600": (
        "no traffic-police result in this run"
    ),
    'max(seizewatch_funnel_median_seconds_to_seizure{court="total"})': _NO_SEIZURE,
    (
        'max by (court) (seizewatch_funnel_median_seconds_to_seizure{court=~"$court", court!="total"})'
    ): _NO_SEIZURE,
    'sum by (match_kind, outcome) (rate(seizewatch_matches_total{outcome!="hit"}[$__rate_interval]))'
    " * 3600": "every match here is exact and becomes a hit (default hit kinds and minimum score)",
}

GRAFANA_INTERVALS = {"__rate_interval": "1m", "__interval": "1m", "__range": "1m"}
VARIABLE = re.compile(
    r"\$\{(?P<braced>[A-Za-z_]\w*)(?::[^}]*)?\}|\$(?P<plain>[A-Za-z_]\w*)|\[\[(?P<old>\w+)\]\]"
)
LABEL_VALUES = re.compile(r"^\s*label_values\(\s*(?P<metric>.+?)\s*,\s*(?P<label>\w+)\s*\)\s*$")

FIRST = "浙J70707"  # seized on sight
SECOND = "浙J70808"
SOFT_SEALED = "浙J60606"  # 活封: sightings logged, nobody paged
UNWATCHED = "浙J11111"
DEVICE: dict[str, object] = {
    "device_id": "wanda/g1", "source_id": "lot-wanda", "name": "椒江万达广场停车场 1号入口",
    "district": "331002", "device_group": "parking-jiaojiang", "kind": "parking_entry",
}  # fmt: skip


def read(record_id: str, plate: str, lot_id: str = "wanda") -> dict[str, object]:
    observed = datetime.now(UTC) - timedelta(seconds=2)
    return {
        "record_id": record_id, "lot_id": lot_id, "gate": "g1", "direction": "in", "plate": plate,
        "plate_colour": "蓝", "time": observed.isoformat(timespec="seconds"), "confidence": 0.93,
    }  # fmt: skip


async def prepare_database(isolated: Isolated) -> dict[str, uuid.UUID]:
    """The parking source and its device, the example roster, two cars to seize and a soft-sealed one.

    Returns the watch entries' ids by plate.
    """
    entries: dict[str, uuid.UUID] = {}
    conn = await asyncpg.connect(isolated.settings.postgres.dsn.get_secret_value())
    try:
        await add_source(conn, "lot-wanda", Connector.PARKING, AuthMethod.API_KEY)
        await upsert_devices(conn, [DEVICE])
        await import_example_roster(isolated.settings.postgres.dsn.get_secret_value())
        for plate, action in ((FIRST, Action.SEIZE), (SECOND, Action.SEIZE), (SOFT_SEALED, Action.SOFT_SEAL)):
            added = await watchstore.add_entry(
                conn,
                watchstore.NewEntry(
                    plate=plate, case_number=f"(2026)浙1002执{uuid.uuid4().int % 10000}号", court=JIAOJIANG,
                    action=action, valid_from=datetime.now(UTC) - timedelta(days=30),
                ),
                by="test",
            )  # fmt: skip
            entries[plate] = added.entry.entry_id
    finally:
        await conn.close()
    return entries


async def start_pager(
    isolated: Isolated, fake: FakeTwilio, log: Path, settings: Mapping[str, str] | None = None
) -> Process:
    """``seizewatch pager`` as a process sending to the fake Twilio; ``settings``: more variables."""
    port = free_port()
    env = {
        **isolated.env,
        "SEIZEWATCH_PAGER_PORT": str(port),
        "SEIZEWATCH_PAGER_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "SEIZEWATCH_PAGER_ACK_TIMEOUT_S": "60",
        "SEIZEWATCH_PAGER_POLL_INTERVAL_S": "0.2",
        "SEIZEWATCH_TWILIO_ACCOUNT_SID": fake.account_sid,
        "SEIZEWATCH_TWILIO_AUTH_TOKEN": fake.auth_token,
        "SEIZEWATCH_TWILIO_SENDER": fake.phone_number,
        "SEIZEWATCH_TWILIO_API_BASE_URL": fake.base_url,
        **(settings or {}),
    }
    pager = spawn("pager", env, log, "SEIZEWATCH_METRICS_PORT")
    pager.port = port  # the pager serves /metrics on its own port

    async def healthy() -> bool:
        assert pager.process.poll() is None, f"pager died:\n{pager.tail()}"
        try:
            async with httpx.AsyncClient() as client:
                return (await client.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200
        except httpx.TransportError:
            return False

    try:
        await eventually(healthy, bool, within=60)
    except BaseException:
        stop_process(pager)
        raise
    return pager


async def has_series(process: Process, prefix: str, within: float = 30) -> None:
    """Wait until the process exposes a sample of ``prefix`` (a name, or a name and its labels)."""

    async def names() -> list[str]:
        return list(await process.metrics())

    try:
        await eventually(names, lambda found: any(n.startswith(prefix) for n in found), within=within)
    except TimeoutError:
        pytest.fail(f"no {prefix} after {within} s; log:\n{process.tail()}")


class Scenario:
    """A parking lot posting reads, the officer's phone answering, in rounds Prometheus scrapes between:
    a counter's first sample is where rate() starts, so the later rounds are what the dashboards see."""

    def __init__(self, isolated: Isolated, ingest: Process, pager: Process, fake: FakeTwilio) -> None:
        self.isolated = isolated
        self.ingest = ingest
        self.pager = pager
        self.fake = fake
        self._headers = {API_KEY_HEADER: source_secret(SecretStr(MASTER_KEY), "lot-wanda", 1)}
        self._reads = 0

    async def post(self, *reads: tuple[str, str]) -> None:
        """Reads of (plate, lot) that are accepted, one that is refused and a payload that is no JSON."""
        url = f"http://127.0.0.1:{self.ingest.port}/parking/v1/sources/lot-wanda/records"
        async with httpx.AsyncClient(headers=self._headers, timeout=30) as client:
            answer = await client.post(url, json={"records": [self._read(p, lot) for p, lot in reads]})
            assert answer.status_code == 200, answer.text
            refused = await client.post(url, json={"records": [self._read("浙J12😀45", "wanda")]})
            assert refused.status_code == 400, refused.text
            garbage = await client.post(url, content=b'{"records": [{"record_id": "r-x", "pl')
            assert garbage.json()["error"]["reason"] == "not_json"

    def _read(self, plate: str, lot_id: str) -> dict[str, object]:
        self._reads += 1
        return read(f"r-{self._reads}", plate, lot_id)

    async def paged(self, entry_id: uuid.UUID) -> str:
        """The provider's id of a message sent for a page of the watch entry, once there is one."""

        async def sent() -> list[str]:
            conn = await asyncpg.connect(self.isolated.settings.postgres.dsn.get_secret_value())
            try:
                rows = await conn.fetch(
                    "SELECT n.provider_message_id FROM notifications n JOIN pages p USING (page_id)"
                    " WHERE p.entry_id = $1 AND n.send_state = 'sent'",
                    entry_id,
                )
            finally:
                await conn.close()
            return [row["provider_message_id"] for row in rows]

        try:
            return (await eventually(sent, bool, within=30))[0]
        except TimeoutError:
            pytest.fail(f"no page was sent; pager log:\n{self.pager.tail()}")

    async def receipt_and_reply(self, sid: str) -> None:
        """The carrier's delivery receipt, and the officer's "1 CODE" taking the page."""
        assert (await self.fake.deliver(sid, "delivered")).status_code == 204
        conn = await asyncpg.connect(self.isolated.settings.postgres.dsn.get_secret_value())
        try:
            row = await conn.fetchrow(
                "SELECT phone, reply_code FROM notifications WHERE provider_message_id = $1", sid
            )
        finally:
            await conn.close()
        assert row is not None
        inbound = f"http://127.0.0.1:{self.pager.port}/twilio/inbound"
        reply = await self.fake.inbound(inbound, row["phone"], f"1 {row['reply_code']}")
        assert reply.status_code == 200, reply.text


async def query(client: httpx.AsyncClient, expr: str) -> dict[str, Any]:
    """``/api/v1/query`` now; Prometheus's whole answer (status, data or error)."""
    answer: dict[str, Any] = (await client.get("/api/v1/query", params={"query": expr})).json()
    return answer


async def wait_for_scrapes(client: httpx.AsyncClient, jobs: int, scrapes: int = 3) -> None:
    """Until every target is up and Prometheus scraped each ``scrapes`` times from now on."""
    since = time.time()

    async def fewest_scrapes() -> int:
        up = (await query(client, 'up{job=~"seizewatch-.*"} == 1'))["data"]["result"]
        window = int(time.time() - since)
        if len(up) < jobs or window < 1:
            return 0
        counted = f'min(count_over_time(up{{job=~"seizewatch-.*"}}[{window}s]))'
        return int((await query(client, counted))["data"]["result"][0]["value"][1])

    try:
        await eventually(fewest_scrapes, lambda n: n >= scrapes, within=30)
    except TimeoutError:
        targets = (await client.get("/api/v1/targets")).json()["data"]["activeTargets"]
        states = [(t["labels"].get("job"), t["health"], t["lastError"]) for t in targets]
        pytest.fail(f"the targets were not all up and scraped {scrapes} times: {states}")


@pytest.fixture(scope="module")
async def observed(
    isolated: Isolated, worker: Process, ingest: Process, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[str]:
    """The URL of a Prometheus that scraped the pipeline throughout the scenario."""
    entries = await prepare_database(isolated)
    await worker.wait_metric("seizewatch_watchlist_entries", lambda v: v == 3)
    async with FakeTwilio() as fake:
        pager = await start_pager(isolated, fake, tmp_path_factory.mktemp("pager") / "pager.log")
        targets = {
            "seizewatch-worker": f"127.0.0.1:{worker.port}",
            "seizewatch-ingest": f"127.0.0.1:{ingest.port}",
            "seizewatch-pager": f"127.0.0.1:{pager.port}",
        }
        prometheus = LocalPrometheus({job: [address] for job, address in targets.items()}, interval_s=1.0)
        try:
            await asyncio.to_thread(prometheus.start)
            async with httpx.AsyncClient(base_url=prometheus.url, timeout=10) as client:
                await wait_for_scrapes(client, len(targets), scrapes=1)
                scenario = Scenario(isolated, ingest, pager, fake)
                # Round 1: every kind of read; a page, its receipt and the officer's reply.
                await scenario.post(
                    (FIRST, "wanda"), (SOFT_SEALED, "wanda"), (UNWATCHED, "wanda"), (UNWATCHED, "mystery")
                )
                first = await scenario.paged(entries[FIRST])
                await scenario.receipt_and_reply(first)
                await wait_for_scrapes(client, len(targets), scrapes=2)
                # Round 2: the first car again (its task is live: trailed, not paged), a second car paged.
                await scenario.post((FIRST, "wanda"), (SECOND, "wanda"), (UNWATCHED, "mystery"))
                second = await scenario.paged(entries[SECOND])
                await scenario.receipt_and_reply(second)
                for prefix in (
                    "seizewatch_task_sightings_total{",
                    'seizewatch_pages_total{outcome="not_paged_soft_seal"}',
                ):
                    await has_series(pager, prefix)
                await wait_for_scrapes(client, len(targets))
            yield prometheus.url
        finally:
            await asyncio.to_thread(prometheus.stop)
            stop_process(pager)


@pytest.fixture
async def client(observed: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=observed, timeout=10) as c:
        yield c


def family(series_name: str) -> str:
    """The metric family a series belongs to, as Prometheus's metadata names it (OpenMetrics scrape)."""
    return re.sub(r"_(total|bucket|count|sum|created)$", "", series_name)


async def test_every_alert_rule_runs_on_series_that_exist(client: httpx.AsyncClient) -> None:
    series = set((await client.get("/api/v1/label/__name__/values")).json()["data"])
    declared = set((await client.get("/api/v1/metadata")).json()["data"])
    evaluated = {
        rule["name"]: rule
        for group in (await client.get("/api/v1/rules")).json()["data"]["groups"]
        for rule in group["rules"]
    }
    problems: list[str] = []
    for rule in alert_rules():
        answer = await query(client, rule.expr)
        if answer["status"] != "success":
            problems.append(f"{rule.name}: {answer.get('error')}")
        health = evaluated.get(rule.name, {})
        if health.get("health") != "ok":
            problems.append(f"{rule.name}: evaluated as {health.get('health')} {health.get('lastError', '')}")
        for name in sorted(metric_names(rule.expr)):
            if name in RULE_METRICS_WITHOUT_SERIES:
                if name in series:
                    problems.append(f"{name} has a series now: drop it from RULE_METRICS_WITHOUT_SERIES")
                elif family(name) not in declared:
                    problems.append(f"{rule.name}: {name} is declared by no scraped process")
            elif name not in series:
                problems.append(f"{rule.name}: no series {name}")
    assert not problems, "\n".join(problems)


@dataclass(frozen=True)
class PanelQuery:
    dashboard: str
    panel: str
    expr: str  # as written in the dashboard


def panels(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every panel, those inside rows too."""
    for panel in items:
        yield panel
        yield from panels(panel.get("panels") or [])


def dashboard_queries() -> tuple[list[PanelQuery], dict[str, str], list[tuple[str, str]]]:
    """Panel queries, variables' "All" values, and the ``label_values(metric, label)`` of query variables."""
    files = sorted(DASHBOARDS.glob("*.json"))
    assert files, f"no dashboards in {DASHBOARDS}"
    found: list[PanelQuery] = []
    variables: dict[str, str] = {}
    label_values: list[tuple[str, str]] = []
    for path in files:
        board = json.loads(path.read_text())
        for variable in board.get("templating", {}).get("list", []):
            variables[variable["name"]] = variable.get("allValue") or ".*"
            definition = variable.get("query")
            text = definition.get("query", "") if isinstance(definition, dict) else str(definition or "")
            if match := LABEL_VALUES.match(text):
                label_values.append((match["metric"], match["label"]))
        for panel in panels(board.get("panels", [])):
            for target in panel.get("targets") or []:
                if target.get("expr"):
                    found.append(PanelQuery(path.name, panel.get("title", "?"), target["expr"]))
    return found, variables, label_values


def substitute(expr: str, variables: dict[str, str]) -> str:
    def value(match: re.Match[str]) -> str:
        name = match["braced"] or match["plain"] or match["old"]
        if name in GRAFANA_INTERVALS:
            return GRAFANA_INTERVALS[name]
        if name in variables:
            return variables[name]
        raise AssertionError(f"unknown Grafana variable ${name} in {expr!r}")

    return VARIABLE.sub(value, expr)


async def test_every_dashboard_query_returns_data(client: httpx.AsyncClient) -> None:
    assert DASHBOARDS.is_dir(), f"{DASHBOARDS} is missing"
    found, variables, label_values = dashboard_queries()
    problems: list[str] = []
    for q in found:
        answer = await query(client, substitute(q.expr, variables))
        where = f"{q.dashboard} / {q.panel}: {q.expr}"
        if answer["status"] != "success":
            problems.append(f"{where}\n    error: {answer.get('error')}")
        elif not answer["data"]["result"] and q.expr not in EMPTY_IN_THIS_RUN:
            problems.append(f"{where}\n    returned nothing")
        elif answer["data"]["result"] and q.expr in EMPTY_IN_THIS_RUN:
            problems.append(f"{where}\n    returns data now: drop it from EMPTY_IN_THIS_RUN")
    for metric, label in label_values:
        values = (await client.get(f"/api/v1/label/{label}/values", params={"match[]": metric})).json()
        if not values.get("data"):
            problems.append(
                f"variable label_values({metric}, {label}): no values ({values.get('error', '')})"
            )
    stale = set(EMPTY_IN_THIS_RUN) - {q.expr for q in found}
    problems += [f"EMPTY_IN_THIS_RUN lists a query no dashboard has: {expr}" for expr in sorted(stale)]
    assert not problems, "\n".join(problems)
