"""The enforcement funnel per court: vehicles under watch → alarms → vehicles seized → cases settled.

The figures courts publish ("1,981 vehicles under watch, 452 alarms, 218 vehicles seized, 134 cases
settled", Taizhou), for any period ``[start, end)``, one row per court plus a totals row. Every figure
but the last counts **vehicles**, not watch entries nor tasks: a vehicle is a plate with its colour, as
on a watch entry (``(plate, plate_colour)``; the same plate on a blue and a yellow plate are two
vehicles, and so are a plate of unknown colour and the same plate with a colour). A vehicle sealed in
two cases, seen twenty times or tasked twice is one vehicle in each figure. Only ``seize`` entries are
in the funnel: locate-only and soft-seal (活封) entries ask nobody to seize anything.
:data:`DEFINITIONS` states each figure in words; the report prints them under its table.

===========================  =====================================================================
Figure                       Definition (per court: ``watch_entries.court``)
===========================  =====================================================================
vehicles under watch         Distinct vehicles with a seize entry in force at some point in the
                             period: valid from before ``end``, seal not lapsed before ``start``
                             (``valid_until`` unset or ``> start``: the matcher ignores a lapsed
                             entry), and not closed before ``start`` (status ``active``, or
                             ``updated_at >= start`` when released or seized: closing sets both).
alarms                       Distinct vehicles of those entries with at least one hit observed in
                             the period (``hits.observed_at``), backfilled history excepted (it
                             pages nobody), or a task opened by the traffic police's own stop of
                             the vehicle in the period (no camera saw it: ``tasks.page_id IS NULL``,
                             ``first_seen_at`` in the period).
vehicles seized              Distinct vehicles of those entries with a task whose first
                             ``task_events`` row with ``to_state = 'seized'`` falls in the period.
cases settled                Distinct case numbers of the court's seize entries released in the
                             period (``watch_entry_history`` row ``change = 'released'``) whose
                             ``closed_reason`` is ``paid`` (已履行) or ``settled`` (执行和解).
median minutes to seizure    Median over the seizures counted (one per task) of (that seized
                             event's ``at`` − ``tasks.first_seen_at``), in minutes; ``None`` when
                             none was seized.
===========================  =====================================================================

The totals row (court ``None``, shown as ``total``) is computed over all courts by the same queries
(``GROUPING SETS``): a vehicle sealed by two courts counts in each court's row and once in the total,
so the total may be less than the sum of the court rows; its median is the median of every seizure,
not a median of medians. Case numbers are counted per court.

Dates are local days in Asia/Shanghai: :func:`local_days` turns ``--from``/``--to`` (inclusive) into the
half-open period, :func:`report_period` fills in what is not given (this month by default). Nothing
here names a plate or a case: the figures are counts, the metrics carry only the court.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
from prometheus_client import Gauge

from alerts import metrics
from alerts.rosters import DEFAULT_TIMEZONE
from streams.db import Connection
from streams.watchstore import ClosedReason

REPORT_ZONE = ZoneInfo(DEFAULT_TIMEZONE)
TOTAL = "total"  # how the totals row is labelled: in the table, the CSV and the metrics' court label
# Why a released entry counts as a settled case: the debt paid (已履行) or a settlement (执行和解).
SETTLED_REASONS = (ClosedReason.PAID.value, ClosedReason.SETTLED.value)
CSV_HEADER = (
    "court",
    "watched_vehicles",
    "alarms",
    "seized_vehicles",
    "settled_cases",
    "median_minutes_to_seizure",
)


@dataclass(frozen=True, slots=True)
class FunnelRow:
    """One court's funnel for the period; ``court is None`` is the totals row over all courts."""

    court: str | None
    watched: int
    alarms: int
    seized: int
    settled: int
    median_minutes_to_seizure: float | None

    @property
    def label(self) -> str:
        return TOTAL if self.court is None else self.court


# --- the period ---------------------------------------------------------------------------------------


def local_days(first: date, last: date, zone: ZoneInfo = REPORT_ZONE) -> tuple[datetime, datetime]:
    """The period from the start of day ``first`` to the end of day ``last`` (inclusive), in ``zone``.

    Raises:
        ValueError: ``last`` is before ``first``.
    """
    if last < first:
        raise ValueError(f"the period ends ({last}) before it starts ({first})")
    return datetime.combine(first, time(), zone), datetime.combine(last + timedelta(days=1), time(), zone)


def calendar_year(now: datetime, zone: ZoneInfo = REPORT_ZONE) -> tuple[datetime, datetime]:
    """The calendar year (in ``zone``) that ``now`` falls in, as a half-open period.

    Raises:
        ValueError: ``now`` is naive.
    """
    if now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    year = now.astimezone(zone).year
    return local_days(date(year, 1, 1), date(year, 12, 31), zone)


def month_of(day: date) -> tuple[date, date]:
    """The first and the last day of ``day``'s month."""
    first = day.replace(day=1)
    following = (first + timedelta(days=31)).replace(day=1)
    return first, following - timedelta(days=1)


def report_period(first: date | None, last: date | None, today: date) -> tuple[date, date]:
    """The days a report covers, inclusive: what is given, the rest filled in around ``today`` (local).

    Neither given: this month (its first to its last day). Only ``first``: from it to ``today``. Only
    ``last``: from the first day of its month.

    Raises:
        ValueError: the period ends before it starts (naming both days).
    """
    if last is None:
        last = today if first is not None else month_of(today)[1]
    if first is None:
        first = month_of(last)[0]
    if last < first:
        raise ValueError(f"the period ends ({last}) before it starts ({first})")
    return first, last


# What each figure means, in the words the report prints under its table (the module docstring has
# the SQL-level detail). A court that publishes its figures can say exactly what was counted.
DEFINITIONS: tuple[tuple[str, str], ...] = (
    (
        "vehicle",
        "a plate with its colour, as on a watch entry; several entries (cases), hits or tasks of one"
        " vehicle count once. Only seize entries count (not locate-only, not soft seal 活封).",
    ),
    (
        "vehicles watched",
        "distinct vehicles with a seize entry in force at some time in the period (not yet lapsed,"
        " released or seized when the period starts).",
    ),
    (
        "alarms",
        "distinct vehicles of those entries with at least one hit (a camera or lot read that matched)"
        " observed in the period, backfilled history excepted, or stopped by the traffic police in it.",
    ),
    ("vehicles seized", "distinct vehicles whose task was marked seized in the period."),
    (
        "cases settled",
        "distinct case numbers whose seize entry was released in the period as paid (已履行) or"
        " settled (执行和解).",
    ),
    (
        "median min to seizure",
        "median, over the seizures counted, of the minutes from the first sighting to the seizure.",
    ),
    (
        "total",
        "every court at once: a vehicle sealed by two courts counts in each court's row and once in"
        " the total.",
    ),
)


# --- the figures --------------------------------------------------------------------------------------

# Every query: $1 start, $2 end (half-open), $3 court or NULL for all; one row per court plus the totals
# row (court NULL: watch_entries.court is NOT NULL, so NULL only ever means the empty grouping set).
# A vehicle is (plate, plate_colour), counted DISTINCT: several entries (cases), hits or tasks of one
# vehicle count once.
_WATCHED = """
SELECT e.court, count(DISTINCT (e.plate, e.plate_colour)) AS n
FROM watch_entries e
WHERE e.action = 'seize'
  AND e.valid_from < $2
  AND (e.valid_until IS NULL OR e.valid_until > $1)
  AND (e.status = 'active' OR e.updated_at >= $1)
  AND ($3::text IS NULL OR e.court = $3)
GROUP BY GROUPING SETS ((e.court), ())
"""

# hits_entry_observed (entry_id, observed_at) answers the first EXISTS by an index probe per entry.
_ALARMS = """
SELECT e.court, count(DISTINCT (e.plate, e.plate_colour)) AS n
FROM watch_entries e
WHERE e.action = 'seize'
  AND ($3::text IS NULL OR e.court = $3)
  AND (EXISTS (SELECT 1 FROM hits h
               WHERE h.entry_id = e.entry_id AND NOT h.backfill
                 AND h.observed_at >= $1 AND h.observed_at < $2)
       OR EXISTS (SELECT 1 FROM tasks t
                  WHERE t.entry_id = e.entry_id AND t.page_id IS NULL
                    AND t.first_seen_at >= $1 AND t.first_seen_at < $2))
GROUP BY GROUPING SETS ((e.court), ())
"""

# A task reaches 'seized' once; should a later event say so again, the first one is the seizure.
_SEIZED = """
WITH seizures AS (
    SELECT task_id, min(at) AS seized_at FROM task_events WHERE to_state = 'seized' GROUP BY task_id
)
SELECT e.court,
       count(DISTINCT (e.plate, e.plate_colour)) AS n,
       percentile_cont(0.5) WITHIN GROUP (
           ORDER BY (extract(epoch FROM s.seized_at - t.first_seen_at) / 60)::float8
       ) AS median_minutes
FROM seizures s
JOIN tasks t ON t.task_id = s.task_id
JOIN watch_entries e ON e.entry_id = t.entry_id
WHERE e.action = 'seize'
  AND s.seized_at >= $1 AND s.seized_at < $2
  AND ($3::text IS NULL OR e.court = $3)
GROUP BY GROUPING SETS ((e.court), ())
"""

_SETTLED = """
SELECT e.court, count(DISTINCT (e.court, e.case_number)) AS n
FROM watch_entry_history h
JOIN watch_entries e ON e.entry_id = h.entry_id
WHERE e.action = 'seize'
  AND h.change = 'released' AND h.changed_at >= $1 AND h.changed_at < $2
  AND e.closed_reason = ANY($4::text[])
  AND ($3::text IS NULL OR e.court = $3)
GROUP BY GROUPING SETS ((e.court), ())
"""


async def funnel(
    conn: Connection, *, start: datetime, end: datetime, court: str | None = None
) -> list[FunnelRow]:
    """The funnel for ``[start, end)``: a row per court with any figure, by name, then the totals row.

    With ``court``, only that court's row (zeros when it has nothing in the period). The queries read one
    snapshot (a read-only repeatable-read transaction), so the figures agree with each other.

    Raises:
        ValueError: a naive bound, or ``end`` not after ``start``.
        asyncpg.PostgresError: the database refused a query.
    """
    if start.utcoffset() is None or end.utcoffset() is None:
        raise ValueError("start and end must be timezone-aware")
    if end <= start:
        raise ValueError(f"the period ends ({end}) before it starts ({start})")
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        watched = await conn.fetch(_WATCHED, start, end, court)
        alarms = await conn.fetch(_ALARMS, start, end, court)
        seized = await conn.fetch(_SEIZED, start, end, court)
        settled = await conn.fetch(_SETTLED, start, end, court, list(SETTLED_REASONS))

    def by_court(records: list[asyncpg.Record], column: str) -> dict[str | None, Any]:
        return {r["court"]: r[column] for r in records}

    n_watched, n_alarms = by_court(watched, "n"), by_court(alarms, "n")
    n_seized, n_settled = by_court(seized, "n"), by_court(settled, "n")
    medians = by_court(seized, "median_minutes")

    def row(key: str | None) -> FunnelRow:
        return FunnelRow(
            court=key,
            watched=int(n_watched.get(key, 0)),
            alarms=int(n_alarms.get(key, 0)),
            seized=int(n_seized.get(key, 0)),
            settled=int(n_settled.get(key, 0)),
            median_minutes_to_seizure=medians.get(key),
        )

    if court is not None:
        return [row(court)]
    courts = {key for counts in (n_watched, n_alarms, n_seized, n_settled) for key in counts if key}
    return [*(row(c) for c in sorted(courts)), row(None)]


# --- formatting ---------------------------------------------------------------------------------------


def format_minutes(value: float | None, missing: str = "") -> str:
    """Minutes to one decimal; ``missing`` when there is no value."""
    return missing if value is None else f"{value:.1f}"


def _cell(text: str) -> str:
    # A court name is typed by clerks; one starting like a formula must not run in Excel.
    return "'" + text if text.startswith(("=", "+", "-", "@", "\t", "\r")) else text


def to_csv(rows: Sequence[FunnelRow]) -> str:
    """The rows as CSV text with a header (CRLF line ends; the caller chooses the encoding and BOM)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_HEADER)
    for r in rows:
        writer.writerow(
            [
                _cell(r.label),
                r.watched,
                r.alarms,
                r.seized,
                r.settled,
                format_minutes(r.median_minutes_to_seizure),
            ]
        )
    return out.getvalue()


# --- metrics ------------------------------------------------------------------------------------------

_GAUGES: tuple[tuple[Gauge, Callable[[FunnelRow], float | None]], ...] = (
    (metrics.FUNNEL_WATCHED_VEHICLES, lambda r: r.watched),
    (metrics.FUNNEL_ALARMS, lambda r: r.alarms),
    (metrics.FUNNEL_SEIZED_VEHICLES, lambda r: r.seized),
    (metrics.FUNNEL_SETTLED_CASES, lambda r: r.settled),
    (metrics.FUNNEL_MEDIAN_SECONDS_TO_SEIZURE, lambda r: _seconds(r.median_minutes_to_seizure)),
)


def _seconds(minutes: float | None) -> float | None:
    return None if minutes is None else minutes * 60


def _courts(gauge: Gauge) -> set[str]:
    return {sample.labels["court"] for metric in gauge.collect() for sample in metric.samples}


def publish_metrics(rows: Sequence[FunnelRow]) -> None:
    """Set the funnel gauges from ``rows``; a court no longer in them (or without a median) disappears.

    Series are set, then stale ones removed: a scrape in between never sees a court missing.
    """
    for gauge, value in _GAUGES:
        wanted = {r.label: v for r in rows if (v := value(r)) is not None}
        for court, v in wanted.items():
            gauge.labels(court=court).set(v)
        for stale in _courts(gauge) - wanted.keys():
            gauge.remove(stale)


async def refresh_funnel_metrics(pool: asyncpg.Pool, now: datetime) -> list[FunnelRow]:
    """Compute this calendar year's funnel (the year ``now`` falls in, Asia/Shanghai) and publish it.

    Raises:
        ValueError: ``now`` is naive.
        asyncpg.PostgresError: the database refused a query (the gauges keep their last values).
    """
    start, end = calendar_year(now)
    async with pool.acquire() as conn:
        rows = await funnel(conn, start=start, end=end)
    publish_metrics(rows)
    return rows
