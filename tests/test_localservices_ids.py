"""The local broker's cluster id, which `kafka-storage format -t` must not take for an option."""

from __future__ import annotations

import base64
import re

from seizewatch.localkafka import new_cluster_id


def test_a_cluster_id_is_a_kafka_uuid_never_starting_with_a_dash() -> None:
    # One random id in 64 starts with "-": a few thousand draws all but surely include such draws, which
    # must have been drawn again (a fresh clone's CI once failed on one).
    ids = [new_cluster_id() for _ in range(5000)]
    assert all(re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_-]{21}", i) for i in ids), ids[:3]
    assert all(len(base64.urlsafe_b64decode(i + "==")) == 16 for i in ids)
    assert len(set(ids)) == len(ids)
