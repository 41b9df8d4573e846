"""Keeps a worker's :class:`~streams.matching.WatchIndex` equal to the compacted watchlist topic.

Reads the topic from the beginning with no consumer group (every worker needs every entry), sets
``caught_up`` once it has reached the end offsets seen at start, then follows it live. A worker does not
match sightings before ``caught_up``: a half-loaded index would miss sealed cars. Nor after its topic
vanished (:class:`~streams.errors.WatchlistLost`): the follower ends, and with it the worker.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import uuid
from collections import Counter

import msgspec
from aiokafka import AIOKafkaConsumer, ConsumerRecord

from streams import metrics
from streams.errors import InvalidInput, WatchlistLost
from streams.hugepages import huge_pages_bytes
from streams.matching import WatchIndex
from streams.settings import KafkaSettings
from streams.topics import WATCHLIST_CHANGES, wait_for_assignment
from streams.watchlist import decode_entry

log = logging.getLogger(__name__)


class WatchlistFollower:
    def __init__(self, kafka: KafkaSettings, index: WatchIndex) -> None:
        self._kafka = kafka
        self.index = index
        self.caught_up = asyncio.Event()
        # Keys whose latest change could not be applied (the vehicle is not watched as filed; a release
        # under a broken key leaves it watched): cleared by the next change under the same key that is.
        self.refused: set[bytes] = set()

    async def run(self) -> None:
        """Follow the topic until cancelled.

        Raises:
            WatchlistLost: the topic's partitions vanished (deleted or recreated under the worker).
        """
        topic = self._kafka.topic(WATCHLIST_CHANGES)
        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=self._kafka.bootstrap_servers,
            client_id=f"{self._kafka.client_id}-watchlist",
            group_id=None,  # no group: this consumer is assigned every partition
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
        await consumer.start()
        try:
            assigned = await wait_for_assignment(consumer, topic)
            assigned_set = set(assigned)
            await consumer.seek_to_beginning(*assigned)
            end = await consumer.end_offsets(assigned)
            pending = {tp for tp, offset in end.items() if offset > 0}
            if pending:
                gc.disable()
            while True:
                if not pending and not self.caught_up.is_set():
                    # The index is millions of long-lived objects at province scale: no collection while
                    # loading (each full one walks them all), then frozen out of every later collection,
                    # which would otherwise stall matching for seconds.
                    gc.enable()
                    gc.freeze()
                    self.caught_up.set()
                    metrics.WATCHLIST_CAUGHT_UP.set(1)
                    log.info(
                        "watchlist caught up: %d active entries; %.0f MiB of the worker on huge pages",
                        len(self.index), huge_pages_bytes() / 2**20,
                    )  # fmt: skip
                batch = await consumer.getmany(timeout_ms=500, max_records=5000)
                changes: Counter[str] = Counter()
                for records in batch.values():
                    for record in records:
                        changes[self._apply(record)] += 1
                    metrics.WATCHLIST_LAST_CHANGE.set(records[-1].timestamp / 1000)
                for change, count in changes.items():  # once per batch: a million at start-up
                    metrics.WATCHLIST_CHANGES.labels(change).inc(count)
                if missing := assigned_set - consumer.assignment():
                    # aiokafka drops a deleted topic's partitions from the assignment without a word and
                    # the index would go on serving what it last read, unseen: stop the worker instead.
                    raise WatchlistLost(
                        f"{topic}: partitions {sorted(tp.partition for tp in missing)} vanished (topic"
                        " deleted or recreated); the index no longer follows the watchlist"
                    )
                # Positions, not the last offsets seen: compaction may have removed the last records.
                for tp in list(pending):
                    if await consumer.position(tp) >= end[tp]:
                        pending.discard(tp)
                metrics.WATCHLIST_ENTRIES.set(len(self.index))
                metrics.WATCHLIST_REFUSED.set(len(self.refused))
        finally:
            gc.enable()
            metrics.WATCHLIST_CAUGHT_UP.set(0)
            await consumer.stop()

    def _apply(self, record: ConsumerRecord[bytes, bytes]) -> str:
        """Apply one change record; return what it was: ``upserted``, ``removed`` or ``invalid``."""
        change = self._change(record)
        if change == "invalid":
            self.refused.add(record.key or b"")
        elif self.refused:
            self.refused.discard(record.key or b"")
        return change

    def _change(self, record: ConsumerRecord[bytes, bytes]) -> str:
        try:
            entry_id = msgspec.convert(record.key.decode() if record.key else "", uuid.UUID)
        except (msgspec.ValidationError, UnicodeDecodeError):
            log.exception("watchlist change at offset %d has no valid entry id key; skipped", record.offset)
            return "invalid"
        if record.value is None:
            self.index.remove(entry_id)
            return "removed"
        try:
            entry = decode_entry(record.value)
        except InvalidInput:
            log.exception("watchlist change for %s at offset %d is invalid", entry_id, record.offset)
            return "invalid"
        if entry.entry_id != entry_id:
            # Compaction keeps the last record per key and a release is a tombstone under the key: an
            # entry filed under another id could never be removed. The producer keys by the entry's id.
            log.error(
                "watchlist change at offset %d is keyed %s but holds entry %s; skipped",
                record.offset, entry_id, entry.entry_id,
            )  # fmt: skip
            return "invalid"
        self.index.apply(entry)
        return "upserted"
