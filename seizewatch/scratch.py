"""Throwaway resources on the local services, for the tests and the benchmarks: a free port, a database.

Both create many short-lived databases on the local PostgreSQL and processes on loopback ports; the code
that makes and removes them lives here once.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from streams import db

_DROP_ATTEMPTS = 40


def free_port() -> int:
    """A TCP port free on loopback now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def with_database(dsn: str, name: str) -> str:
    """``dsn`` pointing at database ``name`` instead."""
    return urlunsplit(urlsplit(dsn)._replace(path=f"/{name}"))


@asynccontextmanager
async def scratch_database(base_dsn: str, name: str) -> AsyncIterator[str]:
    """A new database ``name`` beside ``base_dsn``'s, migrated; its DSN. Dropped on exit."""
    dsn = with_database(base_dsn, name)
    admin = await asyncpg.connect(base_dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        conn = await asyncpg.connect(dsn)
        try:
            await db.migrate(conn)
        finally:
            await conn.close()
        yield dsn
    finally:
        await _drop(base_dsn, name)


async def _drop(base_dsn: str, name: str) -> None:
    admin = await asyncpg.connect(base_dsn)
    try:
        # FORCE cannot end an autovacuum worker that happens to be on the database (not our role's): it
        # finishes within moments, so try again briefly.
        for attempt in range(_DROP_ATTEMPTS):
            try:
                await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
            except (asyncpg.InsufficientPrivilegeError, asyncpg.ObjectInUseError):
                if attempt == _DROP_ATTEMPTS - 1:
                    raise
                await asyncio.sleep(0.25)
            else:
                return
    finally:
        await admin.close()
