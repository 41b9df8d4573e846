"""Claims, leases, concurrency and reconciliation of SMS sends, round by round.

Bare pagers (no loop running) over the module's database and the fake Twilio; the test runs each round
(``escalate_once``, ``send_once``, ``drain``) and drives the pager's clock, so every state in between
is looked at, not raced. Sends go through the real Twilio adapter over HTTP; leases and lookup bounds
run on the pager's clock, the provider's timeout on the wall clock (1 s here).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import asyncpg
import pytest
from prometheus_client import REGISTRY

from alerts.pages import page_id_for
from alerts.service import Pager
from alerts.settings import PagerSettings
from tests.conftest import Isolated, eventually
from tests.fakes.twilio_server import FakeTwilio, Faults
from tests.integration.pager_support import Clock, bare_pager, import_example_roster, make_hit

pytestmark = pytest.mark.integration

SHANGHAI = ZoneInfo("Asia/Shanghai")
DAY = datetime(2026, 11, 23, 10, 0, tzinfo=SHANGHAI)  # group jj-2 on duty: jj-j2, jj-p2 first
TIMEOUT = timedelta(seconds=61)  # past the 60 s acknowledgement timeout
LEASE = timedelta(seconds=3)  # past a claim's lease here: the provider's 1 s timeout + the 1 s margin
SETTINGS = PagerSettings(ack_timeout_s=60).model_copy(
    update={
        "max_send_attempts": 3,
        "send_concurrency": 4,
        "in_flight_margin_s": 1.0,
        "status_lookup_after_s": 30,
    }
)


@pytest.fixture(scope="module")
async def fake(isolated: Isolated) -> AsyncIterator[FakeTwilio]:
    await import_example_roster(isolated.settings.postgres.dsn.get_secret_value())
    async with FakeTwilio() as f:
        yield f


@pytest.fixture(scope="module")
def clock() -> Clock:
    return Clock(DAY)


@pytest.fixture(autouse=True)
async def apart(isolated: Isolated, fake: FakeTwilio, clock: Clock) -> AsyncIterator[None]:
    """Each test starts later on the clock, and leaves nothing behind that a later round would run."""
    clock.advance(timedelta(minutes=10))
    yield
    fake.release()
    fake.faults = Faults()
    fake.max_in_flight = 0
    conn = await asyncpg.connect(isolated.settings.postgres.dsn.get_secret_value())
    try:
        await conn.execute("UPDATE pages SET state = 'cancelled', next_due_at = NULL WHERE state = 'open'")
        await conn.execute(
            "UPDATE notifications SET send_state = 'skipped'"
            " WHERE send_state IN ('pending', 'sending', 'reconciling')"
        )
    finally:
        await conn.close()


@pytest.fixture
async def pager(isolated: Isolated, fake: FakeTwilio, clock: Clock) -> AsyncIterator[Pager]:
    async with bare_pager(isolated, fake, clock, SETTINGS, timeout_s=1) as p:
        yield p
        await p.drain()


async def notifications(isolated: Isolated, page_id: uuid.UUID) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(isolated.settings.postgres.dsn.get_secret_value())
    try:
        return await conn.fetch(
            "SELECT * FROM notifications WHERE page_id = $1 ORDER BY step, officer_id", page_id
        )
    finally:
        await conn.close()


async def page_state(isolated: Isolated, page_id: uuid.UUID) -> str:
    conn = await asyncpg.connect(isolated.settings.postgres.dsn.get_secret_value())
    try:
        return str(await conn.fetchval("SELECT state FROM pages WHERE page_id = $1", page_id))
    finally:
        await conn.close()


async def open_page(pager: Pager, isolated: Isolated, plate: str) -> uuid.UUID:
    """A hit taken and its first step run: the step's SMS are queued, none sent yet."""
    hit = await make_hit(isolated, plate=plate, observed_at=pager.clock() - timedelta(seconds=30))
    await pager.take_hit(hit)
    await pager.escalate_once()
    return page_id_for(hit.hit_id)


async def settle(*pagers: Pager) -> None:
    """Rounds until nothing is due at the pagers' clock: steps run, sends started and finished."""
    for _ in range(20):
        busy = 0
        for p in pagers:
            await p.drain()  # what is under way first: its slots are free afterwards
            busy += await p.escalate_once() + await p.send_once()
            await p.drain()
        if not busy:
            return
    pytest.fail("the pagers never ran out of work")


def texts(fake: FakeTwilio, row: asyncpg.Record) -> int:
    """How many SMS the fake created for this notification (its body carries its own reply code)."""
    return len(fake.sent_to(row["phone"], row["body"]))


def counted(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def reconciled(outcome: str) -> float:
    return counted("seizewatch_sms_reconciliations_total", outcome=outcome)


async def until(probe: Callable[[], object], within: float = 10) -> None:
    async def value() -> object:
        return probe()

    await eventually(value, bool, within=within)


# ----------------------------------------------------------------------------------- claims and leases


async def test_two_pagers_leave_each_others_live_claims_alone(
    isolated: Isolated, fake: FakeTwilio, clock: Clock
) -> None:
    # A claims with a long lease (its provider may take 60 s, plus a 120 s margin); B runs its rounds
    # meanwhile, 150 s later by the clock: past the old fixed 2-minute "stale claim", inside A's lease.
    slow = SETTINGS.model_copy(update={"in_flight_margin_s": 120.0})
    async with (
        bare_pager(isolated, fake, clock, slow, timeout_s=60) as a,
        bare_pager(isolated, fake, clock, SETTINGS, timeout_s=1) as b,
    ):
        page_id = await open_page(a, isolated, "浙J71001")
        fake.hold(create_first=False)
        sending = asyncio.create_task(a.send_once())
        await until(lambda: fake.held >= 1)
        clock.advance(timedelta(seconds=150))
        await b.send_once()
        await b.drain()
        fake.release()
        await sending
        await a.drain()
        rows = await notifications(isolated, page_id)
    assert [(r["send_state"], r["error_message"]) for r in rows] == [("sent", None)] * 2
    assert [texts(fake, r) for r in rows] == [1, 1]


async def test_sends_go_out_concurrently_and_only_as_many_are_claimed_as_can_be_sent(
    isolated: Isolated, fake: FakeTwilio, clock: Clock
) -> None:
    async with bare_pager(isolated, fake, clock, SETTINGS, timeout_s=30) as pager:  # nobody times out
        pages = [await open_page(pager, isolated, f"浙J7200{i}") for i in range(4)]  # 8 SMS
        fake.hold(create_first=False)
        sending = asyncio.create_task(pager.send_once())
        await until(lambda: fake.held == 4)  # send_concurrency = 4
        states = [r["send_state"] for p in pages for r in await notifications(isolated, p)]
        assert sorted(states) == ["pending"] * 4 + ["sending"] * 4
        fake.release()
        await sending
        await settle(pager)
    rows = [r for p in pages for r in await notifications(isolated, p)]
    assert [r["send_state"] for r in rows] == ["sent"] * 8
    assert [texts(fake, r) for r in rows] == [1] * 8
    assert fake.max_in_flight == 4


# ------------------------------------------------------------------------------------- reconciliation


async def test_a_5xx_without_the_message_is_looked_up_then_resent(
    pager: Pager, isolated: Isolated, fake: FakeTwilio, clock: Clock
) -> None:
    absent = reconciled("absent")
    fake.fail_next(500, None, "Internal Server Error")
    page_id = await open_page(pager, isolated, "浙J73001")
    await settle(pager)
    first, second = await notifications(isolated, page_id)
    assert {first["send_state"], second["send_state"]} == {"sent", "reconciling"}
    clock.advance(LEASE)  # the lookup waits until a request in flight has landed
    await settle(pager)
    rows = await notifications(isolated, page_id)
    assert [r["send_state"] for r in rows] == ["sent", "sent"]
    assert [texts(fake, r) for r in rows] == [1, 1]
    assert reconciled("absent") == absent + 1


async def test_a_5xx_after_creating_the_message_is_found_and_never_resent(
    pager: Pager, isolated: Isolated, fake: FakeTwilio, clock: Clock
) -> None:
    found = reconciled("found")
    fake.faults = Faults(server_error_after_create=1.0)
    page_id = await open_page(pager, isolated, "浙J73002")
    await settle(pager)
    assert [r["send_state"] for r in await notifications(isolated, page_id)] == ["reconciling"] * 2
    fake.faults = Faults()
    clock.advance(LEASE)
    await settle(pager)
    rows = await notifications(isolated, page_id)
    assert [r["send_state"] for r in rows] == ["sent", "sent"]
    assert [texts(fake, r) for r in rows] == [1, 1]
    for r in rows:
        [message] = fake.sent_to(r["phone"], r["body"])
        assert r["provider_message_id"] == message.sid
    assert reconciled("found") == found + 2


async def test_a_timeout_after_creating_the_message_is_found_and_never_resent(
    pager: Pager, isolated: Isolated, fake: FakeTwilio, clock: Clock
) -> None:
    fake.faults = Faults(timeout=1.0, hang_s=5)  # created, answered after the adapter's 1 s timeout
    page_id = await open_page(pager, isolated, "浙J73003")
    await settle(pager)
    assert [r["send_state"] for r in await notifications(isolated, page_id)] == ["reconciling"] * 2
    fake.faults = Faults()
    clock.advance(LEASE)
    await settle(pager)
    rows = await notifications(isolated, page_id)
    assert [r["send_state"] for r in rows] == ["sent", "sent"]
    assert [texts(fake, r) for r in rows] == [1, 1]


async def test_a_failed_lookup_is_tried_again_later(
    pager: Pager, isolated: Isolated, fake: FakeTwilio, clock: Clock
) -> None:
    failed = reconciled("lookup_failed")
    fake.faults = Faults(server_error_after_create=1.0)
    page_id = await open_page(pager, isolated, "浙J73004")
    await settle(pager)
    fake.faults = Faults()
    fake.fail_lookups(2)
    clock.advance(LEASE)
    await settle(pager)
    assert [r["send_state"] for r in await notifications(isolated, page_id)] == ["reconciling"] * 2
    assert reconciled("lookup_failed") == failed + 2
    clock.advance(timedelta(seconds=65))  # the lookup's backoff
    await settle(pager)
    rows = await notifications(isolated, page_id)
    assert [r["send_state"] for r in rows] == ["sent", "sent"]
    assert [texts(fake, r) for r in rows] == [1, 1]


# --------------------------------------------------------------------------------------- escalation


async def test_a_step_that_reached_nobody_escalates_at_once(
    pager: Pager, isolated: Isolated, fake: FakeTwilio, clock: Clock
) -> None:
    fake.faults = Faults(server_error=1.0)  # every create answered 500, nothing created
    page_id = await open_page(pager, isolated, "浙J74001")
    for _ in range(SETTINGS.max_send_attempts):
        await settle(pager)
        clock.advance(LEASE)
    fake.faults = Faults()
    await settle(pager)  # a few seconds after the page opened: nowhere near the 60 s timeout
    rows = await notifications(isolated, page_id)
    assert [(r["step"], r["officer_id"], r["send_state"]) for r in rows] == [
        (0, "jj-j2", "failed"),
        (0, "jj-p2", "failed"),
        (1, "jj-l2", "sent"),
    ]
    assert [r["attempts"] for r in rows[:2]] == [SETTINGS.max_send_attempts] * 2
    assert [texts(fake, r) for r in rows] == [0, 0, 1]


async def test_a_step_that_reached_someone_does_not_wait_for_its_other_sms(
    pager: Pager, isolated: Isolated, fake: FakeTwilio, clock: Clock
) -> None:
    """One officer of the step has the SMS; the other's send got a 500 and its look-ups keep failing
    (the provider's list API degraded). The step's wait starts from the SMS that went out: escalation
    does not wait the other out (up to its validity period, ten minutes)."""
    fake.fail_next(500, None, "Internal Server Error")  # one of the two sends, nothing created
    page_id = await open_page(pager, isolated, "浙J74003")
    await settle(pager)
    fake.fail_lookups(1000)
    try:
        clock.advance(LEASE)
        await settle(pager)
        step0 = sorted(r["send_state"] for r in await notifications(isolated, page_id))
        assert step0 == ["reconciling", "sent"]
        clock.advance(TIMEOUT)
        await settle(pager)
        rows = await notifications(isolated, page_id)
        assert [r["step"] for r in rows if r["send_state"] == "sent"] == [0, 1], "step 1 should have run"
        assert await page_state(isolated, page_id) == "open"
    finally:
        fake.answer_lookups()  # the fake serves the module's other tests


async def test_the_last_steps_sms_go_out_before_the_page_is_exhausted(
    pager: Pager, isolated: Isolated, fake: FakeTwilio, clock: Clock
) -> None:
    page_id = await open_page(pager, isolated, "浙J74002")
    await settle(pager)
    for _ in range(2):  # steps 1 (group leader) and 2 (bureau leader)
        clock.advance(TIMEOUT)
        await settle(pager)
    fake.fail_next(429, 20429, "Too Many Requests", times=3)  # the whole group's SMS wait in the queue
    clock.advance(TIMEOUT)
    await settle(pager)
    last = [r for r in await notifications(isolated, page_id) if r["step"] == 3]
    assert [r["send_state"] for r in last] == ["pending"] * 3
    clock.advance(TIMEOUT)  # the step's wait runs from when its SMS went out, not from when queued
    await settle(pager)
    last = [r for r in await notifications(isolated, page_id) if r["step"] == 3]
    assert [r["send_state"] for r in last] == ["sent"] * 3
    assert await page_state(isolated, page_id) == "open"
    clock.advance(TIMEOUT)
    await settle(pager)
    assert await page_state(isolated, page_id) == "exhausted"
    rows = await notifications(isolated, page_id)
    assert [r["step"] for r in rows] == [0, 0, 1, 2, 3, 3, 3]
    assert [texts(fake, r) for r in rows] == [1] * 7


async def test_only_sms_of_taken_or_cancelled_pages_are_skipped(
    pager: Pager, isolated: Isolated, fake: FakeTwilio
) -> None:
    taken = await open_page(pager, isolated, "浙J74005")
    over = await open_page(pager, isolated, "浙J74004")
    conn = await asyncpg.connect(isolated.settings.postgres.dsn.get_secret_value())
    try:
        await conn.execute("UPDATE pages SET state = 'acknowledged' WHERE page_id = $1", taken)
        await conn.execute("UPDATE pages SET state = 'exhausted' WHERE page_id = $1", over)
    finally:
        await conn.close()
    await settle(pager)
    assert [r["send_state"] for r in await notifications(isolated, taken)] == ["skipped"] * 2
    rows = await notifications(isolated, over)
    assert [r["send_state"] for r in rows] == ["sent"] * 2
    assert [texts(fake, r) for r in rows] == [1, 1]


async def test_a_status_callback_that_never_comes_is_looked_up(
    pager: Pager, isolated: Isolated, fake: FakeTwilio, clock: Clock
) -> None:
    page_id = await open_page(pager, isolated, "浙J75001")
    await settle(pager)
    first = await notifications(isolated, page_id)
    for r in first:
        fake.set_status(r["provider_message_id"], "undelivered", 30003)  # and no callback is posted
    clock.advance(timedelta(seconds=31))  # SEIZEWATCH_PAGER_STATUS_LOOKUP_AFTER_S = 30
    await settle(pager)
    rows = await notifications(isolated, page_id)
    assert [(r["step"], r["provider_status"]) for r in rows[:2]] == [(0, "undelivered")] * 2
    # nobody at the first step can read it: the next step is paged at once, not after the 60 s wait
    assert [(r["step"], r["officer_id"], r["send_state"]) for r in rows[2:]] == [(1, "jj-l2", "sent")]
