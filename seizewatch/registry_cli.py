"""``seizewatch sources`` and ``seizewatch devices``: who may send reads, and the device registry."""

from __future__ import annotations

from pathlib import Path

import click

from connectors.registry import (
    AuthMethod,
    Connector,
    Source,
    add_source,
    get_source,
    rotate_source_key,
    upsert_devices,
)
from seizewatch.common import console, guarded, settings_from_env
from seizewatch.settings import Settings
from streams import db
from streams.errors import InvalidInput


@click.group()
def sources() -> None:
    """Feeds allowed to send reads, and their credentials."""


@sources.command("add")
@click.argument("source_id")
@click.option("--connector", type=click.Choice([c.value for c in Connector]), required=True)
@click.option("--auth", type=click.Choice([a.value for a in AuthMethod]), default=AuthMethod.API_KEY.value)
@click.option("--vendor", default="generic", help="Parking adapter mapping the vendor's format.")
@click.option("--description", default="")
def sources_add(source_id: str, connector: str, auth: str, vendor: str, description: str) -> None:
    """Register a source; prints its credential (derived from the master key, stored nowhere)."""
    from connectors.parking import VENDORS

    if connector == Connector.PARKING.value and vendor not in VENDORS:
        raise click.ClickException(f"no parking adapter {vendor!r}; known: {sorted(VENDORS)}")
    if (auth == AuthMethod.DIGEST.value) != (connector == Connector.GAT1400.value):
        raise click.ClickException("digest authentication is for GA/T 1400 sources, and only it")
    settings = settings_from_env()

    async def run() -> Source:
        async with db.pool(settings.postgres) as pool, pool.acquire() as conn:
            return await add_source(
                conn,
                source_id,
                Connector(connector),
                AuthMethod(auth),
                vendor=vendor,
                description=description,
            )

    source = guarded(run)
    console.print(f"added source {source.source_id} ({source.connector.value}, {source.auth.value})")
    _print_credential(settings, source)


@sources.command("credential")
@click.argument("source_id")
@click.option("--rotate", is_flag=True, help="Issue a new credential; the old one stops working at once.")
def sources_credential(source_id: str, rotate: bool) -> None:
    """Print a source's current credential (for its operator)."""
    settings = settings_from_env()

    async def run() -> Source:
        async with db.pool(settings.postgres) as pool, pool.acquire() as conn:
            if rotate:
                return await rotate_source_key(conn, source_id)
            return await get_source(conn, source_id)

    _print_credential(settings, guarded(run))


def _print_credential(settings: Settings, source: Source) -> None:
    from connectors.auth import source_secret

    if settings.ingest.master_key is None:
        console.print("(set SEIZEWATCH_INGEST_MASTER_KEY to print the credential)")
        return
    secret = source_secret(settings.ingest.master_key, source.source_id, source.key_version)
    label = {"api_key": "API key", "hmac": "HMAC signing secret", "digest": "digest password"}[
        source.auth.value
    ]
    console.print(f"{label} (version {source.key_version}): {secret}")


@click.group()
def devices() -> None:
    """The device registry every read is enriched from."""


@devices.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--encoding", default="utf-8-sig", show_default=True)
def devices_import(path: Path, encoding: str) -> None:
    """Insert or update devices from CSV (device_id, source_id, name, district, device_group required;
    kind, address, latitude, longitude, owner, timezone optional)."""
    from connectors.devicefile import read_devices

    settings = settings_from_env()
    try:
        rows = read_devices(path.read_text(encoding=encoding).splitlines(keepends=True))
    except (InvalidInput, UnicodeDecodeError) as exc:
        raise click.ClickException(str(exc)) from exc

    async def run() -> int:
        async with db.pool(settings.postgres) as pool, pool.acquire() as conn:
            return await upsert_devices(conn, rows)

    console.print(f"{guarded(run)} devices imported or updated")
