"""The development Kafka broker and PostgreSQL cluster: installed when missing, run on loopback."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import ipaddress
import logging
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import BinaryIO
from urllib.parse import unquote, urlsplit

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from seizewatch.settings import Settings
from streams.errors import ConfigurationError, ServiceUnavailable

log = logging.getLogger(__name__)

KAFKA_DEPLOY_DIR = Path(__file__).resolve().parent.parent / "deploy" / "kafka"
READY_TIMEOUT_S = 90.0
KAFKA_STOP_TIMEOUT_S = 30.0
# The OS user Debian's postgresql package creates; also the name of the cluster's superuser role.
_PG_OS_USER = "postgres"
_PG_ROOT = Path("/usr/lib/postgresql")
_LOG_ROTATE_BYTES = 20 * 1024 * 1024
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
class _Address:
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def _require_loopback(host: str, variable: str) -> None:
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ConfigurationError(
            f"{variable}: {host!r} is not a loopback address; `seizewatch services` runs local services only"
        )


def _kafka_address(bootstrap_servers: str) -> _Address:
    variable = "SEIZEWATCH_KAFKA_BOOTSTRAP_SERVERS"
    servers = [server.strip() for server in bootstrap_servers.split(",") if server.strip()]
    if len(servers) != 1:
        raise ConfigurationError(f"{variable}={bootstrap_servers!r}: the local broker is a single host:port")
    host, _, port = servers[0].rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    # The controller listens on port + 1.
    if not host or not port.isdigit() or not 0 < int(port) < 65535:
        raise ConfigurationError(f"{variable}={bootstrap_servers!r}: expected host:port")
    _require_loopback(host, variable)
    return _Address(host, int(port))


@dataclass(frozen=True, slots=True)
class _PgTarget:
    address: _Address
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
    _require_loopback(parts.hostname, variable)
    return _PgTarget(_Address(parts.hostname, port), role, unquote(parts.path.lstrip("/")) or role)


def _pid_in(path: Path, *, command: str) -> int | None:
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


def _wait_gone(pid: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
        except OSError:
            return True
        if state == "Z":
            return True
        time.sleep(0.2)
    return False


def _listening(address: _Address) -> bool:
    try:
        with socket.create_connection((address.host, address.port), timeout=1.0):
            return True
    except OSError:
        return False


def new_cluster_id() -> str:
    """A random KRaft cluster id: 16 bytes, URL-safe base64 unpadded, as Kafka's ``Uuid`` prints one.

    Never one starting with "-", which ``kafka-storage format -t`` would take for an option (one draw in
    64; Kafka's own ``Uuid.randomUuid`` skips those too).
    """
    while True:
        cluster_id = base64.urlsafe_b64encode(secrets.token_bytes(16)).rstrip(b"=").decode()
        if not cluster_id.startswith("-"):
            return cluster_id


def _tail(path: Path, lines: int = 40) -> str:
    try:
        with path.open("rb") as file:
            file.seek(max(0, file.seek(0, os.SEEK_END) - 16384))
            text = file.read().decode(errors="replace")
    except OSError as exc:
        return f"({path}: {exc.strerror})"
    return f"last lines of {path}:\n" + "\n".join(text.splitlines()[-lines:])


def _open_log(path: Path) -> BinaryIO:
    """``path`` opened for appending; a log over 20 MiB is first moved to ``<name>.1``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        if path.stat().st_size > _LOG_ROTATE_BYTES:
            path.replace(path.with_name(path.name + ".1"))
    log_file = path.open("ab")
    log_file.write(f"---- {time.strftime('%Y-%m-%d %H:%M:%S')} started by seizewatch services\n".encode())
    log_file.flush()
    return log_file


def _run(
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


async def _list_topics(bootstrap_servers: str) -> list[str]:
    client = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=5000)
    try:
        await client.start()
        return list(await client.list_topics())
    finally:
        await client.close()


class LocalServices:
    """The development Kafka broker and PostgreSQL cluster, their data under ``SEIZEWATCH_LOCAL_HOME``.

    Every method is idempotent and synchronous (call it from a thread inside an event loop).

    Raises (any method):
        ConfigurationError: an address is not on loopback, a setting is unusable, or something is
            missing that only root may install.
        ServiceUnavailable: a service did not come up in time, or a step to get it there failed; the
            message carries the tail of its log or the failing command's output.
    """

    def __init__(self, settings: Settings) -> None:
        local = settings.local
        if not re.fullmatch(r"3\.\d+\.\d+", local.kafka_version):
            # deploy/kafka/pom.xml adds the 3.x logging backend; 4.x needs log4j2 and another -D flag.
            raise ConfigurationError(
                f"SEIZEWATCH_LOCAL_KAFKA_VERSION={local.kafka_version!r}: expected 3.x.y"
            )
        if not re.fullmatch(r"\d+[kmgKMG]?", local.kafka_heap):
            raise ConfigurationError(f"SEIZEWATCH_LOCAL_KAFKA_HEAP={local.kafka_heap!r}: expected e.g. 1g")
        self._kafka = _kafka_address(settings.kafka.bootstrap_servers)
        self._pg = _pg_target(settings.postgres.dsn.get_secret_value())
        self._home = local.home.expanduser().resolve()
        self._cache = local.cache_dir.expanduser().resolve()
        self._kafka_version = local.kafka_version
        self._kafka_heap = local.kafka_heap
        self._is_root = os.geteuid() == 0
        self._apt_updated = False

        self._kafka_dir = self._home / "kafka"
        self._kafka_config = self._kafka_dir / "server.properties"
        self._kafka_pid_file = self._kafka_dir / "kafka.pid"
        self._kafka_log = self._home / "log" / "kafka.log"
        self._pg_link = self._home / "postgres"
        self._pg_log = self._home / "log" / "postgres.log"

    # ---- the commands

    def up(self) -> None:
        """Installs what is missing, starts both services and waits until both answer."""
        kafka_pid = self._launch_kafka()
        pg_data, pg_bindir = self._launch_postgres()
        self._wait_kafka(kafka_pid)
        self._wait_postgres(pg_data, pg_bindir)

    def down(self) -> None:
        """Stops both services; a service that is not running is left alone."""
        self.stop_kafka()
        self._stop_postgres()

    def status(self) -> dict[str, str]:
        """One line per service: ``running (pid N) on HOST:PORT``, ``stopped``..."""
        return {
            "kafka": self._describe(self._kafka_pid(), self._kafka),
            "postgres": self._describe(self._postmaster_pid(), self._pg.address),
        }

    def wipe(self) -> None:
        """Stops both services and deletes their data and logs."""
        self.down()
        if self._pg_link.is_symlink():
            shutil.rmtree(self._pg_link.readlink(), ignore_errors=True)
            self._pg_link.unlink()
        # Only what this module puts there: SEIZEWATCH_LOCAL_HOME pointing at a home directory by mistake
        # must not cost it everything else.
        for path in (self._kafka_dir, self._pg_link, self._kafka_log.parent):
            shutil.rmtree(path, ignore_errors=True)
        with contextlib.suppress(OSError):
            self._home.rmdir()
        log.info("wiped the local services' data and logs in %s", self._home)

    def start_kafka(self) -> None:
        """Starts the broker unless it runs, and waits until it answers."""
        self._wait_kafka(self._launch_kafka())

    def stop_kafka(self) -> None:
        """Controlled shutdown (SIGTERM); SIGKILL after 30 s."""
        pid = self._kafka_pid()
        if pid is None:
            log.info("kafka: not running")
        else:
            log.info("kafka: stopping pid %d (controlled shutdown)", pid)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            if not _wait_gone(pid, KAFKA_STOP_TIMEOUT_S):
                log.warning("kafka: pid %d still runs after %.0f s; killing it", pid, KAFKA_STOP_TIMEOUT_S)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                _wait_gone(pid, 10.0)
            log.info("kafka: stopped")
        self._kafka_pid_file.unlink(missing_ok=True)

    # ---- Kafka

    def _kafka_pid(self) -> int | None:
        # The config path in the command line tells this home's broker from any other process.
        return _pid_in(self._kafka_pid_file, command=str(self._kafka_config))

    def _launch_kafka(self) -> int:
        """The broker's pid: the running one, or one started now (not waited for)."""
        pid = self._kafka_pid()
        if pid is not None:
            log.info("kafka: already running (pid %d)", pid)
            return pid
        java = self._command("java", "openjdk-17-jre-headless")
        libs = self._kafka_jars()
        self._write_kafka_config()
        self._format_kafka_storage(java, libs)
        log.info(
            "kafka: starting Kafka %s on %s (log: %s)", self._kafka_version, self._kafka, self._kafka_log
        )
        _open_log(self._kafka_log).close()
        argv = self._java(java, libs, "-Xms256m", f"-Xmx{self._kafka_heap}", "-XX:+UseG1GC", "kafka.Kafka")
        # The shell starts the broker in the background, in a session of its own, and exits: the broker is
        # nobody's child here, so it outlives this process without a zombie or a "still running" warning.
        background = 'log=$1; shift; "$@" </dev/null >>"$log" 2>&1 & echo $!'
        argv = ["sh", "-c", background, "sh", str(self._kafka_log), *argv, str(self._kafka_config)]
        out = _run(argv, "starting kafka", detach=True)
        self._kafka_pid_file.write_text(out.strip() + "\n")
        return int(out)

    def _wait_kafka(self, pid: int) -> None:
        started = time.monotonic()
        while not (_listening(self._kafka) and self._kafka_answers()):
            if self._kafka_pid() is None:
                raise ServiceUnavailable(f"kafka exited while starting; {_tail(self._kafka_log)}")
            if time.monotonic() - started > READY_TIMEOUT_S:
                raise ServiceUnavailable(
                    f"kafka (pid {pid}) did not answer on {self._kafka} within {READY_TIMEOUT_S:.0f} s; "
                    f"{_tail(self._kafka_log)}"
                )
            time.sleep(0.5)
        log.info("kafka: ready on %s (pid %d)", self._kafka, pid)

    def _kafka_answers(self) -> bool:
        try:
            asyncio.run(asyncio.wait_for(_list_topics(str(self._kafka)), timeout=15.0))
        except (KafkaError, OSError, TimeoutError) as exc:
            log.debug("kafka: not answering yet: %r", exc)
            return False
        return True

    def _kafka_jars(self) -> Path:
        """The folder of the broker's jars, resolved from Maven Central once per version."""
        libs = self._cache / f"kafka-{self._kafka_version}-libs"
        marker = libs / ".resolved"  # written last: an interrupted download is redone, never half-used
        if marker.exists():
            return libs
        mvn = self._command("mvn", "maven")
        shutil.rmtree(libs, ignore_errors=True)
        log.info(
            "kafka: resolving the jars of Kafka %s from Maven Central into %s", self._kafka_version, libs
        )
        argv = [
            mvn, "-B", "-q", "-f", str(KAFKA_DEPLOY_DIR / "pom.xml"),
            f"-Dkafka.version={self._kafka_version}", f"-Dmaven.repo.local={self._cache / 'm2'}",
            "dependency:copy-dependencies", "-DincludeScope=runtime", f"-DoutputDirectory={libs}",
        ]  # fmt: skip
        _run(argv, "resolving the Kafka jars with Maven", timeout_s=900.0)
        if not (libs / f"kafka_2.13-{self._kafka_version}.jar").exists():
            raise ServiceUnavailable(
                f"maven succeeded but {libs} holds no kafka_2.13-{self._kafka_version}.jar"
            )
        marker.write_text(f"resolved by seizewatch at {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
        return libs

    def _write_kafka_config(self) -> None:
        template = Template((KAFKA_DEPLOY_DIR / "server.properties").read_text())
        host = f"[{self._kafka.host}]" if ":" in self._kafka.host else self._kafka.host
        text = template.substitute(
            host=host,
            port=self._kafka.port,
            controller_port=self._kafka.port + 1,
            data_dir=self._kafka_dir / "data",
        )
        self._kafka_dir.mkdir(parents=True, exist_ok=True)
        if not self._kafka_config.exists() or self._kafka_config.read_text() != text:
            self._kafka_config.write_text(text)

    def _format_kafka_storage(self, java: str, libs: Path) -> None:
        if (self._kafka_dir / "data" / "meta.properties").exists():
            return
        id_file = self._kafka_dir / "cluster-id"
        if not id_file.exists() or id_file.read_text().startswith("-"):  # one an older version wrote
            id_file.write_text(new_cluster_id() + "\n")
        cluster_id = id_file.read_text().strip()
        log.info("kafka: formatting the storage in %s (cluster id %s)", self._kafka_dir / "data", cluster_id)
        # No --standalone: the quorum is the static controller.quorum.voters of server.properties.
        argv = self._java(java, libs, "-Xmx256m", "kafka.tools.StorageTool", "format", "-t", cluster_id)
        _run([*argv, "-c", str(self._kafka_config), "--ignore-formatted"], "formatting the kafka storage")

    @staticmethod
    def _java(java: str, libs: Path, *options_and_class: str) -> list[str]:
        log4j = f"-Dlog4j.configuration=file:{KAFKA_DEPLOY_DIR / 'log4j.properties'}"
        return [java, log4j, "-cp", f"{libs}/*", *options_and_class]

    # ---- PostgreSQL

    def _launch_postgres(self) -> tuple[Path, Path]:
        """Starts the cluster unless it runs (initialized first if new), without waiting for it.

        Returns the folders of the cluster's data and of the binaries that run it.
        """
        # Installed first: the package creates the postgres OS user that the folders are given to.
        bindir = self._pg_bindir(self._pg_data_dir())
        if bindir is None:
            self._apt_install("postgresql")
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
        with _open_log(self._pg_log) as out:
            try:
                done = subprocess.run(
                    self._as_pg([str(bindir / "pg_ctl"), "start", "-D", str(data), "-W"]),
                    stdin=subprocess.DEVNULL, stdout=out, stderr=out, cwd="/", timeout=60.0, check=False,
                )  # fmt: skip
            except (OSError, subprocess.TimeoutExpired) as exc:
                raise ServiceUnavailable(f"pg_ctl start: {exc}") from exc
        if done.returncode != 0:
            raise ServiceUnavailable(f"pg_ctl start failed (exit {done.returncode}); {_tail(self._pg_log)}")
        return data, bindir

    def _initdb(self, bindir: Path, data: Path) -> None:
        log.info("postgres: initializing a cluster in %s", data)
        for stale in data.iterdir():  # what an interrupted initdb left: initdb wants an empty folder
            if stale.is_dir() and not stale.is_symlink():
                shutil.rmtree(stale)
            else:
                stale.unlink()
        initdb = [str(bindir / "initdb"), "-D", str(data), "-U", _PG_OS_USER, "-E", "UTF8", "--no-locale"]
        _run(self._as_pg(initdb), "initdb")
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
                    f"postgres did not answer on {address} within {elapsed:.0f} s; {_tail(self._pg_log)}"
                )
            time.sleep(0.3)
        psql = [str(bindir / "psql"), "-X", "-h", str(data), "-p", str(address.port), "-U", _PG_OS_USER]
        psql += ["-d", "postgres", "-v", "ON_ERROR_STOP=1", "-v", f"role={self._pg.role}"]
        psql += ["-v", f"db={self._pg.database}", "-f", "-"]
        out = _run(psql, "creating the role and database", stdin=_ROLE_AND_DATABASE_SQL)
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
        _run(
            self._as_pg([str(bindir / "pg_ctl"), "stop", "-D", str(data), "-m", "fast", "-w", "-t", "60"]),
            "pg_ctl stop",
        )
        log.info("postgres: stopped")

    def _postmaster_pid(self) -> int | None:
        return _pid_in(self._pg_data_dir() / "postmaster.pid", command="postgres")

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

    # ---- shared

    def _command(self, name: str, package: str) -> str:
        """The path of the command ``name``, installing ``package`` first when it is missing."""
        path = shutil.which(name)
        if path is None:
            self._apt_install(package)
            path = shutil.which(name)
            if path is None:
                raise ServiceUnavailable(f"{name}: still missing after installing {package}")
        return path

    def _apt_install(self, package: str) -> None:
        if not self._is_root:
            raise ConfigurationError(f"{package} is missing; install it: sudo apt-get install -y {package}")
        if not self._apt_updated:
            log.info("apt-get update")
            _run(["apt-get", "update"], "apt-get update", timeout_s=600.0)
            self._apt_updated = True
        log.info("installing %s with apt-get", package)
        _run(["apt-get", "install", "-y", package], f"apt-get install {package}", timeout_s=900.0)

    @staticmethod
    def _describe(pid: int | None, address: _Address) -> str:
        if pid is None:
            return "stopped"
        if not _listening(address):
            return f"starting or not answering (pid {pid}), expected on {address}"
        return f"running (pid {pid}) on {address}"
