"""The shape of the local Kafka (one node or three): addresses, files and configuration, refused settings."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from pydantic import SecretStr

from alerts.settings import PagerSettings, TwilioSettings
from connectors.settings import IngestSettings
from seizewatch.cli import cli
from seizewatch.localkafka import LocalKafka, kafka_addresses, node_config
from seizewatch.localprocess import Address, Installer
from seizewatch.settings import LocalServicesSettings, MetricsSettings, Settings
from streams.errors import ConfigurationError
from streams.settings import KafkaSettings, MatchSettings, PostgresSettings

CLUSTER = "127.0.0.1:19100,127.0.0.1:19102,127.0.0.1:19104"


def settings(home: Path, bootstrap: str, brokers: int) -> Settings:
    return Settings(
        KafkaSettings(bootstrap_servers=bootstrap), PostgresSettings(dsn=SecretStr("postgresql://sw@127.0.0.1/sw")),
        MatchSettings(), MetricsSettings(), LocalServicesSettings(home=home, kafka_brokers=brokers),
        IngestSettings(), PagerSettings(), TwilioSettings(),
    )  # fmt: skip


def properties(text: str) -> dict[str, str]:
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    return dict(line.split("=", 1) for line in lines)


def test_one_node_listens_where_the_bootstrap_servers_say() -> None:
    assert kafka_addresses("127.0.0.1:19092", 1) == [Address("127.0.0.1", 19092)]
    with pytest.raises(ConfigurationError, match="a single host:port"):
        kafka_addresses(CLUSTER, 1)


def test_a_cluster_listens_on_every_second_port_and_all_three_are_named() -> None:
    assert kafka_addresses(CLUSTER, 3) == [Address("127.0.0.1", 19100 + 2 * n) for n in range(3)]
    suggestion = re.escape(f"set SEIZEWATCH_KAFKA_BOOTSTRAP_SERVERS={CLUSTER}")
    for wrong in ("127.0.0.1:19100", "127.0.0.1:19100,127.0.0.1:19101,127.0.0.1:19102",
                  "127.0.0.1:19100,127.0.0.1:19104,127.0.0.1:19102"):  # fmt: skip
        with pytest.raises(ConfigurationError, match=suggestion):
            kafka_addresses(wrong, 3)
    with pytest.raises(ConfigurationError, match="not a loopback address"):
        kafka_addresses("10.0.0.5:19100,10.0.0.5:19102,10.0.0.5:19104", 3)


def test_the_brokers_setting_is_one_or_three(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEIZEWATCH_LOCAL_KAFKA_BROKERS", "2")
    with pytest.raises(ConfigurationError, match=r"SEIZEWATCH_LOCAL_KAFKA_BROKERS: .*1 .*or 3"):
        Settings.from_env()
    monkeypatch.setenv("SEIZEWATCH_LOCAL_KAFKA_BROKERS", "3")
    assert Settings.from_env().local.kafka_brokers == 3


def test_each_node_of_a_cluster_has_its_own_files_and_the_quorum_of_three(tmp_path: Path) -> None:
    kafka = LocalKafka(settings(tmp_path, CLUSTER, 3), Installer())
    assert [node.name for node in kafka.nodes] == ["kafka-1", "kafka-2", "kafka-3"]
    assert [node.folder for node in kafka.nodes] == [
        tmp_path / "kafka-cluster" / f"node-{n}" for n in (1, 2, 3)
    ]
    assert [node.log for node in kafka.nodes] == [tmp_path / "log" / f"kafka-{n}.log" for n in (1, 2, 3)]
    second = properties(node_config(kafka.nodes[1], kafka.nodes))
    assert second["node.id"] == "2"
    assert second["controller.quorum.voters"] == "1@127.0.0.1:19101,2@127.0.0.1:19103,3@127.0.0.1:19105"
    assert second["listeners"] == "PLAINTEXT://127.0.0.1:19102,CONTROLLER://127.0.0.1:19103"
    assert second["log.dirs"] == str(tmp_path / "kafka-cluster" / "node-2" / "data")
    for key in ("default.replication.factor", "offsets.topic.replication.factor",
                "transaction.state.log.replication.factor"):  # fmt: skip
        assert second[key] == "3", key
    assert second["min.insync.replicas"] == second["transaction.state.log.min.isr"] == "2"
    assert second["unclean.leader.election.enable"] == "false"


def test_the_single_node_keeps_its_files_and_one_copy(tmp_path: Path) -> None:
    kafka = LocalKafka(settings(tmp_path, "127.0.0.1:19092", 1), Installer())
    [node] = kafka.nodes
    assert (node.name, node.folder, node.log) == ("kafka", tmp_path / "kafka", tmp_path / "log" / "kafka.log")
    config = properties(node_config(node, kafka.nodes))
    assert config["controller.quorum.voters"] == "1@127.0.0.1:19093"
    assert config["default.replication.factor"] == config["min.insync.replicas"] == "1"
    with pytest.raises(ConfigurationError, match="no local Kafka node 2; the nodes are 1"):
        kafka.stop(2)


def test_services_refuse_a_bootstrap_that_does_not_fit_the_cluster_with_a_message(tmp_path: Path) -> None:
    env = {
        "SEIZEWATCH_LOCAL_HOME": str(tmp_path),
        "SEIZEWATCH_LOCAL_KAFKA_BROKERS": "3",
        "SEIZEWATCH_KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:19100",
    }
    result = CliRunner().invoke(cli, ["services", "status"], env=env)
    assert result.exit_code == 1
    assert f"set SEIZEWATCH_KAFKA_BOOTSTRAP_SERVERS={CLUSTER}" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
