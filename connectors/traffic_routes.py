"""``POST /traffic/v1/sources/{source_id}/results``: the traffic police report what became of a request.

A traffic-police integration (一键扣车) posts :class:`~streams.traffic.SeizureResultV1` results; each
valid one goes to ``traffic.seizure-results`` keyed by its request id (the watch entry id), with the
sending source in the ``seizewatch.source`` header. Nothing is applied to tasks here: the pager consumes
that topic and records each result's outcome in ``traffic_results``; the route waits (a bounded
``SEIZEWATCH_INGEST_TRAFFIC_OUTCOME_WAIT_S``) for those outcomes and answers each result with its own
(``applied_*``, ``plate_mismatch`` naming both plates, ``unknown_request``, ``released``,
``already_settled``, or ``pending`` when the pager has not applied it yet: resend the same batch later to
read it). 200 only when every result was applied; 207 Multi-Status when some result was not applied,
is still pending, or was refused; 400 when nothing was valid; 503 + Retry-After when Kafka could not
store the results (2xx only after Kafka acknowledged, as the parking route).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import asyncpg
import orjson
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from connectors import metrics
from connectors.http import authenticate, context, read_body, refuse_unparseable
from connectors.ingest import Outcome
from connectors.records import AdapterError, charset_of, decode_text
from connectors.registry import Connector
from streams.deadletter import SOURCE as SOURCE_HEADER  # the sending source, named as dead letters name it
from streams.events import text_fault, time_fault
from streams.settings import PostgresSettings
from streams.topics import SEIZURE_RESULTS
from streams.traffic import ResultOutcome, SeizureResultV1

log = logging.getLogger(__name__)

CONNECTOR = Connector.TRAFFIC
PENDING = "pending"  # not applied by the pager yet (it may be down or behind): resend later to read it
_POLL_S = 0.1
# PostgreSQL away or going away (a dropped connection is asyncpg's InterfaceError): the results are in
# Kafka already, so the answer says pending, never a 500 that would look like a refusal.
_UNREADABLE = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)
MAX_RESULTS = 100
# The contract's only rule across fields: a seizure names where the vehicle is held. Pydantic reports
# a model-level error without a location, so the field is named from the item itself.
_CUSTODY_FIELDS = ("custody_kind", "custody_name")
_TEXT_FIELDS = tuple(
    name for name, info in SeizureResultV1.model_fields.items() if info.annotation in (str, str | None)
)


class SeizureResultBatchV1(BaseModel):
    """Body of ``POST /traffic/v1/sources/{source_id}/results``: up to 100 results (the OpenAPI schema)."""

    model_config = ConfigDict(extra="forbid")

    results: list[SeizureResultV1] = Field(min_length=1, max_length=MAX_RESULTS)


def _field_of(loc: tuple[int | str, ...], item: Any) -> str | None:
    if loc:
        return ".".join(str(part) for part in loc)
    if isinstance(item, dict):
        return next((name for name in _CUSTODY_FIELDS if not item.get(name)), None)
    return None


def result_of(item: Any, index: int) -> SeizureResultV1 | AdapterError:
    """One item of a batch as a result, or why not: the first bad field named, every problem listed.

    A result the pager could not store is refused here, at the door: a text with a NUL character
    (PostgreSQL text and jsonb refuse it) or a time without a UTC form (asyncpg sends one).
    """
    try:
        result = SeizureResultV1.model_validate(item)
    except ValidationError as exc:
        errors = exc.errors()
        problems = [(_field_of(e["loc"], item), e["msg"]) for e in errors]
        first_field = problems[0][0]
        reason = "missing_field" if errors[0]["type"] == "missing" else "invalid_field"
        message = "; ".join(
            [problems[0][1], *(f"{field}: {msg}" if field else msg for field, msg in problems[1:])]
        )
        field = f"results[{index}].{first_field}" if first_field else f"results[{index}]"
        return AdapterError(reason, message, field=field, index=index)
    for name in _TEXT_FIELDS:
        text = getattr(result, name)
        if text is not None and (fault := text_fault(text)):
            return AdapterError("invalid_field", fault, field=f"results[{index}].{name}", index=index)
    if fault := time_fault(result.at):
        return AdapterError("invalid_field", fault, field=f"results[{index}].at", index=index)
    return result


def parse_results(document: Any) -> list[SeizureResultV1 | AdapterError]:
    """The results of a decoded body, item by item.

    Raises:
        AdapterError: the body is not a batch at all (not an object, no non-empty ``results``, too many).
    """
    if not isinstance(document, dict):
        raise AdapterError("invalid_json_content", "expected a JSON object", field="results")
    items = document.get("results")
    if not isinstance(items, list) or not items:
        raise AdapterError("missing_field", "'results' must be a non-empty list", field="results")
    if len(items) > MAX_RESULTS:
        raise AdapterError("too_many_records", f"at most {MAX_RESULTS} results per request", field="results")
    return [result_of(item, index) for index, item in enumerate(items)]


def encode_result(result: SeizureResultV1) -> bytes:
    return orjson.dumps(result.model_dump(mode="json"))


async def recorded_outcomes(
    postgres: PostgresSettings | None, result_ids: list[str], wait_s: float
) -> dict[str, tuple[str, str]]:
    """Each result's outcome and detail as the pager recorded them, waiting up to ``wait_s`` for all.

    A result the pager has not applied yet is missing from the answer; so is every result when
    PostgreSQL cannot be read (logged): the results are in Kafka, the sender reads the outcome later.
    """
    if postgres is None or not result_ids:
        return {}
    found: dict[str, tuple[str, str]] = {}
    deadline = time.monotonic() + wait_s
    try:
        conn = await asyncpg.connect(postgres.dsn.get_secret_value(), timeout=max(1.0, wait_s))
    except _UNREADABLE as exc:
        log.warning("traffic outcomes not readable (%s): answered pending", exc)
        return found
    try:
        while True:
            rows = await conn.fetch(
                "SELECT result_id, outcome, detail FROM traffic_results"
                " WHERE result_id = ANY($1::text[]) AND outcome <> 'received'",
                result_ids,
            )
            found = {r["result_id"]: (r["outcome"], r["detail"]) for r in rows}
            if len(found) == len(set(result_ids)) or time.monotonic() >= deadline:
                return found
            await asyncio.sleep(_POLL_S)
    except _UNREADABLE as exc:
        log.warning("traffic outcomes not readable (%s): answered pending", exc)
        return found
    finally:
        await conn.close()


def _applied(outcome: str) -> bool:
    try:
        return ResultOutcome(outcome).applied
    except ValueError:  # pending
        return False


def add_routes(app: FastAPI) -> None:
    @app.post(
        "/traffic/v1/sources/{source_id}/results",
        tags=["traffic police"],
        summary="Report what became of seizure requests (stopped, seized with custody, not found).",
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": SeizureResultBatchV1.model_json_schema()}},
            }
        },
    )
    async def push_results(source_id: str, request: Request) -> JSONResponse:
        request.scope["seizewatch_connector"] = CONNECTOR.value
        ctx = context(request)
        body = await read_body(request, ctx.settings.max_json_bytes)
        authenticate(ctx, source_id, CONNECTOR, request, body)
        try:
            text, encoding = decode_text(body, charset_of(request.headers.get("content-type")))
            metrics.DECODED.labels(CONNECTOR.value, encoding).inc()
            try:
                document = orjson.loads(text)
            except orjson.JSONDecodeError as exc:
                raise AdapterError("not_json", f"not a JSON document: {exc}") from exc
            items = parse_results(document)
        except AdapterError as exc:
            await refuse_unparseable(ctx, CONNECTOR, source_id, body, exc)
        accepted = [item for item in items if isinstance(item, SeizureResultV1)]
        refused = [Outcome.refused(i, item) for i, item in enumerate(items) if isinstance(item, AdapterError)]
        if accepted:
            started = time.perf_counter()
            await ctx.publisher.publish_keyed(
                SEIZURE_RESULTS,
                [(str(r.request_id).encode(), encode_result(r)) for r in accepted],
                headers=[(SOURCE_HEADER, source_id.encode())],
            )
            metrics.PRODUCE_SECONDS.labels(CONNECTOR.value).observe(time.perf_counter() - started)
        if refused:
            await ctx.ingestors[CONNECTOR].dead_letter(source_id, body, refused)
        recorded = await recorded_outcomes(
            ctx.postgres, [r.result_id for r in accepted], ctx.settings.traffic_outcome_wait_s
        )
        answers = []
        for index, item in enumerate(items):
            if not isinstance(item, SeizureResultV1):
                continue
            outcome, detail = recorded.get(item.result_id, (PENDING, "not applied yet: resend to read it"))
            metrics.TRAFFIC_OUTCOMES.labels(outcome).inc()
            answers.append({
                "index": index, "result_id": item.result_id, "request_id": str(item.request_id),
                "outcome": outcome, "applied": _applied(outcome), "detail": detail,
            })  # fmt: skip
        everything_applied = not refused and all(a["applied"] for a in answers)
        status = (200 if everything_applied else 207) if accepted else 400
        metrics.REQUESTS.labels(CONNECTOR.value, str(status)).inc()
        return JSONResponse(
            {
                "queued": len(accepted),
                "result_ids": [r.result_id for r in accepted],
                "results": answers,
                "rejected": [
                    {"index": o.index, "reason": o.reason, "field": o.field, "message": o.message}
                    for o in refused
                ],
            },
            status_code=status,
        )
