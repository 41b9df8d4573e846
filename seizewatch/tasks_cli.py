"""``seizewatch tasks``: seizure tasks from the command line, with the same rules as the API."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import click
from rich.console import Console
from rich.table import Table

from alerts import tasks, taskviews
from alerts.rosterstore import load_roster
from seizewatch.settings import Settings
from streams import db
from streams.localtime import shown

console = Console()


def _run(job: object) -> None:
    try:
        asyncio.run(job)  # type: ignore[arg-type]  # a coroutine built by the command
    except (taskviews.NotAllowed, tasks.TaskError) as exc:
        raise click.ClickException(str(exc)) from exc


@click.group("tasks")
def tasks_group() -> None:
    """Seizure tasks: one per watched vehicle that was sighted, from first alarm to seizure."""


@tasks_group.command("list")
@click.option("--officer", required=True, help="The officer asking (sees their court's tasks and their own).")
@click.option("--district", default=None)
@click.option("--all", "everything", is_flag=True, help="Closed tasks too.")
def list_command(officer: str, district: str | None, everything: bool) -> None:
    """Open tasks, latest sighting first."""
    settings = Settings.from_env()

    async def run() -> None:
        async with db.pool(settings.postgres) as pool, pool.acquire() as conn:
            who = taskviews.officer_of(await load_roster(conn), officer)
            views = await taskviews.list_tasks(conn, who, district=district, live_only=not everything)
        table = Table("task", "plate", "state", "kind", "district", "last seen", "where", "assignee")
        for v in views:
            seen = shown(v.last_seen_at, v.zone)  # the court's time, with its offset
            table.add_row(
                str(v.task_id),
                v.plate,
                v.state,
                v.kind,
                v.district or "-",
                seen,
                # A stopped vehicle is where the police hold it, whatever a camera saw last.
                (v.stopped_place if v.state == "stopped" else v.last_place) or "-",
                v.assignee or "-",
            )
        console.print(table)
        console.print(f"{len(views)} task(s)")

    _run(run())


@tasks_group.command("show")
@click.argument("task_id", type=click.UUID)
@click.option("--officer", required=True)
def show_command(task_id: uuid.UUID, officer: str) -> None:
    """A task with its trail and every change of state."""
    settings = Settings.from_env()

    async def run() -> None:
        async with db.pool(settings.postgres) as pool, pool.acquire() as conn:
            who = taskviews.officer_of(await load_roster(conn), officer)
            view = await taskviews.get_task(conn, who, task_id)
            trail, events = await taskviews.trail_and_events_at(conn, task_id)
        zone = view.zone
        console.print(f"[bold]{view.plate}[/] {view.case_number} ({view.court}) — {view.state}, {view.kind}")
        for case in view.cases[1:]:  # the vehicle's other cases
            console.print(f"  also case {case.case_number} ({case.court}) — {case.status}")
        console.print(
            f"  first seen {shown(view.first_seen_at, zone)}, last {shown(view.last_seen_at, zone)}"
        )
        for point in trail:
            console.print(f"  seen {shown(point['at'], zone)} at {point['place']} ({point['outcome']})")
        for event in events:
            console.print(
                f"  {shown(event['at'], zone)} {event['from'] or '-'} → {event['to']}"
                f" by {event['by']} via {event['via']}"
                f"{_note(event['detail'])}"
            )
        if view.stopped_at is not None:
            console.print(
                f"  stopped (已拦停) {shown(view.stopped_at, zone)} at {view.stopped_place}"
                f", held by {view.stopped_by}"
            )
        if view.custody:
            held = [view.custody, view.custody_kind, view.custody_address]
            console.print(f"  custody: {', '.join(h for h in held if h)}")

    _run(run())


def _note(detail: dict[str, object]) -> str:
    """What an event says besides its states: a custody amended, a take, who was told."""
    notes = []
    if detail.get("event") == "custody" and isinstance(custody := detail.get("custody"), dict):
        notes.append(f"custody: {custody.get('name')}")
    if detail.get("event") == "taken_over":
        notes.append(f"taken over from {detail.get('from') or '-'}")
    if told := detail.get("told"):
        notes.append(f"told {', '.join(str(t) for t in told) if isinstance(told, list) else told}")
    return f" ({'; '.join(notes)})" if notes else ""


@tasks_group.command("state")
@click.argument("task_id", type=click.UUID)
@click.argument("state", type=click.Choice(["acknowledged", "en_route", "seized", "not_found", "cancelled"]))
@click.option("--officer", required=True)
@click.option("--custody-kind", type=click.Choice(["impound_lot", "custodian"]), default=None)
@click.option("--custody-name", default=None, help="Impound lot or custodian holding the vehicle.")
@click.option("--custody-address", default=None)
def state_command(
    task_id: uuid.UUID,
    state: str,
    officer: str,
    custody_kind: str | None,
    custody_name: str | None,
    custody_address: str | None,
) -> None:
    """Take a task (acknowledged) or move it on; seized needs --custody-kind and --custody-name."""
    settings = Settings.from_env()
    custody = tasks.Custody(custody_kind, custody_name, custody_address) if custody_kind else None

    async def run() -> None:
        async with db.pool(settings.postgres) as pool, pool.acquire() as conn:
            who = taskviews.officer_of(await load_roster(conn), officer)
            view = await taskviews.set_state(
                conn, who, task_id, state, channel="cli", now=datetime.now(UTC), custody=custody
            )
        console.print(f"{view.plate}: {view.state}")

    _run(run())


@tasks_group.command("custody")
@click.argument("task_id", type=click.UUID)
@click.option("--officer", required=True)
@click.option("--place", required=True, help="The impound lot or custodian where the vehicle is kept.")
@click.option("--kind", type=click.Choice(["impound_lot", "custodian"]), default=None)
@click.option("--address", default=None)
def custody_command(
    task_id: uuid.UUID, officer: str, place: str, kind: str | None, address: str | None
) -> None:
    """Record, or correct, where the vehicle of a seized task is kept (a seizure by SMS may not say).

    A kind or address left out is kept only when the place stays the same.
    """
    settings = Settings.from_env()

    async def run() -> None:
        async with db.pool(settings.postgres) as pool, pool.acquire() as conn:
            who = taskviews.officer_of(await load_roster(conn), officer)
            view = await taskviews.amend_custody(
                conn, who, task_id, tasks.Custody(kind, place, address), channel="cli", now=datetime.now(UTC)
            )
        console.print(f"{view.plate}: custody {view.custody}")

    _run(run())
