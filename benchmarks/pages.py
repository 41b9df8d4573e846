"""The match stage on 4 KiB pages and on transparent huge pages, side by side (before and after).

A matcher worker re-executes itself with glibc's ``glibc.malloc.hugetlb=1`` (streams/hugepages.py) so
that the watchlist index's tables sit on 2 MiB pages. The tunable is read only when a process starts, so
the two settings cannot be compared in one process: :func:`side_by_side` runs a child process per
setting, alternately, each building the same 1M-entry index and timing the production
``MatchStage.match_batch`` on the same reads (:mod:`benchmarks.limits`), and reports what each measured
and how much of its memory was on huge pages.

``python -m benchmarks.pages --entries N --reads R --passes P`` is the child: one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import statistics
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from benchmarks.infra import own_rss_bytes
from benchmarks.limits import build_index, payloads_by_category, stage_batch_us
from benchmarks.support import ROOT
from streams.events import decode_sighting
from streams.hugepages import REEXECUTED, huge_pages_bytes, with_tunable
from streams.matcher import MatchStage
from streams.plates import read_plate
from streams.settings import KafkaSettings, MatchSettings
from streams.vehicles import PlateColour

SETTINGS = {"4k": "0", "huge": "1"}  # glibc.malloc.hugetlb


@dataclass(frozen=True)
class PagesRun:
    """One child process: µs per read of ``stage_batch`` (median of its passes) by category."""

    pages: str  # "4k" or "huge": the tunable it ran with
    stream_us: float  # the default mix
    nomatch_us: float  # reads that match nothing: the hot path alone
    huge_pages_mib: float  # of the child's memory, on huge pages (AnonHugePages)
    rss_mib: float


@dataclass(frozen=True)
class PagesFigures:
    entries: int
    reads: int
    passes: int
    runs: tuple[PagesRun, ...]  # in the order run: 4k, huge, 4k, huge…


async def _child(entries: int, reads: int, passes: int) -> dict[str, float]:
    index, plates, _, _ = build_index(entries)
    gc.freeze()  # as the worker does once its index is loaded
    now = datetime.now(UTC)
    payloads = payloads_by_category(plates, reads, 4, now)
    payloads["nomatch"] = [
        (key, value)
        for key, value in payloads["miss"]
        if not index.match(
            read_plate(decode_sighting(value).plate), PlateColour.UNKNOWN, now, across_provinces=False
        )
    ]
    stage = MatchStage(
        index=index, match=MatchSettings(), kafka=KafkaSettings(),
        pool=cast(Any, None), producer=cast(Any, None),
    )  # fmt: skip
    figures: dict[str, float] = {}
    for category in ("stream", "nomatch"):
        figures[f"{category}_us"] = round((await stage_batch_us(stage, payloads[category], passes))[0], 3)
    figures["huge_pages_mib"] = round(huge_pages_bytes() / 2**20, 1)
    figures["rss_mib"] = round(own_rss_bytes() / 2**20, 1)
    return figures


async def side_by_side(entries: int, reads: int, *, alternations: int = 3, passes: int = 15) -> PagesFigures:
    """``alternations`` pairs of child processes, 4 KiB pages then huge pages, on the same index and reads."""
    runs: list[PagesRun] = []
    for _ in range(alternations):
        for pages, tunable in SETTINGS.items():
            env = {k: v for k, v in os.environ.items() if k != REEXECUTED}
            env["GLIBC_TUNABLES"] = with_tunable(env.get("GLIBC_TUNABLES", ""), tunable)  # others kept
            child = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "benchmarks.pages", "--entries", str(entries), "--reads", str(reads),
                "--passes", str(passes), env=env, cwd=ROOT, stdout=asyncio.subprocess.PIPE,
            )  # fmt: skip
            out, _ = await child.communicate()
            if child.returncode != 0:
                raise RuntimeError(f"the {pages} child failed (exit {child.returncode})")
            runs.append(PagesRun(pages=pages, **json.loads(out.decode().strip().splitlines()[-1])))
    return PagesFigures(entries=entries, reads=reads, passes=passes, runs=tuple(runs))


def medians(figures: PagesFigures, pages: str, name: str) -> float:
    return float(statistics.median(getattr(r, name) for r in figures.runs if r.pages == pages))


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.pages", description=__doc__.split("\n")[0])
    parser.add_argument("--entries", type=int, required=True)
    parser.add_argument("--reads", type=int, required=True)
    parser.add_argument("--passes", type=int, default=15)
    args = parser.parse_args()
    started = time.perf_counter()
    figures = asyncio.run(_child(args.entries, args.reads, args.passes))
    print(json.dumps(figures), flush=True)
    print(f"{time.perf_counter() - started:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
