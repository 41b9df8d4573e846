"""Whom the traffic police call about a court's vehicle: the duty group's judge, then the fallbacks. Pure."""

from __future__ import annotations

from dataclasses import replace

from alerts.rosters import Role, Roster
from alerts.traffic_contacts import contact_text, duty_officer
from tests.alerts.test_rosters import JJ, local, sample_roster

# 2026-11-01 08:30 group 1 takes over; a day later group 2; in the small hours group 1 still holds it.
NOON_FIRST = local("2026-11-01T12:00")
NIGHT_FIRST = local("2026-11-02T03:00")
NOON_SECOND = local("2026-11-02T12:00")


def _without_phone(roster: Roster, *officer_ids: str) -> Roster:
    officers = tuple(replace(o, phone=None) if o.officer_id in officer_ids else o for o in roster.officers)
    return replace(roster, officers=officers)


def test_the_duty_groups_judge_is_the_contact_and_follows_the_rotation() -> None:
    roster = sample_roster()
    first = duty_officer(roster, JJ, NOON_FIRST)
    assert first is not None
    assert first.officer_id == "jj-j1"
    at_night = duty_officer(roster, JJ, NIGHT_FIRST)  # before the handoff: still group 1
    assert at_night is not None
    assert at_night.officer_id == "jj-j1"
    second = duty_officer(roster, JJ, NOON_SECOND)
    assert second is not None
    assert second.officer_id == "jj-j2"
    assert contact_text(second) == f"JJ-J2（执行法官） {second.phone}"


def test_a_judge_who_cannot_be_called_gives_way_to_the_judicial_police_then_the_leaders() -> None:
    roster = _without_phone(sample_roster(), "jj-j1")
    police = duty_officer(roster, JJ, NOON_FIRST)
    assert police is not None
    assert (police.officer_id, police.role) == ("jj-p1", Role.JUDICIAL_POLICE)
    leader = duty_officer(_without_phone(roster, "jj-p1"), JJ, NOON_FIRST)
    assert leader is not None
    assert leader.officer_id == "jj-l1"
    # No group member to call: the court's bureau duty leader.
    chief = duty_officer(_without_phone(roster, "jj-p1", "jj-l1"), JJ, NOON_FIRST)
    assert chief is not None
    assert chief.officer_id == "jj-chief"


def test_a_court_not_on_the_roster_has_no_contact() -> None:
    assert duty_officer(sample_roster(), "某县人民法院", NOON_FIRST) is None
    nobody = _without_phone(sample_roster(), "jj-j1", "jj-p1", "jj-l1", "jj-chief")
    assert duty_officer(nobody, JJ, NOON_FIRST) is None
