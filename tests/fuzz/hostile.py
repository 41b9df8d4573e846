"""Hostile values and byte mutations: the building blocks every fuzz target's strategy draws from.

Structured inputs put these values in the fields a format names; mutated inputs damage real-looking
samples byte by byte. Everything stays small (:data:`MAX_BODY`) so 100,000 inputs run in minutes.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import strategies as st

MAX_BODY = 64 * 1024

# --- text ---------------------------------------------------------------------------------------------

# Characters that have broken parsers somewhere: NUL and control characters (PostgreSQL refuses NUL in
# text), lone surrogates (no UTF-8 encoder takes them), BOMs, bidi overrides, full-width and ideographic
# forms, combining marks, the plate characters and the colour words of Chinese cameras.
_ODD_CHARACTERS = (
    "\x00\x01\x07\x08\x0b\x0c\x1b\x1f\x7f\x80\x85\xa0\xad\u2028\u2029\u200b\u200d\u202e\ufeff\ufffd\ufffe"
    "\u3000\u0301\ud800\udbff\udc00\udfff\U0001f697\U000e0001ＡＢＣＪ０１２３４５・·-_ "
    "浙苏京沪粤川皖闽赣鲁豫鄂湘桂琼渝贵云藏陕甘青宁新黑吉辽蒙晋冀津学警挂港澳使领应急蓝黄白绿黑色无牌车未识别"
)
SPECIAL_TEXT = (
    "", " ", "\x00", "a\x00b", "\t\r\n", "\u3000", "\ufeff", "\u202e", "null", "None", "NaN", "-1", "0",
    "1e999", "9" * 40, "浙J12345", "浙J1234\x00", "蓝浙J12345", "无牌车", "unknown", "noPlate",
    "ＡＢＣ１２３",
    "<![CDATA[x]]>", "&amp;", "&#0;", "&#x1F600;", "\ud800", "\udfff", "é", "\u0301", "'", '"', "\\",
    "${jndi:x}", "../../etc/passwd", "=cmd|' /C calc'!A0", "%s%s%n", "\r\n\r\n--boundary",
)  # fmt: skip
PLATES = ("浙J12345", "浙JD12345", "浙J·A1234", "苏E12345", "京A12345学", "粤Z1234港", "使123456", "J12345")


# Strategies are built once and cached: building one costs more than drawing from it many times.
@functools.cache
def text(max_size: int = 24) -> st.SearchStrategy[str]:
    """Short hostile text: special values, odd characters mixed with ordinary ones, long repetitions."""
    odd = st.text(
        alphabet=st.one_of(
            st.sampled_from(_ODD_CHARACTERS),
            st.characters(min_codepoint=0, max_codepoint=0x10FFFF, exclude_categories=()),
        ),
        max_size=max_size,
    )
    long = st.builds(
        lambda piece, times: (piece or "x") * times, st.sampled_from(SPECIAL_TEXT), st.integers(1, 3000)
    )
    return st.one_of(st.sampled_from(SPECIAL_TEXT), odd, st.text(max_size=max_size), long)


@functools.cache
def latin1_header(max_size: int = 60) -> st.SearchStrategy[str]:
    """A header value as Starlette hands it over: any bytes, decoded as Latin-1."""
    return st.one_of(
        st.binary(max_size=max_size).map(lambda raw: raw.decode("latin-1")),
        text(max_size).map(lambda value: value.encode("utf-8", "surrogatepass").decode("latin-1")),
    )


# --- numbers and times --------------------------------------------------------------------------------

SPECIAL_NUMBERS: tuple[int | float, ...] = (
    0, -1, 1, 100, 101, 2**31, 2**53 + 1, 2**63, 2**64, -(2**63) - 1, 10**30, -0.0, 0.5, 1e308, -1e308,
    5e-324, float("nan"), float("inf"), float("-inf"),
)  # fmt: skip


@functools.cache
def number() -> st.SearchStrategy[int | float]:
    return st.one_of(
        st.sampled_from(SPECIAL_NUMBERS),
        st.integers(-(2**70), 2**70),
        st.floats(allow_nan=True, allow_infinity=True),
    )


_OFFSETS: st.SearchStrategy[tzinfo | None] = st.one_of(
    st.none(),
    st.just(ZoneInfo("Asia/Shanghai")),
    st.integers(-24 * 60 + 1, 24 * 60 - 1).map(lambda minutes: timezone(timedelta(minutes=minutes))),
)
# The edges of what datetime can hold, where an offset pushes the UTC form out of range. Naive times on
# purpose here and below (DTZ001): devices send their local time without an offset.
EDGE_TIMES = (
    datetime(1, 1, 1),  # noqa: DTZ001
    datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=8))),
    datetime(1, 1, 1, 7, 59, 59, tzinfo=timezone(timedelta(hours=8))),
    datetime(9999, 12, 31, 23, 59, 59),  # noqa: DTZ001
    datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=timezone(timedelta(hours=-14))),
    datetime(2026, 11, 23, 18, 0, 0),  # noqa: DTZ001
    datetime(2024, 2, 29, 23, 59, 59, tzinfo=UTC),
)
FIRST, LAST = datetime(1, 1, 1), datetime(9999, 12, 31, 23, 59, 59)  # noqa: DTZ001
RECENT = (datetime(2020, 1, 1), datetime(2026, 12, 1))  # noqa: DTZ001


@functools.cache
def moment(*, recent: bool = False) -> st.SearchStrategy[datetime]:
    """A datetime, naive or with an offset (Shanghai or fixed): recent ones (the years devices send), or
    any of datetime's range with its edges drawn often."""
    # A wall-clock time, then its zone: as a device reports it (imaginary times at DST changes included).
    recent_times = st.builds(_in_zone, st.datetimes(min_value=RECENT[0], max_value=RECENT[1]), _OFFSETS)
    if recent:
        return recent_times
    return st.one_of(
        st.sampled_from(EDGE_TIMES),
        st.builds(_in_zone, st.datetimes(min_value=FIRST, max_value=LAST), _OFFSETS),
        recent_times,
    )


def _in_zone(wall: datetime, zone: tzinfo | None) -> datetime:
    return wall.replace(tzinfo=zone)


_MALFORMED_TIMES = (
    "", "now", "0", "-1", "00010101000000", "99991231235959", "20241322250000", "2024-02-30 25:61:61",
    "0001-01-01T00:00:00", "0001-01-01T00:00:00+08:00", "9999-12-31T23:59:59-14:00",
    "2026-11-23T18:00:00+24:00",
    "2026-11-23T18:00:00Z", "2026-11-23 18:00:00", "2026-11-23T18:00:00.123456789+08:00",
    "２０２６-１１-２３ １８:００:００", "٢٠٢٦١١٢٣١٨٠٠٠٠", "+002026-11-23T18:00:00", "2026-W47-1",
    "1763892000000", "20261123180000123", "2026/11/23 18:00:00",
)  # fmt: skip


def _render(value: datetime, fmt: str) -> str:
    return value.isoformat() if fmt == "iso" else value.strftime(fmt)


@functools.cache
def time_text(*formats: str) -> st.SearchStrategy[str]:
    """Recent times in ``formats`` (strftime; "iso" for isoformat), as devices send them."""
    return st.builds(_render, moment(recent=True), st.sampled_from(formats or ("iso",)))


@functools.cache
def odd_time(*formats: str) -> st.SearchStrategy[str]:
    """Times in ``formats`` at the ends of datetime's range (year 1, 9999, with offsets), malformed ones,
    digits of any length, or any text."""
    anything = st.builds(_render, moment(), st.sampled_from(formats or ("iso",)))
    return st.one_of(
        anything, anything, st.sampled_from(_MALFORMED_TIMES), st.from_regex(r"\A[0-9]{8,17}\Z"), text(20)
    )


# --- JSON ---------------------------------------------------------------------------------------------


@functools.cache
def json_value(keys: tuple[str, ...] = ()) -> st.SearchStrategy[Any]:
    """Any JSON value (numbers out of every range included), a few levels deep."""
    leaves = st.one_of(st.none(), st.booleans(), number(), text())
    names = st.one_of(st.sampled_from(keys), text(12)) if keys else text(12)
    return st.recursive(
        leaves,
        lambda children: st.one_of(
            st.lists(children, max_size=4), st.dictionaries(names, children, max_size=4)
        ),
        max_leaves=12,
    )


Field = tuple[st.SearchStrategy[Any], st.SearchStrategy[Any]]  # (plausible values, hostile ones)


def document(
    fields: dict[str, Field],
    *,
    optional: Sequence[str] = (),
    keys: tuple[str, ...] = (),
    envelope: bool = False,
) -> st.SearchStrategy[dict[str, Any]]:
    """An object of the format's field names with plausible values, but for up to two fields that are
    missing, of another JSON type, or given one of their hostile values; unknown keys now and then.

    A few bad fields at a time, not all of them: each hostile value then reaches the code that reads
    its field instead of the first check that refuses the record. Half the records have no bad field;
    three envelopes (``envelope``) in four are intact, so the records inside are reached.
    """
    names = list(fields)
    anything = json_value(keys)
    extra = st.dictionaries(text(12), anything, min_size=1, max_size=2)
    how_many = st.sampled_from((0, 0, 0, 1) if envelope else (0, 0, 0, 1, 1, 2))
    which, how, with_extra = st.sampled_from(names), st.integers(0, 5), st.integers(0, 7)

    @st.composite
    def build(draw: st.DrawFn) -> dict[str, Any]:
        result = {
            name: draw(plausible)
            for name, (plausible, _) in fields.items()
            if name not in optional or draw(st.booleans())
        }
        for _ in range(draw(how_many)):
            name, way = draw(which), draw(how)
            if way == 0:
                result.pop(name, None)
            else:
                result[name] = draw(anything if way == 1 else fields[name][1])
        if draw(with_extra) == 0:
            result = {**draw(extra), **result}
        return result

    return build()


def json_bytes(value: Any, *, ascii_only: bool, encoding: str) -> bytes:
    """``value`` as JSON text in ``encoding``; NaN and lone surrogates go through as the stdlib writes
    them (``NaN``, ``"\\ud800"`` or the raw code unit), characters the encoding lacks become UTF-8."""
    try:
        rendered = json.dumps(value, ensure_ascii=ascii_only, allow_nan=True)
    except (ValueError, RecursionError):
        rendered = "{}"
    try:
        return rendered.encode(encoding)
    except (UnicodeError, LookupError, ValueError):
        return rendered.encode("utf-8", "surrogatepass")


# --- Content-Type -------------------------------------------------------------------------------------

# Labels a sender may put in a charset parameter or an XML prolog: text encodings the registry knows,
# codecs that are no text encoding (rot13 is str-to-str, zlib and base64 bytes-to-bytes, undefined
# refuses everything), codecs that can yield lone surrogates (utf-7, unicode_escape), and garbage;
# Latin-1 text only, as Starlette decodes header bytes.
CHARSETS = (
    "utf-8", "UTF-8", "utf8", "utf-8-sig", "gbk", "GB2312", "gb18030", "cp936", "hz-gb-2312", "big5",
    "big5hkscs", "utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-7", "latin-1", "ascii", "cp1252",
    "shift_jis", "euc-jp", "iso-2022-jp", "euc-kr", "koi8-r", "mac-roman", "cp037", "rot13", "rot_13",
    "zlib", "zlib_codec", "base64", "hex", "uu", "bz2", "quopri", "undefined", "x-unknown", "idna",
    "punycode", "unicode_escape", "raw_unicode_escape", "palmos", "mbcs", "oem", "", "utf\x00-8",
    "🙂".encode().decode("latin-1"), "utf-8;", "utf-8 gbk", "a" * 200,
)  # fmt: skip


@functools.cache
def content_type(media_types: tuple[str, ...]) -> st.SearchStrategy[str | None]:
    """None, a plain media type, one with a charset parameter (quoted or not), or any header text."""
    with_charset = st.builds(
        lambda media, label, quoted: f'{media}; charset="{label}"' if quoted else f"{media};charset={label}",
        st.sampled_from(media_types),
        st.one_of(st.sampled_from(CHARSETS), latin1_header(16)),
        st.booleans(),
    )
    return st.one_of(st.none(), st.sampled_from(media_types), with_charset, latin1_header())


# --- byte mutation ------------------------------------------------------------------------------------

# Byte strings that mean something to some decoder: BOMs, NUL, escapes, partial multi-byte sequences
# (UTF-8, GB18030 four-byte), a UTF-7 lone surrogate, XML and multipart syntax, a huge number.
INTERESTING = (
    b"\x00", b"\xff", b"\xff\xfe", b"\xfe\xff", b"\xef\xbb\xbf", b"\\u0000", b"\\ud800", b"\\udc00\\ud800",
    b"&#0;", b"&#xD800;", b"]]>", b"<!DOCTYPE x [<!ENTITY a 'b'>]>",
    b"<?xml version='1.0' encoding='utf-7'?>",
    b"+2AA-", b"--", b"\r\n", b"\r\n\r\n", b'"', b"{", b"}", b"[", b"]", b",", b":", b"9" * 400,
    b"-0.0e-999", b"\xe4\xb8", b"\x81\x30", b"\x81\x30\x81", b"\xa1", b"NaN", b"Infinity", b"null",
    b"Content-Transfer-Encoding: base64\r\n", b"Content-Type: application/xml; charset=rot13\r\n",
    b"T00:00:00+08:00", b"0001-01-01", b"9999-12-31", b"00010101000000",
)  # fmt: skip
_OPERATIONS = (
    "flip",
    "truncate",
    "insert",
    "interesting",
    "delete",
    "duplicate",
    "splice",
    "nest",
    "replace",
)


@st.composite
def mutated(draw: st.DrawFn, seeds: Sequence[bytes]) -> bytes:
    """A seed damaged by :func:`damage`."""
    return damage(draw, draw(st.sampled_from(seeds)), seeds)


def damage(draw: st.DrawFn, data: bytes, seeds: Sequence[bytes]) -> bytes:
    """``data`` damaged by one to four operations: bit flips, truncation, inserted or deleted bytes,
    duplicated ranges, a splice with one of ``seeds``, deep nesting, a byte string of :data:`INTERESTING`."""
    for _ in range(draw(st.integers(1, 4))):
        size = len(data)
        at = draw(st.integers(0, size))
        operation = draw(st.sampled_from(_OPERATIONS))
        if operation == "flip" and size:
            index = min(at, size - 1)
            data = data[:index] + bytes([data[index] ^ (1 << draw(st.integers(0, 7)))]) + data[index + 1 :]
        elif operation == "truncate":
            data = data[:at]
        elif operation == "insert":
            data = data[:at] + draw(st.binary(min_size=1, max_size=32)) + data[at:]
        elif operation == "interesting":
            data = data[:at] + draw(st.sampled_from(INTERESTING)) + data[at:]
        elif operation == "replace":
            piece = draw(st.sampled_from(INTERESTING))
            data = data[:at] + piece + data[at + len(piece) :]
        elif operation == "delete":
            data = data[:at] + data[draw(st.integers(at, min(size, at + 64))) :]
        elif operation == "duplicate":
            end = draw(st.integers(at, min(size, at + 256)))
            data = data[:end] + data[at:end] * draw(st.integers(1, 8)) + data[end:]
        elif operation == "splice":
            other = draw(st.sampled_from(seeds))
            data = data[:at] + other[draw(st.integers(0, len(other))) :]
        elif operation == "nest":
            opener = draw(st.sampled_from((b"[", b'{"a":', b"<a>", b"\\")))
            data = data[:at] + opener * draw(st.integers(1, 3000)) + data[at:]
    return data[:MAX_BODY]
