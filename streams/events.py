"""The canonical plate sighting (schema v1): what every connector produces and every stage consumes.

Validation happens at the edge, once: a connector builds the event with :func:`new_sighting` (which
normalizes the plate) and a stage decodes it with :func:`decode_sighting`. Either raises
:class:`EventError` naming the field and the reason; the caller dead-letters the raw bytes with it.
"""

from __future__ import annotations

import enum
import hashlib
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

import orjson
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)

from streams.errors import InvalidInput
from streams.plates import PlateError, PlateShape, read_plate
from streams.vehicles import PlateColour

SIGHTING_SCHEMA_VERSION = 1
# A device clock may run a little fast; a read further in the future than this is refused.
MAX_CLOCK_SKEW = timedelta(minutes=5)

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128)]


class SourceKind(enum.StrEnum):
    PARKING_ENTRY = "parking_entry"
    PARKING_EXIT = "parking_exit"
    CHECKPOINT = "checkpoint"


class SightingFlag(enum.StrEnum):
    """Facts about a read that downstream stages weigh (they never make it invalid)."""

    UNKNOWN_DEVICE = "unknown_device"  # not in the device registry: no place, no district
    LATE = "late"  # observed longer ago than the freshness window when it was received


class EventError(InvalidInput):
    """A payload that cannot become a canonical event; ``reason`` is a stable code."""


class Location(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)
    address: str | None = Field(default=None, max_length=256)


class Sighting(BaseModel):
    """One plate read, canonical. ``sighting_id`` is the idempotency id: the same read, the same id."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: Literal[1] = 1
    sighting_id: Text
    source_kind: SourceKind
    source_id: Text  # the feed: a parking operator, a checkpoint platform, a backfill file
    device_id: Text  # camera, gate or checkpoint lane
    plate_raw: Annotated[str, StringConstraints(max_length=32)]
    plate: Annotated[str, StringConstraints(min_length=1, max_length=16)]
    plate_shape: PlateShape
    plate_colour: PlateColour = PlateColour.UNKNOWN
    observed_at: AwareDatetime  # device time with its UTC offset (Asia/Shanghai unless the device says)
    received_at: AwareDatetime  # when seizewatch accepted it (processing time, for latency)
    location: Location | None = None
    # From the device registry: the jurisdiction (district code) and the device's name for people.
    district: str | None = Field(default=None, max_length=64)
    device_name: str | None = Field(default=None, max_length=256)
    # The place's street address for people (the SMS): the read's own, else the device registry's. The
    # registry's is here even for a device without coordinates (which has no ``location``).
    address: str | None = Field(default=None, max_length=256)
    confidence: float | None = Field(default=None, ge=0, le=1)
    image_ref: str | None = Field(default=None, max_length=1024)
    # Backfilled history: enriches trails and statistics, never pages anyone.
    backfill: bool = False
    flags: tuple[SightingFlag, ...] = ()

    @model_validator(mode="after")
    def _not_in_future(self) -> Sighting:
        if self.observed_at - self.received_at > MAX_CLOCK_SKEW:
            raise ValueError(
                f"observed_at {self.observed_at.isoformat()} is more than {MAX_CLOCK_SKEW} after "
                f"received_at {self.received_at.isoformat()} (device clock wrong?)"
            )
        return self

    def encode(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json", exclude_none=True))


def sighting_id_for(source_id: str, device_id: str, record_id: str) -> str:
    """A stable idempotency id for a record the sender identifies itself (a resend gets the same id)."""
    digest = hashlib.blake2b(f"{source_id}\x1f{device_id}\x1f{record_id}".encode(), digest_size=16)
    return digest.hexdigest()


def new_sighting(
    *,
    sighting_id: str,
    source_kind: SourceKind,
    source_id: str,
    device_id: str,
    plate_raw: str,
    observed_at: datetime,
    received_at: datetime,
    plate_colour: PlateColour = PlateColour.UNKNOWN,
    location: Location | None = None,
    district: str | None = None,
    device_name: str | None = None,
    address: str | None = None,
    confidence: float | None = None,
    image_ref: str | None = None,
    backfill: bool = False,
    flags: tuple[SightingFlag, ...] = (),
) -> Sighting:
    """Build a canonical sighting from a connector's fields, normalizing the plate.

    Raises:
        EventError: naming the field and the reason (``plate`` for a plate that is not one; a text with
            a NUL character, or an observed time without a UTC form or with an offset of seconds, which
            the stages downstream cannot take).
    """
    try:
        plate = read_plate(plate_raw)
    except PlateError as exc:
        raise EventError(exc.reason, exc.args[0], field="plate") from exc
    texts = {
        "sighting_id": sighting_id, "source_id": source_id, "device_id": device_id, "image_ref": image_ref,
        "district": district, "device_name": device_name, "address": address,
        "location.address": location.address if location is not None else None,
    }  # fmt: skip
    for name, text in texts.items():
        if text is not None and (fault := text_fault(text)):
            raise EventError("invalid_field", fault, field=name)
    if fault := time_fault(observed_at):
        raise EventError("invalid_field", fault, field="observed_at")
    try:
        return Sighting(
            sighting_id=sighting_id,
            source_kind=source_kind,
            source_id=source_id,
            device_id=device_id,
            plate_raw=plate_raw,
            plate=plate.text,
            plate_shape=plate.shape,
            plate_colour=plate_colour,
            observed_at=observed_at,
            received_at=received_at,
            location=location,
            district=district,
            device_name=device_name,
            address=address,
            confidence=confidence,
            image_ref=image_ref,
            backfill=backfill,
            flags=flags,
        )
    except ValidationError as exc:
        raise _event_error(exc) from exc


def text_fault(text: str) -> str | None:
    """Why a text cannot be stored downstream, or None: PostgreSQL refuses NUL in text and jsonb.

    Lone surrogates, which no UTF-8 encoder takes, are refused by the models themselves (pydantic).
    """
    # One membership test per field: this runs for every read on the ingest.
    return "holds a NUL character (U+0000), which cannot be stored" if "\x00" in text else None


def time_fault(value: datetime) -> str | None:
    """Why an aware time cannot travel downstream, or None. A naive time is left to the model.

    It needs a UTC form: the matcher and asyncpg compute one, which overflows at the ends of datetime's
    range (0001-01-01T00:00:00+08:00). And its offset must be whole minutes: the event's JSON carries
    ±hh:mm, so an offset of seconds (Shanghai's local mean time before 1901, +08:05:43) would come out
    of the topic as another instant.
    """
    offset = value.utcoffset()
    if offset is None:
        return None
    try:
        value.astimezone(UTC)
    except OverflowError:
        return f"{value.isoformat()} has no UTC form (out of range)"
    if offset.seconds % 60 or offset.microseconds:
        return f"{value.isoformat()} has an offset of seconds, which the event cannot carry (±hh:mm)"
    return None


def decode_sighting(raw: bytes) -> Sighting:
    """Decode one record of the sightings topic.

    Raises:
        EventError: reason ``not_json``, ``unsupported_schema`` or ``invalid_field`` (field named).
    """
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise EventError("not_json", f"not a JSON document: {exc}") from exc
    if not isinstance(data, dict):
        raise EventError("not_json", f"expected a JSON object, got {type(data).__name__}")
    version = data.get("schema_version")
    if version != SIGHTING_SCHEMA_VERSION:
        raise EventError(
            "unsupported_schema",
            f"schema_version {version!r} is not supported (expected {SIGHTING_SCHEMA_VERSION})",
            field="schema_version",
        )
    try:
        return Sighting.model_validate(data)
    except ValidationError as exc:
        raise _event_error(exc) from exc


def _event_error(exc: ValidationError) -> EventError:
    problems = exc.errors()
    first = problems[0]
    field = ".".join(str(part) for part in first["loc"]) or None
    message = first["msg"]
    if len(problems) > 1:
        message += f" (and {len(problems) - 1} more problem(s))"
    return EventError("invalid_field", message, field=field)
