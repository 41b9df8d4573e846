"""What the local services' processes share: loopback addresses, commands and packages, pid files, logs."""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from streams.errors import ConfigurationError, ServiceUnavailable

log = logging.getLogger(__name__)

READY_TIMEOUT_S = 90.0
_LOG_ROTATE_BYTES = 20 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Address:
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def require_loopback(host: str, variable: str) -> None:
    """Raises: ConfigurationError: ``host`` is not a loopback address (named with ``variable``)."""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ConfigurationError(
            f"{variable}: {host!r} is not a loopback address; `seizewatch services` runs local services only"
        )


def pid_in(path: Path, *, command: str) -> int | None:
    """The live process whose id is the first line of ``path`` and whose command line contains ``command``.

    Checking the command line keeps a recycled pid from passing for the service; a zombie (an orphan that
    nobody reaped yet) counts as gone.
    """
    try:
        pid = int(path.read_text().split("\n", 1)[0])
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except (OSError, ValueError):
        return None
    if stat.rpartition(")")[2].split()[0] == "Z" or command not in cmdline:
        return None
    return pid


def alive(pid: int) -> bool:
    """Whether process ``pid`` exists and is no zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


def wait_gone(pid: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        time.sleep(0.2)
    return False


def listening(address: Address) -> bool:
    try:
        with socket.create_connection((address.host, address.port), timeout=1.0):
            return True
    except OSError:
        return False


def describe(pid: int | None, address: Address) -> str:
    """A service's status line: ``running (pid N) on HOST:PORT``, ``stopped``..."""
    if pid is None:
        return "stopped"
    if not listening(address):
        return f"starting or not answering (pid {pid}), expected on {address}"
    return f"running (pid {pid}) on {address}"


def tail(path: Path, lines: int = 40) -> str:
    try:
        with path.open("rb") as file:
            file.seek(max(0, file.seek(0, os.SEEK_END) - 16384))
            text = file.read().decode(errors="replace")
    except OSError as exc:
        return f"({path}: {exc.strerror})"
    return f"last lines of {path}:\n" + "\n".join(text.splitlines()[-lines:])


def open_log(path: Path) -> BinaryIO:
    """``path`` opened for appending; a log over 20 MiB is first moved to ``<name>.1``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        if path.stat().st_size > _LOG_ROTATE_BYTES:
            path.replace(path.with_name(path.name + ".1"))
    log_file = path.open("ab")
    log_file.write(f"---- {time.strftime('%Y-%m-%d %H:%M:%S')} started by seizewatch services\n".encode())
    log_file.flush()
    return log_file


def run(
    argv: list[str], what: str, *, stdin: str | None = None, timeout_s: float = 120.0, detach: bool = False
) -> str:
    """Runs ``argv`` to completion and returns its stdout.

    Raises:
        ServiceUnavailable: it could not run, failed or timed out; its output is in the message.
    """
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    try:
        # cwd "/": the postgres OS user may not be allowed into the current directory.
        done = subprocess.run(
            argv,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            cwd="/",
            env=env,
            check=False,
            start_new_session=detach,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ServiceUnavailable(f"{what}: {exc}") from exc
    if done.returncode != 0:
        output = (done.stdout + done.stderr).strip()[-4000:]
        raise ServiceUnavailable(f"{what} failed (exit {done.returncode}):\n{output}")
    return done.stdout


class Installer:
    """Finds commands, installing Debian packages when they are missing (as root; `apt-get update` once)."""

    def __init__(self) -> None:
        self.is_root = os.geteuid() == 0
        self._apt_updated = False

    def command(self, name: str, package: str) -> str:
        """The path of the command ``name``, installing ``package`` first when it is missing."""
        path = shutil.which(name)
        if path is None:
            self.apt_install(package)
            path = shutil.which(name)
            if path is None:
                raise ServiceUnavailable(f"{name}: still missing after installing {package}")
        return path

    def apt_install(self, package: str) -> None:
        if not self.is_root:
            raise ConfigurationError(f"{package} is missing; install it: sudo apt-get install -y {package}")
        if not self._apt_updated:
            log.info("apt-get update")
            run(["apt-get", "update"], "apt-get update", timeout_s=600.0)
            self._apt_updated = True
        log.info("installing %s with apt-get", package)
        run(["apt-get", "install", "-y", package], f"apt-get install {package}", timeout_s=900.0)
