"""Times shown in the court's zone with their offset, and the forms an officer types (injected 'now')."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from streams.localtime import local_iso, offset_text, parse_when, shown, shown_day

SHANGHAI = ZoneInfo("Asia/Shanghai")
URUMQI = ZoneInfo("Asia/Urumqi")  # +06:00 in the tz database
# 23:30 in Shanghai on 4 December is 15:30 UTC: "today" in Shanghai is already the 4th, in UTC too; at
# 01:30 Shanghai (17:30 UTC the day before) the local and the UTC dates differ: both are tested.
LATE = datetime(2026, 12, 4, 15, 30, tzinfo=UTC)
EARLY = datetime(2026, 12, 3, 17, 30, tzinfo=UTC)  # 2026-12-04 01:30 in Shanghai


def test_an_instant_is_shown_in_local_time_with_its_offset() -> None:
    assert shown(datetime(2026, 12, 4, 13, 0, tzinfo=UTC)) == "2026-12-04 21:00+08:00"
    assert shown(EARLY) == "2026-12-04 01:30+08:00"  # the local date, not the UTC one
    assert shown(EARLY, URUMQI) == "2026-12-03 23:30+06:00"
    assert shown(EARLY, UTC) == "2026-12-03 17:30+00:00"
    assert (
        shown(datetime(2026, 7, 1, 12, 0, tzinfo=UTC), ZoneInfo("America/St_Johns"))
        == "2026-07-01 09:30-02:30"
    )


def test_days_and_iso_in_the_zone() -> None:
    assert shown_day(EARLY) == "2026-12-04 (+08:00)"
    assert local_iso(EARLY) == "2026-12-04T01:30:00+08:00"
    assert offset_text(EARLY.astimezone(SHANGHAI)) == "+08:00"


def test_a_naive_time_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        shown(datetime(2026, 12, 4, 21, 0))  # noqa: DTZ001  # the naive time is the point


@pytest.mark.parametrize("now", [LATE, EARLY], ids=["late", "early"])
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("21:00", "2026-12-04 21:00"),
        ("8:30", "2026-12-04 08:30"),
        ("今天 08:30", "2026-12-04 08:30"),
        ("明天 21:00", "2026-12-05 21:00"),
        ("明天21:00", "2026-12-05 21:00"),
        ("明天　２１：００", "2026-12-05 21:00"),  # full-width space, digits and colon
        ("昨天 23:59", "2026-12-03 23:59"),
        ("后天 00:00", "2026-12-06 00:00"),
        ("tomorrow 21:00", "2026-12-05 21:00"),
        ("Tomorrow 21:00", "2026-12-05 21:00"),
        ("today 00:00", "2026-12-04 00:00"),
        ("2026-11-23 21:00", "2026-11-23 21:00"),  # ISO without an offset: local
    ],
)
def test_the_forms_an_officer_types(now: datetime, text: str, expected: str) -> None:
    """The same local answer whether 'now' is late in the evening or just after midnight (local)."""
    assert parse_when(text, now=now) == datetime.fromisoformat(expected).replace(tzinfo=SHANGHAI)


def test_iso_with_an_offset_keeps_it() -> None:
    at = parse_when("2026-11-23T13:00+00:00", now=LATE)
    assert at == datetime(2026, 11, 23, 21, 0, tzinfo=SHANGHAI)
    assert at.utcoffset() is not None


def test_today_is_the_zones_today() -> None:
    # 23:30 in Urumqi on the 3rd is already 01:30 on the 4th in Shanghai.
    assert parse_when("21:00", now=EARLY, zone=URUMQI) == datetime(2026, 12, 3, 21, 0, tzinfo=URUMQI)
    assert parse_when("明天 21:00", now=EARLY, zone=URUMQI) == datetime(2026, 12, 4, 21, 0, tzinfo=URUMQI)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "no time given"),
        ("   ", "no time given"),
        ("下周 21:00", "unknown day '下周'"),
        ("tonight 21:00", "unknown day 'tonight'"),
        ("25:00", "no such time of day"),
        ("明天 21:60", "no such time of day"),
        ("21", "is not a time"),
        ("9pm", "is not a time"),
        ("2026-13-01 21:00", "is not a time"),
    ],
)
def test_anything_else_is_refused_saying_what_is_expected(text: str, says: str) -> None:
    with pytest.raises(ValueError, match=says) as refused:
        parse_when(text, now=LATE)
    assert "明天 21:00" in str(refused.value)
