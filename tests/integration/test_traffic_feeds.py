"""The traffic police's side (一键扣车) against the real Kafka and PostgreSQL: results they post reach
``traffic.seizure-results`` (or are refused, and dead-lettered), and the exported list of vehicles to stop
holds exactly the seize entries in force."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
import pytest
from pydantic import SecretStr

from connectors.auth import API_KEY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, sign, source_secret
from connectors.registry import AuthMethod, Connector, add_source
from connectors.traffic_export import COLUMNS, UTF8_BOM
from streams import watchstore
from streams.deadletter import read_headers
from streams.topics import SEIZURE_REQUESTS, SEIZURE_RESULTS, SIGHTINGS_DLQ
from streams.traffic import SeizureRequestV1, SeizureResultV1
from streams.vehicles import Action
from tests.conftest import MASTER_KEY, ROOT, Isolated, Process, topic_records

pytestmark = pytest.mark.integration

URL = "/traffic/v1/sources/tp-taizhou/results"


def key(source_id: str) -> str:
    return source_secret(SecretStr(MASTER_KEY), source_id, 1)


@pytest.fixture(scope="module")
async def registered(isolated: Isolated) -> None:
    conn = await asyncpg.connect(isolated.settings.postgres.dsn.get_secret_value())
    try:
        await add_source(conn, "tp-taizhou", Connector.TRAFFIC, AuthMethod.API_KEY)
        await add_source(conn, "tp-tiantai", Connector.TRAFFIC, AuthMethod.HMAC)
        await add_source(conn, "lot-jiaojiang", Connector.PARKING, AuthMethod.API_KEY)
    finally:
        await conn.close()


@pytest.fixture
async def client(ingest: Process, registered: None) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{ingest.port}", timeout=30) as c:
        yield c


def result(**changes: Any) -> dict[str, Any]:
    item: dict[str, Any] = {
        "result_id": f"tp-{uuid.uuid4().hex[:12]}", "request_id": str(uuid.uuid4()), "plate": "浙J12345",
        "result": "seized", "at": "2026-11-23T10:15:00+08:00", "place": "椒江区开元路与东海大道交叉口",
        "district": "331002", "officer": "王警官 012345", "unit": "台州市公安局交通警察支队椒江大队",
        "custody_kind": "custodian", "custody_name": "台州市椒江区永安车辆保管有限公司",
    }  # fmt: skip
    item.update(changes)
    return {k: v for k, v in item.items() if v is not None}


async def post(client: httpx.AsyncClient, results: list[dict[str, Any]]) -> httpx.Response:
    return await client.post(URL, json={"results": results}, headers={API_KEY_HEADER: key("tp-taizhou")})


async def results_on_topic(isolated: Isolated) -> dict[str, tuple[bytes, SeizureResultV1, dict[str, str]]]:
    """result id → (key, result, seizewatch headers) of every record on the results topic."""
    found = {}
    for record in await topic_records(isolated, SEIZURE_RESULTS):
        value = SeizureResultV1.model_validate_json(record.value)
        found[value.result_id] = (record.key, value, read_headers(record.headers))
    return found


async def test_valid_results_reach_the_topic_keyed_by_request_id(
    client: httpx.AsyncClient, isolated: Isolated
) -> None:
    posted = [
        result(),
        result(result="stopped", custody_kind=None, custody_name=None, note="held at the checkpoint"),
        result(result="not_found", custody_kind=None, custody_name=None, district=None),
    ]
    response = await post(client, posted)
    # Stored in Kafka, yet no pager applied them (none runs here): 207, each result "pending".
    assert response.status_code == 207, response.text
    body = response.json()
    assert (body["queued"], body["result_ids"], body["rejected"]) == (3, [r["result_id"] for r in posted], [])
    assert [(a["index"], a["result_id"], a["outcome"], a["applied"]) for a in body["results"]] == [
        (i, r["result_id"], "pending", False) for i, r in enumerate(posted)
    ]
    on_topic = await results_on_topic(isolated)
    for item in posted:
        record_key, value, headers = on_topic[item["result_id"]]
        assert record_key == item["request_id"].encode()
        assert value == SeizureResultV1.model_validate(item)
        assert headers["seizewatch.source"] == "tp-taizhou"


async def test_an_hmac_signed_batch_in_gbk(client: httpx.AsyncClient, isolated: Isolated) -> None:
    item = result(unit="天台县公安局交通警察大队")
    body = orjson.dumps({"results": [item]}).decode().encode("gbk")
    stamp = str(int(time.time()))
    headers = {
        "content-type": "application/json; charset=GBK",
        TIMESTAMP_HEADER: stamp,
        SIGNATURE_HEADER: sign(key("tp-tiantai"), stamp, body),
    }
    response = await client.post("/traffic/v1/sources/tp-tiantai/results", content=body, headers=headers)
    assert response.status_code == 207, response.text  # queued; pending (no pager here)
    _, value, headers_on_topic = (await results_on_topic(isolated))[item["result_id"]]
    assert value.unit == "天台县公安局交通警察大队"
    assert headers_on_topic["seizewatch.source"] == "tp-tiantai"


async def test_a_mixed_batch_is_queued_with_per_item_rejections(
    client: httpx.AsyncClient, isolated: Isolated
) -> None:
    good = result()
    no_custody = result(custody_kind=None, custody_name=None)
    naive = result(at="2026-11-23 10:15:00")
    response = await post(client, [no_custody, good, naive])
    assert response.status_code == 207, response.text  # not everything was applied
    body = response.json()
    assert (body["queued"], body["result_ids"]) == (1, [good["result_id"]])
    assert [(a["index"], a["outcome"]) for a in body["results"]] == [(1, "pending")]
    rejected = {item["index"]: item for item in body["rejected"]}
    assert rejected.keys() == {0, 2}
    assert rejected[0]["field"] == "results[0].custody_kind"
    assert rejected[2]["field"] == "results[2].at"
    on_topic = await results_on_topic(isolated)
    assert good["result_id"] in on_topic
    assert no_custody["result_id"] not in on_topic
    assert naive["result_id"] not in on_topic
    # the payload is kept with the reasons, as every connector keeps what it refused
    letters = [(rec.value, read_headers(rec.headers)) for rec in await topic_records(isolated, SIGHTINGS_DLQ)]
    [letter] = [headers for raw, headers in letters if no_custody["result_id"].encode() in raw]
    assert (letter["seizewatch.stage"], letter["seizewatch.source"]) == ("traffic", "tp-taizhou")
    assert letter["seizewatch.field"] == "results[0].custody_kind"
    assert "results[2].at" in letter["seizewatch.message"]


async def test_a_batch_without_a_valid_result_gets_400_naming_the_fields(
    client: httpx.AsyncClient, isolated: Isolated
) -> None:
    unknown_kind = result(result="towed")
    no_request = result(request_id=None)
    response = await post(client, [unknown_kind, no_request])
    assert response.status_code == 400, response.text
    body = response.json()
    assert (body["queued"], body["result_ids"], body["results"]) == (0, [], [])
    assert [(r["index"], r["reason"], r["field"]) for r in body["rejected"]] == [
        (0, "invalid_field", "results[0].result"),
        (1, "missing_field", "results[1].request_id"),
    ]
    on_topic = await results_on_topic(isolated)
    assert unknown_kind["result_id"] not in on_topic
    assert no_request["result_id"] not in on_topic


async def test_an_unparseable_payload_is_dead_lettered_and_refused(
    client: httpx.AsyncClient, isolated: Isolated
) -> None:
    auth = {API_KEY_HEADER: key("tp-taizhou")}
    truncated = b'{"results": [{"result_id": "tp-truncated", "plate": "\xe6\xb5\x99J1'
    r = await client.post(URL, content=truncated, headers=auth)
    assert (r.status_code, r.json()["error"]["reason"]) == (400, "not_json")
    r = await client.post(URL, json={"results": [result() for _ in range(101)]}, headers=auth)
    assert (r.status_code, r.json()["error"]["reason"], r.json()["error"]["field"]) == (
        400, "too_many_records", "results",
    )  # fmt: skip
    letters = {rec.value: read_headers(rec.headers) for rec in await topic_records(isolated, SIGHTINGS_DLQ)}
    assert letters[truncated]["seizewatch.reason"] == "not_json"
    assert letters[truncated]["seizewatch.stage"] == "traffic"
    assert letters[truncated]["seizewatch.source"] == "tp-taizhou"


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        (URL, {API_KEY_HEADER: "not-the-key"}),
        (URL, {}),
        ("/traffic/v1/sources/tp-nowhere/results", {API_KEY_HEADER: key("tp-nowhere")}),
        # a parking source cannot report seizures, even with its own credential
        ("/traffic/v1/sources/lot-jiaojiang/results", {API_KEY_HEADER: key("lot-jiaojiang")}),
    ],
)
async def test_senders_that_do_not_authenticate_get_401(
    client: httpx.AsyncClient, isolated: Isolated, path: str, headers: dict[str, str]
) -> None:
    item = result()
    response = await client.post(path, json={"results": [item]}, headers=headers)
    assert response.status_code == 401
    assert response.json()["error"]["reason"] == "unauthorized"
    assert item["result_id"] not in await results_on_topic(isolated)


# --- the exported list of vehicles to stop ----------------------------------------------------------


def run_traffic(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[bytes]:
    """`seizewatch traffic ARGS…` as a real process (bytes: the export is checked byte for byte)."""
    done = subprocess.run(
        [sys.executable, "-m", "seizewatch.cli", "traffic", *args],
        env={**env, "COLUMNS": "200"},
        capture_output=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        pytest.fail(
            f"seizewatch traffic {' '.join(args)} failed ({done.returncode}):\n{done.stderr.decode()}"
        )
    return done


@pytest.fixture(scope="module")
async def entries(isolated: Isolated) -> dict[str, watchstore.EntryRecord]:
    now = datetime.now(UTC)
    month_ago, yesterday = now - timedelta(days=30), now - timedelta(days=1)
    court_a, court_b = "台州市椒江区人民法院", "天台县人民法院"

    def new(plate: str, court: str, action: Action, **changes: Any) -> watchstore.NewEntry:
        return watchstore.NewEntry(
            plate=plate, case_number=f"(2024)浙执{plate[-3:]}号", court=court, action=action,
            vehicle="白色 大众帕萨特", **changes,
        )  # fmt: skip

    wanted = {
        "seize_b": new("浙J20001", court_b, Action.SEIZE),
        "seize_a2": new("浙J20009", court_a, Action.SEIZE, valid_until=now + timedelta(days=90)),
        "seize_a1": new("浙AD12345", court_a, Action.SEIZE, valid_from=now - timedelta(days=3)),
        "locate": new("浙J20002", court_a, Action.LOCATE),
        "soft_seal": new("浙J20003", court_a, Action.SOFT_SEAL),
        "released": new("浙J20004", court_a, Action.SEIZE),
        "seized": new("浙J20007", court_b, Action.SEIZE),
        "expired": new("浙J20005", court_a, Action.SEIZE, valid_from=month_ago, valid_until=yesterday),
        "not_yet": new("浙J20006", court_a, Action.SEIZE, valid_from=now + timedelta(days=1)),
    }
    conn = await asyncpg.connect(isolated.settings.postgres.dsn.get_secret_value())
    try:
        added = {
            name: await watchstore.add_entry(conn, entry, by="clerk-li") for name, entry in wanted.items()
        }
        await watchstore.release_entry(conn, added["released"].entry.entry_id, by="clerk-li", reason="paid")
        await watchstore.mark_seized(
            conn, added["seized"].entry.entry_id, by="judge-wang", reason="impounded"
        )
    finally:
        await conn.close()
    return added


def expected_ids(entries: dict[str, watchstore.EntryRecord]) -> list[str]:
    """Court, then plate: 台州… before 天台…, 浙AD… before 浙J…."""
    return [str(entries[name].entry.entry_id) for name in ("seize_a1", "seize_a2", "seize_b")]


async def test_json_export_lists_exactly_the_seize_entries_in_force(
    isolated: Isolated, entries: dict[str, watchstore.EntryRecord]
) -> None:
    done = run_traffic(isolated.env, "export", "--format", "json")
    requests = [SeizureRequestV1.model_validate(item) for item in orjson.loads(done.stdout)]
    assert [str(r.request_id) for r in requests] == expected_ids(entries)
    first = requests[0]
    entry = entries["seize_a1"].entry
    assert (first.plate, first.court, first.case_number) == ("浙AD12345", entry.court, entry.case_number)
    assert first.requested_at == entries["seize_a1"].updated_at  # as on traffic.seizure-requests
    assert first.valid_until is None
    assert requests[1].valid_until == entries["seize_a2"].entry.valid_until
    assert first.court_contact is None  # no pager computed a contact for these courts


async def test_the_export_agrees_with_the_compacted_topic(
    isolated: Isolated, entries: dict[str, watchstore.EntryRecord]
) -> None:
    """The latest outbox record per entry on traffic.seizure-requests is what the export lists (the other
    way to the police, filled by streams/watchstore.py)."""
    exported = orjson.loads(run_traffic(isolated.env, "export", "--format", "json").stdout)
    conn = await asyncpg.connect(isolated.settings.postgres.dsn.get_secret_value())
    try:
        rows = await conn.fetch(
            "SELECT DISTINCT ON (key) key, payload FROM outbox WHERE topic = $1 ORDER BY key, id DESC",
            SEIZURE_REQUESTS,
        )
    finally:
        await conn.close()
    on_topic = {
        row["key"]: SeizureRequestV1.model_validate_json(row["payload"])
        for row in rows
        if row["payload"] is not None
    }
    # The topic also holds the seals not in force now (expired: valid_until says so; not yet in force:
    # nothing in SeizureRequestV1 says so); the export leaves both out.
    outside = {str(entries[name].entry.entry_id) for name in ("expired", "not_yet")}
    assert outside <= on_topic.keys()
    in_force = {k: v for k, v in on_topic.items() if k not in outside}
    assert in_force == {item["request_id"]: SeizureRequestV1.model_validate(item) for item in exported}


async def test_csv_export_to_a_file_for_excel(
    isolated: Isolated, entries: dict[str, watchstore.EntryRecord], tmp_path: Path
) -> None:
    out = tmp_path / "扣车清单.csv"
    done = run_traffic(isolated.env, "export", "--format", "csv", "--out", str(out))
    assert done.stdout == b""
    assert "3 vehicles written" in done.stderr.decode()
    data = out.read_bytes()
    assert data.startswith(UTF8_BOM)
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline="")))
    assert tuple(rows[0].keys()) == COLUMNS
    assert [row["request_id"] for row in rows] == expected_ids(entries)
    assert rows[2]["court"] == "天台县人民法院"

    only_b = run_traffic(isolated.env, "export", "--format", "json", "--court", "天台县人民法院")
    assert [item["request_id"] for item in orjson.loads(only_b.stdout)] == expected_ids(entries)[2:]


async def test_list_shows_the_same_vehicles(
    isolated: Isolated, entries: dict[str, watchstore.EntryRecord]
) -> None:
    done = run_traffic(isolated.env, "list")
    shown = done.stdout.decode()
    for plate in ("浙AD12345", "浙J20009", "浙J20001"):
        assert plate in shown
    for plate in ("浙J20002", "浙J20003", "浙J20004", "浙J20005", "浙J20006", "浙J20007"):
        assert plate not in shown
    assert "3 vehicles to stop" in shown
