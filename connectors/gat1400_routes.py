"""GA/T 1400 (视图库) endpoints: devices register with HTTP Digest, keep alive, and push MotorVehicles.

The digest username is the seizewatch source id of the checkpoint platform, its password the source's
credential. A device pushes only while registered (``User-Identify: <DeviceID>``); its reads are
attributed to the source that registered it. Registration state lives in this process: run one GA/T 1400
ingest process per platform (or route a device to the same process), and a restarted process answers
401 until devices register again, which they do on their own.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from connectors import metrics
from connectors.auth import source_secret
from connectors.gat1400 import (
    StatusCode,
    parse_motor_vehicles,
    parse_system_request,
    response_status,
    response_status_document,
    response_status_list,
    status_of,
)
from connectors.gat1400_auth import DigestAuth, Registrations
from connectors.http import IngestContext, context, read_body
from connectors.records import AdapterError
from connectors.registry import AuthMethod, Connector
from connectors.settings import IngestSettings

CONNECTOR = Connector.GAT1400
REALM = "seizewatch"


class Gat1400State:
    """Registrations and the digest verifier of this process."""

    def __init__(self, settings: IngestSettings) -> None:
        master = settings.master_key.get_secret_value().encode() if settings.master_key else b""
        # The nonce key is derived, not the master key itself: nonces are sent to devices.
        nonce_key = hmac.new(master, b"gat1400-digest-nonce", hashlib.sha256).digest()
        self.digest = DigestAuth(REALM, nonce_key)
        self.registrations = Registrations(expiry_s=settings.gat1400_registration_s)
        self.source_of: dict[str, str] = {}


def extras(settings: IngestSettings) -> dict[str, Any]:
    return {"gat1400": Gat1400State(settings)}


def _state(ctx: IngestContext) -> Gat1400State:
    state: Gat1400State = ctx.extras["gat1400"]
    return state


def _answer(
    url: str, code: StatusCode, text: str, object_id: str | None, http: int, **headers: str
) -> JSONResponse:
    metrics.REQUESTS.labels(CONNECTOR.value, str(http)).inc()
    body = response_status_document(response_status(url, code, text, object_id, now=datetime.now(UTC)))
    return JSONResponse(body, status_code=http, headers=headers)


def _password_for(ctx: IngestContext) -> Any:
    def lookup(username: str) -> str | None:
        source = ctx.registry.source(username)
        if source is None or not source.enabled or source.connector is not CONNECTOR:
            return None
        if source.auth is not AuthMethod.DIGEST:
            return None
        return source_secret(ctx.master_key, source.source_id, source.key_version)

    return lookup


def add_routes(app: FastAPI) -> None:
    @app.post("/VIID/System/Register", tags=["GA/T 1400"])
    async def register(request: Request) -> JSONResponse:
        request.scope["seizewatch_connector"] = CONNECTOR.value
        ctx = context(request)
        state = _state(ctx)
        url = "/VIID/System/Register"
        body = await read_body(request, ctx.settings.max_json_bytes)
        authorization = request.headers.get("authorization")
        source_id = state.digest.verify(authorization, "POST", request.url.path, _password_for(ctx))
        if source_id is None:
            stale = state.digest.nonce_is_stale(authorization)
            return _answer(
                url, StatusCode.OTHER_ERROR, "Unauthorized", None, 401,
                **{"WWW-Authenticate": state.digest.challenge(stale=stale)},
            )  # fmt: skip
        try:
            device_id = parse_system_request(body, request.headers.get("content-type"), "RegisterObject")
        except AdapterError as exc:
            return _answer(url, status_of(exc), str(exc), None, 400)
        state.registrations.register(device_id)
        state.source_of[device_id] = source_id
        return _answer(url, StatusCode.OK, "OK", device_id, 200)

    @app.post("/VIID/System/Keepalive", tags=["GA/T 1400"])
    async def keepalive(request: Request) -> JSONResponse:
        request.scope["seizewatch_connector"] = CONNECTOR.value
        ctx = context(request)
        url = "/VIID/System/Keepalive"
        body = await read_body(request, ctx.settings.max_json_bytes)
        try:
            device_id = parse_system_request(body, request.headers.get("content-type"), "KeepaliveObject")
        except AdapterError as exc:
            return _answer(url, status_of(exc), str(exc), None, 400)
        if not _state(ctx).registrations.keepalive(device_id):
            return _answer(
                url, StatusCode.INVALID_OPERATION, "not registered: register first", device_id, 401
            )
        return _answer(url, StatusCode.OK, "OK", device_id, 200)

    @app.post("/VIID/System/UnRegister", tags=["GA/T 1400"])
    async def unregister(request: Request) -> JSONResponse:
        request.scope["seizewatch_connector"] = CONNECTOR.value
        ctx = context(request)
        url = "/VIID/System/UnRegister"
        body = await read_body(request, ctx.settings.max_json_bytes)
        try:
            device_id = parse_system_request(body, request.headers.get("content-type"), "UnRegisterObject")
        except AdapterError as exc:
            return _answer(url, status_of(exc), str(exc), None, 400)
        state = _state(ctx)
        if request.headers.get("user-identify") != device_id or not state.registrations.unregister(device_id):
            return _answer(url, StatusCode.INVALID_OPERATION, "not registered", device_id, 401)
        state.source_of.pop(device_id, None)
        return _answer(url, StatusCode.OK, "OK", device_id, 200)

    @app.post("/VIID/MotorVehicles", tags=["GA/T 1400"])
    async def motor_vehicles(request: Request) -> JSONResponse:
        request.scope["seizewatch_connector"] = CONNECTOR.value
        ctx = context(request)
        state = _state(ctx)
        url = "/VIID/MotorVehicles"
        body = await read_body(request, ctx.settings.max_json_bytes)
        device_id = request.headers.get("user-identify", "")
        source_id = state.source_of.get(device_id)
        if source_id is None or not state.registrations.is_active(device_id):
            return _answer(
                url, StatusCode.INVALID_OPERATION, "not registered: register first", device_id or None, 401
            )
        state.registrations.keepalive(device_id)  # an accepted push renews the registration
        ingestor = ctx.ingestors[CONNECTOR]
        try:
            items = parse_motor_vehicles(body, request.headers.get("content-type"))
        except AdapterError as exc:
            await ingestor.refuse_payload(source_id, body, exc)
            return _answer(url, status_of(exc), str(exc), None, 400)
        outcomes = await ingestor.submit(source_id, items, raw=body)
        now = datetime.now(UTC)
        statuses = []
        for item, outcome in zip(items, outcomes, strict=True):
            object_id = item.record_id if not isinstance(item, AdapterError) else None
            if outcome.accepted:
                statuses.append(response_status(url, StatusCode.OK, "OK", object_id, now=now))
            else:
                code = status_of(item) if isinstance(item, AdapterError) else StatusCode.INVALID_JSON_CONTENT
                statuses.append(response_status(url, code, outcome.message or "refused", object_id, now=now))
        http = 200 if any(o.accepted for o in outcomes) else 400
        metrics.REQUESTS.labels(CONNECTOR.value, str(http)).inc()
        return JSONResponse(response_status_list(statuses), status_code=http)
