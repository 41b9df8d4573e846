"""The PostgreSQL pool owner and the migration runner (plain SQL files in ``deploy/migrations``)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TypeAlias

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from streams.errors import ConfigurationError, ServiceUnavailable
from streams.settings import PostgresSettings

log = logging.getLogger(__name__)

# A connection of its own or one borrowed from a pool: queries take either.
Connection: TypeAlias = asyncpg.Connection | PoolConnectionProxy

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "deploy" / "migrations"
# Any constant shared by every process that migrates: serializes concurrent start-ups.
_MIGRATION_LOCK = 0x5E12E


@asynccontextmanager
async def pool(settings: PostgresSettings) -> AsyncIterator[asyncpg.Pool]:
    """An asyncpg pool, closed on exit.

    Raises:
        ServiceUnavailable: PostgreSQL does not answer.
    """
    try:
        created = await asyncpg.create_pool(
            settings.dsn.get_secret_value(),
            min_size=settings.pool_min_size,
            max_size=settings.pool_max_size,
        )
    except (OSError, asyncpg.PostgresError) as exc:
        raise ServiceUnavailable(f"PostgreSQL does not answer: {exc}") from exc
    try:
        yield created
    finally:
        await created.close()


async def migrate(conn: Connection, directory: Path = MIGRATIONS_DIR) -> list[str]:
    """Apply the migrations not applied yet, in name order, each in its own transaction.

    Raises:
        ConfigurationError: ``directory`` holds no migration (seizewatch installed without its source tree,
            e.g. from a wheel, which leaves ``deploy/migrations`` behind): never "nothing to apply".
    """
    paths = await asyncio.to_thread(lambda: sorted(directory.glob("*.sql")))
    if not paths:
        raise ConfigurationError(
            f"no migrations in {directory}: install seizewatch from its source tree (pip install -e .)"
        )
    applied: list[str] = []
    await conn.execute("SELECT pg_advisory_lock($1)", _MIGRATION_LOCK)
    try:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations"
            " (version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {row["version"] for row in await conn.fetch("SELECT version FROM schema_migrations")}
        for path in paths:
            if path.stem in done:
                continue
            async with conn.transaction():
                await conn.execute(await asyncio.to_thread(path.read_text, encoding="utf-8"))
                await conn.execute("INSERT INTO schema_migrations (version) VALUES ($1)", path.stem)
            log.info("applied migration %s", path.stem)
            applied.append(path.stem)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _MIGRATION_LOCK)
    return applied
