"""Parking adapters: the generic schema and the example vendor mapping, record by record."""

from __future__ import annotations

from datetime import timedelta

import pytest

from connectors.parking import VENDORS, colour_of, parse_example_cn, parse_generic
from connectors.records import AdapterError, RawRead
from streams.events import SourceKind
from streams.vehicles import PlateColour


def generic(**changes: object) -> dict[str, object]:
    record: dict[str, object] = {
        "record_id": "r-1",
        "lot_id": "wanda",
        "gate": "g1",
        "direction": "in",
        "plate": "浙J12345",
        "plate_colour": "蓝",
        "time": "2026-11-23 18:00:00",
        "image_url": "https://lot.example/p/1.jpg",
        "confidence": 0.93,
    }
    record.update(changes)
    return record


def test_generic_record_becomes_a_read() -> None:
    [read] = parse_generic({"records": [generic()]})
    assert isinstance(read, RawRead)
    assert (read.record_id, read.device_id, read.source_kind) == ("r-1", "wanda/g1", SourceKind.PARKING_ENTRY)
    assert read.plate_raw == "浙J12345"
    assert read.plate_colour is PlateColour.BLUE
    assert read.observed_at.utcoffset() == timedelta(hours=8)  # naive time is the lot's local time
    assert (read.confidence, read.image_ref) == (0.93, "https://lot.example/p/1.jpg")


def test_exit_and_explicit_offset() -> None:
    [read] = parse_generic({"records": [generic(direction="out", time="2026-11-23T10:00:00+00:00")]})
    assert isinstance(read, RawRead)
    assert read.source_kind is SourceKind.PARKING_EXIT
    assert read.observed_at.utcoffset() == timedelta(0)


def test_bad_records_are_named_and_the_others_still_parse() -> None:
    items = parse_generic(
        {
            "records": [
                generic(),
                generic(direction="sideways"),
                generic(plate="  "),
                generic(time="yesterday"),
                {"plate": "浙J1"},
                generic(confidence=3),
            ]
        }
    )
    assert isinstance(items[0], RawRead)
    errors = {e.index: e for e in items[1:] if isinstance(e, AdapterError)}
    assert len(errors) == 5
    assert errors[1].field == "records[1].direction"
    assert errors[2].field == "records[2].plate"
    assert errors[3].field == "records[3].time"
    assert errors[4].field is not None
    assert errors[4].field.startswith("records[4].")
    assert errors[5].field == "records[5].confidence"
    assert all(e.reason == "invalid_field" for e in errors.values())


@pytest.mark.parametrize(
    ("document", "reason", "field"),
    [
        ([1, 2], "invalid_json_content", "records"),
        ({"records": []}, "missing_field", "records"),
        ({"rows": [generic()]}, "missing_field", "records"),
        ({"records": [generic()] * 501}, "too_many_records", "records"),
    ],
)
def test_whole_payload_errors(document: object, reason: str, field: str) -> None:
    with pytest.raises(AdapterError) as caught:
        parse_generic(document)
    assert (caught.value.reason, caught.value.field) == (reason, field)


def test_example_cn_mapping() -> None:
    document = {
        "parkCode": "TZ-JJ-001",
        "data": [
            {"orderId": "o1", "gateCode": "E1", "carNo": "浙JD80123", "plateColor": "绿", "inOutType": 0,
             "passTime": "2026-11-23 18:00:00", "picUrl": "http://x/1.jpg"},
            {"orderId": "o2", "gateCode": "X1", "carNo": "浙J12345", "inOutType": 1,
             "passTime": "2026/11/23 18:00"},
            {"orderId": "o3", "gateCode": "X1", "carNo": "浙J12345", "inOutType": 2,
             "passTime": "2026-11-23 18:00:00"},
        ],
    }  # fmt: skip
    first, second, third = parse_example_cn(document)
    assert isinstance(first, RawRead)
    assert (first.device_id, first.source_kind, first.plate_colour) == (
        "TZ-JJ-001/E1",
        SourceKind.PARKING_ENTRY,
        PlateColour.GREEN,
    )
    assert isinstance(second, AdapterError)
    assert second.field == "data[1].passTime"
    assert isinstance(third, AdapterError)
    assert third.field == "data[2].inOutType"
    with pytest.raises(AdapterError, match="parkCode"):
        parse_example_cn({"data": []})


def test_colour_words_and_every_vendor_is_registered() -> None:
    assert colour_of("黄绿色") is PlateColour.YELLOW_GREEN
    assert colour_of("yellow") is PlateColour.YELLOW
    assert colour_of("紫") is PlateColour.UNKNOWN
    assert colour_of(7) is PlateColour.UNKNOWN
    assert set(VENDORS) == {"generic", "example_cn"}
