"""Fault scenarios on the real pipeline: one fault each, then exact counts and the recovery time.

Every scenario runs the real processes (ingest, worker, pager) against the fault suite's own Kafka and
PostgreSQL, posts a burst of reads with watched vehicles among them through the parking connector,
injects its fault about a third of the way in, and checks what :mod:`tests.faults.harness` counts:
nothing accepted lost, nothing sent twice, every hit paged, the last page out within the bound after
the faulty part is back.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from tests.fakes.twilio_server import Faults
from tests.faults.harness import FaultServices, Figures, Pipeline, now, pipeline

pytestmark = [pytest.mark.faults, pytest.mark.integration]


def assert_clean(figures: Figures, **expect: object) -> None:
    problems = figures.problems(**expect)  # type: ignore[arg-type]
    assert not problems, f"{figures.scenario}: {problems}\n{figures}"


async def run(
    name: str,
    faults: FaultServices,
    tmp_path: Path,
    fault: object,
    *,
    exhausted: bool = False,
    reads: int = 2000,
    at: float = 0.3,
    env: dict[str, str] | None = None,
    inspect: Callable[[Pipeline], Awaitable[None]] | None = None,
    provider: Faults | None = None,
    watched: int = 30,
    bound_s: float = 30.0,
) -> Figures:
    async with pipeline(faults, tmp_path, env=env, watched=watched) as p:
        if provider is not None:
            p.fake.faults = provider
        await p.start_all()
        burst = asyncio.create_task(p.burst(reads=reads))
        await p.sent_at_least(at)
        back_at = await fault(p)  # type: ignore[operator]
        await burst
        await p.settled(within=120, exhausted=exhausted)
        figures = await p.count(name, back_at=back_at, bound_s=bound_s)
        if inspect is not None:
            await inspect(p)
        return figures


async def kill_and_restart(p: Pipeline, name: str, down_s: float = 2.0) -> float:
    p.kill(name, signal.SIGKILL)
    await asyncio.sleep(down_s)  # the process is down for a moment, as under a supervisor's restart delay
    p.start(name)
    back = now()
    await p.ready(name)
    return back


async def test_worker_killed(fault_services: FaultServices, tmp_path: Path) -> None:
    figures = await run("worker kill -9", fault_services, tmp_path, lambda p: kill_and_restart(p, "worker"))
    assert_clean(figures)


async def test_ingest_killed(fault_services: FaultServices, tmp_path: Path) -> None:
    figures = await run("ingest kill -9", fault_services, tmp_path, lambda p: kill_and_restart(p, "ingest"))
    assert figures.transport_errors > 0, "the kill should have cut requests off"
    assert_clean(figures)


async def test_pager_killed_mid_burst(fault_services: FaultServices, tmp_path: Path) -> None:
    figures = await run(
        "pager kill -9 mid-burst", fault_services, tmp_path, lambda p: kill_and_restart(p, "pager")
    )
    assert_clean(figures)


async def test_pager_killed_mid_escalation(fault_services: FaultServices, tmp_path: Path) -> None:
    async def fault(p: Pipeline) -> float:
        # Let the burst finish and the first steps go out, then kill the pager while later steps are due.
        await p.sent_at_least(1.0)
        await asyncio.sleep(6)
        return await kill_and_restart(p, "pager")

    figures = await run(
        "pager kill -9 mid-escalation", fault_services, tmp_path, fault, exhausted=True,
        provider=Faults(delay_s=0.5),
    )  # fmt: skip
    assert_clean(figures, expect_exhausted=True)


async def test_broker_stopped_20s(fault_services: FaultServices, tmp_path: Path) -> None:
    async def fault(p: Pipeline) -> float:
        await asyncio.to_thread(fault_services.services.stop_kafka)
        try:
            await asyncio.sleep(20)
        finally:
            await asyncio.to_thread(fault_services.services.start_kafka)
        return now()

    figures = await run("broker stopped 20 s", fault_services, tmp_path, fault)
    assert figures.refused_503 > 0, "the ingest should have refused while the broker was down"
    assert_clean(figures)


async def test_postgres_restarted(fault_services: FaultServices, tmp_path: Path) -> None:
    async def fault(p: Pipeline) -> float:
        services = fault_services.services
        await asyncio.to_thread(services.stop_postgres)
        try:
            await asyncio.sleep(10)
        finally:
            await asyncio.to_thread(services.start_postgres)
        return now()

    figures = await run("PostgreSQL stopped 10 s", fault_services, tmp_path, fault)
    assert_clean(figures)


async def test_two_pagers(fault_services: FaultServices, tmp_path: Path) -> None:
    async def fault(p: Pipeline) -> float:
        p.start("pager-2")
        back = now()
        await p.ready("pager-2")
        return back

    # Slow sends: each pager's claims are still in flight while the other looks for interrupted ones.
    figures = await run(
        "two pagers", fault_services, tmp_path, fault, exhausted=True, provider=Faults(delay_s=1.0)
    )
    assert_clean(figures, expect_exhausted=True)


async def test_a_poison_record_on_each_topic(fault_services: FaultServices, tmp_path: Path) -> None:
    """Bytes no stage can read, on every topic a stage of ours consumes: each is dead-lettered (or, on the
    compacted watchlist, refused and held) with its reason, and the burst behind it is matched and paged
    as if nothing had happened."""
    from aiokafka import AIOKafkaProducer

    from streams.topics import HITS, SEIZURE_RESULTS, SIGHTINGS, WATCHLIST_CHANGES

    async def fault(p: Pipeline) -> None:
        producer = AIOKafkaProducer(bootstrap_servers=p.kafka.bootstrap_servers, acks="all")
        await producer.start()
        try:
            poison = b"\xff\xfe{not json"
            # Keyed by a watched plate, so the match stage cannot rule it out by its key.
            await producer.send_and_wait(
                p.kafka.topic(SIGHTINGS), key=p.watched_plates[0].encode(), value=poison
            )
            entry = str(p.entries[p.watched_plates[0]]).encode()
            await producer.send_and_wait(p.kafka.topic(HITS), key=entry, value=poison)
            await producer.send_and_wait(p.kafka.topic(SEIZURE_RESULTS), key=b"poison", value=poison)
            await producer.send_and_wait(p.kafka.topic(WATCHLIST_CHANGES), key=b"poison", value=poison)
        finally:
            await producer.stop()

    async def refused_change_held(p: Pipeline) -> None:
        refused = (await p.processes["worker"].metrics()).get("seizewatch_watchlist_refused_entries")
        assert refused == 1, "the poison change must be held as refused (and alerted), not dropped"

    figures = await run(
        "a poison record on each topic", fault_services, tmp_path, fault, at=0.1, inspect=refused_change_held
    )
    assert_clean(figures, dead_letters=3)


# A send whose outcome is unknown (a 500, a timeout) is looked up at the provider only once its claim's
# lease is over, the provider's timeout (3 s here) plus the in-flight margin (15 s): "not found" then
# means not sent, and it is sent again. A page whose first step is one person (the police station at
# night) and whose SMS to them is unknown twice in a row reaches them after two leases: the bound of
# the provider's faults is that, and 5 s for the rest of the way; 30 s for every other fault.
AMBIGUOUS_TWICE_S = 2 * (3 + 15) + 5.0


async def nothing(p: Pipeline) -> None:
    """No fault of a process: the provider's own faults act from the start."""


async def test_sms_provider_failing_30_percent(fault_services: FaultServices, tmp_path: Path) -> None:
    """30 % of sends fail: 10 % answered 500 with nothing created, 10 % created and then answered 500,
    5 % created and never answered within the client's timeout, 5 % refused for good (21211). The
    ambiguous ones are reconciled by asking the provider, never resent blindly: nothing twice, nothing
    lost but the refused, which escalate at once."""
    faults = Faults(server_error=0.10, server_error_after_create=0.10, timeout=0.05, permanent=0.05, hang_s=5)
    figures = await run("SMS provider failing 30 %", fault_services, tmp_path, nothing, provider=faults,
                        exhausted=True, bound_s=AMBIGUOUS_TWICE_S)  # fmt: skip
    assert figures.failed_permanent > 0, "the permanent refusals should have been drawn"
    assert_clean(figures, expect_exhausted=True)


async def test_sms_provider_slow(fault_services: FaultServices, tmp_path: Path) -> None:
    """0.7 s a send: one SMS at a time, 60 SMS take 42 s; sent concurrently they keep up with the burst."""
    figures = await run("SMS provider 0.7 s a send", fault_services, tmp_path, nothing,
                        provider=Faults(delay_s=0.7))  # fmt: skip
    assert_clean(figures)


async def test_sms_provider_very_slow(fault_services: FaultServices, tmp_path: Path) -> None:
    """7 s a send (within the client's timeout of 10 s): every page's first SMS still within the bound."""
    figures = await run(
        "SMS provider 7 s a send", fault_services, tmp_path, nothing, watched=10,
        provider=Faults(delay_s=7.0), env={"SEIZEWATCH_TWILIO_TIMEOUT_S": "10"},
    )  # fmt: skip
    assert_clean(figures)
