"""The funnel's pure parts: the period from local days, the CSV, the gauges (figures: integration)."""

from __future__ import annotations

import csv
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from prometheus_client import REGISTRY

from alerts.funnel import (
    CSV_HEADER,
    TOTAL,
    FunnelRow,
    calendar_year,
    format_minutes,
    local_days,
    month_of,
    publish_metrics,
    report_period,
    to_csv,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
JJ = "台州市椒江区人民法院"
HY = "台州市黄岩区人民法院"


def test_local_days_run_from_local_midnight_to_the_midnight_after_the_last_day() -> None:
    start, end = local_days(date(2026, 1, 1), date(2026, 12, 31))
    assert (start, end) == (datetime(2026, 1, 1, tzinfo=SHANGHAI), datetime(2027, 1, 1, tzinfo=SHANGHAI))
    # Shanghai midnight is 16:00 UTC the day before: a read at 2025-12-31 16:10 UTC is in 2026 here.
    assert start == datetime(2025, 12, 31, 16, 0, tzinfo=UTC)
    assert start <= datetime(2025, 12, 31, 16, 10, tzinfo=UTC) < end


def test_a_single_day_is_a_whole_day() -> None:
    start, end = local_days(date(2026, 3, 1), date(2026, 3, 1))
    assert (start, end) == (datetime(2026, 3, 1, tzinfo=SHANGHAI), datetime(2026, 3, 2, tzinfo=SHANGHAI))
    assert end - start == timedelta(days=1)


def test_a_period_ending_before_it_starts_is_refused() -> None:
    with pytest.raises(ValueError, match="ends"):
        local_days(date(2026, 2, 1), date(2026, 1, 31))


def test_the_calendar_year_is_the_local_one() -> None:
    # 17:00 UTC on New Year's Eve is already 01:00 on 1 January in Shanghai.
    start, end = calendar_year(datetime(2026, 12, 31, 17, 0, tzinfo=UTC))
    assert (start, end) == (datetime(2027, 1, 1, tzinfo=SHANGHAI), datetime(2028, 1, 1, tzinfo=SHANGHAI))
    assert calendar_year(datetime(2026, 6, 1, 12, 0, tzinfo=SHANGHAI))[0].year == 2026


def test_the_calendar_year_needs_an_aware_time() -> None:
    with pytest.raises(ValueError, match="aware"):
        calendar_year(datetime(2026, 6, 1, 12, 0))  # noqa: DTZ001  # the naive time is the point


@pytest.mark.parametrize(
    ("first", "last", "today", "period"),
    [
        (None, None, "2026-12-04", ("2026-12-01", "2026-12-31")),  # this month, whole
        (None, None, "2026-02-28", ("2026-02-01", "2026-02-28")),
        (None, None, "2028-02-10", ("2028-02-01", "2028-02-29")),  # a leap year
        ("2026-11-15", None, "2026-12-04", ("2026-11-15", "2026-12-04")),  # from a day to today
        (None, "2026-03-20", "2026-12-04", ("2026-03-01", "2026-03-20")),  # from the 1st of that month
        ("2025-01-01", "2026-12-31", "2026-12-04", ("2025-01-01", "2026-12-31")),  # any period
    ],
)
def test_the_report_period_fills_in_what_is_not_given(
    first: str | None, last: str | None, today: str, period: tuple[str, str]
) -> None:
    def day(text: str | None) -> date | None:
        return date.fromisoformat(text) if text else None

    assert report_period(day(first), day(last), date.fromisoformat(today)) == tuple(map(day, period))


def test_a_report_period_ending_before_it_starts_is_refused() -> None:
    with pytest.raises(ValueError, match=r"ends \(2026-12-04\) before it starts \(2026-12-05\)"):
        report_period(date(2026, 12, 5), None, date(2026, 12, 4))  # --from tomorrow


def test_month_of_december_ends_on_new_years_eve() -> None:
    assert month_of(date(2026, 12, 31)) == (date(2026, 12, 1), date(2026, 12, 31))


ROWS = [
    FunnelRow(HY, watched=7, alarms=5, seized=3, settled=1, median_minutes_to_seizure=42.0),
    FunnelRow(JJ, watched=1981, alarms=452, seized=0, settled=134, median_minutes_to_seizure=None),
    FunnelRow(None, watched=1988, alarms=457, seized=3, settled=135, median_minutes_to_seizure=82.25),
]


def test_csv_has_the_header_a_row_per_court_and_the_totals_row() -> None:
    text = to_csv(ROWS)
    assert text.splitlines()[0] == ",".join(CSV_HEADER)
    assert list(csv.reader(text.splitlines())) == [
        list(CSV_HEADER),
        [HY, "7", "5", "3", "1", "42.0"],
        [JJ, "1981", "452", "0", "134", ""],  # no seizure: no median, not zero
        [TOTAL, "1988", "457", "3", "135", "82.2"],
    ]


def test_csv_lines_end_in_crlf_and_are_text_for_the_caller_to_encode() -> None:
    text = to_csv(ROWS)
    assert text.endswith("\r\n")
    assert text.count("\r\n") == 4
    assert "\ufeff" not in text  # the BOM is the writer's business (the command adds it)


def test_csv_of_no_rows_is_the_header() -> None:
    assert to_csv([]) == ",".join(CSV_HEADER) + "\r\n"


def test_csv_quotes_commas_and_defuses_formulas_in_court_names() -> None:
    rows = [
        FunnelRow("=HYPERLINK(1)", 1, 0, 0, 0, None),
        FunnelRow("法院, 第二庭", 1, 0, 0, 0, None),
    ]
    parsed = list(csv.reader(to_csv(rows).splitlines()))
    assert parsed[1][0] == "'=HYPERLINK(1)"
    assert parsed[2][0] == "法院, 第二庭"


@pytest.mark.parametrize(
    ("value", "missing", "shown"),
    [(None, "", ""), (None, "-", "-"), (90.0, "", "90.0"), (82.25, "", "82.2"), (0.04, "", "0.0")],
)
def test_minutes_are_shown_to_one_decimal(value: float | None, missing: str, shown: str) -> None:
    assert format_minutes(value, missing) == shown


def test_the_totals_row_is_labelled_total() -> None:
    assert [r.label for r in ROWS] == [HY, JJ, TOTAL]


def gauge(name: str, court: str) -> float | None:
    return REGISTRY.get_sample_value(name, {"court": court})


def test_gauges_follow_the_rows_and_forget_courts_that_left() -> None:
    a, b = "unit-test court A", "unit-test court B"
    publish_metrics(
        [
            FunnelRow(a, 10, 4, 2, 1, 30.0),
            FunnelRow(b, 5, 1, 0, 0, None),
            FunnelRow(None, 15, 5, 2, 1, 30.0),
        ]
    )
    assert gauge("seizewatch_funnel_watched_vehicles", a) == 10
    assert gauge("seizewatch_funnel_alarms", a) == 4
    assert gauge("seizewatch_funnel_seized_vehicles", a) == 2
    assert gauge("seizewatch_funnel_settled_cases", a) == 1
    assert gauge("seizewatch_funnel_median_seconds_to_seizure", a) == 30.0 * 60
    assert gauge("seizewatch_funnel_watched_vehicles", TOTAL) == 15
    assert gauge("seizewatch_funnel_watched_vehicles", b) == 5
    assert gauge("seizewatch_funnel_median_seconds_to_seizure", b) is None  # absent, not zero

    publish_metrics([FunnelRow(a, 11, 4, 2, 1, None), FunnelRow(None, 11, 4, 2, 1, None)])
    assert gauge("seizewatch_funnel_watched_vehicles", a) == 11
    assert gauge("seizewatch_funnel_watched_vehicles", b) is None
    assert gauge("seizewatch_funnel_median_minutes_to_seizure", a) is None
    assert gauge("seizewatch_funnel_median_minutes_to_seizure", TOTAL) is None
