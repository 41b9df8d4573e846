"""``seizewatch traffic``: the list of vehicles the traffic police should stop (一键扣车), exported or shown.

Registered on the ``seizewatch`` group by ``cli.add_command(traffic)``; also runs alone as
``python -m seizewatch.traffic_cli``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from connectors.records import SHANGHAI
from connectors.traffic_export import ExportFormat, render, seizure_requests
from seizewatch.settings import Settings
from streams import db
from streams.errors import SeizewatchError
from streams.localtime import shown
from streams.traffic import SeizureRequestV1

T = TypeVar("T")
# Messages go to stderr: stdout may be the export itself.
console = Console(stderr=True)
_LIST_COLUMNS = (
    "court",
    "plate",
    "colour",
    "vehicle",
    "case",
    "priority",
    "requested",
    "until",
    "request id",
)
_NO_WRAP = frozenset({"plate", "requested", "until"})


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


def _requests(court: str | None) -> list[SeizureRequestV1]:
    settings = _settings()

    async def job() -> list[SeizureRequestV1]:
        async with db.pool(settings.postgres) as pool, pool.acquire() as conn:
            return await seizure_requests(conn, at=datetime.now(UTC), court=court)

    return _guarded(job)


def _court_option() -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return click.option("--court", default=None, help="Only this court's vehicles (default: every court).")


@click.group()
def traffic() -> None:
    """One-click seizure (一键扣车): the vehicles the traffic police should stop."""


@traffic.command("export")
@click.option(
    "--format",
    "fmt",
    type=click.Choice([f.value for f in ExportFormat]),
    default=ExportFormat.CSV.value,
    show_default=True,
    help="csv: UTF-8 with BOM (opens in Excel); json: an array of SeizureRequestV1.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    default=None,
    help="Write to this file (default: standard output).",
)
@_court_option()
def traffic_export(fmt: str, out: Path | None, court: str | None) -> None:
    """Every active seize entry in force now, sorted by court then plate."""
    requests = _requests(court)
    data = render(requests, ExportFormat(fmt))
    if out is None:
        click.get_binary_stream("stdout").write(data)
        return
    # Written whole, then renamed: a reader polling the file never sees half a list.
    partial = out.with_name(out.name + ".partial")
    partial.write_bytes(data)
    partial.replace(out)
    console.print(f"{len(requests)} vehicle{'' if len(requests) == 1 else 's'} written to {out}")


@traffic.command("list")
@_court_option()
def traffic_list(court: str | None) -> None:
    """Show the vehicles to stop now, as the export lists them."""
    requests = _requests(court)
    table = Table()
    # Narrow terminals fold text rather than cut it: a plate or a case number is never shown half.
    for heading in _LIST_COLUMNS:
        table.add_column(heading, overflow="fold", no_wrap=heading in _NO_WRAP)
    for r in requests:
        # As the export gives them: China Standard Time, with the offset.
        until = shown(r.valid_until, SHANGHAI) if r.valid_until else "-"
        cells = (
            r.court, r.plate, r.plate_colour.value, r.vehicle or "-", r.case_number, r.priority.value,
            shown(r.requested_at, SHANGHAI), until, str(r.request_id),
        )  # fmt: skip
        table.add_row(*(escape(cell) for cell in cells))  # clerks' text is not rich markup
    out = Console()
    out.print(table)
    out.print(f"{len(requests)} vehicle{'' if len(requests) == 1 else 's'} to stop")


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    traffic(prog_name="seizewatch traffic")


if __name__ == "__main__":
    main()
