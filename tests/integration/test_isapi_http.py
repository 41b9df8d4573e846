"""Hikvision ISAPI over HTTP: camera pushes with the key in the URL, multipart with pictures, heartbeats."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest

from connectors.registry import AuthMethod, Connector, add_source
from streams.deadletter import read_headers
from streams.topics import SIGHTINGS_DLQ
from tests.conftest import Isolated, Process, eventually, topic_records
from tests.connectors.test_isapi import HEARTBEAT, MULTIPART, alert_xml, camera_multipart
from tests.integration.test_connectors import key, sightings_by_id

pytestmark = pytest.mark.integration

SOURCE = "cam-luqiao"


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S+08:00", time.gmtime(time.time() + 8 * 3600 - 3))


@pytest.fixture(scope="module")
async def camera_source(isolated: Isolated) -> None:
    conn = await asyncpg.connect(isolated.settings.postgres.dsn.get_secret_value())
    try:
        await add_source(conn, SOURCE, Connector.ISAPI, AuthMethod.API_KEY)
    finally:
        await conn.close()


@pytest.fixture
async def client(ingest: Process, camera_source: None) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{ingest.port}", timeout=30) as c:
        await eventually(lambda: c.post(url(), content=HEARTBEAT), lambda r: r.status_code != 401)
        yield c


def url(key_value: str | None = None) -> str:
    return f"/isapi/v1/sources/{SOURCE}/events?key={key_value or key(SOURCE)}"


async def test_camera_pushes_become_sightings(
    client: httpx.AsyncClient, isolated: Isolated, ingest: Process
) -> None:
    plain = await client.post(
        url(),
        content=alert_xml(plate="浙J12345", uuid="u-1", when=now_iso()).encode(),
        headers={"content-type": "application/xml"},
    )
    assert plain.status_code == 200, plain.text
    multipart = await client.post(
        url(),
        content=camera_multipart(alert_xml(plate="蓝浙JD80123", uuid="u-2", when=now_iso()).encode()),
        headers={"content-type": MULTIPART},
    )
    assert multipart.status_code == 200, multipart.text
    plates = {
        s.plate
        for copies in (await sightings_by_id(isolated)).values()
        for s in copies
        if s.source_id == SOURCE
    }
    assert plates == {"浙J12345", "浙JD80123"}  # the colour prefix 蓝 is the camera's, not the plate's

    before = (await ingest.metrics()).get('seizewatch_ingest_ignored_events_total{connector="isapi"}', 0)
    heartbeat = await client.post(url(), content=HEARTBEAT, headers={"content-type": "application/xml"})
    assert heartbeat.status_code == 200
    after = (await ingest.metrics())['seizewatch_ingest_ignored_events_total{connector="isapi"}']
    assert after == before + 1


async def test_bad_pushes(client: httpx.AsyncClient, isolated: Isolated) -> None:
    assert (await client.post(url("wrong"), content=HEARTBEAT)).status_code == 401
    truncated = alert_xml(plate="浙J12345", when=now_iso()).encode()[:120]
    response = await client.post(url(), content=truncated, headers={"content-type": "application/xml"})
    assert (response.status_code, response.json()["error"]["reason"]) == (400, "bad_xml")
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>'
        b"<EventNotificationAlert>&lol2;</EventNotificationAlert>"
    )
    response = await client.post(url(), content=bomb, headers={"content-type": "application/xml"})
    assert (response.status_code, response.json()["error"]["reason"]) == (400, "bad_xml")
    letters = {rec.value: read_headers(rec.headers) for rec in await topic_records(isolated, SIGHTINGS_DLQ)}
    assert letters[truncated]["seizewatch.source"] == SOURCE
    assert letters[bomb]["seizewatch.stage"] == "isapi"
