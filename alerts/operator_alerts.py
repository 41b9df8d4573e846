"""Alerts about seizewatch itself, from Alertmanager's webhook, texted to the system's on-call operators.

Prometheus evaluates the rules (``deploy/prometheus/rules/``), Alertmanager groups and routes them and
posts its webhook (version 4) to ``POST /api/v1/operator-alerts`` with the API's bearer token. Each alert
in it becomes one SMS per operator (``SEIZEWATCH_PAGER_OPERATORS``), in Chinese, at most two segments:
severity, alert name, since when, the Chinese half of its summary and its runbook section.

Alertmanager sends the same alerts again on every repeat interval, after a restart and to every
receiver of an HA pair, so the SMS are keyed, not sent: an occurrence of an alert is its fingerprint and
its ``startsAt`` (a row of ``operator_alerts``), and its SMS are ``notifications`` rows unique per
(occurrence, step, operator) — step 0 "fired", step 1 "resolved". The pager's sender sends them like any
other notification (claimed before the call, retried only when provably unsent, status callbacks), so
an operator gets each message once. "已恢复" goes to whoever was told the alert fired, once; a resolved
alert nobody was told about sends nothing.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Literal

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from alerts import metrics
from alerts.messages import SHANGHAI, segments
from alerts.pages import PAGES_CHANNEL
from alerts.service import Pager
from alerts.settings import Operator
from streams.db import Connection

log = logging.getLogger(__name__)

ROUTE: Final = "/api/v1/operator-alerts"
MAX_BODY_BYTES: Final = 1024 * 1024
FIRING_STEP: Final = 0
RESOLVED_STEP: Final = 1
# Operators share the notifications table with officers: their ids never meet a roster officer's.
OFFICER_PREFIX: Final = "operator:"
MAX_SEGMENTS: Final = 2
SEVERITY_WORDS: Final = {"critical": "紧急", "warning": "警告"}
# Labels every alert has or that say nothing about which thing is wrong.
_PLAIN_LABELS: Final = frozenset({"alertname", "severity"})


class WebhookAlert(BaseModel):
    """One alert of Alertmanager's webhook payload (the fields used; others are ignored)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    status: Literal["firing", "resolved"]
    labels: dict[str, str]
    annotations: dict[str, str] = Field(default_factory=dict)
    starts_at: AwareDatetime = Field(alias="startsAt")
    # 0001-01-01T00:00:00Z while firing (Go's zero time).
    ends_at: AwareDatetime | None = Field(default=None, alias="endsAt")
    fingerprint: str = Field(min_length=1, max_length=64)

    @property
    def name(self) -> str:
        return self.labels.get("alertname") or "(unnamed)"


class WebhookNotification(BaseModel):
    """Alertmanager's webhook payload, version 4."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    version: Literal["4"]
    status: Literal["firing", "resolved"]
    receiver: str = ""
    group_key: str = Field(default="", alias="groupKey")
    alerts: list[WebhookAlert] = Field(max_length=1000)


# ------------------------------------------------------------------------------------------- the texts


def _fit(variants: Sequence[str], max_segments: int) -> str:
    """The first variant (longest first) that fits; the last one cut to fit otherwise."""
    for text in variants:
        if segments(text) <= max_segments:
            return text
    text = variants[-1]
    while segments(text) > max_segments:
        text = text[:-2] + "…"
    return text


def _shortenings(text: str, longest: int = 140) -> list[str]:
    """``text``, then ever shorter cuts of it ending in an ellipsis, then nothing (two segments hold
    134 characters: longer texts are cut to ``longest`` first)."""
    if len(text) > longest:
        text = text[: longest - 1] + "…"
    cuts = [text] if text else []
    cuts += [text[:n] + "…" for n in range(len(text) - 1, 0, -1)]
    return [*cuts, ""]


def _local(at: datetime) -> str:
    return at.astimezone(SHANGHAI).strftime("%m-%d %H:%M")


def chinese_summary(annotations: dict[str, str]) -> str:
    """The Chinese half of a ``中文 / English`` summary (our rules' convention), on one line."""
    summary = " ".join(annotations.get("summary", "").split())
    return summary.split(" / ", 1)[0].strip()


def identifying_labels(labels: dict[str, str]) -> str:
    """``device_group=parking-jiaojiang``: the labels that say which thing the alert is about."""
    return " ".join(f"{k}={v}" for k, v in sorted(labels.items()) if k not in _PLAIN_LABELS)


def render_firing(alert: WebhookAlert, max_segments: int = MAX_SEGMENTS) -> str:
    """``【系统告警·警告】SeizewatchFeedSilent 12-04 10:38起：设备组…。手册 docs/operations.md#…``

    The summary gives way first, then the start time; the severity and the alert's name never do (only a
    name too long for the SMS by itself is cut).
    """
    severity = alert.labels.get("severity", "")
    head = f"【系统告警·{SEVERITY_WORDS.get(severity, severity or '告警')}】{alert.name}"
    since = f" {_local(alert.starts_at)}起"
    runbook = alert.annotations.get("runbook", "")
    tail = f"。手册 {runbook}" if runbook else "。"
    summary = chinese_summary(alert.annotations) or identifying_labels(alert.labels)
    variants = [
        f"{head}{since}：{cut}{tail}" if cut else f"{head}{since}{tail}" for cut in _shortenings(summary)
    ]
    variants += [f"{head}{tail}", head]
    return _fit(variants, max_segments)


def render_resolved(alert: WebhookAlert, max_segments: int = MAX_SEGMENTS) -> str:
    """``【系统告警·已恢复】SeizewatchFeedSilent device_group=… 12-04 10:38起，10:45已恢复。``"""
    head = f"【系统告警·已恢复】{alert.name}"
    ended = alert.ends_at if alert.ends_at is not None and alert.ends_at > alert.starts_at else None
    when = f" {_local(alert.starts_at)}起" + (
        f"，{ended.astimezone(SHANGHAI):%H:%M}已恢复。" if ended else "，已恢复。"
    )
    variants = [
        f"{head} {cut}{when}" if cut else f"{head}{when}"
        for cut in _shortenings(identifying_labels(alert.labels))
    ]
    return _fit([*variants, f"{head}，已恢复。"], max_segments)


# ---------------------------------------------------------------------------------------- taking them


@dataclass(frozen=True, slots=True)
class Taken:
    """What one webhook notification did: SMS queued, and SMS that already were (repeats, resends)."""

    alerts: int
    queued: int
    duplicates: int


async def take_notification(
    conn: Connection, notification: WebhookNotification, operators: Sequence[Operator], now: datetime
) -> Taken:
    """Record the notification's alerts and queue each operator's SMS once; one transaction."""
    queued = duplicates = 0
    async with conn.transaction():
        for alert in notification.alerts:
            alert_id, resolved_before = await _record(conn, alert, now)
            if alert.status == "firing":
                if resolved_before:  # an old firing resent after its resolution: nothing to say
                    continue
                step, body = FIRING_STEP, render_firing(alert)
                recipients = [(OFFICER_PREFIX + o.operator_id, o.phone) for o in operators]
            else:
                step, body = RESOLVED_STEP, render_resolved(alert)
                told = await conn.fetch(
                    "SELECT officer_id, phone FROM notifications WHERE operator_alert_id = $1 AND step = $2"
                    " ORDER BY officer_id",
                    alert_id,
                    FIRING_STEP,
                )
                recipients = [(row["officer_id"], row["phone"]) for row in told]
                if not recipients:
                    log.info(
                        "alert %s (%s) resolved; nobody was told it fired", alert.name, alert.fingerprint
                    )
            for officer_id, phone in recipients:
                inserted = await conn.fetchval(
                    "INSERT INTO notifications (notification_id, operator_alert_id, step, officer_id, phone,"
                    " reply_code, body, send_state, next_attempt_at, created_at)"
                    " VALUES ($1, $2, $3, $4, $5, '', $6, 'pending', $7, $7)"
                    " ON CONFLICT (operator_alert_id, step, officer_id) WHERE operator_alert_id IS NOT NULL"
                    " DO NOTHING RETURNING notification_id",
                    uuid.uuid4(),
                    alert_id,
                    step,
                    officer_id,
                    phone,
                    body,
                    now,
                )
                if inserted is None:
                    duplicates += 1
                else:
                    queued += 1
        if queued:
            await conn.execute(f"NOTIFY {PAGES_CHANNEL}")  # wakes the sender
    # Counted once committed: a rolled-back notification (Alertmanager sends it again) counts once.
    for alert in notification.alerts:
        metrics.OPERATOR_ALERTS_RECEIVED.labels(alert.status).inc()
    metrics.OPERATOR_ALERT_NOTIFICATIONS.labels("queued").inc(queued)
    metrics.OPERATOR_ALERT_NOTIFICATIONS.labels("duplicate").inc(duplicates)
    return Taken(len(notification.alerts), queued, duplicates)


async def _record(conn: Connection, alert: WebhookAlert, now: datetime) -> tuple[uuid.UUID, bool]:
    """The occurrence's id, and whether it was already resolved before this notification."""
    resolved_at = None
    if alert.status == "resolved":
        resolved_at = alert.ends_at if alert.ends_at is not None and alert.ends_at > alert.starts_at else now
    row = await conn.fetchrow(
        "INSERT INTO operator_alerts AS a (alert_id, fingerprint, starts_at, alertname, severity, labels,"
        " annotations, first_received_at, last_received_at, resolved_at)"
        " VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7::jsonb, $8, $8, $9)"
        " ON CONFLICT (fingerprint, starts_at) DO UPDATE SET last_received_at = EXCLUDED.last_received_at,"
        " annotations = EXCLUDED.annotations, resolved_at = COALESCE(a.resolved_at, EXCLUDED.resolved_at)"
        # the row as it was before this statement: RETURNING sees the new one, so look the old one up
        " RETURNING a.alert_id, (SELECT o.resolved_at IS NOT NULL FROM operator_alerts o"
        "  WHERE o.alert_id = a.alert_id) AS resolved_before",
        uuid.uuid4(),
        alert.fingerprint,
        alert.starts_at,
        alert.name,
        alert.labels.get("severity"),
        orjson.dumps(alert.labels).decode(),
        orjson.dumps(alert.annotations).decode(),
        now,
        resolved_at,
    )
    assert row is not None  # noqa: S101  # INSERT … ON CONFLICT DO UPDATE always returns its row
    return row["alert_id"], bool(row["resolved_before"])


# ---------------------------------------------------------------------------------------------- the route


def add_routes(
    app: FastAPI,
    pager_of: Callable[[Request], Pager],
    authorized: Callable[[Request], bool],
    operators: Sequence[Operator],
) -> None:
    @app.post(ROUTE, tags=["operator alerts"])
    async def operator_alerts(request: Request) -> JSONResponse:
        """Alertmanager's webhook (version 4): each alert texted once to each operator."""
        if not authorized(request):
            return JSONResponse({"error": "unauthorized"}, status_code=401)
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            return JSONResponse({"error": "payload too large"}, status_code=413)
        try:
            notification = WebhookNotification.model_validate_json(body)
        except ValidationError as exc:
            errors = [{"loc": list(e["loc"]), "msg": e["msg"]} for e in exc.errors()]
            return JSONResponse({"error": "not an Alertmanager webhook (version 4)", "detail": errors}, 400)
        if not operators:
            # Loud, and Alertmanager keeps the notification and tries again: nobody would be told.
            log.error("Alertmanager notified %d alert(s) and SEIZEWATCH_PAGER_OPERATORS names nobody",
                      len(notification.alerts))  # fmt: skip
            return JSONResponse({"error": "no operators configured (SEIZEWATCH_PAGER_OPERATORS)"}, 503)
        pager = pager_of(request)
        async with pager.pool.acquire() as conn:
            taken = await take_notification(conn, notification, operators, pager.clock())
        log.info("Alertmanager notification (%s, %d alert(s)): %d SMS queued, %d already were",
                 notification.status, taken.alerts, taken.queued, taken.duplicates)  # fmt: skip
        return JSONResponse({"alerts": taken.alerts, "queued": taken.queued, "duplicates": taken.duplicates})
