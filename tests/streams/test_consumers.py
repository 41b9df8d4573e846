"""The group consumers' factory: the settings every consumer group of seizewatch runs with."""

from __future__ import annotations

from streams.consumers import HEARTBEAT_INTERVAL_MS, group_consumer, join
from streams.settings import KafkaSettings


async def test_a_group_consumer_commits_by_hand_with_the_chosen_timeouts() -> None:
    kafka = KafkaSettings(client_id="sw", session_timeout_ms=6_000)
    consumer = group_consumer(kafka, "t.plate.sightings", group_id="g", role="matcher", max_poll_records=7)
    coordinator_settings = {
        "client_id": consumer._client._client_id,
        **{
            name: getattr(consumer, f"_{name}")
            for name in (
                "group_id",
                "group_instance_id",
                "enable_auto_commit",
                "auto_offset_reset",
                "max_poll_records",
                "session_timeout_ms",
                "rebalance_timeout_ms",
                "heartbeat_interval_ms",
            )
        },
    }
    assert coordinator_settings == {
        "client_id": "sw-matcher",
        "group_id": "g",
        "group_instance_id": None,  # dynamic membership unless the process is named
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "max_poll_records": 7,
        "session_timeout_ms": 6_000,
        "rebalance_timeout_ms": 6_000,
        "heartbeat_interval_ms": HEARTBEAT_INTERVAL_MS,
    }
    # Even at the broker's shortest session, ten heartbeats are lost before a live member is dropped.
    assert HEARTBEAT_INTERVAL_MS * 3 < 6_000
    assert consumer.subscription() == {"t.plate.sightings"}
    await consumer.stop()  # never started: closes the client it made


async def test_a_named_process_is_a_static_member_and_joins_when_told() -> None:
    kafka = KafkaSettings(instance_id="worker-2")
    consumer = group_consumer(kafka, group_id="g", role="matcher")
    assert consumer._group_instance_id == "worker-2"
    assert consumer.subscription() == set()  # not subscribed: it joins nothing until join()
    join(consumer, "t.plate.sightings", group_id="g")
    assert consumer.subscription() == {"t.plate.sightings"}
    await consumer.stop()
