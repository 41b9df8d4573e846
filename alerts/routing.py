"""Who a hit pages: the escalation plan, made of rules, and the people a rule names when its step runs.

Pure. :func:`plan` runs once, when the page starts, and the plan is frozen into the page
(:meth:`Plan.to_json`): a roster edited later does not change a page already escalating. A plan's steps
name *rules* ("the on-duty judge of court X"), never people; :func:`resolve` turns a step into officers
when the step runs, so a step after a shift change pages the new shift (ONCALL).

=========================================  =================================================================
situation                                  plan
=========================================  =================================================================
entry action ``soft_seal`` (活封)          no page; ``reason`` ``soft_seal`` (the hit is logged only)
sighting ``backfill``                      no page; ``reason`` ``backfill`` (history never pages)
sighting flag ``late``                     no page; ``reason`` ``late`` (too old to act on)
courts concerned                           the courts covering the sighting's district (seen here), then
                                           the entry's court (owns the vehicle) when not one of them: a
                                           vehicle of another court seen here tells both; then the courts
                                           of the vehicle's other cases (``also_owners``), each once
no district (unknown device)               the owning court only; noted in the plan
district that no court covers              the owning court only; noted
day (outside the district's night window)  step 1: on-duty judge + judicial police of each court concerned
night, priority ``normal`` / ``low``       step 1: the district's police station night contact. The
                                           courts' on-duty judge + judicial police are not woken: they
                                           are ``deferred`` (to be told) until the window ends
night, priority ``urgent``                 step 1: the night contact and the courts' on-duty judge +
                                           judicial police (the court is woken)
district without a night contact           no night window: courts paged as by day, at any hour; noted
action ``locate``                          the same people; ``info_only`` (no seizure: rendered apart)
step 2 ``group_leader``                    the on-duty group's bureau leader, of each court concerned
step 3 ``bureau_duty_leader``              each court's designated bureau duty leader
step 4 ``whole_group``                     the whole on-duty group (leader, judge, judicial police)
=========================================  =================================================================

"Night" is decided at the instant the plan is made (the page's start), in the night contact's time zone.

Nobody is skipped silently: :func:`resolve` returns, beside the recipients, every officer who cannot be
texted (inactive, no phone, SMS disabled) and every rule that named nobody (an unknown court, a group
without a judge, a night contact outside its window), each with the reason.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from alerts.rosters import GROUP_ROLES, Officer, Role, Roster, time_zone
from streams.events import SightingFlag
from streams.hits import HitV1
from streams.localtime import shown
from streams.vehicles import Action, Priority

PLAN_VERSION = 1


class StepKind(enum.StrEnum):
    FIRST = "first"
    GROUP_LEADER = "group_leader"
    BUREAU_DUTY_LEADER = "bureau_duty_leader"
    WHOLE_GROUP = "whole_group"


class TargetKind(enum.StrEnum):
    ON_DUTY = "on_duty"  # members (by role) of a court's on-duty group
    NIGHT_CONTACT = "night_contact"  # a district's police station duty contact, inside its window
    BUREAU_DUTY_LEADER = "bureau_duty_leader"  # a court's designated bureau duty leader


class NoPageReason(enum.StrEnum):
    SOFT_SEAL = "soft_seal"
    BACKFILL = "backfill"
    LATE = "late"


_NO_PAGE_NOTES = {
    NoPageReason.SOFT_SEAL: "soft seal (活封): sightings are logged, nobody is sent",
    NoPageReason.BACKFILL: "backfilled history: never pages",
    NoPageReason.LATE: "late read: too old to act on",
}
COURT_FIRST_ROLES: tuple[Role, ...] = (Role.JUDGE, Role.JUDICIAL_POLICE)


@dataclass(frozen=True, slots=True)
class Target:
    """A rule naming people when resolved: ``on_duty`` (court, roles), ``night_contact`` (district),
    ``bureau_duty_leader`` (court)."""

    kind: TargetKind
    court: str | None = None
    district: str | None = None
    roles: tuple[Role, ...] = ()

    def __post_init__(self) -> None:
        if self.kind is TargetKind.NIGHT_CONTACT:
            if self.district is None:
                raise ValueError("a night_contact target names a district")
        elif self.court is None:
            raise ValueError(f"a {self.kind.value} target names a court")
        if self.kind is TargetKind.ON_DUTY and not self.roles:
            raise ValueError("an on_duty target names at least one role")

    def __str__(self) -> str:
        if self.kind is TargetKind.ON_DUTY:
            return f"on-duty {' + '.join(r.value for r in self.roles)} of {self.court}"
        if self.kind is TargetKind.NIGHT_CONTACT:
            return f"night contact of district {self.district}"
        return f"bureau duty leader of {self.court}"

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"kind": self.kind.value}
        if self.court is not None:
            data["court"] = self.court
        if self.district is not None:
            data["district"] = self.district
        if self.roles:
            data["roles"] = [r.value for r in self.roles]
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Target:
        return cls(
            TargetKind(data["kind"]),
            court=data.get("court"),
            district=data.get("district"),
            roles=tuple(Role(r) for r in data.get("roles", ())),
        )


@dataclass(frozen=True, slots=True)
class Step:
    kind: StepKind
    targets: tuple[Target, ...]

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind.value, "targets": [t.to_json() for t in self.targets]}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Step:
        return cls(StepKind(data["kind"]), tuple(Target.from_json(t) for t in data["targets"]))


@dataclass(frozen=True, slots=True)
class Plan:
    """The escalation plan of one hit. No steps: nobody is paged, and ``reason`` says why."""

    steps: tuple[Step, ...]
    reason: NoPageReason | None = None
    info_only: bool = False  # locate-only entry: tell where it is, send nobody to seize it
    night: bool = False
    courts: tuple[str, ...] = ()  # courts concerned: where it was seen, then the owner
    deferred: tuple[Target, ...] = ()  # told without being woken (night, normal priority)…
    deferred_until: datetime | None = None  # …when the night window ends
    notes: tuple[str, ...] = ()  # for people: why the plan is what it is

    @property
    def pages(self) -> bool:
        return bool(self.steps)

    def to_json(self) -> dict[str, Any]:
        """The plan as stored in the page (``pages.plan``); :meth:`from_json` reads it back."""
        return {
            "version": PLAN_VERSION,
            "steps": [s.to_json() for s in self.steps],
            "reason": self.reason.value if self.reason else None,
            "info_only": self.info_only,
            "night": self.night,
            "courts": list(self.courts),
            "deferred": [t.to_json() for t in self.deferred],
            "deferred_until": self.deferred_until.isoformat() if self.deferred_until else None,
            "notes": list(self.notes),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Plan:
        """Raises: ValueError for a plan version this code does not know."""
        if data.get("version") != PLAN_VERSION:
            raise ValueError(f"plan version {data.get('version')!r} is not supported")
        until = data.get("deferred_until")
        return cls(
            steps=tuple(Step.from_json(s) for s in data["steps"]),
            reason=NoPageReason(data["reason"]) if data.get("reason") else None,
            info_only=bool(data["info_only"]),
            night=bool(data["night"]),
            courts=tuple(data["courts"]),
            deferred=tuple(Target.from_json(t) for t in data["deferred"]),
            deferred_until=datetime.fromisoformat(until) if until else None,
            notes=tuple(data["notes"]),
        )


@dataclass(frozen=True, slots=True)
class Resolution:
    """The people a step pages now, and everyone (or every rule) that yields nobody reachable, with why."""

    recipients: tuple[Officer, ...]
    unreachable: tuple[tuple[Officer | str, str], ...]

    @property
    def nobody(self) -> bool:
        """No one can be texted: the escalation should move on at once instead of waiting."""
        return not self.recipients


def plan(
    hit: HitV1,
    roster: Roster,
    at: datetime,
    *,
    also_owners: tuple[str, ...] = (),
    priority: Priority | None = None,
    action: Action | None = None,
) -> Plan:
    """The escalation plan of ``hit`` for a page starting at ``at`` (see the module's table).

    ``also_owners``: the courts of the vehicle's other cases (one vehicle, several entries), told like
    the entry's own court; ``priority``: the most urgent of the vehicle's cases (default: the hit's);
    ``action``: ``seize`` when any of its cases wants it seized (default: the hit's).
    """
    sighting = hit.sighting
    return plan_sighting(
        roster,
        at,
        district=sighting.district,
        owner=hit.court,
        also_owners=also_owners,
        action=action or hit.action,
        priority=priority or hit.priority,
        backfill=sighting.backfill,
        late=SightingFlag.LATE in sighting.flags,
    )


def plan_sighting(
    roster: Roster,
    at: datetime,
    *,
    district: str | None,
    owner: str,
    also_owners: tuple[str, ...] = (),
    action: Action = Action.SEIZE,
    priority: Priority = Priority.NORMAL,
    backfill: bool = False,
    late: bool = False,
) -> Plan:
    """:func:`plan` from the facts it uses (``roster who`` asks "what would a hit here page?")."""
    if at.utcoffset() is None:
        raise ValueError(f"at must be timezone-aware, got {at.isoformat()}")
    no_page = [
        reason
        for reason, applies in (
            (NoPageReason.SOFT_SEAL, action is Action.SOFT_SEAL),
            (NoPageReason.BACKFILL, backfill),
            (NoPageReason.LATE, late),
        )
        if applies
    ]
    if no_page:
        return Plan(steps=(), reason=no_page[0], notes=tuple(_NO_PAGE_NOTES[r] for r in no_page))

    notes: list[str] = []
    covering = roster.courts_covering(district) if district is not None else []
    if district is None:
        notes.append("sighting has no district (unknown device): owning court only")
    elif not covering:
        notes.append(f"no court covers district {district}: owning court only")
    elif owner not in covering:
        notes.append(f"vehicle of {owner} seen in the district of {', '.join(covering)}: both told")
    courts = (*covering, owner) if owner not in covering else tuple(covering)
    if roster.court(owner) is None:
        notes.append(f"owning court {owner} is not on the roster")
    for other in dict.fromkeys(also_owners):
        if other not in courts:
            courts = (*courts, other)
            notes.append(f"the vehicle is also sealed by {other} (another case): told too")

    def on_duty(roles: tuple[Role, ...]) -> tuple[Target, ...]:
        return tuple(Target(TargetKind.ON_DUTY, court=c, roles=roles) for c in courts)

    cover = roster.night_cover(district) if district is not None else None
    night = cover is not None and cover.covers(at)
    if district is not None and cover is None:
        notes.append(f"district {district} has no night contact: courts are paged at any hour")
    first: tuple[Target, ...] = on_duty(COURT_FIRST_ROLES)
    deferred: tuple[Target, ...] = ()
    deferred_until = None
    if night and cover is not None:
        station = Target(TargetKind.NIGHT_CONTACT, district=cover.district)
        if priority is Priority.URGENT:
            first = (station, *first)
            notes.append(f"night, urgent: {cover.station} and the courts are paged")
        else:
            first, deferred = (station,), first
            deferred_until = cover.window_end(at)
            notes.append(
                f"night, {priority.value} priority: {cover.station} holds the vehicle; the courts are"
                f" not woken and are told at {shown(deferred_until, time_zone(cover.timezone))}"
            )
    if action is Action.LOCATE:
        notes.append("locate only: information, no seizure")
    steps = (
        Step(StepKind.FIRST, first),
        Step(StepKind.GROUP_LEADER, on_duty((Role.BUREAU_LEADER,))),
        Step(
            StepKind.BUREAU_DUTY_LEADER, tuple(Target(TargetKind.BUREAU_DUTY_LEADER, court=c) for c in courts)
        ),
        Step(StepKind.WHOLE_GROUP, on_duty(GROUP_ROLES)),
    )
    return Plan(
        steps=steps,
        info_only=action is Action.LOCATE,
        night=night,
        courts=courts,
        deferred=deferred,
        deferred_until=deferred_until,
        notes=tuple(notes),
    )


def resolve(step: Step, roster: Roster, at: datetime) -> Resolution:
    """The officers ``step`` pages at ``at``, each once, and who or what cannot be reached, with why."""
    recipients: dict[str, Officer] = {}
    unreachable: dict[str, tuple[Officer | str, str]] = {}
    for target in step.targets:
        for who, why in _candidates(target, roster, at):
            if isinstance(who, Officer) and why is None:
                recipients.setdefault(who.officer_id, who)
                continue
            key = who.officer_id if isinstance(who, Officer) else who
            unreachable.setdefault(key, (who, why or "unreachable"))
    return Resolution(
        recipients=tuple(recipients.values()),
        unreachable=tuple(v for k, v in unreachable.items() if k not in recipients),
    )


def _officer(roster: Roster, officer_id: str, where: str) -> tuple[Officer | str, str | None]:
    officer = roster.officer(officer_id)
    if officer is None:
        return f"{where} {officer_id}", "not an officer on the roster"
    return officer, officer.unreachable


def _candidates(target: Target, roster: Roster, at: datetime) -> Iterator[tuple[Officer | str, str | None]]:
    """(officer, None) for someone to text; (officer or rule, reason) for someone or something that fails."""
    if target.kind is TargetKind.NIGHT_CONTACT:
        assert target.district is not None  # noqa: S101  # Target.__post_init__ enforces it
        where = f"night contact of district {target.district}"
        cover = roster.night_cover(target.district)
        if cover is None:
            yield where, "the district has no night contact"
        elif not cover.covers(at):
            yield where, f"outside its night window {cover.window}"
        else:
            yield _officer(roster, cover.officer_id, where)
        return
    assert target.court is not None  # noqa: S101  # Target.__post_init__ enforces it
    court = roster.court(target.court)
    if court is None:
        yield f"court {target.court}", "not on the roster"
        return
    if target.kind is TargetKind.BUREAU_DUTY_LEADER:
        where = f"bureau duty leader of {court.court_id}"
        if court.bureau_duty_leader is None:
            yield where, "none named"
        else:
            yield _officer(roster, court.bureau_duty_leader, where)
        return
    group = roster.on_duty(court.court_id, at)
    if group is None:
        yield f"on-duty group of {court.court_id}", "the court has no duty group"
        return
    for role in target.roles:
        officer_id = group.member(role)
        where = f"{role.value} of group {group.label} ({court.court_id})"
        if officer_id is None:
            yield where, f"the group has no {role.value}"
        else:
            yield _officer(roster, officer_id, where)
