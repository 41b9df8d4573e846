"""The watch entry's wire form on ``watchlist.changes`` and the follower's step over one change record."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import msgspec
import orjson
import pytest
from aiokafka.structs import ConsumerRecord

from streams.errors import InvalidInput
from streams.matching import WatchIndex
from streams.plates import PlateError, parse_plate
from streams.settings import KafkaSettings
from streams.topics import WATCHLIST_CHANGES
from streams.vehicles import Action, EntryStatus, PlateColour, Priority
from streams.watchlist import WatchEntry, WatchEntryV1, decode_entry, encode_entry
from streams.watchsync import WatchlistFollower

SHANGHAI = timezone(timedelta(hours=8))
ENTRY = WatchEntry(
    entry_id=uuid.UUID("035efa25-9b08-423d-90c6-7fd994b2b8fd"),
    plate=parse_plate("鲁S247R3"),
    plate_colour=PlateColour.YELLOW,
    vehicle="宝马 重型半挂牵引车 蓝色",
    case_number="(2020)鲁8687执8499号",
    court="石家庄市长安区人民法院",
    action=Action.SEIZE,
    priority=Priority.NORMAL,
    valid_from=datetime(2025, 8, 7, 5, 4, 16, tzinfo=UTC),
    valid_until=datetime(2028, 7, 11, 0, 46, 2, 250000, tzinfo=UTC),
    status=EntryStatus.ACTIVE,
    version=3,
)
# The value as the pydantic model that wrote schema v1 until 2026-12 serialized it: what the topic holds.
WRITTEN_BEFORE = (
    '{"schema_version":1,"entry_id":"035efa25-9b08-423d-90c6-7fd994b2b8fd","plate":"鲁S247R3",'
    '"plate_colour":"yellow","vehicle":"宝马 重型半挂牵引车 蓝色","case_number":"(2020)鲁8687执8499号",'
    '"court":"石家庄市长安区人民法院","action":"seize","priority":"normal",'
    '"valid_from":"2025-08-07T05:04:16Z","valid_until":"2028-07-11T00:46:02.250000Z","status":"active",'
    '"version":3}'
).encode()


def value(**changes: object) -> bytes:
    """ENTRY's wire form with fields changed (``...`` deletes one)."""
    fields = orjson.loads(encode_entry(ENTRY))
    for name, new in changes.items():
        if new is ...:
            del fields[name]
        else:
            fields[name] = new
    return orjson.dumps(fields)


def test_an_entry_survives_the_round_trip() -> None:
    assert decode_entry(encode_entry(ENTRY)) == ENTRY
    released = replace(ENTRY, valid_until=None, status=EntryStatus.RELEASED)
    assert decode_entry(encode_entry(released)) == released


def test_the_encoder_writes_byte_for_byte_what_the_previous_one_wrote() -> None:
    assert decode_entry(WRITTEN_BEFORE) == ENTRY
    assert encode_entry(ENTRY) == WRITTEN_BEFORE  # history snapshots and readers of the topic unchanged


def test_times_are_held_in_utc_whatever_offset_they_were_written_with() -> None:
    entry = decode_entry(
        value(valid_from="2025-08-07T13:04:16+08:00", valid_until="2028-07-11T08:46:02+08:00")
    )
    assert entry.valid_from == ENTRY.valid_from.replace(microsecond=0)
    assert entry.valid_from.tzinfo is UTC  # the matcher compares these with a read's time in UTC
    assert entry.valid_until is not None
    assert entry.valid_until.tzinfo is UTC
    wire = msgspec.json.decode(encode_entry(ENTRY), type=WatchEntryV1)
    assert wire.to_entry().valid_from is wire.valid_from  # read with "Z": UTC already, not converted


def test_the_court_name_is_shared_between_entries() -> None:
    a, b = decode_entry(value()), decode_entry(value(entry_id=str(uuid.uuid4())))
    assert a.court is b.court  # a few hundred courts, a million entries


@pytest.mark.parametrize(
    ("raw", "field", "words"),
    [
        (value(version=0), "version", ">= 1"),
        (value(version="3"), "version", "int"),  # nothing is coerced
        (value(schema_version=2), "schema_version", "<= 1"),
        (value(plate=...), "plate", "missing"),
        (value(valid_until=...), "valid_until", "missing"),  # required, may be null
        (value(note="x"), "note", "unknown"),
        (value(plate_colour="YELLOW"), "plate_colour", "enum"),
        (value(status="lost"), "status", "enum"),
        (value(entry_id="not-a-uuid"), "entry_id", "UUID"),
        (value(valid_from="2025-08-07T05:04:16"), "valid_from", "timezone"),
        (value(valid_from=1754543056), "valid_from", "datetime"),
        (value(vehicle=None), "vehicle", "str"),
        (b"[1, 2]", None, "object"),
    ],
)
def test_a_broken_value_is_refused_naming_the_field(raw: bytes, field: str | None, words: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        decode_entry(raw)
    assert caught.value.reason == "invalid_watch_entry"
    assert caught.value.field == field
    assert words in str(caught.value)
    assert "`$." not in str(caught.value)  # the field is named at the start, not again at the end


@pytest.mark.parametrize(
    ("entry", "field"),
    [
        (replace(ENTRY, valid_from=datetime(2025, 8, 7, 5, 4, 16)), "valid_from"),  # noqa: DTZ001  # no offset
        (replace(ENTRY, version=0), "version"),
    ],
)
def test_the_encoder_refuses_what_a_worker_would_refuse(entry: WatchEntry, field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        encode_entry(entry)
    assert caught.value.field == field


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        (b'{"entry_id": ', "not JSON"),
        (value()[:-1] + b"} trailing", "not JSON"),
        (value().replace("宝马".encode(), b"\xb1\xa6\xc2\xed"), "not UTF-8"),  # GBK bytes: not ours to guess
        (value(valid_until="9999-12-31T23:59:59-01:00"), "out of range"),  # no UTC form
    ],
)
def test_a_value_that_is_no_entry_at_all_is_refused(raw: bytes, words: str) -> None:
    with pytest.raises(InvalidInput, match=words) as caught:
        decode_entry(raw)
    assert caught.value.reason == "invalid_watch_entry"


def test_a_plate_that_is_none_is_refused_with_the_plate_rule_broken() -> None:
    with pytest.raises(PlateError) as caught:
        decode_entry(value(plate="鲁S2I7R3"))  # I is never a serial letter
    assert caught.value.field == "plate"


# --- the follower's step over one record ------------------------------------------------------------


def record(key: bytes | None, value: bytes | None, offset: int = 0) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(
        WATCHLIST_CHANGES, 0, offset, 0, 0, key, value, None, len(key or b""), len(value or b""), ()
    )


def follower() -> WatchlistFollower:
    return WatchlistFollower(KafkaSettings(), WatchIndex())


def test_changes_are_upserted_and_removed_by_key() -> None:
    f = follower()
    key = str(ENTRY.entry_id).encode()
    assert f._apply(record(key, encode_entry(ENTRY))) == "upserted"
    assert f.index.get(ENTRY.entry_id) == ENTRY
    assert f._apply(record(key, None, 1)) == "removed"
    assert len(f.index) == 0


@pytest.mark.parametrize(
    "key", [None, b"", b"entry-1", b"\xff\xfe", b"{035efa25-9b08-423d-90c6-7fd994b2b8fd"]
)
def test_a_record_without_a_valid_entry_id_key_is_counted_invalid(key: bytes | None) -> None:
    f = follower()
    assert f._apply(record(key, encode_entry(ENTRY))) == "invalid"
    assert len(f.index) == 0


def test_an_entry_filed_under_another_key_is_refused() -> None:
    # Its release would be a tombstone under its own id, which would never remove it.
    f = follower()
    other = str(uuid.uuid4()).encode()
    assert f._apply(record(other, encode_entry(ENTRY))) == "invalid"
    assert len(f.index) == 0
    assert f.refused == {other}


def test_a_refused_key_is_held_until_a_change_under_it_applies() -> None:
    f = follower()
    key = str(ENTRY.entry_id).encode()
    assert f._apply(record(key, value(version=0))) == "invalid"
    assert f._apply(record(b"not-a-key", None, 1)) == "invalid"  # a release nobody can apply
    assert f.refused == {key, b"not-a-key"}
    assert f._apply(record(key, encode_entry(ENTRY), 2)) == "upserted"
    assert f.refused == {b"not-a-key"}
    assert f._apply(record(key, value(status="lost"), 3)) == "invalid"
    assert f._apply(record(key, None, 4)) == "removed"  # released: nothing left to watch
    assert f.refused == {b"not-a-key"}


def test_an_invalid_value_is_counted_and_leaves_the_index_alone() -> None:
    f = follower()
    key = str(ENTRY.entry_id).encode()
    assert f._apply(record(key, encode_entry(ENTRY))) == "upserted"
    assert f._apply(record(key, value(version=0), 1)) == "invalid"
    assert f.index.get(ENTRY.entry_id) == ENTRY
    assert f.refused == {key}
