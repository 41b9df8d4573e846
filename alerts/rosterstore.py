"""Rosters in PostgreSQL: load a :class:`~alerts.rosters.Roster`, import a roster document, single edits.

The roster document is one JSON object (``seizewatch roster import roster.json``; an example is
``deploy/examples/roster.json``)::

    {"courts":         [{"court_id", "rotation_anchor": "2026-11-01", "handoff": "08:30", "shift_days": 1,
                         "timezone": "Asia/Shanghai", "bureau_duty_leader", "districts": ["331002"]}],
     "officers":       [{"officer_id", "name", "phone": "+8613800000001", "court_id", "role",
                         "active": true, "sms_enabled": true}],
     "groups":         [{"group_id", "court_id", "name", "position": 0,
                         "bureau_leader", "judge", "judicial_police"}],
     "night_contacts": [{"district", "station", "officer_id", "night_start": "20:00", "night_end": "08:00",
                         "timezone": "Asia/Shanghai"}]}

Import upserts everything in one transaction and reports what it inserted, updated or left unchanged.
Nothing is deleted, except that a court's ``districts`` list, when given, replaces the one stored. A
stored group of a court in the document that the document does not mention is kept (it stays in the
rotation) and reported. Overrides are not part of the document: they are single edits.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import asyncpg
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, field_validator

from alerts.rosters import (
    DEFAULT_TIMEZONE,
    GROUP_ROLES,
    Court,
    DutyGroup,
    GroupOverride,
    MemberOverride,
    NightContact,
    Officer,
    Role,
    Roster,
    time_zone,
)
from streams.db import Connection
from streams.errors import InvalidInput
from streams.localtime import shown

_Id = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^\S{1,64}$")]
_Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128)]
_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")


def _check_zone(value: str) -> str:
    time_zone(value)
    return value


class _Doc(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class CourtDoc(_Doc):
    court_id: _Text
    rotation_anchor: date
    handoff: time = time(8, 30)
    shift_days: int = Field(default=1, ge=1, le=31)
    timezone: str = DEFAULT_TIMEZONE
    bureau_duty_leader: _Id | None = None
    districts: tuple[_Text, ...] | None = None  # None (absent): the stored districts stay

    _zone = field_validator("timezone")(_check_zone)


class OfficerDoc(_Doc):
    officer_id: _Id
    name: _Text
    phone: str | None = None
    court_id: _Text | None = None
    role: Role
    active: bool = True
    sms_enabled: bool = True

    @field_validator("phone")
    @classmethod
    def _e164(cls, value: str | None) -> str | None:
        if value is None:
            return None
        compact = re.sub(r"[\s\-()]", "", value)
        if not _E164.match(compact):
            raise ValueError(f"{value!r} is not an E.164 number (+8613800000000)")
        return compact


class GroupDoc(_Doc):
    group_id: _Id
    court_id: _Text
    name: Annotated[str, StringConstraints(strip_whitespace=True, max_length=128)] = ""
    position: int = Field(ge=0)
    bureau_leader: _Id | None = None
    judge: _Id | None = None
    judicial_police: _Id | None = None


class NightContactDoc(_Doc):
    district: _Text
    station: _Text
    officer_id: _Id
    night_start: time = time(20, 0)
    night_end: time = time(8, 0)
    timezone: str = DEFAULT_TIMEZONE

    _zone = field_validator("timezone")(_check_zone)


class RosterDocument(_Doc):
    courts: tuple[CourtDoc, ...] = ()
    officers: tuple[OfficerDoc, ...] = ()
    groups: tuple[GroupDoc, ...] = ()
    night_contacts: tuple[NightContactDoc, ...] = ()


def parse_document(raw: str | bytes) -> RosterDocument:
    """Read a roster document.

    Raises:
        InvalidInput: ``invalid_roster``, naming the first offending field (``officers.3.phone``).
    """
    try:
        return RosterDocument.model_validate_json(raw)
    except ValidationError as exc:
        problems = exc.errors()
        first = problems[0]
        message = first["msg"]
        if len(problems) > 1:
            message += f" (and {len(problems) - 1} more problem(s))"
        where = ".".join(str(part) for part in first["loc"]) or None
        raise InvalidInput("invalid_roster", message, field=where) from exc


# --- load -----------------------------------------------------------------------------------------------


async def load_roster(conn: Connection) -> Roster:
    """The whole roster as one consistent snapshot (a repeatable-read transaction of its own, unless the
    connection is already in one)."""
    if conn.is_in_transaction():
        return await _fetch_roster(conn)
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        return await _fetch_roster(conn)


async def court_zones(conn: Connection) -> dict[str, ZoneInfo]:
    """Each court's time zone (by court id, the name on watch entries); a court not listed: the default."""
    return {
        r["court_id"]: time_zone(r["timezone"])
        for r in await conn.fetch("SELECT court_id, timezone FROM courts")
    }


async def _fetch_roster(conn: Connection) -> Roster:
    courts = await conn.fetch(
        "SELECT court_id, rotation_anchor, handoff, shift_days, timezone, bureau_duty_leader"
        " FROM courts ORDER BY court_id"
    )
    officers = await conn.fetch(f"SELECT {_OFFICER_COLUMNS} FROM officers ORDER BY officer_id")
    groups = await conn.fetch(
        "SELECT group_id, court_id, position, name, bureau_leader, judge, judicial_police"
        " FROM duty_groups ORDER BY court_id, position"
    )
    group_overrides = await conn.fetch(
        f"SELECT {_GROUP_OVERRIDE_COLUMNS} FROM group_overrides ORDER BY override_id"
    )
    member_overrides = await conn.fetch(
        f"SELECT {_MEMBER_OVERRIDE_COLUMNS} FROM member_overrides ORDER BY override_id"
    )
    districts = await conn.fetch("SELECT court_id, district FROM court_districts ORDER BY 1, 2")
    nights = await conn.fetch(
        "SELECT district, station, officer_id, night_start, night_end, timezone FROM night_contacts"
        " ORDER BY district"
    )

    return Roster(
        courts=tuple(Court(**dict(r)) for r in courts),
        officers=tuple(Officer(**{**dict(r), "role": Role(r["role"])}) for r in officers),
        groups=tuple(DutyGroup(**dict(r)) for r in groups),
        group_overrides=tuple(_group_override(r) for r in group_overrides),
        member_overrides=tuple(_member_override(r) for r in member_overrides),
        court_districts=tuple((r["court_id"], r["district"]) for r in districts),
        night_contacts=tuple(NightContact(**dict(r)) for r in nights),
    )


_OFFICER_COLUMNS = "officer_id, name, phone, role, court_id, active, sms_enabled"
_GROUP_OVERRIDE_COLUMNS = "override_id, court_id, group_id, starts_at, ends_at, reason"
_MEMBER_OVERRIDE_COLUMNS = "override_id, group_id, role, officer_id, starts_at, ends_at, reason"


def _group_override(row: asyncpg.Record) -> GroupOverride:
    return GroupOverride(**dict(row))


def _member_override(row: asyncpg.Record) -> MemberOverride:
    return MemberOverride(**{**dict(row), "role": Role(row["role"])})


# --- import ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TableChanges:
    inserted: tuple[str, ...] = ()
    updated: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    unchanged: int = 0

    @property
    def changed(self) -> bool:
        return bool(self.inserted or self.updated or self.removed)


@dataclass(frozen=True, slots=True)
class ImportReport:
    """What an import changed, per table (keys of the rows), and what to look at after it."""

    tables: dict[str, TableChanges] = field(default_factory=dict)
    kept: tuple[str, ...] = ()  # stored rows of the document's courts that the document does not mention
    problems: tuple[str, ...] = ()  # Roster.validate() of the roster as imported

    @property
    def changed(self) -> bool:
        return any(t.changed for t in self.tables.values())


# Upserts touch a row only when a value differs; RETURNING says whether it was inserted (xmax = 0) or
# updated, and returns nothing for an unchanged row.
_UPSERTS = {
    "courts": (
        "INSERT INTO courts (court_id, rotation_anchor, handoff, shift_days, timezone, bureau_duty_leader,"
        " updated_by) VALUES ($1, $2, $3, $4, $5, $6, $7)"
        " ON CONFLICT (court_id) DO UPDATE SET rotation_anchor = EXCLUDED.rotation_anchor,"
        " handoff = EXCLUDED.handoff, shift_days = EXCLUDED.shift_days, timezone = EXCLUDED.timezone,"
        " bureau_duty_leader = EXCLUDED.bureau_duty_leader, updated_by = EXCLUDED.updated_by,"
        " updated_at = now()"
        " WHERE (courts.rotation_anchor, courts.handoff, courts.shift_days, courts.timezone,"
        " courts.bureau_duty_leader) IS DISTINCT FROM (EXCLUDED.rotation_anchor, EXCLUDED.handoff,"
        " EXCLUDED.shift_days, EXCLUDED.timezone, EXCLUDED.bureau_duty_leader)"
        " RETURNING xmax = 0"
    ),
    "officers": (
        "INSERT INTO officers (officer_id, name, phone, court_id, role, active, sms_enabled, updated_by)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        " ON CONFLICT (officer_id) DO UPDATE SET name = EXCLUDED.name, phone = EXCLUDED.phone,"
        " court_id = EXCLUDED.court_id, role = EXCLUDED.role, active = EXCLUDED.active,"
        " sms_enabled = EXCLUDED.sms_enabled, updated_by = EXCLUDED.updated_by, updated_at = now()"
        " WHERE (officers.name, officers.phone, officers.court_id, officers.role, officers.active,"
        " officers.sms_enabled) IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.phone, EXCLUDED.court_id,"
        " EXCLUDED.role, EXCLUDED.active, EXCLUDED.sms_enabled)"
        " RETURNING xmax = 0"
    ),
    "duty_groups": (
        "INSERT INTO duty_groups (group_id, court_id, name, position, bureau_leader, judge, judicial_police,"
        " updated_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        " ON CONFLICT (group_id) DO UPDATE SET court_id = EXCLUDED.court_id, name = EXCLUDED.name,"
        " position = EXCLUDED.position, bureau_leader = EXCLUDED.bureau_leader, judge = EXCLUDED.judge,"
        " judicial_police = EXCLUDED.judicial_police, updated_by = EXCLUDED.updated_by, updated_at = now()"
        " WHERE (duty_groups.court_id, duty_groups.name, duty_groups.position, duty_groups.bureau_leader,"
        " duty_groups.judge, duty_groups.judicial_police) IS DISTINCT FROM (EXCLUDED.court_id, EXCLUDED.name,"
        " EXCLUDED.position, EXCLUDED.bureau_leader, EXCLUDED.judge, EXCLUDED.judicial_police)"
        " RETURNING xmax = 0"
    ),
    "night_contacts": (
        "INSERT INTO night_contacts (district, station, officer_id, night_start, night_end, timezone,"
        " updated_by) VALUES ($1, $2, $3, $4, $5, $6, $7)"
        " ON CONFLICT (district) DO UPDATE SET station = EXCLUDED.station, officer_id = EXCLUDED.officer_id,"
        " night_start = EXCLUDED.night_start, night_end = EXCLUDED.night_end, timezone = EXCLUDED.timezone,"
        " updated_by = EXCLUDED.updated_by, updated_at = now()"
        " WHERE (night_contacts.station, night_contacts.officer_id, night_contacts.night_start,"
        " night_contacts.night_end, night_contacts.timezone) IS DISTINCT FROM (EXCLUDED.station,"
        " EXCLUDED.officer_id, EXCLUDED.night_start, EXCLUDED.night_end, EXCLUDED.timezone)"
        " RETURNING xmax = 0"
    ),
}


async def _upsert(conn: Connection, table: str, rows: Sequence[tuple[str, Sequence[Any]]]) -> TableChanges:
    inserted: list[str] = []
    updated: list[str] = []
    unchanged = 0
    for key, args in rows:
        result = await conn.fetchrow(_UPSERTS[table], *args)
        if result is None:
            unchanged += 1
        elif result[0]:
            inserted.append(key)
        else:
            updated.append(key)
    return TableChanges(tuple(inserted), tuple(updated), (), unchanged)


async def import_roster(conn: Connection, doc: RosterDocument, *, by: str) -> ImportReport:
    """Upsert the document in one transaction; all of it or nothing.

    Raises:
        InvalidInput: ``unknown_reference`` (a group member, leader or court that exists neither in the
            document nor in the database), ``conflict`` (a phone number or a rotation position taken
            twice) or ``invalid_roster`` (a value the database refuses); nothing is written then.
    """
    try:
        async with conn.transaction():
            return await _import(conn, doc, by)
    except asyncpg.ForeignKeyViolationError as exc:
        raise InvalidInput("unknown_reference", _detail(exc)) from exc
    except asyncpg.UniqueViolationError as exc:
        raise InvalidInput("conflict", _detail(exc)) from exc
    except asyncpg.IntegrityConstraintViolationError as exc:
        raise InvalidInput("invalid_roster", _detail(exc)) from exc


def _detail(exc: asyncpg.PostgresError) -> str:
    detail = getattr(exc, "detail", None)
    return f"{exc} ({detail})" if detail else str(exc)


async def _import(conn: Connection, doc: RosterDocument, by: str) -> ImportReport:
    tables: dict[str, TableChanges] = {}
    # Court and officer rows reference each other (bureau duty leader ↔ court): that foreign key is
    # deferred to the commit, so courts go first.
    tables["courts"] = await _upsert(conn, "courts", [
        (c.court_id, (c.court_id, c.rotation_anchor, c.handoff, c.shift_days, c.timezone,
                      c.bureau_duty_leader, by))
        for c in doc.courts
    ])  # fmt: skip
    tables["officers"] = await _upsert(conn, "officers", [
        (o.officer_id, (o.officer_id, o.name, o.phone, o.court_id, o.role.value, o.active, o.sms_enabled, by))
        for o in doc.officers
    ])  # fmt: skip
    tables["duty_groups"] = await _upsert(conn, "duty_groups", [
        (g.group_id, (g.group_id, g.court_id, g.name, g.position, g.bureau_leader, g.judge,
                      g.judicial_police, by))
        for g in doc.groups
    ])  # fmt: skip
    tables["court_districts"] = await _replace_districts(conn, doc.courts, by)
    tables["night_contacts"] = await _upsert(conn, "night_contacts", [
        (n.district, (n.district, n.station, n.officer_id, n.night_start, n.night_end, n.timezone, by))
        for n in doc.night_contacts
    ])  # fmt: skip
    named = {g.group_id for g in doc.groups}
    stored = await conn.fetch(
        "SELECT group_id, court_id FROM duty_groups WHERE court_id = ANY($1::text[]) ORDER BY 2, 1",
        [c.court_id for c in doc.courts],
    )
    kept = tuple(
        f"group {r['group_id']} of {r['court_id']} is not in the document and stays in the rotation"
        for r in stored
        if r["group_id"] not in named
    )
    # Deferred constraints are checked now, so that load_roster below sees a roster that will commit.
    await conn.execute("SET CONSTRAINTS ALL IMMEDIATE")
    problems = (await load_roster(conn)).validate()
    return ImportReport(tables, kept, tuple(problems))


async def _replace_districts(conn: Connection, courts: Sequence[CourtDoc], by: str) -> TableChanges:
    inserted: list[str] = []
    removed: list[str] = []
    unchanged = 0
    for court in courts:
        if court.districts is None:
            continue
        rows = await conn.fetch("SELECT district FROM court_districts WHERE court_id = $1", court.court_id)
        stored = {r["district"] for r in rows}
        wanted = set(court.districts)
        for district in sorted(stored - wanted):
            await conn.execute(
                "DELETE FROM court_districts WHERE court_id = $1 AND district = $2", court.court_id, district
            )
            removed.append(f"{court.court_id} {district}")
        for district in sorted(wanted - stored):
            await conn.execute(
                "INSERT INTO court_districts (court_id, district, updated_by) VALUES ($1, $2, $3)",
                court.court_id,
                district,
                by,
            )
            inserted.append(f"{court.court_id} {district}")
        unchanged += len(stored & wanted)
    return TableChanges(tuple(inserted), (), tuple(removed), unchanged)


# --- single edits ---------------------------------------------------------------------------------------


def _check_period(starts_at: datetime, ends_at: datetime) -> None:
    for name, value in (("from", starts_at), ("to", ends_at)):
        if value.utcoffset() is None:
            raise InvalidInput("invalid_field", "must carry a time zone", field=name)
    if ends_at <= starts_at:
        raise InvalidInput("invalid_field", "must be later than the start", field="to")


async def add_group_override(
    conn: Connection,
    *,
    court_id: str,
    group_id: str,
    starts_at: datetime,
    ends_at: datetime,
    by: str,
    reason: str = "",
) -> GroupOverride:
    """Give the court's duty to ``group_id`` for [starts_at, ends_at), whatever the rotation says.

    Raises:
        InvalidInput: ``not_found`` (court or group), ``invalid_field`` (the group is another court's, the
            period is empty or naive), ``overlap`` (another group override of the court overlaps it).
    """
    _check_period(starts_at, ends_at)
    async with conn.transaction():
        # The court row lock serializes concurrent overrides of one court, so the overlap check holds.
        zone_name = await conn.fetchval(
            "SELECT timezone FROM courts WHERE court_id = $1 FOR UPDATE", court_id
        )
        if zone_name is None:
            raise InvalidInput("not_found", f"no court {court_id!r} on the roster", field="court")
        owner = await conn.fetchval("SELECT court_id FROM duty_groups WHERE group_id = $1", group_id)
        if owner is None:
            raise InvalidInput("not_found", f"no duty group {group_id!r}", field="group")
        if owner != court_id:
            raise InvalidInput("invalid_field", f"group {group_id} belongs to {owner}", field="group")
        clash = await conn.fetchrow(
            f"SELECT {_GROUP_OVERRIDE_COLUMNS} FROM group_overrides"
            " WHERE court_id = $1 AND starts_at < $3 AND ends_at > $2 ORDER BY starts_at LIMIT 1",
            court_id,
            starts_at,
            ends_at,
        )
        if clash is not None:
            raise InvalidInput(
                "overlap", f"overlaps {_describe(_group_override(clash), time_zone(zone_name))}", field="from"
            )
        row = await conn.fetchrow(
            "INSERT INTO group_overrides (court_id, group_id, starts_at, ends_at, reason, updated_by)"
            f" VALUES ($1, $2, $3, $4, $5, $6) RETURNING {_GROUP_OVERRIDE_COLUMNS}",
            court_id,
            group_id,
            starts_at,
            ends_at,
            reason,
            by,
        )
    assert row is not None  # noqa: S101  # INSERT … RETURNING always returns the row
    return _group_override(row)


async def replace_member(
    conn: Connection,
    *,
    group_id: str,
    role: Role,
    officer_id: str,
    starts_at: datetime,
    ends_at: datetime,
    by: str,
    reason: str = "",
) -> MemberOverride:
    """Replace the ``role`` member of a group by ``officer_id`` for [starts_at, ends_at).

    Raises:
        InvalidInput: ``not_found`` (group or officer), ``invalid_field`` (not a group role; the officer
            has another role, belongs to another court or is inactive; an empty or naive period),
            ``overlap`` (another replacement of that member overlaps it).
    """
    _check_period(starts_at, ends_at)
    if role not in GROUP_ROLES:
        raise InvalidInput("invalid_field", f"a duty group has no {role.value}", field="role")
    async with conn.transaction():
        court_id = await conn.fetchval(
            "SELECT court_id FROM duty_groups WHERE group_id = $1 FOR UPDATE", group_id
        )
        if court_id is None:
            raise InvalidInput("not_found", f"no duty group {group_id!r}", field="group")
        officer = await conn.fetchrow(
            f"SELECT {_OFFICER_COLUMNS} FROM officers WHERE officer_id = $1",
            officer_id,
        )
        if officer is None:
            raise InvalidInput("not_found", f"no officer {officer_id!r}", field="officer")
        replacement = Officer(**{**dict(officer), "role": Role(officer["role"])})
        if replacement.role is not role:
            raise InvalidInput(
                "invalid_field",
                f"{replacement} is {replacement.role.value}, not {role.value}",
                field="officer",
            )
        if replacement.court_id != court_id:
            raise InvalidInput(
                "invalid_field",
                f"{replacement} belongs to {replacement.court_id}, not {court_id}",
                field="officer",
            )
        if not replacement.active:
            raise InvalidInput("invalid_field", f"{replacement} is inactive", field="officer")
        clash = await conn.fetchrow(
            f"SELECT {_MEMBER_OVERRIDE_COLUMNS} FROM member_overrides"
            " WHERE group_id = $1 AND role = $2 AND starts_at < $4 AND ends_at > $3"
            " ORDER BY starts_at LIMIT 1",
            group_id,
            role.value,
            starts_at,
            ends_at,
        )
        if clash is not None:
            zone = time_zone(
                await conn.fetchval("SELECT timezone FROM courts WHERE court_id = $1", court_id)
                or DEFAULT_TIMEZONE
            )
            raise InvalidInput(
                "overlap", f"overlaps {_describe(_member_override(clash), zone)}", field="from"
            )
        row = await conn.fetchrow(
            "INSERT INTO member_overrides (group_id, role, officer_id, starts_at, ends_at, reason,"
            f" updated_by) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {_MEMBER_OVERRIDE_COLUMNS}",
            group_id,
            role.value,
            officer_id,
            starts_at,
            ends_at,
            reason,
            by,
        )
    assert row is not None  # noqa: S101  # INSERT … RETURNING always returns the row
    return _member_override(row)


async def cancel_override(
    conn: Connection, *, member: bool, override_id: int
) -> GroupOverride | MemberOverride:
    """Delete a group override (or, with ``member``, a member override); returns what it was.

    Raises:
        InvalidInput: ``not_found``.
    """
    table, columns = (
        ("member_overrides", _MEMBER_OVERRIDE_COLUMNS)
        if member
        else ("group_overrides", _GROUP_OVERRIDE_COLUMNS)
    )
    row = await conn.fetchrow(f"DELETE FROM {table} WHERE override_id = $1 RETURNING {columns}", override_id)
    if row is None:
        kind = "member" if member else "group"
        raise InvalidInput("not_found", f"no {kind} override #{override_id}", field="override_id")
    return _member_override(row) if member else _group_override(row)


async def set_officer_active(conn: Connection, officer_id: str, active: bool, *, by: str) -> Officer:
    """Mark an officer active or inactive (left the court, long leave). Nothing else changes: groups
    naming an inactive officer are validate() findings, and routing reports the officer as unreachable.

    Raises:
        InvalidInput: ``not_found``.
    """
    row = await conn.fetchrow(
        "UPDATE officers SET active = $2, updated_by = $3, updated_at = now() WHERE officer_id = $1"
        f" RETURNING {_OFFICER_COLUMNS}",
        officer_id,
        active,
        by,
    )
    if row is None:
        raise InvalidInput("not_found", f"no officer {officer_id!r}", field="officer")
    return Officer(**{**dict(row), "role": Role(row["role"])})


def _describe(override: GroupOverride | MemberOverride, zone: ZoneInfo) -> str:
    period = f"{shown(override.starts_at, zone)} – {shown(override.ends_at, zone)}"
    if isinstance(override, GroupOverride):
        return f"group override #{override.override_id} ({override.group_id}, {period})"
    return (
        f"member override #{override.override_id}"
        f" ({override.group_id} {override.role.value} → {override.officer_id}, {period})"
    )
