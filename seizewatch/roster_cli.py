"""``seizewatch roster``: import a roster, see who is on duty, overrides and replacements, validation.

Registered on the ``seizewatch`` group by ``cli.add_command(roster)``; also runs alone as
``python -m seizewatch.roster_cli`` (the integration tests do).
"""

from __future__ import annotations

import asyncio
import getpass
import logging
import sys
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from alerts import rosterstore
from alerts.rosters import (
    DEFAULT_TIMEZONE,
    GROUP_ROLES,
    GroupOverride,
    MemberOverride,
    Officer,
    Role,
    Roster,
    time_zone,
)
from alerts.routing import StepKind, plan_sighting, resolve
from seizewatch.settings import Settings
from streams import db
from streams.errors import InvalidInput, SeizewatchError
from streams.localtime import parse_when, shown
from streams.vehicles import Action, Priority

T = TypeVar("T")
console = Console()
_LISTED = 10  # rows an import lists by key, per table and kind of change


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


def _with_connection(settings: Settings, work: Callable[[db.Connection], Coroutine[Any, Any, T]]) -> T:
    async def job() -> T:
        async with db.pool(settings.postgres) as pool, pool.acquire() as conn:
            return await work(conn)

    return _guarded(job)


def _when(text: str, option: str) -> datetime:
    """``2026-11-23 21:00`` (local, naive) or ISO 8601 with an offset."""
    try:
        return datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise click.BadParameter(f"{text!r}: expected e.g. 2026-11-23 21:00", param_hint=option) from exc


def _instant(text: str, *, now: datetime, zone: ZoneInfo) -> datetime:
    """``--at`` as an instant: ISO 8601, or ``21:00`` / ``明天 21:00`` / ``tomorrow 21:00`` around ``now``."""
    try:
        return parse_when(text, now=now, zone=zone)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="'--at'") from exc


def _localized(value: datetime, zone: ZoneInfo) -> datetime:
    """A naive time is read as wall-clock time in ``zone``."""
    return value if value.utcoffset() is not None else value.replace(tzinfo=zone)


def _by_option() -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return click.option(
        "--by", default=getpass.getuser, show_default="current user", help="Who makes the change."
    )


@click.group()
def roster() -> None:
    """Duty rosters: courts, officers, 1+1+1 duty groups, overrides, night contacts."""


@roster.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@_by_option()
def roster_import(path: Path, by: str) -> None:
    """Insert or update the roster from one JSON document (see deploy/examples/roster.json)."""
    try:
        doc = rosterstore.parse_document(path.read_bytes())
    except InvalidInput as exc:
        raise click.ClickException(f"{path.name}: {exc}") from exc

    async def work(conn: db.Connection) -> rosterstore.ImportReport:
        return await rosterstore.import_roster(conn, doc, by=by)

    report = _with_connection(_settings(), work)
    table = Table("table", "inserted", "updated", "removed", "unchanged")
    for name, changes in report.tables.items():
        table.add_row(
            name, str(len(changes.inserted)), str(len(changes.updated)), str(len(changes.removed)),
            str(changes.unchanged),
        )  # fmt: skip
    console.print(table)
    for name, changes in report.tables.items():
        for verb, keys in (
            ("inserted", changes.inserted),
            ("updated", changes.updated),
            ("removed", changes.removed),
        ):
            if len(keys) > _LISTED:  # a first import inserts everything: the counts say it
                console.print(f"  {name} {verb}: {len(keys)} rows")
                continue
            for key in keys:
                console.print(f"  {name} {verb}: {escape(key)}")
    console.print(f"[bold]{path.name}[/]: {'imported' if report.changed else 'nothing changed'}")
    for line in report.kept:
        console.print(f"[yellow]note[/]: {escape(line)}")
    if report.problems:
        console.print(f"[yellow]{len(report.problems)} problem(s) in the roster as imported:[/]")
        for problem in report.problems:
            console.print(f"  - {escape(problem)}")


@roster.command("who")
@click.option("--court", default=None, help="Only this court (default: every court).")
@click.option(
    "--at",
    "at_text",
    default=None,
    help='Instant: "21:00" (today), "明天 21:00", "今天 08:30", "tomorrow 21:00" or "2026-11-23 21:00"'
    " (default: now).",
)
@click.option(
    "--tz", default=DEFAULT_TIMEZONE, show_default=True, help="Time zone of --at: its today, its wall clock."
)
@click.option("--district", default=None, help="Also show whom a hit seen in this district would page first.")
@click.option(
    "--owner", default=None, help="Owning court of that hit (default: a court covering the district)."
)
@click.option("--priority", type=click.Choice([p.value for p in Priority]), default=Priority.NORMAL.value)
def roster_who(
    court: str | None, at_text: str | None, tz: str, district: str | None, owner: str | None, priority: str
) -> None:
    """Who is on duty in each court at an instant, the night contacts in force, and what a hit would page."""
    try:
        zone = time_zone(tz)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--tz") from exc
    at = _instant(at_text, now=datetime.now(UTC), zone=zone) if at_text is not None else datetime.now(UTC)
    snapshot = _with_connection(_settings(), rosterstore.load_roster)
    courts = [c for c in snapshot.courts if court is None or c.court_id == court]
    if court is not None and not courts:
        raise click.ClickException(f"no court {court!r} on the roster")
    console.print(f"[bold]On duty at {shown(at, zone)}[/] ({zone.key})")
    _print_duty(snapshot, [c.court_id for c in courts], at)
    _print_night(snapshot, at)
    if district is not None:
        _print_first_step(snapshot, at, zone, district, owner, Priority(priority))


def _contact(officer: Officer | None, officer_id: str | None) -> tuple[str, str, str]:
    """(who, phone, problem) for a table row."""
    if officer is None:
        return (officer_id or "-", "", "not on the roster" if officer_id else "missing")
    return (str(officer), officer.phone or "", officer.unreachable or "")


def _print_duty(snapshot: Roster, court_ids: list[str], at: datetime) -> None:
    table = Table("court", "group", "shift", "role", "officer", "phone", "note")
    for court_id in court_ids:
        court = snapshot.court(court_id)
        shift = snapshot.shift(court_id, at)
        if court is None or shift is None:
            table.add_row(escape(court_id), "-", "-", "-", "-", "-", "[red]no duty group[/]")
            continue
        span = f"{shown(shift.starts_at, court.zone)} → {shown(shift.ends_at, court.zone)}"
        group_note = ""
        override = shift.group_override
        if override is not None:
            reason = f": {escape(override.reason)}" if override.reason else ""
            group_note = (
                f"group override #{override.override_id}{reason} (rostered: {shift.rostered_group_id})"
            )
        for i, (role, officer_id) in enumerate(shift.group.members):
            who, phone, problem = _contact(snapshot.officer(officer_id) if officer_id else None, officer_id)
            replaced = shift.override_for(role)
            notes = [group_note] if i == 0 and group_note else []
            if replaced is not None:
                notes.append(
                    f"replacement #{replaced.override_id}"
                    + (f": {replaced.reason}" if replaced.reason else "")
                )
            if problem:
                notes.append(f"[red]{escape(problem)}[/]")
            first = i == 0
            table.add_row(
                escape(court_id) if first else "",
                escape(shift.group.label) if first else "",
                span if first else "",
                role.value,
                escape(who),
                phone,
                "; ".join(notes),
            )
    console.print(table)


def _print_night(snapshot: Roster, at: datetime) -> None:
    if not snapshot.night_contacts:
        console.print("no night contacts on the roster")
        return
    table = Table("district", "station", "contact", "phone", "window", "at this time", "note")
    for cover in snapshot.night_contacts:
        who, phone, problem = _contact(snapshot.officer(cover.officer_id), cover.officer_id)
        state = "[bold]in force[/]" if cover.covers(at) else "-"
        table.add_row(
            cover.district, escape(cover.station), escape(who), phone, cover.window, state,
            f"[red]{escape(problem)}[/]" if problem else "",
        )  # fmt: skip
    console.print(table)


def _print_first_step(
    snapshot: Roster, at: datetime, zone: ZoneInfo, district: str, owner: str | None, priority: Priority
) -> None:
    covering = snapshot.courts_covering(district)
    owning = owner or (covering[0] if covering else None)
    if owning is None:
        raise click.ClickException(f"no court covers district {district}: name the owning court with --owner")
    plan = plan_sighting(
        snapshot, at, district=district, owner=owning, action=Action.SEIZE, priority=priority
    )
    console.print(
        f"[bold]A hit seen in {escape(district)} at this time[/] (vehicle of {escape(owning)}, priority"
        f" {priority.value}, {'night' if plan.night else 'day'}) pages at step 1:"
    )
    first = next(s for s in plan.steps if s.kind is StepKind.FIRST)
    resolution = resolve(first, snapshot, at)
    for officer in resolution.recipients:
        console.print(f"  → {escape(str(officer))} {officer.phone} ({officer.role.value})")
    for who, why in resolution.unreachable:
        console.print(f"  [red]✗ {escape(str(who))}: {escape(why)}[/]")
    if resolution.nobody:
        console.print("  [red]nobody can be texted at step 1[/]")
    for target in plan.deferred:
        until = f" at {shown(plan.deferred_until, zone)}" if plan.deferred_until else ""
        console.print(f"  told{until}, not woken: {escape(str(target))}")
    for note in plan.notes:
        console.print(f"  note: {escape(note)}")


@roster.command("override")
@click.option("--court", required=True)
@click.option("--group", "group_id", required=True, help="The group that takes the duty.")
@click.option("--from", "starts_text", required=True, help='Start, e.g. "2026-11-23 08:30" (court time).')
@click.option("--to", "ends_text", required=True, help="End (exclusive).")
@click.option("--reason", default="")
@_by_option()
def roster_override(
    court: str, group_id: str, starts_text: str, ends_text: str, reason: str, by: str
) -> None:
    """Give a court's duty to another of its groups for a period."""
    starts, ends = _when(starts_text, "--from"), _when(ends_text, "--to")

    async def work(conn: db.Connection) -> GroupOverride:
        zone = await _zone_of(conn, "SELECT timezone FROM courts WHERE court_id = $1", court)
        return await rosterstore.add_group_override(
            conn,
            court_id=court,
            group_id=group_id,
            starts_at=_localized(starts, zone),
            ends_at=_localized(ends, zone),
            by=by,
            reason=reason,
        )

    made = _with_connection(_settings(), work)
    console.print(f"group override #{made.override_id}: {made.group_id} on duty for {made.court_id}")


@roster.command("replace")
@click.option("--group", "group_id", required=True)
@click.option("--role", type=click.Choice([r.value for r in GROUP_ROLES]), required=True)
@click.option("--officer", "officer_id", required=True, help="The replacement.")
@click.option("--from", "starts_text", required=True, help='Start, e.g. "2026-11-23 08:30" (court time).')
@click.option("--to", "ends_text", required=True, help="End (exclusive).")
@click.option("--reason", default="")
@_by_option()
def roster_replace(
    group_id: str, role: str, officer_id: str, starts_text: str, ends_text: str, reason: str, by: str
) -> None:
    """Replace one member of a duty group for a period."""
    starts, ends = _when(starts_text, "--from"), _when(ends_text, "--to")

    async def work(conn: db.Connection) -> MemberOverride:
        zone = await _zone_of(
            conn,
            "SELECT c.timezone FROM duty_groups g JOIN courts c USING (court_id) WHERE g.group_id = $1",
            group_id,
        )
        return await rosterstore.replace_member(
            conn,
            group_id=group_id,
            role=Role(role),
            officer_id=officer_id,
            starts_at=_localized(starts, zone),
            ends_at=_localized(ends, zone),
            by=by,
            reason=reason,
        )

    made = _with_connection(_settings(), work)
    console.print(
        f"member override #{made.override_id}: {made.officer_id} is {made.group_id}'s {made.role.value}"
    )


async def _zone_of(conn: db.Connection, sql: str, key: str) -> ZoneInfo:
    name = await conn.fetchval(sql, key)
    if name is None:
        raise InvalidInput("not_found", f"{key!r} is not on the roster")
    return time_zone(name)


@roster.command("cancel")
@click.argument("override_id", type=int)
@click.option("--member", is_flag=True, help="A member override (default: a group override).")
def roster_cancel(override_id: int, member: bool) -> None:
    """Delete an override (`roster who` shows their numbers)."""

    async def work(conn: db.Connection) -> GroupOverride | MemberOverride:
        return await rosterstore.cancel_override(conn, member=member, override_id=override_id)

    _with_connection(_settings(), work)
    console.print(f"{'member' if member else 'group'} override #{override_id} cancelled")


@roster.command("deactivate")
@click.argument("officer_id")
@_by_option()
def roster_deactivate(officer_id: str, by: str) -> None:
    """Mark an officer inactive (validate then names the groups that still count on them)."""
    _set_active(officer_id, active=False, by=by)


@roster.command("activate")
@click.argument("officer_id")
@_by_option()
def roster_activate(officer_id: str, by: str) -> None:
    """Mark an officer active again."""
    _set_active(officer_id, active=True, by=by)


def _set_active(officer_id: str, *, active: bool, by: str) -> None:
    async def work(conn: db.Connection) -> Officer:
        return await rosterstore.set_officer_active(conn, officer_id, active, by=by)

    officer = _with_connection(_settings(), work)
    console.print(f"{officer} is {'active' if officer.active else 'inactive'}")


@roster.command("validate")
def roster_validate() -> None:
    """Print every problem of the roster; exit 1 when there is any."""
    snapshot = _with_connection(_settings(), rosterstore.load_roster)
    problems = snapshot.validate()
    for problem in problems:
        console.print(f"- {escape(problem)}")
    counts = (
        f"{len(snapshot.courts)} courts, {len(snapshot.officers)} officers, {len(snapshot.groups)} groups"
    )
    if problems:
        console.print(f"[red]{len(problems)} problem(s)[/] ({counts})")
        sys.exit(1)
    console.print(f"roster is sound ({counts})")


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    roster(prog_name="seizewatch roster")


if __name__ == "__main__":
    main()
