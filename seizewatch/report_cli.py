"""``seizewatch report``: the figures courts publish, from the database (``report funnel``).

Registered on the ``seizewatch`` group by ``cli.add_command(report)``; also runs alone as
``python -m seizewatch.report_cli``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from alerts.funnel import (
    DEFINITIONS,
    REPORT_ZONE,
    FunnelRow,
    format_minutes,
    funnel,
    local_days,
    report_period,
    to_csv,
)
from seizewatch.settings import Settings
from streams import db
from streams.errors import SeizewatchError

T = TypeVar("T")
console = Console()


def _settings() -> Settings:
    try:
        return Settings.from_env()
    except SeizewatchError as exc:
        raise click.ClickException(str(exc)) from exc


def _guarded(job: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a database job; an error of ours becomes a clear message and exit code 1."""
    try:
        return asyncio.run(job())
    except SeizewatchError as exc:
        raise click.ClickException(str(exc)) from exc


@click.group()
def report() -> None:
    """Reports over the watchlist, alarms and seizures."""


_DAY = click.DateTime(formats=["%Y-%m-%d"])


@report.command("funnel")
@click.option(
    "--from",
    "first",
    type=_DAY,
    default=None,
    help="First day, e.g. 2026-01-01 (Asia/Shanghai). Default: the 1st of --to's month, or of this month.",
)
@click.option(
    "--to",
    "last",
    type=_DAY,
    default=None,
    help="Last day, included, e.g. 2026-12-31. Default: today with --from, else this month's last day.",
)
@click.option(
    "--court", default=None, help="One court only (its exact name); default: every court and a total."
)
@click.option(
    "--csv",
    "csv_path",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    default=None,
    help="Also write the rows to FILE as CSV (UTF-8 with BOM, opens in Excel).",
)
def report_funnel(
    first: datetime | None, last: datetime | None, court: str | None, csv_path: Path | None
) -> None:
    """Vehicles watched → alarms → vehicles seized → cases settled, per court, with what each counts.

    Any period of local days (default: this month); every figure but cases counts distinct vehicles.
    """
    today = datetime.now(UTC).astimezone(REPORT_ZONE).date()
    try:
        days = report_period(first.date() if first else None, last.date() if last else None, today)
        start, end = local_days(*days)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="'--to'") from exc
    settings = _settings()

    async def run() -> list[FunnelRow]:
        async with db.pool(settings.postgres) as pool, pool.acquire() as conn:
            return await funnel(conn, start=start, end=end, court=court)

    rows = _guarded(run)
    console.print(_table(rows, *days))
    console.print(_definitions())
    if csv_path is not None:
        try:
            # Excel reads UTF-8 only with a BOM; newline="" keeps the CSV's own CRLF line ends.
            csv_path.write_text(to_csv(rows), encoding="utf-8-sig", newline="")
        except OSError as exc:
            raise click.ClickException(f"cannot write {csv_path}: {exc}") from exc
        console.print(f"wrote {len(rows)} rows to {escape(str(csv_path))}")


def _table(rows: list[FunnelRow], first: date, last: date) -> Table:
    table = Table(title=f"Enforcement funnel {first} – {last} ({REPORT_ZONE.key} days)")
    table.add_column("court")
    for heading in (
        "vehicles watched",
        "alarms",
        "vehicles seized",
        "cases settled",
        "median min to seizure",
    ):
        table.add_column(heading, justify="right")
    for i, r in enumerate(rows):
        total = r.court is None
        table.add_row(
            escape(r.label), str(r.watched), str(r.alarms), str(r.seized), str(r.settled),
            format_minutes(r.median_minutes_to_seizure, missing="-"),
            style="bold" if total else None,
            end_section=i + 2 == len(rows) and rows[-1].court is None,  # a rule above the totals row
        )  # fmt: skip
    return table


def _definitions() -> Table:
    """What each figure counts, under the figures: a court quoting them can say what they are."""
    grid = Table.grid(padding=(0, 1))
    grid.title, grid.title_justify = "What is counted:", "left"
    grid.add_column(no_wrap=True, style="bold")
    grid.add_column()
    for figure, meaning in DEFINITIONS:
        grid.add_row(f"  {escape(figure)}:", escape(meaning))
    return grid


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    report(prog_name="seizewatch report")


if __name__ == "__main__":
    main()
