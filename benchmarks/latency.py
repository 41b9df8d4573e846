"""The read → SMS benchmark (c2): the real processes on the real Kafka and PostgreSQL, at the load asked.

:func:`read_to_sms_latency`: a parking lot posting reads at a fixed rate (open loop) through
``seizewatch ingest`` → worker → ``seizewatch pager`` → the fake Twilio (:mod:`tests.fakes.twilio_server`),
while :mod:`benchmarks.load` produces more reads straight to ``plate.sightings`` so the worker carries the
load asked; the time from sending a watched read to the first SMS of its page reaching the provider, by
stage. Run it with ``python -m benchmarks.pipeline latency``. Nothing here is part of the test suite.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import json
import math
import sys
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx
import orjson

from benchmarks import support
from benchmarks.generate import sightings, watch_changes, watch_entries, watch_plates
from benchmarks.infra import produce
from benchmarks.load import write_records
from benchmarks.support import DataLost, Drive, eventually, summed
from streams.events import decode_sighting
from streams.matching import WatchIndex
from streams.plates import read_plate
from streams.topics import SIGHTINGS, WATCHLIST_CHANGES
from streams.vehicles import PlateColour
from streams.watchlist import decode_entry
from tests.fakes.twilio_server import FakeTwilio

# Consecutive spans of a watched read's way, each from one timestamp to the next.
STAGES = ("sent→received", "received→matched", "matched→paged", "paged→sms_row", "sms_row→provider")


@dataclass(frozen=True)
class Latency:
    """One run of c2: reads posted at ``rate`` for ``seconds``; latency over the watched reads."""

    rate: float  # reads/s asked for
    achieved_rate: float  # reads answered 2xx per second, first request sent → last answered
    seconds: float
    reads: int
    refused: int  # not answered 2xx (must be 0 for the figures to mean anything)
    watched: int  # watched reads, each of its own vehicle: one page each
    background: int  # other watch entries (their hits page too)
    pages: int  # pages opened by the end, all entries
    p50_s: float  # watched read sent → first SMS of its page handed to the provider
    p99_s: float
    max_s: float
    ingest_p50_s: float  # watched read sent → its request answered 2xx (stored in Kafka)
    stages_p50_s: dict[str, float]
    stages_p99_s: dict[str, float]
    schedule_lag_max_s: float  # the driver's worst lateness against its schedule
    engine: str
    background_rate: float  # reads/s the load process offered straight to the topic beside the lot's
    worker_rate: float  # reads/s the worker processed while the lot posted (lot + background)


def _quantile(values: list[float], q: float) -> float:
    """The nearest-rank ``q`` quantile."""
    ordered = sorted(values)
    return round(ordered[min(len(ordered), max(1, math.ceil(q * len(ordered)))) - 1], 4)


def _fleet(n: int, watched: list[str]) -> list[str]:
    """``n`` plates as cameras read them, none of which matches a watched entry in any way (so every
    page of a watched entry is opened by its one watched read)."""
    index = WatchIndex()
    for entry in watch_entries(watched):
        index.apply(entry)
    at = datetime.now(UTC)
    reads = (orjson.loads(value)["plate_raw"] for _, value in sightings(2 * n + 100, [], seed=5))
    fleet = (
        raw
        for raw in reads
        if not index.match(read_plate(raw), PlateColour.UNKNOWN, at, across_provinces=True)
    )
    return list(itertools.islice(fleet, n))


async def read_to_sms_latency(
    rate: float,
    duration_s: float,
    *,
    background_rate: float = 0.0,
    pages_per_s: float = 2.0,
    batch: int = 10,
    concurrency: int = 32,
    watchlist: int = 0,
    warmup_s: float = 3.0,
    engine: str = "batch",
    pager_env: dict[str, str] | None = None,
    within: float = 180,
) -> Latency:
    """c2: post ``rate`` reads/s (``batch`` per request) for ``duration_s`` through the whole pipeline,
    while :mod:`benchmarks.load` produces ``background_rate`` more reads/s straight to the topic.

    ``pages_per_s`` of the posted reads are of watched vehicles, each of its own (so each opens a page);
    no background read matches any entry. ``watchlist`` more entries (of all courts) sit in the index
    beside them. ``engine`` is the worker's ``SEIZEWATCH_MATCH_ENGINE``; ``pager_env`` overrides the
    pager's settings (none: its defaults). Raises DataLost when a watched read has no SMS at the
    provider ``within`` s after the last post, or when the load process did not offer its load.
    """
    count, watched_count = int(rate * duration_s), max(1, round(pages_per_s * duration_s))
    plates = watch_plates(watchlist + watched_count)
    background, watched = plates[:watchlist], plates[watchlist:]
    extra = int(rate * warmup_s)
    fleet = _fleet(count - watched_count + extra, watched)
    warmup, fleet = fleet[:extra], fleet[extra:]
    spots = {int((k + 0.5) * count / watched_count) for k in range(watched_count)}
    queue = iter(watched)
    sequence = [next(queue) if i in spots else fleet.pop() for i in range(count)]
    async with support.isolated() as iso, FakeTwilio() as fake, support.processes("c2") as procs:
        entry_ids = await support.register_lot(iso.dsn, watched)
        changes = list(watch_changes(background))
        await support.load_entries(iso.dsn, [decode_entry(value) for _, value in changes])
        await produce(iso.kafka, iso.kafka.topic(WATCHLIST_CHANGES), changes)
        pool = procs.logdir / "background.bin"
        if background_rate:
            write_records(pool, _background(min(BACKGROUND_POOL, int(background_rate * duration_s)), plates))
        worker_env = {"SEIZEWATCH_MATCH_ENGINE": engine}
        running = await support.start_pipeline(
            procs, iso, fake, entries=len(plates), worker_env=worker_env, pager_env=pager_env or {}
        )
        post = functools.partial(support.drive, running.ingest.port, rate=rate, concurrency=concurrency)
        await post([warmup[i : i + batch] for i in range(0, extra, batch)], watched=(), tag="warmup")
        load = None
        if background_rate:  # the load runs from before the first post to after the last
            load = await _start_load(iso, pool, background_rate, duration_s + 2 * warmup_s)
            await asyncio.sleep(warmup_s)
        async with httpx.AsyncClient(timeout=5, headers=support.UNCOMPRESSED) as client:
            consumed = await summed(client, [running.worker])
            batches = [sequence[i : i + batch] for i in range(0, count, batch)]
            run = await post(batches, watched=set(watched), tag="run")
            processed = await summed(client, [running.worker]) - consumed
        offered = await _load_figures(load) if load is not None else {"sent": 0, "rate": 0.0}
        rows, pages = await _paged(iso.dsn, entry_ids, within)
    seconds = run.last_answer - run.first_sent
    return _latency(
        rate, run, rows, fake, pages=pages, background=watchlist, engine=engine,
        background_rate=float(offered["rate"]), worker_rate=round(processed / seconds, 1),
    )  # fmt: skip


BACKGROUND_POOL = 200_000  # distinct background reads, sent in a cycle


def _background(n: int, plates: list[str]) -> list[tuple[bytes, bytes]]:
    """``n`` sightings records (the generator's default mix) none of which matches any of ``plates``
    in any way: the background load opens no page and makes no hit."""
    index = WatchIndex()
    for entry in watch_entries(plates):
        index.apply(entry)
    at = datetime.now(UTC)

    def matches(value: bytes) -> bool:
        s = decode_sighting(value)
        return bool(index.match(read_plate(s.plate), s.plate_colour, at, across_provinces=True))

    records = (pair for pair in sightings(2 * n + 100, [], seed=7) if not matches(pair[1]))
    return list(itertools.islice(records, n))


async def _start_load(
    iso: support.Isolated, pool: Path, rate: float, seconds: float
) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "benchmarks.load", "--bootstrap", iso.kafka.bootstrap_servers,
        "--topic", iso.kafka.topic(SIGHTINGS), "--records", str(pool), "--rate", str(rate),
        "--seconds", str(seconds), stdout=asyncio.subprocess.PIPE, cwd=support.ROOT,
    )  # fmt: skip


async def _load_figures(load: asyncio.subprocess.Process) -> dict[str, float]:
    out, _ = await load.communicate()
    if load.returncode != 0:
        raise DataLost(f"the background load failed (exit {load.returncode}): the load asked was not offered")
    figures: dict[str, float] = json.loads(out.decode().strip().splitlines()[-1])
    return figures


async def _paged(dsn: str, entry_ids: list[uuid.UUID], within: float) -> tuple[list[asyncpg.Record], int]:
    """Once every watched entry has an SMS at the provider: each one's timestamps; and all pages."""
    conn = await asyncpg.connect(dsn)
    try:

        async def paged() -> int:
            return int(await conn.fetchval(
                "SELECT count(DISTINCT p.entry_id) FROM pages p JOIN notifications n USING (page_id)"
                " WHERE p.entry_id = ANY($1::uuid[]) AND n.provider_message_id IS NOT NULL", entry_ids,
            ))  # fmt: skip

        try:
            await eventually(paged, lambda n: n == len(entry_ids), within=within, every=0.5)
        except TimeoutError:
            missing = len(entry_ids) - await paged()
            raise DataLost(
                f"{missing} of {len(entry_ids)} watched reads got no SMS within {within} s of the last post:"
                " lost, or the pipeline is that far behind (saturated)"
            ) from None
        rows = await conn.fetch(
            "SELECT e.plate, h.received_at, h.matched_at, p.created_at AS paged_at,"
            " min(n.created_at) AS row_at, array_agg(n.provider_message_id) AS sids"
            " FROM pages p JOIN hits h ON h.hit_id = p.hit_id JOIN watch_entries e ON e.entry_id = p.entry_id"
            " JOIN notifications n ON n.page_id = p.page_id"
            " WHERE p.entry_id = ANY($1::uuid[]) AND n.provider_message_id IS NOT NULL"
            " GROUP BY e.plate, h.received_at, h.matched_at, p.created_at",
            entry_ids,
        )
        return rows, int(await conn.fetchval("SELECT count(*) FROM pages"))
    finally:
        await conn.close()


def _latency(
    rate: float,
    run: Drive,
    rows: list[asyncpg.Record],
    fake: FakeTwilio,
    *,
    pages: int,
    background: int,
    engine: str,
    background_rate: float,
    worker_rate: float,
) -> Latency:
    totals: list[float] = []
    spans: dict[str, list[float]] = {stage: [] for stage in STAGES}
    for row in rows:
        sms = min(fake.messages[sid].created_at.timestamp() for sid in row["sids"])
        stamps = [row[c].timestamp() for c in ("received_at", "matched_at", "paged_at", "row_at")]
        points = [run.sent_at[row["plate"]], *stamps, sms]
        totals.append(sms - points[0])
        for stage, (a, b) in zip(STAGES, itertools.pairwise(points), strict=True):
            spans[stage].append(b - a)
    ingest = [run.answered_at[p] - run.sent_at[p] for p in run.sent_at]
    seconds = run.last_answer - run.first_sent
    return Latency(
        rate=rate, achieved_rate=round(run.accepted / seconds, 1), seconds=round(seconds, 2),
        reads=run.reads, refused=run.refused, watched=len(rows), background=background, pages=pages,
        p50_s=_quantile(totals, 0.5), p99_s=_quantile(totals, 0.99), max_s=round(max(totals), 4),
        ingest_p50_s=_quantile(ingest, 0.5), schedule_lag_max_s=round(run.lag_max_s, 4),
        stages_p50_s={s: _quantile(v, 0.5) for s, v in spans.items()},
        stages_p99_s={s: _quantile(v, 0.99) for s, v in spans.items()}, engine=engine,
        background_rate=background_rate, worker_rate=worker_rate,
    )  # fmt: skip
