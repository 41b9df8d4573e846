"""The development Kafka: one KRaft node, or a cluster of three, run on loopback under the local home.

Every node is broker and KRaft controller at once, its controller listening on its broker port + 1.
``SEIZEWATCH_LOCAL_KAFKA_BROKERS=1`` (the default, for the demo and most tests) runs one node on the port
of ``SEIZEWATCH_KAFKA_BOOTSTRAP_SERVERS``. ``=3`` runs the production shape: three nodes, the three voters
of the quorum, on the bootstrap port P, P + 2 and P + 4, with replication factor 3 and
``min.insync.replicas=2``; the bootstrap servers must then list the three in that order, so that a client
started while one of them is down still finds the others. Node ids are 1, 2, 3 in that order.

Files, under ``SEIZEWATCH_LOCAL_HOME``: ``kafka/`` (config, pid file, data) and ``log/kafka.log`` for the
single node; ``kafka-cluster/node-N/`` and ``log/kafka-N.log`` for the cluster's nodes, which share one
cluster id (``kafka-cluster/cluster-id``). Both shapes may live in one home; each keeps its own data.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import os
import re
import secrets
import shutil
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from string import Template

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from seizewatch.localprocess import (
    READY_TIMEOUT_S,
    Address,
    Installer,
    alive,
    describe,
    listening,
    open_log,
    pid_in,
    require_loopback,
    run,
    tail,
    wait_gone,
)
from seizewatch.settings import Settings
from streams.errors import ConfigurationError, ServiceUnavailable

log = logging.getLogger(__name__)

KAFKA_DEPLOY_DIR = Path(__file__).resolve().parent.parent / "deploy" / "kafka"
KAFKA_STOP_TIMEOUT_S = 30.0
CLUSTER_SIZE = 3
# The cluster's nodes listen this far apart: each on its broker port and the next (its controller).
_PORT_STRIDE = 2
_BOOTSTRAP = "SEIZEWATCH_KAFKA_BOOTSTRAP_SERVERS"
# How long the last node of a cluster being stopped may wait alone before it is killed (see _stop).
_ALONE_GRACE_S = 5.0


def new_cluster_id() -> str:
    """A random KRaft cluster id: 16 bytes, URL-safe base64 unpadded, as Kafka's ``Uuid`` prints one.

    Never one starting with "-", which ``kafka-storage format -t`` would take for an option (one draw in
    64; Kafka's own ``Uuid.randomUuid`` skips those too).
    """
    while True:
        cluster_id = base64.urlsafe_b64encode(secrets.token_bytes(16)).rstrip(b"=").decode()
        if not cluster_id.startswith("-"):
            return cluster_id


def _parse_server(server: str, bootstrap_servers: str) -> Address:
    host, _, port = server.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not host or not port.isdigit() or not 0 < int(port) < 65535:
        raise ConfigurationError(f"{_BOOTSTRAP}={bootstrap_servers!r}: expected host:port")
    require_loopback(host, _BOOTSTRAP)
    return Address(host, int(port))


def kafka_addresses(bootstrap_servers: str, brokers: int) -> list[Address]:
    """Where the local nodes listen, node 1 first: the bootstrap servers, checked against the shape.

    Raises:
        ConfigurationError: not on loopback, not host:port, or not the addresses the shape needs (the
            message says what to set).
    """
    servers = [_parse_server(s.strip(), bootstrap_servers) for s in bootstrap_servers.split(",") if s.strip()]
    if brokers == 1:
        if len(servers) != 1:
            raise ConfigurationError(
                f"{_BOOTSTRAP}={bootstrap_servers!r}: the local broker is a single host:port "
                "(SEIZEWATCH_LOCAL_KAFKA_BROKERS=3 runs a cluster of three)"
            )
        return servers
    if not servers:
        raise ConfigurationError(f"{_BOOTSTRAP}={bootstrap_servers!r}: expected host:port,host:port,...")
    first = servers[0]
    expected = [Address(first.host, first.port + _PORT_STRIDE * n) for n in range(brokers)]
    if expected[-1].port + 1 > 65535 or servers != expected:
        raise ConfigurationError(
            f"{_BOOTSTRAP}={bootstrap_servers!r}: a local cluster of {brokers} listens on the first port P, "
            f"P + 2, P + 4... (each node's controller on its port + 1), all named here so that clients "
            f"find the others while one is down; set {_BOOTSTRAP}={','.join(map(str, expected))}"
        )
    return expected


@dataclass(frozen=True, slots=True)
class KafkaNode:
    """One Kafka process of the local home: its id, where it listens, where its files are."""

    node_id: int
    address: Address
    folder: Path  # its configuration, pid file and data
    log: Path
    name: str  # its status line's key: "kafka" for the single node, "kafka-N" in the cluster

    @property
    def controller(self) -> Address:
        return Address(self.address.host, self.address.port + 1)

    @property
    def config(self) -> Path:
        return self.folder / "server.properties"

    @property
    def pid_file(self) -> Path:
        return self.folder / "kafka.pid"

    @property
    def data(self) -> Path:
        return self.folder / "data"


def node_config(node: KafkaNode, nodes: tuple[KafkaNode, ...]) -> str:
    """The ``server.properties`` of ``node`` in the cluster of ``nodes``, from deploy/kafka/'s template."""

    def bracketed(address: Address) -> str:
        return f"[{address.host}]" if ":" in address.host else address.host

    template = Template((KAFKA_DEPLOY_DIR / "server.properties").read_text())
    return template.substitute(
        node_id=node.node_id,
        quorum_voters=",".join(f"{n.node_id}@{bracketed(n.controller)}:{n.controller.port}" for n in nodes),
        host=bracketed(node.address),
        port=node.address.port,
        controller_port=node.controller.port,
        data_dir=node.data,
        # Every partition on every node, and an acknowledged write (acks=all) on two of them at least:
        # one node may be down without losing one or refusing new ones (docs/operations.md).
        replication_factor=len(nodes),
        min_insync_replicas=min(2, len(nodes)),
    )


def _node_files(home: Path, brokers: int) -> list[tuple[int, Path, Path, str]]:
    """(node id, folder, log, name) of each node of the shape ``brokers`` in ``home``."""
    if brokers == 1:
        return [(1, home / "kafka", home / "log" / "kafka.log", "kafka")]
    return [
        (n, home / "kafka-cluster" / f"node-{n}", home / "log" / f"kafka-{n}.log", f"kafka-{n}")
        for n in range(1, brokers + 1)
    ]


def _pid(folder: Path) -> int | None:
    # The config path in the command line tells this home's node from any other process.
    return pid_in(folder / "kafka.pid", command=str(folder / "server.properties"))


def _stop(nodes: list[tuple[str, Path]], *, kill: bool = False) -> None:
    """Stops the nodes (name, folder) that run, all at once; ``kill`` sends SIGKILL (a crash).

    SIGTERM is a controlled shutdown: a node waits for the controller quorum to move its partitions' leaders
    away, up to 5 minutes; here SIGKILL ends it after 30 s. Stopping every node of a cluster, the last one
    may wait for a quorum that left with the others: it is killed once it is alone for a few seconds (its
    data stays; its next start recovers its log, as after a crash). All at once, rather than one by one,
    most often lets every node's shutdown through while the quorum still stands.
    """
    running = [(name, folder, pid) for name, folder in nodes if (pid := _pid(folder)) is not None]
    if not running:
        for name, _ in nodes:
            log.info("%s: not running", name)
        return
    for name, _, pid in running:
        log.info("%s: %s pid %d", name, "killing" if kill else "stopping (controlled shutdown)", pid)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL if kill else signal.SIGTERM)
    started = time.monotonic()
    alone_since: float | None = None
    pending = running
    while pending and time.monotonic() - started < KAFKA_STOP_TIMEOUT_S:
        pending = [node for node in pending if alive(node[2])]
        if len(running) > 1 and len(pending) == 1:
            alone_since = alone_since or time.monotonic()
            if time.monotonic() - alone_since > _ALONE_GRACE_S:
                log.warning("%s: waits for a controller quorum that left with the others", pending[0][0])
                break
        time.sleep(0.2)
    for name, _, pid in pending:
        log.warning("%s: pid %d still runs after %.0f s; killing it", name, pid, time.monotonic() - started)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        wait_gone(pid, 10.0)
    for name, folder, _ in running:
        log.info("%s: stopped", name)
        (folder / "kafka.pid").unlink(missing_ok=True)


async def _brokers_seen(address: Address) -> set[int]:
    """The ids of the brokers the cluster's metadata lists (registered and not fenced), asked of one node."""
    client = AIOKafkaAdminClient(bootstrap_servers=str(address), request_timeout_ms=5000)
    try:
        await client.start()
        return {int(broker["node_id"]) for broker in (await client.describe_cluster())["brokers"]}
    finally:
        await client.close()


class LocalKafka:
    """The local Kafka nodes of one home; every method is idempotent and synchronous.

    Raises (any method):
        ConfigurationError: an address is not on loopback or does not fit the shape, a setting is
            unusable, or something is missing that only root may install.
        ServiceUnavailable: a node did not come up in time, or a step to get it there failed; the message
            carries the tail of its log or the failing command's output.
    """

    def __init__(self, settings: Settings, installer: Installer) -> None:
        local = settings.local
        if not re.fullmatch(r"3\.\d+\.\d+", local.kafka_version):
            # deploy/kafka/pom.xml adds the 3.x logging backend; 4.x needs log4j2 and another -D flag.
            raise ConfigurationError(
                f"SEIZEWATCH_LOCAL_KAFKA_VERSION={local.kafka_version!r}: expected 3.x.y"
            )
        if not re.fullmatch(r"\d+[kmgKMG]?", local.kafka_heap):
            raise ConfigurationError(f"SEIZEWATCH_LOCAL_KAFKA_HEAP={local.kafka_heap!r}: expected e.g. 1g")
        addresses = kafka_addresses(settings.kafka.bootstrap_servers, local.kafka_brokers)
        self._home = local.home.expanduser().resolve()
        self._cache = local.cache_dir.expanduser().resolve()
        self._version = local.kafka_version
        self._heap = local.kafka_heap
        self._installer = installer
        self.nodes = tuple(
            KafkaNode(node_id, address, folder, log_path, name)
            for (node_id, folder, log_path, name), address in zip(
                _node_files(self._home, local.kafka_brokers), addresses, strict=True
            )
        )
        # One id for the whole cluster: nodes formatted with different ids refuse each other.
        first = self.nodes[0].folder
        self._cluster_id_file = (first if len(self.nodes) == 1 else first.parent) / "cluster-id"

    @property
    def folders(self) -> list[Path]:
        """What this module keeps in the home, of either shape (``seizewatch services wipe`` deletes it)."""
        return [self._home / "kafka", self._home / "kafka-cluster"]

    # ---- the commands

    def launch(self, node_id: int | None = None) -> dict[int, int]:
        """Starts the nodes (or one) that do not run, without waiting; returns every such node's pid."""
        nodes = self._select(node_id)
        java = self._installer.command("java", "openjdk-17-jre-headless")
        libs = self._jars()
        return {node.node_id: self._launch(node, java, libs) for node in nodes}

    def wait(self, pids: dict[int, int]) -> None:
        """Waits until each launched node answers and the cluster lists it as a broker."""
        started = time.monotonic()
        for node in self.nodes:
            if node.node_id in pids:
                self._wait(node, pids[node.node_id], started)

    def start(self, node_id: int | None = None) -> None:
        """Starts the nodes (or one) unless they run, and waits until they answer."""
        self.wait(self.launch(node_id))

    def stop(self, node_id: int | None = None) -> None:
        """Controlled shutdown (SIGTERM) of the nodes (or one); SIGKILL after 30 s."""
        _stop([(node.name, node.folder) for node in self._select(node_id)])

    def kill(self, node_id: int) -> int:
        """SIGKILL of one node, as a crash would end it; returns the pid it had.

        Raises:
            ServiceUnavailable: the node was not running.
        """
        [node] = self._select(node_id)
        pid = _pid(node.folder)
        if pid is None:
            raise ServiceUnavailable(f"{node.name} is not running: nothing to kill")
        _stop([(node.name, node.folder)], kill=True)
        return pid

    def stop_every_shape(self) -> None:
        """Stops every node this home runs, of the configured shape or the other (`services down`)."""
        others = [
            (name, folder)
            for shape in (1, CLUSTER_SIZE)
            for _, folder, _, name in _node_files(self._home, shape)
            if folder not in {node.folder for node in self.nodes}
        ]
        _stop([(node.name, node.folder) for node in self.nodes] + others)

    def status(self) -> dict[str, str]:
        return {node.name: describe(_pid(node.folder), node.address) for node in self.nodes}

    # ---- one node

    def _select(self, node_id: int | None) -> list[KafkaNode]:
        if node_id is None:
            return list(self.nodes)
        chosen = [node for node in self.nodes if node.node_id == node_id]
        if not chosen:
            ids = ", ".join(str(node.node_id) for node in self.nodes)
            raise ConfigurationError(f"no local Kafka node {node_id}; the nodes are {ids}")
        return chosen

    def _launch(self, node: KafkaNode, java: str, libs: Path) -> int:
        """The node's pid: the running one, or one started now (not waited for)."""
        pid = _pid(node.folder)
        if pid is not None:
            log.info("%s: already running (pid %d)", node.name, pid)
            return pid
        self._write_config(node)
        self._format_storage(node, java, libs)
        log.info("%s: starting Kafka %s on %s (log: %s)", node.name, self._version, node.address, node.log)
        open_log(node.log).close()
        argv = self._java(java, libs, "-Xms256m", f"-Xmx{self._heap}", "-XX:+UseG1GC", "kafka.Kafka")
        # The shell starts the broker in the background, in a session of its own, and exits: the broker is
        # nobody's child here, so it outlives this process without a zombie or a "still running" warning.
        background = 'log=$1; shift; "$@" </dev/null >>"$log" 2>&1 & echo $!'
        argv = ["sh", "-c", background, "sh", str(node.log), *argv, str(node.config)]
        out = run(argv, f"starting {node.name}", detach=True)
        node.pid_file.write_text(out.strip() + "\n")
        return int(out)

    def _wait(self, node: KafkaNode, pid: int, started: float) -> None:
        while not (listening(node.address) and self._listed(node)):
            if _pid(node.folder) is None:
                raise ServiceUnavailable(f"{node.name} exited while starting; {tail(node.log)}")
            if time.monotonic() - started > READY_TIMEOUT_S:
                raise ServiceUnavailable(
                    f"{node.name} (pid {pid}) did not answer on {node.address} within "
                    f"{READY_TIMEOUT_S:.0f} s; {tail(node.log)}"
                )
            time.sleep(0.5)
        log.info("%s: ready on %s (pid %d)", node.name, node.address, pid)

    def _listed(self, node: KafkaNode) -> bool:
        """Whether the node answers and the metadata it serves lists it as a live broker."""
        try:
            seen = asyncio.run(asyncio.wait_for(_brokers_seen(node.address), timeout=15.0))
        except (KafkaError, OSError, TimeoutError) as exc:
            log.debug("%s: not answering yet: %r", node.name, exc)
            return False
        return node.node_id in seen

    def _write_config(self, node: KafkaNode) -> None:
        text = node_config(node, self.nodes)
        node.folder.mkdir(parents=True, exist_ok=True)
        if not node.config.exists() or node.config.read_text() != text:
            node.config.write_text(text)

    def _format_storage(self, node: KafkaNode, java: str, libs: Path) -> None:
        if (node.data / "meta.properties").exists():
            return
        id_file = self._cluster_id_file
        if not id_file.exists() or id_file.read_text().startswith("-"):  # one an older version wrote
            id_file.write_text(new_cluster_id() + "\n")
        cluster_id = id_file.read_text().strip()
        log.info("%s: formatting the storage in %s (cluster id %s)", node.name, node.data, cluster_id)
        # No --standalone: the quorum is the static controller.quorum.voters of server.properties.
        argv = self._java(java, libs, "-Xmx256m", "kafka.tools.StorageTool", "format", "-t", cluster_id)
        run([*argv, "-c", str(node.config), "--ignore-formatted"], f"formatting the storage of {node.name}")

    # ---- the jars

    def _jars(self) -> Path:
        """The folder of the broker's jars, resolved from Maven Central once per version."""
        libs = self._cache / f"kafka-{self._version}-libs"
        marker = libs / ".resolved"  # written last: an interrupted download is redone, never half-used
        if marker.exists():
            return libs
        mvn = self._installer.command("mvn", "maven")
        shutil.rmtree(libs, ignore_errors=True)
        log.info("kafka: resolving the jars of Kafka %s from Maven Central into %s", self._version, libs)
        argv = [
            mvn, "-B", "-q", "-f", str(KAFKA_DEPLOY_DIR / "pom.xml"),
            f"-Dkafka.version={self._version}", f"-Dmaven.repo.local={self._cache / 'm2'}",
            "dependency:copy-dependencies", "-DincludeScope=runtime", f"-DoutputDirectory={libs}",
        ]  # fmt: skip
        run(argv, "resolving the Kafka jars with Maven", timeout_s=900.0)
        if not (libs / f"kafka_2.13-{self._version}.jar").exists():
            raise ServiceUnavailable(f"maven succeeded but {libs} holds no kafka_2.13-{self._version}.jar")
        marker.write_text(f"resolved by seizewatch at {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
        return libs

    @staticmethod
    def _java(java: str, libs: Path, *options_and_class: str) -> list[str]:
        log4j = f"-Dlog4j.configuration=file:{KAFKA_DEPLOY_DIR / 'log4j.properties'}"
        return [java, log4j, "-cp", f"{libs}/*", *options_and_class]
