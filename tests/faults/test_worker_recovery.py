"""A matcher worker killed (kill -9) or stopped (SIGTERM) mid-stream, reads flowing on, then restarted.

Reads keep arriving on ``plate.sightings`` while the worker is down; after the restart every watched read
must make exactly one hit (none missing, none twice in PostgreSQL, every one on ``watch.hits``) and the
last hit of the reads produced during the outage must come within :data:`RECOVERY_BOUND_S` of the process
being back (issue 21). A restart pays the cold start (the index loaded from ``watchlist.changes``) and
whatever the consumer group makes it wait: a dead member's session, a rebalance. Each scenario prints its
figures; docs/design.md ("Consumer groups and recovery") quotes them.
"""

from __future__ import annotations

import asyncio
import functools
import signal
import time
from pathlib import Path

import asyncpg
import pytest

from seizewatch.settings import Settings
from tests.conftest import Process, eventually, start_worker, stop_process
from tests.faults.matcher_support import (
    Stream,
    all_hits_published,
    check_exact,
    fresh,
    group_members,
    since,
    watch,
)

pytestmark = [pytest.mark.faults, pytest.mark.integration]

RECOVERY_BOUND_S = 30.0
HITS_MADE = 'seizewatch_hits_total{action="seize",match_kind="exact"}'
MEMBERSHIPS = {"dynamic": {}, "static": {"SEIZEWATCH_KAFKA_INSTANCE_ID": "matcher-a"}}


async def _ready_after(worker: Process, t0: float) -> float:
    """Seconds from ``t0`` until the worker's index is loaded (it may match from then on)."""
    await worker.wait_metric("seizewatch_watchlist_caught_up", lambda v: v == 1, within=90)
    return time.time() - t0


@pytest.mark.parametrize("membership", list(MEMBERSHIPS))
@pytest.mark.parametrize("fault", [signal.SIGKILL, signal.SIGTERM], ids=["kill", "term"])
async def test_a_restarted_worker_makes_every_hit_of_the_outage_within_the_bound(
    services: Settings, tmp_path: Path, fault: signal.Signals, membership: str
) -> None:
    async with fresh(services, f"{fault.name[3:].lower()}_{membership}") as isolated:
        env = {**isolated.env, **MEMBERSHIPS[membership], "SEIZEWATCH_MATCH_BATCH_SIZE": "200"}
        conn = await asyncpg.connect(isolated.settings.postgres.dsn.get_secret_value())
        worker = start_worker(env, tmp_path / "first.log")
        stream: Stream | None = None
        producing: asyncio.Task[None] | None = None
        try:
            stream = Stream(isolated.settings.kafka, await watch(conn))
            await worker.wait_metric("seizewatch_watchlist_entries", lambda v: v == len(stream.watched))
            producing = asyncio.create_task(stream.run())
            # Mid-stream: it has matched part of the reads, and more are on their way.
            await worker.wait_metric(HITS_MADE, lambda v: v >= 5, within=60)
            code = stop_process(worker, fault)
            assert code == (-signal.SIGKILL if fault == signal.SIGKILL else 0), worker.tail()
            # A dynamic member stopped cleanly has left (LeaveGroup); a killed one, or a static one
            # (which never leaves), is still a member until its session expires or it is back.
            state, members = await group_members(isolated)
            if fault == signal.SIGTERM and membership == "dynamic":
                assert (state, members) == ("Empty", {})
            else:
                assert len(members) == 1, (state, members)
            stream.phase = "outage"
            await stream.produced("outage", 400)
            stream.phase = "after"
            back = time.time()
            worker = start_worker(env, tmp_path / "second.log")
            ready = await _ready_after(worker, back)
            await stream.produced("after", 400)
            stream.stop()
            await producing
            rows = await all_hits_published(conn, stream, worker)
            first, last = since(rows, stream, "outage", back)
            _, burst_last = since(rows, stream, "after", back)
            duplicates = await check_exact(isolated, conn, stream)
            print(
                f"\nworker {fault.name} ({membership} membership): index ready {ready:.1f} s after the"
                f" restart; reads produced during the outage: first hit {first:.1f} s (the group's share:"
                f" {first - ready:+.1f} s), last hit {last:.1f} s after the process was back; last hit of"
                f" the burst {burst_last:.1f} s;"
                f" reads {dict(stream.sent)}, hits {len(rows)}, on watch.hits more than once {duplicates}"
            )
            assert last <= RECOVERY_BOUND_S, f"last hit of the outage {last:.1f} s after the restart"
        finally:
            if producing is not None and stream is not None:
                stream.stop()
                await asyncio.gather(producing, return_exceptions=True)
            stop_process(worker)
            await conn.close()


def _assignments_logged(worker: Process) -> int:
    """How many times the worker was given partitions (streams/consumers.py logs each assignment)."""
    return worker.log.read_text(errors="replace").count("this member was assigned")


async def _logged(worker: Process, text: str) -> bool:
    return text in worker.log.read_text(errors="replace")


async def test_two_static_workers_share_the_partitions_and_a_killed_one_takes_its_own_back(
    services: Settings, tmp_path: Path
) -> None:
    """Static membership on the real broker: two workers with their own names split the partitions; one
    killed (-9) and restarted under its name gets the same partitions back without a rebalance (the
    other is never reassigned anything), and every read of the outage makes its hit."""
    async with fresh(services, "two_static") as isolated:
        env_a = {
            **isolated.env,
            "SEIZEWATCH_KAFKA_INSTANCE_ID": "matcher-a",
            "SEIZEWATCH_KAFKA_CLIENT_ID": "a",
        }
        env_b = {
            **isolated.env,
            "SEIZEWATCH_KAFKA_INSTANCE_ID": "matcher-b",
            "SEIZEWATCH_KAFKA_CLIENT_ID": "b",
        }
        conn = await asyncpg.connect(isolated.settings.postgres.dsn.get_secret_value())
        a = start_worker(env_a, tmp_path / "a.log")
        b = start_worker(env_b, tmp_path / "b-first.log")
        stream: Stream | None = None
        producing: asyncio.Task[None] | None = None
        try:
            stream = Stream(isolated.settings.kafka, await watch(conn))
            for w in (a, b):
                await w.wait_metric("seizewatch_watchlist_entries", lambda v: v == len(stream.watched))

            def split(group: tuple[str, dict[str, tuple[str, frozenset[int]]]]) -> bool:
                state, members = group
                parts = [p for _, p in members.values()]
                return state == "Stable" and len(parts) == 2 and all(parts) and sum(map(len, parts)) == 6

            state, members = await eventually(lambda: group_members(isolated), split, within=60)
            assert set(members) == {"a-matcher", "b-matcher"}
            a_member, a_parts = members["a-matcher"]
            b_member, b_parts = members["b-matcher"]
            assert a_parts | b_parts == set(range(6))
            assert not a_parts & b_parts
            # The group is stable once the leader's assignment is in; each member logs its own a moment
            # later, when its SyncGroup answer arrives.
            for w, parts in ((a, a_parts), (b, b_parts)):
                await eventually(functools.partial(_logged, w, f"plate.sightings {sorted(parts)}"), bool)
            a_assigned = _assignments_logged(a)

            producing = asyncio.create_task(stream.run())
            await b.wait_metric(HITS_MADE, lambda v: v >= 2, within=60)
            assert stop_process(b, signal.SIGKILL) == -signal.SIGKILL
            stream.phase = "outage"
            await stream.produced("outage", 400)
            stream.phase = "after"
            back = time.time()
            b = start_worker(env_b, tmp_path / "b-second.log")
            ready = await _ready_after(b, back)
            await stream.produced("after", 400)
            stream.stop()
            await producing
            rows = await all_hits_published(conn, stream, b)
            first, last = since(rows, stream, "outage", back)
            duplicates = await check_exact(isolated, conn, stream)

            state, members = await group_members(isolated)
            assert state == "Stable"
            assert members["a-matcher"] == (a_member, a_parts), "the other worker was never reassigned"
            assert members["b-matcher"][1] == b_parts
            assert members["b-matcher"][0] != b_member
            assert _assignments_logged(a) == a_assigned, "no rebalance reached the other worker"
            print(
                f"\ntwo static workers, b killed -9: partitions a {sorted(a_parts)}, b {sorted(b_parts)};"
                f" b's index ready {ready:.1f} s after b was back; reads of the outage: first hit"
                f" {first:.1f} s (a kept matching its own), last hit {last:.1f} s after b was back;"
                f" reads {dict(stream.sent)}, hits {len(rows)}, on watch.hits more than once {duplicates}"
            )
            assert last <= RECOVERY_BOUND_S
        finally:
            if producing is not None and stream is not None:
                stream.stop()
                await asyncio.gather(producing, return_exceptions=True)
            stop_process(a)
            stop_process(b)
            await conn.close()
