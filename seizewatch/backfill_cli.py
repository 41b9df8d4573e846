"""``seizewatch backfill``: send a parking operator's export of past reads as history, resumably."""

from __future__ import annotations

import asyncio
import sys
from datetime import timedelta
from pathlib import Path

import asyncpg
import click
from aiokafka.errors import KafkaError
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from connectors.backfill import ENCODINGS, Format, RetryPolicy, State, Summary, completed, prepare
from connectors.backfill import backfill as send_file
from connectors.ingest import Ingestor
from connectors.producer import SightingPublisher
from connectors.registry import Connector, Registry
from seizewatch.settings import Settings
from streams.errors import SeizewatchError

_SUFFIXES = {".csv": Format.CSV, ".jsonl": Format.JSONL, ".ndjson": Format.JSONL}


@click.command()
@click.argument("path", metavar="FILE", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--source", "source_id", required=True, help="The operator's source (--connector backfill).")
@click.option(
    "--format",
    "fmt",
    type=click.Choice([f.value for f in Format]),
    default=None,
    help="csv (a header row naming the generic fields) or jsonl.  [default: from FILE's extension]",
)
@click.option(
    "--encoding",
    type=click.Choice(ENCODINGS),
    default="utf-8",
    show_default=True,
    help="Excel exports from Chinese Windows are gbk.",
)
@click.option(
    "--batch",
    type=click.IntRange(1, 5000),
    default=500,
    show_default=True,
    help="Rows per Kafka batch; progress is checkpointed after each.",
)
@click.option("--restart", is_flag=True, help="Ignore the checkpoint and send FILE from its first line.")
@click.option(
    "--checkpoint",
    "checkpoint_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Where progress is kept.  [default: FILE.seizewatch-progress.json]",
)
@click.option(
    "--give-up-after",
    type=click.FloatRange(0, 24 * 3600),
    default=300,
    show_default=True,
    help="Seconds to keep retrying a batch while Kafka is unavailable; then stop (rerun to resume).",
)
def backfill(
    path: Path,
    source_id: str,
    fmt: str | None,
    encoding: str,
    batch: int,
    restart: bool,
    checkpoint_path: Path | None,
    give_up_after: float,
) -> None:
    """Send FILE, an export of past parking reads, as history: it enriches trails and statistics and
    never pages an officer. A rerun resumes where the last one stopped. Exit 1 when stopped early."""
    try:
        settings = Settings.from_env()
    except SeizewatchError as exc:
        raise click.ClickException(str(exc)) from exc
    chosen = Format(fmt) if fmt else _SUFFIXES.get(path.suffix.lower())
    if chosen is None:
        raise click.UsageError(f"cannot tell the format of {path.name} from its extension: give --format")
    checkpoint = checkpoint_path or path.with_name(path.name + ".seizewatch-progress.json")
    console = Console()
    with _Bar(console, path.name) as bar:
        try:
            summary = asyncio.run(
                _run(
                    settings,
                    path,
                    bar,
                    source_id=source_id,
                    fmt=chosen,
                    encoding=encoding,
                    batch=batch,
                    restart=restart,
                    checkpoint_path=checkpoint,
                    retry=RetryPolicy(budget_s=give_up_after),
                )
            )
        except SeizewatchError as exc:
            raise click.ClickException(str(exc)) from exc
        except KeyboardInterrupt:
            # asyncio.run cancelled the batch in flight; the checkpoint names the last acknowledged one.
            bar.progress.stop()
            done = f"after line {bar.last.line:,}" if bar.last else "before the first batch"
            console.print(f"[red]interrupted[/]: stopped {done} ({checkpoint}); rerun to resume")
            sys.exit(1)
    print_summary(console, path, summary, checkpoint)
    sys.exit(1 if summary.state is State.STOPPED else 0)


async def _run(
    settings: Settings,
    path: Path,
    bar: _Bar,
    *,
    source_id: str,
    fmt: Format,
    encoding: str,
    batch: int,
    restart: bool,
    checkpoint_path: Path,
    retry: RetryPolicy,
) -> Summary:
    """Check the file against the registry and the checkpoint; connect to Kafka only to send something.

    Raises:
        InvalidInput: see :func:`connectors.backfill.prepare`.
        click.ClickException: PostgreSQL or Kafka cannot be reached at the start.
    """
    registry = Registry(settings.postgres)
    try:
        await registry.start()
    except (OSError, asyncpg.PostgresError) as exc:
        raise click.ClickException(f"PostgreSQL is unavailable ({exc}); nothing was sent") from exc
    try:
        plan = prepare(
            path,
            source=registry.source(source_id),
            source_id=source_id,
            fmt=fmt,
            encoding=encoding,
            checkpoint_path=checkpoint_path,
            restart=restart,
        )
        if (done := completed(plan)) is not None:
            return done
        try:
            async with SightingPublisher(
                settings.kafka,
                role="backfill",
                timeout_s=settings.ingest.produce_timeout_s,
                # Our backoff paces the retries; a breaker held open longer would refuse them unprobed.
                retry_after_s=1,
            ) as publisher:
                ingestor = Ingestor(
                    connector=Connector.BACKFILL.value,
                    registry=registry,
                    publisher=publisher,
                    freshness=timedelta(seconds=settings.ingest.freshness_s),
                )
                return await send_file(plan, ingestor=ingestor, batch=batch, retry=retry, progress=bar)
        except KafkaError as exc:  # the publisher translates what happens while sending: this is start-up
            raise click.ClickException(
                f"Kafka is unavailable at {settings.kafka.bootstrap_servers} ({exc!r}); rerun when it is back"
            ) from exc
    finally:
        await registry.stop()


class _Bar:
    """A progress bar by bytes of the file, with rows per second; fed the backfill's progress reports."""

    def __init__(self, console: Console, name: str) -> None:
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TextColumn("{task.fields[rows]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=True,
        )
        self.task: TaskID = self.progress.add_task(escape(name), total=None, rows="", start=False)
        self.last: Summary | None = None

    def __enter__(self) -> _Bar:
        self.progress.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.progress.stop()

    def __call__(self, report: Summary) -> None:
        if self.last is None:  # the first report: where this run starts (mid-file when resuming)
            self.progress.reset(self.task, total=report.size, completed=report.offset)
        rate = f"{report.rows:,} rows · {report.rows_per_s:,.0f} rows/s"
        self.progress.update(self.task, completed=report.offset, rows=rate)
        self.last = report


def print_summary(console: Console, path: Path, s: Summary, checkpoint: Path) -> None:
    """Totals (cumulative over resumed runs), rejections by reason, this run's time and rate."""
    name = escape(path.name)
    if s.state is State.ALREADY_COMPLETE:
        console.print(
            f"[bold]{name}[/]: already complete ({s.rows:,} rows: {s.accepted:,} accepted, "
            f"{s.rejected_total:,} rejected); nothing sent. --restart sends it again."
        )
        return
    table = Table(title=f"backfill of {name}", show_header=False)
    table.add_column()
    table.add_column(justify="right")
    table.add_row("rows read", f"{s.rows:,}")
    table.add_row("accepted", f"{s.accepted:,}")
    table.add_row("rejected", f"{s.rejected_total:,}")
    for reason, n in sorted(s.rejected.items(), key=lambda item: (-item[1], item[0])):
        table.add_row(f"  {escape(reason)}", f"{n:,}")
    table.add_row("elapsed", f"{s.elapsed_s:,.1f} s")
    table.add_row("rows per second", f"{s.rows_per_s:,.0f}")
    console.print(table)
    if s.resumed_at_line is not None:
        console.print(f"resumed at line {s.resumed_at_line:,}: counts include the earlier run(s)")
    if s.examples:
        console.print("first rejections of this run (every refused line is kept in the dead-letter topic):")
        for r in s.examples:
            console.print(f"  {escape(r.message)}", highlight=False)
    if s.state is State.STOPPED:
        console.print(f"[red]stopped[/]: {escape(s.stopped_reason or '')}\nprogress is kept in {checkpoint}")
    else:
        console.print(f"[green]complete[/]: {s.line:,} lines; {escape(str(checkpoint))} records it")


if __name__ == "__main__":  # `python -m seizewatch.backfill_cli` works before (and besides) registration
    backfill()
