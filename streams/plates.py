"""Chinese licence plates (GA 36): normalization, strict and lenient parsing, OCR-confusion keys."""

from __future__ import annotations

import enum
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Final

from streams.errors import InvalidInput

__all__ = [
    "PROVINCES",
    "PROVINCE_BYTES",
    "REASONS",
    "SUFFIXES",
    "Plate",
    "PlateError",
    "PlateShape",
    "confusion_distance",
    "mask",
    "normalize",
    "parse_plate",
    "read_plate",
    "skeleton",
    "skeleton_key",
]

_PROVINCE_CHARS: Final = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼"
PROVINCES: Final[frozenset[str]] = frozenset(_PROVINCE_CHARS)
# Each province as UTF-8: every one is a 3-byte character (the first three bytes of a skeleton key).
PROVINCE_BYTES: Final[frozenset[bytes]] = frozenset(p.encode() for p in _PROVINCE_CHARS)
SUFFIXES: Final[tuple[str, ...]] = ("学", "警", "挂", "港", "澳", "使", "领", "应急")

REASONS: Final[frozenset[str]] = frozenset(
    {
        "empty",
        "illegal_character",
        "bad_length",
        "unknown_province",
        "bad_authority",
        "bad_serial",
        "bad_new_energy",
        "bad_suffix",
        "no_plate",
    }
)


class PlateShape(enum.StrEnum):
    """Which GA 36 layout a plate follows; the last two occur only in lenient camera reads."""

    ORDINARY = "ordinary"
    NEW_ENERGY_SMALL = "new_energy_small"
    NEW_ENERGY_LARGE = "new_energy_large"
    SUFFIX = "suffix"
    NO_PROVINCE = "no_province"
    NONSTANDARD = "nonstandard"


class PlateError(InvalidInput):
    """Not a Chinese plate; ``reason`` is one of :data:`REASONS`."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(reason, message, field="plate")


# --- character classes -------------------------------------------------------------------------------

_DIGITS: Final = "0123456789"
# Authority letter: A–Z except I; O stays legal for historic police plates (京O).
_AUTHORITY: Final = frozenset("ABCDEFGHJKLMNOPQRSTUVWXYZ")
_ENERGY: Final = frozenset("DF")
_SINGLE_SUFFIXES: Final = frozenset(s for s in SUFFIXES if len(s) == 1)
_SUFFIX_CHARS: Final = frozenset("".join(SUFFIXES))
# Every character a normalized plate may contain; anything else is illegal before any other rule.
_LEGAL: Final = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ" + _DIGITS) | PROVINCES | _SUFFIX_CHARS
_ASCII_LETTERS: Final = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
_DIGIT_SET: Final = frozenset(_DIGITS)

_P = _PROVINCE_CHARS
_A = "A-HJ-Z"
_S = "A-HJ-NP-Z0-9"
# One regex for every valid strict shape; each alternative is a single named group whose name is the
# PlateShape value, so ``lastgroup`` gives the shape without a second pass. [0-9] rather than \d: \d
# matches non-ASCII digits that NFKC leaves alone.
_VALID: Final = re.compile(
    rf"(?P<ordinary>[{_P}][{_A}][{_S}]{{5}})"
    rf"|(?P<new_energy_small>[{_P}][{_A}][DF][{_S}][0-9]{{4}})"
    rf"|(?P<new_energy_large>[{_P}][{_A}][0-9]{{5}}[DF])"
    rf"|(?P<suffix>[{_P}][{_A}][{_S}]{{4}}(?:学|警|挂|领|应急)|粤Z[{_S}]{{4}}[港澳]|使[0-9]{{6}})"
)
_SHAPE_BY_GROUP: Final = {shape.value: shape for shape in PlateShape}

# Lenient plausibility: ASCII letters/digits with at most a leading province (or 使) and a trailing suffix.
_PLAUSIBLE: Final = re.compile(rf"(?P<lead>[{_P}使])?[A-Z0-9]+(?P<suffix>应急|[学警挂港澳使领])?")
_MIN_READ, _MAX_READ = 5, 9

# What Chinese ANPR cameras emit when they saw no plate; compared after normalize (so upper case).
_NO_PLATE: Final = frozenset({"无牌", "无车牌", "未识别", "车牌", "无", "NOPLATE", "UNKNOWN"})

_CJK: Final = re.compile("[\u3400-\u4dbf\u4e00-\u9fff]")

# --- normalization -----------------------------------------------------------------------------------

# Every character str.isspace() accepts (tests check the list stays complete), written out so import does
# not scan the whole code space.
_WHITESPACE: Final = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680"
    "\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000"
)
# Beyond the listed separators: Unicode dashes and minus (word processors turn "-" into them) and
# zero-width characters that survive copy-paste from spreadsheets; none can be part of a plate.
_SEPARATORS: Final = (
    "·・•-_.．" + "\u2010\u2011\u2012\u2013\u2014\u2015\u2212" + "\u200b\u200c\u200d\u2060\ufeff"
)
_DELETE: Final = str.maketrans("", "", _WHITESPACE + _SEPARATORS)
# Already-normalized input (the usual camera read) is returned as is, without allocating.
_CANONICAL: Final = re.compile(rf"[A-Z0-9{_P}学警挂港澳使领应急]*")
# NFKC, upper-casing and separator removal can each undo another's work on exotic text (upper-casing can
# produce a decomposed sequence, removing a separator can join a base and a combining mark); repeating to
# a fixed point keeps normalize idempotent. Real input settles in one pass, exotic text in two or three.
_MAX_PASSES: Final = 4


def normalize(raw: str) -> str:
    """Canonical form of a plate string: NFKC, upper case, no whitespace or separators; never raises."""
    if _CANONICAL.fullmatch(raw):
        return raw
    if raw.isascii():
        # NFKC is the identity on ASCII.
        return raw.translate(_DELETE).upper()
    text = raw
    for _ in range(_MAX_PASSES):
        settled = unicodedata.normalize("NFKC", text).upper().translate(_DELETE)
        if settled == text:
            break
        text = settled
    return text


# --- OCR confusion keys ------------------------------------------------------------------------------

_CONFUSIONS: Final = {"0": "OoDdQq", "1": "IiLl7", "8": "Bb", "5": "Ss", "2": "Zz", "6": "Gg"}
# Lower-case forms are mapped too, so a caller passing un-normalized text still gets a usable key.
_SKELETON: Final = str.maketrans({ch: rep for rep, group in _CONFUSIONS.items() for ch in group})
# The same table over UTF-8 bytes: every confusable is ASCII and no byte of a multi-byte UTF-8 sequence is,
# so translating the encoded text is exact, and about twice as fast as str.translate on text holding a
# Chinese character (str.translate only has a fast path for pure-ASCII text).
SKELETON_BYTES: Final = bytes.maketrans(
    "".join(_CONFUSIONS.values()).encode(),
    "".join(rep * len(group) for rep, group in _CONFUSIONS.items()).encode(),
)


def skeleton(text: str) -> str:
    """Map every character to the representative of its OCR confusion class (0/O/D/Q → 0, …)."""
    try:
        return text.encode().translate(SKELETON_BYTES).decode()
    except UnicodeEncodeError:
        # Lone surrogates cannot be encoded; they never occur in a plate, only in hostile input.
        return text.translate(_SKELETON)


def confusion_distance(a: str, b: str) -> int:
    """Positions where two equal-length strings differ; ``max(len)`` when the lengths differ."""
    if len(a) != len(b):
        return max(len(a), len(b))
    return sum(x != y for x, y in zip(a, b, strict=True))


def mask(text: str) -> str:
    """Plate for logs: first three and last character kept (浙A1***5); short strings become ``***``."""
    if len(text) < 5:
        return "***"
    return f"{text[:3]}{'*' * (len(text) - 4)}{text[-1]}"


# --- the plate ---------------------------------------------------------------------------------------


_set = object.__setattr__  # frozen dataclass: derived fields are set the way its own __init__ does


@dataclass(frozen=True, slots=True)
class Plate:
    """A parsed plate and its matching keys (derived once, at construction)."""

    text: str
    shape: PlateShape
    province: str | None
    suffix: str | None
    # Derived from text and province; excluded from eq/hash because they add nothing to identity.
    tail: str = field(init=False, compare=False)
    skeleton: str = field(init=False, compare=False)
    skeleton_tail: str = field(init=False, compare=False)

    def __post_init__(self) -> None:
        full = skeleton(self.text)
        # The province is a single CJK character, which the skeleton leaves in place, so slicing the
        # skeleton equals the skeleton of the tail.
        start = 1 if self.province else 0
        _set(self, "tail", self.text[start:])
        _set(self, "skeleton", full)
        _set(self, "skeleton_tail", full[start:])


def is_strict_plate(text: str) -> bool:
    """Whether ``text`` is already a normalized, valid (GA 36) plate: one regular-expression match.

    What :func:`parse_plate` accepts unchanged; the match stage's quick check that a read is a plate.
    """
    return _VALID.fullmatch(text) is not None


def skeleton_key(plate: bytes) -> bytes:
    """The confusion skeleton of a normalized plate given as UTF-8 bytes (a sightings record's key).

    Equals ``read_plate(text).skeleton.encode()`` for the normalized text whose UTF-8 bytes are ``plate``:
    every confusable is ASCII, so the byte table maps exactly what :func:`skeleton` maps. The match stage
    looks this key up in :attr:`streams.matching.WatchIndex.skeleton_keys` without decoding the record.
    """
    return plate.translate(SKELETON_BYTES)


def _match(text: str) -> Plate | None:
    """The strict plate for a normalized text, or None; the fast path, no error reporting."""
    m = _VALID.fullmatch(text)
    if m is None or m.lastgroup is None:
        return None
    shape = _SHAPE_BY_GROUP[m.lastgroup]
    head = text[0]
    province = head if head in PROVINCES else None
    suffix: str | None = None
    if shape is PlateShape.SUFFIX:
        suffix = "使" if head == "使" else ("应急" if text.endswith("应急") else text[-1])
    return Plate(text, shape, province, suffix)


def _char(ch: str) -> str:
    # The code point tells look-alikes apart (Cyrillic А, a stray control character) in a clerk's message.
    return repr(ch) if ch.isascii() and ch.isprintable() else f"{ch!r} (U+{ord(ch):04X})"


def _check_authority(ch: str) -> tuple[str, str] | None:
    if ch in _AUTHORITY:
        return None
    if ch == "I":
        return "bad_authority", "letter I is not used as the issuing-authority letter (1?)"
    return (
        "bad_authority",
        f"the issuing-authority letter (A–Z except I) must follow the province, not {ch!r}",
    )


def _check_serial(serial: str) -> tuple[str, str] | None:
    for ch in serial:
        if ch == "O":
            return "bad_serial", "letter O is not used in plate serials (0?)"
        if ch == "I":
            return "bad_serial", "letter I is not used in plate serials (1?)"
    return None


def _diagnose(text: str) -> tuple[str, str] | None:
    """Why a normalized text is not a strict plate: (reason, explanation), or None when it is one.

    Mirrors ``_VALID`` rule by rule (a test checks they agree); the order of the checks decides which
    reason a clerk sees when several rules are broken, most basic first.
    """
    if not text:
        return "empty", "no plate given"
    for i, ch in enumerate(text):
        if ch not in _LEGAL:
            if i == 0 and _CJK.match(ch):
                return "unknown_province", f"{ch!r} is not a province abbreviation"
            return "illegal_character", f"character {_char(ch)} cannot appear on a plate"
    head = text[0]
    if head == "使":
        if len(text) != 7:
            return "bad_length", "embassy plates are 使 followed by 6 digits (使014578)"
        if not _DIGIT_SET.issuperset(text[1:]):
            return "bad_serial", "embassy plates are 使 followed by 6 digits (使014578)"
        return None
    if head not in PROVINCES:
        if head in _LEGAL and not _CJK.match(head):
            return "unknown_province", "the province abbreviation (浙, 京, 粤, …) is missing"
        return "unknown_province", f"{head!r} is not a province abbreviation"

    rest = text[1:]
    suffix = ""
    if rest.endswith("应急"):
        suffix = "应急"
    elif rest and rest[-1] in _SINGLE_SUFFIXES:
        suffix = rest[-1]
    body = rest[: len(rest) - len(suffix)]
    for ch in body:
        if ch in PROVINCES:
            return "illegal_character", f"{ch!r}: the province abbreviation comes first, and only once"
        if ch in ("应", "急"):
            return "bad_suffix", "应急 is a suffix and ends the plate whole (京A1234应急)"
        if ch in _SUFFIX_CHARS:
            return "bad_suffix", f"{ch!r} can only end a plate (浙A1234{ch})"

    if suffix:
        if suffix == "使":
            return "bad_suffix", "embassy plates start with 使 (使014578)"
        if suffix in ("港", "澳") and (head != "粤" or not body.startswith("Z")):
            return "bad_suffix", f"{suffix} plates are issued only as 粤Z (粤Z1234{suffix})"
        if len(body) != 5:
            return (
                "bad_length",
                f"a {suffix} plate has a letter and 4 characters before {suffix} (浙A1234{suffix})",
            )
        return _check_authority(body[0]) or _check_serial(body[1:])

    if len(body) not in (6, 7):
        return (
            "bad_length",
            f"{len(text)} characters: plates have 7 (浙A12345), new-energy plates 8 (浙AD12345, 浙A12345D)",
        )
    failure = _check_authority(body[0]) or _check_serial(body[1:])
    if failure or len(body) == 6:
        return failure
    # Eight characters: only the two new-energy shapes exist. A letter in either D/F slot reads as a
    # new-energy attempt; all digits reads as an ordinary plate with one character too many.
    if body[1] in _ENERGY:
        if _DIGIT_SET.issuperset(body[3:]):
            return None
        return "bad_new_energy", "small new-energy plates end with 4 digits (浙AD12345, 浙AFA1234)"
    if body[6] in _ENERGY:
        if _DIGIT_SET.issuperset(body[1:6]):
            return None
        return "bad_new_energy", "large new-energy plates have 5 digits before the final D/F (浙A12345D)"
    if body[1] in _ASCII_LETTERS:
        return (
            "bad_new_energy",
            f"an 8-character plate has D or F (new energy) after the letter, not {body[1]}",
        )
    if body[6] in _ASCII_LETTERS:
        return "bad_new_energy", f"an 8-character plate ends with D or F (new energy), not {body[6]}"
    return (
        "bad_length",
        "ordinary plates have 5 characters after the letter; 8-character plates are new-energy",
    )


# Only reachable if _diagnose and _VALID disagree, which the tests rule out.
_UNEXPLAINED: Final = ("bad_length", "does not follow any GA 36 plate layout")


def parse_plate(raw: str) -> Plate:
    """Strict parse for watchlist entries: a valid GA 36 plate, or PlateError naming the broken rule."""
    text = normalize(raw)
    plate = _match(text)
    if plate is not None:
        return plate
    reason, detail = _diagnose(text) or _UNEXPLAINED
    shown = text if text else raw
    # PlateError's str() already starts with "plate: ", so the message starts with the plate itself.
    raise PlateError(reason, f"{shown!r}: {detail}")


def read_plate(raw: str) -> Plate:
    """Lenient parse for camera reads: the strict plate, else NO_PROVINCE or NONSTANDARD when plausible.

    Raises PlateError only for what cannot be a plate read: empty, a camera's "no plate" output, illegal
    characters, Chinese characters out of place, a length outside 5–9, or no digit at all.
    """
    text = normalize(raw)
    plate = _match(text)
    if plate is not None:
        return plate
    if text in _NO_PLATE:
        raise PlateError("no_plate", f"{text!r} is a camera's way of saying no plate was recognized")
    if not text:
        raise PlateError("empty", f"{raw!r}: no plate given")
    for ch in text:
        if ch not in _LEGAL:
            raise PlateError("illegal_character", f"{text!r}: character {_char(ch)} cannot appear on a plate")
    if not _MIN_READ <= len(text) <= _MAX_READ:
        raise PlateError("bad_length", f"{text!r}: {len(text)} characters, a plate read has 5 to 9")
    m = _PLAUSIBLE.fullmatch(text)
    if m is None:
        raise PlateError(
            "illegal_character",
            f"{text!r}: Chinese characters only lead (province) or end (suffix) a plate",
        )
    if _DIGIT_SET.isdisjoint(text):
        raise PlateError("bad_serial", f"{text!r}: no digit, not a plate")
    lead, suffix = m.group("lead"), m.group("suffix")
    # A missing province: the rest must be a valid plate body under some province. 粤 accepts every body
    # another province does, plus 粤Z…港/澳.
    if lead is None and text[0] in _ASCII_LETTERS and _VALID.fullmatch("粤" + text):
        return Plate(text, PlateShape.NO_PROVINCE, None, suffix)
    if suffix is None and lead == "使":
        suffix = lead
    province = lead if lead in PROVINCES else None
    return Plate(text, PlateShape.NONSTANDARD, province, suffix)
