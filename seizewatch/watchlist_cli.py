"""``seizewatch watchlist``: watch entries of sealed vehicles — add, release, list, bulk import."""

from __future__ import annotations

import asyncio
import getpass
import sys
import uuid
from collections import Counter
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from alerts import rosterstore
from seizewatch.common import console, guarded, settings_from_env
from seizewatch.settings import Settings
from streams import db, watchstore
from streams.errors import InvalidInput
from streams.localtime import DEFAULT_ZONE, shown
from streams.vehicles import Action, EntryStatus, PlateColour, Priority
from streams.watchimport import Rejected, read_rows
from streams.watchstore import ClosedReason


@click.group()
def watchlist() -> None:
    """Watch entries of sealed vehicles."""


@watchlist.command("add")
@click.argument("plate")
@click.option("--case", "case_number", required=True, help="Case number, e.g. (2024)浙1002执1234号.")
@click.option("--court", required=True, help="The court that sealed the vehicle.")
@click.option("--action", type=click.Choice([a.value for a in Action]), default=Action.SEIZE.value)
@click.option("--priority", type=click.Choice([p.value for p in Priority]), default=Priority.NORMAL.value)
@click.option(
    "--colour", type=click.Choice([c.value for c in PlateColour]), default=PlateColour.UNKNOWN.value
)
@click.option("--vehicle", default="", help="Description: make, model, colour.")
@click.option(
    "--until",
    type=click.DateTime(["%Y-%m-%d", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"]),
    default=None,
    help="End of the seal's validity, e.g. 2027-06-01 00:00 (the court's local time).",
)
@click.option("--note", default="")
@click.option("--by", default=getpass.getuser, show_default="current user", help="Who makes the change.")
def watchlist_add(
    plate: str,
    case_number: str,
    court: str,
    action: str,
    priority: str,
    colour: str,
    vehicle: str,
    until: datetime | None,
    note: str,
    by: str,
) -> None:
    """Put a vehicle under watch."""
    settings = settings_from_env()

    def entry(zone: ZoneInfo) -> watchstore.NewEntry:
        try:
            return watchstore.NewEntry(
                plate=plate,
                case_number=case_number,
                court=court,
                action=Action(action),
                priority=Priority(priority),
                plate_colour=PlateColour(colour),
                vehicle=vehicle,
                # The court's wall clock, not the zone of the machine the command runs on.
                valid_until=until.replace(tzinfo=zone) if until else None,
                note=note,
            )
        except ValueError as exc:
            raise click.ClickException(str(exc)) from exc

    entry(DEFAULT_ZONE)  # refuse a bad plate before connecting

    async def run() -> watchstore.EntryRecord:
        async with db.pool(settings.postgres) as pool, pool.acquire() as conn:
            zone = (await rosterstore.court_zones(conn)).get(court, DEFAULT_ZONE)
            return await watchstore.add_entry(conn, entry(zone), by=by)

    record = guarded(run)
    console.print(f"added {record.entry.entry_id} {record.entry.plate.text} ({record.entry.action.value})")


@watchlist.command("release")
@click.argument("entry_id", type=click.UUID)
@click.option("--reason", required=True, help="Why the seal is lifted, in words.")
@click.option(
    "--category",
    type=click.Choice([c.value for c in ClosedReason if c is not ClosedReason.SEIZED]),
    default=ClosedReason.OTHER.value,
    show_default=True,
    help="paid (已履行) and settled (执行和解) count as settled cases in the funnel report.",
)
@click.option("--by", default=getpass.getuser, show_default="current user")
def watchlist_release(entry_id: uuid.UUID, reason: str, category: str, by: str) -> None:
    """Lift a seal: the vehicle leaves every matcher and the traffic police's list within seconds."""
    settings = settings_from_env()

    async def run() -> watchstore.EntryRecord:
        async with db.pool(settings.postgres) as pool, pool.acquire() as conn:
            return await watchstore.release_entry(
                conn, entry_id, by=by, reason=reason, closed=ClosedReason(category)
            )

    record = guarded(run)
    console.print(f"released {record.entry.entry_id} {record.entry.plate.text}")


@watchlist.command("list")
@click.option("--status", type=click.Choice([*(s.value for s in EntryStatus), "all"]), default="active")
@click.option("--court", default=None)
@click.option("--plate", default=None)
@click.option("--limit", type=click.IntRange(1, 100_000), default=100)
def watchlist_list(status: str, court: str | None, plate: str | None, limit: int) -> None:
    """List watch entries, latest change first."""
    settings = settings_from_env()

    async def run() -> tuple[list[watchstore.EntryRecord], dict[str, ZoneInfo]]:
        async with db.pool(settings.postgres) as pool, pool.acquire() as conn:
            records = await watchstore.list_entries(
                conn,
                status=None if status == "all" else EntryStatus(status),
                court=court,
                plate=plate,
                limit=limit,
            )
            return records, await rosterstore.court_zones(conn)

    records, zones = guarded(run)
    table = Table("entry", "plate", "case", "court", "action", "priority", "status", "until", "changed")
    for r in records:
        e = r.entry
        zone = zones.get(e.court, DEFAULT_ZONE)  # each entry in its court's time, with the offset
        until = shown(e.valid_until, zone) if e.valid_until else "-"
        table.add_row(
            str(e.entry_id), e.plate.text, e.case_number, e.court, e.action.value, e.priority.value,
            e.status.value, until, f"{shown(r.updated_at, zone)} {r.updated_by}",
        )  # fmt: skip
    console.print(table)
    console.print(f"{len(records)} entr{'y' if len(records) == 1 else 'ies'}")


@watchlist.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--encoding",
    default="utf-8-sig",
    show_default=True,
    help="File encoding; Excel exports from Chinese Windows are often gbk (or gb18030).",
)
@click.option("--by", default=getpass.getuser, show_default="current user")
def watchlist_import(path: Path, encoding: str, by: str) -> None:
    """Bulk-import watch entries from CSV; each row stands alone, rejected rows are listed with reasons."""
    settings = settings_from_env()
    try:
        text = path.read_text(encoding=encoding)
    except UnicodeDecodeError as exc:
        raise click.ClickException(f"{path} is not {encoding} text ({exc}); try --encoding gbk") from exc
    lines = text.splitlines(keepends=True)
    accepted, rejected = asyncio.run(_import(settings, lines, by))
    console.print(f"[bold]{path.name}[/]: {accepted} accepted, {len(rejected)} rejected")
    if rejected:
        by_reason = Counter(r.reason for r in rejected)
        table = Table("reason", "rows")
        for reason, n in by_reason.most_common():
            table.add_row(reason, str(n))
        console.print(table)
        for r in rejected[:50]:
            console.print(f"  line {r.line}: {r.message}")
        if len(rejected) > 50:
            console.print(f"  … and {len(rejected) - 50} more")
        sys.exit(1 if accepted == 0 else 0)


async def _import(settings: Settings, lines: list[str], by: str) -> tuple[int, list[Rejected]]:
    accepted = 0
    rejected: list[Rejected] = []
    async with db.pool(settings.postgres) as pool, pool.acquire() as conn:
        with Progress(
            TextColumn("importing"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
        ) as progress:
            task = progress.add_task("rows", total=max(len(lines) - 1, 0))
            try:
                rows = list(read_rows(lines))
            except InvalidInput as exc:
                raise click.ClickException(str(exc)) from exc
            for line, row in rows:
                progress.advance(task)
                if isinstance(row, Rejected):
                    rejected.append(row)
                    continue
                try:
                    await watchstore.add_entry(conn, row, by=by)
                    accepted += 1
                except InvalidInput as exc:
                    rejected.append(Rejected(line, exc.reason, str(exc)))
    return accepted, rejected
