"""Records the pager takes from Kafka (hits, traffic-police results): retried while PostgreSQL is away,
dead-lettered with the reason when they can never be taken.

The one retry policy (:func:`streams.errors.translate`): a retriable failure is waited out with backoff;
anything else — PostgreSQL refusing the record's data (:class:`streams.errors.StoreRefused`, e.g. a NUL
character in text), a record that does not parse, a bug — sends the record's raw bytes to a dead-letter
topic with the reason in its headers (:mod:`streams.deadletter`), counted in
``seizewatch_dead_letters_total{stage="pager"|"pager_traffic"}``, and the consumer goes on with the
records behind it. A dead-lettered hit is a vehicle nobody was paged for: logged critical, alerted.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from aiokafka import AIOKafkaProducer
from pydantic import ValidationError

from streams import metrics as stream_metrics
from streams.deadletter import DeadLetter
from streams.errors import InvalidInput, SeizewatchError, is_record_fault, translate
from streams.hits import HitV1
from streams.settings import KafkaSettings
from streams.topics import HITS_DLQ, SIGHTINGS_DLQ
from streams.traffic import SeizureResultV1

if TYPE_CHECKING:
    from alerts.service import Pager

log = logging.getLogger(__name__)

# Stages of the pager's dead letters (the seizewatch.stage header and the metric's label).
HIT_STAGE = "pager"
TRAFFIC_STAGE = "pager_traffic"
_REASONS = ("invalid_hit", "invalid_result", "store_refused", "internal_error")
_MAX_BACKOFF_S = 10.0


def prime_dead_letters() -> None:
    """The zero series of the pager's dead letters, so the first one is seen by ``increase()``."""
    for stage in (HIT_STAGE, TRAFFIC_STAGE):
        for reason in _REASONS:
            stream_metrics.DEAD_LETTERS.labels(stage, reason)


def classify(exc: Exception) -> SeizewatchError | None:
    """:func:`streams.errors.translate`, or None for a bug (an error of none of the boundaries)."""
    try:
        return translate(exc)
    except Exception:  # noqa: BLE001  # translate re-raised it: a bug, which the caller reports as one
        return None


@dataclass
class DeadLetters:
    """Sends what the pager could not take to a dead-letter topic, with the reason; counted."""

    producer: AIOKafkaProducer
    kafka: KafkaSettings

    async def send(self, topic: str, letter: DeadLetter) -> None:
        """Publish the letter, waiting out Kafka: the record's offset is committed only after this.

        Raises:
            SeizewatchError: Kafka refused it for good (a record over the size limit); a bug as itself.
        """
        delay = 0.5
        while True:
            try:
                await self.producer.send_and_wait(
                    self.kafka.topic(topic), value=letter.raw, headers=letter.headers()
                )
            except Exception as exc:  # noqa: BLE001  # translate() classifies it; a bug is raised again as itself
                error = translate(exc)
                if not error.retriable:
                    raise error from error.__cause__  # the driver's own error, if any
                log.warning("cannot dead-letter to %s: %s; retrying in %.1f s", topic, error, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, _MAX_BACKOFF_S)
            else:
                stream_metrics.DEAD_LETTERS.labels(letter.stage, letter.reason).inc()
                return


async def apply_result_record(pager: Pager, raw: bytes, origin: str, letters: DeadLetters) -> None:
    try:
        result = SeizureResultV1.model_validate_json(raw)
    except ValidationError as exc:
        # The connector validated it before producing: unreadable here is a bug, kept with the reason.
        log.exception("unreadable traffic-police result at %s dead-lettered", origin)
        await letters.send(
            SIGHTINGS_DLQ,
            DeadLetter(
                raw, "invalid_result", str(exc), stage=TRAFFIC_STAGE, field=_field(exc), origin=origin
            ),
        )
        return

    async def apply() -> None:
        outcome = await pager.take_traffic_result(result)
        log.info("traffic result %s: %s", result.result_id, outcome)

    failure = await _with_retry(apply, f"traffic result {result.result_id}")
    if failure is not None:
        reason, message = failure
        log.error("traffic result %s at %s dead-lettered (%s): %s", result.result_id, origin, reason, message)
        await letters.send(
            SIGHTINGS_DLQ, DeadLetter(raw, reason, message, stage=TRAFFIC_STAGE, origin=origin)
        )


async def take_hit_record(pager: Pager, raw: bytes, origin: str, letters: DeadLetters) -> None:
    try:
        hit = HitV1.model_validate_json(raw)
    except ValidationError as exc:
        # Written by our own matcher: a hit we cannot read is a bug to fix, kept with the reason, said
        # loudly (a vehicle somebody should have been told about).
        log.critical("unreadable hit at %s dead-lettered, nobody paged for it: %s", origin, exc)
        await letters.send(
            HITS_DLQ,
            DeadLetter(raw, "invalid_hit", str(exc), stage=HIT_STAGE, field=_field(exc), origin=origin),
        )
        return

    async def take() -> None:
        await pager.take_hit(hit)

    failure = await _with_retry(take, f"the page of hit {hit.hit_id}")
    if failure is not None:
        reason, message = failure
        log.critical(
            "hit %s at %s dead-lettered (%s), nobody paged for it: %s", hit.hit_id, origin, reason, message
        )
        await letters.send(HITS_DLQ, DeadLetter(raw, reason, message, stage=HIT_STAGE, origin=origin))


async def _with_retry(attempt: Callable[[], Awaitable[None]], what: str) -> tuple[str, str] | None:
    """Run ``attempt`` until it succeeds (None) or fails for a reason retrying cannot cure: then its
    reason and message, for the dead letter. Retriable failures (PostgreSQL away) wait with backoff."""
    delay = 0.5
    while True:
        try:
            await attempt()
        except Exception as exc:  # classified below: a bug is dead-lettered, not retried
            error = classify(exc)
            if error is None:
                log.exception("%s failed on a bug", what)
                return "internal_error", repr(exc)
            if not error.retriable:
                if not is_record_fault(error):
                    # PostgreSQL refusing us (a revoked grant, a read-only standby) or a Kafka client
                    # gone bad: no record is at fault, and dead-lettering would page nobody for good.
                    # The loop fails; the pager stops uncommitted and its restart takes the record again.
                    raise error from exc
                reason = error.reason if isinstance(error, InvalidInput) else "broker_refused"
                return reason, str(error)
            stream_metrics.STAGE_RETRIES.labels("pager").inc()
            log.warning("cannot record %s: %s; retrying in %.1f s", what, error, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, _MAX_BACKOFF_S)
        else:
            return None


def _field(exc: ValidationError) -> str | None:
    """The first field a validation error names, dotted (``sighting.observed_at``)."""
    errors = exc.errors()
    if not errors or not errors[0].get("loc"):
        return None
    return ".".join(str(part) for part in errors[0]["loc"])
