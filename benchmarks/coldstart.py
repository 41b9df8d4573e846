"""How long a worker takes to load the watchlist before it may match, and how much memory it then holds.

:func:`watchlist_load` times the follower's per-record work in process; :func:`worker_memory_and_cold_start`
runs a real ``seizewatch worker`` on a 1M-entry ``watchlist.changes``. Both are re-exported by
:mod:`benchmarks.limits`.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import msgspec
import orjson
from aiokafka.structs import ConsumerRecord

from benchmarks import infra
from benchmarks.generate import watch_changes, watch_plates
from seizewatch.demo import scrape
from seizewatch.scratch import free_port
from streams.matching import WatchIndex
from streams.plates import parse_plate
from streams.settings import KafkaSettings, PostgresSettings
from streams.topics import WATCHLIST_CHANGES
from streams.watchlist import WatchEntry, WatchEntryV1, decode_entry
from streams.watchsync import WatchlistFollower

# --- the follower's work in process -------------------------------------------------------------------


@dataclass(frozen=True)
class WatchlistLoadFigures:
    """Applying ``entries`` change records the way the follower does, and its parts (µs per record)."""

    entries: int
    apply_s: float  # WatchlistFollower._apply on every record, garbage collector enabled (as the worker)
    apply_us: float
    apply_no_gc_s: float  # the same with the garbage collector disabled
    sample: int  # records the breakdown below was timed on
    orjson_us: float  # orjson.loads of the value alone: the floor of any decoding
    wire_decode_us: float  # msgspec's validated decode into WatchEntryV1
    parse_plate_us: float  # the strict plate parse in WatchEntryV1.to_entry
    decode_entry_us: float  # both, and the WatchEntry
    index_apply_us: float  # WatchIndex.apply of a decoded entry


def _records(changes: list[tuple[bytes, bytes]]) -> Callable[[], list[ConsumerRecord[bytes, bytes]]]:
    now_ms = int(time.time() * 1000)

    def make() -> list[ConsumerRecord[bytes, bytes]]:
        return [
            ConsumerRecord(WATCHLIST_CHANGES, 0, i, now_ms, 0, k, v, None, len(k), len(v), ())
            for i, (k, v) in enumerate(changes)
        ]

    return make


def _apply_all(index: WatchIndex, entries: list[WatchEntry]) -> None:
    for entry in entries:
        index.apply(entry)


def _per_item_us(run: Callable[[], object], n: int, repeats: int = 3) -> float:
    """Median µs per item of ``repeats`` runs over ``n`` items."""
    runs = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        runs.append((time.perf_counter() - started) / n * 1e6)
    return round(statistics.median(runs), 3)


async def watchlist_load(entries: int = 1_000_000, *, sample: int = 100_000) -> WatchlistLoadFigures:
    """Time ``WatchlistFollower._apply`` over ``entries`` records (what a cold start spends its CPU on).

    The records are built before the clock starts; the follower never touches Kafka here. The breakdown is
    timed on the first ``sample`` records.
    """
    changes = list(watch_changes(watch_plates(entries)))
    make = _records(changes)
    timings: list[float] = []
    for collect in (True, False):
        records = make()
        follower = WatchlistFollower(KafkaSettings(), WatchIndex())
        gc.collect()
        if not collect:
            gc.disable()
        try:
            started = time.perf_counter()
            for record in records:
                follower._apply(record)  # the follower's own per-record step
            timings.append(time.perf_counter() - started)
        finally:
            gc.enable()
        del follower, records
    part = changes[:sample]
    values = [v for _, v in part]
    decode_wire = msgspec.json.Decoder(WatchEntryV1).decode
    models = [decode_wire(v) for v in values]
    decoded = [decode_entry(v) for v in values]
    n = len(part)

    return WatchlistLoadFigures(
        entries=entries,
        apply_s=round(timings[0], 2),
        apply_us=round(timings[0] / entries * 1e6, 3),
        apply_no_gc_s=round(timings[1], 2),
        sample=n,
        orjson_us=_per_item_us(lambda: [orjson.loads(v) for v in values], n),
        wire_decode_us=_per_item_us(lambda: [decode_wire(v) for v in values], n),
        parse_plate_us=_per_item_us(lambda: [parse_plate(m.plate) for m in models], n),
        decode_entry_us=_per_item_us(lambda: [decode_entry(v) for v in values], n),
        index_apply_us=_per_item_us(lambda: _apply_all(WatchIndex(), decoded), n),
    )


# --- a real worker --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ColdStartFigures:
    """A ``seizewatch worker`` started on ``entries`` watch changes; seconds from process start."""

    entries: int
    python_gc: bool  # False: the prototype run with the garbage collector disabled
    publish_s: float  # generating and publishing the changes (before the worker starts)
    metrics_up_s: float  # /metrics answers: imports done, settings read, topics checked
    first_entry_s: float  # the index holds its first entries
    caught_up_s: float  # seizewatch_watchlist_caught_up 1 with every entry: the worker may match
    rss_mib: float  # VmRSS of the process tree when caught up
    hwm_mib: float  # VmHWM (peak resident) of the process tree when caught up
    settled_rss_mib: float  # VmRSS ``settle_s`` later
    processes: int
    stop_s: float  # SIGTERM → exit
    exit_code: int


@dataclass
class _Timeline:
    metrics_up: float | None = None
    first_entry: float | None = None


async def _caught_up(
    proc: subprocess.Popen[bytes], port: int, entries: int, started: float, log: Path, within: float
) -> _Timeline:
    timeline = _Timeline()
    async with httpx.AsyncClient(headers={"Accept-Encoding": "identity"}) as client, asyncio.timeout(within):
        while True:
            if proc.poll() is not None:
                tail = (await asyncio.to_thread(log.read_text, errors="replace"))[-3000:]
                raise RuntimeError(f"worker exited with {proc.returncode}:\n{tail}")
            values = await scrape(client, port)
            now = time.perf_counter() - started
            if values and timeline.metrics_up is None:
                timeline.metrics_up = now
            loaded = values.get("seizewatch_watchlist_entries", 0.0)
            if loaded and timeline.first_entry is None:
                timeline.first_entry = now
            if values.get("seizewatch_watchlist_caught_up") == 1 and loaded >= entries:
                return timeline
            await asyncio.sleep(0.1)


# A prototype, not how production runs: the same command with the garbage collector off from the start.
_WITHOUT_GC = (
    "import gc, sys; gc.disable(); sys.argv = ['seizewatch', 'worker'];"
    " from seizewatch.cli import main; main()"
)


def _spawn(env: dict[str, str], log: Path, *, python_gc: bool) -> subprocess.Popen[bytes]:
    """``.venv/bin/seizewatch worker`` in its own session, its output in ``log``."""
    bindir = Path(sys.executable).parent
    argv = [str(bindir / "seizewatch"), "worker"] if python_gc else [sys.executable, "-c", _WITHOUT_GC]
    with log.open("wb") as out:
        return subprocess.Popen(  # noqa: S603  # the project's own command
            argv,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=infra.ROOT,
            start_new_session=True,
        )


async def _stop(proc: subprocess.Popen[bytes]) -> float:
    started = time.perf_counter()
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.to_thread(proc.wait, 60)
        except subprocess.TimeoutExpired:
            proc.kill()
            await asyncio.to_thread(proc.wait)
    return round(time.perf_counter() - started, 2)


async def worker_memory_and_cold_start(
    entries: int = 1_000_000,
    *,
    kafka: KafkaSettings | None = None,
    postgres: PostgresSettings | None = None,
    within: float = 900,
    settle_s: float = 5.0,
    python_gc: bool = True,
) -> ColdStartFigures:
    """Publish ``entries`` changes to a fresh prefix, start a worker on it, wait until it may match.

    Every declared topic is created under ``bench<tag>.`` and a database ``bench_<tag>`` is migrated, as
    the tests' ``isolated`` fixture does; both are removed afterwards. The worker is ``.venv/bin/seizewatch
    worker`` with its own metrics port and local home; it is stopped with SIGTERM. ``python_gc=False``
    runs the same worker with Python's garbage collector disabled for its whole life: a prototype that
    measures what deferring collection during the catch-up would gain, not a way to run production.
    """
    tag = infra.new_tag()
    bench = infra.bench_kafka(kafka or KafkaSettings(), tag)
    async with infra.all_topics(bench), infra.fresh_database(postgres or PostgresSettings(), tag) as pg:
        started = time.perf_counter()
        await infra.produce(bench, bench.topic(WATCHLIST_CHANGES), watch_changes(watch_plates(entries)))
        publish_s = time.perf_counter() - started
        with tempfile.TemporaryDirectory(prefix="seizewatch-bench-") as home:
            port = free_port()
            log = Path(home) / "worker.log"
            started = time.perf_counter()
            proc = _spawn(infra.worker_env(bench, pg, port, Path(home)), log, python_gc=python_gc)
            stop_s = 0.0
            try:
                timeline = await _caught_up(proc, port, entries, started, log, within)
                caught_up_s = time.perf_counter() - started
                memory = infra.tree_memory(proc.pid)
                await asyncio.sleep(settle_s)
                settled = infra.tree_memory(proc.pid)
            finally:
                with contextlib.suppress(ProcessLookupError):
                    stop_s = await _stop(proc)
    return ColdStartFigures(
        entries=entries,
        python_gc=python_gc,
        publish_s=round(publish_s, 1),
        metrics_up_s=round(timeline.metrics_up or 0.0, 2),
        first_entry_s=round(timeline.first_entry or 0.0, 2),
        caught_up_s=round(caught_up_s, 2),
        rss_mib=round(memory.rss_mib, 1),
        hwm_mib=round(memory.hwm_mib, 1),
        settled_rss_mib=round(settled.rss_mib, 1),
        processes=len(memory.pids),
        stop_s=stop_s,
        exit_code=proc.returncode,
    )
