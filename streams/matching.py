"""The in-memory watchlist index of a matcher worker and the match of one plate read against it.

A read is looked up under four keys, each a single dictionary lookup on a key computed once per entry
when it is indexed and once per read (:class:`streams.plates.Plate` carries them):

================  =====================================================  ==============================
kind              when                                                   score
================  =====================================================  ==============================
``exact``         normalized plates equal                                1.0
``province``      equal but for the province character (misread/missing) 0.9
``ocr``           equal confusion skeleton (0/O/D/Q, 1/I/L/7, 8/B, …)    0.9 − 0.1 per differing char
``ocr_province``  equal skeleton but for the province character          0.8 − 0.1 per differing char
================  =====================================================  ==============================

The two kinds that ignore the province apply to a read **without a province character** (the camera did
not read it) unless ``across_provinces`` is set: with a watchlist of a million vehicles, a fifth of all
reads of unwatched cars share their last six characters (skeleton) with some entry of another province
(粤A12345 read, 浙A12345 watched), and paging on each would bury the officers. A watched car whose
province is misread is caught at its next read (docs/design.md, docs/performance.md).

A known plate colour that differs from the entry's lowers the score by 0.05 and never rejects a match:
cameras misjudge colour at night. Which kinds become hits, and the minimum score, is configuration
(:class:`streams.settings.MatchSettings`); every match is reported with its kind and score.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Iterator
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeAlias

from streams.plates import PROVINCE_BYTES, PROVINCES, Plate, confusion_distance
from streams.vehicles import PlateColour
from streams.watchlist import WatchEntry


class MatchKind(enum.StrEnum):
    EXACT = "exact"
    PROVINCE = "province"
    OCR = "ocr"
    OCR_PROVINCE = "ocr_province"


_COLOUR_MISMATCH_PENALTY = 0.05
_FLOOR = 0.1


_Held: TypeAlias = "WatchEntry | tuple[WatchEntry, ...]"


def _as_tuple(held: _Held | None) -> tuple[WatchEntry, ...]:
    if held is None:
        return ()
    return held if isinstance(held, tuple) else (held,)


def _add(table: dict[Any, _Held], key: str | bytes, entry: WatchEntry) -> None:
    held = table.get(key)
    if held is None:
        table[key] = entry
    elif isinstance(held, tuple):
        table[key] = (*held, entry)
    else:
        table[key] = (held, entry)


@dataclass(frozen=True, slots=True)
class Match:
    entry: WatchEntry
    kind: MatchKind
    score: float


class WatchIndex:
    """Active watch entries by id, and under each match key."""

    def __init__(self) -> None:
        self._entries: dict[uuid.UUID, WatchEntry] = {}
        # key -> its one entry, or a tuple of entries when several share the key. Almost every key has
        # exactly one: a bare entry saves a tuple per key (four per entry, ~200 MB at a million). Entries,
        # not their ids: a match then costs no lookup by id (a UUID's hash is computed in Python).
        self._exact: dict[str, _Held] = {}
        self._tail: dict[str, _Held] = {}
        # Both skeleton keys of every entry in one table, as UTF-8 bytes: a skeleton starts with its
        # province (a 3-byte character), a skeleton tail with an ASCII letter, so the two never collide,
        # and the key of a sightings record (the read's normalized plate, bytes) is looked up as it comes.
        self._skeletons: dict[bytes, _Held] = {}
        # The same keys again as a set, for the per-read check alone: a set stores each key's hash in its
        # own table slot, a dict behind an index array, so a lookup that finds nothing (almost every
        # read) touches one random place in memory instead of two: the stage's cost per read 22 % less at
        # a million entries, side by side (0.46 -> 0.36 us), for 64 MB (docs/performance.md).
        self._skeleton_set: set[bytes] = set()

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[WatchEntry]:
        return iter(self._entries.values())

    def get(self, entry_id: uuid.UUID) -> WatchEntry | None:
        return self._entries.get(entry_id)

    def apply(self, entry: WatchEntry) -> None:
        """Index the entry's latest state: active entries are (re)indexed, others removed.

        A state older than the indexed one (lower version) is ignored, so a replayed or reordered change
        never resurrects a released entry.
        """
        # A worker applies its whole watchlist before it may match (a million entries at province scale),
        # so this is written for the common case, a new entry: one lookup by id (a UUID's hash is Python),
        # no removal, its keys added inline.
        entries = self._entries
        entry_id = entry.entry_id
        current = entries.get(entry_id)
        if current is not None:
            if current.version > entry.version:
                return
            self.remove(entry_id)
        if entry.status.value != "active":
            return
        entries[entry_id] = entry
        plate = entry.plate
        _add(self._exact, plate.text, entry)
        _add(self._tail, plate.tail, entry)
        skeletons, skeleton_set = self._skeletons, self._skeleton_set
        key = plate.skeleton.encode()
        _add(skeletons, key, entry)
        skeleton_set.add(key)
        if plate.province is not None:  # else (使 plates) the tail is the whole plate: one key, not two
            key = plate.skeleton_tail.encode()
            _add(skeletons, key, entry)
            skeleton_set.add(key)

    def remove(self, entry_id: uuid.UUID) -> None:
        entry = self._entries.pop(entry_id, None)
        if entry is None:
            return
        for table, key in self._keyed(entry):
            remaining = tuple(e for e in _as_tuple(table.get(key)) if e.entry_id != entry_id)
            if len(remaining) > 1:
                table[key] = remaining
            elif remaining:
                table[key] = remaining[0]
            else:
                table.pop(key, None)
                if isinstance(key, bytes):
                    self._skeleton_set.discard(key)

    def _keyed(self, entry: WatchEntry) -> list[tuple[dict[Any, _Held], str | bytes]]:
        plate = entry.plate
        keyed: list[tuple[dict[Any, _Held], str | bytes]] = [
            (self._exact, plate.text),
            (self._tail, plate.tail),
            (self._skeletons, plate.skeleton.encode()),
        ]
        if plate.province is not None:  # else (使 plates) the tail is the whole plate: one key, not two
            keyed.append((self._skeletons, plate.skeleton_tail.encode()))
        return keyed

    @property
    def skeleton_keys(self) -> AbstractSet[bytes]:
        """Every entry's skeleton and skeleton tail as UTF-8 bytes (see :meth:`may_match`).

        For the match stage's per-read loop, which looks keys up inline rather than through a call.
        """
        return self._skeleton_set

    def may_match(self, key: bytes, *, across_provinces: bool) -> bool:
        """False when no entry can match a read whose :func:`~streams.plates.skeleton_key` is ``key``.

        ``exact`` implies ``ocr`` (equal plates, equal skeletons) and ``province`` implies ``ocr_province``;
        a read with a province matches by skeleton, one without by skeleton tail, which for it is its
        skeleton. So one lookup rules a read out, two when the kinds ignoring a read province apply.
        """
        if key in self._skeleton_set:
            return True
        return across_provinces and key[:3] in PROVINCE_BYTES and key[3:] in self._skeleton_set

    def may_match_by_plate(self, plate: bytes, *, across_provinces: bool) -> bool:
        """False when no entry can match a read whose normalized plate is ``plate`` (UTF-8, a sightings
        record's key) by the kinds that compare plates, not skeletons: ``exact`` and ``province``.

        For a match stage whose OCR kinds make no hit (:attr:`MatchSettings.fuzzy_hits`): a read that
        :meth:`may_match` lets through only for its skeleton need not be decoded. A key that is not
        UTF-8 is no connector's: True, so the full path decides (and dead-letters what is wrong).
        """
        try:
            text = plate.decode()
        except UnicodeDecodeError:
            return True
        if text in self._exact:  # also a read without a province that is a 使 plate
            return True
        if text[:1] in PROVINCES:  # as :meth:`match`: the tail only across provinces
            return across_provinces and text[1:] in self._tail
        return text in self._tail

    def match(
        self, plate: Plate, colour: PlateColour, at: datetime, *, across_provinces: bool
    ) -> list[Match]:
        """Every entry in force at ``at`` that the read may be, best first, each entry once.

        ``across_provinces``: whether the kinds that ignore the province apply to a read that has one.
        """
        exact = self._exact.get(plate.text)  # a read without a province can still be a 使 plate
        if plate.province is None:  # its tail and skeleton tail are its text and skeleton
            skeleton = None
            tail = self._tail.get(plate.text)
            skeleton_tail = self._skeletons.get(plate.skeleton.encode())
        else:
            skeleton = self._skeletons.get(plate.skeleton.encode())
            tail = skeleton_tail = None
            if across_provinces:
                tail = self._tail.get(plate.tail)
                skeleton_tail = self._skeletons.get(plate.skeleton_tail.encode())
        if not (exact or tail or skeleton or skeleton_tail):
            return []  # the hot path: almost every read ends here
        at = at.astimezone(UTC)  # entries hold UTC times (WatchEntryV1.to_entry): compared the fast way
        found: dict[int, Match] = {}  # by id(entry): each entry once, under its first (best) kind
        for held, kind in (
            (exact, MatchKind.EXACT),
            (tail, MatchKind.PROVINCE),
            (skeleton, MatchKind.OCR),
            (skeleton_tail, MatchKind.OCR_PROVINCE),
        ):
            if held is None:
                continue
            for entry in held if isinstance(held, tuple) else (held,):
                if id(entry) in found or not entry.in_force(at):
                    continue
                # A read without a province shares its skeleton with an entry's skeleton tail
                # (``ocr_province``) or with a 使 plate's skeleton, which has no province either (``ocr``).
                as_kind = (
                    MatchKind.OCR if kind is MatchKind.OCR_PROVINCE and entry.plate.province is None else kind
                )
                found[id(entry)] = Match(entry, as_kind, _score(as_kind, plate, entry, colour))
        if len(found) == 1:
            return list(found.values())
        return sorted(found.values(), key=lambda m: m.score, reverse=True)


def _score(kind: MatchKind, plate: Plate, entry: WatchEntry, colour: PlateColour) -> float:
    if kind is MatchKind.EXACT:
        score = 1.0
    elif kind is MatchKind.PROVINCE:
        score = 0.9
    elif kind is MatchKind.OCR:
        score = 0.9 - 0.1 * confusion_distance(plate.text, entry.plate.text)
    else:
        score = 0.8 - 0.1 * confusion_distance(plate.tail, entry.plate.tail)
    if PlateColour.UNKNOWN not in (colour, entry.plate_colour) and colour != entry.plate_colour:
        score -= _COLOUR_MISMATCH_PENALTY
    return round(max(score, _FLOOR), 2)
