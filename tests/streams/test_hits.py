"""The hit of a sighting and an entry: its id (stable across versions) and its wire form."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from streams.events import Location, SourceKind, new_sighting
from streams.hits import HitV1, hit_id_for
from streams.matching import Match, MatchKind
from tests.streams.test_matching import NOW, entry

_NAMESPACE = uuid.UUID("6f1c1d1e-5e12-4e0c-9b6a-7a7c7e5a11ce")


@pytest.mark.parametrize("sighting_id", ["a426d3149f4502b99c1cd1f691330525", "停车场/入口/记录-7", "x"])
def test_the_hit_id_is_the_uuid5_of_sighting_and_entry(sighting_id: str) -> None:
    # Recorded hits are deduplicated by this id: a replay after an upgrade must derive the same one.
    entry_id = uuid.uuid4()
    expected = uuid.uuid5(_NAMESPACE, f"{sighting_id}/{entry_id}")
    assert hit_id_for(sighting_id, entry_id) == expected
    assert hit_id_for(sighting_id, entry_id).version == 5


def test_a_hit_survives_its_dump_and_its_json() -> None:
    watched = entry("浙JD80123")
    sighting = new_sighting(
        sighting_id="s-1",
        source_kind=SourceKind.PARKING_ENTRY,
        source_id="停车场-椒江",
        device_id="gate-1",
        plate_raw="浙JD8O123",
        observed_at=NOW.astimezone(),
        received_at=NOW + timedelta(seconds=1),
        location=Location(latitude=28.66, longitude=121.42, address="椒江区 市府大道"),
        district="331002",
        image_ref="img/1.jpg",
    )
    hit = HitV1.build(sighting, Match(watched, MatchKind.OCR, 0.8), matched_at=NOW)
    assert HitV1.model_validate(hit.model_dump()) == hit
    assert HitV1.model_validate_json(hit.encode()) == hit
    assert hit.hit_id == hit_id_for("s-1", watched.entry_id)
    assert (hit.entry_plate, hit.match_kind, hit.score) == ("浙JD80123", MatchKind.OCR, 0.8)
    assert hit.sighting == sighting
    now = HitV1.build(sighting, Match(watched, MatchKind.OCR, 0.8)).matched_at
    assert now.tzinfo is UTC
    assert now >= datetime.now(UTC) - timedelta(seconds=5)
