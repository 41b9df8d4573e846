"""The HTTP connectors as a process against the real Kafka and PostgreSQL: what reaches the topic,
what is refused and why, and what lands in the dead-letter topic."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import asyncpg
import httpx
import orjson
import pytest

from connectors.auth import API_KEY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, sign, source_secret
from connectors.registry import AuthMethod, Connector, add_source, upsert_devices
from streams.deadletter import read_headers
from streams.events import Sighting, SightingFlag, SourceKind, decode_sighting
from streams.topics import SIGHTINGS, SIGHTINGS_DLQ
from tests.conftest import MASTER_KEY, Isolated, Process, topic_records

pytestmark = pytest.mark.integration

DEVICES: list[dict[str, object]] = [
    {"device_id": "wanda/g1", "source_id": "lot-wanda", "name": "椒江万达广场停车场 1号入口",
     "district": "331002", "device_group": "parking-jiaojiang", "latitude": 28.6561, "longitude": 121.4208,
     "address": "椒江区开元路", "owner": "万达物业"},
    {"device_id": "TZ-JJ-001/E1", "source_id": "lot-hmac", "name": "黄岩人民医院停车场 入口",
     "district": "331003", "device_group": "parking-huangyan", "kind": "parking_entry",
     "address": "黄岩区横街路218号"},  # no coordinates: the address travels all the same
]  # fmt: skip


def key(source_id: str) -> str:
    from pydantic import SecretStr

    return source_secret(SecretStr(MASTER_KEY), source_id, 1)


@pytest.fixture(scope="module")
async def registered(isolated: Isolated) -> None:
    conn = await asyncpg.connect(isolated.settings.postgres.dsn.get_secret_value())
    try:
        await add_source(conn, "lot-wanda", Connector.PARKING, AuthMethod.API_KEY)
        await add_source(conn, "lot-hmac", Connector.PARKING, AuthMethod.HMAC, vendor="example_cn")
        await add_source(conn, "kk-platform", Connector.GAT1400, AuthMethod.DIGEST)
        await upsert_devices(conn, DEVICES)
    finally:
        await conn.close()


@pytest.fixture
async def client(ingest: Process, registered: None) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{ingest.port}", timeout=30) as c:
        yield c


async def sightings_by_id(isolated: Isolated) -> dict[str, list[Sighting]]:
    found: dict[str, list[Sighting]] = {}
    for record in await topic_records(isolated, SIGHTINGS):
        s = decode_sighting(record.value)
        found.setdefault(s.sighting_id, []).append(s)
    return found


def generic(record_id: str, **changes: object) -> dict[str, object]:
    record: dict[str, object] = {
        "record_id": record_id, "lot_id": "wanda", "gate": "g1", "direction": "in", "plate": "浙Ｊ·12345",
        "plate_colour": "蓝", "time": "2026-11-23T18:00:00+08:00", "confidence": 0.91,
    }  # fmt: skip
    record["time"] = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(time.time() - 5))
    record.update(changes)
    return record


async def post_generic(client: httpx.AsyncClient, records: list[dict[str, object]]) -> httpx.Response:
    return await client.post(
        "/parking/v1/sources/lot-wanda/records",
        json={"records": records},
        headers={API_KEY_HEADER: key("lot-wanda")},
    )


async def test_a_generic_read_becomes_an_enriched_canonical_sighting(
    client: httpx.AsyncClient, isolated: Isolated
) -> None:
    response = await post_generic(client, [generic("r-100"), generic("r-101", lot_id="unknown-lot")])
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["accepted"] == 2
    assert body["rejected"] == []
    known_id, unknown_id = body["sighting_ids"]
    found = await sightings_by_id(isolated)
    [known] = found[known_id]
    assert known.plate == "浙J12345"
    assert known.plate_raw == "浙Ｊ·12345"
    assert known.source_kind is SourceKind.PARKING_ENTRY
    assert (known.district, known.device_name) == ("331002", "椒江万达广场停车场 1号入口")
    assert known.location is not None
    assert known.location.latitude == pytest.approx(28.6561)
    assert (known.address, known.location.address) == ("椒江区开元路", "椒江区开元路")
    assert known.flags == ()
    [unknown] = found[unknown_id]
    assert unknown.flags == (SightingFlag.UNKNOWN_DEVICE,)
    assert unknown.district is None
    assert unknown.address is None


async def test_hmac_signed_vendor_payload_in_gbk(client: httpx.AsyncClient, isolated: Isolated) -> None:
    now = time.localtime(time.time() - 60)
    document = {
        "parkCode": "TZ-JJ-001",
        "data": [{"orderId": "o-9", "gateCode": "E1", "carNo": "浙J54321", "plateColor": "黄", "inOutType": 1,
                  "passTime": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(time.mktime(now) + 8 * 3600))}],
    }  # fmt: skip
    body = orjson.dumps(document).decode().encode("gbk")
    stamp = str(int(time.time()))
    headers = {
        "content-type": "application/json; charset=GBK",
        TIMESTAMP_HEADER: stamp,
        SIGNATURE_HEADER: sign(key("lot-hmac"), stamp, body),
    }
    response = await client.post("/parking/v1/sources/lot-hmac/records", content=body, headers=headers)
    assert response.status_code == 200, response.text
    [sighting_id] = response.json()["sighting_ids"]
    [s] = (await sightings_by_id(isolated))[sighting_id]
    # The device registry says this gate is an entry: it overrides the vendor's exit flag.
    assert (s.plate, s.source_kind, s.district) == ("浙J54321", SourceKind.PARKING_ENTRY, "331003")
    assert (s.address, s.location) == ("黄岩区横街路218号", None)  # the registry's, with no coordinates
    tampered = await client.post("/parking/v1/sources/lot-hmac/records", content=body + b" ", headers=headers)
    assert tampered.status_code == 401


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        ("/parking/v1/sources/lot-wanda/records", {API_KEY_HEADER: "not-the-key"}),
        ("/parking/v1/sources/lot-wanda/records", {}),
        ("/parking/v1/sources/no-such-lot/records", {API_KEY_HEADER: "x"}),
        # a GA/T 1400 source cannot post parking reads, even with its own credential
        ("/parking/v1/sources/kk-platform/records", {API_KEY_HEADER: key("kk-platform")}),
    ],
)
async def test_senders_that_do_not_authenticate_get_401(
    client: httpx.AsyncClient, path: str, headers: dict[str, str]
) -> None:
    response = await client.post(path, json={"records": [generic("r-x")]}, headers=headers)
    assert response.status_code == 401
    assert response.json()["error"]["reason"] == "unauthorized"


async def test_malformed_payloads_get_the_right_answer_and_a_dead_letter(
    client: httpx.AsyncClient, isolated: Isolated
) -> None:
    auth = {API_KEY_HEADER: key("lot-wanda")}
    url = "/parking/v1/sources/lot-wanda/records"
    truncated = b'{"records": [{"record_id": "r-1", "plate": "\xe6\xb5\x99J1'
    r = await client.post(url, content=truncated, headers=auth)
    assert (r.status_code, r.json()["error"]["reason"]) == (400, "not_json")

    gbk_as_utf8 = orjson.dumps({"records": [generic("r-2")]}).decode().encode("gbk")
    r = await client.post(
        url, content=gbk_as_utf8, headers={**auth, "content-type": "application/json; charset=utf-8"}
    )
    assert (r.status_code, r.json()["error"]["reason"]) == (400, "bad_encoding")

    future = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(time.time() + 3 * 3600))
    r = await post_generic(
        client,
        [
            generic("r-3", time=future),
            generic("r-4", plate="浙J12😀45"),
            generic("r-5", plate="ABSURDPLATE123456"),
        ],
    )
    assert r.status_code == 400
    rejected = {item["index"]: item for item in r.json()["rejected"]}
    assert "device clock" in rejected[0]["message"]
    assert rejected[1]["reason"] == "illegal_character"
    assert rejected[1]["field"] == "plate"
    assert rejected[2]["reason"] == "bad_length"

    r = await post_generic(client, [{"record_id": "r-6", "plate": "浙J12345"}])
    assert r.status_code == 400
    [problem] = r.json()["rejected"]
    assert problem["field"] == "records[0].lot_id"
    for missing in ("records[0].lot_id", "records[0].gate", "records[0].direction", "records[0].time"):
        assert missing in problem["message"]

    huge = b'{"records": [' + b" " * (2 << 20) + b"]}"
    r = await client.post(url, content=huge, headers=auth)
    assert (r.status_code, r.json()["error"]["reason"]) == (413, "too_large")

    letters = [(rec.value, read_headers(rec.headers)) for rec in await topic_records(isolated, SIGHTINGS_DLQ)]
    by_value = dict(letters)
    assert by_value[truncated]["seizewatch.reason"] == "not_json"
    assert by_value[truncated]["seizewatch.source"] == "lot-wanda"
    assert by_value[truncated]["seizewatch.stage"] == "parking"
    assert by_value[gbk_as_utf8]["seizewatch.reason"] == "bad_encoding"
    assert any("device clock" in h["seizewatch.message"] for h in by_value.values())


async def test_unknown_devices_and_rejects_are_counted(client: httpx.AsyncClient, ingest: Process) -> None:
    before = await ingest.metrics()
    await post_generic(client, [generic("r-200", lot_id="mystery"), generic("r-201", plate="无牌")])
    after = await ingest.metrics()
    unknown = 'seizewatch_ingest_unknown_device_reads_total{connector="parking"}'
    rejected = 'seizewatch_ingest_reads_rejected_total{connector="parking",reason="no_plate"}'
    assert after[unknown] == before.get(unknown, 0) + 1
    assert after[rejected] == before.get(rejected, 0) + 1
    assert after['seizewatch_ingest_last_read_timestamp_seconds{device_group="unknown"}'] > time.time() - 60
