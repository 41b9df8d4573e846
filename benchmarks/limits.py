"""The limits a matcher worker is measured against, one stage at a time.

- :func:`bare_consumer`: how fast a bare aiokafka consumer drains ``plate.sightings`` doing nothing but
  the JSON parse every read needs anyway: the ceiling of any match stage on this machine.
- :func:`match_stage`: the match step in process (no Kafka, no PostgreSQL) against a 1M-entry index, cut
  into what ``streams.matcher.MatchStage`` does per read, for exact, fuzzy and missing reads.
- :func:`watchlist_load`: the per-record work of the watchlist follower, which bounds a cold start.
- :func:`worker_memory_and_cold_start`: a real ``seizewatch worker`` loading a 1M-entry watchlist: time
  until it may match, and its resident memory then.

Sizes are parameters, so a quick run can use small ones. Each function returns a frozen dataclass of
plain figures (``dataclasses.asdict`` serializes it).
"""

from __future__ import annotations

import asyncio
import functools
import gc
import random
import statistics
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import ConsumerRecord

from benchmarks import infra
from benchmarks.coldstart import (
    ColdStartFigures,
    WatchlistLoadFigures,
    watchlist_load,
    worker_memory_and_cold_start,
)
from benchmarks.generate import ReadMix, sightings, watch_entries, watch_plates
from streams.events import Sighting, decode_sighting
from streams.matcher import MatchStage
from streams.matching import MatchKind, WatchIndex
from streams.plates import SKELETON_BYTES, read_plate
from streams.settings import KafkaSettings, MatchSettings
from streams.topics import SIGHTINGS, spec

__all__ = [
    "CATEGORIES",
    "VARIANTS",
    "ColdStartFigures",
    "ConsumerFigures",
    "MatchFigures",
    "StageRow",
    "WatchlistLoadFigures",
    "bare_consumer",
    "build_index",
    "match_stage",
    "payloads_by_category",
    "stage_batch_us",
    "watchlist_load",
    "worker_memory_and_cold_start",
]

# --- a. the bare consumer -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ConsumerFigures:
    """Draining ``reads`` sightings from a 6-partition topic; times are first → last message."""

    reads: int
    partitions: int
    payload_bytes: float  # mean value size
    produce_s: float  # publishing them once (generation included), not part of the limit
    seconds: float  # median over the passes, parsing every value with orjson
    reads_per_s: float
    us_per_read: float
    from_seek_us_per_read: float  # the same passes timed from the seek, the first fetch included
    fetch_only_us_per_read: float  # median of passes that parse nothing: the transport alone
    passes_s: tuple[float, ...]
    fetch_only_passes_s: tuple[float, ...]


async def _drain(
    kafka: KafkaSettings, partitions: list[TopicPartition], n: int, *, parse: bool
) -> tuple[float, float]:
    """Seconds from the first message to the last, and from the seek (first fetch included) to the last."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=kafka.bootstrap_servers,
        client_id="seizewatch-bench",
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        sought = time.perf_counter()
        loads = orjson.loads
        count, first = 0, 0.0
        async with asyncio.timeout(600):
            while count < n:
                batch = await consumer.getmany(timeout_ms=1000)
                if batch and not first:
                    first = time.perf_counter()
                for records in batch.values():
                    if parse:
                        for record in records:
                            loads(record.value)
                    count += len(records)
        last = time.perf_counter()
        return last - first, last - sought
    finally:
        await consumer.stop()


async def bare_consumer(
    reads: int = 200_000, *, kafka: KafkaSettings | None = None, repeats: int = 3, seed: int = 2
) -> ConsumerFigures:
    """Publish ``reads`` sightings once to ``bench<tag>.plate.sightings``, then drain it ``repeats`` times.

    Each pass is a fresh group-less consumer assigned every partition, reading with ``getmany`` from the
    beginning; it parses each value with ``orjson.loads`` (the first step of ``decode_sighting``) and does
    nothing else. As many passes parse nothing, to separate the transport from the parse. Use 100k reads
    or more: a small topic arrives whole in the first fetch, and first → last then times the parse alone.
    """
    bench = infra.bench_kafka(kafka or KafkaSettings(), infra.new_tag())
    sightings_spec = spec(SIGHTINGS)
    [topic] = await infra.create_topics(bench, [sightings_spec])
    try:
        started = time.perf_counter()
        records = list(sightings(reads, watch_plates(1_000), seed=seed))
        await infra.produce(bench, topic, records)
        produce_s = time.perf_counter() - started
        payload = statistics.fmean(len(v) for _, v in records)
        del records
        partitions = [TopicPartition(topic, p) for p in range(sightings_spec.partitions)]
        await _drain(bench, partitions, reads, parse=False)  # warm the broker's page cache
        parsed, from_seek, bare = [], [], []
        for _ in range(repeats):
            first_to_last, seek_to_last = await _drain(bench, partitions, reads, parse=True)
            parsed.append(first_to_last)
            from_seek.append(seek_to_last)
            bare.append((await _drain(bench, partitions, reads, parse=False))[0])
    finally:
        await infra.delete_topics(bench, [topic])
    seconds = statistics.median(parsed)
    return ConsumerFigures(
        reads=reads,
        partitions=sightings_spec.partitions,
        payload_bytes=round(payload, 1),
        produce_s=round(produce_s, 2),
        seconds=round(seconds, 3),
        reads_per_s=round(reads / seconds),
        us_per_read=round(seconds / reads * 1e6, 3),
        from_seek_us_per_read=round(statistics.median(from_seek) / reads * 1e6, 3),
        fetch_only_us_per_read=round(statistics.median(bare) / reads * 1e6, 3),
        passes_s=tuple(round(s, 3) for s in parsed),
        fetch_only_passes_s=tuple(round(s, 3) for s in bare),
    )


# --- b. the match step in process ---------------------------------------------------------------------


@dataclass(frozen=True)
class StageRow:
    """One variant of the per-read work on one category of reads: the median of the repetitions."""

    variant: str
    category: str
    reads: int
    us_per_read: float
    reads_per_s: float
    runs_us: tuple[float, ...]


@dataclass(frozen=True)
class MatchFigures:
    """The match step against an index of ``entries``; rows by (variant, category)."""

    entries: int
    index_build_s: float  # WatchEntry values straight into WatchIndex.apply (no decoding)
    index_rss_mib: float  # this process's VmRSS growth from the plates to the built index
    gc_tracked_objects: int  # objects the garbage collector tracks in this process with the index
    full_gc_s: float  # one full collection (gc.collect()) with the index: a pause of the event loop
    matched_share: dict[str, float]  # reads with at least one match, by category
    matched_share_across_provinces: dict[str, float]  # the same with SEIZEWATCH_MATCH_PROVINCE_KINDS=always
    hit_share: dict[str, float]  # reads that would make a hit (default MatchSettings), by category
    hit_share_all_kinds: dict[str, float]  # the same with every kind making hits (ALL_KINDS)
    # The best match's kind per read ("none": no match), by category. Reads of unwatched vehicles that
    # match anyway (another province's car with the same letters, a confusable serial) show up here.
    match_kinds: dict[str, dict[str, int]]
    rows: tuple[StageRow, ...]

    def row(self, variant: str, category: str) -> StageRow:
        return next(r for r in self.rows if r.variant == variant and r.category == category)


# What each variant does per read, in the order reported. "stage_batch" is MatchStage.match_batch itself
# (metrics included) on ConsumerRecord objects, "stage_handle" MatchStage.handle (the faust engine's
# per-event path); "validate_json" is not production code but the prototype of a proposed change.
VARIANTS = (
    "orjson", "decode", "validate_json", "full", "plate_match", "match", "match_step", "stage_batch",
    "stage_batch_all_kinds", "stage_handle",
)  # fmt: skip
# "stage_batch_all_kinds": the same with every kind making hits, the OCR kinds too
# (SEIZEWATCH_MATCH_HIT_KINDS=exact,province,ocr,ocr_province); by default they make none, and the reads
# only they could match are ruled out by their plate, undecoded.
ALL_KINDS = frozenset(MatchKind)
CATEGORIES = ("exact", "fuzzy", "miss", "nomatch", "stream")
BATCH = 2000  # reads per MatchStage.match_batch call, as the worker's default SEIZEWATCH_MATCH_BATCH_SIZE

Pairs = list[tuple[bytes, bytes]]


def build_index(entries: int) -> tuple[WatchIndex, list[str], float, float]:
    """An index of ``entries`` active entries; its plates, build seconds and VmRSS growth (MiB)."""
    gc.collect()
    before = infra.own_rss_bytes()
    plates = watch_plates(entries, seed=1)
    started = time.perf_counter()
    index = WatchIndex()
    for entry in watch_entries(plates):
        index.apply(entry)
    build_s = time.perf_counter() - started
    gc.collect()
    return index, plates, build_s, (infra.own_rss_bytes() - before) / 2**20


def payloads_by_category(plates: Sequence[str], reads: int, seed: int, now: datetime) -> dict[str, Pairs]:
    rng = random.Random(seed)  # noqa: S311  # reproducible load, not secrets
    watched = rng.sample(list(plates), min(10_000, len(plates)))

    def pairs(count: int, mix: ReadMix, s: int) -> Pairs:
        return list(sightings(count, watched, mix=mix, seed=s, now=now))

    fuzzy = pairs(reads // 2, ReadMix(watched_share=1, ocr_noise=1, province_missing=0), seed + 1)
    fuzzy += pairs(reads - reads // 2, ReadMix(watched_share=1, ocr_noise=0, province_missing=1), seed + 2)
    rng.shuffle(fuzzy)
    return {
        "exact": pairs(reads, ReadMix(watched_share=1, ocr_noise=0, province_missing=0), seed),
        "fuzzy": fuzzy,
        "miss": pairs(reads, ReadMix(watched_share=0), seed + 3),
        "stream": pairs(reads, ReadMix(), seed + 4),
    }


def _records(pairs: Pairs) -> list[ConsumerRecord[bytes, bytes]]:
    """The (key, value) pairs as the consumer hands them to the match stage (one partition)."""
    return [
        ConsumerRecord("bench", 0, offset, 0, 0, key, value, None, len(key), len(value), ())
        for offset, (key, value) in enumerate(pairs)
    ]


def _loops(index: WatchIndex, pairs: Pairs) -> dict[str, Callable[[], None]]:
    """The variants over one category, each a closure over pre-computed inputs."""
    raws = [value for _, value in pairs]
    decoded = [decode_sighting(raw) for raw in raws]
    texts = [(s.plate, s.plate_colour, s.observed_at) for s in decoded]
    plates = [(read_plate(t), c, at) for t, c, at in texts]
    match = functools.partial(index.match, across_provinces=False)  # the default policy
    keys = index.skeleton_keys

    def parse() -> None:
        for raw in raws:
            orjson.loads(raw)

    def decode() -> None:
        for raw in raws:
            decode_sighting(raw)

    def validate_json() -> None:  # pydantic-core's own JSON parser: one pass instead of two
        for raw in raws:
            Sighting.model_validate_json(raw)

    def full() -> None:  # the whole per-read work of the faust engine's stage, minus I/O
        for raw in raws:
            s = decode_sighting(raw)
            match(read_plate(s.plate), s.plate_colour, s.observed_at)

    def plate_match() -> None:
        for text, colour, at in texts:
            match(read_plate(text), colour, at)

    def match_only() -> None:
        for plate, colour, at in plates:
            match(plate, colour, at)

    def match_step() -> None:  # MatchStage.match_batch's per-read logic, without its metrics and bookkeeping
        for key, raw in pairs:
            if key.translate(SKELETON_BYTES) in keys:
                s = decode_sighting(raw)
                match(read_plate(s.plate), s.plate_colour, s.observed_at)

    return {
        "orjson": parse,
        "decode": decode,
        "validate_json": validate_json,
        "full": full,
        "plate_match": plate_match,
        "match": match_only,
        "match_step": match_step,
    }


async def stage_batch_us(stage: MatchStage, pairs: Pairs, repeats: int) -> tuple[float, tuple[float, ...]]:
    """µs per read of ``MatchStage.match_batch`` (the production code, metrics included) over ``pairs``
    as consumer records in batches of :data:`BATCH`; the median of ``repeats`` passes after a warm-up."""
    records = _records(pairs)
    batches = [records[i : i + BATCH] for i in range(0, len(records), BATCH)]
    runs = []
    for _ in range(repeats + 1):
        started = time.perf_counter()
        for batch in batches:
            await stage.match_batch((("bench/0/", batch),))
        runs.append((time.perf_counter() - started) / len(records) * 1e6)
    return statistics.median(runs[1:]), tuple(round(r, 3) for r in runs[1:])


def _median_us(run: Callable[[], None], n: int, repeats: int) -> tuple[float, tuple[float, ...]]:
    runs = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        runs.append((time.perf_counter() - started) / n * 1e6)
    return statistics.median(runs), tuple(round(r, 3) for r in runs)


def _row(variant: str, category: str, n: int, median_us: float, runs: tuple[float, ...]) -> StageRow:
    return StageRow(variant, category, n, round(median_us, 3), round(1e6 / median_us), runs)


async def match_stage(
    entries: int = 1_000_000, *, reads: int = 20_000, repeats: int = 7, seed: int = 4
) -> MatchFigures:
    """Time the match stage's parts per read on ``reads`` pre-generated records per category.

    Categories: ``exact`` (watched plates read right), ``fuzzy`` (watched plates, half with one OCR
    confusion or a misread province, half with the province missing), ``miss`` (unwatched vehicles with
    the default noise; some match an entry anyway), ``nomatch`` (the ``miss`` reads that match nothing:
    the hot path), ``stream`` (the default :class:`ReadMix`, 0.1 % watched). Variants:
    ``orjson`` (parse only), ``decode`` (``decode_sighting``), ``full`` (decode + ``read_plate`` + match:
    the per-read work when every read is decoded), ``plate_match`` (``read_plate`` + match), ``match``
    (``WatchIndex.match`` on ready ``Plate`` values), ``match_step`` (the per-read logic of
    ``MatchStage.match_batch``: the record key's skeleton looked up, the full path only for a possible
    match), ``stage_batch`` (``MatchStage.match_batch`` itself on consumer records, a batch at a time,
    metrics included: the match stage's cost; hits are built, not recorded, which needs PostgreSQL),
    ``stage_batch_all_kinds`` (the same with the OCR kinds making hits too, :data:`ALL_KINDS`),
    ``stage_handle`` (``MatchStage.handle``, the faust engine's per-event path, on ``nomatch``).
    ``validate_json`` (``Sighting.model_validate_json``, no orjson pass) is a prototype timed beside
    them. The default match settings throughout (``province_kinds=when_missing``); the shares of reads
    matching under ``always`` are reported too. The garbage collector stays enabled and the index is
    frozen out of its collections, as in the worker.
    """
    index, plates, build_s, rss_mib = build_index(entries)
    started = time.perf_counter()
    gc.collect()
    full_gc_s = time.perf_counter() - started
    tracked = len(gc.get_objects())
    gc.freeze()  # as the worker does once its index is loaded (streams/watchsync.py)
    payloads = payloads_by_category(plates, reads, seed, datetime.now(UTC))
    del plates
    rows: list[StageRow] = []
    matched: dict[str, float] = {}
    matched_across: dict[str, float] = {}
    hit: dict[str, float] = {}
    hit_all: dict[str, float] = {}
    kinds: dict[str, dict[str, int]] = {}
    settings = MatchSettings()

    def stage_of(settings: MatchSettings) -> MatchStage:
        return MatchStage(
            index=index,
            match=settings,
            kafka=KafkaSettings(),
            pool=cast(Any, None),  # never reached: match_batch records nothing, handle records no hit here
            producer=cast(Any, None),  # nor dead-letters: every generated read is valid
        )

    stage, all_kinds = stage_of(settings), stage_of(MatchSettings(hit_kinds=ALL_KINDS))
    for category in CATEGORIES:
        pairs = payloads[category]
        if not pairs:
            continue
        read = [
            (read_plate(s.plate), s.plate_colour, s.observed_at)
            for s in (decode_sighting(v) for _, v in pairs)
        ]
        found = [index.match(*r, across_provinces=settings.across_provinces) for r in read]
        across = sum(1 for r in read if index.match(*r, across_provinces=True))
        matched[category] = round(sum(1 for f in found if f) / len(pairs), 4)
        matched_across[category] = round(across / len(pairs), 4)
        hits = sum(1 for f in found if any(stage.outcome(m) == "hit" for m in f))
        hit[category] = round(hits / len(pairs), 4)
        hits = sum(1 for f in found if any(all_kinds.outcome(m) == "hit" for m in f))
        hit_all[category] = round(hits / len(pairs), 4)
        kinds[category] = dict(Counter(f[0].kind.value if f else "none" for f in found).most_common())
        if category == "miss":  # the hot path: reads that match nothing
            payloads["nomatch"] = [pair for pair, f in zip(pairs, found, strict=True) if not f]
        for variant, run in _loops(index, pairs).items():
            run()  # warm-up
            rows.append(_row(variant, category, len(pairs), *_median_us(run, len(pairs), repeats)))
        rows.append(_row("stage_batch", category, len(pairs), *await stage_batch_us(stage, pairs, repeats)))
        all_us = await stage_batch_us(all_kinds, pairs, repeats)
        rows.append(_row("stage_batch_all_kinds", category, len(pairs), *all_us))
    misses = [value for _, value in payloads["nomatch"]]
    if misses:
        runs = []
        for _ in range(repeats + 1):  # the first run warms up
            started = time.perf_counter()
            for raw in misses:
                await stage.handle(raw, origin="bench/0/0")
            runs.append((time.perf_counter() - started) / len(misses) * 1e6)
        handled = tuple(round(r, 3) for r in runs[1:])
        rows.append(_row("stage_handle", "nomatch", len(misses), statistics.median(runs[1:]), handled))
    gc.unfreeze()  # the index may go: later measurements in this process start as they would alone
    return MatchFigures(
        entries=entries,
        index_build_s=round(build_s, 2),
        index_rss_mib=round(rss_mib, 1),
        gc_tracked_objects=tracked,
        full_gc_s=round(full_gc_s, 3),
        matched_share=matched,
        matched_share_across_provinces=matched_across,
        hit_share=hit,
        hit_share_all_kinds=hit_all,
        match_kinds=kinds,
        rows=tuple(rows),
    )
