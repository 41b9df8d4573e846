"""Who is on duty: rotation at the handoff, overrides, night windows, validation. Pure, fake times."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from alerts.rosters import (
    Court,
    DutyGroup,
    GroupOverride,
    MemberOverride,
    NightContact,
    Officer,
    Role,
    Roster,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
JJ = "台州市椒江区人民法院"
HY = "台州市黄岩区人民法院"


def local(text: str, zone: ZoneInfo = SHANGHAI) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=zone)


def _officers(court: str, prefix: str, code: int, groups: int) -> list[Officer]:
    roles = (("l", Role.BUREAU_LEADER), ("j", Role.JUDGE), ("p", Role.JUDICIAL_POLICE))
    made = [
        Officer(
            f"{prefix}-chief", f"{prefix.upper()}-CHIEF", f"+861380000{code}00", Role.BUREAU_LEADER, court
        )
    ]
    for n in range(1, groups + 1):
        for k, (letter, role) in enumerate(roles, start=1):
            officer_id = f"{prefix}-{letter}{n}"
            made.append(Officer(officer_id, officer_id.upper(), f"+861380000{code}{n}{k}", role, court))
    return made


def _groups(court: str, prefix: str, count: int) -> list[DutyGroup]:
    return [
        DutyGroup(
            f"{prefix}-{n}", court, n - 1, f"第{n}组", f"{prefix}-l{n}", f"{prefix}-j{n}", f"{prefix}-p{n}"
        )
        for n in range(1, count + 1)
    ]


def sample_roster(**changes: object) -> Roster:
    """Two courts: 椒江 (3 groups, handoff 08:30, district 331002) and 黄岩 (2 groups, handoff 09:00, 331003);
    a police station night contact for each district, 20:00–08:00. Anchored on 2026-11-01."""
    officers = [
        *_officers(JJ, "jj", 1, 3),
        *_officers(HY, "hy", 2, 2),
        Officer("jj-j4", "JJ-J4 spare judge", "+8613800001042", Role.JUDGE, JJ),
        Officer("st-baiyun", "白云派出所值班室", "+8613800003001", Role.STATION_DUTY),
        Officer("st-xicheng", "西城派出所值班室", "+8613800003002", Role.STATION_DUTY),
    ]
    roster = Roster(
        courts=(
            Court(JJ, date(2026, 11, 1), time(8, 30), bureau_duty_leader="jj-chief"),
            Court(HY, date(2026, 11, 1), time(9, 0), bureau_duty_leader="hy-chief"),
        ),
        officers=tuple(officers),
        groups=(*_groups(JJ, "jj", 3), *_groups(HY, "hy", 2)),
        court_districts=((JJ, "331002"), (HY, "331003")),
        night_contacts=(
            NightContact("331002", "椒江区白云派出所", "st-baiyun"),
            NightContact("331003", "黄岩区西城派出所", "st-xicheng"),
        ),
    )
    return replace(roster, **changes)  # type: ignore[arg-type]  # keyword names are Roster's fields


def on_duty_id(roster: Roster, court: str, at: datetime) -> str | None:
    group = roster.on_duty(court, at)
    return group.group_id if group else None


# --- rotation -------------------------------------------------------------------------------------------


def test_the_sample_roster_is_sound() -> None:
    assert sample_roster().validate() == []


@pytest.mark.parametrize(
    ("at", "group"),
    [
        ("2026-11-01 08:30", "jj-1"),  # the anchor's handoff
        ("2026-11-01 23:59", "jj-1"),
        ("2026-11-02 03:00", "jj-1"),  # after midnight, still yesterday's shift
        ("2026-11-02 08:29:59", "jj-1"),
        ("2026-11-02 08:30", "jj-2"),  # handoff
        ("2026-11-03 08:30", "jj-3"),
        ("2026-11-04 08:30", "jj-1"),  # the rotation wraps
        ("2026-11-23 21:00", "jj-2"),  # 22 days on: 22 % 3 = 1
        ("2026-11-01 08:29", "jj-3"),  # before the anchor, the rotation runs backwards
        ("2026-10-30 12:00", "jj-2"),
    ],
)
def test_rotation_changes_at_the_handoff_time(at: str, group: str) -> None:
    assert on_duty_id(sample_roster(), JJ, local(at)) == group


def test_each_court_hands_off_at_its_own_time() -> None:
    roster = sample_roster()
    at = local("2026-11-02 08:45")
    assert on_duty_id(roster, JJ, at) == "jj-2"  # handed off at 08:30
    assert on_duty_id(roster, HY, at) == "hy-1"  # hands off at 09:00
    assert on_duty_id(roster, HY, local("2026-11-02 09:00")) == "hy-2"


def test_the_instant_may_come_in_any_time_zone() -> None:
    # 00:30 UTC is 08:30 in Shanghai: the handoff
    at = datetime(2026, 11, 2, 0, 30, tzinfo=ZoneInfo("UTC"))
    assert on_duty_id(sample_roster(), JJ, at) == "jj-2"
    assert on_duty_id(sample_roster(), JJ, at - timedelta(seconds=1)) == "jj-1"


def test_shift_bounds_and_multi_day_shifts() -> None:
    roster = sample_roster()
    shift = roster.shift(JJ, local("2026-11-02 03:00"))
    assert shift is not None
    assert (shift.starts_at, shift.ends_at) == (local("2026-11-01 08:30"), local("2026-11-02 08:30"))
    two_days = replace(roster, courts=(replace(roster.courts[0], shift_days=2), roster.courts[1]))
    assert on_duty_id(two_days, JJ, local("2026-11-02 20:00")) == "jj-1"
    assert on_duty_id(two_days, JJ, local("2026-11-03 08:30")) == "jj-2"
    shift = two_days.shift(JJ, local("2026-11-04 12:00"))
    assert shift is not None
    assert (shift.starts_at, shift.ends_at) == (local("2026-11-03 08:30"), local("2026-11-05 08:30"))


def test_handoff_keeps_its_wall_clock_time_across_a_dst_change() -> None:
    new_york = ZoneInfo("America/New_York")  # summer time starts 2026-03-08 02:00
    court = Court("NY", date(2026, 3, 1), time(8, 30), timezone="America/New_York")
    groups = (DutyGroup("a", "NY", 0), DutyGroup("b", "NY", 1))
    roster = Roster(courts=(court,), groups=groups)
    shift = roster.shift("NY", local("2026-03-08 08:29", new_york))
    assert shift is not None
    assert shift.group.group_id == "a"  # 7 days after the anchor: 7 % 2 = 1 → b takes over at 08:30
    assert shift.ends_at == local("2026-03-08 08:30", new_york)
    assert shift.ends_at - shift.starts_at == timedelta(hours=23)
    assert on_duty_id(roster, "NY", local("2026-03-08 08:30", new_york)) == "b"
    assert on_duty_id(roster, "NY", datetime(2026, 3, 8, 12, 29, tzinfo=ZoneInfo("UTC"))) == "a"
    assert on_duty_id(roster, "NY", datetime(2026, 3, 8, 12, 30, tzinfo=ZoneInfo("UTC"))) == "b"


def test_unknown_court_or_no_group_means_nobody() -> None:
    roster = sample_roster()
    assert roster.on_duty("某某法院", local("2026-11-02 12:00")) is None
    assert replace(roster, groups=()).on_duty(JJ, local("2026-11-02 12:00")) is None


def test_a_naive_instant_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        sample_roster().on_duty(JJ, datetime(2026, 11, 2, 12, 0))  # noqa: DTZ001  # the point of the test


def test_an_unknown_time_zone_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown time zone"):
        Court(JJ, date(2026, 11, 1), timezone="Asia/Taizhou")


# --- overrides ------------------------------------------------------------------------------------------


def test_a_group_override_takes_the_duty_for_its_period_only() -> None:
    override = GroupOverride(
        1, JJ, "jj-3", local("2026-11-02 12:00"), local("2026-11-02 20:00"), "第二组出差"
    )
    roster = sample_roster(group_overrides=(override,))
    assert on_duty_id(roster, JJ, local("2026-11-02 11:59")) == "jj-2"
    shift = roster.shift(JJ, local("2026-11-02 12:00"))
    assert shift is not None
    assert shift.group.group_id == "jj-3"
    assert shift.rostered_group_id == "jj-2"
    assert shift.group_override == override
    assert on_duty_id(roster, JJ, local("2026-11-02 20:00")) == "jj-2"
    assert on_duty_id(roster, HY, local("2026-11-02 12:00")) == "hy-2"  # other courts untouched


def test_a_member_override_replaces_one_member_for_its_period() -> None:
    sick = MemberOverride(
        7, "jj-2", Role.JUDGE, "jj-j4", local("2026-11-02 08:30"), local("2026-11-02 18:00")
    )
    roster = sample_roster(member_overrides=(sick,))
    shift = roster.shift(JJ, local("2026-11-02 10:00"))
    assert shift is not None
    assert shift.group.group_id == "jj-2"
    assert shift.group.judge == "jj-j4"
    assert shift.group.bureau_leader == "jj-l2"  # the others stay
    assert shift.group.judicial_police == "jj-p2"
    assert shift.override_for(Role.JUDGE) == sick
    after = roster.on_duty(JJ, local("2026-11-02 18:00"))
    assert after is not None
    assert after.judge == "jj-j2"
    # the override belongs to group jj-2: it does nothing while another group is on duty
    assert roster.on_duty(JJ, local("2026-11-03 10:00")) == roster.group("jj-3")


def test_member_overrides_apply_to_the_group_brought_in_by_a_group_override() -> None:
    swap = GroupOverride(1, JJ, "jj-3", local("2026-11-02 08:30"), local("2026-11-03 08:30"))
    cover = MemberOverride(
        2, "jj-3", Role.JUDGE, "jj-j4", local("2026-11-02 08:30"), local("2026-11-02 20:00")
    )
    group = sample_roster(group_overrides=(swap,), member_overrides=(cover,)).on_duty(
        JJ, local("2026-11-02 09:00")
    )
    assert group is not None
    assert (group.group_id, group.judge, group.bureau_leader) == ("jj-3", "jj-j4", "jj-l3")


def test_of_overlapping_overrides_the_later_one_wins_and_validate_says_so() -> None:
    first = GroupOverride(1, JJ, "jj-3", local("2026-11-02 10:00"), local("2026-11-02 20:00"))
    second = GroupOverride(2, JJ, "jj-1", local("2026-11-02 12:00"), local("2026-11-02 14:00"))
    roster = sample_roster(group_overrides=(first, second))
    assert on_duty_id(roster, JJ, local("2026-11-02 11:00")) == "jj-3"
    assert on_duty_id(roster, JJ, local("2026-11-02 13:00")) == "jj-1"
    assert on_duty_id(roster, JJ, local("2026-11-02 15:00")) == "jj-3"
    assert roster.validate() == [f"group overrides #1 and #2 of {JJ} overlap"]


# --- night contacts and jurisdiction --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("clock", "in_force"),
    [
        ("19:59", False),
        ("20:00", True),
        ("23:59", True),
        ("00:00", True),
        ("03:00", True),
        ("07:59", True),
        ("08:00", False),
        ("12:00", False),
    ],
)
def test_night_window_crossing_midnight(clock: str, in_force: bool) -> None:
    contact = sample_roster().night_contact("331002", local(f"2026-11-02 {clock}"))
    assert (contact.officer_id if contact else None) == ("st-baiyun" if in_force else None)


def test_night_window_within_one_day_and_its_end() -> None:
    cover = NightContact("331099", "站", "st", night_start=time(1, 0), night_end=time(5, 0))
    assert not cover.covers(local("2026-11-02 00:59"))
    assert cover.covers(local("2026-11-02 01:00"))
    assert not cover.covers(local("2026-11-02 05:00"))
    night = sample_roster().night_cover("331002")
    assert night is not None
    assert night.window_end(local("2026-11-02 21:00")) == local("2026-11-03 08:00")
    assert night.window_end(local("2026-11-03 02:00")) == local("2026-11-03 08:00")


def test_an_empty_night_window_is_refused() -> None:
    with pytest.raises(ValueError, match="empty"):
        NightContact("331002", "站", "st", night_start=time(8, 0), night_end=time(8, 0))


def test_jurisdiction_and_bureau_duty_leader() -> None:
    roster = sample_roster(court_districts=((JJ, "331002"), (HY, "331003"), (HY, "331002")))
    assert roster.courts_covering("331002") == sorted([JJ, HY])
    assert roster.courts_covering("999999") == []
    leader = roster.bureau_duty_leader(JJ)
    assert leader is not None
    assert leader.officer_id == "jj-chief"
    assert roster.bureau_duty_leader("某某法院") is None


def test_unreachable_officers_are_returned_with_the_reason() -> None:
    officer = Officer("x", "X", "+8613800000001", Role.JUDGE, JJ)
    assert officer.unreachable is None
    assert replace(officer, sms_enabled=False).unreachable == "SMS disabled"
    assert replace(officer, phone=None).unreachable == "no phone number"
    assert replace(officer, active=False).unreachable == "inactive"


# --- validation -----------------------------------------------------------------------------------------


def test_validate_names_every_problem() -> None:
    base = sample_roster()
    officers = {o.officer_id: o for o in base.officers}
    officers["jj-p1"] = replace(officers["jj-p1"], phone=None)  # no phone
    officers["jj-j2"] = replace(officers["jj-j2"], sms_enabled=False)  # a member who cannot be texted
    officers["hy-l2"] = replace(officers["hy-l2"], active=False)
    groups = {g.group_id: g for g in base.groups}
    groups["jj-3"] = replace(groups["jj-3"], judge=None)  # a group missing a role
    groups["hy-1"] = replace(groups["hy-1"], judge="jj-j4")  # a member of another court
    groups["hy-2"] = replace(groups["hy-2"], judicial_police="hy-j2")  # the wrong role
    overlapping = (
        MemberOverride(1, "jj-1", Role.JUDGE, "jj-j4", local("2026-11-05 08:30"), local("2026-11-05 20:00")),
        MemberOverride(2, "jj-1", Role.JUDGE, "jj-j3", local("2026-11-05 12:00"), local("2026-11-06 08:30")),
        MemberOverride(
            3, "jj-1", Role.JUDICIAL_POLICE, "ghost", local("2026-11-05 08:30"), local("2026-11-06")
        ),
    )
    roster = replace(
        base,
        officers=tuple(officers.values()),
        groups=tuple(groups.values()),
        member_overrides=overlapping,
        court_districts=(*base.court_districts, (HY, "331004")),  # a district without a night contact
    )
    problems = roster.validate()
    expected = [
        "officer JJ-P1 (jj-p1): no phone number, cannot be paged",
        f"group 第2组 (jj-2) of {JJ} judge: JJ-J2 (jj-j2) has SMS disabled",
        f"group 第3组 (jj-3) of {JJ}: no judge",
        f"group 第1组 (hy-1) of {HY}: judge JJ-J4 spare judge (jj-j4) is a member of {JJ}",
        f"group 第2组 (hy-2) of {HY} bureau_leader: HY-L2 (hy-l2) is inactive",
        f"group 第2组 (hy-2) of {HY} judicial_police: HY-J2 (hy-j2) is judge, not judicial_police",
        "member override #3 (jj-1 judicial_police) replacement: ghost is not an officer on the roster",
        "member overrides #1 and #2 (jj-1 judge) overlap",
        "district 331004: no night contact, its courts are woken at night for every hit",
    ]
    for line in expected:
        assert line in problems
    assert len(problems) == len(expected), problems


def test_validate_checks_the_courts_and_night_contacts() -> None:
    base = sample_roster()
    roster = replace(
        base,
        courts=(
            replace(base.courts[0], bureau_duty_leader=None),
            replace(base.courts[1], bureau_duty_leader="jj-l1"),
        ),
        night_contacts=(*base.night_contacts, NightContact("331099", "无主派出所", "jj-j1")),
        officers=(*base.officers, Officer("jj-j1", "duplicate", "+8613800009999", Role.JUDGE, JJ)),
    )
    problems = roster.validate()
    assert "officer jj-j1 appears more than once" in problems
    assert f"court {JJ}: no bureau duty leader named" in problems
    assert (
        f"court {HY}: bureau duty leader duplicate (jj-j1) belongs to {JJ}" not in problems
    )  # lookups: last wins
    assert f"court {HY}: bureau duty leader JJ-L1 (jj-l1) belongs to {JJ}" in problems
    assert (
        "night contact of district 331099 (无主派出所): duplicate (jj-j1) is judge, not station_duty"
        in problems
    )
    assert "night contact of district 331099 (无主派出所): no court covers the district" in problems
