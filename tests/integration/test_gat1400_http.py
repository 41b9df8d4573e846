"""GA/T 1400 over HTTP: digest registration, keepalive, MotorVehicles pushes, unregistration."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import asyncpg
import httpx
import orjson
import pytest

from connectors.registry import AuthMethod, Connector, add_source, upsert_devices
from streams.events import SourceKind
from tests.conftest import Isolated, Process, eventually
from tests.integration.test_connectors import key, sightings_by_id

pytestmark = pytest.mark.integration

DEVICE = "33100200001320000001"  # 20-digit national device code
SOURCE = "kk-taizhou"


@pytest.fixture
async def client(ingest: Process, isolated: Isolated) -> AsyncIterator[httpx.AsyncClient]:
    conn = await asyncpg.connect(isolated.settings.postgres.dsn.get_secret_value())
    try:
        await add_source(conn, SOURCE, Connector.GAT1400, AuthMethod.DIGEST)
        await upsert_devices(
            conn,
            [{"device_id": DEVICE, "source_id": SOURCE, "name": "G15沈海高速 路桥卡口 2车道",
              "district": "331004", "device_group": "checkpoints-taizhou", "kind": "checkpoint"}],
        )  # fmt: skip
    finally:
        await conn.close()
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{ingest.port}", timeout=30) as c:
        yield c


def register_body() -> dict[str, object]:
    return {"RegisterObject": {"DeviceID": DEVICE}}


def vehicles(*objects: dict[str, object]) -> dict[str, object]:
    return {"MotorVehicleListObject": {"MotorVehicleObject": list(objects)}}


def vehicle(vehicle_id: str, plate: str | None) -> dict[str, object]:
    passed = time.strftime("%Y%m%d%H%M%S", time.gmtime(time.time() + 8 * 3600 - 10))
    obj: dict[str, object] = {
        "MotorVehicleID": vehicle_id, "DeviceID": DEVICE, "TollgateID": "33100200001210000001", "LaneNo": 2,
        "HasPlate": "1", "PlateColor": "5", "PassTime": passed, "StorageUrl1": "http://kk/img/1.jpg",
    }  # fmt: skip
    if plate is not None:
        obj["PlateNo"] = plate
    return obj


async def test_register_keepalive_push_unregister(client: httpx.AsyncClient, isolated: Isolated) -> None:
    pushed = orjson.dumps(vehicles(vehicle("mv-1", "浙J12345")))
    early = await client.post("/VIID/MotorVehicles", content=pushed, headers={"User-Identify": DEVICE})
    assert early.status_code == 401  # not registered yet

    challenge = await client.post("/VIID/System/Register", json=register_body())
    assert challenge.status_code == 401
    assert challenge.headers["WWW-Authenticate"].startswith('Digest realm="seizewatch"')
    wrong = await client.post(
        "/VIID/System/Register", json=register_body(), auth=httpx.DigestAuth(SOURCE, "nope")
    )
    assert wrong.status_code == 401

    # The source may reach the server's registry a moment after it was added.
    ok = await eventually(
        lambda: client.post(
            "/VIID/System/Register", json=register_body(), auth=httpx.DigestAuth(SOURCE, key(SOURCE))
        ),
        lambda r: r.status_code == 200,
    )
    assert ok.json()["ResponseStatusObject"]["StatusCode"] == 0
    assert ok.json()["ResponseStatusObject"]["Id"] == DEVICE

    alive = await client.post("/VIID/System/Keepalive", json={"KeepaliveObject": {"DeviceID": DEVICE}})
    assert alive.status_code == 200

    # A GBK body from an older platform, one object valid and one without a plate number.
    body = orjson.dumps(vehicles(vehicle("mv-2", "浙J54321"), vehicle("mv-3", None))).decode().encode("gbk")
    response = await client.post(
        "/VIID/MotorVehicles",
        content=body,
        headers={"User-Identify": DEVICE, "content-type": "application/json; charset=GBK"},
    )
    assert response.status_code == 200, response.text
    statuses = response.json()["ResponseStatusListObject"]["ResponseStatusObject"]
    # One status per pushed object, in order; a refused object may not have a usable id.
    assert [(s.get("Id"), s["StatusCode"]) for s in statuses] == [("mv-2", 0), (None, 8)]
    assert "PlateNo" in statuses[1]["StatusString"]

    found = [
        s for copies in (await sightings_by_id(isolated)).values() for s in copies if s.source_id == SOURCE
    ]
    [sighting] = found
    assert (sighting.plate, sighting.source_kind, sighting.district) == (
        "浙J54321",
        SourceKind.CHECKPOINT,
        "331004",
    )
    assert sighting.device_name == "G15沈海高速 路桥卡口 2车道"
    assert sighting.image_ref == "http://kk/img/1.jpg"

    truncated = await client.post("/VIID/MotorVehicles", content=body[:40], headers={"User-Identify": DEVICE})
    assert truncated.status_code == 400
    assert truncated.json()["ResponseStatusObject"]["StatusCode"] == 7  # InvalidJSONFormat

    gone = await client.post(
        "/VIID/System/UnRegister",
        json={"UnRegisterObject": {"DeviceID": DEVICE}},
        headers={"User-Identify": DEVICE},
    )
    assert gone.status_code == 200
    after = await client.post("/VIID/MotorVehicles", content=pushed, headers={"User-Identify": DEVICE})
    assert after.status_code == 401
