"""Duty rosters: courts, officers, "1+1+1" duty groups on rotation, overrides, night contacts; who is on duty.

Pure: a :class:`Roster` is a snapshot of the roster tables (``alerts.rosterstore`` loads one) and every
question takes the instant it is about, so the pager and the tests drive time.

Rotation
    A court's duty groups take turns in ``position`` order. The group at position 0 takes over at the
    court's ``handoff`` (local time, e.g. 08:30) on the local date ``rotation_anchor``; each shift lasts
    ``shift_days`` local days. Shift boundaries are computed as instants from local dates with zoneinfo,
    so the handoff stays at 08:30 on the wall clock when a time zone changes to or from summer time (the
    shift is then 23 or 25 hours long); Asia/Shanghai has no DST.
Overrides (ONCALL: overrides must be honoured in "who is on duty now")
    A *group override* gives a court's duty to another of its groups for [starts_at, ends_at). A *member
    override* replaces one member of a group for [starts_at, ends_at), whichever shift that group is
    on. Group overrides apply first, then member overrides to the group on duty. Overlapping overrides
    are a :meth:`Roster.validate` finding; should they exist anyway, the one starting latest wins (the
    more recent arrangement), then the higher id.
Night
    A district's night contact (police station duty) is in force inside its night window, read in its
    own time zone; a window whose start is after its end crosses midnight (20:00–08:00).
Bureau duty leader
    Each court names one officer (``courts.bureau_duty_leader``), paged after the group leader. A simple
    designated person rather than "the group leader's superior": nothing else in the roster knows who
    that superior would be.
Reachability
    An officer who is inactive, has no phone number or has SMS disabled is still returned by every
    question here; routing reports them as unreachable, with the reason (:attr:`Officer.unreachable`).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DEFAULT_TIMEZONE = "Asia/Shanghai"


class Role(enum.StrEnum):
    BUREAU_LEADER = "bureau_leader"  # 局领导
    JUDGE = "judge"  # 执行法官
    JUDICIAL_POLICE = "judicial_police"  # 司法警察
    STATION_DUTY = "station_duty"  # 派出所值班: holds a found vehicle at night until the court takes over


# How a role is named in an SMS ("已由周婷(执行法官)接手").
ROLE_NAMES: Mapping[Role, str] = {
    Role.BUREAU_LEADER: "局领导",
    Role.JUDGE: "执行法官",
    Role.JUDICIAL_POLICE: "司法警察",
    Role.STATION_DUTY: "派出所值班",
}

# The members of a "1+1+1" duty group, in the order they are listed to people.
GROUP_ROLES: tuple[Role, ...] = (Role.BUREAU_LEADER, Role.JUDGE, Role.JUDICIAL_POLICE)


def time_zone(name: str) -> ZoneInfo:
    """The time zone ``name``.

    Raises:
        ValueError: not a known IANA time zone.
    """
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r}") from exc


def _require_aware(at: datetime, what: str) -> None:
    if at.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware, got {at.isoformat()}")


def _within(at: datetime, starts_at: datetime, ends_at: datetime) -> bool:
    # In UTC: datetimes sharing a tzinfo compare by wall clock, wrong around a DST change.
    instant = at.astimezone(UTC)
    return starts_at.astimezone(UTC) <= instant < ends_at.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class Officer:
    officer_id: str
    name: str
    phone: str | None  # E.164
    role: Role
    court_id: str | None = None  # None for police station duty contacts
    active: bool = True
    sms_enabled: bool = True

    @property
    def unreachable(self) -> str | None:
        """Why an SMS cannot reach this officer, or None when one can."""
        if not self.active:
            return "inactive"
        if not self.phone:
            return "no phone number"
        if not self.sms_enabled:
            return "SMS disabled"
        return None

    def __str__(self) -> str:
        return f"{self.name} ({self.officer_id})"


@dataclass(frozen=True, slots=True)
class Court:
    court_id: str  # the court's name as written on watch entries
    rotation_anchor: date  # local date on which the group at position 0 takes over at `handoff`
    handoff: time = time(8, 30)  # local wall-clock time, no tzinfo
    shift_days: int = 1
    timezone: str = DEFAULT_TIMEZONE
    bureau_duty_leader: str | None = None  # officer id

    def __post_init__(self) -> None:
        time_zone(self.timezone)
        if self.handoff.tzinfo is not None:
            raise ValueError("handoff is a local wall-clock time, without tzinfo")
        if self.shift_days < 1:
            raise ValueError(f"shift_days must be at least 1, got {self.shift_days}")

    @property
    def zone(self) -> ZoneInfo:
        return time_zone(self.timezone)

    def handoff_on(self, day: date) -> datetime:
        """The instant (UTC) of the handoff on local date ``day``."""
        return datetime.combine(day, self.handoff, tzinfo=self.zone).astimezone(UTC)


@dataclass(frozen=True, slots=True)
class DutyGroup:
    """A "1+1+1" group. A member is an officer id, None when the group lacks one (a validate finding)."""

    group_id: str
    court_id: str
    position: int
    name: str = ""
    bureau_leader: str | None = None
    judge: str | None = None
    judicial_police: str | None = None

    def member(self, role: Role) -> str | None:
        if role not in GROUP_ROLES:
            raise ValueError(f"a duty group has no {role.value}")
        value: str | None = getattr(self, role.value)
        return value

    def with_member(self, role: Role, officer_id: str) -> DutyGroup:
        if role not in GROUP_ROLES:
            raise ValueError(f"a duty group has no {role.value}")
        if role is Role.BUREAU_LEADER:
            return replace(self, bureau_leader=officer_id)
        if role is Role.JUDGE:
            return replace(self, judge=officer_id)
        return replace(self, judicial_police=officer_id)

    @property
    def members(self) -> tuple[tuple[Role, str | None], ...]:
        return tuple((role, self.member(role)) for role in GROUP_ROLES)

    @property
    def label(self) -> str:
        return f"{self.name} ({self.group_id})" if self.name else self.group_id


@dataclass(frozen=True, slots=True)
class GroupOverride:
    """Group ``group_id`` holds the court's duty for [starts_at, ends_at)."""

    override_id: int
    court_id: str
    group_id: str
    starts_at: datetime
    ends_at: datetime
    reason: str = ""

    def __post_init__(self) -> None:
        _require_aware(self.starts_at, "starts_at")
        _require_aware(self.ends_at, "ends_at")

    def covers(self, at: datetime) -> bool:
        return _within(at, self.starts_at, self.ends_at)


@dataclass(frozen=True, slots=True)
class MemberOverride:
    """Officer ``officer_id`` replaces the ``role`` member of group ``group_id`` for [starts_at, ends_at)."""

    override_id: int
    group_id: str
    role: Role
    officer_id: str
    starts_at: datetime
    ends_at: datetime
    reason: str = ""

    def __post_init__(self) -> None:
        _require_aware(self.starts_at, "starts_at")
        _require_aware(self.ends_at, "ends_at")

    def covers(self, at: datetime) -> bool:
        return _within(at, self.starts_at, self.ends_at)


@dataclass(frozen=True, slots=True)
class NightContact:
    """The police station that holds a found vehicle in ``district`` at night, and its duty contact."""

    district: str
    station: str
    officer_id: str
    night_start: time = time(20, 0)
    night_end: time = time(8, 0)
    timezone: str = DEFAULT_TIMEZONE

    def __post_init__(self) -> None:
        time_zone(self.timezone)
        if self.night_start == self.night_end:
            raise ValueError(f"night window of district {self.district} is empty (start = end)")

    @property
    def window(self) -> str:
        return f"{self.night_start:%H:%M}–{self.night_end:%H:%M}"

    def covers(self, at: datetime) -> bool:
        """Whether ``at`` falls inside the night window (which may cross midnight)."""
        _require_aware(at, "at")
        local = at.astimezone(time_zone(self.timezone)).time()
        if self.night_start < self.night_end:
            return self.night_start <= local < self.night_end
        return local >= self.night_start or local < self.night_end

    def window_end(self, at: datetime) -> datetime:
        """The first end of a night window after ``at`` (when the courts take over), in UTC."""
        _require_aware(at, "at")
        tz = time_zone(self.timezone)
        day = at.astimezone(tz).date()
        end = datetime.combine(day, self.night_end, tzinfo=tz).astimezone(UTC)
        if end > at.astimezone(UTC):
            return end
        return datetime.combine(day + timedelta(days=1), self.night_end, tzinfo=tz).astimezone(UTC)


@dataclass(frozen=True, slots=True)
class Shift:
    """Who holds a court's duty at an instant, and why."""

    court_id: str
    group: DutyGroup  # as on duty: member overrides applied
    rostered_group_id: str  # whose turn it is by rotation
    starts_at: datetime  # the rotation shift's bounds, UTC (an override has its own)
    ends_at: datetime
    group_override: GroupOverride | None = None
    member_overrides: tuple[MemberOverride, ...] = ()

    def override_for(self, role: Role) -> MemberOverride | None:
        return next((o for o in self.member_overrides if o.role is role), None)


_Override = TypeVar("_Override", GroupOverride, MemberOverride)


def _latest(overrides: Iterable[_Override]) -> _Override | None:
    """Of overlapping overrides, the one starting latest (the more recent arrangement), then the higher id."""
    return max(overrides, key=lambda o: (o.starts_at, o.override_id), default=None)


def _overlaps(overrides: Iterable[_Override]) -> Iterator[tuple[_Override, _Override]]:
    ordered = sorted(overrides, key=lambda o: (o.starts_at, o.override_id))
    for i, first in enumerate(ordered):
        for second in ordered[i + 1 :]:
            if second.starts_at >= first.ends_at:
                break
            yield first, second


@dataclass(frozen=True)
class Roster:
    """A snapshot of every roster table, as plain data, with the questions routing asks of it."""

    courts: tuple[Court, ...] = ()
    officers: tuple[Officer, ...] = ()
    groups: tuple[DutyGroup, ...] = ()
    group_overrides: tuple[GroupOverride, ...] = ()
    member_overrides: tuple[MemberOverride, ...] = ()
    court_districts: tuple[tuple[str, str], ...] = ()  # (court_id, district)
    night_contacts: tuple[NightContact, ...] = ()

    _courts: Mapping[str, Court] = field(init=False, repr=False, compare=False)
    _officers: Mapping[str, Officer] = field(init=False, repr=False, compare=False)
    _groups: Mapping[str, DutyGroup] = field(init=False, repr=False, compare=False)
    _rotations: Mapping[str, tuple[DutyGroup, ...]] = field(init=False, repr=False, compare=False)
    _covering: Mapping[str, tuple[str, ...]] = field(init=False, repr=False, compare=False)
    _night: Mapping[str, NightContact] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        rotations: dict[str, list[DutyGroup]] = {}
        for group in self.groups:
            rotations.setdefault(group.court_id, []).append(group)
        covering: dict[str, list[str]] = {}
        for court_id, district in self.court_districts:
            covering.setdefault(district, []).append(court_id)
        indexes = {
            "_courts": {c.court_id: c for c in self.courts},
            "_officers": {o.officer_id: o for o in self.officers},
            "_groups": {g.group_id: g for g in self.groups},
            "_rotations": {
                k: tuple(sorted(v, key=lambda g: (g.position, g.group_id))) for k, v in rotations.items()
            },
            "_covering": {k: tuple(sorted(set(v))) for k, v in covering.items()},
            "_night": {n.district: n for n in self.night_contacts},
        }
        for name, value in indexes.items():
            object.__setattr__(self, name, value)

    # --- lookups -----------------------------------------------------------------------------------

    def court(self, court_id: str) -> Court | None:
        return self._courts.get(court_id)

    def officer(self, officer_id: str) -> Officer | None:
        return self._officers.get(officer_id)

    def group(self, group_id: str) -> DutyGroup | None:
        return self._groups.get(group_id)

    def rotation(self, court_id: str) -> tuple[DutyGroup, ...]:
        """The court's groups in rotation order."""
        return self._rotations.get(court_id, ())

    def courts_covering(self, district: str) -> list[str]:
        """The courts whose jurisdiction includes ``district``, by name."""
        return list(self._covering.get(district, ()))

    def night_cover(self, district: str) -> NightContact | None:
        """The district's night arrangement (station, contact, window), whatever the hour."""
        return self._night.get(district)

    # --- who is on duty ----------------------------------------------------------------------------

    def shift(self, court_id: str, at: datetime) -> Shift | None:
        """The court's duty at ``at``: rotation, then group overrides, then member overrides.

        None when the court is unknown or has no duty group.
        """
        _require_aware(at, "at")
        at = at.astimezone(UTC)  # every instant below is UTC: comparisons and differences are exact
        court = self.court(court_id)
        rotation = self.rotation(court_id)
        if court is None or not rotation:
            return None
        day = at.astimezone(court.zone).date()
        if at < court.handoff_on(day):  # instants, not wall times: right in a DST gap or repeated hour
            day -= timedelta(days=1)
        index = (day - court.rotation_anchor).days // court.shift_days
        first_day = court.rotation_anchor + timedelta(days=index * court.shift_days)
        rostered = rotation[index % len(rotation)]
        group = rostered
        group_override = _latest(o for o in self.group_overrides if o.court_id == court_id and o.covers(at))
        if group_override is not None:
            overriding = self.group(group_override.group_id)
            # Unknown or foreign groups cannot come from the database (foreign key); validate() names them.
            if overriding is not None and overriding.court_id == court_id:
                group = overriding
        applied: list[MemberOverride] = []
        for role in GROUP_ROLES:
            member_override = _latest(
                o
                for o in self.member_overrides
                if o.group_id == group.group_id and o.role is role and o.covers(at)
            )
            if member_override is not None:
                group = group.with_member(role, member_override.officer_id)
                applied.append(member_override)
        return Shift(
            court_id=court_id,
            group=group,
            rostered_group_id=rostered.group_id,
            starts_at=court.handoff_on(first_day),
            ends_at=court.handoff_on(first_day + timedelta(days=court.shift_days)),
            group_override=group_override,
            member_overrides=tuple(applied),
        )

    def on_duty(self, court_id: str, at: datetime) -> DutyGroup | None:
        """The court's duty group at ``at``, overrides applied; None when it has none."""
        shift = self.shift(court_id, at)
        return shift.group if shift else None

    def night_contact(self, district: str, at: datetime) -> Officer | None:
        """The district's police station duty contact, only while its night window is in force.

        The officer is returned even when unreachable (routing reports why); None outside the window, or
        when the district has no night contact or names an unknown officer (a validate finding).
        """
        cover = self.night_cover(district)
        if cover is None or not cover.covers(at):
            return None
        return self.officer(cover.officer_id)

    def bureau_duty_leader(self, court_id: str) -> Officer | None:
        court = self.court(court_id)
        if court is None or court.bureau_duty_leader is None:
            return None
        return self.officer(court.bureau_duty_leader)

    def validate(self) -> list[str]:
        """Everything that would surprise someone at 3 a.m., one sentence each; empty when sound."""
        return [*self._check_identities(), *self._check_courts(), *self._check_officers(),
                *self._check_groups(), *self._check_group_overrides(), *self._check_member_overrides(),
                *self._check_districts()]  # fmt: skip

    def _pageable(self, officer_id: str, where: str, role: Role) -> Iterator[str]:
        """Problems of an officer someone may page as ``role`` (``where`` says in which capacity)."""
        officer = self.officer(officer_id)
        if officer is None:
            yield f"{where}: {officer_id} is not an officer on the roster"
            return
        if officer.role is not role:
            yield f"{where}: {officer} is {officer.role.value}, not {role.value}"
        if not officer.active:
            yield f"{where}: {officer} is inactive"
        elif officer.phone and not officer.sms_enabled:
            yield f"{where}: {officer} has SMS disabled"  # "no phone number" is reported once, per officer

    def _check_identities(self) -> Iterator[str]:
        for what, keys in (
            ("court", [c.court_id for c in self.courts]),
            ("officer", [o.officer_id for o in self.officers]),
            ("duty group", [g.group_id for g in self.groups]),
            ("night contact for district", [n.district for n in self.night_contacts]),
            ("phone number", [o.phone for o in self.officers if o.phone]),
        ):
            seen: set[str] = set()
            for key in keys:
                if key in seen:
                    yield f"{what} {key} appears more than once"
                seen.add(key)

    def _check_courts(self) -> Iterator[str]:
        covered = {court_id for court_id, _ in self.court_districts}
        for court in self.courts:
            name = f"court {court.court_id}"
            if not self.rotation(court.court_id):
                yield f"{name}: no duty group, nobody is ever on duty"
            if court.court_id not in covered:
                yield f"{name}: covers no district, only sightings of its own vehicles reach it"
            if court.bureau_duty_leader is None:
                yield f"{name}: no bureau duty leader named"
                continue
            yield from self._pageable(
                court.bureau_duty_leader, f"{name} bureau duty leader", Role.BUREAU_LEADER
            )
            leader = self.officer(court.bureau_duty_leader)
            if leader is not None and leader.court_id != court.court_id:
                yield f"{name}: bureau duty leader {leader} belongs to {leader.court_id or 'no court'}"

    def _check_officers(self) -> Iterator[str]:
        for officer in self.officers:
            if officer.court_id is not None and self.court(officer.court_id) is None:
                yield f"officer {officer}: court {officer.court_id} is not on the roster"
            if officer.role is Role.STATION_DUTY and officer.court_id is not None:
                yield f"officer {officer}: police station duty belongs to no court"
            if officer.role is not Role.STATION_DUTY and officer.court_id is None:
                yield f"officer {officer}: a {officer.role.value} must belong to a court"
            if officer.active and not officer.phone:
                yield f"officer {officer}: no phone number, cannot be paged"

    def _check_groups(self) -> Iterator[str]:
        positions: dict[tuple[str, int], str] = {}
        for group in self.groups:
            name = f"group {group.label} of {group.court_id}"
            if self.court(group.court_id) is None:
                yield f"{name}: court {group.court_id} is not on the roster"
            other = positions.setdefault((group.court_id, group.position), group.group_id)
            if other != group.group_id:
                yield f"{name}: position {group.position} is also group {other}'s"
            for role, officer_id in group.members:
                if officer_id is None:
                    yield f"{name}: no {role.value}"
                    continue
                yield from self._pageable(officer_id, f"{name} {role.value}", role)
                officer = self.officer(officer_id)
                if officer is not None and officer.court_id != group.court_id:
                    yield f"{name}: {role.value} {officer} is a member of {officer.court_id or 'no court'}"

    def _check_group_overrides(self) -> Iterator[str]:
        for g in self.group_overrides:
            name = f"group override #{g.override_id} ({g.court_id})"
            group = self.group(g.group_id)
            if group is None:
                yield f"{name}: group {g.group_id} is not on the roster"
            elif group.court_id != g.court_id:
                yield f"{name}: group {g.group_id} belongs to {group.court_id}"
            if g.ends_at <= g.starts_at:
                yield f"{name}: ends before it starts"
        by_court: dict[str, list[GroupOverride]] = {}
        for g in self.group_overrides:
            by_court.setdefault(g.court_id, []).append(g)
        for court_id, court_overrides in by_court.items():
            for first, second in _overlaps(court_overrides):
                yield f"group overrides #{first.override_id} and #{second.override_id} of {court_id} overlap"

    def _check_member_overrides(self) -> Iterator[str]:
        for m in self.member_overrides:
            name = f"member override #{m.override_id} ({m.group_id} {m.role.value})"
            group = self.group(m.group_id)
            if group is None:
                yield f"{name}: group {m.group_id} is not on the roster"
            if m.role not in GROUP_ROLES:
                yield f"{name}: a duty group has no {m.role.value}"
            yield from self._pageable(m.officer_id, f"{name} replacement", m.role)
            officer = self.officer(m.officer_id)
            if group is not None and officer is not None and officer.court_id != group.court_id:
                yield f"{name}: replacement {officer} is a member of {officer.court_id or 'no court'}"
            if m.ends_at <= m.starts_at:
                yield f"{name}: ends before it starts"
        by_slot: dict[tuple[str, Role], list[MemberOverride]] = {}
        for m in self.member_overrides:
            by_slot.setdefault((m.group_id, m.role), []).append(m)
        for (group_id, role), overrides in by_slot.items():
            for first, second in _overlaps(overrides):
                yield (
                    f"member overrides #{first.override_id} and #{second.override_id}"
                    f" ({group_id} {role.value}) overlap"
                )

    def _check_districts(self) -> Iterator[str]:
        for court_id, district in self.court_districts:
            if self.court(court_id) is None:
                yield f"district {district}: court {court_id} is not on the roster"
        for cover in self.night_contacts:
            name = f"night contact of district {cover.district} ({cover.station})"
            yield from self._pageable(cover.officer_id, name, Role.STATION_DUTY)
            if not self.courts_covering(cover.district):
                yield f"{name}: no court covers the district"
        for district in sorted(self._covering):
            if district not in self._night:
                yield f"district {district}: no night contact, its courts are woken at night for every hit"
