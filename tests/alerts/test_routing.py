"""Who a hit pages: day, night, urgent, another court's vehicle, no district, no page; nobody skipped."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import datetime

import orjson
import pytest

from alerts.rosters import GROUP_ROLES, MemberOverride, Officer, Role, Roster
from alerts.routing import (
    NoPageReason,
    Plan,
    Resolution,
    Step,
    StepKind,
    Target,
    TargetKind,
    plan,
    resolve,
)
from streams.events import SightingFlag, SourceKind, new_sighting
from streams.hits import HitV1
from streams.matching import MatchKind
from streams.vehicles import Action, Priority
from tests.alerts.test_rosters import HY, JJ, local, sample_roster

DAY = local("2026-11-23 10:00")  # 椒江: jj-2 on duty (22 % 3); 黄岩: hy-1 (22 % 2)
NIGHT = local("2026-11-23 21:00")  # same shifts; police station night contacts in force
COURT_FIRST = (Role.JUDGE, Role.JUDICIAL_POLICE)


def hit(
    *,
    district: str | None = "331002",
    court: str = JJ,
    action: Action = Action.SEIZE,
    priority: Priority = Priority.NORMAL,
    backfill: bool = False,
    flags: tuple[SightingFlag, ...] = (),
    at: datetime = DAY,
) -> HitV1:
    sighting = new_sighting(
        sighting_id=uuid.uuid4().hex,
        source_kind=SourceKind.PARKING_ENTRY,
        source_id="lot-wanda",
        device_id="wanda/g1",
        plate_raw="浙J12345",
        observed_at=at,
        received_at=at,
        district=district,
        device_name="椒江万达 1号口" if district else None,
        backfill=backfill,
        flags=flags,
    )
    return HitV1(
        hit_id=uuid.uuid4(),
        entry_id=uuid.uuid4(),
        entry_version=1,
        entry_plate="浙J12345",
        case_number="(2026)浙1002执100号",
        court=court,
        action=action,
        priority=priority,
        vehicle="白色 大众帕萨特",
        match_kind=MatchKind.EXACT,
        score=1.0,
        sighting=sighting,
        matched_at=at,
    )


def ids(resolution: Resolution) -> list[str]:
    return [o.officer_id for o in resolution.recipients]


def first_step(p: Plan) -> Step:
    assert p.steps, p
    assert p.steps[0].kind is StepKind.FIRST
    return p.steps[0]


# --- who is told first ----------------------------------------------------------------------------------


def test_by_day_the_on_duty_judge_and_judicial_police_are_paged() -> None:
    roster = sample_roster()
    p = plan(hit(), roster, DAY)
    assert not p.night
    assert p.courts == (JJ,)
    assert first_step(p).targets == (Target(TargetKind.ON_DUTY, court=JJ, roles=COURT_FIRST),)
    assert ids(resolve(first_step(p), roster, DAY)) == ["jj-j2", "jj-p2"]
    assert p.deferred == ()


@pytest.mark.parametrize("priority", [Priority.NORMAL, Priority.LOW])
def test_at_night_the_police_station_is_paged_and_the_court_is_not_woken(priority: Priority) -> None:
    roster = sample_roster()
    p = plan(hit(priority=priority, at=NIGHT), roster, NIGHT)
    assert p.night
    assert first_step(p).targets == (Target(TargetKind.NIGHT_CONTACT, district="331002"),)
    assert ids(resolve(first_step(p), roster, NIGHT)) == ["st-baiyun"]
    # the court is told, not woken: recorded in the plan with the time the night ends
    assert p.deferred == (Target(TargetKind.ON_DUTY, court=JJ, roles=COURT_FIRST),)
    assert p.deferred_until == local("2026-11-24 08:00")
    assert any("not woken" in note for note in p.notes)


def test_at_night_an_urgent_hit_wakes_the_court_too() -> None:
    roster = sample_roster()
    p = plan(hit(priority=Priority.URGENT, at=NIGHT), roster, NIGHT)
    assert p.night
    assert ids(resolve(first_step(p), roster, NIGHT)) == ["st-baiyun", "jj-j2", "jj-p2"]
    assert p.deferred == ()


def test_the_night_window_is_read_when_the_page_starts() -> None:
    roster = sample_roster()
    assert plan(hit(), roster, local("2026-11-24 07:59")).night
    assert not plan(hit(), roster, local("2026-11-24 08:00")).night


def test_another_courts_vehicle_seen_here_tells_both_courts() -> None:
    roster = sample_roster()
    p = plan(hit(district="331002", court=HY), roster, DAY)  # 黄岩's vehicle, seen in 椒江
    assert p.courts == (JJ, HY)
    assert ids(resolve(first_step(p), roster, DAY)) == ["jj-j2", "jj-p2", "hy-j1", "hy-p1"]
    assert any("both told" in note for note in p.notes)
    at_night = plan(hit(district="331002", court=HY, at=NIGHT), roster, NIGHT)
    assert ids(resolve(first_step(at_night), roster, NIGHT)) == ["st-baiyun"]
    assert {t.court for t in at_night.deferred} == {JJ, HY}


def test_a_sighting_without_district_pages_the_owning_court_only() -> None:
    roster = sample_roster()
    p = plan(hit(district=None, flags=(SightingFlag.UNKNOWN_DEVICE,), at=NIGHT), roster, NIGHT)
    assert p.courts == (JJ,)
    assert not p.night  # no district, no police station: the court is paged whatever the hour
    assert ids(resolve(first_step(p), roster, NIGHT)) == ["jj-j2", "jj-p2"]
    assert "sighting has no district (unknown device): owning court only" in p.notes


def test_a_district_no_court_covers_pages_the_owning_court() -> None:
    p = plan(hit(district="330100", court=HY), sample_roster(), DAY)
    assert p.courts == (HY,)
    assert "no court covers district 330100: owning court only" in p.notes
    assert "district 330100 has no night contact: courts are paged at any hour" in p.notes


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"action": Action.SOFT_SEAL}, NoPageReason.SOFT_SEAL),
        ({"backfill": True}, NoPageReason.BACKFILL),
        ({"flags": (SightingFlag.LATE,)}, NoPageReason.LATE),
        ({"action": Action.SOFT_SEAL, "backfill": True, "priority": Priority.URGENT}, NoPageReason.SOFT_SEAL),
    ],
)
def test_soft_seal_backfill_and_late_reads_page_nobody(
    kwargs: dict[str, object], reason: NoPageReason
) -> None:
    p = plan(hit(**kwargs), sample_roster(), DAY)  # type: ignore[arg-type]  # parametrized keywords
    assert p.steps == ()
    assert not p.pages
    assert p.reason is reason


def test_a_locate_entry_pages_the_same_people_as_information_only() -> None:
    roster = sample_roster()
    seize = plan(hit(), roster, DAY)
    locate = plan(hit(action=Action.LOCATE), roster, DAY)
    assert locate.info_only
    assert not seize.info_only
    assert locate.steps == seize.steps


# --- escalation -----------------------------------------------------------------------------------------


def test_escalation_goes_to_the_group_leader_then_the_bureau_duty_leader_then_the_whole_group() -> None:
    roster = sample_roster()
    p = plan(hit(district="331002", court=HY), roster, DAY)
    assert [s.kind for s in p.steps] == [
        StepKind.FIRST,
        StepKind.GROUP_LEADER,
        StepKind.BUREAU_DUTY_LEADER,
        StepKind.WHOLE_GROUP,
    ]
    assert [ids(resolve(s, roster, DAY)) for s in p.steps[1:]] == [
        ["jj-l2", "hy-l1"],
        ["jj-chief", "hy-chief"],
        ["jj-l2", "jj-j2", "jj-p2", "hy-l1", "hy-j1", "hy-p1"],
    ]
    assert p.steps[3].targets[0] == Target(TargetKind.ON_DUTY, court=JJ, roles=GROUP_ROLES)


def test_a_frozen_plan_pages_whoever_is_on_duty_when_the_step_runs() -> None:
    roster = sample_roster()
    p = plan(hit(), roster, local("2026-11-24 08:20"))  # jj-2's shift, ten minutes before the handoff
    leader_step = p.steps[1]
    assert ids(resolve(leader_step, roster, local("2026-11-24 08:25"))) == ["jj-l2"]
    assert ids(resolve(leader_step, roster, local("2026-11-24 08:35"))) == ["jj-l3"]  # the next shift
    # an override added after the plan was made is honoured when the step runs
    cover = MemberOverride(
        1, "jj-3", Role.BUREAU_LEADER, "jj-chief", local("2026-11-24 08:30"), local("2026-11-25")
    )
    assert ids(
        resolve(leader_step, replace(roster, member_overrides=(cover,)), local("2026-11-24 08:35"))
    ) == ["jj-chief"]


def test_the_plan_survives_its_trip_through_the_page_row() -> None:
    roster = sample_roster()
    for p in (
        plan(hit(court=HY, at=NIGHT), roster, NIGHT),
        plan(hit(action=Action.LOCATE, priority=Priority.URGENT), roster, DAY),
        plan(hit(backfill=True), roster, DAY),
    ):
        assert Plan.from_json(orjson.loads(orjson.dumps(p.to_json()))) == p
    with pytest.raises(ValueError, match="version"):
        Plan.from_json({**plan(hit(), roster, DAY).to_json(), "version": 99})


# --- nobody skipped silently ----------------------------------------------------------------------------


def _with_officer(roster: Roster, officer_id: str, **changes: object) -> Roster:
    officers = tuple(replace(o, **changes) if o.officer_id == officer_id else o for o in roster.officers)  # type: ignore[arg-type]
    return replace(roster, officers=officers)


def test_a_member_with_sms_disabled_is_reported_unreachable_never_skipped() -> None:
    roster = _with_officer(sample_roster(), "jj-j2", sms_enabled=False)
    resolution = resolve(first_step(plan(hit(), roster, DAY)), roster, DAY)
    assert ids(resolution) == ["jj-p2"]
    assert len(resolution.unreachable) == 1
    who, why = resolution.unreachable[0]
    assert isinstance(who, Officer)
    assert who.officer_id == "jj-j2"
    assert why == "SMS disabled"
    assert not resolution.nobody


def test_a_step_with_nobody_reachable_says_so_with_every_reason() -> None:
    roster = _with_officer(_with_officer(sample_roster(), "jj-j2", phone=None), "jj-p2", active=False)
    resolution = resolve(first_step(plan(hit(), roster, DAY)), roster, DAY)
    assert resolution.nobody
    assert [(getattr(who, "officer_id", who), why) for who, why in resolution.unreachable] == [
        ("jj-j2", "no phone number"),
        ("jj-p2", "inactive"),
    ]


def test_rules_that_name_nobody_are_reported() -> None:
    roster = sample_roster()
    groups = tuple(replace(g, judge=None) if g.group_id == "jj-2" else g for g in roster.groups)
    broken = replace(roster, groups=groups, courts=(replace(roster.courts[0], bureau_duty_leader=None),))
    p = plan(hit(district="331002", court="某某法院"), broken, DAY)
    assert p.courts == (JJ, "某某法院")
    assert "owning court 某某法院 is not on the roster" in p.notes
    first = resolve(p.steps[0], broken, DAY)
    assert ids(first) == ["jj-p2"]
    assert first.unreachable == (
        (f"judge of group 第2组 (jj-2) ({JJ})", "the group has no judge"),
        ("court 某某法院", "not on the roster"),
    )
    bureau = resolve(p.steps[2], broken, DAY)
    assert bureau.nobody
    assert bureau.unreachable == (
        (f"bureau duty leader of {JJ}", "none named"),
        ("court 某某法院", "not on the roster"),
    )


def test_a_night_contact_step_run_after_the_night_ends_says_why_it_pages_nobody() -> None:
    roster = sample_roster()
    p = plan(hit(at=local("2026-11-24 07:58")), roster, local("2026-11-24 07:58"))
    late_run = resolve(first_step(p), roster, local("2026-11-24 08:03"))
    assert late_run.nobody
    assert late_run.unreachable == (
        ("night contact of district 331002", "outside its night window 20:00–08:00"),
    )


def test_an_officer_named_twice_in_a_step_is_texted_once() -> None:
    roster = sample_roster()
    step = Step(
        StepKind.WHOLE_GROUP,
        (
            Target(TargetKind.ON_DUTY, court=JJ, roles=GROUP_ROLES),
            Target(TargetKind.ON_DUTY, court=JJ, roles=(Role.JUDGE,)),
        ),
    )
    assert ids(resolve(step, roster, DAY)) == ["jj-l2", "jj-j2", "jj-p2"]


def test_targets_must_name_what_they_need() -> None:
    with pytest.raises(ValueError, match="district"):
        Target(TargetKind.NIGHT_CONTACT, court=JJ)
    with pytest.raises(ValueError, match="role"):
        Target(TargetKind.ON_DUTY, court=JJ)


def test_a_vehicle_sealed_by_another_court_too_pages_both_courts_each_person_once() -> None:
    roster = sample_roster()
    # 椒江's vehicle seen in 椒江, also sealed by 黄岩 (another case; 椒江 named twice: told once).
    p = plan(hit(), roster, DAY, also_owners=(HY, JJ, HY))
    assert p.courts == (JJ, HY)
    assert ids(resolve(first_step(p), roster, DAY)) == ["jj-j2", "jj-p2", "hy-j1", "hy-p1"]
    assert any("also sealed by" in note for note in p.notes)


def test_the_most_urgent_case_of_the_vehicle_decides_the_night_routing() -> None:
    roster = sample_roster()
    p = plan(hit(at=NIGHT), roster, NIGHT, also_owners=(HY,), priority=Priority.URGENT)
    assert ids(resolve(first_step(p), roster, NIGHT)) == ["st-baiyun", "jj-j2", "jj-p2", "hy-j1", "hy-p1"]
    assert p.deferred == ()


def test_a_locate_hit_of_a_vehicle_another_case_wants_seized_is_a_seizure() -> None:
    p = plan(hit(action=Action.LOCATE), sample_roster(), DAY, also_owners=(HY,), action=Action.SEIZE)
    assert not p.info_only
