"""A hit: a sighting matched a watch entry. Its wire form on ``watch.hits`` and its row in PostgreSQL.

The hit id is derived from (sighting id, entry id), so a replayed sighting yields the same id: the row is
inserted once, and the topic record is re-sent only if the first attempt never reached Kafka.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime
from typing import Literal

import orjson
from pydantic import AwareDatetime, BaseModel, ConfigDict

from streams.db import Connection
from streams.events import Sighting
from streams.matching import Match, MatchKind
from streams.vehicles import Action, PlateColour, Priority

HIT_SCHEMA_VERSION = 1
_HIT_NAMESPACE = uuid.UUID("6f1c1d1e-5e12-4e0c-9b6a-7a7c7e5a11ce")


_NAMESPACE_BYTES = _HIT_NAMESPACE.bytes


def hit_id_for(sighting_id: str, entry_id: uuid.UUID) -> uuid.UUID:
    """``uuid5(namespace, f"{sighting_id}/{entry_id}")``, spelled out: the same id, without the import
    ``uuid.uuid5`` runs on every call (a quarter of its cost; once per hit)."""
    name = f"{sighting_id}/{entry_id}".encode()
    digest = hashlib.sha1(_NAMESPACE_BYTES + name, usedforsecurity=False).digest()
    return uuid.UUID(bytes=digest[:16], version=5)


class HitV1(BaseModel):
    """Wire form of a hit (key: entry id). Carries what routing and the SMS need, no second lookup."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: Literal[1] = 1
    hit_id: uuid.UUID
    entry_id: uuid.UUID
    entry_version: int
    entry_plate: str
    case_number: str
    court: str
    action: Action
    priority: Priority
    vehicle: str
    # The entry's plate colour (the court's record; a camera's colour is often wrong at night).
    plate_colour: PlateColour = PlateColour.UNKNOWN
    match_kind: MatchKind
    score: float
    sighting: Sighting
    matched_at: AwareDatetime

    @classmethod
    def build(cls, sighting: Sighting, match: Match, matched_at: datetime | None = None) -> HitV1:
        """The hit of a validated sighting and a match of an entry in the index.

        Validated like any model: ``model_construct`` skips validation but runs in Python, and measured
        no faster than pydantic-core's validation of these fields (docs/performance.md).
        """
        entry = match.entry
        return cls(
            hit_id=hit_id_for(sighting.sighting_id, entry.entry_id),
            entry_id=entry.entry_id,
            entry_version=entry.version,
            entry_plate=entry.plate.text,
            case_number=entry.case_number,
            court=entry.court,
            action=entry.action,
            priority=entry.priority,
            vehicle=entry.vehicle,
            plate_colour=entry.plate_colour,
            match_kind=match.kind,
            score=match.score,
            sighting=sighting,
            matched_at=matched_at or datetime.now(UTC),
        )

    def encode(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json", exclude_none=True))


async def record_hit(conn: Connection, hit: HitV1) -> tuple[bool, bool]:
    """Insert the hit unless already there; return (inserted now, already published to Kafka)."""
    s = hit.sighting
    offset = s.observed_at.utcoffset()
    inserted = await conn.fetchval(
        "INSERT INTO hits (hit_id, sighting_id, entry_id, match_kind, score, plate_read, plate_raw,"
        " source_kind, source_id, device_id, observed_at, observed_offset_min, received_at, location,"
        " image_ref, backfill, matched_at, district, device_name)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14::jsonb, $15, $16, $17,"
        " $18, $19)"
        " ON CONFLICT (hit_id) DO NOTHING RETURNING true",
        hit.hit_id,
        s.sighting_id,
        hit.entry_id,
        hit.match_kind.value,
        hit.score,
        s.plate,
        s.plate_raw,
        s.source_kind.value,
        s.source_id,
        s.device_id,
        s.observed_at,
        int(offset.total_seconds() // 60) if offset is not None else 0,
        s.received_at,
        orjson.dumps(s.location.model_dump()).decode() if s.location else None,
        s.image_ref,
        s.backfill,
        hit.matched_at,
        s.district,
        s.device_name,
    )
    if inserted:
        return True, False
    published = await conn.fetchval("SELECT published_at IS NOT NULL FROM hits WHERE hit_id = $1", hit.hit_id)
    return False, bool(published)


async def mark_published(conn: Connection, *hit_ids: uuid.UUID) -> None:
    """Mark hits published to ``watch.hits`` (after Kafka acknowledged them), in one statement."""
    await conn.execute(
        "UPDATE hits SET published_at = now() WHERE hit_id = ANY($1::uuid[]) AND published_at IS NULL",
        list(hit_ids),
    )
