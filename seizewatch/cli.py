"""The ``seizewatch`` command: local services, topics, database, matcher worker, watchlist, demo."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING

import click
from rich.table import Table

from seizewatch.common import console, guarded, settings_from_env
from seizewatch.settings import Settings
from streams import db
from streams.errors import SeizewatchError
from streams.topics import TOPICS, ensure_topics

if TYPE_CHECKING:
    from streams.supervision import Supervisor

log = logging.getLogger("seizewatch")


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


@contextlib.contextmanager
def _services_refused() -> Iterator[None]:
    """A setting that does not fit or a service that cannot start ends the command with its message."""
    try:
        yield
    except SeizewatchError as exc:
        raise click.ClickException(str(exc)) from exc


@services.command("up")
def services_up() -> None:
    """Install what is missing, start Kafka and PostgreSQL, create topics, migrate. Idempotent."""
    from seizewatch.localservices import LocalServices

    settings = settings_from_env()
    with _services_refused():
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

    with _services_refused():
        LocalServices(settings_from_env()).down()


@services.command("status")
def services_status() -> None:
    from seizewatch.localservices import LocalServices

    with _services_refused():
        for name, state in LocalServices(settings_from_env()).status().items():
            console.print(f"{name:10} {state}")


@services.command("wipe")
@click.confirmation_option(prompt="Stop the local services and delete all their data?")
def services_wipe() -> None:
    """Stop the local services and delete their data directory."""
    from seizewatch.localservices import LocalServices

    with _services_refused():
        LocalServices(settings_from_env()).wipe()


# --- topics and database ------------------------------------------------------------------------------


@cli.group()
def topics() -> None:
    """Kafka topics as declared in streams/topics.py."""


@topics.command("ensure")
def topics_ensure() -> None:
    """Create the declared topics that are missing."""
    settings = settings_from_env()
    created = guarded(lambda: ensure_topics(settings.kafka))
    console.print(f"created: {', '.join(created) or 'nothing (all present)'}")


@topics.command("list")
def topics_list() -> None:
    """The declared topics and what they carry."""
    settings = settings_from_env()
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
    settings = settings_from_env()

    async def run() -> list[str]:
        async with db.pool(settings.postgres) as pool, pool.acquire() as conn:
            return await db.migrate(conn)

    applied = asyncio.run(run())
    console.print(f"applied: {', '.join(applied) or 'nothing (up to date)'}")


# --- the matcher worker -------------------------------------------------------------------------------


@cli.command()
def worker() -> None:
    """Run a matcher worker: sightings in, hits out. Serves /metrics and /healthz.

    The engine is SEIZEWATCH_MATCH_ENGINE: batch (aiokafka, the default) or faust (the previous one).
    On glibc it first re-executes itself with transparent huge pages asked for, unless GLIBC_TUNABLES
    names glibc.malloc.hugetlb already (`glibc.malloc.hugetlb=0` opts out; streams/hugepages.py).
    When a background loop (watchlist follower, outbox relay, lag monitor) or the consuming loop ends on
    its own, /healthz answers 503 naming it and the worker exits with code 70 (EXIT_LOOP_FAILED) for its
    supervisor to restart it; SIGTERM or SIGINT stop it cleanly (exit 0).
    """
    from streams.hugepages import huge_pages_bytes, reexec_with_huge_pages

    reexec_with_huge_pages()

    from streams import exposition, metrics
    from streams.supervision import EXIT_LOOP_FAILED, Supervisor
    from streams.topics import HITS, SIGHTINGS, SIGHTINGS_DLQ, WATCHLIST_CHANGES, missing_topics

    metrics.WORKER_HUGE_PAGES.set_function(huge_pages_bytes)
    settings = settings_from_env()
    missing = asyncio.run(missing_topics(settings.kafka, [SIGHTINGS, SIGHTINGS_DLQ, WATCHLIST_CHANGES, HITS]))
    if missing:
        raise click.ClickException(f"missing topics {missing}: run `seizewatch topics ensure`")
    supervisor = Supervisor("worker")
    server = exposition.serve(settings.metrics.host, settings.metrics.port, supervisor.health)
    log.info("metrics on http://%s:%d/metrics, health on /healthz", settings.metrics.host, server.server_port)
    if settings.match.engine == "faust":
        _faust_worker(settings, supervisor)
    else:
        asyncio.run(_batch_worker(settings, supervisor))
    if supervisor.failure is not None:
        log.critical("matcher worker stopped: %s", supervisor.failure)
        sys.exit(EXIT_LOOP_FAILED)


_FAILED_HEALTH_GRACE_S = 1.0


async def _batch_worker(settings: Settings, supervisor: Supervisor) -> None:
    """Run the batch engine until a signal or a failure; a failure is left in ``supervisor``."""
    from streams import batchworker

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        await batchworker.run(
            settings.kafka, settings.postgres, settings.match, stop=stop, supervisor=supervisor
        )
    except Exception as exc:  # the consuming loop itself ended: the same failure as a background loop's
        log.exception("the consuming loop failed")
        supervisor.fail("match", repr(exc))
    if supervisor.healthy:
        log.info("matcher worker stopped")
    else:
        # /healthz has answered 503 naming the loop since it ended; it goes on a moment after the wind-down
        # (milliseconds) so that whoever polls it learns why before the process is gone. A second more
        # before the restart is cheap beside the recovery bound (docs/design.md).
        await asyncio.sleep(_FAILED_HEALTH_GRACE_S)


def _faust_worker(settings: Settings, supervisor: Supervisor) -> None:
    import faust

    from streams.app import create_app

    datadir = settings.local.home.resolve() / "faust"
    app, runtime = create_app(settings.kafka, settings.postgres, settings.match, supervisor, datadir=datadir)
    # quiet: no banner and no terminal spinner; our logging configuration stays in charge.
    worker = faust.Worker(app, runtime, loglevel="INFO", override_logging=False, quiet=True)
    try:
        worker.execute_from_commandline()
    except SystemExit:
        if supervisor.failure is None:
            raise  # faust's own exit; a loop's failure exits with EXIT_LOOP_FAILED in worker()


# --- connectors ---------------------------------------------------------------------------------------


@cli.command()
def ingest() -> None:
    """Serve the HTTP connectors (parking, GA/T 1400, ISAPI) and /metrics on SEIZEWATCH_INGEST_PORT.

    Exits 70 (streams.supervision.EXIT_LOOP_FAILED) when a background loop or the Kafka producer cannot
    go on, for its supervisor to restart it; /healthz answers 503 naming it meanwhile.
    """
    import uvicorn

    from connectors.logs import RepeatFilter
    from connectors.server import build_app
    from streams.supervision import EXIT_LOOP_FAILED

    settings = settings_from_env()
    if settings.ingest.master_key is None:
        raise click.ClickException(
            "SEIZEWATCH_INGEST_MASTER_KEY is not set: the connectors cannot authenticate"
        )
    # aiokafka logs every failed reconnect (thousands a second while the broker is down): repeats folded.
    for handler in logging.getLogger().handlers:
        handler.addFilter(RepeatFilter(("aiokafka",)))
    failures: list[str] = []

    async def serve() -> None:
        loop = asyncio.get_running_loop()

        def failed(why: str) -> None:
            failures.append(why)
            # 3 s for /healthz to say why (503) before the port closes, then a graceful stop.
            loop.call_later(3.0, setattr, server, "should_exit", True)

        app = build_app(settings.kafka, settings.postgres, settings.ingest, on_loop_failure=failed)
        config = uvicorn.Config(
            app,
            host=settings.ingest.host,
            port=settings.ingest.port,
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=10,
        )
        server = uvicorn.Server(config)
        await server.serve()

    asyncio.run(serve())
    if failures:
        log.critical("ingest stopped: %s", failures[0])
        sys.exit(EXIT_LOOP_FAILED)


@cli.command()
def pager() -> None:
    """Run the pager: hits → pages → SMS, escalation, status callbacks and replies (SEIZEWATCH_PAGER_PORT).

    Exits 70 when one of its loops ended (its supervisor, e.g. compose's restart policy, starts it again)
    and 3 when it could not start (PostgreSQL or Kafka unreachable).
    """
    import uvicorn

    from alerts.service import build_provider
    from alerts.webhooks import create_app as create_pager_app
    from streams.supervision import EXIT_LOOP_FAILED

    settings = settings_from_env()
    failures: list[str] = []
    server: uvicorn.Server | None = None

    def stop(failure: str) -> None:
        failures.append(failure)
        if server is not None:
            server.should_exit = True  # a dead loop stops the HTTP server too: /healthz goes with it

    app = create_pager_app(
        settings.kafka, settings.postgres, settings.pager, settings.twilio, build_provider(settings.twilio),
        on_failure=stop,
    )  # fmt: skip
    config = uvicorn.Config(
        app, host=settings.pager.host, port=settings.pager.port, log_config=None, access_log=False
    )
    server = uvicorn.Server(config)
    asyncio.run(server.serve())
    if failures:
        sys.exit(EXIT_LOOP_FAILED)
    if not server.started:
        sys.exit(3)  # uvicorn's own code for a start-up that failed (uvicorn.run exits so too)


# --- demo ---------------------------------------------------------------------------------------------


@cli.command()
@click.option("--reads", type=click.IntRange(100, 1_000_000), default=3000, show_default=True)
@click.option(
    "--rate", type=click.FloatRange(1, 100_000), default=300, show_default=True, help="Reads per second."
)
@click.option(
    "--reply",
    is_flag=True,
    help="At the end, an officer paged for the urgent vehicle answers 1 <code> (simulated, no provider).",
)
def demo(reads: int, rate: float, reply: bool) -> None:
    """Services up, a matcher worker running, a simulated city feed; hits printed where an SMS would go."""
    from seizewatch.demo import run_demo

    settings = settings_from_env()
    sys.exit(run_demo(settings, reads=reads, rate=rate, console=console, reply=reply))


def main() -> None:
    cli()


def _register_commands() -> None:
    from seizewatch.backfill_cli import backfill
    from seizewatch.registry_cli import devices, sources
    from seizewatch.reply_cli import reply
    from seizewatch.report_cli import report
    from seizewatch.roster_cli import roster
    from seizewatch.tasks_cli import tasks_group
    from seizewatch.traffic_cli import traffic
    from seizewatch.watchlist_cli import watchlist

    cli.add_command(watchlist)
    cli.add_command(sources)
    cli.add_command(devices)
    cli.add_command(backfill)
    cli.add_command(roster)
    cli.add_command(tasks_group)
    cli.add_command(report)
    cli.add_command(traffic)
    cli.add_command(reply)


_register_commands()


if __name__ == "__main__":
    main()
