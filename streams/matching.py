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

A known plate colour that differs from the entry's lowers the score by 0.05 and never rejects a match:
cameras misjudge colour at night. Which kinds become hits, and the minimum score, is configuration
(:class:`streams.settings.MatchSettings`); every match is reported with its kind and score.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TypeAlias

from streams.plates import Plate, confusion_distance
from streams.vehicles import PlateColour
from streams.watchlist import WatchEntry


class MatchKind(enum.StrEnum):
    EXACT = "exact"
    PROVINCE = "province"
    OCR = "ocr"
    OCR_PROVINCE = "ocr_province"


_COLOUR_MISMATCH_PENALTY = 0.05
_FLOOR = 0.1


_Ids: TypeAlias = uuid.UUID | tuple[uuid.UUID, ...]


def _as_tuple(ids: _Ids | None) -> tuple[uuid.UUID, ...]:
    if ids is None:
        return ()
    return ids if isinstance(ids, tuple) else (ids,)


@dataclass(frozen=True, slots=True)
class Match:
    entry: WatchEntry
    kind: MatchKind
    score: float


class WatchIndex:
    """Active watch entries by id, and their ids under each match key."""

    def __init__(self) -> None:
        self._entries: dict[uuid.UUID, WatchEntry] = {}
        # key -> the id of its one entry, or a tuple of ids when several share the key. Almost every key
        # has exactly one: a bare id saves a tuple per key (four per entry, ~200 MB at a million).
        self._exact: dict[str, _Ids] = {}
        self._tail: dict[str, _Ids] = {}
        self._skeleton: dict[str, _Ids] = {}
        self._skeleton_tail: dict[str, _Ids] = {}

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
        current = self._entries.get(entry.entry_id)
        if current is not None and current.version > entry.version:
            return
        self.remove(entry.entry_id)
        if entry.status.value == "active":
            self._entries[entry.entry_id] = entry
            for table, key in self._keyed(entry):
                held = table.get(key)
                if held is None:
                    table[key] = entry.entry_id
                elif isinstance(held, tuple):
                    table[key] = (*held, entry.entry_id)
                else:
                    table[key] = (held, entry.entry_id)

    def remove(self, entry_id: uuid.UUID) -> None:
        entry = self._entries.pop(entry_id, None)
        if entry is None:
            return
        for table, key in self._keyed(entry):
            remaining = tuple(i for i in _as_tuple(table.get(key)) if i != entry_id)
            if len(remaining) > 1:
                table[key] = remaining
            elif remaining:
                table[key] = remaining[0]
            else:
                table.pop(key, None)

    def _keyed(self, entry: WatchEntry) -> tuple[tuple[dict[str, _Ids], str], ...]:
        plate = entry.plate
        return (
            (self._exact, plate.text),
            (self._tail, plate.tail),
            (self._skeleton, plate.skeleton),
            (self._skeleton_tail, plate.skeleton_tail),
        )

    def may_match(self, key: str) -> bool:
        """False when no entry can match a read with this :func:`~streams.plates.match_key`.

        Every kind implies equal ``skeleton_tail`` (equal text, equal tail and equal skeleton each do,
        the province being one CJK character the skeleton keeps), so one lookup rules a read out.
        """
        return key in self._skeleton_tail

    def match(self, plate: Plate, colour: PlateColour, at: datetime) -> list[Match]:
        """Every entry in force at ``at`` that the read may be, best first, each entry once."""
        exact = self._exact.get(plate.text)
        tail = self._tail.get(plate.tail)
        skeleton = self._skeleton.get(plate.skeleton)
        skeleton_tail = self._skeleton_tail.get(plate.skeleton_tail)
        if not (exact or tail or skeleton or skeleton_tail):
            return []  # the hot path: almost every read ends here
        found: dict[uuid.UUID, Match] = {}
        for ids, kind in (
            (exact, MatchKind.EXACT),
            (tail, MatchKind.PROVINCE),
            (skeleton, MatchKind.OCR),
            (skeleton_tail, MatchKind.OCR_PROVINCE),
        ):
            for entry_id in _as_tuple(ids):
                entry = self._entries[entry_id]
                if entry_id in found or not entry.in_force(at):
                    continue
                found[entry_id] = Match(entry, kind, _score(kind, plate, entry, colour))
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
