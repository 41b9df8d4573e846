"""Transparent huge pages for a matcher worker's heap: the watchlist index's tables on 2 MiB pages.

Almost every read costs one lookup at a random place in a set table of some 64 MB at a million entries
(the per-read check of :mod:`streams.matcher`). On 4 KiB pages that table spans 16,000 pages, far more
than the processor's TLB holds, so most lookups also walk the page tables; on 2 MiB pages, 32. Side by
side on the benchmark machine the match stage's cost per read fell to 0.6–0.9× on the default mix and
to 0.3–0.95× on reads matching nothing in most pairs of runs (docs/performance.md), the memory
unchanged; this machine's noise is at times as large.

CPython allocates large objects (a dict's or a set's table) with ``malloc``, and glibc (2.35 and later)
asks the kernel for huge pages for its heap when the tunable ``glibc.malloc.hugetlb=1`` is set; glibc
reads tunables only when a process starts, so the worker re-executes itself once with it set
(:func:`reexec_with_huge_pages`). Elsewhere nothing happens: another C library or an older glibc is not
re-executed for, a kernel whose ``transparent_hugepage/enabled`` is ``never`` gives 4 KiB pages anyway
(and one at ``always`` gives huge pages without being asked). What the worker really got is its metric
``seizewatch_worker_huge_pages_bytes``.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping, MutableMapping
from pathlib import Path

log = logging.getLogger(__name__)

TUNABLE = "glibc.malloc.hugetlb"
SETTING = f"{TUNABLE}=1"
# Set in the re-executed process, to GLIBC_TUNABLES as it was before: the process never re-executes
# again, and can give the processes it starts the environment it was given (forget_reexec).
REEXECUTED = "SEIZEWATCH_HUGE_PAGES_REEXECUTED"
_MIN_GLIBC = (2, 35)


def with_tunable(tunables: str, value: str) -> str:
    """A ``GLIBC_TUNABLES`` value with ``glibc.malloc.hugetlb`` set to ``value``, the others kept."""
    others = [part for part in tunables.split(":") if part and part.split("=", 1)[0] != TUNABLE]
    return ":".join([*others, f"{TUNABLE}={value}"])


def with_huge_pages(env: Mapping[str, str]) -> dict[str, str] | None:
    """``env`` with the tunable added to ``GLIBC_TUNABLES`` (a colon-separated list, kept), or None when
    it names ``glibc.malloc.hugetlb`` already (whatever the value: an operator's choice) or when this
    process was re-executed for it already."""
    if REEXECUTED in env:
        return None
    present = env.get("GLIBC_TUNABLES", "")
    if any(part.split("=", 1)[0] == TUNABLE for part in present.split(":")):
        return None
    return {**env, "GLIBC_TUNABLES": with_tunable(present, "1"), REEXECUTED: present}


def _glibc_supports_it() -> bool:
    try:
        name, _, version = (os.confstr("CS_GNU_LIBC_VERSION") or "").partition(" ")
        return name == "glibc" and tuple(int(x) for x in version.split(".")[:2]) >= _MIN_GLIBC
    except (ValueError, OSError):
        return False


def reexec_with_huge_pages() -> None:
    """Re-execute this process (same interpreter, same arguments, same PID) with the tunable set, unless
    it is set already, or the C library is not a glibc that knows it. Returns only when nothing was done
    (or the re-execution failed: then the process runs on as it is, on 4 KiB pages, and says so).

    Call it first thing: nothing done before it survives, but a process manager sees the same process.
    """
    if not sys.platform.startswith("linux") or not _glibc_supports_it():
        return
    env = with_huge_pages(os.environ)
    if env is None:
        return
    log.info("re-executing with GLIBC_TUNABLES=%s (transparent huge pages)", env["GLIBC_TUNABLES"])
    for stream in (sys.stdout, sys.stderr):
        if stream is not None:
            stream.flush()
    try:
        os.execve(sys.executable, sys.orig_argv, env)  # noqa: S606  # this same program, its own arguments
    except OSError as exc:
        log.warning("could not re-execute for huge pages (%s): running on as started", exc)


def forget_reexec(environ: MutableMapping[str, str] = os.environ) -> None:
    """Give ``environ`` back the ``GLIBC_TUNABLES`` it had before the re-execution (glibc has read it), so
    the processes started from here choose their own pages (a worker re-executes itself, others not)."""
    before = environ.pop(REEXECUTED, None)
    if before is None:
        return
    if before:
        environ["GLIBC_TUNABLES"] = before
    else:
        environ.pop("GLIBC_TUNABLES", None)


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
