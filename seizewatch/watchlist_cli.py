"""``seizewatch watchlist``: watch entries of sealed vehicles — add, edit, release, list, history, import."""

from __future__ import annotations

import asyncio
import difflib
import getpass
import sys
import uuid
from collections import Counter
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import click
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from alerts import rosterstore
from seizewatch.common import console, guarded, settings_from_env
from seizewatch.settings import Settings
from streams import db, watchstore
from streams.errors import InvalidInput
from streams.localtime import DEFAULT_ZONE, shown
from streams.vehicles import Action, EntryStatus, PlateColour, Priority
from streams.watchimport import (
    VALUE_ALIASES,
    Rejected,
    Row,
    decode_csv,
    parse_validity,
    read_rows,
    write_rejects,
)
from streams.watchstore import ClosedReason

_LISTED = 20  # rejected rows shown on the terminal; the rejects file holds them all
_KNOWN_LISTED = 30  # known courts named in a warning about a new one
_NEVER = ("never", "无")  # --valid-until: the seal stays until released


@click.group()
def watchlist() -> None:
    """Watch entries of sealed vehicles."""


def _choices(field: str, values: list[str]) -> click.Choice[str]:
    """English values and their Chinese words (扣押, 紧急…), as in the CSV."""
    return click.Choice([*values, *VALUE_ALIASES[field]])


def _value(field: str, given: str) -> str:
    return str(VALUE_ALIASES[field].get(given, given))


async def _zone_of(conn: db.Connection, court: str) -> ZoneInfo:
    """The court's zone from the rosters, else the project's default (Asia/Shanghai)."""
    return (await rosterstore.court_zones(conn)).get(court, DEFAULT_ZONE)


def _when(text: str, option: str, field: str, zone: ZoneInfo) -> datetime:
    try:
        return parse_validity(text, field, zone)
    except ValueError as exc:
        raise InvalidInput("invalid_field", str(exc), field=option) from exc


async def _warn_new_courts(conn: db.Connection, courts: Counter[str]) -> None:
    """A warning, not a refusal, for a court never seen on a watch entry or a roster: most likely a typo.

    Nothing is said while no court is known at all (the first entries ever).
    """
    known = await watchstore.known_courts(conn)
    if not known:
        return
    for court, rows in sorted(courts.items()):
        if court in known:
            continue
        close = difflib.get_close_matches(court, known, n=1, cutoff=0.6)
        hint = f" — did you mean {close[0]!r}?" if close else ""
        where = f" ({rows} rows)" if rows > 1 else ""
        listed = sorted(known)[:_KNOWN_LISTED]
        more = f" … and {len(known) - len(listed)} more" if len(known) > len(listed) else ""
        console.print(
            f"[yellow]warning:[/] court {escape(repr(court))}{where} is new: on no watch entry and no"
            f" roster{escape(hint)}; known courts: {escape(', '.join(listed))}{more}",
            soft_wrap=True,
        )


@watchlist.command("add")
@click.argument("plate")
@click.option("--case", "case_number", required=True, help="Case number, e.g. (2024)浙1002执1234号.")
@click.option("--court", required=True, help="The court that sealed the vehicle.")
@click.option("--action", type=_choices("action", [a.value for a in Action]), default=Action.SEIZE.value)
@click.option(
    "--priority", type=_choices("priority", [p.value for p in Priority]), default=Priority.NORMAL.value
)
@click.option(
    "--colour", type=click.Choice([c.value for c in PlateColour]), default=PlateColour.UNKNOWN.value
)
@click.option("--vehicle", default="", help="Description: make, model, colour.")
@click.option(
    "--from",
    "valid_from",
    default=None,
    help="Start of validity: a date (from its start) or ISO time; local time.",
)
@click.option(
    "--until",
    default=None,
    help="End of the seal's validity: a date (2027-12-31: through that day) or ISO time.",
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
    valid_from: str | None,
    until: str | None,
    note: str,
    by: str,
) -> None:
    """Put a vehicle under watch. Dates are days in the court's time zone (Asia/Shanghai unless its roster
    says)."""
    settings = settings_from_env()

    async def run() -> watchstore.EntryRecord:
        async with db.pool(settings.postgres) as pool, pool.acquire() as conn:
            zone = await _zone_of(conn, court.strip())
            try:
                new = watchstore.NewEntry(
                    plate=plate,
                    case_number=case_number,
                    court=court,
                    action=Action(_value("action", action)),
                    priority=Priority(_value("priority", priority)),
                    plate_colour=PlateColour(colour),
                    vehicle=vehicle,
                    valid_from=_when(valid_from, "--from", "valid_from", zone) if valid_from else None,
                    valid_until=_when(until, "--until", "valid_until", zone) if until else None,
                    note=note,
                )
            except ValueError as exc:
                raise click.ClickException(str(exc)) from exc
            await _warn_new_courts(conn, Counter([new.court]))
            return await watchstore.add_entry(conn, new, by=by)

    record = guarded(run)
    console.print(f"added {record.entry.entry_id} {record.entry.plate.text} ({record.entry.action.value})")


@watchlist.command("edit")
@click.argument("entry_id", metavar="ENTRY", type=click.UUID)
@click.option("--action", type=_choices("action", [a.value for a in Action]), default=None)
@click.option("--priority", type=_choices("priority", [p.value for p in Priority]), default=None)
@click.option("--valid-from", default=None, help="A date (from its start) or an ISO time; local time.")
@click.option(
    "--valid-until", default=None, help="A date (2027-12-31: through that day), an ISO time, or 'never'."
)
@click.option("--note", default=None, help="Replaces the entry's note.")
@click.option("--reason", default="", help="Why, in words (kept in the history).")
@click.option("--by", default=getpass.getuser, show_default="current user", help="Who makes the change.")
def watchlist_edit(
    entry_id: uuid.UUID,
    action: str | None,
    priority: str | None,
    valid_from: str | None,
    valid_until: str | None,
    note: str | None,
    reason: str,
    by: str,
) -> None:
    """Change an active entry's action, priority, validity or note; the history keeps before and after,
    and the matchers and the traffic police's list follow within seconds."""
    if all(v is None for v in (action, priority, valid_from, valid_until, note)):
        raise click.UsageError(
            "nothing to change: give --action, --priority, --valid-from, --valid-until or --note"
        )
    settings = settings_from_env()

    async def run() -> tuple[ZoneInfo, dict[str, list[str | None]]]:
        async with db.pool(settings.postgres) as pool, pool.acquire() as conn:
            court = await conn.fetchval("SELECT court FROM watch_entries WHERE entry_id = $1", entry_id)
            zone = await _zone_of(conn, court or "")
            never = valid_until is not None and valid_until.strip().lower() in _NEVER
            edit = watchstore.EntryEdit(
                action=Action(_value("action", action)) if action else None,
                priority=Priority(_value("priority", priority)) if priority else None,
                valid_from=_when(valid_from, "--valid-from", "valid_from", zone) if valid_from else None,
                valid_until=(
                    _when(valid_until, "--valid-until", "valid_until", zone)
                    if valid_until and not never
                    else None
                ),
                no_expiry=never,
                note=note,
            )
            _, changes = await watchstore.edit_entry(conn, entry_id, edit, by=by, reason=reason)
            return zone, changes

    zone, changes = guarded(run)
    console.print(f"edited {entry_id}")
    for field, (before, after) in changes.items():
        console.print(f"  {field}: {_shown(field, before, zone)} → {_shown(field, after, zone)}")


def _shown(field: str, value: str | None, zone: ZoneInfo) -> str:
    if value is None:
        return "-"
    if field in ("valid_from", "valid_until"):
        return shown(datetime.fromisoformat(value), zone)
    return repr(value) if field == "note" else value


@watchlist.command("history")
@click.argument("entry_id", metavar="ENTRY", type=click.UUID)
def watchlist_history(entry_id: uuid.UUID) -> None:
    """The audit trail of an entry: every version, who made it and when (the court's local time), what
    changed."""
    settings = settings_from_env()

    async def run() -> tuple[ZoneInfo, list[watchstore.HistoryRow]]:
        async with db.pool(settings.postgres) as pool, pool.acquire() as conn:
            rows = await watchstore.entry_history(conn, entry_id)
            return await _zone_of(conn, str(rows[-1].snapshot["court"])), rows

    zone, rows = guarded(run)
    first = rows[0].snapshot
    console.print(
        f"[bold]{escape(first['plate'])}[/] {escape(first['case_number'])} {escape(first['court'])}"
    )
    table = Table("version", "when", "by", "change", "what", "reason")
    for r in rows:
        if r.changes:
            what = "; ".join(
                f"{field}: {_shown(field, b, zone)} → {_shown(field, a, zone)}"
                for field, (b, a) in r.changes.items()
            )
        else:
            s = r.snapshot
            until = _shown("valid_until", s["valid_until"], zone)
            since = _shown("valid_from", s["valid_from"], zone)
            what = f"{s['action']} {s['priority']} from {since} until {until}"
        table.add_row(str(r.version), shown(r.changed_at, zone), r.changed_by, r.change, what, r.reason)
    console.print(table)


@watchlist.command("release")
@click.argument("entry_id", metavar="[ENTRY]", type=click.UUID, required=False)
@click.option("--plate", default=None, help="With --case, instead of ENTRY: the vehicle's plate.")
@click.option(
    "--case", "case_number", default=None, help="With --plate: the case number, e.g. (2026)浙1002执123号."
)
@click.option("--reason", required=True, help="Why the seal is lifted, in words.")
@click.option(
    "--category",
    type=click.Choice([c.value for c in ClosedReason if c is not ClosedReason.SEIZED]),
    default=ClosedReason.OTHER.value,
    show_default=True,
    help="paid (已履行) and settled (执行和解) count as settled cases in the funnel report.",
)
@click.option("--by", default=getpass.getuser, show_default="current user")
def watchlist_release(
    entry_id: uuid.UUID | None,
    plate: str | None,
    case_number: str | None,
    reason: str,
    category: str,
    by: str,
) -> None:
    """Lift a seal: the vehicle leaves every matcher and the traffic police's list within seconds.

    Name the entry by its id, or by --plate and --case."""
    by_plate = plate is not None or case_number is not None
    if (entry_id is not None and by_plate) or (entry_id is None and not (plate and case_number)):
        raise click.UsageError("give ENTRY (the entry id), or both --plate and --case")
    settings = settings_from_env()

    async def run() -> watchstore.EntryRecord:
        async with db.pool(settings.postgres) as pool, pool.acquire() as conn:
            target = entry_id
            if target is None:
                assert plate is not None  # noqa: S101  # checked above
                assert case_number is not None  # noqa: S101  # checked above
                found = await watchstore.active_entry_for(
                    conn, plate, case_number, also=(EntryStatus.SEIZED_OTHER_CASE,)
                )
                target = found.entry.entry_id
            return await watchstore.release_entry(
                conn, target, by=by, reason=reason, closed=ClosedReason(category)
            )

    record = guarded(run)
    console.print(f"released {record.entry.entry_id} {record.entry.plate.text} {record.entry.case_number}")


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
    default=None,
    help="File encoding. Default: UTF-8 (with or without BOM), else GB18030 (GBK, as Excel on Chinese"
    " Windows saves).",
)
@click.option(
    "--rejects",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Where every rejected row goes, with its reason (default: NAME.rejects.csv beside the file).",
)
@click.option("--by", default=getpass.getuser, show_default="current user")
def watchlist_import(path: Path, encoding: str | None, rejects: Path | None, by: str) -> None:
    """Bulk-import watch entries from CSV (English or Chinese headers and values); each row stands alone,
    every rejected row goes to the rejects file with its reason, to fix and import again."""
    target = rejects or path.with_name(f"{path.stem}.rejects.csv")
    if target.resolve() == path.resolve():
        raise click.ClickException(
            f"the rejects file would overwrite the input {path}: give another --rejects"
        )
    settings = settings_from_env()
    try:
        text, used = decode_csv(path.read_bytes(), encoding)
    except InvalidInput as exc:
        raise click.ClickException(f"{path}: {exc}") from exc
    lines = text.splitlines(keepends=True)
    accepted, rejected, header = asyncio.run(_import(settings, lines, by))
    console.print(f"[bold]{escape(path.name)}[/] ({used}): {accepted} accepted, {len(rejected)} rejected")
    if rejected:
        try:
            written = write_rejects(target, header, rejected)
        except OSError as exc:
            raise click.ClickException(f"cannot write the rejects file {target}: {exc}") from exc
        by_reason = Counter(why.reason for _, why in rejected)
        table = Table("reason", "rows")
        for reason, n in by_reason.most_common():
            table.add_row(reason, str(n))
        console.print(table)
        for _, why in rejected[:_LISTED]:
            console.print(f"  line {why.line}: {escape(why.message)}", soft_wrap=True)
        if len(rejected) > _LISTED:
            console.print(f"  … and {len(rejected) - _LISTED} more")
        console.print(
            f"all {written} rejected rows, each with its reason: {escape(str(target))}", soft_wrap=True
        )
        sys.exit(1 if accepted == 0 else 0)


async def _import(
    settings: Settings, lines: list[str], by: str
) -> tuple[int, list[tuple[Row, Rejected]], tuple[str, ...]]:
    accepted = 0
    rejected: list[tuple[Row, Rejected]] = []
    async with db.pool(settings.postgres) as pool, pool.acquire() as conn:
        zones = await rosterstore.court_zones(conn)
        try:
            parsed = read_rows(lines, zone=DEFAULT_ZONE, court_zones=zones)
        except InvalidInput as exc:
            raise click.ClickException(str(exc)) from exc
        entries = [row.result for row in parsed.rows if isinstance(row.result, watchstore.NewEntry)]
        await _warn_new_courts(conn, Counter(entry.court for entry in entries))
        with Progress(
            TextColumn("importing"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
        ) as progress:
            task = progress.add_task("rows", total=len(parsed.rows))
            for row in parsed.rows:
                progress.advance(task)
                if isinstance(row.result, Rejected):
                    rejected.append((row, row.result))
                    continue
                try:
                    await watchstore.add_entry(conn, row.result, by=by)
                    accepted += 1
                except InvalidInput as exc:
                    rejected.append((row, Rejected(row.line, exc.reason, str(exc))))
    return accepted, rejected, parsed.header
