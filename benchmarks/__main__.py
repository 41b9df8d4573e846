"""``python -m benchmarks``: every measurement of the performance issue in one run, written to a report.

Runs, in this order, on the local Kafka and PostgreSQL (``seizewatch services up`` first): the machine;
(a) the bare aiokafka consumer; (b) the match stage in process with a 1M-entry index, and in child
processes without and with glibc's huge-page tunable, alternately (not repeated by ``--runs``); (c) the
worker's sustained throughput, faust engine and batch engine side by side, and the read → SMS latency through
ingest, worker and pager with the worker at half the batch worker's rate (a lot posting through ingest,
the rest produced straight to the topic); (d) a worker's memory and cold start with
1M watch entries; (e) 1, 2 and 4 batch workers on one topic. Every figure is the median of ``--runs``
runs; the ratios are taken between figures of this one run. The report goes to ``docs/benchmarks.md``
and the raw figures to ``var/bench/results.json``.

The harness re-executes itself with glibc's transparent huge pages on, as ``seizewatch worker`` does
(streams/hugepages.py), so that (a) and (b) run on the pages a worker runs on; the processes it starts
get the environment it was given, so each worker re-executes itself as in production (its cold start
includes that) and the other processes (ingest, pager, load) run as they would.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import functools
import json
import logging
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from benchmarks import coldstart, latency, limits, machine, pages, pipeline, report
from streams.hugepages import forget_reexec, reexec_with_huge_pages

ROOT = Path(__file__).resolve().parent.parent
# Reads/s the parking lot posts through one ingest process in (c); the rest of half the worker's rate is
# produced straight to the topic (benchmarks/load.py): one ingest process takes 5–6k reads/s here.
LOT_RATE = 2_000.0
T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class Sizes:
    """How big each measurement is; ``QUICK`` checks the harness end to end in a few minutes."""

    bare_reads: int = 600_000
    match_entries: int = 1_000_000
    match_reads: int = 20_000
    # A batch worker drains 200k reads in about a second: 600k give a steady state of a few seconds.
    throughput_reads: int = 600_000
    faust_reads: int = 150_000  # the faust engine takes a minute for these
    throughput_watchlist: int = 100_000
    latency_seconds: float = 60.0
    coldstart_entries: int = 1_000_000
    scaling_reads: int = 600_000
    worker_counts: tuple[int, ...] = (1, 2, 4)


FULL = Sizes()
QUICK = Sizes(
    bare_reads=100_000,
    match_entries=50_000,
    match_reads=2_000,
    throughput_reads=150_000,  # fewer drain before the first sample: no rate
    faust_reads=10_000,
    throughput_watchlist=10_000,
    latency_seconds=15.0,
    coldstart_entries=50_000,
    scaling_reads=150_000,
    worker_counts=(1, 2),
)


async def _runs(n: int, what: str, measure: Callable[[], Awaitable[T]]) -> list[T]:
    results: list[T] = []
    for i in range(n):
        started = time.perf_counter()
        results.append(await measure())
        print(f"  {what}: run {i + 1}/{n} in {time.perf_counter() - started:.0f} s", flush=True)
    return results


def _median_of(results: Sequence[Any], name: str) -> float:
    return float(statistics.median(getattr(r, name) for r in results))


async def run(sizes: Sizes, runs: int) -> dict[str, Any]:
    """Every measurement; the raw results, JSON-ready."""
    print("machine", flush=True)
    figures: dict[str, Any] = {"machine": machine.describe(), "runs": runs, "sizes": sizes}
    print("(a) bare consumer", flush=True)
    figures["bare"] = await _runs(runs, "bare", lambda: limits.bare_consumer(sizes.bare_reads))
    print("(b) match stage in process", flush=True)
    figures["match"] = await _runs(
        runs, "match stage", lambda: limits.match_stage(sizes.match_entries, reads=sizes.match_reads)
    )
    print("(b) the match stage on 4 KiB pages and on huge pages, child processes side by side", flush=True)
    figures["pages"] = await pages.side_by_side(sizes.match_entries, sizes.match_reads)
    print("(c) worker throughput, faust then batch engine", flush=True)
    datasets = {
        "faust": pipeline.dataset(sizes.faust_reads, watchlist=sizes.throughput_watchlist),
        "batch": pipeline.dataset(sizes.throughput_reads, watchlist=sizes.throughput_watchlist),
    }

    def drain(engine: str) -> Awaitable[pipeline.Throughput]:
        data = datasets[engine]
        return pipeline.worker_throughput(1, len(data.reads), data=data, engine=engine)

    for engine in ("faust", "batch"):
        figures[f"throughput_{engine}"] = await _runs(runs, engine, functools.partial(drain, engine))
    datasets.clear()  # a million reads less held for the measurements after
    half = _median_of(figures["throughput_batch"], "reads_per_s") / 2
    lot = min(LOT_RATE, half)
    print(f"(c) read → SMS latency at {half:.0f} reads/s ({lot:.0f} through ingest)", flush=True)
    figures["latency"] = await _runs(
        runs,
        "latency",
        lambda: latency.read_to_sms_latency(lot, sizes.latency_seconds, background_rate=half - lot),
    )
    print("(d) worker memory and cold start", flush=True)
    figures["coldstart"] = await _runs(
        runs, "cold start", lambda: coldstart.worker_memory_and_cold_start(sizes.coldstart_entries)
    )
    print("(e) scaling", flush=True)
    figures["scaling"] = await _runs(
        runs, "scaling", lambda: pipeline.scaling(sizes.worker_counts, sizes.scaling_reads)
    )
    return figures


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="small sizes: checks the harness, not the targets"
    )
    parser.add_argument("--runs", type=int, default=3, help="runs of each measurement (the median is quoted)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--json", type=Path, default=ROOT / "var" / "bench" / "results.json")
    parser.add_argument("--render", action="store_true", help="measure nothing: rewrite --out from --json")
    args = parser.parse_args(argv)
    if not args.render:
        reexec_with_huge_pages()  # as the worker does: (a) and (b) on the pages it runs on
        forget_reexec()  # and the processes it starts choose their own: a worker re-executes itself
    if args.render:
        figures = json.loads(args.json.read_text(encoding="utf-8"))
        args.out.write_text(report.render(figures, quick=args.quick), encoding="utf-8")
        return
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    sizes = QUICK if args.quick else FULL
    started = time.perf_counter()
    figures = _jsonable(asyncio.run(run(sizes, args.runs)))
    figures["wall_s"] = round(time.perf_counter() - started)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(figures, ensure_ascii=False, indent=1), encoding="utf-8")
    args.out.write_text(report.render(figures, quick=args.quick), encoding="utf-8")
    print(f"wrote {args.out} and {args.json} in {figures['wall_s']} s")


if __name__ == "__main__":
    main()
