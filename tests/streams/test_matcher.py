"""The match stage's batch loop in process: which reads it decodes, which hits it returns.

Recording needs PostgreSQL and Kafka (tests/integration); here no read is invalid and nothing is
recorded, so the stage is given neither, and a dead letter fails the test.
"""

from __future__ import annotations

import uuid
from typing import Any, cast

from aiokafka.structs import ConsumerRecord
from prometheus_client import REGISTRY

from streams.events import SourceKind, new_sighting
from streams.matcher import MatchStage
from streams.matching import MatchKind, WatchIndex
from streams.plates import read_plate
from streams.settings import KafkaSettings, MatchSettings
from tests.streams.test_matching import NOW, entry

SKIPPED = "seizewatch_match_fuzzy_only_skipped_total"


class NoDeadLetters:
    async def send_and_wait(self, *args: object, **kwargs: object) -> None:
        raise AssertionError(f"dead-lettered: {args} {kwargs}")


def record(plate: str, offset: int, value: bytes | None = None) -> ConsumerRecord[bytes, bytes]:
    if value is None:
        value = new_sighting(
            sighting_id=uuid.uuid4().hex,
            source_kind=SourceKind.CHECKPOINT,
            source_id="kk",
            device_id="kk-1",
            plate_raw=plate,
            observed_at=NOW,
            received_at=NOW,
        ).encode()
    key = read_plate(plate).text.encode()  # as connectors/producer.py keys it
    return ConsumerRecord("t", 0, offset, 0, 0, key, value, None, len(key), len(value), ())


def stage(**settings: Any) -> MatchStage:
    index = WatchIndex()
    index.apply(entry("浙JD80123"))
    index.apply(entry("浙J12345"))
    return MatchStage(
        index=index,
        match=MatchSettings(**settings),
        kafka=KafkaSettings(),
        pool=cast(Any, None),
        producer=cast(Any, NoDeadLetters()),
    )


def skipped() -> float:
    return REGISTRY.get_sample_value(SKIPPED) or 0.0


ALL_KINDS = frozenset(MatchKind)


async def test_with_the_ocr_kinds_on_an_ocr_read_is_matched_and_hits() -> None:
    before = skipped()
    found = await stage(hit_kinds=ALL_KINDS).match_batch(
        [("t/0/", [record("浙JD8O123", 0), record("浙J12346", 1)])]
    )
    assert [(hit.entry_plate, hit.match_kind) for _, _, hit in found] == [("浙JD80123", MatchKind.OCR)]
    assert found[0][1] == "t/0/0"
    assert skipped() == before


async def test_by_default_a_read_only_an_ocr_kind_matches_is_not_even_decoded() -> None:
    no_ocr = stage()  # the default: the OCR kinds make no hit
    before = skipped()
    batch = [
        record("浙JD8O123", 0),  # an ocr match only
        record("浙JD8Q123", 1, b"not JSON: decoding it would dead-letter it"),  # the same, undecodable
        record("浙J12345", 2),  # exact
        record("J12345", 3),  # the province not read: matches by plate tail
        record("浙J1234S", 4),  # an ocr match of 浙J12345 only
    ]
    found = await no_ocr.match_batch([("t/0/", batch)])
    assert [(where, hit.match_kind) for _, where, hit in found] == [
        ("t/0/2", MatchKind.EXACT),
        ("t/0/3", MatchKind.PROVINCE),
    ]
    assert skipped() == before + 3
