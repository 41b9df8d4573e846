"""Transparent huge pages for a matcher worker's heap: the watchlist index's tables on 2 MiB pages.

Almost every read costs one lookup at a random place in a set table of some 64 MB at a million entries
(the per-read check of :mod:`streams.matcher`). On 4 KiB pages that table spans 16,000 pages, far more
than the processor's TLB holds, so most lookups also walk the page tables; on 2 MiB pages, 32. Side by side on the benchmark
machine the match stage's cost per read fell to 0.6–0.8× on the default mix and to 0.4× on reads
matching nothing (docs/performance.md), the memory unchanged.

CPython allocates large objects (a dict's or a set's table) with ``malloc``, and glibc (2.35 and later)
asks the kernel for huge pages for its heap when the tunable ``glibc.malloc.hugetlb=1`` is set; glibc
reads tunables only when a process starts, so the worker re-executes itself once with it set
(:func:`reexec_with_huge_pages`). Elsewhere the tunable is inert: an older glibc or another C library
ignores it, a kernel whose ``transparent_hugepage/enabled`` is ``never`` gives 4 KiB pages anyway. What
the worker really got is its metric ``seizewatch_worker_huge_pages_bytes``.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from pathlib import Path

log = logging.getLogger(__name__)

TUNABLE = "glibc.malloc.hugetlb"
SETTING = f"{TUNABLE}=1"
# Set in the re-executed process, so that it never re-executes again whatever GLIBC_TUNABLES says.
REEXECUTED = "SEIZEWATCH_HUGE_PAGES_REEXECUTED"


def with_huge_pages(env: Mapping[str, str]) -> dict[str, str] | None:
    """``env`` with the tunable added to ``GLIBC_TUNABLES`` (a colon-separated list, kept), or None when
    it names ``glibc.malloc.hugetlb`` already (whatever the value: an operator's choice) or when this
    process was re-executed for it already."""
    if env.get(REEXECUTED):
        return None
    present = env.get("GLIBC_TUNABLES", "")
    if any(part.split("=", 1)[0] == TUNABLE for part in present.split(":")):
        return None
    return {**env, "GLIBC_TUNABLES": f"{present}:{SETTING}" if present else SETTING, REEXECUTED: "1"}


def reexec_with_huge_pages() -> None:
    """Re-execute this process (same interpreter, same arguments, same PID) with the tunable set, unless
    it is set already or this is not Linux. Returns only when nothing was to be done.

    Call it first thing: nothing done before it survives, but a process manager sees the same process.
    """
    if not sys.platform.startswith("linux"):
        return
    env = with_huge_pages(os.environ)
    if env is None:
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, sys.orig_argv, env)  # noqa: S606  # this same program, its own arguments


def huge_pages_bytes(smaps_rollup: Path = Path("/proc/self/smaps_rollup")) -> float:
    """Anonymous memory of this process on transparent huge pages (``AnonHugePages``); 0 where unknown."""
    try:
        text = smaps_rollup.read_text()
    except OSError:
        return 0.0
    for line in text.splitlines():
        if line.startswith("AnonHugePages:"):
            return float(line.split()[1]) * 1024
    return 0.0
