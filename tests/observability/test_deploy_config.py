"""The production deployment agrees with the code: compose file, image, Grafana provisioning, dashboards,
Prometheus's and Alertmanager's configurations.

Plain file checks (no network, no container engine): every variable a service sets is a real setting and
every secret comes from deploy/.env, every command is a real CLI command, every scraped port is one a
process listens on, Prometheus notifies the Alertmanager service where it listens and Alertmanager posts
to a route the pager serves, and every dashboard query names only metrics the code registers. (One test,
marked integration, runs amtool on Alertmanager's file.)
"""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
import tomllib
import typing
from collections.abc import Iterator
from functools import cache
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import click
import pytest
import yaml
from prometheus_client.metrics import MetricWrapperBase
from pydantic import SecretStr
from pydantic_settings import BaseSettings

from alerts import metrics as alert_metrics
from alerts.settings import PagerSettings, TwilioSettings
from alerts.sms import ConsoleSms
from alerts.webhooks import create_app
from connectors import metrics as connector_metrics
from seizewatch import alertmanager
from seizewatch.cli import cli
from seizewatch.localkafka import KafkaNode, node_config
from seizewatch.localprocess import Address
from seizewatch.settings import Settings
from streams import metrics as stream_metrics
from streams.settings import KafkaSettings, PostgresSettings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "compose.yaml"
DOCKERFILE = DEPLOY / "Dockerfile"
ENV_EXAMPLE = DEPLOY / ".env.example"
PROMETHEUS_CONFIG = DEPLOY / "prometheus" / "prometheus.yml"
ALERTMANAGER_CONFIG = DEPLOY / "alertmanager" / "alertmanager.yml"
GRAFANA = DEPLOY / "grafana"
DASHBOARDS = GRAFANA / "dashboards"
DATASOURCES = GRAFANA / "provisioning" / "datasources" / "prometheus.yml"
DASHBOARD_PROVIDERS = GRAFANA / "provisioning" / "dashboards" / "seizewatch.yml"
DASHBOARD_FILES = ("pipeline.json", "alerts.json", "operations.json")
DATASOURCE_UID = "prometheus"

# The long-running processes: compose service -> the CLI command it runs.
PROCESSES = {"worker": "worker", "ingest": "ingest", "pager": "pager"}
# Where each process serves /metrics (and, for ingest and pager, its HTTP API): host and port settings.
LISTEN = {
    "worker": ("SEIZEWATCH_METRICS_HOST", "SEIZEWATCH_METRICS_PORT"),
    "ingest": ("SEIZEWATCH_INGEST_HOST", "SEIZEWATCH_INGEST_PORT"),
    "pager": ("SEIZEWATCH_PAGER_HOST", "SEIZEWATCH_PAGER_PORT"),
}
# Secrets without which a process cannot do its job; each must come from deploy/.env.
REQUIRED_SECRETS = {
    "ingest": {"SEIZEWATCH_INGEST_MASTER_KEY"},
    # An empty API token would let anyone call the acknowledgement API: it is required, not optional.
    "pager": {"SEIZEWATCH_TWILIO_AUTH_TOKEN", "SEIZEWATCH_PAGER_API_TOKEN"},
}

SUBSTITUTION = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)[^}]*\}")
# ${VAR:?message}: compose refuses to start while VAR is unset or empty.
REQUIRED_SUBSTITUTION = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*:\?[^}]*\}")
UNBRACED_VARIABLE = re.compile(r"(?<!\$)\$(?![{$])")
DSN = re.compile(
    r"^postgres(?:ql)?://(?P<user>[^:@/]+):(?P<password>[^@]+)@(?P<host>[^:/]+):(?P<port>\d+)/(?P<db>[^?/]+)$"
)
METRIC_NAME = re.compile(r"seizewatch_[a-z0-9_]+")
# Grafana variables ($name, ${name:format}); $1 in label_replace is no variable.
TEMPLATE_VARIABLE = re.compile(r"\$(?:\{(?P<braced>[A-Za-z_]\w*)[^}]*\}|(?P<plain>[A-Za-z_]\w*))")
VERSION_TAG = re.compile(r"^v?\d+(\.\d+)*([-.][A-Za-z0-9.]+)?$")


# --- reading the files ---------------------------------------------------------------------------------


@cache
def compose() -> dict[str, Any]:
    loaded = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def services() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = compose()["services"]
    return found


def seizewatch_services() -> dict[str, dict[str, Any]]:
    """The services running the seizewatch image."""
    return {name: s for name, s in services().items() if str(s.get("image", "")).startswith("seizewatch:")}


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(str(item).partition("=")[::2] for item in env)
    return {str(k): str(v) for k, v in env.items()}


def strings(node: object) -> Iterator[str]:
    """Every string value in a loaded YAML document (comments are gone by then)."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from strings(value)


def mounts(service: dict[str, Any]) -> list[tuple[str, str]]:
    """(source, target) of each volume entry, short or long syntax."""
    found = []
    for entry in service.get("volumes", []):
        if isinstance(entry, dict):
            found.append((str(entry["source"]), str(entry["target"])))
        else:
            source, target, *_ = str(entry).split(":")
            found.append((source, target))
    return found


def bind_mounts(service: dict[str, Any]) -> dict[str, Path]:
    """Container path -> host path, for the mounts of files and folders of this repository."""
    return {
        target: (COMPOSE.parent / source).resolve()
        for source, target in mounts(service)
        if source.startswith((".", "/"))
    }


def container_ports(service: dict[str, Any]) -> set[int]:
    """Ports other containers (expose) or other hosts (ports) may reach."""
    published = {int(str(entry).split(":")[-1].split("/")[0]) for entry in service.get("ports", [])}
    return published | {int(str(entry)) for entry in service.get("expose", [])}


def as_argv(value: object) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return shlex.split(value)
    assert isinstance(value, list), value
    return [str(part) for part in value]


@cache
def image_entrypoint() -> list[str]:
    found = re.search(r"^ENTRYPOINT\s+(\[.*\])\s*$", DOCKERFILE.read_text(encoding="utf-8"), re.MULTILINE)
    assert found, "deploy/Dockerfile has no exec-form ENTRYPOINT"
    entrypoint: list[str] = json.loads(found.group(1))
    return entrypoint


def invocations(service: dict[str, Any]) -> list[list[str]]:
    """The command lines a service runs: one, or each step of a `sh -c 'a && b'`."""
    entrypoint = as_argv(service.get("entrypoint")) or image_entrypoint()
    command = as_argv(service.get("command"))
    if entrypoint in (["/bin/sh", "-c"], ["sh", "-c"]):
        assert len(command) == 1, "sh -c takes the script as one argument"
        return [shlex.split(step) for step in re.split(r"&&|;", command[0])]
    return [entrypoint + command]


def resolve(args: list[str]) -> click.Command:
    """The click command that ``seizewatch <args>`` runs; KeyError when a word is no command."""
    command: click.Command = cli
    for word in args:
        if word.startswith("-") or not isinstance(command, click.Group):
            break
        command = command.commands[word]
    return command


@cache
def settings_variables() -> dict[str, bool]:
    """Every environment variable the settings read -> whether it is a secret (SecretStr)."""
    found: dict[str, bool] = {}
    for piece in typing.get_type_hints(Settings).values():
        assert isinstance(piece, type)
        assert issubclass(piece, BaseSettings)
        prefix = str(piece.model_config.get("env_prefix", ""))
        for field, info in piece.model_fields.items():
            secret = info.annotation is SecretStr or SecretStr in typing.get_args(info.annotation)
            found[f"{prefix}{field}".upper()] = secret
    return found


@cache
def env_example() -> dict[str, tuple[str, bool]]:
    """Variable -> (its value, whether a comment explains it) in deploy/.env.example."""
    lines = ENV_EXAMPLE.read_text(encoding="utf-8").splitlines()
    found: dict[str, tuple[str, bool]] = {}
    for i, line in enumerate(lines):
        assignment = re.match(r"^([A-Za-z_][A-Za-z0-9_]*)=(.*)$", line)
        if assignment:
            found[assignment.group(1)] = (assignment.group(2), i > 0 and lines[i - 1].startswith("#"))
        else:
            assert not line.strip() or line.startswith("#"), f".env.example: not a comment or NAME=: {line!r}"
    return found


@cache
def exported_metric_names() -> set[str]:
    """Sample names the three metrics modules expose (counters with _total, histograms with _bucket…)."""
    suffixes = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_count", "_sum", "_created")}
    names: set[str] = set()
    for module in (stream_metrics, connector_metrics, alert_metrics):
        for collector in vars(module).values():
            if isinstance(collector, MetricWrapperBase):
                for family in collector.describe():
                    names.update(family.name + suffix for suffix in suffixes.get(family.type, ("",)))
    return names


@cache
def dashboard(name: str) -> dict[str, Any]:
    loaded = json.loads((DASHBOARDS / name).read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def panels(board: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, including those inside (collapsed) rows."""
    for panel in board.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def load_yaml(path: Path) -> dict[str, Any]:
    loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


# --- compose: images, mounts, dependencies -------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(services()))
def test_every_image_is_pinned_to_a_version(name: str) -> None:
    image = str(services()[name].get("image", ""))
    assert image, f"{name}: no image"
    if "@sha256:" in image:
        return
    repository, _, tag = image.rpartition("/")[2].rpartition(":")
    assert repository, f"{name}: image {image!r} has no tag"
    assert tag != "latest"
    assert VERSION_TAG.match(tag), f"{name}: image tag {tag!r} is not a version"


def test_the_seizewatch_image_is_built_here_and_tagged_with_the_project_version() -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]
    assert set(seizewatch_services()) == {"init", *PROCESSES}
    for name, service in seizewatch_services().items():
        assert service["image"] == f"seizewatch:{version}", name
        build = service["build"]
        context = (COMPOSE.parent / build["context"]).resolve()
        assert context == ROOT, f"{name}: the build context must be the repository root"
        assert (context / build["dockerfile"]).resolve() == DOCKERFILE, name


def test_the_dockerfile_builds_a_non_root_image_of_this_repository() -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")
    base = re.findall(r"^FROM\s+(\S+)", text, re.MULTILINE)
    assert base, "no FROM"
    assert all(image.startswith("python:3.11-slim") for image in base), base
    users = re.findall(r"^USER\s+(\S+)", text, re.MULTILINE)
    assert users, "the image must not run as root"
    assert users[-1] not in {"root", "0"}
    assert image_entrypoint() == ["seizewatch"]
    sources = [
        source
        for line in re.findall(r"^COPY\s+(?!--from)(.+)$", text, re.MULTILINE)
        for source in line.split()[:-1]
        if not source.startswith("--")
    ]
    for source in sources:
        assert (ROOT / source).exists(), f"COPY {source}: not in the repository (the build context)"
    # The migrations are found next to the packages (streams/db.py): the image must carry them.
    assert "deploy/migrations" in sources


@pytest.mark.parametrize("name", sorted(services()))
def test_bind_mounts_exist_and_volumes_are_declared(name: str) -> None:
    declared = set(compose().get("volumes") or {})
    for source, target in mounts(services()[name]):
        if source.startswith((".", "/")):
            path = (COMPOSE.parent / source).resolve()
            assert path.is_relative_to(ROOT), f"{name}: {source} is outside the repository"
            assert path.exists(), f"{name}: {source} (mounted at {target}) does not exist"
        else:
            assert source in declared, f"{name}: volume {source} is not declared"


def test_services_start_in_order_and_infrastructure_reports_health() -> None:
    for name in ("kafka", "postgres"):
        assert services()[name].get("healthcheck", {}).get("test"), f"{name}: no healthcheck"
    assert "pg_isready" in as_argv(services()["postgres"]["healthcheck"]["test"])
    init = services()["init"]
    assert init["depends_on"] == {
        "kafka": {"condition": "service_healthy"},
        "postgres": {"condition": "service_healthy"},
    }
    assert init["restart"] == "no"
    for name in PROCESSES:
        assert services()[name]["depends_on"] == {"init": {"condition": "service_completed_successfully"}}


# --- compose: commands, settings, secrets ---------------------------------------------------------------


@pytest.mark.parametrize("name", ["init", *PROCESSES])
def test_each_seizewatch_service_runs_real_cli_commands(name: str) -> None:
    for argv in invocations(services()[name]):
        assert argv[:1] == ["seizewatch"], f"{name}: {argv} does not run seizewatch"
        try:
            command = resolve(argv[1:])
        except KeyError as exc:
            pytest.fail(f"{name}: `{shlex.join(argv)}`: no command {exc}")
        assert not isinstance(command, click.Group), f"{name}: `{shlex.join(argv)}` only prints help"


def test_each_process_runs_its_own_command_and_init_prepares_topics_and_schema() -> None:
    for name, command in PROCESSES.items():
        assert invocations(services()[name]) == [["seizewatch", command]]
    assert invocations(services()["init"]) == [
        ["seizewatch", "topics", "ensure"],
        ["seizewatch", "db", "migrate"],
    ]


def test_the_settings_are_collected_from_every_piece() -> None:
    variables = settings_variables()
    assert variables["SEIZEWATCH_PG_DSN"] is True
    assert variables["SEIZEWATCH_TWILIO_AUTH_TOKEN"] is True
    assert variables["SEIZEWATCH_KAFKA_BOOTSTRAP_SERVERS"] is False
    assert "SEIZEWATCH_METRICS_PORT" in variables


@pytest.mark.parametrize("name", sorted(services()))
def test_every_seizewatch_variable_is_a_real_setting(name: str) -> None:
    unknown = {key for key in environment(services()[name]) if key.startswith("SEIZEWATCH_")}
    unknown -= set(settings_variables())
    assert not unknown, f"{name} sets variables no settings class reads: {sorted(unknown)}"


@pytest.mark.parametrize("name", ["init", *PROCESSES])
def test_secrets_come_from_the_env_file_never_literal(name: str) -> None:
    env = environment(services()[name])
    assert REQUIRED_SECRETS.get(name, set()) <= set(env), f"{name}: a required secret is not set"
    for key, value in env.items():
        if not settings_variables().get(key):
            continue
        if key == "SEIZEWATCH_PG_DSN":
            dsn = DSN.match(value)
            assert dsn, f"{name}: SEIZEWATCH_PG_DSN is not postgresql://user:password@host:port/db"
            value = dsn.group("password")
        assert REQUIRED_SUBSTITUTION.fullmatch(value), f"{name}: {key} must be ${{VAR:?…}} from deploy/.env"


def test_database_and_grafana_passwords_come_from_the_env_file() -> None:
    postgres = environment(services()["postgres"])
    grafana = environment(services()["grafana"])
    assert REQUIRED_SUBSTITUTION.fullmatch(postgres["POSTGRES_PASSWORD"])
    assert REQUIRED_SUBSTITUTION.fullmatch(grafana["GF_SECURITY_ADMIN_PASSWORD"])
    # The processes log in with the password PostgreSQL was initialized with, as its user, to its database.
    initialized = SUBSTITUTION.fullmatch(postgres["POSTGRES_PASSWORD"])
    assert initialized
    for name in seizewatch_services():
        dsn = DSN.match(environment(services()[name])["SEIZEWATCH_PG_DSN"])
        assert dsn, name
        password = SUBSTITUTION.fullmatch(dsn["password"])
        assert password, name
        assert password["name"] == initialized["name"], name
        assert (dsn["user"], dsn["db"]) == (postgres["POSTGRES_USER"], postgres["POSTGRES_DB"]), name
        assert (dsn["host"], dsn["port"]) == ("postgres", "5432"), name


def test_every_substituted_variable_is_documented_in_env_example() -> None:
    used = {match["name"] for text in strings(compose()) for match in SUBSTITUTION.finditer(text)}
    listed = env_example()
    assert used - set(listed) == set(), "used in compose.yaml, missing in .env.example"
    assert set(listed) - used == set(), "listed in .env.example, used nowhere"
    for name, (value, explained) in listed.items():
        assert value == "", f".env.example: {name} must have no value"
        assert explained, f".env.example: {name} needs a comment line above it"
    for text in strings(compose()):
        assert not UNBRACED_VARIABLE.search(text), f"write ${{VAR}} (or $$ for a literal $): {text!r}"


def test_processes_reach_kafka_at_its_advertised_listener() -> None:
    advertised = {
        urlsplit(listener).netloc
        for listener in environment(services()["kafka"])["KAFKA_ADVERTISED_LISTENERS"].split(",")
    }
    for name in seizewatch_services():
        servers = environment(services()[name])["SEIZEWATCH_KAFKA_BOOTSTRAP_SERVERS"].split(",")
        assert set(servers) <= advertised, name


# --- ports and Prometheus --------------------------------------------------------------------------------


def listening_port(name: str) -> int:
    env = environment(services()[name])
    host, port = LISTEN[name]
    assert env.get(host) == "0.0.0.0", f"{name}: {host} must be 0.0.0.0 (the default is loopback only)"  # noqa: S104
    assert port in env, f"{name}: set {port} explicitly"
    return int(env[port])


@pytest.mark.parametrize("name", sorted(PROCESSES))
def test_processes_listen_on_the_ports_compose_opens(name: str) -> None:
    assert listening_port(name) in container_ports(services()[name])


def test_http_apis_are_published_on_their_documented_ports() -> None:
    assert {"8470:8470"} <= set(services()["ingest"]["ports"])
    assert {"8471:8471"} <= set(services()["pager"]["ports"])


def prometheus_config() -> dict[str, Any]:
    if not PROMETHEUS_CONFIG.exists():
        pytest.skip("deploy/prometheus/prometheus.yml is not written yet (another part of the deployment)")
    return load_yaml(PROMETHEUS_CONFIG)


def scrape_targets(config: dict[str, Any]) -> dict[str, str]:
    """host:port -> job name, from static and DNS service discovery."""
    found: dict[str, str] = {}
    for job in config.get("scrape_configs", []):
        for static in job.get("static_configs", []):
            found.update(dict.fromkeys(static.get("targets", []), job["job_name"]))
        for dns in job.get("dns_sd_configs", []):
            found.update({f"{host}:{dns['port']}": job["job_name"] for host in dns.get("names", [])})
    return found


def test_prometheus_scrapes_each_process_where_it_listens() -> None:
    targets = scrape_targets(prometheus_config())
    scraped = {target.rpartition(":")[0]: int(target.rpartition(":")[2]) for target in targets}
    assert set(PROCESSES) <= set(scraped), f"not scraped: {sorted(set(PROCESSES) - set(scraped))}"
    for host, port in scraped.items():
        assert host in PROCESSES, f"Prometheus scrapes {host}, which is no seizewatch process"
        assert port == listening_port(host), f"{host}: scraped on {port}, listens on {listening_port(host)}"


def test_prometheus_reads_its_mounted_configuration_and_rules() -> None:
    config = prometheus_config()
    prometheus = services()["prometheus"]
    flags = dict(arg.removeprefix("--").partition("=")[::2] for arg in as_argv(prometheus.get("command")))
    config_path = PurePosixPath(flags.get("config.file", "/etc/prometheus/prometheus.yml"))
    mounted = {PurePosixPath(target): host for target, host in bind_mounts(prometheus).items()}
    assert mounted.get(config_path) == PROMETHEUS_CONFIG.resolve()
    assert config.get("rule_files"), "no rule files"
    for pattern in config["rule_files"]:
        container_glob = config_path.parent / pattern
        folder = mounted.get(container_glob.parent)
        assert folder, f"rule_files {pattern}: {container_glob.parent} is not mounted"
        matched = [path for path in folder.iterdir() if fnmatch.fnmatch(path.name, container_glob.name)]
        assert matched, f"rule_files {pattern}: no file in {folder}"


def test_grafana_rate_interval_matches_the_scrape_interval() -> None:
    scrape_interval = prometheus_config().get("global", {}).get("scrape_interval", "1m")
    (datasource,) = load_yaml(DATASOURCES)["datasources"]
    assert datasource["jsonData"]["timeInterval"] == scrape_interval


# --- Alertmanager ----------------------------------------------------------------------------------------


def flags(service: dict[str, Any]) -> dict[str, str]:
    """``--name=value`` arguments of a service's command, by name."""
    return dict(arg.removeprefix("--").partition("=")[::2] for arg in as_argv(service.get("command")))


def alertmanager_port() -> int:
    listen = flags(services()["alertmanager"]).get("web.listen-address", ":9093")
    return int(listen.rpartition(":")[2])


def pager_routes() -> set[tuple[str, str]]:
    """(method, path) of every route the pager's app serves (built, not started)."""
    app = create_app(
        KafkaSettings(), PostgresSettings(), PagerSettings(), TwilioSettings(), ConsoleSms(), consume=False
    )
    return {
        (method, route.path)
        for route in app.routes
        for method in getattr(route, "methods", None) or ()
        if hasattr(route, "path")
    }


def test_prometheus_sends_alerts_to_the_alertmanager_service() -> None:
    managers = prometheus_config()["alerting"]["alertmanagers"]
    targets = [t for m in managers for static in m["static_configs"] for t in static["targets"]]
    assert targets == [f"alertmanager:{alertmanager_port()}"]
    assert alertmanager_port() in container_ports(services()["alertmanager"])


def test_alertmanager_reads_its_mounted_configuration_and_keeps_its_state() -> None:
    service = services()["alertmanager"]
    assert str(service["image"]).startswith("prom/alertmanager:")
    config_path = flags(service).get("config.file", "/etc/alertmanager/alertmanager.yml")
    assert bind_mounts(service).get(config_path) == ALERTMANAGER_CONFIG.resolve()
    assert ALERTMANAGER_CONFIG.resolve() == alertmanager.CONFIG_FILE.resolve()
    # Its notification log (what was sent to whom) survives a restart: fewer resends.
    storage = flags(service).get("storage.path", "/alertmanager")
    assert storage in {target for source, target in mounts(service) if not source.startswith((".", "/"))}
    # One instance: an empty cluster address turns the gossip listener (0.0.0.0:9094) off.
    assert flags(service).get("cluster.listen-address") == ""
    # No authentication of its own: loopback only, like Prometheus.
    assert all(str(port).startswith("127.0.0.1:") for port in service.get("ports", []))


def test_alertmanager_posts_every_alert_to_the_pagers_receiver_with_its_token() -> None:
    config = load_yaml(ALERTMANAGER_CONFIG)
    hook = alertmanager.webhook(config)
    url = urlsplit(hook["url"])
    assert url.hostname == "pager"
    assert url.port == listening_port("pager")
    assert ("POST", url.path) in pager_routes(), f"the pager serves no POST {url.path}"
    assert hook["send_resolved"] is True
    # Every route ends at the operators' receiver: no alert is routed to nobody.
    routes = [config["route"], *config["route"].get("routes", [])]
    assert {route.get("receiver", config["route"]["receiver"]) for route in routes} == {alertmanager.RECEIVER}
    # The bearer token is the pager's own API token, handed over as a compose secret.
    authorization = hook["http_config"]["authorization"]
    assert authorization["type"] == "Bearer"
    secret = PurePosixPath(authorization["credentials_file"])
    assert secret.parent == PurePosixPath("/run/secrets")
    assert secret.name in services()["alertmanager"]["secrets"]
    token = SUBSTITUTION.fullmatch(environment(services()["pager"])["SEIZEWATCH_PAGER_API_TOKEN"])
    assert token, "the pager's API token must come from deploy/.env"
    assert compose()["secrets"][secret.name] == {"environment": token["name"]}


def seconds(duration: str) -> float:
    """An Alertmanager duration (``30s``, ``2m``, ``1h``) in seconds."""
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
    match = re.fullmatch(r"(\d+)(ms|s|m|h|d)", duration)
    assert match, f"not a simple duration: {duration}"
    return int(match[1]) * units[match[2]]


def test_alertmanager_intervals_suit_paging_people() -> None:
    route = load_yaml(ALERTMANAGER_CONFIG)["route"]
    for sub in [route, *route.get("routes", [])]:
        wait = seconds(sub.get("group_wait", route["group_wait"]))
        interval = seconds(sub.get("group_interval", route["group_interval"]))
        repeat = seconds(sub.get("repeat_interval", route["repeat_interval"]))
        assert 0 < wait <= 60, "an alert waits at most a minute for company before it is sent"
        assert interval <= 5 * 60, "an alert joining a notified group waits at most 5 minutes"
        assert interval <= repeat <= 24 * 3600
        if 'severity="critical"' in sub.get("matchers", []):
            assert wait <= 10, "a critical alert is sent within seconds"


@pytest.mark.integration
def test_amtool_accepts_the_alertmanager_configuration() -> None:
    result = alertmanager.check_config()
    if not result.ok:
        pytest.fail(str(result), pytrace=False)


# --- Grafana provisioning --------------------------------------------------------------------------------


def test_the_datasource_is_the_prometheus_service() -> None:
    (datasource,) = load_yaml(DATASOURCES)["datasources"]
    assert datasource["uid"] == DATASOURCE_UID
    assert datasource["type"] == "prometheus"
    url = urlsplit(datasource["url"])
    assert url.hostname == "prometheus"
    assert url.hostname in services()
    assert url.port in container_ports(services()["prometheus"])


def test_grafana_loads_the_dashboards_folder_of_this_repository() -> None:
    grafana = services()["grafana"]
    mounted = bind_mounts(grafana)
    assert mounted.get("/etc/grafana/provisioning") == (GRAFANA / "provisioning").resolve()
    providers = load_yaml(DASHBOARD_PROVIDERS)["providers"]
    assert providers
    for provider in providers:
        folder = mounted.get(provider["options"]["path"])
        assert folder == DASHBOARDS.resolve(), (
            f"provider {provider['name']}: path is not deploy/grafana/dashboards"
        )
        assert sorted(path.name for path in folder.glob("*.json")) == sorted(DASHBOARD_FILES)
    home = environment(grafana).get("GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH")
    if home:
        folder = mounted.get(str(PurePosixPath(home).parent))
        assert folder, f"home dashboard {home} is not in a mounted folder"
        assert (folder / PurePosixPath(home).name).exists()


# --- dashboards -----------------------------------------------------------------------------------------


def test_dashboards_have_unique_uids_and_titles() -> None:
    uids = [dashboard(name)["uid"] for name in DASHBOARD_FILES]
    titles = [dashboard(name)["title"] for name in DASHBOARD_FILES]
    assert len(set(uids)) == len(uids)
    assert len(set(titles)) == len(titles)
    assert all(uids)
    assert all(titles)


@pytest.mark.parametrize("name", DASHBOARD_FILES)
def test_every_query_names_registered_metrics_only(name: str) -> None:
    board = dashboard(name)
    assert board["schemaVersion"] >= 39
    variables = {"__rate_interval"} | {v["name"] for v in board.get("templating", {}).get("list", [])}
    queried = 0
    ids = [panel["id"] for panel in panels(board)]
    assert len(set(ids)) == len(ids), "panel ids repeat"
    for panel in panels(board):
        if panel["type"] == "row":
            continue
        title = panel["title"]
        assert title, f"panel {panel['id']} has no title"
        assert panel.get("description"), f"{title}: no description"
        assert panel["targets"], f"{title}: no query"
        for target in panel["targets"]:
            expr = target.get("expr", "").strip()
            assert expr, f"{title}: empty expr"
            assert target.get("refId"), f"{title}: no refId"
            assert isinstance(target.get("legendFormat"), str), f"{title}: no legendFormat"
            assert target.get("datasource", panel.get("datasource"))["uid"] == DATASOURCE_UID
            unknown = set(METRIC_NAME.findall(expr)) - exported_metric_names()
            assert not unknown, f"{title}: {sorted(unknown)} are not registered by any metrics module"
            used = {m["braced"] or m["plain"] for m in TEMPLATE_VARIABLE.finditer(expr)}
            assert used <= variables, f"{title}: undefined variables {sorted(used - variables)}"
            queried += 1
        if any("histogram_quantile" in target["expr"] for target in panel["targets"]):
            assert panel["fieldConfig"]["defaults"]["unit"] == "s", f"{title}: latencies are in seconds"
    assert queried


def test_the_court_variable_lists_the_funnel_courts() -> None:
    (court,) = dashboard("operations.json")["templating"]["list"]
    assert court["name"] == "court"
    assert court["definition"] == "label_values(seizewatch_funnel_alarms, court)"


# --- the three-broker cluster: compose.cluster.yaml over compose.yaml -------------------------------------

CLUSTER_OVERRIDE = DEPLOY / "compose.cluster.yaml"
KAFKA_NODES = ("kafka", "kafka-2", "kafka-3")
# What a node's configuration says about copies, in deploy/kafka/server.properties and in compose.
REPLICATION_PROPERTIES = (
    "default.replication.factor", "min.insync.replicas", "offsets.topic.replication.factor",
    "transaction.state.log.replication.factor", "transaction.state.log.min.isr",
    "unclean.leader.election.enable", "auto.create.topics.enable",
)  # fmt: skip


@cache
def cluster_override() -> dict[str, Any]:
    return load_yaml(CLUSTER_OVERRIDE)


def with_override(name: str) -> dict[str, Any]:
    """A service as `docker compose -f compose.yaml -f compose.cluster.yaml` runs it: the override's keys
    replace the base's, but for environment and depends_on, which merge key by key."""
    base = services().get(name, {})
    override = cluster_override()["services"].get(name, {})
    merged = {**base, **override}
    for key in ("environment", "depends_on"):
        if key in base and key in override:
            merged[key] = {**base[key], **override[key]}
    return merged


def kafka_properties(service: dict[str, Any]) -> dict[str, str]:
    """The broker settings the apache/kafka image makes of KAFKA_* variables (KAFKA_A_B: a.b)."""
    env = environment(service)
    return {
        k.removeprefix("KAFKA_").lower().replace("_", "."): v
        for k, v in env.items()
        if k.startswith("KAFKA_")
    }


def local_config(nodes: int) -> dict[str, str]:
    """The replication settings of a node of the local single node or cluster (seizewatch.localkafka)."""
    shape = tuple(
        KafkaNode(
            n, Address("127.0.0.1", 19100 + 2 * (n - 1)), Path(f"/n{n}"), Path(f"/n{n}.log"), f"kafka-{n}"
        )
        for n in range(1, nodes + 1)
    )
    lines = [line for line in node_config(shape[0], shape).splitlines() if line and not line.startswith("#")]
    return {
        key: value for key, value in (line.split("=", 1) for line in lines) if key in REPLICATION_PROPERTIES
    }


def test_the_single_node_is_configured_like_the_local_one() -> None:
    properties = kafka_properties(services()["kafka"])
    assert {key: properties.get(key) for key in REPLICATION_PROPERTIES} == local_config(1)


def test_the_cluster_override_runs_three_voters_configured_like_the_local_cluster() -> None:
    assert set(KAFKA_NODES) <= set(cluster_override()["services"])
    voters = ",".join(f"{n}@{name}:9093" for n, name in enumerate(KAFKA_NODES, start=1))
    for n, name in enumerate(KAFKA_NODES, start=1):
        node = with_override(name)
        properties = kafka_properties(node)
        assert node["image"] == services()["kafka"]["image"], name
        assert properties["node.id"] == str(n), name
        assert properties["controller.quorum.voters"] == voters, name
        assert properties["advertised.listeners"] == f"PLAINTEXT://{name}:9092", name
        assert environment(node)["CLUSTER_ID"] == environment(services()["kafka"])["CLUSTER_ID"], name
        assert {key: properties.get(key) for key in REPLICATION_PROPERTIES} == local_config(3), name
        assert node.get("healthcheck", {}).get("test"), f"{name}: no healthcheck"


def test_the_cluster_override_gives_each_node_its_volume_and_every_process_all_three() -> None:
    declared = set(compose().get("volumes") or {}) | set(cluster_override().get("volumes") or {})
    data = [{target: source for source, target in mounts(with_override(name))} for name in KAFKA_NODES]
    sources = [mounted["/var/lib/kafka/data"] for mounted in data]
    assert len(set(sources)) == len(KAFKA_NODES)
    assert set(sources) <= declared
    advertised = [
        urlsplit(kafka_properties(with_override(name))["advertised.listeners"]).netloc for name in KAFKA_NODES
    ]
    for name in ("init", *PROCESSES):
        env = environment(with_override(name))
        assert env["SEIZEWATCH_KAFKA_BOOTSTRAP_SERVERS"].split(",") == advertised, name
        assert {key for key in env if key.startswith("SEIZEWATCH_")} <= set(settings_variables()), name
    waits = with_override("init")["depends_on"]
    assert all(waits[name] == {"condition": "service_healthy"} for name in KAFKA_NODES), waits
