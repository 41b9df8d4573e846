"""A local Alertmanager for tests and developers: Debian's, on loopback, posting to a pager's operator alerts.

The deployment's configuration (``deploy/alertmanager/alertmanager.yml``) posts to the compose service
``pager`` with a token file compose mounts; a local instance keeps its route and receiver and points them
at a given pager URL, with the token in a file of its own folder (mode 600) and, for tests, shorter
intervals. Clustering is off (no gossip port). Needs the dev extras (PyYAML). From a shell::

    python -m seizewatch.alertmanager check    # amtool check-config on the deployment's file
    python -m seizewatch.alertmanager run      # on 127.0.0.1:9093, posting to the local pager
                                               # (SEIZEWATCH_PAGER_PORT, SEIZEWATCH_PAGER_API_TOKEN)
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import logging
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from pydantic import SecretStr

from seizewatch.prometheus import CheckResult, LoopbackServer, apt_install, stop_on_sigterm
from seizewatch.settings import Settings
from streams.errors import ConfigurationError, ServiceUnavailable

log = logging.getLogger(__name__)

DEPLOY_DIR = Path(__file__).resolve().parent.parent / "deploy" / "alertmanager"
CONFIG_FILE = DEPLOY_DIR / "alertmanager.yml"
RECEIVER = "seizewatch-operators"
# Debian names the server after its package; amtool comes with it.
_PACKAGE = "prometheus-alertmanager"
_TOKEN_FILE = "pager_api_token"  # noqa: S105  # a file name, not a secret


@dataclass(frozen=True, slots=True)
class Binaries:
    alertmanager: Path
    amtool: Path


def binaries() -> Binaries:
    """``prometheus-alertmanager`` and ``amtool``, installed with apt-get first when either is missing.

    Raises:
        ConfigurationError: they are missing and only root may install them.
        ServiceUnavailable: apt-get failed, or the package brought no such commands.
    """
    found = shutil.which(_PACKAGE), shutil.which("amtool")
    if None in found:
        apt_install(_PACKAGE, "prometheus-alertmanager and amtool")
        found = shutil.which(_PACKAGE), shutil.which("amtool")
    alertmanager, amtool = found
    if alertmanager is None or amtool is None:
        raise ServiceUnavailable(
            f"prometheus-alertmanager or amtool still missing after installing {_PACKAGE}"
        )
    return Binaries(Path(alertmanager), Path(amtool))


def check_config(path: Path = CONFIG_FILE) -> CheckResult:
    """``amtool check-config`` on the deployment's file (or ``path``).

    Raises:
        ConfigurationError, ServiceUnavailable: as :func:`binaries`.
    """
    argv = (str(binaries().amtool), "check-config", str(path))
    done = subprocess.run(  # noqa: S603  # our own amtool over our own file
        argv, capture_output=True, text=True, cwd=path.parent, timeout=60, check=False
    )
    return CheckResult(argv, done.returncode, (done.stdout + done.stderr).strip())


def deployment_config() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(CONFIG_FILE.read_text(encoding="utf-8"))
    return loaded


def webhook(config: dict[str, Any]) -> dict[str, Any]:
    """The operators' receiver's one webhook of ``config``.

    Raises:
        ConfigurationError: the configuration has no such receiver, or it is not one webhook.
    """
    for receiver in config.get("receivers", []):
        if receiver.get("name") == RECEIVER:
            hooks = receiver.get("webhook_configs") or []
            if len(hooks) != 1:
                raise ConfigurationError(f"{CONFIG_FILE}: receiver {RECEIVER} must have one webhook")
            found: dict[str, Any] = hooks[0]
            return found
    raise ConfigurationError(f"{CONFIG_FILE}: no receiver {RECEIVER}")


def local_config(
    pager_url: str,
    token_file: Path,
    *,
    group_wait: str | None = None,
    group_interval: str | None = None,
    repeat_interval: str | None = None,
) -> dict[str, Any]:
    """The deployment's configuration posting to ``pager_url`` (the receiver's path kept), the bearer
    token read from ``token_file``, and the given intervals (Alertmanager durations, ``"1s"``) on the
    route and every sub-route that sets its own.

    Raises:
        ConfigurationError: as :func:`webhook`.
    """
    config = copy.deepcopy(deployment_config())
    hook = webhook(config)
    hook["url"] = pager_url.rstrip("/") + urlsplit(hook["url"]).path
    hook.setdefault("http_config", {})["authorization"] = {
        "type": "Bearer",
        "credentials_file": str(token_file),
    }
    intervals = {
        "group_wait": group_wait,
        "group_interval": group_interval,
        "repeat_interval": repeat_interval,
    }
    routes = [config["route"], *config["route"].get("routes", [])]
    for key, value in intervals.items():
        if value is None:
            continue
        for route in routes:
            if route is config["route"] or key in route:
                route[key] = value
    return config


class LocalAlertmanager(LoopbackServer):
    """Debian's Alertmanager on 127.0.0.1, posting to the pager at ``pager_url`` with ``api_token``.

    Usage::

        with LocalAlertmanager("http://127.0.0.1:8471", token) as alertmanager:
            LocalPrometheus(targets, alertmanagers=[alertmanager.address])

    ``workdir``, ``port``: as :class:`seizewatch.prometheus.LoopbackServer` (``alertmanager.yml``,
    ``data/``, ``alertmanager.log``, and the token file); intervals: as :func:`local_config`.
    """

    name = "alertmanager"

    def __init__(
        self,
        pager_url: str,
        api_token: SecretStr,
        *,
        port: int | None = None,
        workdir: Path | None = None,
        group_wait: str | None = None,
        group_interval: str | None = None,
        repeat_interval: str | None = None,
    ) -> None:
        # The token file's path is known once the folder is: the configuration is made in _prepare.
        super().__init__({}, port=port, workdir=workdir)
        self._pager_url = pager_url
        self._token = api_token
        self._intervals = {
            "group_wait": group_wait,
            "group_interval": group_interval,
            "repeat_interval": repeat_interval,
        }

    def _prepare(self, workdir: Path) -> None:
        token_file = workdir / _TOKEN_FILE
        token_file.touch(mode=0o600)
        token_file.chmod(0o600)  # touch leaves an existing file's mode as it was
        token_file.write_text(self._token.get_secret_value())
        self._config = local_config(self._pager_url, token_file, **self._intervals)

    def _argv(self, config: Path, data: Path, listen: str) -> list[str]:
        return [
            str(binaries().alertmanager),
            f"--config.file={config}",
            f"--storage.path={data}",
            f"--web.listen-address={listen}",
            # One instance: no HA gossip, which would listen on 0.0.0.0:9094.
            "--cluster.listen-address=",
        ]


# ---- command line


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m seizewatch.alertmanager", description=__doc__.split("\n")[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("check", help="amtool check-config on deploy/alertmanager/alertmanager.yml")
    run = commands.add_parser("run", help="Alertmanager posting to the local pager's operator alerts")
    run.add_argument("--port", type=int, default=9093, help="where Alertmanager listens (127.0.0.1)")
    run.add_argument("--pager-url", help="the pager's base URL (default: from SEIZEWATCH_PAGER_HOST/PORT)")
    run.add_argument("--workdir", type=Path, default=Path("var/alertmanager"), help="config, data and log")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        if args.command == "check":
            result = check_config()
            print(result)
            return 0 if result.ok else 1
        settings = Settings.from_env()
        if settings.pager.api_token is None:
            print(
                "set SEIZEWATCH_PAGER_API_TOKEN: the pager refuses Alertmanager without it", file=sys.stderr
            )
            return 1
        pager_url = args.pager_url or f"http://{settings.pager.host}:{settings.pager.port}"
        stop_on_sigterm()
        # Interrupted while starting or running: the server is stopped on the way out either way.
        with (
            contextlib.suppress(KeyboardInterrupt),
            LocalAlertmanager(
                pager_url, settings.pager.api_token, port=args.port, workdir=args.workdir
            ) as am,
        ):
            print(f"Alertmanager on {am.url} posting to {pager_url}; Ctrl-C stops it", flush=True)
            return am.wait()
    except (ConfigurationError, ServiceUnavailable) as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0  # interrupted


if __name__ == "__main__":
    sys.exit(main())
