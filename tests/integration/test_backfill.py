"""The backfill against the real Kafka and PostgreSQL: every good row of an export reaches the topic as
history, an interrupted run resumes where it stopped, a finished file is not sent twice."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from datetime import timedelta
from pathlib import Path

import asyncpg
import orjson
import pytest

from connectors.backfill import Format, Plan, State, Summary, backfill, load_checkpoint, prepare
from connectors.ingest import Ingestor, Outcome
from connectors.producer import SightingPublisher
from connectors.records import AdapterError, RawRead
from connectors.registry import AuthMethod, Connector, Registry, add_source, upsert_devices
from streams.deadletter import read_headers
from streams.events import Sighting, SightingFlag, sighting_id_for
from streams.topics import SIGHTINGS_DLQ
from tests.conftest import ROOT, Isolated, topic_records
from tests.integration.test_connectors import sightings_by_id

pytestmark = pytest.mark.integration

HEADER = "record_id,lot_id,gate,direction,plate,plate_colour,time,image_url,confidence\n"
BAD_KINDS = ("plate", "missing", "time")  # every 50th row, in turn: 2 % of the file


@pytest.fixture(scope="module")
async def registered(isolated: Isolated) -> None:
    conn = await asyncpg.connect(isolated.settings.postgres.dsn.get_secret_value())
    try:
        await add_source(conn, "export-1", Connector.BACKFILL, AuthMethod.API_KEY)
        await add_source(conn, "lot-live", Connector.PARKING, AuthMethod.API_KEY)
        await upsert_devices(
            conn,
            [{"device_id": "lot-7/g1", "source_id": "export-1", "name": "椒江万达广场停车场 1号入口",
              "district": "331002", "device_group": "parking-jiaojiang"}],
        )  # fmt: skip
    finally:
        await conn.close()


@pytest.fixture
async def core(isolated: Isolated, registered: None) -> AsyncIterator[tuple[Registry, Ingestor]]:
    """The registry and the ingest core, wired as `seizewatch backfill` wires them."""
    registry = Registry(isolated.settings.postgres)
    await registry.start()
    try:
        async with SightingPublisher(isolated.settings.kafka, role="backfill", timeout_s=10) as publisher:
            freshness = timedelta(seconds=isolated.settings.ingest.freshness_s)
            yield (
                registry,
                Ingestor(connector="backfill", registry=registry, publisher=publisher, freshness=freshness),
            )
    finally:
        await registry.stop()


def generate(path: Path, prefix: str, rows: int) -> tuple[list[str], Counter[str]]:
    """A CSV export of ``rows`` reads, 2 % of them bad; (good record ids, expected rejections by reason)."""
    good: list[str] = []
    rejected: Counter[str] = Counter()
    with path.open("w", encoding="utf-8") as f:
        f.write(HEADER)
        for i in range(1, rows + 1):
            record_id = f"{prefix}-{i}"
            gate = f"g{i % 2 + 1}"
            plate = f"浙J{i % 100_000:05d}"
            time = f"2025-03-{i % 28 + 1:02d} {i % 24:02d}:{i % 60:02d}:00"
            if i % 50 == 0:
                kind = BAD_KINDS[i // 50 % 3]
                plate = "浙J12😀45" if kind == "plate" else plate
                gate = "" if kind == "missing" else gate
                time = "2025-02-30 08:00:00" if kind == "time" else time
                rejected["illegal_character" if kind == "plate" else "invalid_field"] += 1
            else:
                good.append(record_id)
            f.write(f"{record_id},lot-7,{gate},{'in' if i % 3 else 'out'},{plate},蓝,{time},,0.9\n")
    return good, rejected


def ids_of(prefix_ids: Sequence[str], device_of: dict[str, str]) -> list[str]:
    return [sighting_id_for("export-1", device_of[r], r) for r in prefix_ids]


class Crash(Exception):
    pass


class CrashAfterAck:
    """The ingest core, but the process dies right after Kafka acknowledged batch ``n``: the batch in
    flight is acknowledged and not checkpointed, the one case a resume sends rows twice."""

    def __init__(self, inner: Ingestor, n: int) -> None:
        self.inner = inner
        self.n = n
        self.calls = 0

    async def submit(
        self, source_id: str, items: Sequence[RawRead | AdapterError], *, raw: bytes, backfill: bool = False
    ) -> list[Outcome]:
        outcomes = await self.inner.submit(source_id, items, raw=raw, backfill=backfill)
        self.calls += 1
        if self.calls == self.n:
            raise Crash
        return outcomes


async def test_an_export_reaches_the_topic_as_history_across_a_crash(
    core: tuple[Registry, Ingestor], isolated: Isolated, tmp_path: Path
) -> None:
    registry, ingestor = core
    path = tmp_path / "export.csv"
    good, expected_rejected = generate(path, "c", 5000)
    checkpoint_path = tmp_path / "export.csv.seizewatch-progress.json"

    def plan() -> Plan:
        return prepare(
            path,
            source=registry.source("export-1"),
            source_id="export-1",
            fmt=Format.CSV,
            encoding="utf-8",
            checkpoint_path=checkpoint_path,
        )

    crashing = CrashAfterAck(ingestor, n=4)
    with pytest.raises(Crash):
        await backfill(plan(), ingestor=crashing, batch=500)
    checkpoint = load_checkpoint(checkpoint_path)
    assert checkpoint is not None
    assert (checkpoint.line, checkpoint.rows, checkpoint.complete) == (1501, 1500, False)

    reports: list[Summary] = []
    summary = await backfill(plan(), ingestor=ingestor, batch=500, progress=reports.append)
    assert summary.state is State.COMPLETE
    assert (summary.rows, summary.accepted) == (5000, len(good))
    assert dict(summary.rejected) == dict(expected_rejected)
    assert (summary.resumed_at_line, summary.rows_this_run) == (1502, 3500)
    assert reports[0].offset == checkpoint.offset
    assert reports[-1].offset == path.stat().st_size

    device_of = {f"c-{i}": f"lot-7/g{i % 2 + 1}" for i in range(1, 5001)}
    found = await sightings_by_id(isolated)
    wanted = ids_of(good, device_of)
    missing = [sid for sid in wanted if sid not in found]
    assert not missing, f"{len(missing)} good rows never reached the topic"
    sightings: list[Sighting] = [s for sid in wanted for s in found[sid]]
    assert all(s.backfill for s in sightings), "a backfilled read must never page anyone"
    assert all(SightingFlag.LATE not in s.flags for s in sightings)  # history is not late, it is history
    assert {s.district for s in sightings} == {"331002", None}  # g1 is registered, g2 is not
    # Only the batch in flight at the crash (rows 1501-2000) was sent twice, and nothing else.
    duplicated = {sid for sid in wanted if len(found[sid]) > 1}
    in_flight = set(ids_of([r for r in good if 1501 <= int(r.split("-")[1]) <= 2000], device_of))
    assert duplicated == in_flight
    assert len(duplicated) <= 500
    assert all(len(found[sid]) <= 2 for sid in wanted)

    letters = [read_headers(r.headers) for r in await topic_records(isolated, SIGHTINGS_DLQ)]
    backfill_letters = [h for h in letters if h["seizewatch.stage"] == "backfill"]
    assert backfill_letters
    assert all(h["seizewatch.source"] == "export-1" for h in backfill_letters)
    assert any("line 51: " in h["seizewatch.message"] for h in backfill_letters)

    again = CrashAfterAck(ingestor, n=0)  # never crashes: counts what is sent
    done = await backfill(plan(), ingestor=again, batch=500)
    assert (done.state, done.rows, done.accepted, again.calls) == (State.ALREADY_COMPLETE, 5000, len(good), 0)


def seizewatch_backfill(
    isolated: Isolated, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "seizewatch.backfill_cli", *args],
        env={**isolated.env, "COLUMNS": "200", **(env or {})},
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )


async def test_the_command_sends_gbk_jsonl_once_and_refuses_what_it_must(
    isolated: Isolated, registered: None, tmp_path: Path
) -> None:
    path = tmp_path / "导出.jsonl"
    lines = []
    for i in range(1, 301):
        record = {"record_id": f"j-{i}", "lot_id": "lot-7", "gate": "g1", "direction": "in",
                  "plate": f"苏E{i:05d}", "plate_colour": "黄色",
                  "time": f"2025-04-01T08:{i % 60:02d}:00"}  # fmt: skip
        lines.append(orjson.dumps(record).decode())
    lines.insert(100, "")  # line 101, blank: skipped, not a row
    lines.insert(200, "not json at all")  # line 201
    path.write_bytes(("\n".join(lines) + "\n").encode("gbk"))

    first = seizewatch_backfill(
        isolated, str(path), "--source", "export-1", "--encoding", "gbk", "--batch", "64"
    )
    assert first.returncode == 0, first.stdout + first.stderr
    assert "rows read" in first.stdout
    assert "301" in first.stdout  # 300 reads and the line that is not JSON
    assert "not_json" in first.stdout
    assert "line 201: not JSON" in first.stdout
    assert "complete" in first.stdout

    found = await sightings_by_id(isolated)
    ids = [sighting_id_for("export-1", "lot-7/g1", f"j-{i}") for i in range(1, 301)]
    assert all(len(found.get(sid, [])) == 1 for sid in ids)
    assert all(found[sid][0].backfill for sid in ids)
    assert found[ids[0]][0].plate == "苏E00001"

    second = seizewatch_backfill(isolated, str(path), "--source", "export-1", "--encoding", "gbk")
    assert second.returncode == 0, second.stdout + second.stderr
    assert "already complete" in second.stdout
    again = await sightings_by_id(isolated)
    assert all(len(again[sid]) == 1 for sid in ids), "a finished file must not be sent again"

    with path.open("ab") as f:
        f.write(lines[0].encode("gbk") + b"\n")
    changed = seizewatch_backfill(isolated, str(path), "--source", "export-1", "--encoding", "gbk")
    assert changed.returncode == 1
    assert "--restart" in changed.stderr

    wrong = seizewatch_backfill(isolated, str(path), "--source", "lot-live", "--restart")
    assert wrong.returncode == 1
    assert "registered for parking, not backfill" in wrong.stderr


async def test_kafka_unreachable_at_start_sends_nothing_and_exits_1(
    isolated: Isolated, registered: None, tmp_path: Path
) -> None:
    path = tmp_path / "export.csv"
    generate(path, "k", 10)
    result = seizewatch_backfill(
        isolated, str(path), "--source", "export-1", env={"SEIZEWATCH_KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"}
    )
    assert result.returncode == 1
    assert "Kafka is unavailable" in result.stderr
    assert not (tmp_path / "export.csv.seizewatch-progress.json").exists()
