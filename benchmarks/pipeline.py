"""End-to-end benchmarks of the performance issue: the real processes on the real Kafka and PostgreSQL.

- :func:`worker_throughput` (c1): reads/s of ``seizewatch worker`` processes draining a backlog produced
  before they started, counted from the moment every worker caught up with the watchlist (cold start is
  not counted) until every read was processed; the hits in PostgreSQL must be exactly those expected.
- :func:`benchmarks.latency.read_to_sms_latency` (c2), in a module of its own: read → SMS through the
  whole pipeline, with the worker at the load asked.
- :func:`scaling` (e): c1 for several worker counts on the same data.

``python -m benchmarks.pipeline {throughput,latency,scaling} [--quick]`` prints each result as JSON.
Nothing here is part of the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

import asyncpg
import httpx

from benchmarks import latency, support
from benchmarks.generate import ReadMix, sightings, watch_changes, watch_plates
from benchmarks.infra import produce
from benchmarks.support import DataLost, eventually, now, summed
from streams.errors import InvalidInput
from streams.events import decode_sighting
from streams.hits import hit_id_for
from streams.matching import MatchKind, WatchIndex
from streams.plates import read_plate
from streams.settings import MatchSettings
from streams.topics import SIGHTINGS, WATCHLIST_CHANGES
from streams.watchlist import WatchEntry, decode_entry

# The workers' SEIZEWATCH_MATCH_HIT_KINDS unless told otherwise: the default (no OCR kind makes hits).
DEFAULT_HIT_KINDS = ",".join(sorted(kind.value for kind in MatchSettings().hit_kinds))
DEFAULT_MIX = ReadMix()  # 0.1 % watched reads, camera noise as the generator has it
DEAD_LETTERS = "seizewatch_dead_letters_total{"
SAMPLE_S = 0.05  # between samples of the workers' counters: a batch worker drains 600k reads in ~2.5 s
DEFAULT_PROVINCE_KINDS = MatchSettings.model_fields["province_kinds"].default


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
    hit_kinds: str = DEFAULT_HIT_KINDS,
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
            await eventually(lambda: summed(client, running, caught_up), lambda n: n == workers, within=600)
            ready, cpu = now(), sum(w.cpu_seconds() for w in running)
            samples = [(ready, await summed(client, running))]
            async with asyncio.timeout(within):
                while samples[-1][1] < len(data.reads):
                    await asyncio.sleep(SAMPLE_S)
                    samples.append((now(), await summed(client, running)))
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
    if len(samples) < 3:  # done by the first samples (SAMPLE_S apart): no rate to speak of
        raise ValueError(
            f"{workers} worker(s) drained {len(data.reads):,} reads within {len(samples)} sample(s) of"
            " being ready: too few reads to measure a rate; use more"
        )
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
    hit_kinds: str = DEFAULT_HIT_KINDS,
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


# ------------------------------------------------------------------------------------------- command


async def _main(args: argparse.Namespace) -> None:
    reads = args.reads or (150_000 if args.quick else 600_000)
    watchlist = args.watchlist if args.watchlist is not None else (10_000 if args.quick else 100_000)
    result: Throughput | Scaling | latency.Latency
    kinds = {"hit_kinds": args.hit_kinds, "engine": args.engine, "province_kinds": args.province_kinds}
    if args.what == "throughput":
        data = dataset(reads, watchlist=watchlist, province_kinds=args.province_kinds)
        print(f"core: {data.core_reads_per_s} reads/s; matches: {data.matches_by_kind()}", flush=True)
        result = await worker_throughput(args.workers, reads, data=data, **kinds)
    elif args.what == "scaling":
        result = await scaling(tuple(args.counts), reads, watchlist=watchlist, **kinds)
    else:
        duration, background = args.duration or (10 if args.quick else 60), args.watchlist or 0
        result = await latency.read_to_sms_latency(
            args.rate, duration, background_rate=args.background_rate, pages_per_s=args.pages,
            watchlist=background, engine=args.engine,
        )  # fmt: skip
    print(json.dumps({args.what: dataclasses.asdict(result)}, ensure_ascii=False), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.pipeline", description=__doc__.split("\n")[0])
    parser.add_argument("what", choices=["throughput", "latency", "scaling"])
    parser.add_argument("--quick", action="store_true", help="small sizes (150k reads, 10k entries, 10 s)")
    parser.add_argument("--reads", type=int, help="backlog of reads (throughput, scaling; 600k)")
    parser.add_argument("--watchlist", type=int, help="watch entries (100k; latency: 0 besides the watched)")
    parser.add_argument("--workers", type=int, default=1, help="worker processes (throughput)")
    parser.add_argument("--counts", type=int, nargs="+", default=[1, 2, 4], help="worker counts (scaling)")
    parser.add_argument(
        "--hit-kinds", default=DEFAULT_HIT_KINDS, help="SEIZEWATCH_MATCH_HIT_KINDS of the workers"
    )
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
