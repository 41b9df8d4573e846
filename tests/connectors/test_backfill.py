"""Backfill without Kafka: export lines to reads, batches, the checkpoint, and the run over a fake core."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import pytest

from connectors.backfill import (
    MAX_LINE_BYTES,
    Checkpoint,
    Format,
    Plan,
    RetryPolicy,
    State,
    Summary,
    backfill,
    batches,
    check_source,
    completed,
    identify,
    load_checkpoint,
    prepare,
    read_lines,
    resume_from,
    save_checkpoint,
)
from connectors.ingest import Outcome
from connectors.producer import KafkaUnavailable
from connectors.records import AdapterError, RawRead
from connectors.registry import AuthMethod, Connector, Source
from streams.errors import InvalidInput
from streams.events import SourceKind
from streams.vehicles import PlateColour

SOURCE = Source("export-1", Connector.BACKFILL, "generic", AuthMethod.API_KEY, 1, True)
HEADER = "record_id,lot_id,gate,direction,plate,plate_colour,time,image_url,confidence\n"


def row(record_id: str, **changes: str) -> str:
    cells = {
        "record_id": record_id, "lot_id": "wanda", "gate": "g1", "direction": "in", "plate": "浙J12345",
        "plate_colour": "蓝", "time": "2025-03-01 08:15:00", "image_url": "", "confidence": "0.9",
    }  # fmt: skip
    cells.update(changes)
    return ",".join(cells.values()) + "\n"


def jsonl(record_id: str, **changes: object) -> str:
    import orjson

    record: dict[str, object] = {
        "record_id": record_id, "lot_id": "wanda", "gate": "g1", "direction": "out", "plate": "浙J12345",
        "plate_colour": "黄", "time": "2025-03-01T08:15:00+08:00",
    }  # fmt: skip
    record.update(changes)
    return orjson.dumps(record).decode() + "\n"


def plan_of(
    path: Path,
    fmt: Format = Format.CSV,
    encoding: str = "utf-8",
    *,
    checkpoint_path: Path | None = None,
    restart: bool = False,
) -> Plan:
    return prepare(
        path,
        source=SOURCE,
        source_id="export-1",
        fmt=fmt,
        encoding=encoding,
        checkpoint_path=checkpoint_path or path.with_name(path.name + ".progress.json"),
        restart=restart,
    )


def parsed(
    path: Path, fmt: Format = Format.CSV, encoding: str = "utf-8"
) -> dict[int, RawRead | AdapterError]:
    """Every item of the file by line number."""
    plan = plan_of(path, fmt, encoding)
    out: dict[int, RawRead | AdapterError] = {}
    for batch in batches(
        path, fmt, encoding, plan.header, size=1000, offset=plan.data_offset, line=plan.data_line
    ):
        out.update(zip(batch.lines, batch.items, strict=True))
    return out


# --- lines to reads -----------------------------------------------------------------------------------


def test_csv_rows_become_reads_and_bad_rows_name_their_line(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    path.write_text(
        HEADER
        + row("r-1")  # 2
        + row("r-2", time="yesterday")  # 3
        + row("r-3", lot_id="")  # 4: an empty cell is a missing field
        + "\n"  # 5: blank lines are skipped, not rows
        + row("r-4", direction="sideways")  # 6
        + row("r-5").rstrip("\n")
        + ",extra\n"  # 7
        + 'r-6,wanda,g1,in,"浙J1\n'  # 8: a quoted cell spanning lines is not supported …
        + '2345",蓝,2025-03-01 08:15:00,,\n'  # 9: … both halves are rejected
        + "r-7,wanda,g1,out,浙J54321,,2025-03-01T08:15:00+00:00\r\n"  # 10: trailing optional cells left off
    )
    items = parsed(path)
    assert sorted(items) == [2, 3, 4, 6, 7, 8, 9, 10]
    good = items[2]
    assert isinstance(good, RawRead)
    assert (good.record_id, good.device_id, good.plate_raw) == ("r-1", "wanda/g1", "浙J12345")
    assert (good.source_kind, good.plate_colour, good.confidence) == (
        SourceKind.PARKING_ENTRY,
        PlateColour.BLUE,
        0.9,
    )
    assert good.image_ref is None
    assert good.observed_at.isoformat() == "2025-03-01T08:15:00+08:00"  # a naive time is the lot's own
    last = items[10]
    assert isinstance(last, RawRead)
    assert (last.source_kind, last.plate_colour, last.confidence) == (
        SourceKind.PARKING_EXIT,
        PlateColour.UNKNOWN,
        None,
    )

    errors = {n: item for n, item in items.items() if isinstance(item, AdapterError)}
    assert {n: e.reason for n, e in errors.items()} == {
        3: "invalid_field", 4: "invalid_field", 6: "invalid_field", 7: "extra_cells", 8: "bad_csv",
        9: "invalid_field",
    }  # fmt: skip
    assert errors[3].field == "line 3: time"
    assert errors[4].field == "line 4: lot_id"
    assert "Field required" in str(errors[4])
    assert errors[6].field == "line 6: direction"
    assert str(errors[7]) == "line 7: 10 cells, the header names 9"
    assert str(errors[8]).startswith("line 8: ")
    assert all(e.index == n for n, e in errors.items())


def test_gbk_csv_and_a_line_that_does_not_decode(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    body = (HEADER + row("r-1", plate="浙J54321", plate_colour="黄色")).encode("gbk")
    path.write_bytes(body + b"r-2,wanda,g1,in,\xff\xff,,2025-03-01 08:15:00\n" + row("r-3").encode("gbk"))
    items = parsed(path, encoding="gbk")
    first, broken, third = items[2], items[3], items[4]
    assert isinstance(first, RawRead)
    assert (first.plate_raw, first.plate_colour) == ("浙J54321", PlateColour.YELLOW)
    assert isinstance(broken, AdapterError)
    assert broken.reason == "bad_encoding"
    assert str(broken) == "line 3: not gbk text (byte 17 of the line)"
    assert isinstance(third, RawRead)
    # The same bytes read as UTF-8: every line with Chinese text is refused, none is garbled into a read.
    as_utf8 = parsed(path, encoding="utf-8")
    assert all(isinstance(item, AdapterError) and item.reason == "bad_encoding" for item in as_utf8.values())


def test_a_utf8_bom_is_not_part_of_the_first_column(tmp_path: Path) -> None:
    path = tmp_path / "excel.csv"
    path.write_bytes(b"\xef\xbb\xbf" + (HEADER + row("r-1")).encode())
    assert plan_of(path).header[0] == "record_id"
    assert isinstance(parsed(path)[2], RawRead)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "the file is empty"),
        (b"record_id,lot_id,gate,direction,plate\n", "lacks the required column(s) ['time']"),
        (HEADER.replace("confidence", "plate").encode(), "names ['plate'] more than once"),
        ("记录,".encode("gbk") + HEADER.encode(), "header line 1: not utf-8 text"),
    ],
)
def test_an_unusable_header_refuses_the_file(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "export.csv"
    path.write_bytes(content)
    with pytest.raises(InvalidInput) as caught:
        plan_of(path)
    assert caught.value.reason == "bad_header"
    assert message in str(caught.value)


def test_unknown_columns_are_ignored_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "export.csv"
    path.write_text(HEADER.replace("\n", ",plate_color\n") + row("r-1").replace("\n", ",蓝\n"))
    assert isinstance(parsed(path)[2], RawRead)
    assert "['plate_color'] are not fields of the generic schema" in caplog.text


def test_jsonl_lines(tmp_path: Path) -> None:
    path = tmp_path / "export.jsonl"
    path.write_text(
        jsonl("r-1")  # 1
        + "\n   \n"  # 2, 3: blank
        + "[1, 2]\n"  # 4
        + '{"record_id": "r-2", \n'  # 5
        + jsonl("r-3", confidence=7)  # 6
        + jsonl("r-4", plate="浙J00001").rstrip("\n")  # 7: the last line may lack its line break
    )
    items = parsed(path, Format.JSONL)
    assert sorted(items) == [1, 4, 5, 6, 7]
    assert isinstance(items[1], RawRead)
    assert items[1].source_kind is SourceKind.PARKING_EXIT
    assert isinstance(items[7], RawRead)
    errors = {n: item for n, item in items.items() if isinstance(item, AdapterError)}
    assert {n: e.reason for n, e in errors.items()} == {4: "not_json", 5: "not_json", 6: "invalid_field"}
    assert str(errors[4]) == "line 4: expected an object, got list"
    assert errors[6].field == "line 6: confidence"


def test_jsonl_in_gbk(tmp_path: Path) -> None:
    path = tmp_path / "export.jsonl"
    path.write_bytes((jsonl("r-1", plate="苏E12345") + jsonl("r-2")).encode("gbk") + b'{"plate": "\xff"}\n')
    items = parsed(path, Format.JSONL, "gbk")
    assert [type(i).__name__ for i in items.values()] == ["RawRead", "RawRead", "AdapterError"]
    assert isinstance(items[1], RawRead)
    assert items[1].plate_raw == "苏E12345"
    assert isinstance(items[3], AdapterError)
    assert items[3].reason == "bad_encoding"


# --- lines, offsets, batches --------------------------------------------------------------------------


def test_line_offsets_let_reading_resume_mid_file(tmp_path: Path) -> None:
    path = tmp_path / "lines"
    path.write_bytes(b"one\r\ntwo\n\nfour")
    with path.open("rb") as f:
        lines = list(read_lines(f))
        assert [(line.number, line.end, line.raw) for line in lines] == [
            (1, 5, b"one\r\n"), (2, 9, b"two\n"), (3, 10, b"\n"), (4, 14, b"four"),
        ]  # fmt: skip
        rest = list(read_lines(f, offset=lines[1].end, number=lines[1].number))
    assert rest == lines[2:]


def test_an_overlong_line_is_rejected_and_skipped_whole(tmp_path: Path) -> None:
    path = tmp_path / "export.jsonl"
    path.write_bytes(jsonl("r-1").encode() + b"x" * (3 * MAX_LINE_BYTES) + b"\n" + jsonl("r-2").encode())
    with path.open("rb") as f:
        long = list(read_lines(f))[1]
    assert long.too_long
    assert long.end == path.stat().st_size - len(jsonl("r-2").encode())
    assert len(long.raw) <= 1025  # only its start goes to the dead letter
    items = parsed(path, Format.JSONL)
    assert isinstance(items[2], AdapterError)
    assert items[2].reason == "line_too_long"
    assert isinstance(items[3], RawRead)


def test_batches_hold_at_most_size_rows_and_the_last_reaches_the_end(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    path.write_text(HEADER + row("r-1") + "\n" + "".join(row(f"r-{i}") for i in range(2, 6)) + "\n\n")
    plan = plan_of(path)
    chunks = list(batches(path, Format.CSV, "utf-8", plan.header, size=2, offset=plan.data_offset, line=1))
    assert [b.lines for b in chunks] == [[2, 4], [5, 6], [7]]
    assert chunks[0].raw == (row("r-1") + row("r-2")).encode()  # blank lines are not in the dead letter
    assert chunks[0].end == len((HEADER + row("r-1") + "\n" + row("r-2")).encode())
    assert (chunks[-1].end, chunks[-1].line) == (path.stat().st_size, 9)


# --- the checkpoint -----------------------------------------------------------------------------------


def checkpoint_for(path: Path, **changes: object) -> Checkpoint:
    fields: dict[str, object] = {
        "file": identify(path), "source_id": "export-1", "format": Format.CSV, "encoding": "utf-8",
        "offset": 10, "line": 1, "rows": 0, "accepted": 0, "rejected": {},
    }  # fmt: skip
    fields.update(changes)
    return Checkpoint.model_validate(fields)


def test_checkpoint_round_trip_is_atomic(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    path.write_text(HEADER + row("r-1"))
    saved = checkpoint_for(path, rejected={"invalid_field": 2}, complete=True)
    target = tmp_path / "export.csv.progress.json"
    save_checkpoint(target, saved)
    save_checkpoint(target, saved)  # replaces the existing one
    assert load_checkpoint(target) == saved
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export.csv", "export.csv.progress.json"]
    assert load_checkpoint(tmp_path / "none.json") is None
    target.write_text("{half a checkpoi")
    with pytest.raises(InvalidInput) as caught:
        load_checkpoint(target)
    assert caught.value.reason == "bad_checkpoint"


def test_a_checkpoint_matches_only_the_unchanged_file_and_the_same_options(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    path.write_text(HEADER + row("r-1") + row("r-2"))
    cp = checkpoint_for(path)
    now = identify(path)
    assert resume_from(cp, now, source_id="export-1", fmt=Format.CSV, encoding="utf-8") is cp
    assert resume_from(None, now, source_id="export-1", fmt=Format.CSV, encoding="utf-8") is None
    for source_id, fmt, encoding in (
        ("export-2", Format.CSV, "utf-8"),
        ("export-1", Format.JSONL, "utf-8"),
        ("export-1", Format.CSV, "gbk"),
    ):
        with pytest.raises(InvalidInput, match="rerun with the same options") as caught:
            resume_from(cp, now, source_id=source_id, fmt=fmt, encoding=encoding)
        assert caught.value.reason == "checkpoint_mismatch"


@pytest.mark.parametrize("change", ["append", "same_size_rewrite", "touch", "moved"])
def test_a_changed_file_is_refused_unless_restarted(tmp_path: Path, change: str) -> None:
    path = tmp_path / "export.csv"
    path.write_text(HEADER + row("r-1") + row("r-2"))
    checkpoint_path = path.with_name(path.name + ".progress.json")
    save_checkpoint(checkpoint_path, checkpoint_for(path))
    stat = path.stat()
    if change == "append":
        with path.open("a") as f:
            f.write(row("r-3"))
    elif change == "same_size_rewrite":  # a re-export of the same length, its mtime restored
        path.write_text(HEADER + row("r-1") + row("r-9"))
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    elif change == "touch":
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    else:
        path = path.rename(tmp_path / "renamed.csv")
    with pytest.raises(InvalidInput, match="--restart") as caught:
        plan_of(path, checkpoint_path=checkpoint_path)
    assert caught.value.reason == "checkpoint_mismatch"
    plan = plan_of(path, checkpoint_path=checkpoint_path, restart=True)
    assert plan.resume is None


def test_a_source_must_be_registered_enabled_for_backfill() -> None:
    assert check_source(SOURCE, "export-1") is SOURCE
    cases = {
        "unknown_source": None,
        "wrong_connector": Source("export-1", Connector.PARKING, "generic", AuthMethod.API_KEY, 1, True),
        "disabled_source": Source("export-1", Connector.BACKFILL, "generic", AuthMethod.API_KEY, 1, False),
    }
    for reason, source in cases.items():
        with pytest.raises(InvalidInput) as caught:
            check_source(source, "export-1")
        assert caught.value.reason == reason


# --- the run, over a fake ingest core -----------------------------------------------------------------


class FakeCore:
    """Accepts every read and refuses every adapter error, except that the calls numbered in ``outage``
    (from 0) find Kafka down."""

    def __init__(self, outage: range = range(0)) -> None:
        self.outage = outage
        self.sent: list[str] = []
        self.calls = 0

    async def submit(
        self, source_id: str, items: Sequence[RawRead | AdapterError], *, raw: bytes, backfill: bool = False
    ) -> list[Outcome]:
        assert (source_id, backfill) == ("export-1", True), "a backfill must never page anyone"
        assert raw.count(b"\n") == len(items)
        self.calls += 1
        if self.calls - 1 in self.outage:
            raise KafkaUnavailable("broker gone", 1)
        self.sent.extend(i.record_id for i in items if isinstance(i, RawRead))
        return [
            Outcome(n, True, sighting_id=i.record_id) if isinstance(i, RawRead) else Outcome.refused(n, i)
            for n, i in enumerate(items)
        ]


class Interrupted(Exception):
    pass


def export(tmp_path: Path, rows: int = 50, bad_every: int = 10) -> Path:
    path = tmp_path / "export.csv"
    lines = [row(f"r-{i}", time="never") if i % bad_every == 0 else row(f"r-{i}") for i in range(1, rows + 1)]
    path.write_text(HEADER + "".join(lines))
    return path


FAST = RetryPolicy(budget_s=0.2, first_s=0.01, max_s=0.05)


async def test_an_interrupted_run_resumes_where_the_checkpoint_says(tmp_path: Path) -> None:
    path = export(tmp_path)
    core = FakeCore()
    reports: list[Summary] = []

    def stop_after_two_batches(report: Summary) -> None:
        reports.append(report)
        if len(reports) == 3:  # the start, then two batches
            raise Interrupted

    with pytest.raises(Interrupted):
        await backfill(plan_of(path), ingestor=core, batch=8, progress=stop_after_two_batches)
    assert reports[0].offset == len(HEADER)
    checkpoint = load_checkpoint(path.with_name(path.name + ".progress.json"))
    assert checkpoint is not None
    assert (checkpoint.line, checkpoint.rows, checkpoint.accepted, checkpoint.complete) == (17, 16, 15, False)

    summary = await backfill(plan_of(path), ingestor=core, batch=8)
    assert summary.state is State.COMPLETE
    assert (summary.rows, summary.accepted, dict(summary.rejected)) == (50, 45, {"invalid_field": 5})
    assert (summary.rows_this_run, summary.resumed_at_line) == (34, 18)
    assert sorted(core.sent) == sorted(f"r-{i}" for i in range(1, 51) if i % 10)  # each once
    assert summary.examples[0].message.startswith("line 21: time: ")

    again = plan_of(path)
    assert again.already_complete
    done = completed(again)
    assert done is not None
    assert (done.state, done.rows, done.accepted) == (State.ALREADY_COMPLETE, 50, 45)
    calls = core.calls
    assert (await backfill(again, ingestor=core)).state is State.ALREADY_COMPLETE
    assert core.calls == calls


async def test_kafka_down_is_retried_then_stops_with_the_checkpoint_intact(tmp_path: Path) -> None:
    path = export(tmp_path, rows=20)
    flapping = FakeCore(outage=range(2))
    summary = await backfill(plan_of(path), ingestor=flapping, batch=8, retry=FAST)
    assert (summary.state, summary.accepted, flapping.calls) == (State.COMPLETE, 18, 5)

    down = FakeCore(outage=range(10**9))  # the same file again, from its first line; Kafka never answers
    summary = await backfill(plan_of(path, restart=True), ingestor=down, batch=8, retry=FAST)
    assert summary.state is State.STOPPED
    assert summary.stopped_reason is not None
    assert "before line 2. Rerun the same command to resume there" in summary.stopped_reason
    assert 2 <= down.calls <= 10
    assert load_checkpoint(path.with_name(path.name + ".progress.json")) is None  # nothing acknowledged


async def test_a_stop_mid_file_keeps_the_acknowledged_batches(tmp_path: Path) -> None:
    path = export(tmp_path, rows=20)
    failing = FakeCore(outage=range(1, 10**9))
    summary = await backfill(plan_of(path), ingestor=failing, batch=8, retry=FAST)
    assert (summary.state, summary.line, summary.rows, summary.accepted) == (State.STOPPED, 9, 8, 8)
    core = FakeCore()
    summary = await backfill(plan_of(path), ingestor=core, batch=8)
    assert (summary.state, summary.rows, summary.accepted) == (State.COMPLETE, 20, 18)
    assert summary.resumed_at_line == 10
    assert core.sent == [f"r-{i}" for i in range(9, 21) if i % 10]  # rows 1-8 were acknowledged before
