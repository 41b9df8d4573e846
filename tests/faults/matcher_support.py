"""What the matcher worker's fault scenarios share: a fresh world each, a stream of reads, exact counts.

Each scenario gets its own topic prefix, database and so consumer group (:func:`fresh`): what one
scenario leaves in its group (a static member that did not leave, a dead member's session) never slows
the next. :class:`Stream` publishes reads straight to ``plate.sightings`` the way the connectors do, a
chunk every tenth of a second, one read in :data:`RATIO` of a watched vehicle, and remembers which phase
of the scenario (before the fault, during the outage, after the restart) each read was produced in and
which entry it must hit. :func:`check_exact` then counts: exactly one hit row per watched read and none
else, every one of them on ``watch.hits``, nothing dead-lettered, the group's offsets committed to the end.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import asyncpg
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.coordinator.protocol import ConsumerProtocol

from connectors.producer import SightingPublisher
from seizewatch.scratch import scratch_database
from seizewatch.settings import Settings
from streams.hits import HitV1, hit_id_for
from streams.runtime import group_id
from streams.settings import KafkaSettings, PostgresSettings
from streams.topics import HITS, SIGHTINGS_DLQ, TOPICS, ensure_topics
from tests.conftest import Isolated, Process, eventually, topic_records
from tests.integration.test_batch_worker import committed_and_end
from tests.integration.test_pipeline import add, read

# Ten watched vehicles; the other reads are of another province, so none of them can match one.
WATCHED = [f"浙J{30000 + 131 * i}" for i in range(10)]
RATIO = 20  # one read in RATIO is of a watched vehicle
CHUNK = 40  # reads per publish; one chunk every EVERY seconds: ~400 reads a second
EVERY = 0.1


@asynccontextmanager
async def fresh(services: Settings, tag: str) -> AsyncIterator[Isolated]:
    """A topic prefix, a database (migrated) and every declared topic, for one scenario."""
    name = f"fault_{tag}_{uuid.uuid4().hex[:8]}"
    async with scratch_database(services.postgres.dsn.get_secret_value(), name) as dsn:
        kafka = KafkaSettings(topic_prefix=f"{name}.")
        postgres = PostgresSettings(dsn=dsn)  # type: ignore[arg-type]  # pydantic turns str into SecretStr
        settings = Settings(
            kafka, postgres, services.match, services.metrics, services.local, services.ingest,
            services.pager, services.twilio,
        )  # fmt: skip
        await ensure_topics(kafka)
        env = {
            **{k: v for k, v in os.environ.items() if k != "SEIZEWATCH_INGEST_MASTER_KEY"},
            "SEIZEWATCH_KAFKA_TOPIC_PREFIX": kafka.topic_prefix,
            "SEIZEWATCH_PG_DSN": dsn,
            "SEIZEWATCH_LOCAL_HOME": str(services.local.home.resolve()),
        }
        try:
            yield Isolated(settings, env)
        finally:
            # Deleted like the integration tests' topics: a broker holding every scenario's partitions
            # restarts ever slower, and another test restarts it.
            admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap_servers)
            await admin.start()
            try:
                existing = set(await admin.list_topics())
                mine = [kafka.topic(t.name) for t in TOPICS if kafka.topic(t.name) in existing]
                if mine:
                    await admin.delete_topics(mine)
            finally:
                await admin.close()


async def watch(conn: asyncpg.Connection) -> dict[str, uuid.UUID]:
    """Put :data:`WATCHED` on the watchlist; their entry ids by plate."""
    return {plate: await add(conn, plate) for plate in WATCHED}


@dataclass
class Stream:
    """Reads published continuously until :meth:`stop`; each remembered with its phase."""

    kafka: KafkaSettings
    watched: dict[str, uuid.UUID]
    phase: str = "before"
    # sighting id → (the entry it must hit, the phase it was produced in)
    expected: dict[str, tuple[uuid.UUID, str]] = field(default_factory=dict)
    sent: Counter[str] = field(default_factory=Counter)  # reads produced per phase
    _stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self) -> None:
        serial = itertools.count()
        plates = itertools.cycle(self.watched)
        async with SightingPublisher(self.kafka, role="test") as publisher:
            while not self._stop.is_set():
                phase, chunk = self.phase, []
                for _ in range(CHUNK):
                    n = next(serial)
                    if n % RATIO == 0:
                        plate = next(plates)
                        sighting = read(plate)
                        self.expected[sighting.sighting_id] = (self.watched[plate], phase)
                    else:
                        sighting = read(f"鲁Q{n % 100_000:05d}")
                    chunk.append(sighting)
                await publisher.publish_many(chunk)
                self.sent[phase] += len(chunk)
                await asyncio.sleep(EVERY)

    def stop(self) -> None:
        self._stop.set()

    def resume(self, phase: str) -> asyncio.Task[None]:
        """Publish again (after :meth:`stop` and its task's end), in ``phase``."""
        self._stop.clear()
        self.phase = phase
        return asyncio.create_task(self.run())

    async def produced(self, phase: str, reads: int, within: float = 30) -> None:
        """Wait until ``reads`` reads were produced in ``phase``."""
        await eventually(lambda: _value(self.sent[phase]), lambda n: n >= reads, within=within)

    def hit_ids(self, phase: str | None = None) -> set[uuid.UUID]:
        return {hit_id_for(sid, entry) for sid, (entry, p) in self.expected.items() if phase in (None, p)}


async def _value(n: int) -> int:
    return n


async def hit_rows(conn: asyncpg.Connection, stream: Stream) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT hit_id, sighting_id, entry_id, published_at, extract(epoch FROM published_at) AS at"
        " FROM hits WHERE sighting_id = ANY($1::text[])",
        list(stream.expected),
    )


async def all_hits_published(
    conn: asyncpg.Connection, stream: Stream, worker: Process, within: float = 120
) -> list[asyncpg.Record]:
    """Every expected hit recorded and published (bounded); the rows."""

    async def probe() -> list[asyncpg.Record]:
        assert worker.process.poll() is None, f"worker died:\n{worker.tail()}"
        return await hit_rows(conn, stream)

    try:
        return await eventually(
            probe,
            lambda rows: len(rows) >= len(stream.expected) and all(r["published_at"] for r in rows),
            within=within,
        )
    except TimeoutError:
        rows = await hit_rows(conn, stream)
        raise AssertionError(
            f"{len(rows)} of {len(stream.expected)} hits after {within} s; log:\n{worker.tail()}"
        ) from None


def since(rows: list[asyncpg.Record], stream: Stream, phase: str, t0: float) -> tuple[float, float]:
    """Seconds from ``t0`` (epoch) to the first and the last hit published of the reads of ``phase``."""
    ids = stream.hit_ids(phase)
    times = sorted(float(r["at"]) for r in rows if r["hit_id"] in ids)
    assert times, f"no read of a watched vehicle was produced in phase {phase}"
    return times[0] - t0, times[-1] - t0


async def check_exact(isolated: Isolated, conn: asyncpg.Connection, stream: Stream) -> int:
    """Exact counts after a scenario; returns how many hits ``watch.hits`` holds more than once (a
    crash between a hit's publication and its mark replays it: at least once, by design)."""
    rows = await hit_rows(conn, stream)
    made = Counter((r["sighting_id"], r["entry_id"]) for r in rows)
    wanted = Counter((sid, entry) for sid, (entry, _) in stream.expected.items())
    assert made == wanted, {
        "missing": len(wanted - made),
        "unexpected": len(made - wanted),
    }  # one hit per watched read, none missing, none else
    published = Counter(
        h.hit_id for h in (HitV1.model_validate_json(r.value) for r in await topic_records(isolated, HITS))
    )
    assert set(published) == stream.hit_ids(), "every hit on watch.hits, and no other"
    assert await topic_records(isolated, SIGHTINGS_DLQ) == [], "nothing dead-lettered"
    await eventually(lambda: committed_and_end(isolated), lambda offsets: offsets[0] == offsets[1], within=30)
    return sum(1 for copies in published.values() if copies > 1)


async def group_members(isolated: Isolated) -> tuple[str, dict[str, tuple[str, frozenset[int]]]]:
    """The matchers' group now: its state, and per member's client id its member id and the partitions
    of ``plate.sightings`` it was assigned."""
    admin = AIOKafkaAdminClient(bootstrap_servers=isolated.settings.kafka.bootstrap_servers)
    await admin.start()
    try:
        [response] = await admin.describe_consumer_groups([group_id(isolated.settings.kafka)])
    finally:
        await admin.close()
    [(error, _, state, _, _, members, *_)] = response.groups
    assert error == 0, error
    found = {}
    for member_id, client_id, _, _, assignment in members:
        decoded = ConsumerProtocol.ASSIGNMENT.decode(assignment) if assignment else None
        partitions = frozenset(p for _, ps in (decoded.assignment if decoded else []) for p in ps)
        found[client_id] = (member_id, partitions)
    return state, found
