"""The pager's HTTP side: provider status callbacks, officers' SMS replies, and the acknowledgement API.

Webhooks are accepted only with a valid ``X-Twilio-Signature`` computed over the public URL the
provider called (``SEIZEWATCH_PAGER_PUBLIC_URL``); with no auth token configured they are refused, never
checked more weakly. The API takes a bearer token (``SEIZEWATCH_PAGER_API_TOKEN``), and so does
Alertmanager's webhook (:mod:`alerts.operator_alerts`).
"""

from __future__ import annotations

import contextlib
import hmac
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Literal
from urllib.parse import parse_qsl
from xml.sax.saxutils import escape

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel

from alerts import operator_alerts, replies, roster_api, task_api
from alerts.rosterstore import load_roster
from alerts.service import Clock, Pager, running, utc_now
from alerts.settings import PagerSettings, TwilioSettings
from alerts.sms import SmsProvider
from alerts.twilio_sms import validate_signature
from streams.settings import KafkaSettings, PostgresSettings

log = logging.getLogger(__name__)

MAX_WEBHOOK_BYTES = 64 * 1024


class Acknowledgement(BaseModel):
    officer_id: str
    command: Literal["take", "decline", "seized", "not_found"] = "take"


def twiml(message: str | None) -> Response:
    body = "<Response>" + (f"<Message>{escape(message)}</Message>" if message else "") + "</Response>"
    return Response('<?xml version="1.0" encoding="UTF-8"?>' + body, media_type="text/xml; charset=utf-8")


def create_app(
    kafka: KafkaSettings,
    postgres: PostgresSettings,
    settings: PagerSettings,
    twilio: TwilioSettings,
    provider: SmsProvider,
    *,
    clock: Clock = utc_now,
    consume: bool = True,
    on_failure: Callable[[str], None] | None = None,
) -> FastAPI:
    """The pager's app; its lifespan runs the pager (``on_failure``: see :func:`alerts.service.running`)."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with running(
            kafka, postgres, settings, provider, clock=clock, consume=consume, on_failure=on_failure
        ) as pager:
            app.state.pager = pager
            yield

    app = FastAPI(title="seizewatch pager", version="1", lifespan=lifespan)

    def pager_of(request: Request) -> Pager:
        pager: Pager = request.app.state.pager
        return pager

    async def signed_form(request: Request) -> dict[str, str] | None:
        """The form of a provider webhook, or None when it is not signed by the provider."""
        body = await request.body()
        if len(body) > MAX_WEBHOOK_BYTES or twilio.auth_token is None:
            return None
        params = dict(parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True))
        url = settings.public_url.rstrip("/") + request.url.path
        if request.url.query:
            url += "?" + request.url.query
        if not validate_signature(twilio.auth_token, url, params, request.headers.get("x-twilio-signature")):
            log.warning("refused a webhook to %s with a bad or missing signature", request.url.path)
            return None
        return params

    @app.post("/twilio/status", include_in_schema=False)
    async def status_callback(request: Request) -> Response:
        params = await signed_form(request)
        if params is None:
            return Response(status_code=403)
        pager = pager_of(request)
        async with pager.pool.acquire() as conn:
            await replies.record_status(
                conn, params.get("MessageSid", ""), params.get("MessageStatus", ""),
                params.get("ErrorCode") or None, pager.clock(),
            )  # fmt: skip
        return Response(status_code=204)

    @app.post("/twilio/inbound", include_in_schema=False)
    async def inbound_sms(request: Request) -> Response:
        params = await signed_form(request)
        if params is None:
            return Response(status_code=403)
        pager = pager_of(request)
        async with pager.pool.acquire() as conn:
            roster = await load_roster(conn)
            result = await replies.handle_sms(
                conn, roster, params.get("From", ""), params.get("Body", ""), pager.clock()
            )
        return twiml(result.answer)

    @app.post("/api/v1/pages/{page_id}/acknowledge", tags=["pages"])
    async def acknowledge(page_id: uuid.UUID, ack: Acknowledgement, request: Request) -> JSONResponse:
        if not _authorized(settings, request):
            return JSONResponse({"error": "unauthorized"}, status_code=401)
        pager = pager_of(request)
        async with pager.pool.acquire() as conn:
            roster = await load_roster(conn)
            result = await replies.handle_api(
                conn, roster, page_id, ack.officer_id, ack.command, pager.clock()
            )
        if result.outcome == "not_yours":
            status = 403
        elif result.outcome in {
            "taken",
            "taken_over",
            "declined",
            "already_yours",
        } or result.outcome.startswith("task_"):
            status = 200
        else:
            status = 409  # taken by someone else, or the page is over
        return JSONResponse({"outcome": result.outcome, "message": result.answer}, status_code=status)

    @app.get("/api/v1/pages/{page_id}", tags=["pages"])
    async def page(page_id: uuid.UUID, request: Request) -> JSONResponse:
        if not _authorized(settings, request):
            return JSONResponse({"error": "unauthorized"}, status_code=401)
        pager = pager_of(request)
        async with pager.pool.acquire() as conn:
            row = await conn.fetchrow(
                "SELECT state, next_step, next_due_at, acknowledged_by, acknowledged_at, not_paged_reason"
                " FROM pages WHERE page_id = $1",
                page_id,
            )
            sent = await conn.fetch(
                "SELECT step, officer_id, send_state, provider_status FROM notifications WHERE page_id = $1"
                " ORDER BY step, officer_id",
                page_id,
            )
        if row is None:
            return JSONResponse({"error": "no such page"}, status_code=404)
        return JSONResponse(
            {
                **{k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in dict(row).items()},
                "notifications": [dict(n) for n in sent],
            }
        )

    roster_api.add_routes(app, pager_of, lambda request: _authorized(settings, request))
    task_api.add_routes(app, pager_of, lambda request: _authorized(settings, request))
    operator_alerts.add_routes(
        app, pager_of, lambda request: _authorized(settings, request), settings.operators
    )

    @app.get("/metrics", include_in_schema=False)
    async def metrics_endpoint() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/healthz", include_in_schema=False)
    async def healthz(request: Request) -> JSONResponse:
        supervisor = pager_of(request).supervisor
        status, body = supervisor.health() if supervisor is not None else (200, {"status": "ok"})
        return JSONResponse(body, status_code=status)  # 503 naming the loop that ended

    return app


def _authorized(settings: PagerSettings, request: Request) -> bool:
    if settings.api_token is None:
        return False
    presented = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
    return hmac.compare_digest(presented.encode(), settings.api_token.get_secret_value().encode())
