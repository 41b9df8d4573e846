"""The consumers of seizewatch's consumer groups, made in one place with the group settings chosen once.

Every process that consumes a group (the matcher's ``plate.sightings``, the pager's ``watch.hits`` and
``traffic.seizure_results``) takes its consumer from :func:`group_consumer`, so what a restart costs is
decided here, not per call site. A restarted process loses time to its group in two ways: a member that
died without a word (kill -9, a lost host) keeps its partitions until its **session** expires, and every
change of membership is a **rebalance** the other members learn of at their next heartbeat. Hence:

- ``session_timeout_ms`` (``SEIZEWATCH_KAFKA_SESSION_TIMEOUT_MS``, 10 s): how long a silent member keeps
  its partitions. A dynamic member killed and restarted waits this out (the coordinator will not hand
  its partitions to the new member before the old one expires). Lower is faster but each missed second
  of heartbeats is closer to a false expiry; the broker refuses below 6 s (group.min.session.timeout.ms).
- ``heartbeat_interval_ms`` = 1 s, far below a third of the session: the others join a rebalance within
  a second (aiokafka's 3 s default made every rebalance of a group of several workers wait up to 3 s),
  and ten heartbeats must be lost in a row before a live member is taken for dead. One small request a
  second per member is nothing to the broker.
- ``rebalance_timeout_ms`` = the session: aiokafka rejoins in the background at once (no revocation work
  here), so only a dead or wedged member makes the coordinator wait, and it is gone after its session.
- ``max_poll_interval_ms`` = 300 s (Kafka's default): a member that stops asking for records is assumed
  stuck and leaves. A member holding a record because PostgreSQL is down stops asking too; passing its
  partitions around the group would only pass the same failure on, so the bound is generous.
- **static membership** (KIP-345) when ``SEIZEWATCH_KAFKA_INSTANCE_ID`` names the process: a member that
  comes back under the same name within its session takes its partitions back at once, without a
  rebalance and without waiting for the old member's session. aiokafka 0.14 sends JoinGroup v5 and
  SyncGroup v3 with the name (Kafka 3.9 answers both); tests/faults/test_worker_recovery.py checks it on
  the real broker, kill -9 included. The price: a static member does not leave the group when it stops
  (aiokafka, like Kafka's own client, sends no LeaveGroup for one), so a process stopped for good keeps
  its partitions for one session before the others get them; and two processes must never share a name
  (each would fence the other out in turn).
- without a name, a member **leaves the group on a clean stop** (SIGTERM: ``consumer.stop()`` sends
  LeaveGroup), so the others take its partitions at once instead of after its session.

Every group consumer commits by hand after its records are processed (``enable_auto_commit=False``) and
starts a new group from the earliest offset (nothing is skipped when a group is first created).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition

from streams.errors import translate
from streams.settings import KafkaSettings

log = logging.getLogger(__name__)

HEARTBEAT_INTERVAL_MS = 1_000
MAX_POLL_INTERVAL_MS = 300_000


def group_consumer(
    kafka: KafkaSettings,
    *topics: str,
    group_id: str,
    role: str,
    max_poll_records: int | None = None,
) -> AIOKafkaConsumer:
    """A consumer of group ``group_id``, subscribed to ``topics`` (real names) when any are given.

    Without topics it joins nothing when started: :func:`join` subscribes it later (the matcher joins
    once its index is loaded, so that the others keep its partitions meanwhile). ``role`` names the
    consumer in the broker's view (``client_id``) and in the log.
    """
    consumer = AIOKafkaConsumer(
        bootstrap_servers=kafka.bootstrap_servers,
        client_id=f"{kafka.client_id}-{role}",
        group_id=group_id,
        group_instance_id=kafka.instance_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=max_poll_records,
        session_timeout_ms=kafka.session_timeout_ms,
        rebalance_timeout_ms=kafka.session_timeout_ms,
        heartbeat_interval_ms=HEARTBEAT_INTERVAL_MS,
        max_poll_interval_ms=MAX_POLL_INTERVAL_MS,
    )
    if topics:
        join(consumer, *topics, group_id=group_id)
    return consumer


def join(consumer: AIOKafkaConsumer, *topics: str, group_id: str) -> None:
    """Subscribe ``consumer`` (of ``group_id``) to ``topics``: it joins its group, now or when started."""
    consumer.subscribe(list(topics), listener=_AssignmentLog(group_id))


class _AssignmentLog(ConsumerRebalanceListener):  # type: ignore[misc]  # aiokafka ships no types
    """Says in the log what each rebalance gave this member: the one trace of the group's churn."""

    def __init__(self, group_id: str) -> None:
        self._group_id = group_id

    def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        """Nothing to do: offsets are committed only behind processed records, whoever owns them next."""

    def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        log.info("group %s: this member was assigned %s", self._group_id, _describe(assigned))


def _describe(partitions: Iterable[TopicPartition]) -> str:
    by_topic: dict[str, list[int]] = {}
    for tp in partitions:
        by_topic.setdefault(tp.topic, []).append(tp.partition)
    return ", ".join(f"{topic} {sorted(ps)}" for topic, ps in sorted(by_topic.items())) or "no partitions"


async def commit_processed(
    consumer: AIOKafkaConsumer, offsets: dict[TopicPartition, int] | None = None
) -> None:
    """Commit processed offsets (``None``: what the consumer consumed); a failure only means records may
    be handled again, which every stage does idempotently. A rebalance between a poll and its commit
    (``CommitFailedError``, ``IllegalStateError``) is no failure of the process: the partitions' new
    owner replays them. A bug is re-raised (by :func:`streams.errors.translate`)."""
    try:
        await consumer.commit(offsets)
    except Exception as exc:  # noqa: BLE001  # classified by translate, which re-raises a bug
        if translate(exc).retriable:
            log.warning("offsets not committed: %s; the next commit covers them", exc)
        else:
            log.warning("offsets not committed (partitions reassigned): %s; the new owner replays them", exc)
