"""The ``seizewatch`` command: local services, topics, database, matcher worker, watchlist, demo."""

from __future__ import annotations

import asyncio
import getpass
import logging
import sys
import uuid
from collections import Counter
from collections.abc import Callable, Coroutine
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from connectors.registry import (
    AuthMethod,
    Connector,
    Source,
    add_source,
    get_source,
    rotate_source_key,
    upsert_devices,
)
from seizewatch.settings import Settings
from streams import db, watchstore
from streams.errors import InvalidInput, SeizewatchError
from streams.topics import TOPICS, ensure_topics
from streams.vehicles import Action, EntryStatus, PlateColour, Priority
from streams.watchimport import Rejected, read_rows
from streams.watchstore import ClosedReason

T = TypeVar("T")
console = Console()
log = logging.getLogger("seizewatch")


def _settings() -> Settings:
    try:
        return Settings.from_env()
    except SeizewatchError as exc:
        raise click.ClickException(str(exc)) from exc


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Log at DEBUG.")
def cli(verbose: bool) -> None:
    """seizewatch: catches court-sealed vehicles where they show up."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("aiokafka", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


# --- local services -----------------------------------------------------------------------------------


@cli.group()
def services() -> None:
    """The local Kafka and PostgreSQL (development, tests, demo)."""


@services.command("up")
def services_up() -> None:
    """Install what is missing, start Kafka and PostgreSQL, create topics, migrate. Idempotent."""
    from seizewatch.localservices import LocalServices

    settings = _settings()
    LocalServices(settings).up()
    asyncio.run(_prepare(settings))
    console.print(f"services up: Kafka at {settings.kafka.bootstrap_servers}, PostgreSQL ready")


async def _prepare(settings: Settings) -> None:
    created = await ensure_topics(settings.kafka)
    if created:
        log.info("created topics: %s", ", ".join(created))
    async with db.pool(settings.postgres) as pool, pool.acquire() as conn:
        await db.migrate(conn)


@services.command("down")
def services_down() -> None:
    """Stop Kafka and PostgreSQL (data stays)."""
    from seizewatch.localservices import LocalServices

    LocalServices(_settings()).down()


@services.command("status")
def services_status() -> None:
    from seizewatch.localservices import LocalServices

    for name, state in LocalServices(_settings()).status().items():
        console.print(f"{name:10} {state}")


@services.command("wipe")
@click.confirmation_option(prompt="Stop the local services and delete all their data?")
def services_wipe() -> None:
    """Stop the local services and delete their data directory."""
    from seizewatch.localservices import LocalServices

    LocalServices(_settings()).wipe()


# --- topics and database ------------------------------------------------------------------------------


@cli.group()
def topics() -> None:
    """Kafka topics as declared in streams/topics.py."""


@topics.command("ensure")
def topics_ensure() -> None:
    """Create the declared topics that are missing."""
    settings = _settings()
    created = asyncio.run(ensure_topics(settings.kafka))
    console.print(f"created: {', '.join(created) or 'nothing (all present)'}")


@topics.command("list")
def topics_list() -> None:
    """The declared topics and what they carry."""
    settings = _settings()
    table = Table("topic", "partitions", "config", "purpose")
    for t in TOPICS:
        config = ", ".join(f"{k}={v}" for k, v in t.config.items())
        table.add_row(settings.kafka.topic(t.name), str(t.partitions), config, t.purpose)
    console.print(table)


@cli.group("db")
def database() -> None:
    """The PostgreSQL schema."""


@database.command("migrate")
def db_migrate() -> None:
    """Apply the migrations in deploy/migrations that are not applied yet."""
    settings = _settings()

    async def run() -> list[str]:
        async with db.pool(settings.postgres) as pool, pool.acquire() as conn:
            return await db.migrate(conn)

    applied = asyncio.run(run())
    console.print(f"applied: {', '.join(applied) or 'nothing (up to date)'}")


# --- the matcher worker -------------------------------------------------------------------------------


@cli.command()
def worker() -> None:
    """Run a matcher worker (faust): sightings in, hits out. Serves /metrics."""
    import faust
    from prometheus_client import start_http_server

    from streams.app import create_app
    from streams.topics import HITS, SIGHTINGS, SIGHTINGS_DLQ, WATCHLIST_CHANGES, missing_topics

    settings = _settings()
    missing = asyncio.run(missing_topics(settings.kafka, [SIGHTINGS, SIGHTINGS_DLQ, WATCHLIST_CHANGES, HITS]))
    if missing:
        raise click.ClickException(f"missing topics {missing}: run `seizewatch topics ensure`")
    server, _ = start_http_server(settings.metrics.port, settings.metrics.host)
    log.info("metrics on http://%s:%d/metrics", settings.metrics.host, server.server_port)
    datadir = settings.local.home.resolve() / "faust"
    app, runtime = create_app(settings.kafka, settings.postgres, settings.match, datadir=datadir)
    # quiet: no banner and no terminal spinner; our logging configuration stays in charge.
    faust.Worker(app, runtime, loglevel="INFO", override_logging=False, quiet=True).execute_from_commandline()


# --- watchlist ----------------------------------------------------------------------------------------


@cli.group()
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
@click.option("--until", type=click.DateTime(), default=None, help="End of the seal's validity (local time).")
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
    settings = _settings()
    try:
        new = watchstore.NewEntry(
            plate=plate,
            case_number=case_number,
            court=court,
            action=Action(action),
            priority=Priority(priority),
            plate_colour=PlateColour(colour),
            vehicle=vehicle,
            valid_until=until.astimezone() if until else None,
            note=note,
        )
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc

    async def run() -> watchstore.EntryRecord:
        async with db.pool(settings.postgres) as pool, pool.acquire() as conn:
            return await watchstore.add_entry(conn, new, by=by)

    record = _guarded(run)
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
    settings = _settings()

    async def run() -> watchstore.EntryRecord:
        async with db.pool(settings.postgres) as pool, pool.acquire() as conn:
            return await watchstore.release_entry(
                conn, entry_id, by=by, reason=reason, closed=ClosedReason(category)
            )

    record = _guarded(run)
    console.print(f"released {record.entry.entry_id} {record.entry.plate.text}")


@watchlist.command("list")
@click.option("--status", type=click.Choice([*(s.value for s in EntryStatus), "all"]), default="active")
@click.option("--court", default=None)
@click.option("--plate", default=None)
@click.option("--limit", type=click.IntRange(1, 100_000), default=100)
def watchlist_list(status: str, court: str | None, plate: str | None, limit: int) -> None:
    """List watch entries, latest change first."""
    settings = _settings()

    async def run() -> list[watchstore.EntryRecord]:
        async with db.pool(settings.postgres) as pool, pool.acquire() as conn:
            return await watchstore.list_entries(
                conn,
                status=None if status == "all" else EntryStatus(status),
                court=court,
                plate=plate,
                limit=limit,
            )

    records = _guarded(run)
    table = Table("entry", "plate", "case", "court", "action", "priority", "status", "until", "changed by")
    for r in records:
        e = r.entry
        until = e.valid_until.astimezone().strftime("%Y-%m-%d") if e.valid_until else "-"
        table.add_row(
            str(e.entry_id), e.plate.text, e.case_number, e.court, e.action.value, e.priority.value,
            e.status.value, until, f"{r.updated_by} {r.updated_at.astimezone():%Y-%m-%d %H:%M}",
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
    settings = _settings()
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


def _guarded(job: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a database job; an error of ours becomes a clear message and exit code 1."""
    try:
        return asyncio.run(job())
    except SeizewatchError as exc:
        raise click.ClickException(str(exc)) from exc


# --- connectors ---------------------------------------------------------------------------------------


@cli.command()
def ingest() -> None:
    """Serve the HTTP connectors (parking, GA/T 1400, ISAPI) and /metrics on SEIZEWATCH_INGEST_PORT."""
    import uvicorn

    from connectors.server import build_app

    settings = _settings()
    if settings.ingest.master_key is None:
        raise click.ClickException(
            "SEIZEWATCH_INGEST_MASTER_KEY is not set: the connectors cannot authenticate"
        )
    app = build_app(settings.kafka, settings.postgres, settings.ingest)
    uvicorn.run(app, host=settings.ingest.host, port=settings.ingest.port, log_config=None, access_log=False)


@cli.command()
def pager() -> None:
    """Run the pager: hits → pages → SMS, escalation, status callbacks and replies (SEIZEWATCH_PAGER_PORT)."""
    import uvicorn

    from alerts.service import build_provider
    from alerts.webhooks import create_app as create_pager_app

    settings = _settings()
    app = create_pager_app(
        settings.kafka, settings.postgres, settings.pager, settings.twilio, build_provider(settings.twilio)
    )
    uvicorn.run(app, host=settings.pager.host, port=settings.pager.port, log_config=None, access_log=False)


@cli.group()
def sources() -> None:
    """Feeds allowed to send reads, and their credentials."""


@sources.command("add")
@click.argument("source_id")
@click.option("--connector", type=click.Choice([c.value for c in Connector]), required=True)
@click.option("--auth", type=click.Choice([a.value for a in AuthMethod]), default=AuthMethod.API_KEY.value)
@click.option("--vendor", default="generic", help="Parking adapter mapping the vendor's format.")
@click.option("--description", default="")
def sources_add(source_id: str, connector: str, auth: str, vendor: str, description: str) -> None:
    """Register a source; prints its credential (derived from the master key, stored nowhere)."""
    from connectors.parking import VENDORS

    if connector == Connector.PARKING.value and vendor not in VENDORS:
        raise click.ClickException(f"no parking adapter {vendor!r}; known: {sorted(VENDORS)}")
    if (auth == AuthMethod.DIGEST.value) != (connector == Connector.GAT1400.value):
        raise click.ClickException("digest authentication is for GA/T 1400 sources, and only it")
    settings = _settings()

    async def run() -> Source:
        async with db.pool(settings.postgres) as pool, pool.acquire() as conn:
            return await add_source(
                conn,
                source_id,
                Connector(connector),
                AuthMethod(auth),
                vendor=vendor,
                description=description,
            )

    source = _guarded(run)
    console.print(f"added source {source.source_id} ({source.connector.value}, {source.auth.value})")
    _print_credential(settings, source)


@sources.command("credential")
@click.argument("source_id")
@click.option("--rotate", is_flag=True, help="Issue a new credential; the old one stops working at once.")
def sources_credential(source_id: str, rotate: bool) -> None:
    """Print a source's current credential (for its operator)."""
    settings = _settings()

    async def run() -> Source:
        async with db.pool(settings.postgres) as pool, pool.acquire() as conn:
            if rotate:
                return await rotate_source_key(conn, source_id)
            return await get_source(conn, source_id)

    _print_credential(settings, _guarded(run))


def _print_credential(settings: Settings, source: Source) -> None:
    from connectors.auth import source_secret

    if settings.ingest.master_key is None:
        console.print("(set SEIZEWATCH_INGEST_MASTER_KEY to print the credential)")
        return
    secret = source_secret(settings.ingest.master_key, source.source_id, source.key_version)
    label = {"api_key": "API key", "hmac": "HMAC signing secret", "digest": "digest password"}[
        source.auth.value
    ]
    console.print(f"{label} (version {source.key_version}): {secret}")


@cli.group()
def devices() -> None:
    """The device registry every read is enriched from."""


@devices.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--encoding", default="utf-8-sig", show_default=True)
def devices_import(path: Path, encoding: str) -> None:
    """Insert or update devices from CSV (device_id, source_id, name, district, device_group required;
    kind, address, latitude, longitude, owner, timezone optional)."""
    from connectors.devicefile import read_devices

    settings = _settings()
    try:
        rows = read_devices(path.read_text(encoding=encoding).splitlines(keepends=True))
    except (InvalidInput, UnicodeDecodeError) as exc:
        raise click.ClickException(str(exc)) from exc

    async def run() -> int:
        async with db.pool(settings.postgres) as pool, pool.acquire() as conn:
            return await upsert_devices(conn, rows)

    console.print(f"{_guarded(run)} devices imported or updated")


# --- demo ---------------------------------------------------------------------------------------------


@cli.command()
@click.option("--reads", type=click.IntRange(100, 1_000_000), default=3000, show_default=True)
@click.option(
    "--rate", type=click.FloatRange(1, 100_000), default=300, show_default=True, help="Reads per second."
)
def demo(reads: int, rate: float) -> None:
    """Services up, a matcher worker running, a simulated city feed; hits printed where an SMS would go."""
    from seizewatch.demo import run_demo

    settings = _settings()
    sys.exit(run_demo(settings, reads=reads, rate=rate, console=console))


def main() -> None:
    cli()


def _register_commands() -> None:
    from seizewatch.backfill_cli import backfill
    from seizewatch.report_cli import report
    from seizewatch.roster_cli import roster
    from seizewatch.tasks_cli import tasks_group
    from seizewatch.traffic_cli import traffic

    cli.add_command(backfill)
    cli.add_command(roster)
    cli.add_command(tasks_group)
    cli.add_command(report)
    cli.add_command(traffic)


_register_commands()


if __name__ == "__main__":
    main()
