"""The connectors' HTTP server: one FastAPI app, one route module per feed, shared plumbing here.

Every route reads its body with a size limit, authenticates the source, hands reads to the
:class:`~connectors.ingest.Ingestor` and answers only after Kafka acknowledged (2xx), or 503 with
Retry-After when Kafka did not acknowledge them all (some may be stored: the sender retries the same
payload), or 422 when Kafka refused a record for what it is. Parse failures are dead-lettered and
answered 400.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, NoReturn

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from connectors import metrics
from connectors.auth import API_KEY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, check_api_key, check_signature
from connectors.ingest import Ingestor, Outcome
from connectors.producer import KafkaUnavailable, ProducerFailed, RecordRefused, SightingPublisher
from connectors.registry import AuthMethod, Connector, Registry, Source
from connectors.settings import IngestSettings
from streams.errors import ConfigurationError, InvalidInput
from streams.settings import KafkaSettings, PostgresSettings
from streams.supervision import Supervisor

log = logging.getLogger(__name__)

# What a 503 may say, and no more: the request's reads were not all acknowledged, yet some may be stored
# (a batch the broker wrote whose answer was lost, one delivered after the request stopped waiting).
NOT_ACKNOWLEDGED = (
    "Kafka did not acknowledge this request: nothing is promised stored, though some of its reads may be"
    " already. Retry the same payload later (after Retry-After): the same record ids give the same"
    " sighting ids, and every later stage is idempotent on them."
)
RECORD_REFUSED = (
    "retrying the same payload fails the same way; reads of it that Kafka acknowledged before the refusal"
    " are stored"
)


@dataclass
class IngestContext:
    """Everything the routes share; built at start-up, closed at shutdown."""

    settings: IngestSettings
    registry: Registry
    publisher: SightingPublisher
    ingestors: dict[Connector, Ingestor]
    extras: dict[str, Any]
    postgres: PostgresSettings | None = None  # where routes read back what the pager did (traffic)

    @property
    def master_key(self) -> Any:
        if self.settings.master_key is None:
            raise ConfigurationError(
                "SEIZEWATCH_INGEST_MASTER_KEY is not set: the connectors cannot authenticate"
            )
        return self.settings.master_key


class Refused(Exception):  # an HTTP answer, not a failure of ours
    """Answer the request with ``status`` and a JSON error body."""

    def __init__(
        self,
        status: int,
        reason: str,
        message: str,
        *,
        field: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.field = field
        self.headers = headers or {}


def error_body(reason: str, message: str, field: str | None = None) -> dict[str, Any]:
    return {"error": {"reason": reason, "field": field, "message": message}}


def context(request: Request) -> IngestContext:
    ctx: IngestContext = request.app.state.ctx
    return ctx


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 past ``limit`` bytes (before reading it all when declared)."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise Refused(413, "too_large", f"body of {declared} bytes exceeds the limit of {limit}")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Refused(413, "too_large", f"body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def authenticate(
    ctx: IngestContext, source_id: str, connector: Connector, request: Request, body: bytes
) -> Source:
    """The source, if it exists, is enabled, belongs to this connector and proved who it is; else 401."""
    source = ctx.registry.source(source_id)
    unauthorized = Refused(401, "unauthorized", "unknown source or bad credentials")
    if source is None or not source.enabled or source.connector is not connector:
        raise unauthorized
    if source.auth is AuthMethod.API_KEY:
        presented = request.headers.get(API_KEY_HEADER) or request.query_params.get("key")
        ok = check_api_key(ctx.master_key, source, presented)
    elif source.auth is AuthMethod.HMAC:
        ok = check_signature(
            ctx.master_key,
            source,
            request.headers.get(TIMESTAMP_HEADER),
            request.headers.get(SIGNATURE_HEADER),
            body,
            time.time(),
        )
    else:
        ok = False  # digest is handled by the GA/T 1400 routes themselves
    if not ok:
        raise unauthorized
    return source


def outcomes_response(outcomes: list[Outcome]) -> JSONResponse:
    """200 with per-record results when anything was accepted; 400 naming every problem otherwise."""
    accepted = [o.sighting_id for o in outcomes if o.accepted]
    rejected = [
        {"index": o.index, "reason": o.reason, "field": o.field, "message": o.message}
        for o in outcomes
        if not o.accepted
    ]
    status = 200 if accepted or not rejected else 400
    return JSONResponse(
        {"accepted": len(accepted), "sighting_ids": accepted, "rejected": rejected}, status_code=status
    )


async def refuse_unparseable(
    ctx: IngestContext, connector: Connector, source_id: str, body: bytes, error: InvalidInput
) -> NoReturn:
    """Dead-letter a payload that could not be parsed, then answer 400 naming the reason."""
    await ctx.ingestors[connector].refuse_payload(source_id, body, error)
    raise Refused(400, error.reason, str(error), field=error.field)


def create_app(
    kafka: KafkaSettings,
    postgres: PostgresSettings,
    settings: IngestSettings,
    *,
    routes: list[Callable[[FastAPI], None]],
    extras: Callable[[IngestSettings], dict[str, Any]] = lambda _: {},
    on_loop_failure: Callable[[str], None] | None = None,
) -> FastAPI:
    """The app with the given route modules; resources live for the app's lifespan.

    Its background loops (the registry's reloads) and the Kafka producer run under a
    :class:`~streams.supervision.Supervisor`: when one cannot go on, ``/healthz`` answers 503 naming it
    and ``on_loop_failure`` is told, for the process to stop (``seizewatch ingest`` exits 70).
    """

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        supervisor = Supervisor("ingest", on_failure=on_loop_failure)
        app.state.supervisor = supervisor
        registry = Registry(postgres)
        await registry.start(supervisor)
        try:
            async with SightingPublisher(
                kafka,
                role="ingest",
                timeout_s=settings.produce_timeout_s,
                retry_after_s=settings.retry_after_s,
                on_fatal=lambda why: supervisor.fail("kafka-producer", why),
            ) as publisher:
                freshness = timedelta(seconds=settings.freshness_s)
                for connector in Connector:  # a zero series first, so the first 503 shows in rate()
                    metrics.KAFKA_UNAVAILABLE.labels(connector.value)
                app.state.ctx = IngestContext(
                    settings=settings,
                    registry=registry,
                    publisher=publisher,
                    ingestors={
                        c: Ingestor(
                            connector=c.value, registry=registry, publisher=publisher, freshness=freshness
                        )
                        for c in Connector
                    },
                    extras=extras(settings),
                    postgres=postgres,
                )
                yield
        finally:
            await supervisor.stop()
            await registry.stop()

    app = FastAPI(
        title="seizewatch connectors",
        version="1",
        description="Plate reads from parking lots, checkpoints (GA/T 1400) and ANPR cameras (ISAPI).",
        lifespan=lifespan,
    )

    @app.exception_handler(Refused)
    async def refused(request: Request, exc: Refused) -> Response:
        connector = request.scope.get("seizewatch_connector", "unknown")
        metrics.REQUESTS.labels(connector, str(exc.status)).inc()
        return JSONResponse(
            error_body(exc.reason, str(exc), exc.field), status_code=exc.status, headers=exc.headers
        )

    @app.exception_handler(KafkaUnavailable)
    @app.exception_handler(ProducerFailed)
    async def kafka_down(request: Request, exc: KafkaUnavailable | ProducerFailed) -> Response:
        # Not logged here, once per request: the publisher sums refusals up (connectors/logs.py).
        connector = request.scope.get("seizewatch_connector", "unknown")
        metrics.KAFKA_UNAVAILABLE.labels(connector).inc()
        metrics.REQUESTS.labels(connector, "503").inc()
        retry_after = exc.retry_after_s if isinstance(exc, KafkaUnavailable) else settings.retry_after_s
        return JSONResponse(
            error_body("kafka_unavailable", NOT_ACKNOWLEDGED),
            status_code=503,
            headers={"Retry-After": str(retry_after)},
        )

    @app.exception_handler(RecordRefused)
    async def record_refused(request: Request, exc: RecordRefused) -> Response:
        # Counted, not logged: like every 4xx, it is the sender's to fix, and a sender may repeat it.
        connector = request.scope.get("seizewatch_connector", "unknown")
        metrics.REQUESTS.labels(connector, "422").inc()
        return JSONResponse(error_body("refused_by_kafka", f"{exc}; {RECORD_REFUSED}"), status_code=422)

    @app.exception_handler(HTTPException)
    async def http_error(_request: Request, exc: HTTPException) -> Response:
        return JSONResponse(error_body("http_error", str(exc.detail)), status_code=exc.status_code)

    @app.get("/healthz", include_in_schema=False)
    async def healthz(request: Request) -> Response:
        status, body = request.app.state.supervisor.health()
        return JSONResponse(body, status_code=status)

    @app.get("/metrics", include_in_schema=False)
    async def prometheus_metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    for add_routes in routes:
        add_routes(app)
    return app
