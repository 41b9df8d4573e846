"""Watch entries in PostgreSQL: add, release, list; every change audited and written to the outbox."""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

import asyncpg
import orjson
from pydantic import AwareDatetime, BaseModel, ConfigDict, StringConstraints, field_validator

from streams.db import Connection
from streams.errors import InvalidInput
from streams.plates import PlateError, parse_plate
from streams.topics import SEIZURE_REQUESTS, WATCHLIST_CHANGES
from streams.traffic import SeizureRequestV1
from streams.vehicles import Action, EntryStatus, PlateColour, Priority
from streams.watchlist import WatchEntry, encode_entry

OUTBOX_CHANNEL = "seizewatch_outbox"

_Required = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128)]


class NewEntry(BaseModel):
    """A watch entry as a clerk or an import file gives it; validation names the field."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    plate: str
    case_number: _Required
    court: _Required
    action: Action = Action.SEIZE
    priority: Priority = Priority.NORMAL
    plate_colour: PlateColour = PlateColour.UNKNOWN
    vehicle: Annotated[str, StringConstraints(strip_whitespace=True, max_length=256)] = ""
    valid_from: AwareDatetime | None = None
    valid_until: AwareDatetime | None = None
    note: Annotated[str, StringConstraints(max_length=1000)] = ""

    @field_validator("plate")
    @classmethod
    def _strict_plate(cls, value: str) -> str:
        try:
            return parse_plate(value).text
        except PlateError as exc:
            raise ValueError(str(exc)) from exc


@dataclass(frozen=True, slots=True)
class EntryRecord:
    """A watch entry with its audit fields, as listed to people."""

    entry: WatchEntry
    note: str
    updated_by: str
    updated_at: datetime


_COLUMNS = (
    "entry_id, plate, plate_colour, vehicle, case_number, court, action, priority, valid_from,"
    " valid_until, status, version, note, updated_by, updated_at"
)


def _record(row: asyncpg.Record) -> EntryRecord:
    entry = WatchEntry(
        entry_id=row["entry_id"],
        plate=parse_plate(row["plate"]),
        plate_colour=PlateColour(row["plate_colour"]),
        vehicle=row["vehicle"],
        case_number=row["case_number"],
        court=row["court"],
        action=Action(row["action"]),
        priority=Priority(row["priority"]),
        valid_from=row["valid_from"],
        valid_until=row["valid_until"],
        status=EntryStatus(row["status"]),
        version=row["version"],
    )
    return EntryRecord(entry, row["note"], row["updated_by"], row["updated_at"])


async def _audit_and_publish(
    conn: Connection, record: EntryRecord, change: str, by: str, reason: str
) -> None:
    entry = record.entry
    snapshot = encode_entry(entry).decode()
    await conn.execute(
        "INSERT INTO watch_entry_history (entry_id, version, change, changed_by, reason, snapshot)"
        " VALUES ($1, $2, $3, $4, $5, $6::jsonb)",
        entry.entry_id,
        entry.version,
        change,
        by,
        reason,
        snapshot,
    )
    # Active entries travel whole; released and seized ones as tombstones, so compaction forgets them.
    active = entry.status is EntryStatus.ACTIVE
    await conn.execute(
        "INSERT INTO outbox (topic, key, payload) VALUES ($1, $2, $3)",
        WATCHLIST_CHANGES,
        str(entry.entry_id),
        encode_entry(entry) if active else None,
    )
    if entry.action is Action.SEIZE:
        # The traffic police's list (一键扣车) follows every addition, release and seizure.
        request = SeizureRequestV1(
            request_id=entry.entry_id,
            plate=entry.plate.text,
            plate_colour=entry.plate_colour,
            vehicle=entry.vehicle,
            case_number=entry.case_number,
            court=entry.court,
            priority=entry.priority,
            requested_at=record.updated_at,
            valid_until=entry.valid_until,
        )
        await conn.execute(
            "INSERT INTO outbox (topic, key, payload) VALUES ($1, $2, $3)",
            SEIZURE_REQUESTS,
            str(entry.entry_id),
            orjson.dumps(request.model_dump(mode="json")) if active else None,
        )
    await conn.execute(f"NOTIFY {OUTBOX_CHANNEL}")


async def add_entry(conn: Connection, new: NewEntry, *, by: str) -> EntryRecord:
    """Put a vehicle under watch.

    Raises:
        InvalidInput: ``duplicate`` when the plate is already actively watched for this case.
    """
    valid_from = new.valid_from or datetime.now(UTC)
    if new.valid_until is not None and new.valid_until <= valid_from:
        raise InvalidInput("invalid_field", "must be later than valid_from", field="valid_until")
    async with conn.transaction():
        try:
            row = await conn.fetchrow(
                "INSERT INTO watch_entries (plate, plate_colour, vehicle, case_number, court, action,"
                " priority, valid_from, valid_until, note, created_by, updated_by)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11)"
                f" RETURNING {_COLUMNS}",
                new.plate,
                new.plate_colour.value,
                new.vehicle,
                new.case_number,
                new.court,
                new.action.value,
                new.priority.value,
                valid_from,
                new.valid_until,
                new.note,
                by,
            )
        except asyncpg.UniqueViolationError as exc:
            raise InvalidInput(
                "duplicate", f"{new.plate} is already watched for case {new.case_number}", field="plate"
            ) from exc
        assert row is not None  # noqa: S101  # INSERT … RETURNING always returns the row
        record = _record(row)
        await _audit_and_publish(conn, record, "added", by, new.note)
    return record


class ClosedReason(enum.StrEnum):
    """Why an entry left the watchlist; the funnel report counts paid and settled cases."""

    PAID = "paid"  # 已履行
    SETTLED = "settled"  # 执行和解
    EXPIRED = "expired"  # the seal lapsed
    WITHDRAWN = "withdrawn"  # entered by mistake, case withdrawn
    SEIZED = "seized"
    OTHER = "other"


async def _change_status(
    conn: Connection,
    entry_id: uuid.UUID,
    status: EntryStatus,
    change: str,
    by: str,
    reason: str,
    closed: ClosedReason,
) -> EntryRecord:
    async with conn.transaction():
        row = await conn.fetchrow(
            "UPDATE watch_entries SET status = $2, version = version + 1, updated_by = $3,"
            " updated_at = now(), closed_reason = $4"
            f" WHERE entry_id = $1 AND status = 'active' RETURNING {_COLUMNS}",
            entry_id,
            status.value,
            by,
            closed.value,
        )
        if row is None:
            exists = await conn.fetchval("SELECT status FROM watch_entries WHERE entry_id = $1", entry_id)
            if exists is None:
                raise InvalidInput("not_found", f"no watch entry {entry_id}", field="entry_id")
            raise InvalidInput(
                "not_active", f"watch entry {entry_id} is {exists}, not active", field="entry_id"
            )
        record = _record(row)
        await _audit_and_publish(conn, record, change, by, reason)
    return record


async def release_entry(
    conn: Connection,
    entry_id: uuid.UUID,
    *,
    by: str,
    reason: str,
    closed: ClosedReason = ClosedReason.OTHER,
) -> EntryRecord:
    """Lift the seal (解封): the entry leaves every matcher's index and the traffic police's list within
    seconds; the pager cancels its open task.

    Raises:
        InvalidInput: ``not_found`` or ``not_active``.
    """
    return await _change_status(conn, entry_id, EntryStatus.RELEASED, "released", by, reason, closed)


async def mark_seized(conn: Connection, entry_id: uuid.UUID, *, by: str, reason: str) -> EntryRecord:
    """The vehicle is in custody: the entry closes as seized and leaves every list.

    Raises:
        InvalidInput: ``not_found`` or ``not_active``.
    """
    return await _change_status(conn, entry_id, EntryStatus.SEIZED, "seized", by, reason, ClosedReason.SEIZED)


async def list_entries(
    conn: Connection,
    *,
    status: EntryStatus | None = EntryStatus.ACTIVE,
    court: str | None = None,
    plate: str | None = None,
    limit: int = 100,
) -> list[EntryRecord]:
    clauses: list[str] = []
    args: list[Any] = []
    for column, value in (("status", status.value if status else None), ("court", court), ("plate", plate)):
        if value is not None:
            args.append(value)
            clauses.append(f"{column} = ${len(args)}")
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    args.append(limit)
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM watch_entries {where} ORDER BY updated_at DESC LIMIT ${len(args)}", *args
    )
    return [_record(row) for row in rows]
