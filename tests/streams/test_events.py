"""The canonical sighting: building, validation errors that name the field, decoding."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import orjson
import pytest

from streams.events import EventError, Location, SourceKind, decode_sighting, new_sighting, sighting_id_for
from streams.plates import PlateShape

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 23, 18, 0, tzinfo=SHANGHAI)


def build(**changes: object):
    fields: dict[str, object] = {
        "sighting_id": "s-1",
        "source_kind": SourceKind.PARKING_ENTRY,
        "source_id": "parking-jiaojiang",
        "device_id": "gate-1",
        "plate_raw": "浙Ｊ·１２３４５",
        "observed_at": NOW,
        "received_at": NOW.astimezone(UTC) + timedelta(seconds=2),
    }
    fields.update(changes)
    return new_sighting(**fields)  # type: ignore[arg-type]


def test_new_sighting_normalizes_the_plate_and_keeps_the_raw_read() -> None:
    s = build()
    assert s.plate == "浙J12345"
    assert s.plate_raw == "浙Ｊ·１２３４５"
    assert s.plate_shape is PlateShape.ORDINARY
    assert s.observed_at.utcoffset() == timedelta(hours=8)


def test_round_trip_through_bytes() -> None:
    s = build(confidence=0.91, image_ref="https://lot.example/img/1.jpg")
    assert decode_sighting(s.encode()) == s


def test_lenient_reads_are_accepted_with_their_shape() -> None:
    assert build(plate_raw="J12345").plate_shape is PlateShape.NO_PROVINCE


@pytest.mark.parametrize(
    ("changes", "reason", "field"),
    [
        ({"plate_raw": "无牌"}, "no_plate", "plate"),
        ({"plate_raw": ""}, "empty", "plate"),
        ({"plate_raw": "浙J1😀345"}, "illegal_character", "plate"),
        ({"observed_at": datetime(2026, 11, 23, 18, 0)}, "invalid_field", "observed_at"),  # noqa: DTZ001
        ({"observed_at": NOW + timedelta(hours=1)}, "invalid_field", None),  # far in the future
        ({"confidence": 1.5}, "invalid_field", "confidence"),
        ({"device_id": "  "}, "invalid_field", "device_id"),
    ],
)
def test_invalid_fields_are_named(changes: dict[str, object], reason: str, field: str | None) -> None:
    with pytest.raises(EventError) as caught:
        build(**changes)
    assert caught.value.reason == reason
    assert caught.value.field == field
    if field:
        assert str(caught.value).startswith(f"{field}: ")


def test_future_read_names_the_clock_problem() -> None:
    with pytest.raises(EventError, match="device clock wrong"):
        build(observed_at=NOW + timedelta(hours=1))


@pytest.mark.parametrize(
    ("raw", "reason", "field"),
    [
        (b"\xff\xfe not json", "not_json", None),
        (b"[1, 2]", "not_json", None),
        (b'{"schema_version": 2}', "unsupported_schema", "schema_version"),
        (b'{"schema_version": 1, "sighting_id": "x"}', "invalid_field", "source_kind"),
    ],
)
def test_decode_errors(raw: bytes, reason: str, field: str | None) -> None:
    with pytest.raises(EventError) as caught:
        decode_sighting(raw)
    assert (caught.value.reason, caught.value.field) == (reason, field)


def test_decode_refuses_unknown_fields() -> None:
    data = orjson.loads(build().encode())
    data["speed_kmh"] = 60
    with pytest.raises(EventError) as caught:
        decode_sighting(orjson.dumps(data))
    assert caught.value.field == "speed_kmh"


def test_sighting_ids_are_stable_and_distinct() -> None:
    assert sighting_id_for("lot", "gate", "42") == sighting_id_for("lot", "gate", "42")
    assert sighting_id_for("lot", "gate", "42") != sighting_id_for("lot", "gate2", "42")
    assert sighting_id_for("lo", "tgate", "42") != sighting_id_for("lot", "gate", "42")


# --- what the stores downstream refuse, refused at the door (found by python -m tests.fuzz) -------------


@pytest.mark.parametrize(
    "observed_at",
    [
        # parking_generic, backfill_jsonl, isapi_anpr: "0001-01-01T00:00:00" is Shanghai time (LMT +08:05:43)
        datetime(1, 1, 1, tzinfo=SHANGHAI),
        datetime(1, 1, 1, 7, 59, 59, tzinfo=timezone(timedelta(hours=8))),
        datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=8, minutes=5, seconds=43))),
    ],
)
def test_an_observed_time_without_a_utc_form_is_refused(observed_at: datetime) -> None:
    # The matcher compares in UTC and asyncpg sends timestamptz as UTC: both raised OverflowError.
    with pytest.raises(EventError) as caught:
        build(observed_at=observed_at)
    assert (caught.value.reason, caught.value.field) == ("invalid_field", "observed_at")
    assert "no UTC form" in str(caught.value)


def test_an_offset_of_seconds_is_refused_the_topic_would_round_it() -> None:
    # parking_example_cn (python -m tests.fuzz): passTime 1900-01-01 00:00:00 is Shanghai local mean
    # time, +08:05:43; the event's JSON carries +08:06, so the matcher read another instant.
    with pytest.raises(EventError) as caught:
        build(observed_at=datetime(1900, 1, 1, tzinfo=SHANGHAI))
    assert (caught.value.reason, caught.value.field) == ("invalid_field", "observed_at")
    assert "+08:05:43" in str(caught.value)
    s = build(observed_at=datetime(1901, 1, 1, 0, 0, tzinfo=SHANGHAI))  # standard time (+08:00) since 1901
    assert decode_sighting(s.encode()) == s


def test_the_first_instant_with_a_utc_form_is_accepted() -> None:
    s = build(observed_at=datetime(1, 1, 1, 8, tzinfo=timezone(timedelta(hours=8))))
    assert decode_sighting(s.encode()) == s


@pytest.mark.parametrize("field", ["device_id", "source_id", "image_ref", "device_name", "district"])
@pytest.mark.parametrize("bad", ["\x00ttps://lot.example/2.jpg", "gate-1\udc80"])
def test_text_the_stores_refuse_is_refused_naming_the_field(field: str, bad: str) -> None:
    # backfill_csv: a NUL in image_url was accepted, then PostgreSQL refused the hit (issue 18 item 4).
    with pytest.raises(EventError) as caught:
        build(**{field: bad})
    assert (caught.value.reason, caught.value.field) == ("invalid_field", field)


def test_a_nul_in_the_address_of_a_location_is_refused() -> None:
    place = Location(latitude=28.68, longitude=121.44, address="开元路\x001号")
    with pytest.raises(EventError) as caught:
        build(location=place)
    assert (caught.value.reason, caught.value.field) == ("invalid_field", "location.address")
