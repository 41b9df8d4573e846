"""The watchlist index and the match of a read: kinds, scores, validity, versions."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from streams.matching import MatchKind, WatchIndex
from streams.plates import Plate, PlateError, parse_plate, read_plate, skeleton_key
from streams.vehicles import Action, EntryStatus, PlateColour, Priority
from streams.watchlist import WatchEntry

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def entry(plate: str, **changes: object) -> WatchEntry:
    base = WatchEntry(
        entry_id=uuid.uuid4(),
        plate=parse_plate(plate),
        plate_colour=PlateColour.BLUE,
        vehicle="白色 大众",
        case_number="(2024)浙1002执1号",
        court="椒江法院",
        action=Action.SEIZE,
        priority=Priority.NORMAL,
        valid_from=NOW - timedelta(days=30),
        valid_until=None,
        status=EntryStatus.ACTIVE,
        version=1,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def kinds(
    index: WatchIndex, read: str, colour: PlateColour = PlateColour.UNKNOWN, *, across: bool = True
) -> list[tuple[str, float]]:
    """The (kind, score) of each match; by default with every kind applying to every read."""
    return [
        (m.kind.value, m.score) for m in index.match(read_plate(read), colour, NOW, across_provinces=across)
    ]


@pytest.mark.parametrize(
    ("watched", "read", "expected"),
    [
        ("浙J12345", "浙J12345", [("exact", 1.0)]),
        ("浙J12345", "浙 j·12345", [("exact", 1.0)]),
        ("浙J12345", "苏J12345", [("province", 0.9)]),  # province character misread
        ("浙J12345", "J12345", [("province", 0.9)]),  # province character missing
        ("浙JD80123", "浙JD8O123", [("ocr", 0.8)]),  # O read for 0
        ("浙J8S520", "浙JB5S2D", [("ocr", 0.5)]),  # four confusions
        ("浙J12345", "皖JL2345", [("ocr_province", 0.7)]),  # province and 1→L
        ("浙J12345", "浙J12346", []),
        ("浙J12345", "浙K12345", []),
        ("粤Z1234港", "粤Z1234港", [("exact", 1.0)]),
        ("浙A1234学", "浙A1234警", []),
    ],
)
def test_match_kind_and_score(watched: str, read: str, expected: list[tuple[str, float]]) -> None:
    index = WatchIndex()
    index.apply(entry(watched))
    assert kinds(index, read) == expected


@pytest.mark.parametrize(
    ("watched", "read", "expected"),
    [
        ("浙J12345", "浙J12345", [("exact", 1.0)]),
        ("浙J12345", "苏J12345", []),  # a readable province is taken as read
        ("浙J12345", "J12345", [("province", 0.9)]),  # no province read: any province's entry
        ("浙J12345", "皖JL2345", []),
        ("浙J12345", "JL2345", [("ocr_province", 0.7)]),
        ("浙JD80123", "浙JD8O123", [("ocr", 0.8)]),
        ("使123456", "使123456", [("exact", 1.0)]),  # 使 plates have no province at all
        ("使123456", "使I23456", [("ocr", 0.8)]),
    ],
)
def test_kinds_ignoring_the_province_only_for_reads_without_one(
    watched: str, read: str, expected: list[tuple[str, float]]
) -> None:
    index = WatchIndex()
    index.apply(entry(watched))
    assert kinds(index, read, across=False) == expected


def test_colour_mismatch_lowers_the_score_but_keeps_the_match() -> None:
    index = WatchIndex()
    index.apply(entry("浙J12345"))
    assert kinds(index, "浙J12345", PlateColour.YELLOW) == [("exact", 0.95)]
    assert kinds(index, "浙J12345", PlateColour.BLUE) == [("exact", 1.0)]


def test_several_entries_best_first_each_once() -> None:
    index = WatchIndex()
    a = entry("浙J12345")
    b = entry("苏J12345")
    c = entry("浙J12345", case_number="(2025)浙1002执7号")
    for e in (a, b, c):
        index.apply(e)
    matches = index.match(read_plate("浙J12345"), PlateColour.UNKNOWN, NOW, across_provinces=True)
    assert [(m.entry.entry_id, m.kind) for m in matches][:2] in (
        [(a.entry_id, MatchKind.EXACT), (c.entry_id, MatchKind.EXACT)],
        [(c.entry_id, MatchKind.EXACT), (a.entry_id, MatchKind.EXACT)],
    )
    assert (matches[2].entry.entry_id, matches[2].kind) == (b.entry_id, MatchKind.PROVINCE)
    assert len(matches) == 3


def test_validity_period_is_respected() -> None:
    index = WatchIndex()
    index.apply(entry("浙J12345", valid_until=NOW))  # expired at NOW
    index.apply(entry("浙J54321", valid_from=NOW + timedelta(hours=1)))  # not yet in force
    assert kinds(index, "浙J12345") == []
    assert kinds(index, "浙J54321") == []
    assert len(index) == 2


def test_release_removes_every_key_and_old_versions_are_ignored() -> None:
    index = WatchIndex()
    e = entry("浙J12345")
    index.apply(e)
    index.apply(replace(e, status=EntryStatus.RELEASED, version=2))
    assert len(index) == 0
    for read in ("浙J12345", "苏J12345", "浙JL2345", "J12345"):
        assert kinds(index, read) == [], read
    index.apply(e)  # a replayed older change must not resurrect it... once a newer one was indexed
    assert len(index) == 1  # …but the index only remembers live entries: the follower applies in order
    index.apply(replace(e, version=3, plate=parse_plate("浙J99999")))
    index.apply(e)  # version 1 after version 3: ignored
    assert kinds(index, "浙J12345") == []
    assert kinds(index, "浙J99999") == [("exact", 1.0)]


def test_remove_keeps_other_entries_under_the_same_key() -> None:
    index = WatchIndex()
    a = entry("浙J12345")
    b = entry("苏J12345")
    index.apply(a)
    index.apply(b)
    index.remove(a.entry_id)
    assert kinds(index, "浙J12345") == [("province", 0.9)]
    index.remove(uuid.uuid4())  # unknown id: nothing happens
    assert len(index) == 1
    key = skeleton_key("浙J12345".encode())
    assert not index.may_match(key, across_provinces=False)  # 浙J12345's own keys went with it
    assert index.may_match(key, across_provinces=True)  # the tail key 苏J12345 shares stayed
    index.remove(b.entry_id)
    assert not index.may_match(key, across_provinces=True)
    assert not index.skeleton_keys


def test_soft_seal_and_locate_entries_still_match() -> None:
    index = WatchIndex()
    index.apply(entry("浙J12345", action=Action.SOFT_SEAL))
    index.apply(entry("浙J22222", action=Action.LOCATE))
    for read, action in (("浙J12345", Action.SOFT_SEAL), ("浙J22222", Action.LOCATE)):
        matches = index.match(read_plate(read), PlateColour.UNKNOWN, NOW, across_provinces=False)
        assert [m.entry.action for m in matches] == [action]


@pytest.mark.parametrize(
    "read", ["浙J12345", "苏J12345", "J12345", "皖JL2345", "浙J12346", "浙JD8O123", "使123456", "WJ12345"]
)
def test_the_skeleton_key_of_a_record_key_is_the_parsed_reads_skeleton(read: str) -> None:
    plate = read_plate(read)
    assert skeleton_key(plate.text.encode()) == plate.skeleton.encode()


_CONFUSED = st.sampled_from("0ODQ1IL78B5S2Z6GAJKX")


@st.composite
def _watched_and_read(draw: st.DrawFn, provinces: list[str]) -> tuple[Plate, Plate]:
    """A watched 浙J plate and a camera's read of it: up to three characters confused, some province."""
    serial = draw(st.text(_CONFUSED, min_size=5, max_size=5))
    watched = parse_plate("浙J" + serial.replace("O", "0").replace("I", "1"))
    chars = list(watched.text[2:])
    for position, ch in draw(st.lists(st.tuples(st.integers(0, 4), _CONFUSED), max_size=3)):
        chars[position] = ch
    try:
        read = read_plate(draw(st.sampled_from(provinces)) + "J" + "".join(chars))
    except PlateError:
        assume(False)
        raise
    return watched, read


@given(plates=_watched_and_read(["浙", "苏", "粤", ""]), across=st.booleans())
def test_a_read_the_key_rules_out_never_matches(plates: tuple[Plate, Plate], across: bool) -> None:
    watched, read = plates
    index = WatchIndex()
    index.apply(entry(watched.text))
    may = index.may_match(skeleton_key(read.text.encode()), across_provinces=across)
    if read.province is None or across:
        assert may == (read.skeleton_tail == watched.skeleton_tail)
    else:
        assert may == (read.skeleton == watched.skeleton)
    if index.match(read, PlateColour.UNKNOWN, NOW, across_provinces=across):
        assert may, f"{read.text} matches {watched.text} but its key rules it out"


@given(plates=_watched_and_read(["浙", "苏", "粤", "", "使"]), across=st.booleans())
def test_a_read_its_plate_rules_out_has_only_ocr_matches(plates: tuple[Plate, Plate], across: bool) -> None:
    watched, read = plates
    index = WatchIndex()
    index.apply(entry(watched.text))
    index.apply(entry("使014578"))
    may = index.may_match_by_plate(read.text.encode(), across_provinces=across)
    plain = [
        m.kind
        for m in index.match(read, PlateColour.UNKNOWN, NOW, across_provinces=across)
        if m.kind in (MatchKind.EXACT, MatchKind.PROVINCE)
    ]
    assert may == bool(plain), f"{read.text} vs {watched.text}: {plain}"


def test_the_plate_check_lets_through_what_may_match_by_plate() -> None:
    index = WatchIndex()
    index.apply(entry("浙J12345"))
    index.apply(entry("使014578"))

    def may(read: str, across: bool = False) -> bool:
        return index.may_match_by_plate(read.encode(), across_provinces=across)

    assert [may("浙J12345"), may("J12345"), may("使014578")] == [True, True, True]
    assert [may("苏J12345"), may("苏J12345", across=True)] == [False, True]
    assert [may("浙J12346"), may("浙JL2345")] == [False, False]  # an ocr match at most
    assert index.may_match_by_plate(b"\xff\xfe", across_provinces=False)  # not UTF-8: the full path


# A few ids and plates that share keys (浙J12345 / 苏J12345 share a tail, 浙J1234S / 浙J12345 a skeleton,
# 使 plates have one skeleton key), applied and removed in any order, with any version and status.
_IDS = [uuid.UUID(int=n) for n in range(1, 5)]
_PLATES = ["浙J12345", "苏J12345", "浙J1234S", "浙JL2345", "使014578"]
_STEPS = st.lists(
    st.tuples(
        st.sampled_from(_IDS),
        st.sampled_from([*_PLATES, None]),  # None: a removal (tombstone)
        st.integers(1, 4),
        st.sampled_from([EntryStatus.ACTIVE, EntryStatus.ACTIVE, EntryStatus.RELEASED]),
    ),
    max_size=25,
)


@given(steps=_STEPS)
def test_the_tables_hold_exactly_the_keys_of_the_live_entries(
    steps: list[tuple[uuid.UUID, str | None, int, EntryStatus]],
) -> None:
    index = WatchIndex()
    live: dict[uuid.UUID, WatchEntry] = {}  # the reference: latest state per id, active only
    versions: dict[uuid.UUID, int] = {}
    for entry_id, plate, version, status in steps:
        if plate is None:
            index.remove(entry_id)
            live.pop(entry_id, None)
            versions.pop(entry_id, None)
            continue
        e = entry(plate, entry_id=entry_id, version=version, status=status)
        index.apply(e)
        if entry_id in live and versions[entry_id] > version:
            continue  # an older state than the indexed one: ignored
        versions[entry_id] = version
        if status is EntryStatus.ACTIVE:
            live[entry_id] = e
        else:
            live.pop(entry_id, None)
            versions.pop(entry_id, None)
    expected: dict[tuple[str, object], list[WatchEntry]] = {}
    for e in live.values():
        p = e.plate
        keys = [("exact", p.text), ("tail", p.tail), ("skeletons", p.skeleton.encode())]
        if p.province is not None:
            keys.append(("skeletons", p.skeleton_tail.encode()))
        for key in keys:
            expected.setdefault(key, []).append(e)
    tables: dict[str, dict[Any, Any]] = {
        "exact": index._exact,
        "tail": index._tail,
        "skeletons": index._skeletons,
    }
    found = {
        (name, key): list(held) if isinstance(held, tuple) else [held]
        for name, table in tables.items()
        for key, held in table.items()
    }
    assert {k: sorted(v, key=str) for k, v in found.items()} == {
        k: sorted(v, key=str) for k, v in expected.items()
    }
    assert all(len(held) == len(set(map(id, held))) for held in found.values())  # each entry once per key
    assert index.skeleton_keys == {key for name, key in expected if name == "skeletons"}
    assert {e.entry_id: e for e in index} == live
