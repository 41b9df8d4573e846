"""The supervisor of a process's loops: the first loop that ends fails the process, visibly."""

from __future__ import annotations

import asyncio

from prometheus_client import REGISTRY

from streams.supervision import Supervisor


def failures(process: str, loop: str) -> float:
    value = REGISTRY.get_sample_value(
        "seizewatch_process_loop_failures_total", {"process": process, "loop": loop}
    )
    return value or 0.0


async def forever() -> None:
    await asyncio.Event().wait()


async def test_a_loop_that_raises_fails_the_process_and_its_health() -> None:
    told: list[str] = []
    supervisor = Supervisor("test-raise", on_failure=told.append)

    async def broken() -> None:
        await asyncio.sleep(0)
        raise RuntimeError("index lost")

    supervisor.spawn("steady", forever())
    supervisor.spawn("broken", broken())
    assert supervisor.health() == (200, {"status": "ok"})
    await asyncio.wait_for(supervisor.failed.wait(), 5)
    status, body = supervisor.health()
    assert status == 503
    assert body["failure"].startswith("broken: RuntimeError('index lost')")
    assert told == [body["failure"]]
    assert failures("test-raise", "broken") == 1
    assert failures("test-raise", "steady") == 0
    assert REGISTRY.get_sample_value("seizewatch_process_healthy", {"process": "test-raise"}) == 0
    await supervisor.stop()


async def test_a_loop_that_returns_is_a_failure_too() -> None:
    supervisor = Supervisor("test-return")

    async def done() -> None:
        return None

    supervisor.spawn("consumer", done())
    await asyncio.wait_for(supervisor.failed.wait(), 5)
    assert supervisor.failure == "consumer: returned, but it should run until the process stops"
    await supervisor.stop()


async def test_a_clean_stop_is_no_failure() -> None:
    told: list[str] = []
    supervisor = Supervisor("test-stop", on_failure=told.append)
    supervisor.spawn("a", forever())
    supervisor.spawn("b", forever())
    await asyncio.sleep(0)
    await supervisor.stop()
    assert supervisor.healthy
    assert told == []
    assert failures("test-stop", "a") == 0
    assert REGISTRY.get_sample_value("seizewatch_process_healthy", {"process": "test-stop"}) == 1
