"""Watch entries in PostgreSQL: add, edit, release, list, history; every change audited and written to
the outbox."""

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
    conn: Connection,
    record: EntryRecord,
    change: str,
    by: str,
    reason: str,
    *,
    changes: dict[str, list[str | None]] | None = None,
    was_seize: bool = False,
) -> None:
    entry = record.entry
    snapshot = encode_entry(entry).decode()
    await conn.execute(
        "INSERT INTO watch_entry_history (entry_id, version, change, changed_by, reason, snapshot, changes)"
        " VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7::jsonb)",
        entry.entry_id,
        entry.version,
        change,
        by,
        reason,
        snapshot,
        orjson.dumps(changes or {}).decode(),
    )
    # Active entries travel whole; released and seized ones as tombstones, so compaction forgets them.
    active = entry.status is EntryStatus.ACTIVE
    await conn.execute(
        "INSERT INTO outbox (topic, key, payload) VALUES ($1, $2, $3)",
        WATCHLIST_CHANGES,
        str(entry.entry_id),
        encode_entry(entry) if active else None,
    )
    if entry.action is not Action.SEIZE and was_seize:
        # Edited away from seizure: it leaves the traffic police's list.
        await conn.execute(
            "INSERT INTO outbox (topic, key, payload) VALUES ($1, $2, NULL)",
            SEIZURE_REQUESTS,
            str(entry.entry_id),
        )
    if entry.action is Action.SEIZE:
        # The traffic police's list (一键扣车) follows every addition, release and seizure.
        await _publish_request(
            conn, record, await court_contact(conn, entry.court) if active else None, active
        )
    await conn.execute(f"NOTIFY {OUTBOX_CHANNEL}")


async def court_contact(conn: Connection, court: str) -> str | None:
    """The court's on-duty contact for the traffic police, as the pager last computed it (or none)."""
    value = await conn.fetchval("SELECT contact FROM court_contacts WHERE court = $1", court)
    return str(value) if value is not None else None


async def _publish_request(conn: Connection, record: EntryRecord, contact: str | None, active: bool) -> None:
    entry = record.entry
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
        court_contact=contact,
    )
    await conn.execute(
        "INSERT INTO outbox (topic, key, payload) VALUES ($1, $2, $3)",
        SEIZURE_REQUESTS,
        str(entry.entry_id),
        orjson.dumps(request.model_dump(mode="json")) if active else None,
    )


async def set_court_contact(
    conn: Connection, court: str, contact: str | None, *, officer_id: str | None, now: datetime
) -> int | None:
    """Record the court's contact (None: nobody to give) and, when it changed, republish the court's
    active seize requests with it.

    Returns how many requests were republished, or None when the contact did not change. Runs in the
    caller's transaction.
    """
    row = await conn.fetchrow("SELECT contact FROM court_contacts WHERE court = $1 FOR UPDATE", court)
    if row is not None and row["contact"] == contact:
        return None
    await conn.execute(
        "INSERT INTO court_contacts (court, contact, officer_id, updated_at) VALUES ($1, $2, $3, $4)"
        " ON CONFLICT (court) DO UPDATE SET contact = $2, officer_id = $3, updated_at = $4",
        court,
        contact,
        officer_id,
        now,
    )
    rows = await conn.fetch(
        "SELECT * FROM watch_entries WHERE court = $1 AND status = 'active' AND action = 'seize'", court
    )
    for row in rows:
        await _publish_request(conn, _record(row), contact, True)
    if rows:
        await conn.execute(f"NOTIFY {OUTBOX_CHANNEL}")
    return len(rows)


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
    *,
    from_states: tuple[EntryStatus, ...] = (EntryStatus.ACTIVE,),
) -> EntryRecord:
    async with conn.transaction():
        row = await conn.fetchrow(
            "UPDATE watch_entries SET status = $2, version = version + 1, updated_by = $3,"
            " updated_at = now(), closed_reason = $4"
            f" WHERE entry_id = $1 AND status = ANY($5::text[]) RETURNING {_COLUMNS}",
            entry_id,
            status.value,
            by,
            closed.value,
            [state.value for state in from_states],
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
    seconds; the pager cancels its open task. An entry seized under another case is settled this way too,
    by its own court.

    Raises:
        InvalidInput: ``not_found`` or ``not_active`` (neither active nor seized under another case).
    """
    return await _change_status(
        conn, entry_id, EntryStatus.RELEASED, "released", by, reason, closed,
        from_states=(EntryStatus.ACTIVE, EntryStatus.SEIZED_OTHER_CASE),
    )  # fmt: skip


async def mark_seized(conn: Connection, entry_id: uuid.UUID, *, by: str, reason: str) -> EntryRecord:
    """The vehicle is in custody: the entry closes as seized and leaves every list.

    Raises:
        InvalidInput: ``not_found`` or ``not_active``.
    """
    return await _change_status(conn, entry_id, EntryStatus.SEIZED, "seized", by, reason, ClosedReason.SEIZED)


async def mark_seized_other_case(
    conn: Connection, entry_id: uuid.UUID, *, by: str, reason: str
) -> EntryRecord:
    """The vehicle was seized under another of its cases: the entry leaves every matcher and the traffic
    police's list (no more pages) but stays its court's to settle (:func:`release_entry`).

    Raises:
        InvalidInput: ``not_found`` or ``not_active``.
    """
    return await _change_status(
        conn, entry_id, EntryStatus.SEIZED_OTHER_CASE, "seized_other_case", by, reason, ClosedReason.SEIZED
    )


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


class EntryEdit(BaseModel):
    """What a clerk changes on an active entry; a field left None stays as it is."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    action: Action | None = None
    priority: Priority | None = None
    valid_from: AwareDatetime | None = None
    valid_until: AwareDatetime | None = None
    no_expiry: bool = False  # remove valid_until: the seal stays until released
    note: Annotated[str, StringConstraints(max_length=1000)] | None = None


def _text(value: object) -> str | None:
    if value is None:
        return None
    return value.isoformat() if isinstance(value, datetime) else str(value)


async def edit_entry(
    conn: Connection, entry_id: uuid.UUID, edit: EntryEdit, *, by: str, reason: str = ""
) -> tuple[EntryRecord, dict[str, list[str | None]]]:
    """Change an active entry's action, priority, validity or note: a new version, audited with each
    field's value before and after, and published like any change (the traffic police's list follows a
    change of action to or from seizure).

    Returns:
        The entry as it now is, and the changes by field: ``{"priority": ["normal", "urgent"]}``.

    Raises:
        InvalidInput: ``not_found``, ``not_active``, ``no_change`` (every value is already so), or
            ``invalid_field`` (valid_until not later than valid_from).
    """
    async with conn.transaction():
        row = await conn.fetchrow(
            f"SELECT {_COLUMNS} FROM watch_entries WHERE entry_id = $1 FOR UPDATE", entry_id
        )
        if row is None:
            raise InvalidInput("not_found", f"no watch entry {entry_id}", field="entry_id")
        before = _record(row)
        if before.entry.status is not EntryStatus.ACTIVE:
            raise InvalidInput(
                "not_active",
                f"watch entry {entry_id} is {before.entry.status.value}, not active",
                field="entry_id",
            )
        old = before.entry
        new = {
            "action": edit.action or old.action,
            "priority": edit.priority or old.priority,
            "valid_from": edit.valid_from or old.valid_from,
            "valid_until": None if edit.no_expiry else (edit.valid_until or old.valid_until),
            "note": before.note if edit.note is None else edit.note,
        }
        was = {
            "action": old.action,
            "priority": old.priority,
            "valid_from": old.valid_from,
            "valid_until": old.valid_until,
            "note": before.note,
        }
        changes = {
            field: [_text(was[field]), _text(value)] for field, value in new.items() if value != was[field]
        }
        if not changes:
            raise InvalidInput("no_change", f"watch entry {entry_id} already has these values")
        valid_from, valid_until = new["valid_from"], new["valid_until"]
        assert isinstance(valid_from, datetime)  # noqa: S101  # narrowed for mypy: never None above
        if isinstance(valid_until, datetime) and valid_until <= valid_from:
            raise InvalidInput(
                "invalid_field",
                f"must be later than valid_from ({valid_until.isoformat()} <= {valid_from.isoformat()})",
                field="valid_until",
            )
        row = await conn.fetchrow(
            "UPDATE watch_entries SET action = $2, priority = $3, valid_from = $4, valid_until = $5,"
            " note = $6, version = version + 1, updated_by = $7, updated_at = now()"
            f" WHERE entry_id = $1 RETURNING {_COLUMNS}",
            entry_id,
            str(new["action"]),
            str(new["priority"]),
            valid_from,
            valid_until,
            new["note"],
            by,
        )
        assert row is not None  # noqa: S101  # the row is locked above
        record = _record(row)
        await _audit_and_publish(
            conn, record, "updated", by, reason, changes=changes, was_seize=old.action is Action.SEIZE
        )
    return record, changes


@dataclass(frozen=True, slots=True)
class HistoryRow:
    """One version of an entry: who made it, when, why, and (for an edit) each field before and after."""

    version: int
    change: str
    changed_by: str
    changed_at: datetime
    reason: str
    changes: dict[str, list[str | None]]
    snapshot: dict[str, Any]


async def entry_history(conn: Connection, entry_id: uuid.UUID) -> list[HistoryRow]:
    """The audit trail of an entry, oldest version first.

    Raises:
        InvalidInput: ``not_found``.
    """
    rows = await conn.fetch(
        "SELECT version, change, changed_by, changed_at, reason, changes, snapshot FROM watch_entry_history"
        " WHERE entry_id = $1 ORDER BY version",
        entry_id,
    )
    if not rows:
        raise InvalidInput("not_found", f"no watch entry {entry_id}", field="entry_id")
    return [
        HistoryRow(
            r["version"],
            r["change"],
            r["changed_by"],
            r["changed_at"],
            r["reason"],
            orjson.loads(r["changes"]),
            orjson.loads(r["snapshot"]),
        )
        for r in rows
    ]


async def active_entry_for(
    conn: Connection, plate: str, case_number: str, *, also: tuple[EntryStatus, ...] = ()
) -> EntryRecord:
    """The one active entry of ``plate`` for ``case_number`` (brackets full- or half-width alike, as clerks
    type （2026） and (2026) both); ``also``: or in one of these states (a release also settles an entry
    seized under another case).

    Raises:
        InvalidInput: ``invalid_plate``; ``not_found`` (none active; closed ones are named);
            ``ambiguous`` (several: their ids are listed).
    """
    try:
        text = parse_plate(plate).text
    except PlateError as exc:
        raise InvalidInput("invalid_plate", str(exc), field="plate") from exc
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM watch_entries WHERE plate = $1"
        " AND translate(case_number, '（） ', '()') = translate($2, '（） ', '()') ORDER BY updated_at DESC",
        text,
        case_number.strip(),
    )
    records = [_record(r) for r in rows]
    active = [r for r in records if r.entry.status is EntryStatus.ACTIVE or r.entry.status in also]
    if len(active) == 1:
        return active[0]
    if active:
        ids = ", ".join(str(r.entry.entry_id) for r in active)
        raise InvalidInput(
            "ambiguous",
            f"{len(active)} active entries of {text} for case {case_number}: {ids}",
            field="plate",
        )
    closed = "; ".join(f"{r.entry.entry_id} {r.entry.case_number} is {r.entry.status.value}" for r in records)
    raise InvalidInput(
        "not_found",
        f"no active entry of {text} for case {case_number}" + (f" ({closed})" if closed else ""),
        field="plate",
    )


async def known_courts(conn: Connection) -> set[str]:
    """Every court named on a watch entry or in the rosters: an unseen name is most likely a typo."""
    rows = await conn.fetch("SELECT DISTINCT court FROM watch_entries UNION SELECT court_id FROM courts")
    return {r[0] for r in rows}
