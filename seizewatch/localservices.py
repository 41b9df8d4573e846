"""The development Kafka and PostgreSQL: installed when missing, run on loopback.

This module runs PostgreSQL and composes the commands (`seizewatch services up|down|status|wipe`); the
Kafka node or cluster is :mod:`seizewatch.localkafka`'s.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import pwd
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from seizewatch.localkafka import LocalKafka
from seizewatch.localprocess import (
    READY_TIMEOUT_S,
    Address,
    Installer,
    describe,
    open_log,
    pid_in,
    require_loopback,
    run,
    tail,
)
from seizewatch.settings import Settings
from streams.errors import ConfigurationError, ServiceUnavailable

log = logging.getLogger(__name__)

# The OS user Debian's postgresql package creates; also the name of the cluster's superuser role.
_PG_OS_USER = "postgres"
_PG_ROOT = Path("/usr/lib/postgresql")
_SOCKET_PATH_MAX = 107  # sun_path of a Unix socket, including the file name PostgreSQL adds
# Creates what is missing only; prints a command tag (CREATE ROLE...) for each statement it runs.
_ROLE_AND_DATABASE_SQL = r"""
SELECT format('CREATE ROLE %I LOGIN CREATEDB', :'role')
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'role') \gexec
SELECT format('ALTER ROLE %I LOGIN CREATEDB', :'role')
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'role' AND rolcanlogin AND rolcreatedb) \gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'role')
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db') \gexec
"""
# A development cluster: anyone on this machine may connect as any role without a password. Never copy
# this to a deployment; there SEIZEWATCH_PG_DSN carries a password.
_PG_HBA = """\
# Development cluster written by seizewatch: every connection from this machine is trusted.
local all all trust
host  all all 127.0.0.1/32 trust
host  all all ::1/128 trust
"""


@dataclass(frozen=True, slots=True)
class _PgTarget:
    address: Address
    role: str
    database: str


def _pg_target(dsn: str) -> _PgTarget:
    variable = "SEIZEWATCH_PG_DSN"  # its value may hold a password: never quoted in errors
    parts = urlsplit(dsn)
    try:
        port = parts.port or 5432
    except ValueError:
        raise ConfigurationError(f"{variable}: invalid port") from None
    role = unquote(parts.username or "")
    if parts.scheme not in ("postgresql", "postgres") or not parts.hostname or not role:
        raise ConfigurationError(f"{variable}: expected postgresql://USER@HOST:PORT/DATABASE")
    require_loopback(parts.hostname, variable)
    return _PgTarget(Address(parts.hostname, port), role, unquote(parts.path.lstrip("/")) or role)


class LocalServices:
    """The development Kafka and PostgreSQL, their data under ``SEIZEWATCH_LOCAL_HOME``.

    Kafka is one node or a cluster of three (``SEIZEWATCH_LOCAL_KAFKA_BROKERS``), run by ``kafka``
    (:mod:`seizewatch.localkafka`). Every method is idempotent and synchronous (call it from a thread
    inside an event loop).

    Raises (any method):
        ConfigurationError: an address is not on loopback, a setting is unusable, or something is
            missing that only root may install.
        ServiceUnavailable: a service did not come up in time, or a step to get it there failed; the
            message carries the tail of its log or the failing command's output.
    """

    def __init__(self, settings: Settings) -> None:
        local = settings.local
        self._installer = Installer()
        self.kafka = LocalKafka(settings, self._installer)
        self._pg = _pg_target(settings.postgres.dsn.get_secret_value())
        self._home = local.home.expanduser().resolve()
        self._is_root = self._installer.is_root

        self._pg_link = self._home / "postgres"
        self._pg_log = self._home / "log" / "postgres.log"

    # ---- the commands

    def up(self) -> None:
        """Installs what is missing, starts both services and waits until both answer."""
        kafka_pids = self.kafka.launch()
        pg_data, pg_bindir = self._launch_postgres()
        self.kafka.wait(kafka_pids)
        self._wait_postgres(pg_data, pg_bindir)

    def down(self) -> None:
        """Stops both services (every Kafka node of this home, of either shape); what does not run is left
        alone."""
        self.kafka.stop_every_shape()
        self._stop_postgres()

    def status(self) -> dict[str, str]:
        """One line per service (per Kafka node): ``running (pid N) on HOST:PORT``, ``stopped``..."""
        return {**self.kafka.status(), "postgres": describe(self._postmaster_pid(), self._pg.address)}

    def wipe(self) -> None:
        """Stops both services and deletes their data and logs."""
        self.down()
        if self._pg_link.is_symlink():
            shutil.rmtree(self._pg_link.readlink(), ignore_errors=True)
            self._pg_link.unlink()
        # Only what this module puts there: SEIZEWATCH_LOCAL_HOME pointing at a home directory by mistake
        # must not cost it everything else.
        for path in (*self.kafka.folders, self._pg_link, self._pg_log.parent):
            shutil.rmtree(path, ignore_errors=True)
        with contextlib.suppress(OSError):
            self._home.rmdir()
        log.info("wiped the local services' data and logs in %s", self._home)

    def start_kafka(self, node_id: int | None = None) -> None:
        """Starts the Kafka nodes (or node ``node_id``) unless they run, and waits until they answer."""
        self.kafka.start(node_id)

    def stop_kafka(self, node_id: int | None = None) -> None:
        """Controlled shutdown (SIGTERM) of the Kafka nodes (or node ``node_id``); SIGKILL after 30 s."""
        self.kafka.stop(node_id)

    def kill_kafka(self, node_id: int) -> int:
        """SIGKILL of Kafka node ``node_id`` (a crash); returns its pid. ``start_kafka`` restarts it."""
        return self.kafka.kill(node_id)

    def start_postgres(self) -> None:
        """Starts PostgreSQL unless it runs, and waits until it answers."""
        self._wait_postgres(*self._launch_postgres())

    def stop_postgres(self) -> None:
        """Stops PostgreSQL (a fast shutdown: open connections are ended) unless it is stopped."""
        self._stop_postgres()

    # ---- PostgreSQL

    def _launch_postgres(self) -> tuple[Path, Path]:
        """Starts the cluster unless it runs (initialized first if new), without waiting for it.

        Returns the folders of the cluster's data and of the binaries that run it.
        """
        # Installed first: the package creates the postgres OS user that the folders are given to.
        bindir = self._pg_bindir(self._pg_data_dir())
        if bindir is None:
            self._installer.apt_install("postgresql")
            bindir = self._pg_bindir(self._pg_data_dir())
            if bindir is None:
                raise ServiceUnavailable(f"no PostgreSQL under {_PG_ROOT} after installing it")
        data = self._prepare_pg_data()
        pid = self._postmaster_pid()
        if pid is not None:
            log.info("postgres: already running (pid %d)", pid)
            return data, bindir
        if not (data / "PG_VERSION").exists():
            self._initdb(bindir, data)
        self._write_pg_file(
            data / "seizewatch.conf",
            "# Written at every start by seizewatch/localservices.py from SEIZEWATCH_PG_DSN.\n"
            f"listen_addresses = '{self._pg.address.host}'\n"
            f"port = {self._pg.address.port}\n"
            f"unix_socket_directories = '{data}'\n",
        )
        log.info(
            "postgres: starting PostgreSQL %s on %s (log: %s)",
            bindir.parent.name,
            self._pg.address,
            self._pg_log,
        )
        # Without -l the server writes to the descriptor it inherits, opened here: the postgres OS user
        # needs no access to the log's folder.
        with open_log(self._pg_log) as out:
            try:
                done = subprocess.run(
                    self._as_pg([str(bindir / "pg_ctl"), "start", "-D", str(data), "-W"]),
                    stdin=subprocess.DEVNULL, stdout=out, stderr=out, cwd="/", timeout=60.0, check=False,
                )  # fmt: skip
            except (OSError, subprocess.TimeoutExpired) as exc:
                raise ServiceUnavailable(f"pg_ctl start: {exc}") from exc
        if done.returncode != 0:
            raise ServiceUnavailable(f"pg_ctl start failed (exit {done.returncode}); {tail(self._pg_log)}")
        return data, bindir

    def _initdb(self, bindir: Path, data: Path) -> None:
        log.info("postgres: initializing a cluster in %s", data)
        for stale in data.iterdir():  # what an interrupted initdb left: initdb wants an empty folder
            if stale.is_dir() and not stale.is_symlink():
                shutil.rmtree(stale)
            else:
                stale.unlink()
        initdb = [str(bindir / "initdb"), "-D", str(data), "-U", _PG_OS_USER, "-E", "UTF8", "--no-locale"]
        run(self._as_pg(initdb), "initdb")
        self._write_pg_file(data / "pg_hba.conf", _PG_HBA)
        with (data / "postgresql.conf").open("a") as conf:
            conf.write("\ninclude 'seizewatch.conf'\n")

    def _wait_postgres(self, data: Path, bindir: Path) -> None:
        """Waits until the server answers, then creates the DSN's role and database if missing."""
        address = self._pg.address
        started = time.monotonic()
        ready = [str(bindir / "pg_isready"), "-q", "-h", address.host, "-p", str(address.port), "-t", "2"]
        ready += ["-U", _PG_OS_USER, "-d", "postgres"]  # a probe as a missing role (root) logs a FATAL
        # Our postmaster must be alive too: another server on the port would answer pg_isready.
        while subprocess.run(ready, cwd="/", check=False).returncode != 0 or self._postmaster_pid() is None:
            elapsed = time.monotonic() - started
            # The postmaster removes its pid file when it gives up (port taken, bad setting...).
            if (elapsed > 5.0 and self._postmaster_pid() is None) or elapsed > READY_TIMEOUT_S:
                raise ServiceUnavailable(
                    f"postgres did not answer on {address} within {elapsed:.0f} s; {tail(self._pg_log)}"
                )
            time.sleep(0.3)
        psql = [str(bindir / "psql"), "-X", "-h", str(data), "-p", str(address.port), "-U", _PG_OS_USER]
        psql += ["-d", "postgres", "-v", "ON_ERROR_STOP=1", "-v", f"role={self._pg.role}"]
        psql += ["-v", f"db={self._pg.database}", "-f", "-"]
        out = run(psql, "creating the role and database", stdin=_ROLE_AND_DATABASE_SQL)
        for tag in filter(None, map(str.strip, out.splitlines())):
            log.info("postgres: ran %s (role %s, database %s)", tag, self._pg.role, self._pg.database)
        log.info("postgres: ready on %s (pid %s)", address, self._postmaster_pid())

    def _stop_postgres(self) -> None:
        data = self._pg_data_dir()
        pid = self._postmaster_pid()
        bindir = self._pg_bindir(data)
        if pid is None or bindir is None:
            log.info("postgres: not running")
            return
        log.info("postgres: stopping pid %d (fast shutdown)", pid)
        run(
            self._as_pg([str(bindir / "pg_ctl"), "stop", "-D", str(data), "-m", "fast", "-w", "-t", "60"]),
            "pg_ctl stop",
        )
        log.info("postgres: stopped")

    def _postmaster_pid(self) -> int | None:
        return pid_in(self._pg_data_dir() / "postmaster.pid", command="postgres")

    def _pg_data_dir(self) -> Path:
        """Where the cluster lives: ``home/postgres`` or, when that is a link, its target."""
        return self._pg_link.readlink() if self._pg_link.is_symlink() else self._pg_link

    def _pg_bindir(self, data: Path) -> Path | None:
        """The binaries that made ``data``, else the newest installed; None when none is installed."""
        installed = {path.parent.parent.name: path.parent for path in _PG_ROOT.glob("*/bin/pg_ctl")}
        try:
            made_by = (data / "PG_VERSION").read_text().strip()
        except OSError:
            newest = max(installed, key=lambda v: [int(p) for p in v.split(".") if p.isdigit()], default=None)
            return installed[newest] if newest else None
        if made_by not in installed:
            raise ConfigurationError(
                f"{data} was made by PostgreSQL {made_by}, which is not installed: install "
                f"postgresql-{made_by} or run `seizewatch services wipe`"
            )
        return installed[made_by]

    def _prepare_pg_data(self) -> Path:
        """Creates the cluster's folder, owned by whoever runs the server; returns it."""
        self._home.mkdir(parents=True, exist_ok=True)
        owner = self._pg_owner()
        if not self._pg_link.is_symlink() and owner and not self._pg_can_reach(self._home):
            # The postgres OS user cannot reach the data home (a clone under /root, mode 700): the cluster
            # lives in /tmp, and the link keeps it visible and wipeable where the user looks. /tmp (not
            # $TMPDIR) because postgres must reach it; it may be cleared at boot, fine for a dev cluster.
            short_hash = hashlib.sha256(bytes(self._home)).hexdigest()[:12]
            target = Path("/tmp") / f"seizewatch-pg-{short_hash}"  # noqa: S108
            if self._pg_link.exists():
                self._pg_link.rmdir()  # raises when not empty: never hide a cluster the user has
            log.info("postgres: user postgres cannot reach %s; keeping the cluster in %s", self._home, target)
            self._pg_link.symlink_to(target, target_is_directory=True)
        data = self._pg_data_dir()
        data.mkdir(mode=0o700, exist_ok=True)
        if data.is_symlink() or data.lstat().st_uid not in {os.geteuid(), owner.pw_uid if owner else -1}:
            raise ConfigurationError(f"{data} is not a folder of this user or of postgres; remove it")
        if owner is not None:
            os.chown(data, owner.pw_uid, owner.pw_gid)
        data.chmod(0o700)
        socket_path = f"{data}/.s.PGSQL.{self._pg.address.port}"
        if len(socket_path) > _SOCKET_PATH_MAX:
            raise ConfigurationError(f"SEIZEWATCH_LOCAL_HOME: {socket_path} is too long for a Unix socket")
        return data

    def _pg_can_reach(self, path: Path) -> bool:
        probe = ["runuser", "-u", _PG_OS_USER, "--", "test", "-x", str(path)]
        return subprocess.run(probe, cwd="/", capture_output=True, check=False).returncode == 0

    def _as_pg(self, argv: list[str]) -> list[str]:
        # PostgreSQL refuses to run as root.
        return ["runuser", "-u", _PG_OS_USER, "--", *argv] if self._is_root else argv

    def _write_pg_file(self, path: Path, text: str) -> None:
        path.write_text(text)
        owner = self._pg_owner()
        if owner is not None:
            os.chown(path, owner.pw_uid, owner.pw_gid)

    def _pg_owner(self) -> pwd.struct_passwd | None:
        """The OS user that runs PostgreSQL for root; None when not root (the server runs as us)."""
        if not self._is_root:
            return None
        try:
            return pwd.getpwnam(_PG_OS_USER)
        except KeyError:
            raise ConfigurationError(
                f"running as root, PostgreSQL needs the OS user {_PG_OS_USER!r} (Debian's postgresql "
                "package creates it), and there is none"
            ) from None
