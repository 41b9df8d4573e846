"""Every Kafka topic seizewatch uses, declared once: partitions, retention, compaction.

The broker runs with ``auto.create.topics.enable=false``; ``seizewatch topics ensure`` (run by
``seizewatch services up``) creates what is missing, and a worker refuses to start while a topic it needs
is absent. Names here are logical: :meth:`streams.settings.KafkaSettings.topic` adds the prefix.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from streams.errors import ConfigurationError, InvalidInput
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


async def ensure_topics(settings: KafkaSettings) -> list[str]:
    """Create every declared topic that is missing; return the names created.

    Raises:
        ConfigurationError: an existing topic has another partition count than declared (keys would
            move between partitions: fix it by hand, deliberately).
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers, client_id=settings.client_id)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = {settings.topic(t.name): t for t in TOPICS}
        missing = [
            NewTopic(name=real, num_partitions=t.partitions, replication_factor=1, topic_configs=t.config)
            for real, t in wanted.items()
            if real not in existing
        ]
        if missing:
            await admin.create_topics(missing)
            log.info("created topics %s", ", ".join(t.name for t in missing))
        present = [real for real in wanted if real in existing]
        if present:
            for meta in await admin.describe_topics(present):
                declared = wanted[meta["topic"]].partitions
                if len(meta["partitions"]) != declared:
                    raise ConfigurationError(
                        f"topic {meta['topic']} has {len(meta['partitions'])} partitions, declared {declared}"
                    )
        return [t.name for t in missing]
    finally:
        await admin.close()


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
