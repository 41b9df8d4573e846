"""What a parser's output must satisfy beyond "no crash": refusals the route can answer, reads the stores
downstream can hold.

A refusal is fine only if the route can send it: its reason is a stable code (a metric label), its
message and field encode as UTF-8 (dead-letter headers, the JSON answer). A read is fine only if what the
ingest builds from it (:func:`streams.events.new_sighting`, as :meth:`connectors.ingest.Ingestor.build`
calls it) is refused with an :class:`~streams.events.EventError` or survives every later stage: the
topic (JSON encoding and decoding), the matcher (a UTC form), PostgreSQL (no NUL in text). A violation is
:class:`Unfit`, a finding like any crash.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from connectors.records import RawRead
from connectors.traffic_routes import encode_result
from streams.errors import InvalidInput
from streams.events import (
    EventError,
    Location,
    Sighting,
    SightingFlag,
    SourceKind,
    decode_sighting,
    new_sighting,
    sighting_id_for,
)
from streams.traffic import SeizureResultV1

# Far enough after every seed's time that reads are not in the future, as the ingest's clock would be.
RECEIVED_AT = datetime(2027, 1, 1, tzinfo=UTC)
SOURCE_ID = "fuzz-source"
_REASON = re.compile(r"[a-z][a-z0-9_]{0,39}")


class Unfit(AssertionError):
    """A parser's output that a later stage cannot take: a finding, like an unexpected exception."""


def check_refusal(error: BaseException) -> None:
    """A documented refusal that the route can answer and dead-letter as it is."""
    if not isinstance(error, InvalidInput):
        return
    if not _REASON.fullmatch(error.reason):
        raise Unfit(f"reason {error.reason!r} is not a stable code (it is a metric label)")
    for name, value in (("message", str(error)), ("field", error.field)):
        if value is not None and not utf8(value):
            raise Unfit(
                f"refusal {name} {value[:80]!r} does not encode as UTF-8 (dead-letter header, answer)"
            )


def accept(read: RawRead, *, backfill: bool = False) -> Sighting | EventError:
    """The sighting the ingest builds from ``read`` (device unknown), checked for every later stage, or
    the EventError the ingest answers for the record."""
    try:
        sighting = new_sighting(
            sighting_id=sighting_id_for(SOURCE_ID, read.device_id, read.record_id),
            source_kind=read.source_kind,
            source_id=SOURCE_ID,
            device_id=read.device_id,
            plate_raw=read.plate_raw,
            plate_colour=read.plate_colour,
            observed_at=read.observed_at,
            received_at=RECEIVED_AT,
            location=read.location,
            confidence=read.confidence,
            image_ref=read.image_ref,
            backfill=backfill,
            flags=(SightingFlag.UNKNOWN_DEVICE,),
        )
    except EventError as exc:
        check_refusal(exc)
        return exc
    check_sighting(sighting)
    return sighting


def check_sighting(sighting: Sighting) -> None:
    """The sighting survives the topic, the matcher and PostgreSQL."""
    _utc_form("observed_at", sighting.observed_at)
    _storable_texts(sighting.model_dump())
    try:
        encoded = sighting.encode()
    except orjson.JSONEncodeError as exc:
        raise Unfit(f"the sighting does not encode: {exc}") from exc
    try:
        decoded = decode_sighting(encoded)
    except InvalidInput as exc:
        raise Unfit(f"the matcher refuses the sighting the ingest published: {exc}") from exc
    if decoded != sighting:
        raise Unfit(f"the sighting changes on the topic: {sighting!r} became {decoded!r}")


def check_result(result: SeizureResultV1) -> None:
    """A traffic-police result survives the topic and the pager's PostgreSQL rows (text and jsonb)."""
    _utc_form("at", result.at)
    _storable_texts(result.model_dump())
    try:
        encoded = encode_result(result)
    except orjson.JSONEncodeError as exc:
        raise Unfit(f"the result does not encode: {exc}") from exc
    if SeizureResultV1.model_validate_json(encoded) != result:
        raise Unfit(f"the result changes on the topic: {result!r}")


def check_device_row(row: dict[str, object]) -> None:
    """A device row PostgreSQL stores (CHECK constraints, no NUL), the registry loads back (a Location,
    a ZoneInfo) and whose enrichment every sighting accepts (district, name)."""
    _storable_texts(row)
    latitude, longitude = row.get("latitude"), row.get("longitude")
    address = row.get("address") or None
    if latitude is not None or longitude is not None:
        try:
            Location.model_validate({"latitude": latitude, "longitude": longitude, "address": address})
        except ValueError as exc:
            raise Unfit(f"the registry cannot load the device's location: {exc}") from exc
    ZoneInfo(str(row["timezone"]))
    try:
        new_sighting(
            sighting_id="fuzz-device",
            source_kind=SourceKind(str(row.get("kind") or SourceKind.CHECKPOINT)),
            source_id=SOURCE_ID,
            device_id=str(row["device_id"]),
            plate_raw="浙J12345",
            observed_at=RECEIVED_AT,
            received_at=RECEIVED_AT,
            district=str(row["district"]),
            device_name=str(row["name"]),
        )
    except EventError as exc:
        raise Unfit(f"every read of this device would be refused: {exc}") from exc


def _utc_form(name: str, value: datetime) -> None:
    # The matcher compares in UTC and asyncpg sends timestamptz as UTC: both call astimezone(UTC).
    try:
        value.astimezone(UTC)
    except OverflowError as exc:
        raise Unfit(f"{name} {value.isoformat()} has no UTC form (the matcher and asyncpg need one)") from exc


def _storable_texts(value: Any) -> None:
    for text in _strings(value):
        if "\x00" in text:
            raise Unfit(f"text {text[:80]!r} holds a NUL character, which PostgreSQL refuses")
        if not utf8(text):
            raise Unfit(f"text {text[:80]!r} does not encode as UTF-8")


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(key)
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, uuid.UUID | int | float | bool | datetime) or value is None:
        return
    else:
        yield str(value)


def utf8(text: str) -> bool:
    """Whether ``text`` encodes as UTF-8 (no lone surrogate)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
