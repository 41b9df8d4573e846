"""``POST /isapi/v1/sources/{source_id}/events``: Hikvision ANPR cameras push EventNotificationAlert.

Cameras cannot add headers to their alarm-host URL, so their API key may travel as ``?key=`` in the
URL they are configured with (use HTTPS in production). Events without a read (heartbeats, other alarms)
are answered 200 and counted. Pictures are counted, never stored.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse, Response

from connectors import metrics
from connectors.http import authenticate, context, read_body, refuse_unparseable
from connectors.isapi import parse_anpr
from connectors.records import AdapterError
from connectors.registry import Connector

CONNECTOR = Connector.ISAPI
# The XML plus up to 8 pictures, as Hikvision documents, with one part to spare.
MAX_PARTS = 10


def add_routes(app: FastAPI) -> None:
    @app.post("/isapi/v1/sources/{source_id}/events", tags=["Hikvision ISAPI"])
    async def events(source_id: str, request: Request) -> Response:
        request.scope["seizewatch_connector"] = CONNECTOR.value
        ctx = context(request)
        body = await read_body(request, ctx.settings.max_isapi_bytes)
        authenticate(ctx, source_id, CONNECTOR, request, body)
        try:
            event = parse_anpr(body, request.headers.get("content-type"), max_parts=MAX_PARTS)
        except AdapterError as exc:
            await refuse_unparseable(ctx, CONNECTOR, source_id, body, exc)
        if event is None:
            metrics.IGNORED_EVENTS.labels(CONNECTOR.value).inc()
            metrics.REQUESTS.labels(CONNECTOR.value, "200").inc()
            return PlainTextResponse("OK")
        [outcome] = await ctx.ingestors[CONNECTOR].submit(source_id, [event.read], raw=body)
        if not outcome.accepted:
            metrics.REQUESTS.labels(CONNECTOR.value, "400").inc()
            return PlainTextResponse(f"{outcome.reason}: {outcome.message}", status_code=400)
        metrics.REQUESTS.labels(CONNECTOR.value, "200").inc()
        return PlainTextResponse("OK")
