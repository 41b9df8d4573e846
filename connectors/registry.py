"""The device registry and the sources allowed to send, cached in memory and reloaded on change."""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import asyncpg

from streams.db import Connection
from streams.errors import InvalidInput, translate
from streams.events import Location, SourceKind
from streams.settings import PostgresSettings
from streams.supervision import Supervisor

log = logging.getLogger(__name__)

CHANNEL = "seizewatch_registry"
UNKNOWN_GROUP = "unknown"
# Backoff of the reload loop while PostgreSQL fails: doubling from the first to the most.
RETRY_FIRST_S = 1.0
RETRY_MAX_S = 30.0


class Connector(enum.StrEnum):
    PARKING = "parking"
    GAT1400 = "gat1400"
    ISAPI = "isapi"
    BACKFILL = "backfill"
    TRAFFIC = "traffic"


class AuthMethod(enum.StrEnum):
    API_KEY = "api_key"  # X-Api-Key header (ISAPI cameras: ?key= in the URL they are given)
    HMAC = "hmac"  # X-Seizewatch-Timestamp + X-Seizewatch-Signature over the body
    DIGEST = "digest"  # HTTP Digest, as GA/T 1400 registration uses


@dataclass(frozen=True, slots=True)
class Source:
    source_id: str
    connector: Connector
    vendor: str
    auth: AuthMethod
    key_version: int
    enabled: bool


@dataclass(frozen=True, slots=True)
class Device:
    device_id: str
    source_id: str
    name: str
    kind: SourceKind | None
    address: str
    location: Location | None
    district: str
    owner: str
    device_group: str
    timezone: ZoneInfo


def _device(row: asyncpg.Record) -> Device:
    location = None
    if row["latitude"] is not None:
        location = Location(
            latitude=row["latitude"], longitude=row["longitude"], address=row["address"] or None
        )
    return Device(
        device_id=row["device_id"],
        source_id=row["source_id"],
        name=row["name"],
        kind=SourceKind(row["kind"]) if row["kind"] else None,
        address=row["address"],
        location=location,
        district=row["district"],
        owner=row["owner"],
        device_group=row["device_group"],
        timezone=ZoneInfo(row["timezone"]),
    )


def _source(row: asyncpg.Record) -> Source:
    return Source(
        source_id=row["source_id"],
        connector=Connector(row["connector"]),
        vendor=row["vendor"],
        auth=AuthMethod(row["auth"]),
        key_version=row["key_version"],
        enabled=row["enabled"],
    )


class Registry:
    """Devices and sources in memory; a notification from PostgreSQL (or a minute) reloads both.

    The reloads run in one loop for the process's life (:meth:`run`, under the process's supervisor when
    it has one). A lost connection is noticed at once (its termination listener), re-opened and the
    registry reloaded, so no change made meanwhile is missed; while PostgreSQL is away the cached copy
    keeps serving (a stale name beats refusing reads). A failure that retrying cannot fix (by
    :func:`~streams.errors.translate`: the table gone, a permission revoked) ends the loop, and with it
    the process's health.
    """

    def __init__(self, postgres: PostgresSettings, *, refresh_s: float = 60.0) -> None:
        self._postgres = postgres
        self._refresh_s = refresh_s
        self._devices: dict[str, Device] = {}
        self._sources: dict[str, Source] = {}
        self._conn: asyncpg.Connection | None = None
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def device(self, device_id: str) -> Device | None:
        return self._devices.get(device_id)

    def source(self, source_id: str) -> Source | None:
        return self._sources.get(source_id)

    async def start(self, supervisor: Supervisor | None = None) -> None:
        """Load the registry, then keep it current: under ``supervisor`` as its loop ``registry``."""
        await self._connect()
        await self.reload()
        if supervisor is not None:
            self._task = supervisor.spawn("registry", self.run())
        else:  # a short command (the backfill): a stale registry is no reason to stop it
            self._task = asyncio.create_task(self.run(), name="registry")
            self._task.add_done_callback(_log_failure)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            # How the loop ended is the supervisor's to report (or _log_failure's), not stop()'s.
            await asyncio.wait({self._task})
        await self._disconnect()

    def _notified(self, *_: object) -> None:
        self._changed.set()

    async def _connect(self) -> None:
        conn = await asyncpg.connect(self._postgres.dsn.get_secret_value())
        try:
            await conn.add_listener(CHANNEL, self._notified)
        except BaseException:
            await conn.close()
            raise
        # Notifications stop with the connection: losing it must wake the loop, not wait for a minute.
        conn.add_termination_listener(self._notified)
        self._conn = conn

    async def _disconnect(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            conn.remove_termination_listener(self._notified)
            with contextlib.suppress(OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                await conn.close(timeout=5)

    async def reload(self) -> None:
        if self._conn is None:
            raise RuntimeError("registry not started")
        devices = {row["device_id"]: _device(row) for row in await self._conn.fetch("SELECT * FROM devices")}
        sources = {row["source_id"]: _source(row) for row in await self._conn.fetch("SELECT * FROM sources")}
        self._devices, self._sources = devices, sources
        log.info("registry: %d devices, %d sources", len(devices), len(sources))

    async def run(self) -> None:
        """Reload on every notification, every ``refresh_s``, and when the connection is lost.

        Raises:
            SeizewatchError: a failure retrying cannot fix (see :func:`~streams.errors.translate`).
        """
        delay = RETRY_FIRST_S
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), self._refresh_s)
            self._changed.clear()
            try:
                if self._conn is None or self._conn.is_closed():
                    await self._disconnect()
                    await self._connect()
                    log.info("registry: connected to PostgreSQL again")
                await self.reload()
            except Exception as exc:  # translate() re-raises what is no boundary failure
                error = translate(exc)
                if not error.retriable:
                    raise error from exc
                log.warning("registry: reload failed (%s); serving the cached copy, retrying in %.0f s",
                            error, delay)  # fmt: skip
                await self._disconnect()
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX_S)
                self._changed.set()  # try again now, not in refresh_s
                continue
            delay = RETRY_FIRST_S


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("registry: reloads stopped; serving the last copy", exc_info=task.exception())


# --- maintenance (CLI) ------------------------------------------------------------------------------


async def add_source(
    conn: Connection,
    source_id: str,
    connector: Connector,
    auth: AuthMethod,
    *,
    vendor: str = "generic",
    description: str = "",
) -> Source:
    """Raises: InvalidInput ``duplicate`` or ``invalid_field``."""
    try:
        row = await conn.fetchrow(
            "INSERT INTO sources (source_id, connector, vendor, auth, description)"
            " VALUES ($1, $2, $3, $4, $5) RETURNING *",
            source_id,
            connector.value,
            vendor,
            auth.value,
            description,
        )
    except asyncpg.UniqueViolationError as exc:
        raise InvalidInput("duplicate", f"source {source_id} exists", field="source_id") from exc
    except asyncpg.CheckViolationError as exc:
        raise InvalidInput(
            "invalid_field", "source ids are 2-64 characters: a-z, 0-9, '.', '_', '-'", field="source_id"
        ) from exc
    assert row is not None  # noqa: S101  # INSERT … RETURNING
    return _source(row)


async def get_source(conn: Connection, source_id: str) -> Source:
    """Raises: InvalidInput ``not_found``."""
    row = await conn.fetchrow("SELECT * FROM sources WHERE source_id = $1", source_id)
    if row is None:
        raise InvalidInput("not_found", f"no source {source_id}", field="source_id")
    return _source(row)


async def rotate_source_key(conn: Connection, source_id: str) -> Source:
    row = await conn.fetchrow(
        "UPDATE sources SET key_version = key_version + 1 WHERE source_id = $1 RETURNING *", source_id
    )
    if row is None:
        raise InvalidInput("not_found", f"no source {source_id}", field="source_id")
    return _source(row)


async def upsert_devices(conn: Connection, rows: list[dict[str, object]]) -> int:
    """Insert or update devices (one transaction); return how many."""
    async with conn.transaction():
        for row in rows:
            await conn.execute(
                "INSERT INTO devices (device_id, source_id, name, kind, address, latitude, longitude,"
                " district, owner, device_group, timezone)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
                " ON CONFLICT (device_id) DO UPDATE SET source_id = EXCLUDED.source_id, name = EXCLUDED.name,"
                " kind = EXCLUDED.kind, address = EXCLUDED.address, latitude = EXCLUDED.latitude,"
                " longitude = EXCLUDED.longitude, district = EXCLUDED.district, owner = EXCLUDED.owner,"
                " device_group = EXCLUDED.device_group, timezone = EXCLUDED.timezone, updated_at = now()",
                row["device_id"],
                row["source_id"],
                row["name"],
                row.get("kind"),
                row.get("address", ""),
                row.get("latitude"),
                row.get("longitude"),
                row["district"],
                row.get("owner", ""),
                row["device_group"],
                row.get("timezone", "Asia/Shanghai"),
            )
    return len(rows)
