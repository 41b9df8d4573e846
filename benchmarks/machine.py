"""Where a benchmark ran: CPU, memory, Python, the Kafka client and broker versions, the commit.

Figures are only comparable on the same machine and code; every report carries this description. It is
read from /proc, the installed distributions, the Kafka jars the local services run and git.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import re
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.infra import ROOT
from seizewatch.settings import LocalServicesSettings

__all__ = ["Machine", "describe"]

_PACKAGES = (
    "faust-streaming",
    "aiokafka",
    "orjson",
    "msgspec",
    "pydantic",
    "pydantic-core",
    "prometheus-client",
)


@dataclass(frozen=True)
class Machine:
    """The machine, runtime and code a set of figures belongs to."""

    cpu_model: str
    logical_cpus: int
    usable_cpus: int  # this process's CPU affinity (containers may restrict it)
    memory_total_mib: int
    memory_available_mib: int
    load_average: tuple[float, float, float]  # other work on the machine makes figures noisy
    kernel: str
    python: str
    packages: dict[str, str]  # distribution -> version ("missing" when not installed)
    kafka_broker: str  # version of the local broker's jar, "unknown" when none is found
    git_commit: str
    git_dirty: bool  # uncommitted changes in tracked files
    taken_at: str  # UTC, ISO 8601
    # /sys/kernel/mm/transparent_hugepage/enabled (the bracketed choice), "unknown" off Linux
    transparent_hugepage: str = "unknown"
    glibc_tunables: str = ""  # GLIBC_TUNABLES the harness started with (it re-executes as a worker does)


def _cpu_model() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or "unknown"
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("model name", "Model", "Hardware"):
            return value.strip()
    return platform.processor() or "unknown"


def _meminfo_mib(field: str) -> int:
    try:
        lines = Path("/proc/meminfo").read_text().splitlines()
    except OSError:
        return 0
    for line in lines:
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) // 1024
    return 0


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "missing"


def kafka_broker_version() -> str:
    """The version in the name of the broker jar (``kafka_2.13-X.Y.Z.jar``) the local services run.

    The configured version's folder under the cache (``SEIZEWATCH_LOCAL_CACHE_DIR``) first, then any
    other version found there.
    """
    local = LocalServicesSettings()
    cache = local.cache_dir.expanduser()
    folders = [cache / f"kafka-{local.kafka_version}-libs", *sorted(cache.glob("kafka-*-libs"))]
    for folder in folders:
        for jar in sorted(folder.glob("kafka_*.jar")):
            m = re.fullmatch(r"kafka_[\d.]+-(\d+\.\d+\.\d+)\.jar", jar.name)
            if m:
                return m.group(1)
    return "unknown"


def _git(*args: str) -> str:
    try:
        done = subprocess.run(  # noqa: S603
            ["git", *args],  # noqa: S607  # git from PATH, as a developer runs it
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return done.stdout.strip()


def describe() -> Machine:
    """Describe this machine and checkout now."""
    load = os.getloadavg()
    return Machine(
        cpu_model=_cpu_model(),
        logical_cpus=os.cpu_count() or 0,
        usable_cpus=len(os.sched_getaffinity(0)),
        memory_total_mib=_meminfo_mib("MemTotal"),
        memory_available_mib=_meminfo_mib("MemAvailable"),
        load_average=(round(load[0], 2), round(load[1], 2), round(load[2], 2)),
        kernel=platform.release(),
        python=sys.version.split()[0] + f" ({platform.python_implementation()})",
        packages={name: _version(name) for name in _PACKAGES},
        kafka_broker=kafka_broker_version(),
        git_commit=_git("rev-parse", "HEAD") or "unknown",
        git_dirty=bool(_git("status", "--porcelain", "--untracked-files=no")),
        taken_at=datetime.now(UTC).isoformat(timespec="seconds"),
        transparent_hugepage=_transparent_hugepage(),
        glibc_tunables=_started_with("GLIBC_TUNABLES"),
    )


def _started_with(name: str) -> str:
    """The variable as this process was started with it (/proc/self/environ: later changes not seen)."""
    try:
        for item in Path("/proc/self/environ").read_bytes().split(b"\0"):
            key, _, value = item.partition(b"=")
            if key.decode(errors="replace") == name:
                return value.decode(errors="replace")
    except OSError:
        pass
    return os.environ.get(name, "")


def _transparent_hugepage() -> str:
    try:
        text = Path("/sys/kernel/mm/transparent_hugepage/enabled").read_text()
    except OSError:
        return "unknown"
    m = re.search(r"\[(\w+)\]", text)
    return m.group(1) if m else text.strip()
