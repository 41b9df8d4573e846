"""A local Prometheus for tests and developers: installed when missing, scraping loopback with our rules.

The deployment's configuration (``deploy/prometheus/prometheus.yml``) names the compose services; a local
instance uses the same jobs and rule files with loopback targets, a short interval and its data in a
temporary folder. Needs the dev extras (PyYAML). From a shell::

    python -m seizewatch.prometheus check     # promtool: the config, the rules and the rules' unit tests
                                              # (and amtool check-config when Alertmanager is installed)
    python -m seizewatch.prometheus run       # Prometheus on 127.0.0.1:9091 scraping the local processes
        [--alertmanager 127.0.0.1:9093]       # and notifying a local Alertmanager (seizewatch.alertmanager)
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar, Self

import httpx
import yaml

from seizewatch.scratch import free_port
from seizewatch.settings import Settings
from streams.errors import ConfigurationError, ServiceUnavailable

log = logging.getLogger(__name__)

DEPLOY_DIR = Path(__file__).resolve().parent.parent / "deploy" / "prometheus"
CONFIG_FILE = DEPLOY_DIR / "prometheus.yml"
RULES_DIR = DEPLOY_DIR / "rules"
RULE_TESTS_DIR = DEPLOY_DIR / "tests"
JOBS = ("seizewatch-worker", "seizewatch-ingest", "seizewatch-pager")
# Debian's package holds both binaries. Without its recommends: node-exporter is not ours to run.
_PACKAGE = "prometheus"
READY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0


@dataclass(frozen=True, slots=True)
class Binaries:
    prometheus: Path
    promtool: Path


def binaries() -> Binaries:
    """``prometheus`` and ``promtool``, installed with apt-get first when either is missing.

    Raises:
        ConfigurationError: they are missing and only root may install them.
        ServiceUnavailable: apt-get failed, or the package brought no such commands.
    """
    found = shutil.which("prometheus"), shutil.which("promtool")
    if None in found:
        apt_install(_PACKAGE, "prometheus and promtool")
        found = shutil.which("prometheus"), shutil.which("promtool")
    prometheus, promtool = found
    if prometheus is None or promtool is None:
        raise ServiceUnavailable(f"prometheus or promtool still missing after installing {_PACKAGE}")
    return Binaries(Path(prometheus), Path(promtool))


def apt_install(package: str, what: str) -> None:
    """``apt-get install`` Debian's ``package`` (for ``what``, its commands), then stop its service.

    Raises:
        ConfigurationError: not root (the message says what to run).
        ServiceUnavailable: apt-get failed.
    """
    command = f"apt-get install -y --no-install-recommends {package}"
    if os.geteuid() != 0:
        raise ConfigurationError(f"{what} are missing; install them: sudo {command}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for argv in (["apt-get", "update"], command.split()):
        log.info("running %s", " ".join(argv))
        try:
            done = subprocess.run(  # noqa: S603  # apt-get with constant arguments
                argv, capture_output=True, text=True, env=env, timeout=900, check=False, cwd="/"
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ServiceUnavailable(f"{' '.join(argv)}: {exc}") from exc
        if done.returncode != 0:
            output = (done.stdout + done.stderr).strip()[-4000:]
            raise ServiceUnavailable(f"{' '.join(argv)} failed (exit {done.returncode}):\n{output}")
    _stop_packaged_service(package)


def _stop_packaged_service(service: str) -> None:
    """The package's postinst may start a system-wide server (Prometheus on :9090, Alertmanager on :9093
    and its cluster port 9094 on every interface), policy-rc.d permitting. We installed it for the
    binaries only, and our instances run on ports of their own: stop and disable it rather than leave a
    server nobody asked for."""
    if Path("/run/systemd/system").is_dir():
        commands = [["systemctl", "disable", "--now", service]]
    else:
        commands = [["invoke-rc.d", service, "stop"], ["update-rc.d", service, "disable"]]
    for argv in commands:
        if shutil.which(argv[0]) is None:
            continue
        # Refused or nothing to stop (policy-rc.d said no) is the outcome we want: not an error.
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)  # noqa: S603
        log.info("%s: exit %d", " ".join(argv), done.returncode)


# ---- promtool


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One promtool run: what ran, its exit status and everything it printed."""

    argv: tuple[str, ...]
    returncode: int
    output: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def __str__(self) -> str:
        return f"$ {' '.join(self.argv)}\n(exit {self.returncode})\n{self.output}"


def promtool(*args: str, cwd: Path = DEPLOY_DIR) -> CheckResult:
    """``promtool ARGS…`` run to completion.

    Raises:
        ConfigurationError, ServiceUnavailable: as :func:`binaries` (promtool missing and not installable).
    """
    argv = (str(binaries().promtool), *args)
    done = subprocess.run(  # noqa: S603  # our own promtool over our own files
        argv, capture_output=True, text=True, cwd=cwd, timeout=120, check=False
    )
    return CheckResult(argv, done.returncode, (done.stdout + done.stderr).strip())


def rule_files() -> list[Path]:
    return sorted(RULES_DIR.glob("*.yml"))


def rule_test_files() -> list[Path]:
    return sorted(RULE_TESTS_DIR.glob("*.yml"))


def check_config() -> CheckResult:
    """The deployment's prometheus.yml, and the rule files it loads."""
    return promtool("check", "config", str(CONFIG_FILE))


def check_rules() -> CheckResult:
    return promtool("check", "rules", *map(str, rule_files()))


def run_rule_tests() -> CheckResult:
    """The rules' unit tests (input series, expected alerts), run from their folder."""
    return promtool("test", "rules", *(p.name for p in rule_test_files()), cwd=RULE_TESTS_DIR)


# ---- a local instance


def local_config(
    targets: Mapping[str, Sequence[str]],
    *,
    interval_s: float = 1.0,
    alertmanagers: Sequence[str] = (),
    rule_files: Sequence[Path] | None = None,
) -> dict[str, Any]:
    """The deployment's configuration with ``targets`` (job → ``host:port``…) and a short interval.

    Jobs left out of ``targets`` are dropped; the rule files are the repository's, by absolute path, or
    ``rule_files`` (a test's derived copy). Alerts go to ``alertmanagers`` (``host:port``…; the
    deployment's ``alerting:`` section names compose services) or, when there are none, nowhere.

    Raises:
        ConfigurationError: a job in ``targets`` is not in the deployment's configuration.
    """
    config: dict[str, Any] = yaml.safe_load(CONFIG_FILE.read_text())
    known = {job["job_name"] for job in config["scrape_configs"]}
    if unknown := sorted(set(targets) - known):
        raise ConfigurationError(f"no such job in {CONFIG_FILE}: {', '.join(unknown)}")
    interval = f"{int(interval_s * 1000)}ms"
    config["global"] = {
        **config.get("global", {}),
        "scrape_interval": interval,
        "scrape_timeout": interval,
        "evaluation_interval": interval,
    }
    if rule_files is not None:
        config["rule_files"] = [str(path.resolve()) for path in rule_files]
    else:
        config["rule_files"] = [
            pattern if Path(pattern).is_absolute() else str(CONFIG_FILE.parent / pattern)
            for pattern in config.get("rule_files", [])
        ]
    config.pop("alerting", None)
    if alertmanagers:
        config["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": list(alertmanagers)}]}]}
    jobs = []
    for job in config["scrape_configs"]:
        if job["job_name"] not in targets:
            continue
        job = {k: v for k, v in job.items() if k not in ("scrape_interval", "scrape_timeout")}
        job["static_configs"] = [{"targets": list(targets[job["job_name"]])}]
        jobs.append(job)
    config["scrape_configs"] = jobs
    return config


class LoopbackServer:
    """A Prometheus-family server on 127.0.0.1, its configuration, data and log in a folder of its own.

    ``workdir`` (kept afterwards) or a temporary folder (deleted on stop) holds ``<name>.yml``, ``data/``
    and ``<name>.log``. ``port`` None picks a free one. Subclasses say how the server is run.
    """

    name: ClassVar[str]

    def __init__(self, config: dict[str, Any], *, port: int | None, workdir: Path | None) -> None:
        self._config = config
        self._port = port
        self._workdir = workdir
        self._keep = workdir is not None
        self._process: subprocess.Popen[bytes] | None = None

    def _argv(self, config: Path, data: Path, listen: str) -> list[str]:
        """The command line of the server (``config``: its configuration file; ``listen``: host:port)."""
        raise NotImplementedError

    def _prepare(self, workdir: Path) -> None:
        """Write what the configuration refers to, before the server starts (nothing by default)."""

    @property
    def url(self) -> str:
        if self._port is None:
            raise RuntimeError(f"{type(self).__name__} is not started")
        return f"http://127.0.0.1:{self._port}"

    @property
    def address(self) -> str:
        """``127.0.0.1:port``, as a Prometheus target."""
        return self.url.removeprefix("http://")

    @property
    def log_file(self) -> Path:
        if self._workdir is None:
            raise RuntimeError(f"{type(self).__name__} is not started")
        return self._workdir / f"{self.name}.log"

    def tail(self, chars: int = 4000) -> str:
        try:
            return self.log_file.read_text(errors="replace")[-chars:]
        except (OSError, RuntimeError) as exc:
            return f"(no log: {exc})"

    def start(self) -> None:
        """Start the server and wait until it is ready.

        Raises:
            ConfigurationError, ServiceUnavailable: the binaries are missing and cannot be installed; or
                the server exited or was not ready within 30 s (the message carries its log).
        """
        if self._workdir is None:
            self._workdir = Path(tempfile.mkdtemp(prefix=f"seizewatch-{self.name}-"))
        self._workdir.mkdir(parents=True, exist_ok=True)
        if self._port is None:
            self._port = free_port()
        self._prepare(self._workdir)
        config = self._workdir / f"{self.name}.yml"
        config.write_text(yaml.safe_dump(self._config, sort_keys=False, allow_unicode=True))
        argv = self._argv(config, self._workdir / "data", f"127.0.0.1:{self._port}")
        with self.log_file.open("ab") as out:
            self._process = subprocess.Popen(  # noqa: S603  # the installed server, our arguments
                argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        log.info("%s: starting on %s (pid %d, log %s)", self.name, self.url, self._process.pid, self.log_file)
        try:
            self._wait_until_ready()
        except BaseException:
            # Not ready in time, exited, or interrupted (Ctrl-C, SIGTERM) meanwhile: the server ran in a
            # session of its own, so nothing else would stop it.
            self.stop()
            raise

    def _wait_until_ready(self) -> None:
        assert self._process is not None  # noqa: S101  # started just before
        deadline = time.monotonic() + READY_TIMEOUT_S
        with httpx.Client(timeout=2.0) as client:
            while not self._ready(client):
                if self._process.poll() is not None:
                    raise ServiceUnavailable(
                        f"{self.name} exited ({self._process.returncode}) while starting:\n{self.tail()}"
                    )
                if time.monotonic() > deadline:
                    raise ServiceUnavailable(
                        f"{self.name} was not ready on {self.url} in {READY_TIMEOUT_S:.0f} s:\n{self.tail()}"
                    )
                time.sleep(0.2)

    def _ready(self, client: httpx.Client) -> bool:
        try:
            return client.get(f"{self.url}/-/ready").status_code == 200
        except httpx.TransportError:
            return False

    def wait(self) -> int:
        """Block until the server exits; its exit status."""
        if self._process is None:
            raise RuntimeError(f"{type(self).__name__} is not started")
        return self._process.wait()

    def stop(self) -> None:
        """SIGTERM, SIGKILL after 10 s; the temporary folder goes too."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._workdir is not None and not self._keep:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


class LocalPrometheus(LoopbackServer):
    """A Prometheus server on 127.0.0.1 scraping ``targets`` with the deployment's jobs and rules.

    Usage::

        with LocalPrometheus({"seizewatch-worker": ["127.0.0.1:9470"]}) as prometheus:
            httpx.get(f"{prometheus.url}/api/v1/query", params={"query": "up"})

    ``workdir``, ``port``: as :class:`LoopbackServer` (``prometheus.yml``, ``data/``, ``prometheus.log``);
    ``alertmanagers`` and ``rule_files``: as :func:`local_config`.
    """

    name = "prometheus"

    def __init__(
        self,
        targets: Mapping[str, Sequence[str]],
        *,
        port: int | None = None,
        interval_s: float = 1.0,
        workdir: Path | None = None,
        alertmanagers: Sequence[str] = (),
        rule_files: Sequence[Path] | None = None,
    ) -> None:
        config = local_config(
            targets, interval_s=interval_s, alertmanagers=alertmanagers, rule_files=rule_files
        )
        super().__init__(config, port=port, workdir=workdir)

    def _argv(self, config: Path, data: Path, listen: str) -> list[str]:
        return [
            str(binaries().prometheus),
            f"--config.file={config}",
            f"--storage.tsdb.path={data}",
            f"--web.listen-address={listen}",
        ]


# ---- command line


def stop_on_sigterm() -> None:
    """SIGTERM stops a ``run`` command as Ctrl-C does: its server is stopped on the way out. Python's
    default would end the process at once and leave the server (a session of its own) running."""

    def interrupt(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)


def _local_targets(settings: Settings) -> dict[str, list[str]]:
    """Where the local processes serve /metrics, from their settings (SEIZEWATCH_*_PORT)."""
    return {
        "seizewatch-worker": [f"{settings.metrics.host}:{settings.metrics.port}"],
        "seizewatch-ingest": [f"{settings.ingest.host}:{settings.ingest.port}"],
        "seizewatch-pager": [f"{settings.pager.host}:{settings.pager.port}"],
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m seizewatch.prometheus", description=__doc__.split("\n")[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser(
        "check", help="promtool: the config, the rules and the rules' unit tests; amtool check-config"
    )
    run = commands.add_parser("run", help="Prometheus scraping the local worker, ingest and pager")
    run.add_argument("--port", type=int, default=9091, help="where Prometheus listens (127.0.0.1)")
    run.add_argument("--interval", type=float, default=5.0, help="scrape and evaluation interval, seconds")
    run.add_argument("--workdir", type=Path, default=Path("var/prometheus"), help="config, data and log")
    run.add_argument(
        "--alertmanager", action="append", default=[], help="host:port of an Alertmanager to notify"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per readiness probe otherwise
    try:
        if args.command == "check":
            results = [check_config(), check_rules(), run_rule_tests()]
            if shutil.which("amtool") is not None:
                from seizewatch import alertmanager  # imports this module: not at the top

                results.append(alertmanager.check_config())
            else:
                print("amtool is not installed: the Alertmanager configuration was not checked", end="\n\n")
            for result in results:
                print(result, end="\n\n")
            return 0 if all(r.ok for r in results) else 1
        targets = _local_targets(Settings.from_env())
        stop_on_sigterm()
        # Interrupted while starting or running: the server is stopped on the way out either way.
        with (
            contextlib.suppress(KeyboardInterrupt),
            LocalPrometheus(
                targets,
                port=args.port,
                interval_s=args.interval,
                workdir=args.workdir,
                alertmanagers=args.alertmanager,
            ) as p,
        ):
            print(f"Prometheus on {p.url} scraping {targets}; Ctrl-C stops it", flush=True)
            return p.wait()
    except (ConfigurationError, ServiceUnavailable) as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0  # interrupted


if __name__ == "__main__":
    sys.exit(main())
