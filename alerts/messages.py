"""The SMS officers read and the replies they send: Chinese text sized to segments, reply codes, parsing.

Pure functions. Chinese text travels as UCS-2: 70 characters in one SMS, 67 per part once split. Every
text here is guaranteed to fit ``max_segments`` (two by default). When it would not, the least useful
detail goes first, in the order of :data:`SHORTENING_ORDER`: the address (shortened, then dropped), the
place name (shortened), the vehicle, the case number (shortened, then dropped), the long instructions,
the escalation's names, the match's details, the plate colour, the long action, the instructions, and
last the place. The urgency marker, the reply code, the plate, the time and the action (in its short
form at least) are never dropped. The code sits right after the tag (``【执行查控 K7Q】``), where it
survives any truncation by the phone, and again in the instructions when there is room.

Reply codes (GoAlert's pattern, ONCALL "Replies") tie an answer to one page and one person: three
characters from an alphabet without 0/O/1/I/L, always starting with a letter, so ``1K7Q`` (command first)
and ``K7Q1`` (code first) can never be confused.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Final, Literal
from zoneinfo import ZoneInfo

from streams.vehicles import PlateColour

SHANGHAI: Final = ZoneInfo("Asia/Shanghai")

# ---------------------------------------------------------------------------------------------- segments

_GSM7_BASIC: Final = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# Sent as ESC + character: two septets each.
_GSM7_EXTENSION: Final = frozenset("\f^{}\\[~]|€")

GSM7_SINGLE, GSM7_PART = 160, 153
UCS2_SINGLE, UCS2_PART = 70, 67


def segments(text: str) -> int:
    """How many SMS parts ``text`` takes.

    GSM-7 when every character is in the GSM-7 basic or extension table (extension characters count 2
    septets): 160 in one part, 153 per part when split. Otherwise UCS-2, counted in UTF-16 code units
    (an emoji counts 2): 70 in one part, 67 per part. An escape pair or a surrogate pair is never split
    across parts, as phones and Twilio do. An empty text still takes one SMS.
    """
    if all(ch in _GSM7_BASIC or ch in _GSM7_EXTENSION for ch in text):
        units = [2 if ch in _GSM7_EXTENSION else 1 for ch in text]
        single, part = GSM7_SINGLE, GSM7_PART
    else:
        units = [2 if ord(ch) > 0xFFFF else 1 for ch in text]
        single, part = UCS2_SINGLE, UCS2_PART
    if sum(units) <= single:
        return 1
    parts, used = 1, 0
    for unit in units:
        if used + unit > part:
            parts, used = parts + 1, 0
        used += unit
    return parts


# ------------------------------------------------------------------------------------------ reply codes

CODE_FIRST: Final = "ABCDEFGHJKMNPQRSTUVWXYZ"  # letters without I, L, O
CODE_ALPHABET: Final = "23456789" + CODE_FIRST  # and no 0 or 1
CODE_SPACE: Final = len(CODE_FIRST) * len(CODE_ALPHABET) ** 2  # 22,103 codes
# Consecutive numbers give codes differing in every character, so a one-character typo of one page's code
# is unlikely to be another recent page's. Coprime with CODE_SPACE (23 · 31²), so the map is a bijection.
_SCRAMBLE: Final = 7919
_CODE_RE: Final = re.compile(f"[{CODE_FIRST}][{CODE_ALPHABET}]{{2}}")


def reply_code(n: int) -> str:
    """The reply code numbered ``n`` (≥ 0); codes repeat every :data:`CODE_SPACE` numbers.

    The caller numbers codes so that no recipient has two open pages with the same one.

    Raises:
        ValueError: ``n`` is negative.
    """
    if n < 0:
        raise ValueError(f"reply code number must be ≥ 0, not {n}")
    rest, third = divmod(n * _SCRAMBLE % CODE_SPACE, len(CODE_ALPHABET))
    first, second = divmod(rest, len(CODE_ALPHABET))
    return CODE_FIRST[first] + CODE_ALPHABET[second] + CODE_ALPHABET[third]


def is_reply_code(code: str) -> bool:
    """Whether ``code`` is a well-formed reply code (upper case)."""
    return _CODE_RE.fullmatch(code) is not None


# ------------------------------------------------------------------------------------------------ replies

Command = Literal["take", "decline", "seized", "not_found", "custody"]


@dataclass(frozen=True, slots=True)
class Reply:
    """An officer's answer to the page with reply code ``code`` (upper case).

    ``place`` is where a seized vehicle is kept (``3 K7Q 椒江区扣押场``, ``存 K7Q 椒江区扣押场``), as the
    officer wrote it on one line; only ``seized`` (optional) and ``custody`` (always) carry one.
    """

    command: Command
    code: str
    place: str | None = None


@dataclass(frozen=True, slots=True)
class StopStart:
    """An opt-out (``stop``) or opt-in (``start``) keyword; Twilio acts on it too (21610 after STOP)."""

    kind: Literal["stop", "start"]


_DIGIT_COMMANDS: Final[Mapping[str, Command]] = {"1": "take", "2": "decline", "3": "seized", "4": "not_found"}
# The words the instructions print, allowed next to the digit; longest first ("已扣押" before "扣押").
_WORD_COMMANDS: Final[Sequence[tuple[str, Command]]] = (
    ("已扣押", "seized"),
    ("非本人", "decline"),
    ("未找到", "not_found"),
    ("接手", "take"),
    ("扣押", "seized"),
)
# Twilio's default opt-out / opt-in keywords, and the usual Chinese ones.
_STOP_WORDS: Final = frozenset(
    {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPTOUT", "REVOKE", "TD", "退订", "取消订阅"}
)
_START_WORDS: Final = frozenset({"START", "UNSTOP", "YES", "订阅", "恢复订阅"})
# Custody: "3 <code> <place>" (a seizure and where the vehicle is kept), "存 <code> <place>" (the place of a
# seizure recorded before). The instruction's words may stand before the place; they are not the place.
_PLACE_COMMANDS: Final[Mapping[str, Command]] = {"3": "seized", "存": "custody"}
_PLACE_LEAD_WORDS: Final = ("已扣押", "扣押", "存放地点", "存放", "地点")
# Words of other answers: a "place" holding one is not a place ("3 K7Q 未找到了").
_NOT_A_PLACE: Final = ("非本人", "未找到", "接手")
_COMMAND_FIRST: Final = re.compile(f"([1-4])({_CODE_RE.pattern})")
_CODE_FIRST: Final = re.compile(f"({_CODE_RE.pattern})([1-4])")


def parse_reply(text: str) -> Reply | StopStart | None:
    """Read an SMS an officer sent back.

    Forgiving: full-width digits and letters, lower case, spaces and punctuation anywhere, the code before
    or after the digit (``1 k7q``, ``１K7Q``, ``k7q 1``, ``1k7q``), and the instruction's own words
    (``1 K7Q 接手``) as long as they agree with the digit. A seizure may name where the vehicle is kept
    after the code (``3 K7Q 椒江区扣押场``), and ``存 K7Q 椒江区扣押场`` records it later (command first,
    then the code, then the place).

    Returns:
        A :class:`Reply`, a :class:`StopStart` for opt-out/opt-in keywords, or ``None`` for anything
        else (the caller caps its answers to unknown input, so a typo never starts an SMS loop).
    """
    normalized = unicodedata.normalize("NFKC", text).upper()
    compact = "".join(ch for ch in normalized if not (ch.isspace() or unicodedata.category(ch)[0] in "PSC"))
    if compact in _STOP_WORDS:
        return StopStart("stop")
    if compact in _START_WORDS:
        return StopStart("start")
    worded: set[Command] = set()
    for word, word_command in _WORD_COMMANDS:
        if word in compact:
            worded.add(word_command)
            compact = compact.replace(word, "")
    match = _COMMAND_FIRST.fullmatch(compact)
    if match is not None:
        digit, code = match.groups()
    elif (match := _CODE_FIRST.fullmatch(compact)) is not None:
        code, digit = match.groups()
    else:
        return _parse_place_reply(unicodedata.normalize("NFKC", text))
    command = _DIGIT_COMMANDS[digit]
    if worded - {command}:
        return None
    return Reply(command, code)


def _strip_marks(text: str) -> str:
    """``text`` without the spaces and punctuation it starts with."""
    start = 0
    while start < len(text) and (text[start].isspace() or unicodedata.category(text[start])[0] in "PSC"):
        start += 1
    return text[start:]


def _after_lead_word(place: str) -> str | None:
    """The place without the instruction word it starts with, if any. A word counts only before a space or
    a mark: "已扣押，椒江区扣押场" starts with one, "扣押场" does not."""
    for word in _PLACE_LEAD_WORDS:
        rest = place[len(word) :]
        if place.startswith(word) and _strip_marks(rest) != rest:
            return _strip_marks(rest)
    return None


def _parse_place_reply(normalized: str) -> Reply | None:
    """``3 <code> <place>`` or ``存 <code> <place>``; None when it is neither."""
    text = _strip_marks(normalized)
    command = _PLACE_COMMANDS.get(text[:1])
    if command is None:
        return None
    rest = _strip_marks(text[1:])
    code, place = rest[:3].upper(), rest[3:]
    if not is_reply_code(code) or (place[:1].isascii() and place[:1].isalnum()):
        return None  # not a code, or a longer word than a code ("3 K7QQ")
    place = _strip_marks(place)
    while (after := _after_lead_word(place)) is not None:
        place = after
    place = " ".join(place.split()).rstrip("。.")
    if not any(ch.isalpha() for ch in place) or any(word in place for word in _NOT_A_PLACE):
        return None  # "3 K7Q 4": two answers, no place
    return Reply(command, code, place)


# -------------------------------------------------------------------------------------------- rendering

Action = Literal["seize", "locate", "hold"]
EscalationReason = Literal["no_answer", "declined", "unreachable"]
UpdateEvent = Literal["seen_again", "left"]

_TAG: Final = "执行查控"
# Before the tag, on every SMS about an urgent entry that asks for something (not the "taken by" notice
# nor the cancellation: nothing is left to do).
URGENT_MARK: Final = "【紧急】"
_ACTIONS: Final[Mapping[str, tuple[str, ...]]] = {
    "seize": ("请扣押。", "扣押。"),
    "locate": ("仅查找位置，勿扣押。", "仅查找。"),
    # The police station at night finds the vehicle and holds it; the court takes it over in the morning.
    "hold": ("请控制车辆，留置待法院接手。", "留置待法院接手。"),
}
_REASONS: Final[Mapping[str, str]] = {
    "no_answer": "未应答",
    "declined": "无法接手",
    "unreachable": "短信无法送达",
}
# How a plate's colour is printed before it (蓝牌浙J12345); an unknown colour is not printed.
PLATE_COLOURS: Final[Mapping[PlateColour, str]] = {
    PlateColour.BLUE: "蓝牌",
    PlateColour.YELLOW: "黄牌",
    PlateColour.GREEN: "绿牌",
    PlateColour.YELLOW_GREEN: "黄绿牌",
    PlateColour.WHITE: "白牌",
    PlateColour.BLACK: "黑牌",
}
_PLACE_MIN: Final = 8  # characters of a place kept before the details go
_ADDRESS_MIN: Final = 8  # characters of an address kept before it goes entirely
# A case number's year and its last number, with a sub-case suffix (之一) if any: (2026)…恢12345号之一.
_CASE_TAIL_RE: Final = re.compile(r"[(（](\d{4})[)）].*?(\D\d+号(?:之[一二三四五六七八九十]+)?)$")


@dataclass(frozen=True, slots=True)
class _Step:
    """One rung of the shortening ladder: a form index per part, and how short each slot may get
    (absent: kept whole; 0: dropped)."""

    forms: Mapping[str, int]
    mins: Mapping[str, int]


@dataclass(frozen=True, slots=True)
class _Slots:
    """Where the (shortened) variable-length texts go, worded by ``form`` from their current values."""

    form: Callable[[Mapping[str, str]], str]


# Fixed text, (part name, its forms longest first), or the slots: composed in order.
_Piece = str | tuple[str, Sequence[str]] | _Slots


def _fit(
    pieces: Sequence[_Piece], slots: Mapping[str, str], ladder: Sequence[_Step], max_segments: int
) -> str:
    """The first rung of ``ladder`` whose text fits, with the longest slot texts that fit on it.

    ``slots`` are the variable-length texts by name, the most useful first: on a rung where they may be
    shortened, each in turn is given as many characters as fit (a dropped one stays dropped).
    """
    if max_segments < 1:
        raise ValueError(f"max_segments must be ≥ 1, not {max_segments}")

    def compose(step: _Step, lengths: Mapping[str, int]) -> str:
        shortened = {name: _shorten(text, lengths[name]) for name, text in slots.items()}
        out: list[str] = []
        for piece in pieces:
            if isinstance(piece, _Slots):
                out.append(piece.form(shortened))
            elif isinstance(piece, str):
                out.append(piece)
            else:
                name, forms = piece
                out.append(forms[min(step.forms.get(name, 0), len(forms) - 1)])
        return "".join(out)

    for step in ladder:
        lengths = {name: min(step.mins.get(name, len(text)), len(text)) for name, text in slots.items()}
        if segments(compose(step, lengths)) > max_segments:
            continue
        for name, text in slots.items():
            if lengths[name] == 0:
                continue  # dropped on this rung
            low, high = lengths[name], len(text)  # the largest length that fits is in [low, high]
            while low < high:
                mid = (low + high + 1) // 2
                if segments(compose(step, {**lengths, name: mid})) <= max_segments:
                    low = mid
                else:
                    high = mid - 1
            lengths[name] = low
        return compose(step, lengths)
    raise ValueError(f"the plate, time and reply code alone exceed {max_segments} SMS segment(s)")


def _shorten(text: str, chars: int) -> str:
    if chars >= len(text):
        return text
    return text[: chars - 1] + "…" if chars > 0 else ""


def _clean(text: str) -> str:
    """One line: device names and case numbers come from other systems."""
    return " ".join(text.split())


def _when(observed_at: datetime, tz: tzinfo) -> str:
    if observed_at.tzinfo is None or observed_at.utcoffset() is None:
        raise ValueError("observed_at must be timezone-aware")
    return observed_at.astimezone(tz).strftime("%m-%d %H:%M")


def _head(code: str, urgent: bool) -> str:
    if not is_reply_code(code):
        raise ValueError(f"not a reply code: {code!r}")
    return (URGENT_MARK if urgent else "") + f"【{_TAG} {code}】"


def _quality(match_kind: str, score: float) -> tuple[str, ...]:
    if match_kind == "exact":
        return ("",)
    return (f"（疑似，匹配度{score:.2f}，需核对）", "（疑似）")


def _case_forms(case_number: str, others: Sequence[str] = ()) -> tuple[str, ...]:
    """Longest first. One case: whole, shortened, dropped. Several (one vehicle sealed under several
    cases): every one, then ``案号<first>等<n>案``, then the first shortened ``等<n>案`` — the count is never
    dropped, so nobody takes the vehicle for one case's only."""
    case = _clean(case_number)
    rest = [c for c in dict.fromkeys(_clean(o) for o in others) if c and c != case]
    if not case and not rest:
        return ("",)
    if not case:
        case, rest = rest[0], rest[1:]
    tail = _CASE_TAIL_RE.search(case)
    short = f"({tail.group(1)})…{tail.group(2)}" if tail else "…" + case[-8:]
    if len(short) >= len(case):
        short = case
    if rest:
        n = 1 + len(rest)
        return (f"案号{'、'.join((case, *rest))}，", f"案号{case}等{n}案，", f"案号{short}等{n}案，")
    return (f"案号{case}，", f"案号{short}，", "")


def _take_instructions(code: str) -> tuple[str, ...]:
    return (f"回复1 {code}接手，2 {code}非本人", f"回复1 {code}接手", "")


def _plate_pieces(plate: str, colour: PlateColour | None) -> list[_Piece]:
    word = PLATE_COLOURS.get(colour) if colour is not None else None
    return [("colour", (word, "") if word else ("",)), ("plate", [_clean(plate)])]


def _sighting_pieces(  # the facts of one sighting, in the order they are printed
    plate: str,
    colour: PlateColour | None,
    observed_at: datetime,
    tz: tzinfo,
    case_number: str,
    action: Action,
    match_kind: str,
    score: float,
    vehicle: str | None,
    code: str,
    cases: Sequence[str],
    /,
) -> list[_Piece]:
    return [
        *_plate_pieces(plate, colour),
        ("quality", _quality(match_kind, score)),
        f" {_when(observed_at, tz)}",
        _Slots(_appeared),
        ("vehicle", (f"{_clean(vehicle)}，", "") if vehicle and _clean(vehicle) else ("",)),
        ("case", _case_forms(case_number, cases)),
        ("action", _ACTIONS[action]),
        ("instructions", _take_instructions(code)),
    ]


def _where(slots: Mapping[str, str]) -> str:
    """``place（address）``, either alone, or empty."""
    place, address = slots["place"], slots.get("address", "")
    if place and address:
        return f"{place}（{address}）"
    return place or address


def _appeared(slots: Mapping[str, str]) -> str:
    where = _where(slots)
    return f" 出现在{where}。" if where else "。"


_SLOTS: Final = frozenset({"place", "address", "custody"})  # the others are parts with forms


def _ladder(*shortenings: tuple[str, int]) -> tuple[_Step, ...]:
    """Rungs from everything whole, each applying one more shortening: ``(part, form)`` or
    ``(slot, minimum characters)``, 0 dropping the slot."""
    forms: dict[str, int] = {}
    mins: dict[str, int] = {}
    rungs = [_Step({}, {})]
    for name, value in shortenings:
        if name in _SLOTS:
            mins = {**mins, name: value}
        else:
            forms = {**forms, name: value}
        rungs.append(_Step(forms, mins))
    return tuple(rungs)


# What goes first when a text is too long, least useful first (the module docstring says why). Only
# once everything else is as short as it gets does the place go; the code stays in the tag when the
# instructions go; the urgency marker, the plate, the time and the action (short form) always stay.
SHORTENING_ORDER: Final = (
    ("address", _ADDRESS_MIN),  # the street address, shortened…
    ("address", 0),  # … then dropped: the place name says where, the officer's map the rest
    ("place", _PLACE_MIN),  # the place name, shortened (台州市椒江区万达广…)
    ("vehicle", 1),  # 白色 大众帕萨特: dropped
    ("case", 1),  # (2024)…执1201号
    ("case", 2),  # dropped
    ("instructions", 1),  # 回复1 K7Q接手
    ("previous", 1),  # 前一位未应答
    ("quality", 1),  # （疑似）
    ("colour", 1),  # 蓝牌: dropped
    ("action", 1),  # 扣押。
    ("instructions", 2),  # dropped: the code is still in the tag
    ("place", 1),  # the place, down to one character…
    ("place", 0),  # … and gone
)
_SIGHTING_LADDER: Final = _ladder(*SHORTENING_ORDER)


def render_alert(
    *,
    plate: str,
    place: str,
    observed_at: datetime,
    case_number: str,
    action: Action,
    match_kind: str,
    score: float,
    reply_code: str,
    vehicle: str | None = None,
    urgent: bool = False,
    address: str | None = None,
    plate_colour: PlateColour | None = None,
    cases: Sequence[str] = (),
    tz: tzinfo = SHANGHAI,
    max_segments: int = 2,
) -> str:
    """The first SMS of a page: a watched vehicle was seen.

    ``【紧急】【执行查控 K7Q】蓝牌浙J12345 11-23 02:51 出现在椒江万达广场停车场1号入口（椒江区工人西路
    558号）。白色 大众帕萨特，案号(2024)浙1002执1201号，请扣押。回复1 K7Q接手，2 K7Q非本人``

    Args:
        plate: the watched plate (the entry's, not the camera's read).
        place: where it was seen (device or lot name); shortened after the address when space runs
            out.
        observed_at: when the camera saw it (aware); shown as ``MM-DD HH:MM`` in ``tz``.
        case_number: the enforcement case, e.g. ``(2024)浙1002执1201号``.
        action: ``seize`` (请扣押), ``locate`` (仅查找位置，勿扣押), or ``hold`` (请控制车辆，留置待法院接手:
            the police station at night, which holds the vehicle for the court).
        match_kind: ``exact``, or how the read differs (``province``, ``ocr``…): anything but ``exact``
            adds ``疑似，匹配度0.80，需核对``.
        score: the match score, shown for non-exact matches.
        reply_code: this page's code for this officer (:func:`reply_code`).
        vehicle: colour and model, e.g. ``白色 大众帕萨特``; dropped before the case number.
        urgent: the entry is urgent: the text starts with ``【紧急】`` (never dropped).
        address: the place's street address, in brackets after the place; the first detail to go.
        plate_colour: printed before the plate (``蓝牌``); unknown or ``None``: not printed. Dropped
            late, just before the long form of the action.
        cases: the vehicle's other cases (sealed under several): all listed, or when space is short
            ``案号(2026)浙1002执1号等2案``; the count is never dropped.
        tz: the officer's time zone.
        max_segments: the most SMS parts the text may take.

    Returns:
        The text, at most ``max_segments`` parts long.

    Raises:
        ValueError: ``observed_at`` is naive, ``reply_code`` is malformed, or the plate, time and code
            alone do not fit ``max_segments``.
    """
    pieces: list[_Piece] = [
        _head(reply_code, urgent),
        *_sighting_pieces(
            plate, plate_colour, observed_at, tz, case_number, action, match_kind, score, vehicle,
            reply_code, cases,
        ),
    ]  # fmt: skip
    return _fit(pieces, _places(place, address), _SIGHTING_LADDER, max_segments)


def _places(place: str, address: str | None) -> dict[str, str]:
    """The slots of a sighting's text, the most useful first."""
    return {"place": _clean(place), "address": _clean(address or "")}


def render_escalated(
    *,
    previous: str,
    reason: EscalationReason = "no_answer",
    plate: str,
    place: str,
    observed_at: datetime,
    case_number: str,
    action: Action,
    match_kind: str,
    score: float,
    reply_code: str,
    vehicle: str | None = None,
    urgent: bool = False,
    address: str | None = None,
    plate_colour: PlateColour | None = None,
    cases: Sequence[str] = (),
    tz: tzinfo = SHANGHAI,
    max_segments: int = 2,
) -> str:
    """The page as sent to the next officer, saying why it reached them.

    ``【执行查控 K7Q】张伟未应答，转您处理：浙J12345 11-23 02:51 出现在…。案号…，请扣押。
    回复1 K7Q接手，2 K7Q非本人``

    Args:
        previous: who was paged before (a name or role, e.g. ``张伟``); replaced by ``前一位`` when space
            runs out.
        reason: ``no_answer`` (未应答), ``declined`` (无法接手) or ``unreachable`` (短信无法送达).
        Others: as :func:`render_alert`.

    Returns:
        The text, at most ``max_segments`` parts long.

    Raises:
        ValueError: as :func:`render_alert`.
    """
    who = _clean(previous)
    why = _REASONS[reason]
    pieces: list[_Piece] = [
        _head(reply_code, urgent),
        (
            "previous",
            (f"{who}{why}，转您处理：" if who else f"前一位{why}，转您处理：", f"前一位{why}，转您："),
        ),
        *_sighting_pieces(
            plate, plate_colour, observed_at, tz, case_number, action, match_kind, score, vehicle,
            reply_code, cases,
        ),
    ]  # fmt: skip
    return _fit(pieces, _places(place, address), _SIGHTING_LADDER, max_segments)


Overnight = Literal["held", "seized", "not_found", "left"]
# The morning notice: the place, the custody and the take-over instructions matter more than the details.
_MORNING_LADDER: Final = _ladder(
    ("address", _ADDRESS_MIN),
    ("address", 0),
    ("place", _PLACE_MIN),
    ("vehicle", 1),
    ("case", 1),
    ("case", 2),
    ("custody", _PLACE_MIN),
    ("quality", 1),
    ("colour", 1),
    ("action", 1),
    ("place", 1),
    ("place", 0),
    ("instructions", 1),
    ("instructions", 2),
    ("custody", 0),
)


def render_morning(
    *,
    overnight: Overnight,
    holder: str | None,
    plate: str,
    place: str,
    observed_at: datetime,
    case_number: str,
    match_kind: str,
    score: float,
    reply_code: str,
    custody: str | None = None,
    left_at: datetime | None = None,
    take_over: bool = True,
    vehicle: str | None = None,
    urgent: bool = False,
    address: str | None = None,
    plate_colour: PlateColour | None = None,
    cases: Sequence[str] = (),
    tz: tzinfo = SHANGHAI,
    max_segments: int = 2,
) -> str:
    """The court's morning notice of a night sighting, saying what happened overnight (when nothing did,
    the notice is :func:`render_alert`'s seizure request).

    - ``held``: ``…出现在…。已由椒江区白云派出所控制。请接手。回复1 K7Q接手`` — 1 takes the vehicle over
      from the station (a hand-over, not a seizure);
    - ``seized``: ``…已由椒江区白云派出所扣押，存放于椒江区扣押场。请接手。回复1 K7Q接手``;
    - ``not_found``: ``…椒江区白云派出所未找到该车。`` (nothing to take; the code stays in the tag);
    - ``left``: the seizure request, with when the vehicle left (``11-23 23:40已驶离。…请扣押。``).

    Args:
        overnight: what happened (above).
        holder: who took, seized or looked for it (the station's name); ``派出所`` when unknown.
        custody: where a seized vehicle is kept, if recorded; shortened, then dropped last.
        left_at: when the vehicle left (aware): required for ``left``.
        take_over: ``held`` / ``seized`` by the police station, whom the court relieves (``请接手``,
            ``回复1 K7Q接手``); False when someone of the court holds it already (news only).
        Others: as :func:`render_alert`.

    Returns:
        The text, at most ``max_segments`` parts long.

    Raises:
        ValueError: as :func:`render_alert`, or ``left`` without ``left_at``.
    """
    who = _clean(holder or "") or "派出所"
    status: _Piece
    if overnight == "left":
        if left_at is None:
            raise ValueError("left_at is required for a vehicle that left")
        departed = f"{_when(left_at, tz)}已驶离。"
        status = ("action", (f"{departed}{_ACTIONS['seize'][0]}", f"{departed}{_ACTIONS['seize'][1]}"))
        instructions = _take_instructions(reply_code)
    else:
        if overnight == "not_found":
            words = (f"{who}未找到该车。", "未找到该车。")
        elif overnight == "held":
            ask = "请接手。" if take_over else ""
            words = (f"已由{who}控制。{ask}", f"已控制。{ask}")
        else:
            words = (f"已由{who}扣押，", "已扣押，")
        status = ("action", words)
        relieve = take_over and overnight != "not_found"
        instructions = (f"回复1 {reply_code}接手", "") if relieve else ("",)

    def kept(slots: Mapping[str, str]) -> str:
        if overnight != "seized":
            return ""
        ask = "请接手。" if take_over else ""
        return f"存放于{slots['custody']}。{ask}" if slots["custody"] else f"存放地点未录。{ask}"

    pieces: list[_Piece] = [
        _head(reply_code, urgent),
        *_plate_pieces(plate, plate_colour),
        ("quality", _quality(match_kind, score)),
        f" {_when(observed_at, tz)}",
        _Slots(_appeared),
        ("vehicle", (f"{_clean(vehicle)}，", "") if vehicle and _clean(vehicle) else ("",)),
        ("case", _case_forms(case_number, cases)),
        status,
        _Slots(kept),
        ("instructions", instructions),
    ]
    slots = {**_places(place, address), "custody": _clean(custody or "")}
    return _fit(pieces, slots, _MORNING_LADDER, max_segments)


_UPDATE_LADDER: Final = _ladder(
    ("place", _PLACE_MIN), ("instructions", 1), ("instructions", 2), ("place", 1), ("place", 0)
)


def render_update(
    *,
    event: UpdateEvent,
    plate: str,
    place: str,
    observed_at: datetime,
    reply_code: str,
    taken: bool = True,
    urgent: bool = False,
    tz: tzinfo = SHANGHAI,
    max_segments: int = 2,
) -> str:
    """News about a page already sent: the vehicle was seen again, or left the lot.

    ``【执行查控 K7Q】更新：浙J12345 11-23 03:10 驶离椒江万达广场停车场。回复3 K7Q已扣押，4 K7Q未找到``

    Args:
        event: ``seen_again`` (再次出现在 place) or ``left`` (驶离 place).
        taken: the recipient took the page: the instructions offer 3 (seized) and 4 (not found);
            otherwise 1 (take) and 2 (decline).
        urgent: the entry is urgent: the text starts with ``【紧急】``.
        Others: as :func:`render_alert`.

    Returns:
        The text, at most ``max_segments`` parts long.

    Raises:
        ValueError: as :func:`render_alert`.
    """
    verb = "再次出现在" if event == "seen_again" else "驶离"

    def place_form(slots: Mapping[str, str]) -> str:
        place = slots["place"]
        return f" {verb}{place}。" if place else f" {'再次出现' if event == 'seen_again' else '已驶离'}。"

    instructions = (
        (f"回复3 {reply_code}已扣押，4 {reply_code}未找到", f"回复3 {reply_code}已扣押", "")
        if taken
        else _take_instructions(reply_code)
    )
    pieces: list[_Piece] = [
        _head(reply_code, urgent),
        "更新：",
        ("plate", [_clean(plate)]),
        f" {_when(observed_at, tz)}",
        _Slots(place_form),
        ("instructions", instructions),
    ]
    return _fit(pieces, {"place": _clean(place)}, _UPDATE_LADDER, max_segments)


def render_taken(*, plate: str, taker: str, role: str | None, reply_code: str, over_station: bool) -> str:
    """To the others paged with a page: who took it, in one SMS (UCS-2, 70 characters).

    ``【执行查控 K7Q】浙J12345 已由周婷(执行法官)接手，无需处理。`` — ``over_station``: the court took the
    vehicle over from the police station that held it (``…从派出所接手，请配合交接。``: the station, told
    too, hands it over). The role goes first, then the name is shortened, when it would not fit.

    Raises:
        ValueError: ``reply_code`` is not a reply code.
    """
    # The station that held the vehicle is told to hand it over, not that nothing is left to do.
    tail = "从派出所接手，请配合交接。" if over_station else "接手，无需处理。"
    head = f"{_head(reply_code, False)}{_clean(plate)} 已由"
    name = _clean(taker)
    for who in ([f"{name}({role})"] if role else []) + [name]:
        if segments(head + who + tail) == 1:
            return head + who + tail
    room = UCS2_SINGLE - len(head) - len(tail)
    return head + _shorten(name, max(room, 1)) + tail


def render_held_by_station(*, plate: str, station: str, reply_code: str, urgent: bool) -> str:
    """To a court's officers when the police station took the page: the station holds the vehicle for
    the court, which is to take it over (the station was asked to hold it, never to settle it). One SMS
    when it fits, the station's name shortened first; never more than two.

    ``【执行查控 K7Q】浙J12345 已由椒江区白云派出所控制，留置待法院接手。回复1 K7Q接手``

    Raises:
        ValueError: ``reply_code`` is not a reply code.
    """
    head = f"{_head(reply_code, urgent)}{_clean(plate)} 已由"
    tail = f"控制，留置待法院接手。回复1 {reply_code}接手"
    name = _clean(station) or "派出所"
    text = head + name + tail
    if segments(text) == 1:
        return text
    room = UCS2_SINGLE - len(head) - len(tail)
    if room >= 4:
        return head + _shorten(name, room) + tail
    return (
        text if segments(text) <= 2 else head + _shorten(name, 2 * UCS2_PART - len(head) - len(tail)) + tail
    )
