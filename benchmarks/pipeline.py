"""End-to-end benchmarks of the performance issue: the real processes on the real Kafka and PostgreSQL.

- :func:`worker_throughput` (c1): reads/s of ``seizewatch worker`` processes draining a backlog produced
  before they started, counted from the moment every worker caught up with the watchlist (cold start is
  not counted) until every read was processed; the hits in PostgreSQL must be exactly those expected.
- :func:`read_to_sms_latency` (c2): a parking lot posting reads at a fixed rate (open loop) through
  ``seizewatch ingest`` → worker → ``seizewatch pager`` → the fake Twilio (:mod:`tests.fakes.twilio_server`):
  the time from sending a watched read to the first SMS of its page reaching the provider, by stage.
- :func:`scaling` (e): c1 for several worker counts on the same data.

``python -m benchmarks.pipeline {throughput,latency,scaling} [--quick]`` prints each result as JSON.
Nothing here is part of the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import functools
import itertools
import json
import math
import os
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx
import orjson

from benchmarks import support
from benchmarks.generate import ReadMix, sightings, watch_changes, watch_entries, watch_plates
from benchmarks.infra import produce
from benchmarks.load import write_records
from benchmarks.support import Drive, Proc, eventually, now, total
from streams.errors import InvalidInput
from streams.events import decode_sighting
from streams.hits import hit_id_for
from streams.matching import MatchKind, WatchIndex
from streams.plates import read_plate
from streams.settings import MatchSettings
from streams.topics import SIGHTINGS, WATCHLIST_CHANGES
from streams.vehicles import PlateColour
from streams.watchlist import WatchEntry, decode_entry
from tests.fakes.twilio_server import FakeTwilio

ALL_KINDS = ",".join(kind.value for kind in MatchKind)
DEFAULT_MIX = ReadMix()  # 0.1 % watched reads, camera noise as the generator has it
# Every read a worker is done with (ruled out by its key, matched or dead-lettered), and the dead letters.
PROCESSED = ("seizewatch_sightings_consumed_total",)
DEAD_LETTERS = "seizewatch_dead_letters_total{"
DEFAULT_PROVINCE_KINDS = MatchSettings.model_fields["province_kinds"].default


class DataLost(RuntimeError):
    """The pipeline did not record what it had to: the figures of that run mean nothing."""


@dataclass(frozen=True)
class Dataset:
    """A watchlist and reads, made once, with what the match stage must make of them.

    The expectations come from the pure functions the worker runs (decode, normalize, match) in this
    process; timing that loop gives the pure logic's ceiling on one core, without Kafka or PostgreSQL.
    """

    watch: list[tuple[bytes, bytes]] = field(repr=False)  # watchlist.changes records
    entries: list[WatchEntry] = field(repr=False)
    reads: list[tuple[bytes, bytes]] = field(repr=False)  # plate.sightings records
    matches: list[tuple[uuid.UUID, MatchKind, float]] = field(repr=False)  # (hit id, kind, score)
    invalid: int  # reads the match stage dead-letters
    core_reads_per_s: float
    province_kinds: str  # the SEIZEWATCH_MATCH_PROVINCE_KINDS the matches were found with

    def expected_hits(self, settings: MatchSettings) -> set[uuid.UUID]:
        return {
            h for h, kind, score in self.matches if kind in settings.hit_kinds and score >= settings.min_score
        }

    def matches_by_kind(self) -> dict[str, int]:
        return dict(Counter(kind.value for _, kind, _ in self.matches))


def dataset(
    reads: int,
    *,
    watchlist: int = 100_000,
    watched: int = 1_000,
    mix: ReadMix = DEFAULT_MIX,
    province_kinds: str = DEFAULT_PROVINCE_KINDS,
) -> Dataset:
    """``watchlist`` entries; ``reads`` reads, ``mix.watched_share`` of them of the first ``watched``;
    the matches as a worker with ``SEIZEWATCH_MATCH_PROVINCE_KINDS=province_kinds`` finds them."""
    plates = watch_plates(max(watchlist, watched))
    watch = list(watch_changes(plates))
    entries = [decode_entry(value) for _, value in watch]
    records = list(sightings(reads, plates[:watched], mix=mix))
    index = WatchIndex()
    for entry in entries:
        index.apply(entry)
    matches: list[tuple[uuid.UUID, MatchKind, float]] = []
    invalid = 0
    across = MatchSettings.model_validate({"province_kinds": province_kinds}).across_provinces
    started = time.perf_counter()
    for _, value in records:
        try:
            sighting = decode_sighting(value)
            plate = read_plate(sighting.plate)
        except InvalidInput:
            invalid += 1
            continue
        for m in index.match(plate, sighting.plate_colour, sighting.observed_at, across_provinces=across):
            matches.append((hit_id_for(sighting.sighting_id, m.entry.entry_id), m.kind, m.score))
    core = len(records) / max(time.perf_counter() - started, 1e-9)
    return Dataset(watch, entries, records, matches, invalid, round(core, 1), province_kinds)


# ------------------------------------------------------------------------------------ c1: throughput


@dataclass(frozen=True)
class Throughput:
    """One run of c1: ``workers`` worker processes draining ``reads`` reads."""

    workers: int
    reads: int  # produced to plate.sightings before the workers started
    measured: int  # processed after every worker was ready (those before are not counted)
    ready_s: float  # spawn → every worker caught up with the watchlist (cold start, not counted)
    seconds: float  # every worker ready → every read processed (the workers' own counters)
    reads_per_s: float  # measured / seconds
    per_worker: float
    steady_reads_per_s: float  # between 10 % and 90 % of the measured reads: no ramp, no tail
    committed_s: float  # every worker ready → the group's committed offsets at the end offsets
    worker_cores: float  # CPU time of all workers while measured / wall time (1.0: one core busy)
    hits: int  # in PostgreSQL, each one expected and none missing (else DataLost)
    dead_letters: dict[
        str, int
    ]  # by series (stage and reason); only the expected invalid reads, else DataLost
    hit_kinds: str
    engine: str
    province_kinds: str


async def _summed(
    client: httpx.AsyncClient, workers: list[Proc], prefixes: tuple[str, ...] = PROCESSED
) -> int:
    """The sum over the workers of the series starting with any of ``prefixes``."""
    values = await asyncio.gather(*(w.metrics(client) for w in workers))
    return int(sum(total(v, prefix) for v in values for prefix in prefixes))


def _steady(samples: list[tuple[float, int]]) -> float:
    """Reads/s between the samples that first reach 10 % and 90 % of the way from the first to the last."""
    start, end = samples[0][1], samples[-1][1]
    low = next(s for s in samples if s[1] >= start + 0.1 * (end - start))
    high = next(s for s in samples if s[1] >= start + 0.9 * (end - start))
    return (high[1] - low[1]) / (high[0] - low[0]) if high[0] > low[0] else float("nan")


async def worker_throughput(
    workers: int,
    reads: int,
    *,
    watchlist: int = 100_000,
    hit_kinds: str = ALL_KINDS,
    engine: str = "batch",
    province_kinds: str = DEFAULT_PROVINCE_KINDS,
    data: Dataset | None = None,
    within: float = 1800,
) -> Throughput:
    """c1: reads/s of ``workers`` worker processes (one consumer group) over a backlog of ``reads``.

    ``hit_kinds`` and ``engine`` are the workers' ``SEIZEWATCH_MATCH_HIT_KINDS`` and
    ``SEIZEWATCH_MATCH_ENGINE``; ``data`` is made from the sizes when not given. Raises DataLost when the
    hits in PostgreSQL are not exactly the expected ones.
    """
    data = data or dataset(reads, watchlist=watchlist, province_kinds=province_kinds)
    expected = data.expected_hits(MatchSettings.model_validate({"hit_kinds": hit_kinds}))
    async with support.isolated() as iso, support.processes(f"c1-{workers}w") as procs:
        await support.load_entries(iso.dsn, data.entries)
        await produce(iso.kafka, iso.kafka.topic(WATCHLIST_CHANGES), data.watch)
        await produce(iso.kafka, iso.kafka.topic(SIGHTINGS), data.reads)
        started = now()
        env = {
            **iso.env,
            "SEIZEWATCH_MATCH_HIT_KINDS": hit_kinds,
            "SEIZEWATCH_MATCH_ENGINE": engine,
            "SEIZEWATCH_MATCH_PROVINCE_KINDS": data.province_kinds,
        }
        running = [procs.worker(f"worker-{i}", env) for i in range(workers)]
        group = f"{iso.kafka.topic_prefix}seizewatch-matcher"
        async with (
            httpx.AsyncClient(timeout=5, headers=support.UNCOMPRESSED) as client,
            support.GroupProgress(iso.kafka, group, iso.kafka.topic(SIGHTINGS)) as progress,
        ):
            caught_up = ("seizewatch_watchlist_caught_up",)  # 1 each once ready
            await eventually(lambda: _summed(client, running, caught_up), lambda n: n == workers, within=600)
            ready, cpu = now(), sum(w.cpu_seconds() for w in running)
            samples = [(ready, await _summed(client, running))]
            async with asyncio.timeout(within):
                while samples[-1][1] < len(data.reads):
                    await asyncio.sleep(0.2)
                    samples.append((now(), await _summed(client, running)))
                cpu = sum(w.cpu_seconds() for w in running) - cpu
                await eventually(progress.lag, lambda lag: lag == 0, within=120, every=0.1)
            committed = now()
            dead: Counter[str] = Counter()
            for values in await asyncio.gather(*(w.metrics(client) for w in running)):
                dead.update({k: int(v) for k, v in values.items() if k.startswith(DEAD_LETTERS)})
        conn = await asyncpg.connect(iso.dsn)
        try:
            recorded = {row["hit_id"] for row in await conn.fetch("SELECT hit_id FROM hits")}
        finally:
            await conn.close()
        if recorded != expected or sum(dead.values()) != data.invalid:  # raised here: the logs are kept
            raise DataLost(
                f"hits: {len(expected - recorded)} expected ones missing, {len(recorded - expected)}"
                f" unexpected ({len(recorded)} recorded, {len(expected)} expected); dead letters"
                f" {dict(dead)}, expected {data.invalid}"
            )
    measured, seconds = len(data.reads) - samples[0][1], samples[-1][0] - ready
    return Throughput(
        workers=workers, reads=len(data.reads), measured=measured, ready_s=round(ready - started, 2),
        seconds=round(seconds, 2), reads_per_s=round(measured / seconds, 1),
        per_worker=round(measured / seconds / workers, 1), steady_reads_per_s=round(_steady(samples), 1),
        committed_s=round(committed - ready, 2), worker_cores=round(cpu / seconds, 2), hits=len(recorded),
        dead_letters=dict(dead), hit_kinds=hit_kinds, engine=engine, province_kinds=data.province_kinds,
    )  # fmt: skip


@dataclass(frozen=True)
class Scaling:
    """c1 for each worker count on the same data; speed-up against the first count's reads/s."""

    cores: int
    runs: list[Throughput]
    speedup: dict[int, float]


async def scaling(
    worker_counts: tuple[int, ...] = (1, 2, 4),
    reads: int = 200_000,
    *,
    watchlist: int = 100_000,
    hit_kinds: str = ALL_KINDS,
    engine: str = "batch",
    province_kinds: str = DEFAULT_PROVINCE_KINDS,
) -> Scaling:
    """e: :func:`worker_throughput` for each count, one after the other, each on fresh topics."""
    data = dataset(reads, watchlist=watchlist, province_kinds=province_kinds)
    runs = [
        await worker_throughput(n, reads, data=data, hit_kinds=hit_kinds, engine=engine)
        for n in worker_counts
    ]
    base = runs[0].reads_per_s
    return Scaling(os.cpu_count() or 0, runs, {r.workers: round(r.reads_per_s / base, 2) for r in runs})


# --------------------------------------------------------------------------------- c2: read → SMS

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
            consumed = await _summed(client, [running.worker])
            batches = [sequence[i : i + batch] for i in range(0, count, batch)]
            run = await post(batches, watched=set(watched), tag="run")
            processed = await _summed(client, [running.worker]) - consumed
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


# ------------------------------------------------------------------------------------------- command


async def _main(args: argparse.Namespace) -> None:
    reads = args.reads or (20_000 if args.quick else 200_000)
    watchlist = args.watchlist if args.watchlist is not None else (10_000 if args.quick else 100_000)
    result: Throughput | Scaling | Latency
    kinds = {"hit_kinds": args.hit_kinds, "engine": args.engine, "province_kinds": args.province_kinds}
    if args.what == "throughput":
        data = dataset(reads, watchlist=watchlist, province_kinds=args.province_kinds)
        print(f"core: {data.core_reads_per_s} reads/s; matches: {data.matches_by_kind()}", flush=True)
        result = await worker_throughput(args.workers, reads, data=data, **kinds)
    elif args.what == "scaling":
        result = await scaling(tuple(args.counts), reads, watchlist=watchlist, **kinds)
    else:
        duration, background = args.duration or (10 if args.quick else 60), args.watchlist or 0
        result = await read_to_sms_latency(
            args.rate, duration, background_rate=args.background_rate, pages_per_s=args.pages,
            watchlist=background, engine=args.engine,
        )  # fmt: skip
    print(json.dumps({args.what: dataclasses.asdict(result)}, ensure_ascii=False), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.pipeline", description=__doc__.split("\n")[0])
    parser.add_argument("what", choices=["throughput", "latency", "scaling"])
    parser.add_argument("--quick", action="store_true", help="small sizes (20k reads, 10k entries, 10 s)")
    parser.add_argument("--reads", type=int, help="backlog of reads (throughput, scaling; 200k)")
    parser.add_argument("--watchlist", type=int, help="watch entries (100k; latency: 0 besides the watched)")
    parser.add_argument("--workers", type=int, default=1, help="worker processes (throughput)")
    parser.add_argument("--counts", type=int, nargs="+", default=[1, 2, 4], help="worker counts (scaling)")
    parser.add_argument("--hit-kinds", default=ALL_KINDS, help="SEIZEWATCH_MATCH_HIT_KINDS of the workers")
    parser.add_argument(
        "--engine", default="batch", choices=["batch", "faust"], help="SEIZEWATCH_MATCH_ENGINE"
    )
    parser.add_argument(
        "--province-kinds", default=DEFAULT_PROVINCE_KINDS, choices=["when_missing", "always"],
        help="SEIZEWATCH_MATCH_PROVINCE_KINDS of the workers",
    )  # fmt: skip
    parser.add_argument("--rate", type=float, default=500.0, help="reads/s posted (latency)")
    parser.add_argument(
        "--background-rate", type=float, default=0.0, help="reads/s produced straight to the topic (latency)"
    )
    parser.add_argument("--duration", type=float, help="seconds of posting (latency; 60)")
    parser.add_argument("--pages", type=float, default=2.0, help="watched reads per second (latency)")
    asyncio.run(_main(parser.parse_args()))


if __name__ == "__main__":
    main()
