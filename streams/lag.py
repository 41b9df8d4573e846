"""Consumer lag per stage: how many records a consumer group has yet to process, as a gauge.

Each process watches its own groups (the matcher its group, the pager its two): committed offsets from
the group coordinator against the partitions' end offsets, every ``interval_s``.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from streams import metrics
from streams.errors import translate
from streams.settings import KafkaSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Watched:
    stage: str  # the metric label: match, pager_hits, pager_traffic
    group: str  # the consumer group id
    topic: str  # the real topic name


class LagMonitor:
    def __init__(self, kafka: KafkaSettings, watched: list[Watched], *, interval_s: float = 15.0) -> None:
        self._kafka = kafka
        self._watched = watched
        self._interval_s = interval_s

    async def run(self) -> None:
        """Measure until cancelled. A round that fails for a reason that may pass (Kafka away) is logged
        and the gauges keep their last value; the clients are made again for the next round.

        A refusal retrying may not cure is logged as an error and tried again too: a monitor must not
        stop the process it watches (the gauges then go stale, which the dashboards show).

        Raises:
            BaseException: a bug (what :func:`streams.errors.translate` does not know), for the
                supervisor.
        """
        while True:
            admin = AIOKafkaAdminClient(
                bootstrap_servers=self._kafka.bootstrap_servers, client_id="seizewatch-lag"
            )
            offsets = AIOKafkaConsumer(bootstrap_servers=self._kafka.bootstrap_servers, group_id=None)
            try:
                await admin.start()
                await offsets.start()
                while True:
                    await self.measure(admin, offsets)
                    await asyncio.sleep(self._interval_s)
            except Exception as exc:  # noqa: BLE001  # classified by translate, which re-raises a bug
                error = translate(exc)
                # Even a refusal retrying may not cure only costs the gauges their freshness: measuring
                # must never take the matching or the paging down with it. Said loudly, tried again.
                log.log(
                    logging.WARNING if error.retriable else logging.ERROR,
                    "consumer lag not measured: %s",
                    error,
                )
            finally:
                await offsets.stop()
                await admin.close()
            await asyncio.sleep(self._interval_s)

    async def measure(self, admin: AIOKafkaAdminClient, offsets: AIOKafkaConsumer) -> None:
        for w in self._watched:
            described = await admin.describe_topics([w.topic])
            partitions = [TopicPartition(w.topic, p["partition"]) for p in described[0]["partitions"]]
            committed = await admin.list_consumer_group_offsets(w.group, partitions=partitions)
            end = await offsets.end_offsets(partitions)
            lag = 0
            for tp in partitions:
                done = committed.get(tp)
                position = done.offset if done is not None and done.offset >= 0 else 0
                lag += max(0, end[tp] - position)
            metrics.CONSUMER_LAG.labels(w.stage).set(lag)
