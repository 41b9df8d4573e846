"""Every Kafka topic seizewatch uses, declared once: partitions, retention, compaction.

The broker runs with ``auto.create.topics.enable=false``; ``seizewatch topics ensure`` (run by
``seizewatch services up``) creates what is missing, with the replication factor the cluster declares
(:func:`replication_factor`: 1 on the single development node, 3 on a cluster), and a worker refuses to
start while a topic it needs is absent. Names here are logical:
:meth:`streams.settings.KafkaSettings.topic` adds the prefix.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaError, for_code

from streams.errors import ConfigurationError, InvalidInput, ServiceUnavailable
from streams.settings import KafkaSettings

log = logging.getLogger(__name__)

_DAY_MS = 24 * 3600 * 1000

SIGHTINGS = "plate.sightings"
SIGHTINGS_DLQ = "plate.sightings.dlq"
WATCHLIST_CHANGES = "watchlist.changes"
HITS = "watch.hits"
HITS_DLQ = "watch.hits.dlq"
SEIZURE_REQUESTS = "traffic.seizure-requests"
SEIZURE_RESULTS = "traffic.seizure-results"


@dataclass(frozen=True, slots=True)
class TopicSpec:
    name: str
    partitions: int
    purpose: str
    config: dict[str, str] = field(default_factory=dict)


TOPICS: tuple[TopicSpec, ...] = (
    TopicSpec(
        SIGHTINGS,
        partitions=6,
        # The key is a contract: the match stage rules a read out by it without decoding the value.
        purpose="canonical plate reads, key: normalized plate (exactly the value's plate, UTF-8)",
        # Privacy: a read that matches nothing is stored nowhere else, and only this long.
        config={"retention.ms": str(3 * _DAY_MS), "cleanup.policy": "delete"},
    ),
    TopicSpec(
        SIGHTINGS_DLQ,
        partitions=1,
        purpose="payloads that could not become or be processed as sightings: raw bytes + reason headers",
        config={"retention.ms": str(7 * _DAY_MS), "cleanup.policy": "delete"},
    ),
    TopicSpec(
        WATCHLIST_CHANGES,
        partitions=3,
        purpose="latest state of every watch entry, key: entry id; tombstone when released or seized",
        config={"cleanup.policy": "compact", "min.cleanable.dirty.ratio": "0.1", "segment.ms": str(_DAY_MS)},
    ),
    TopicSpec(
        HITS,
        partitions=6,
        purpose="a read matched a watch entry, key: entry id (one partition owns one vehicle)",
        config={"retention.ms": str(30 * _DAY_MS), "cleanup.policy": "delete"},
    ),
    TopicSpec(
        SEIZURE_REQUESTS,
        partitions=3,
        purpose="one-click seizure (一键扣车): vehicles the traffic police should stop, key: entry id;"
        " tombstone when released or seized",
        config={"cleanup.policy": "compact", "min.cleanable.dirty.ratio": "0.1", "segment.ms": str(_DAY_MS)},
    ),
    TopicSpec(
        SEIZURE_RESULTS,
        partitions=3,
        purpose="what the traffic police did (stopped, seized, custody), key: entry id",
        config={"retention.ms": str(30 * _DAY_MS), "cleanup.policy": "delete"},
    ),
    TopicSpec(
        HITS_DLQ,
        partitions=1,
        # Each record is a hit nobody was paged for: kept as long as the hits themselves.
        purpose="hits the pager could not take (unreadable, refused by PostgreSQL): raw bytes + reasons",
        config={"retention.ms": str(30 * _DAY_MS), "cleanup.policy": "delete"},
    ),
)


def spec(name: str) -> TopicSpec:
    for topic in TOPICS:
        if topic.name == name:
            return topic
    raise KeyError(name)


# An acknowledged write (acks=all, streams/producers.py) is on this many replicas at least, wherever a
# topic has that many: with three, one broker may be down without losing one or refusing new ones.
MIN_INSYNC_REPLICAS = 2
# Fewer copies than this (or than the brokers, when there are fewer) is no cluster's deliberate choice.
_WANTED_REPLICAS = 3
_TOPIC_ALREADY_EXISTS = 36
_METADATA_WAIT_S = 10.0


async def replication_factor(admin: AIOKafkaAdminClient) -> int:
    """The replication factor of the declared topics: the cluster's ``default.replication.factor``.

    Read from the cluster's configuration rather than counted from the brokers alive now, so that topics
    created while one broker of three is down are refused (and created once it is back), never given two
    copies for good. The single node declares 1, the three-broker cluster 3 (deploy/kafka/server.properties,
    deploy/compose.yaml and its cluster override).

    Raises:
        ConfigurationError: the cluster declares fewer copies than it has brokers, up to three (a broker
            configured for one copy by mistake: Kafka's own default).
        ServiceUnavailable: no broker answered the question.
    """
    brokers = sorted(int(b["node_id"]) for b in (await admin.describe_cluster())["brokers"])
    values: dict[str, str] = {}
    problems = []
    for broker in brokers:  # the first that answers: one listed may have just crashed
        resource = ConfigResource(
            ConfigResourceType.BROKER, str(broker), {"default.replication.factor": None}
        )
        try:
            [response] = await admin.describe_configs([resource])
        except KafkaError as exc:
            problems.append(f"broker {broker}: {exc!r}")
            continue
        [(error_code, error_message, _, _, entries)] = response.resources
        values = {entry[0]: entry[1] for entry in entries}
        if not error_code and "default.replication.factor" in values:
            break
        problems.append(f"broker {broker}: error {error_code} {error_message}")
    else:
        raise ServiceUnavailable(
            f"no broker said its default.replication.factor: {problems or 'none listed'}"
        )
    factor = int(values["default.replication.factor"])
    if factor < min(_WANTED_REPLICAS, len(brokers)):
        raise ConfigurationError(
            f"the Kafka cluster has {len(brokers)} brokers but default.replication.factor={factor}: the "
            f"topics would hold {factor} copies; set default.replication.factor="
            f"{min(_WANTED_REPLICAS, len(brokers))} (and min.insync.replicas={MIN_INSYNC_REPLICAS})"
        )
    return factor


async def ensure_topics(settings: KafkaSettings) -> list[str]:
    """Create every declared topic that is missing; return the names created.

    Topics get the cluster's replication factor (:func:`replication_factor`) and
    ``min.insync.replicas`` of 2 (1 on a single node) unless their spec says otherwise.

    Raises:
        ConfigurationError: an existing topic has another partition count than declared (keys would
            move between partitions) or fewer replicas than the cluster's replication factor (fix either
            by hand, deliberately), or the cluster refused to create a topic for a reason that retrying
            does not change (its message is included).
        ServiceUnavailable: Kafka did not answer, or refused for a reason that may pass.
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers, client_id=settings.client_id)
    await admin.start()
    try:
        factor = await replication_factor(admin)
        existing = set(await admin.list_topics())
        wanted = {settings.topic(t.name): t for t in TOPICS}
        isr = {"min.insync.replicas": str(min(MIN_INSYNC_REPLICAS, factor))}
        missing = [
            NewTopic(
                name=real,
                num_partitions=t.partitions,
                replication_factor=factor,
                topic_configs=isr | t.config,
            )
            for real, t in wanted.items()
            if real not in existing
        ]
        created = []
        if missing:
            response = await admin.create_topics(missing)
            for name, error_code, *message in response.topic_errors:
                if error_code == _TOPIC_ALREADY_EXISTS:  # created meanwhile by another `topics ensure`
                    existing.add(name)
                elif error_code:
                    error = for_code(error_code)
                    refused = ServiceUnavailable if error.retriable else ConfigurationError
                    reason = " ".join(str(part) for part in message if part)
                    raise refused(f"Kafka refused to create topic {name}: {error.__name__} {reason}")
                else:
                    created.append(name)
            if created:
                log.info("created topics %s (replication factor %d)", ", ".join(created), factor)
        present = [real for real in wanted if real in existing]
        if present:
            for meta in await _described(admin, present):
                _check_existing(meta, wanted[meta["topic"]], factor)
        return created
    finally:
        await admin.close()


async def _described(admin: AIOKafkaAdminClient, topics: list[str]) -> list[dict[str, Any]]:
    """The topics' metadata once the broker asked knows each of them, or as it stands after a few seconds.

    A topic reaches each broker's metadata a moment after the controller created it (seconds, on a busy
    cluster): one just created by another `topics ensure` would otherwise look like one of 0 partitions.
    """
    metadata: list[dict[str, Any]] = []
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(_METADATA_WAIT_S):
            while True:
                metadata = await admin.describe_topics(topics)
                if all(meta["error_code"] == 0 and meta["partitions"] for meta in metadata):
                    break
                await asyncio.sleep(0.2)
    return metadata


def _check_existing(meta: dict[str, Any], declared: TopicSpec, factor: int) -> None:
    topic, partitions = meta["topic"], meta["partitions"]
    if meta["error_code"]:
        raise ServiceUnavailable(
            f"Kafka does not describe topic {topic}: {for_code(meta['error_code']).__name__}"
        )
    if len(partitions) != declared.partitions:
        raise ConfigurationError(
            f"topic {topic} has {len(partitions)} partitions, declared {declared.partitions}"
        )
    replicas = min(len(partition["replicas"]) for partition in partitions)
    if replicas < factor:
        raise ConfigurationError(
            f"topic {topic} has partitions of {replicas} replicas, the cluster's replication factor is "
            f"{factor}: an acknowledged write may rest on fewer brokers than the cluster promises; "
            "reassign its partitions (kafka-reassign-partitions.sh) or recreate it"
        )


async def missing_topics(settings: KafkaSettings, names: list[str]) -> list[str]:
    """The topics among ``names`` (logical) that do not exist on the broker (real names)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers, client_id=settings.client_id)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
    finally:
        await admin.close()
    return [settings.topic(n) for n in names if settings.topic(n) not in existing]


async def wait_for_assignment(
    consumer: AIOKafkaConsumer, topic: str, within: float = 30
) -> list[TopicPartition]:
    """The partitions assigned once metadata arrived.

    Raises:
        InvalidInput: the topic does not exist (``seizewatch topics ensure`` creates it).
    """
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(within):
            # aiokafka signals no event when the assignment arrives with the first metadata: poll it.
            while not consumer.assignment():  # noqa: ASYNC110
                await asyncio.sleep(0.05)
    assigned = sorted(consumer.assignment(), key=lambda tp: tp.partition)
    if not assigned:
        raise InvalidInput("missing_topic", f"topic {topic} has no partitions after {within} s")
    return assigned
