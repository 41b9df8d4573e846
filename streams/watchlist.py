"""A watch entry (one sealed vehicle of one case) and its wire form on the watchlist changes topic."""

from __future__ import annotations

import sys
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from streams.errors import InvalidInput
from streams.plates import Plate, parse_plate
from streams.vehicles import Action, EntryStatus, PlateColour, Priority

WATCH_ENTRY_SCHEMA_VERSION = 1


@dataclass(frozen=True, slots=True)
class WatchEntry:
    """One sealed vehicle as the matchers see it (the PostgreSQL row keeps the audit fields)."""

    entry_id: uuid.UUID
    plate: Plate
    plate_colour: PlateColour
    vehicle: str
    case_number: str
    court: str
    action: Action
    priority: Priority
    valid_from: datetime
    valid_until: datetime | None
    status: EntryStatus
    version: int

    def in_force(self, at: datetime) -> bool:
        """Active and inside its validity period at ``at``."""
        if self.status is not EntryStatus.ACTIVE or at < self.valid_from:
            return False
        return self.valid_until is None or at < self.valid_until


class WatchEntryV1(BaseModel):
    """Wire form of a watch entry on ``watchlist.changes`` (key: entry id; tombstone: released/seized)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: int = Field(default=WATCH_ENTRY_SCHEMA_VERSION, ge=1, le=WATCH_ENTRY_SCHEMA_VERSION)
    entry_id: uuid.UUID
    plate: str
    plate_colour: PlateColour
    vehicle: str
    case_number: str
    court: str
    action: Action
    priority: Priority
    valid_from: AwareDatetime
    valid_until: AwareDatetime | None
    status: EntryStatus
    version: int = Field(ge=1)

    def to_entry(self) -> WatchEntry:
        return WatchEntry(
            entry_id=self.entry_id,
            plate=parse_plate(self.plate),
            plate_colour=self.plate_colour,
            vehicle=self.vehicle,
            case_number=self.case_number,
            court=sys.intern(self.court),  # a few courts, a million entries: one string each
            action=self.action,
            priority=self.priority,
            # In UTC proper: a read's time, turned to UTC once, then compares with these without the
            # offset arithmetic of two different tzinfo objects (a third of a match's cost).
            valid_from=self.valid_from.astimezone(UTC),
            valid_until=self.valid_until.astimezone(UTC) if self.valid_until is not None else None,
            status=self.status,
            version=self.version,
        )

    @classmethod
    def from_entry(cls, entry: WatchEntry) -> WatchEntryV1:
        return cls(
            entry_id=entry.entry_id,
            plate=entry.plate.text,
            plate_colour=entry.plate_colour,
            vehicle=entry.vehicle,
            case_number=entry.case_number,
            court=entry.court,
            action=entry.action,
            priority=entry.priority,
            valid_from=entry.valid_from,
            valid_until=entry.valid_until,
            status=entry.status,
            version=entry.version,
        )


def encode_entry(entry: WatchEntry) -> bytes:
    return orjson.dumps(WatchEntryV1.from_entry(entry).model_dump(mode="json"))


def decode_entry(raw: bytes) -> WatchEntry:
    """Decode a change record's value.

    Raises:
        InvalidInput: the value is not a valid watch entry (the field is named).
    """
    try:
        return WatchEntryV1.model_validate_json(raw).to_entry()
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or None
        raise InvalidInput("invalid_watch_entry", first["msg"], field=field) from exc
