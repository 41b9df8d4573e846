"""A watch entry (one sealed vehicle of one case) and its wire form on the watchlist changes topic."""

from __future__ import annotations

import re
import sys
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Final

import msgspec
from msgspec import Meta

from streams.errors import InvalidInput
from streams.plates import Plate, parse_plate
from streams.vehicles import Action, EntryStatus, PlateColour, Priority

WATCH_ENTRY_SCHEMA_VERSION = 1

_Aware = Annotated[datetime, Meta(tz=True)]  # a time without its offset is refused


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


# Vehicle descriptions repeat (brand, type, colour: a few hundred in the generator's million entries): one
# string each saves ~70 MiB at a million, as pydantic-core's string cache did before msgspec. Bounded, so
# descriptions that never repeat cost nothing lasting.
_SHARED: dict[str, str] = {}
_SHARED_MAX: Final = 16_384


def _shared(text: str) -> str:
    found = _SHARED.setdefault(text, text)
    if len(_SHARED) > _SHARED_MAX:
        _SHARED.clear()
    return found


class WatchEntryV1(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Wire form of a watch entry on ``watchlist.changes`` (key: entry id; tombstone: released/seized).

    Strict JSON as :func:`encode_entry` writes it: an RFC 3339 time with its offset, a UUID (hyphenated or
    32 hex digits), an enum by its value, a JSON integer for the version; nothing coerced. Unlike the
    pydantic model before it, a fraction of a second beyond microseconds is rounded, not truncated (our
    encoder writes six digits at most).
    """

    schema_version: Annotated[int, Meta(ge=1, le=WATCH_ENTRY_SCHEMA_VERSION)] = WATCH_ENTRY_SCHEMA_VERSION
    entry_id: uuid.UUID
    plate: str
    plate_colour: PlateColour
    vehicle: str
    case_number: str
    court: str
    action: Action
    priority: Priority
    valid_from: _Aware
    valid_until: _Aware | None
    status: EntryStatus
    version: Annotated[int, Meta(ge=1)]

    def to_entry(self) -> WatchEntry:
        return WatchEntry(
            entry_id=self.entry_id,
            plate=parse_plate(self.plate),
            plate_colour=self.plate_colour,
            vehicle=_shared(self.vehicle),
            case_number=self.case_number,
            court=sys.intern(self.court),  # a few courts, a million entries: one string each
            action=self.action,
            priority=self.priority,
            # In UTC proper: a read's time, turned to UTC once, then compares with these without the
            # offset arithmetic of two different tzinfo objects (a third of a match's cost). A time the
            # decoder read with "Z" is in UTC already and stays the same object.
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


_ENCODER: Final = msgspec.json.Encoder()
_DECODER: Final = msgspec.json.Decoder(WatchEntryV1)
# Where msgspec's messages name the field: "… - at `$.version`", "Object missing required field `plate`".
_AT: Final = re.compile(r" - at `\$\.(\w+)`$")
_NAMED: Final = re.compile(r"field `(\w+)`")


def _refused(exc: msgspec.ValidationError) -> InvalidInput:
    message = str(exc)
    if at := _AT.search(message):  # InvalidInput's str() starts with the field: not said twice
        return InvalidInput("invalid_watch_entry", message[: at.start()], field=at.group(1))
    named = _NAMED.search(message)
    return InvalidInput("invalid_watch_entry", message, field=named.group(1) if named else None)


def encode_entry(entry: WatchEntry) -> bytes:
    """The entry's wire form: an active entry's change record value, any entry's history snapshot.

    Checked by decoding it back, as a struct is built without validation: what a worker would refuse
    (a time without its offset, version 0) is refused here, in the transaction that would publish it.

    Raises:
        InvalidInput: the entry breaks the wire form's rules (the field is named).
    """
    raw = _ENCODER.encode(WatchEntryV1.from_entry(entry))
    try:
        _DECODER.decode(raw)
    except msgspec.ValidationError as exc:
        raise _refused(exc) from exc
    return raw


def decode_entry(raw: bytes) -> WatchEntry:
    """Decode a change record's value.

    A worker decodes every entry of the topic before it may match (a million at province scale): msgspec
    validates and builds the wire form in C, three times faster than a pydantic model did
    (docs/performance.md).

    Raises:
        InvalidInput: the value is not a valid watch entry (the field is named when one is at fault).
    """
    try:
        return _DECODER.decode(raw).to_entry()
    except msgspec.ValidationError as exc:
        raise _refused(exc) from exc
    except msgspec.DecodeError as exc:
        raise InvalidInput("invalid_watch_entry", f"not JSON: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise InvalidInput("invalid_watch_entry", f"not UTF-8: {exc}") from exc
    except OverflowError as exc:  # 9999-12-31T23:59:59-01:00 is a valid time with no UTC form
        raise InvalidInput("invalid_watch_entry", f"a validity time out of range in UTC: {exc}") from exc
