"""Backfill: a parking operator's export of past reads (CSV or JSONL) published as history, resumably."""

from __future__ import annotations

import asyncio
import csv
import enum
import hashlib
import logging
import os
import time
from collections import Counter
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Literal, Protocol

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from connectors.ingest import Outcome
from connectors.parking import ParkingRecordV1, generic_record
from connectors.records import AdapterError, RawRead
from connectors.registry import Connector, Source
from streams.errors import InvalidInput, SeizewatchError

log = logging.getLogger(__name__)


class Format(enum.StrEnum):
    CSV = "csv"  # a header row naming the generic fields, then one read per line
    JSONL = "jsonl"  # one generic record object per line


# What operators' exports come in; GBK is what Excel on Chinese Windows writes. In all three a newline
# byte is never part of a multi-byte character, so splitting the bytes at b"\n" before decoding is safe.
ENCODINGS = ("utf-8", "gbk", "gb18030")
REQUIRED_COLUMNS = frozenset(name for name, f in ParkingRecordV1.model_fields.items() if f.is_required())
KNOWN_COLUMNS = frozenset(ParkingRecordV1.model_fields)
# A generic record is well under 2 KiB: a longer "line" is a binary file or a broken export, and holding
# it whole would break the constant-memory promise. It is rejected, and only its start dead-lettered.
MAX_LINE_BYTES = 64 * 1024
KEPT_OF_LONG_LINE = 1024
# A batch's lines travel in one dead letter, which must stay under Kafka's 1 MiB message limit.
MAX_BATCH_BYTES = 512 * 1024
HEAD_BYTES = 64 * 1024
MAX_EXAMPLES = 20


# --- reading the file ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Line:
    number: int  # 1-based
    end: int  # byte offset just past the line: where reading resumes
    raw: bytes  # as in the file, line break included (only the start when too long)
    too_long: bool = False


def read_lines(f: BinaryIO, *, offset: int = 0, number: int = 0) -> Iterator[Line]:
    """The lines of a binary file from byte ``offset``; the first one read is numbered ``number + 1``."""
    f.seek(offset)
    while raw := f.readline(MAX_LINE_BYTES + 1):
        offset += len(raw)
        number += 1
        too_long = len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n")
        if too_long:
            raw = raw[:KEPT_OF_LONG_LINE] + b"\n"
            while rest := f.readline(MAX_LINE_BYTES):  # skip to the end of the line, a chunk at a time
                offset += len(rest)
                if rest.endswith(b"\n"):
                    break
        yield Line(number, offset, raw, too_long)


def decode_line(line: Line, encoding: str) -> str | AdapterError:
    """The line's text without its line break, or ``bad_encoding`` / ``line_too_long``."""
    n = line.number
    if line.too_long:
        return AdapterError("line_too_long", f"line {n}: longer than {MAX_LINE_BYTES} bytes", index=n)
    # utf-8-sig: Excel and Notepad put a BOM before the first line; anywhere else it changes nothing.
    codec = "utf-8-sig" if encoding == "utf-8" else encoding
    try:
        return line.raw.decode(codec).rstrip("\r\n")
    except UnicodeDecodeError as exc:
        return AdapterError(
            "bad_encoding", f"line {n}: not {encoding} text (byte {exc.start + 1} of the line)", index=n
        )


def csv_header(line: Line | None, encoding: str) -> tuple[str, ...]:
    """The column names of a CSV export's first line.

    Raises:
        InvalidInput: ``bad_header`` when the file is empty, the line is not text in ``encoding``, a
            required field of the generic schema has no column, or a column is named twice.
    """
    if line is None:
        raise InvalidInput("bad_header", "the file is empty; a CSV export starts with a header row")
    text = decode_line(line, encoding)
    if isinstance(text, AdapterError):
        raise InvalidInput("bad_header", f"header {text.args[0]}; is --encoding right?")
    try:
        header = tuple(cell.strip() for cell in next(csv.reader([text], strict=True), []))
    except csv.Error as exc:
        raise InvalidInput("bad_header", f"line 1 is not a CSV header: {exc}") from exc
    missing = REQUIRED_COLUMNS - set(header)
    if missing:
        raise InvalidInput(
            "bad_header",
            f"the header lacks the required column(s) {sorted(missing)} (it names {list(header)}); "
            f"the generic schema's fields are {sorted(KNOWN_COLUMNS)}",
        )
    twice = sorted(name for name, n in Counter(header).items() if n > 1)
    if twice:
        raise InvalidInput("bad_header", f"the header names {twice} more than once")
    ignored = [name for name in header if name not in KNOWN_COLUMNS]
    if ignored:
        log.warning("columns %s are not fields of the generic schema: ignored", ignored)
    return header


def csv_item(line: Line, header: Sequence[str], encoding: str) -> RawRead | AdapterError | None:
    """One data line of a CSV export as a read, or why not; None for a blank line.

    Rows with embedded newlines (a quoted cell spanning lines) are not supported: each piece is
    rejected on its own line, ``bad_csv`` or ``invalid_field``.
    """
    text = decode_line(line, encoding)
    if isinstance(text, AdapterError):
        return text
    if not text.strip():
        return None
    n = line.number
    try:
        # One reader per line: a quoted cell spanning lines would otherwise swallow the lines after it
        # and the byte offset would no longer say where a row starts.
        cells = next(csv.reader([text], strict=True))
    except csv.Error as exc:
        return AdapterError("bad_csv", f"line {n}: {exc} (cells spanning lines are not supported)", index=n)
    if len(cells) > len(header):
        return AdapterError(
            "extra_cells", f"line {n}: {len(cells)} cells, the header names {len(header)}", index=n
        )
    # Fewer cells than columns is fine: trailing optional fields are often left off. Empty cells are
    # absent fields (an empty confidence is no confidence, not a bad number).
    row = {name: cell.strip() for name, cell in zip(header, cells, strict=False) if cell.strip()}
    return generic_record(row, n, prefix=f"line {n}: ")


def jsonl_item(line: Line, encoding: str) -> RawRead | AdapterError | None:
    """One line of a JSONL export as a read, or why not; None for a blank line."""
    text = decode_line(line, encoding)
    if isinstance(text, AdapterError):
        return text
    if not text.strip():
        return None
    n = line.number
    try:
        document = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        return AdapterError("not_json", f"line {n}: not JSON ({exc})", index=n)
    if not isinstance(document, dict):
        return AdapterError(
            "not_json", f"line {n}: expected an object, got {type(document).__name__}", index=n
        )
    return generic_record(document, n, prefix=f"line {n}: ")


@dataclass(frozen=True, slots=True)
class Batch:
    items: list[RawRead | AdapterError]
    lines: list[int]  # the line number of each item
    # The items' lines as in the file, for the dead letter: its "[i]" names the i-th line of this.
    raw: bytes
    end: int  # byte offset just past the last line read
    line: int  # number of the last line read


def batches(
    path: Path, fmt: Format, encoding: str, header: Sequence[str], *, size: int, offset: int, line: int
) -> Generator[Batch, None, None]:
    """The file's rows after line ``line`` (at byte ``offset``), ``size`` rows a batch at most.

    The last batch may hold no items (trailing blank lines): it still carries the end of the file.
    """

    def parse(current: Line) -> RawRead | AdapterError | None:
        return csv_item(current, header, encoding) if fmt is Format.CSV else jsonl_item(current, encoding)

    with path.open("rb") as f:
        items: list[RawRead | AdapterError] = []
        numbers: list[int] = []
        raws: list[bytes] = []
        raw_size = 0
        for current in read_lines(f, offset=offset, number=line):
            offset, line = current.end, current.number
            item = parse(current)
            if item is None:
                continue
            items.append(item)
            numbers.append(current.number)
            raws.append(current.raw)
            raw_size += len(current.raw)
            if len(items) >= size or raw_size >= MAX_BATCH_BYTES:
                yield Batch(items, numbers, b"".join(raws), offset, line)
                items, numbers, raws, raw_size = [], [], [], 0
        yield Batch(items, numbers, b"".join(raws), offset, line)


# --- the checkpoint -----------------------------------------------------------------------------------


class FileIdentity(BaseModel):
    """Enough to tell that a file is the one a checkpoint was written for."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    path: str  # absolute
    size: int
    mtime_ns: int
    head_sha256: str  # of the first 64 KiB: catches a same-size rewrite with a restored mtime


def identify(path: Path) -> FileIdentity:
    resolved = path.resolve()
    stat = resolved.stat()
    with resolved.open("rb") as f:
        head = hashlib.sha256(f.read(HEAD_BYTES)).hexdigest()
    return FileIdentity(path=str(resolved), size=stat.st_size, mtime_ns=stat.st_mtime_ns, head_sha256=head)


class Checkpoint(BaseModel):
    """Where a backfill stands, written after every batch Kafka acknowledged; counts are cumulative."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: Literal[1] = 1
    file: FileIdentity
    source_id: str
    format: Format
    encoding: str
    offset: int = Field(ge=0)  # the next batch starts at this byte
    line: int = Field(ge=0)  # the last line done
    rows: int = Field(ge=0)
    accepted: int = Field(ge=0)
    rejected: dict[str, int]
    complete: bool = False


def load_checkpoint(path: Path) -> Checkpoint | None:
    """Raises: InvalidInput ``bad_checkpoint`` when the file is there but not a checkpoint."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    try:
        return Checkpoint.model_validate_json(data)
    except ValidationError as exc:
        raise InvalidInput(
            "bad_checkpoint", f"{path} is not a backfill checkpoint ({exc.error_count()} problem(s))"
        ) from exc


def save_checkpoint(path: Path, checkpoint: Checkpoint) -> None:
    """Replace the checkpoint atomically: a crash leaves the old one or the new one, never half of one."""
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as f:
        f.write(orjson.dumps(checkpoint.model_dump(mode="json"), option=orjson.OPT_INDENT_2))
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)


def resume_from(
    checkpoint: Checkpoint | None, identity: FileIdentity, *, source_id: str, fmt: Format, encoding: str
) -> Checkpoint | None:
    """The checkpoint to resume from (None: start at the first line).

    Raises:
        InvalidInput: ``checkpoint_mismatch`` when it was written for another file, a changed file or
            other options: its offset would not point where it stopped.
    """
    if checkpoint is None:
        return None
    was = checkpoint.file
    changed = [name for name in FileIdentity.model_fields if getattr(was, name) != getattr(identity, name)]
    if changed:
        raise InvalidInput(
            "checkpoint_mismatch",
            f"the checkpoint was written for {was.path} ({was.size} bytes) and the file is not the same now "
            f"({', '.join(changed)} differ): resuming after its line {checkpoint.line} could skip or garble "
            "rows. Rerun with --restart to send the file from its first line (reads already sent keep "
            "their ids and make no second hit)",
        )
    options = {
        "source": (checkpoint.source_id, source_id),
        "format": (checkpoint.format.value, fmt.value),
        "encoding": (checkpoint.encoding, encoding),
    }
    differ = [f"--{name} {old} (now {new})" for name, (old, new) in options.items() if old != new]
    if differ:
        raise InvalidInput(
            "checkpoint_mismatch",
            f"the checkpoint was made with {', '.join(differ)}: rerun with the same options to resume, "
            "or with --restart to start over",
        )
    return checkpoint


# --- the run ------------------------------------------------------------------------------------------


class Submitter(Protocol):
    """:class:`~connectors.ingest.Ingestor` as the backfill uses it."""

    async def submit(
        self, source_id: str, items: Sequence[RawRead | AdapterError], *, raw: bytes, backfill: bool = False
    ) -> list[Outcome]: ...


def check_source(source: Source | None, source_id: str) -> Source:
    """Raises: InvalidInput when the source is unknown, disabled or not registered for backfill."""
    if source is None:
        raise InvalidInput(
            "unknown_source",
            f"{source_id!r} is not registered (seizewatch sources add {source_id} --connector backfill)",
            field="source",
        )
    if source.connector is not Connector.BACKFILL:
        raise InvalidInput(
            "wrong_connector",
            f"source {source_id!r} is registered for {source.connector.value}, not backfill",
            field="source",
        )
    if not source.enabled:
        raise InvalidInput("disabled_source", f"source {source_id!r} is disabled", field="source")
    return source


@dataclass(frozen=True, slots=True)
class Plan:
    """A checked backfill: the source may send, the header is usable, where to start is known."""

    path: Path
    source_id: str
    fmt: Format
    encoding: str
    checkpoint_path: Path
    identity: FileIdentity
    header: tuple[str, ...]  # CSV only
    data_line: int  # the rows start after this line (1 after a CSV header)
    data_offset: int  # … at this byte
    resume: Checkpoint | None

    @property
    def already_complete(self) -> bool:
        return self.resume is not None and self.resume.complete


def prepare(
    path: Path,
    *,
    source: Source | None,
    source_id: str,
    fmt: Format,
    encoding: str,
    checkpoint_path: Path,
    restart: bool = False,
) -> Plan:
    """Check the source, the CSV header and the checkpoint, before anything is sent.

    Raises:
        InvalidInput: the source may not backfill (see :func:`check_source`), the encoding is unknown,
            the CSV header is unusable (:func:`csv_header`), or the checkpoint does not match
            (:func:`resume_from`) and ``restart`` is not set.
    """
    check_source(source, source_id)
    if encoding not in ENCODINGS:
        raise InvalidInput(
            "invalid_field", f"encoding {encoding!r} is not one of {ENCODINGS}", field="encoding"
        )
    identity = identify(path)
    header: tuple[str, ...] = ()
    data_line = data_offset = 0
    if fmt is Format.CSV:
        with path.open("rb") as f:
            first = next(read_lines(f), None)
        header = csv_header(first, encoding)
        data_line, data_offset = 1, first.end if first else 0
    resume = None if restart else load_checkpoint(checkpoint_path)
    resume = resume_from(resume, identity, source_id=source_id, fmt=fmt, encoding=encoding)
    return Plan(
        path, source_id, fmt, encoding, checkpoint_path, identity, header, data_line, data_offset, resume
    )


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """While Kafka does not acknowledge a batch: wait 1, 2, 4, … up to ``max_s`` seconds, ``budget_s``
    in all, then stop (the checkpoint stays where the last acknowledged batch left it)."""

    budget_s: float = 300.0
    first_s: float = 1.0
    max_s: float = 30.0

    def delays(self) -> Iterator[float]:
        delay = self.first_s
        while True:
            yield delay
            delay = min(delay * 2, self.max_s)


class State(enum.StrEnum):
    RUNNING = "running"
    COMPLETE = "complete"
    ALREADY_COMPLETE = "already_complete"
    STOPPED = "stopped"  # Kafka stayed unavailable; rerun to resume


@dataclass(frozen=True, slots=True)
class Rejection:
    line: int
    reason: str
    message: str


@dataclass(frozen=True, slots=True)
class Summary:
    """Where a backfill stands; counts are cumulative over resumed runs, time and rate are this run's."""

    state: State
    size: int  # of the file, bytes
    offset: int  # bytes done
    line: int  # the last line done
    rows: int  # data rows read (blank lines are not rows)
    accepted: int
    rejected: Mapping[str, int]  # by reason
    rows_this_run: int = 0
    elapsed_s: float = 0.0
    resumed_at_line: int | None = None
    examples: tuple[Rejection, ...] = ()  # the first few rejections of this run
    stopped_reason: str | None = None

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())

    @property
    def rows_per_s(self) -> float:
        return self.rows_this_run / self.elapsed_s if self.elapsed_s > 0 else 0.0


@dataclass
class _Run:
    """The running counts of one backfill, as a checkpoint and as a summary."""

    plan: Plan
    offset: int
    line: int
    rows: int = 0
    accepted: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    rows_this_run: int = 0
    examples: list[Rejection] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)

    @classmethod
    def of(cls, plan: Plan) -> _Run:
        if (cp := plan.resume) is None:
            return cls(plan, plan.data_offset, plan.data_line)
        return cls(plan, cp.offset, cp.line, cp.rows, cp.accepted, Counter(cp.rejected))

    def count(self, batch: Batch, outcomes: Sequence[Outcome]) -> None:
        for outcome, number, item in zip(outcomes, batch.lines, batch.items, strict=True):
            if outcome.accepted:
                self.accepted += 1
                continue
            reason = outcome.reason or "unknown"
            self.rejected[reason] += 1
            if len(self.examples) < MAX_EXAMPLES:
                # An adapter error names the line in its field ("line 21: time"); the ingest core does not.
                text = str(item) if isinstance(item, AdapterError) else f"line {number}: {outcome.message}"
                self.examples.append(Rejection(number, reason, str(text)))
        self.rows += len(batch.items)
        self.rows_this_run += len(batch.items)

    def checkpoint(self, *, complete: bool) -> None:
        p = self.plan
        save_checkpoint(
            p.checkpoint_path,
            Checkpoint(
                file=p.identity, source_id=p.source_id, format=p.fmt, encoding=p.encoding, offset=self.offset,
                line=self.line, rows=self.rows, accepted=self.accepted, rejected=dict(self.rejected),
                complete=complete,
            ),
        )  # fmt: skip

    def summary(self, state: State, stopped_reason: str | None = None) -> Summary:
        resumed = self.plan.resume
        return Summary(
            state=state,
            size=self.plan.identity.size,
            offset=self.offset,
            line=self.line,
            rows=self.rows,
            accepted=self.accepted,
            rejected=dict(self.rejected),
            rows_this_run=self.rows_this_run,
            elapsed_s=time.monotonic() - self.started,
            resumed_at_line=resumed.line + 1 if resumed else None,
            examples=tuple(self.examples),
            stopped_reason=stopped_reason,
        )


def completed(plan: Plan) -> Summary | None:
    """The summary of a file whose checkpoint says it was sent whole (nothing to do), else None."""
    return _Run.of(plan).summary(State.ALREADY_COMPLETE) if plan.already_complete else None


async def backfill(
    plan: Plan,
    *,
    ingestor: Submitter,
    batch: int = 500,
    retry: RetryPolicy | None = None,
    progress: Callable[[Summary], None] | None = None,
) -> Summary:
    """Send the plan's file as history (``backfill=True``), checkpointing after every acknowledged batch.

    CSV rows are parsed one line at a time: a quoted cell spanning lines is not supported (its pieces
    are rejected as ``bad_csv``). ``progress`` is called when reading starts and after every batch; an
    exception it raises stops the backfill where the checkpoint says.

    Raises:
        SeizewatchError: a non-retriable error of the ingest core; the checkpoint stays intact.
    """
    policy = retry or RetryPolicy()
    if (done := completed(plan)) is not None:
        return done
    run = _Run.of(plan)
    if plan.resume is None:  # a fresh start or --restart: an old checkpoint must not outlive a crash
        plan.checkpoint_path.unlink(missing_ok=True)
    if progress is not None:
        progress(run.summary(State.RUNNING))
    chunks = batches(
        plan.path, plan.fmt, plan.encoding, plan.header, size=batch, offset=run.offset, line=run.line
    )
    try:
        for chunk in chunks:
            if chunk.items:
                try:
                    outcomes = await _submit(ingestor, plan.source_id, chunk, policy)
                except SeizewatchError as exc:
                    if not exc.retriable:
                        raise
                    return run.summary(
                        State.STOPPED,
                        f"Kafka did not acknowledge for {policy.budget_s:.0f} s ({exc}); stopped before "
                        f"line {run.line + 1}. Rerun the same command to resume there",
                    )
                run.count(chunk, outcomes)
            run.offset, run.line = chunk.end, chunk.line
            run.checkpoint(complete=False)
            if progress is not None:
                progress(run.summary(State.RUNNING))
    finally:
        chunks.close()  # closes the file now, not when the generator is collected
    run.checkpoint(complete=True)
    return run.summary(State.COMPLETE)


async def _submit(ingestor: Submitter, source_id: str, chunk: Batch, retry: RetryPolicy) -> list[Outcome]:
    """Submit a batch, retrying with backoff while the error is retriable and the budget lasts.

    Raises:
        SeizewatchError: not retriable, or still failing when the budget is spent.
    """
    deadline = time.monotonic() + retry.budget_s
    delays = retry.delays()
    while True:
        try:
            return await ingestor.submit(source_id, chunk.items, raw=chunk.raw, backfill=True)
        except SeizewatchError as exc:
            delay = next(delays)
            if not exc.retriable or time.monotonic() + delay > deadline:
                raise
            log.warning("lines up to %d not acknowledged (%s); retrying in %g s", chunk.line, exc, delay)
            await asyncio.sleep(delay)
