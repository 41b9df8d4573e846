"""``POST /parking/v1/sources/{source_id}/records``: parking systems push entry and exit reads."""

from __future__ import annotations

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from connectors import metrics
from connectors.http import Refused, authenticate, context, outcomes_response, read_body, refuse_unparseable
from connectors.parking import VENDORS, ParkingBatchV1
from connectors.records import AdapterError, charset_of, decode_text
from connectors.registry import Connector

CONNECTOR = Connector.PARKING


def add_routes(app: FastAPI) -> None:
    @app.post(
        "/parking/v1/sources/{source_id}/records",
        tags=["parking"],
        summary="Push entry/exit reads (the source's vendor mapping applies; 'generic' is this schema).",
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": ParkingBatchV1.model_json_schema()}},
            }
        },
    )
    async def push(source_id: str, request: Request) -> JSONResponse:
        request.scope["seizewatch_connector"] = CONNECTOR.value
        ctx = context(request)
        body = await read_body(request, ctx.settings.max_json_bytes)
        source = authenticate(ctx, source_id, CONNECTOR, request, body)
        adapter = VENDORS.get(source.vendor)
        if adapter is None:
            raise Refused(
                500, "no_adapter", f"source {source_id} names vendor {source.vendor!r}, which has no adapter"
            )
        try:
            text, encoding = decode_text(body, charset_of(request.headers.get("content-type")))
            metrics.DECODED.labels(CONNECTOR.value, encoding).inc()
            try:
                document = orjson.loads(text)
            except orjson.JSONDecodeError as exc:
                raise AdapterError("not_json", f"not a JSON document: {exc}") from exc
            items = adapter(document)
        except AdapterError as exc:
            await refuse_unparseable(ctx, CONNECTOR, source_id, body, exc)
        outcomes = await ctx.ingestors[CONNECTOR].submit(source_id, items, raw=body)
        response = outcomes_response(outcomes)
        metrics.REQUESTS.labels(CONNECTOR.value, str(response.status_code)).inc()
        return response
