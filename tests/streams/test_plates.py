"""Tests for streams.plates: GA 36 shapes, normalization, lenient reads and OCR-confusion keys."""

from __future__ import annotations

import sys
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.errors import InvalidInput
from streams.plates import (
    _SKELETON,
    _VALID,
    _WHITESPACE,
    PROVINCES,
    REASONS,
    SUFFIXES,
    Plate,
    PlateError,
    PlateShape,
    _diagnose,
    confusion_distance,
    mask,
    normalize,
    parse_plate,
    read_plate,
    skeleton,
)

ORDINARY = PlateShape.ORDINARY
NE_SMALL = PlateShape.NEW_ENERGY_SMALL
NE_LARGE = PlateShape.NEW_ENERGY_LARGE
SUFFIX = PlateShape.SUFFIX

# (plate as a court would enter it, expected shape or PlateError reason)
STRICT_CASES: list[tuple[str, PlateShape | str]] = [
    ("京A12345", ORDINARY),
    ("津C8K2M7", ORDINARY),
    ("冀F3X9Y1", ORDINARY),
    ("豫A88888", ORDINARY),
    ("云A5F320", ORDINARY),
    ("辽B7H2N9", ORDINARY),
    ("黑A1C2E3", ORDINARY),
    ("湘A2B3D4", ORDINARY),
    ("鲁B8D123", ORDINARY),
    ("甘A12345", ORDINARY),
    ("闽D12345", ORDINARY),
    ("贵A0Z9Q8", ORDINARY),
    ("青A12345", ORDINARY),
    ("藏A12345", ORDINARY),
    ("川A12345", ORDINARY),
    ("宁A12345", ORDINARY),
    ("琼A12345", ORDINARY),
    ("京O12345", ORDINARY),  # historic police authority letter O
    ("沪AD12345", NE_SMALL),
    ("浙AF12345", NE_SMALL),
    ("桂ADK1234", NE_SMALL),
    ("皖AF01234", NE_SMALL),
    ("粤B12345F", NE_LARGE),
    ("鄂A12345D", NE_LARGE),
    ("晋A12345F", NE_LARGE),
    ("浙A1234学", SUFFIX),
    ("新A1234学", SUFFIX),
    ("粤Z1234港", SUFFIX),
    ("粤Z1234澳", SUFFIX),
    ("使014578", SUFFIX),
    ("沪A1234领", SUFFIX),
    ("浙A1234警", SUFFIX),
    ("陕A1234警", SUFFIX),
    ("苏E1234挂", SUFFIX),
    ("蒙A1234挂", SUFFIX),
    ("京A1234应急", SUFFIX),
    ("吉A1234学", SUFFIX),
    ("", "empty"),
    ("浙I12345", "bad_authority"),
    ("浙112345", "bad_authority"),
    ("浙A1O345", "bad_serial"),
    ("浙A1I345", "bad_serial"),
    ("浙ADO1234", "bad_serial"),
    ("使A14578", "bad_serial"),
    ("浙AX12345", "bad_new_energy"),
    ("浙AD1234X", "bad_new_energy"),
    ("浙A1234DX", "bad_new_energy"),
    ("浙AD1234F", "bad_new_energy"),
    ("浙A123456", "bad_length"),
    ("浙A1234", "bad_length"),
    ("浙A123", "bad_length"),
    ("浙", "bad_length"),
    ("浙A12345学", "bad_length"),
    ("使01457", "bad_length"),
    ("港A12345", "unknown_province"),
    ("台A12345", "unknown_province"),
    ("A12345", "unknown_province"),
    ("浙A12345港", "bad_suffix"),
    ("粤A1234港", "bad_suffix"),
    ("浙Z1234澳", "bad_suffix"),
    ("浙A12学34", "bad_suffix"),
    ("浙A1234使", "bad_suffix"),
    ("浙A1234应", "bad_suffix"),
    ("浙A12😀45", "illegal_character"),
    ("浙A1234台", "illegal_character"),
    ("浙浙A12345", "illegal_character"),
]


@pytest.mark.parametrize(("raw", "expected"), STRICT_CASES)
def test_parse_plate_table(raw: str, expected: PlateShape | str) -> None:
    if isinstance(expected, PlateShape):
        plate = parse_plate(raw)
        assert plate.shape is expected
        assert plate.text == raw
    else:
        with pytest.raises(PlateError) as info:
            parse_plate(raw)
        assert info.value.reason == expected
        assert info.value.field == "plate"


def test_strict_table_covers_every_strict_shape_and_reason() -> None:
    covered = {expected for _, expected in STRICT_CASES}
    assert {ORDINARY, NE_SMALL, NE_LARGE, SUFFIX} <= covered
    assert REASONS - {"no_plate"} <= covered


@pytest.mark.parametrize(
    ("raw", "province", "suffix", "tail"),
    [
        ("浙A12345", "浙", None, "A12345"),
        ("京A1234应急", "京", "应急", "A1234应急"),
        ("粤Z1234港", "粤", "港", "Z1234港"),
        ("使014578", None, "使", "使014578"),
        ("沪A1234领", "沪", "领", "A1234领"),
    ],
)
def test_parse_plate_fields(raw: str, province: str | None, suffix: str | None, tail: str) -> None:
    plate = parse_plate(raw)
    assert (plate.province, plate.suffix, plate.tail) == (province, suffix, tail)
    assert plate.skeleton == skeleton(plate.text)
    assert plate.skeleton_tail == skeleton(plate.tail)


def test_plate_error_is_invalid_input_with_a_clerk_readable_message() -> None:
    with pytest.raises(InvalidInput) as info:
        parse_plate("浙A1O345")
    assert isinstance(info.value, PlateError)
    assert str(info.value) == "plate: '浙A1O345': letter O is not used in plate serials (0?)"


@pytest.mark.parametrize(
    "raw",
    [
        "浙A·12345",
        "浙 A 12345",
        "浙A-12345",
        "浙Ａ１２３４５",
        "浙a12345",
        "浙A・12345",
        "浙A•12345",
        "浙A．12345",
    ],
)
def test_normalize_variants(raw: str) -> None:
    assert normalize(raw) == "浙A12345"
    assert parse_plate(raw).text == "浙A12345"


def test_normalize_removes_every_unicode_whitespace() -> None:
    spaces = "".join(ch for ch in map(chr, range(sys.maxunicode + 1)) if ch.isspace())
    assert set(spaces) == set(_WHITESPACE)
    assert normalize(f"浙{spaces}a_1.2\u200b3\u20134\ufeff5 ") == "浙A12345"


# --- lenient reads ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "shape", "province", "tail"),
    [
        ("A12345", PlateShape.NO_PROVINCE, None, "A12345"),
        ("AD12345", PlateShape.NO_PROVINCE, None, "AD12345"),
        ("Z1234港", PlateShape.NO_PROVINCE, None, "Z1234港"),
        ("浙A1O345", PlateShape.NONSTANDARD, "浙", "A1O345"),
        ("浙A123", PlateShape.NONSTANDARD, "浙", "A123"),
        ("浙A1234567", PlateShape.NONSTANDARD, "浙", "A1234567"),
        ("I12345", PlateShape.NONSTANDARD, None, "I12345"),
        ("012345", PlateShape.NONSTANDARD, None, "012345"),
        ("浙a 12345", ORDINARY, "浙", "A12345"),
    ],
)
def test_read_plate_lenient(raw: str, shape: PlateShape, province: str | None, tail: str) -> None:
    plate = read_plate(raw)
    assert (plate.shape, plate.province, plate.tail) == (shape, province, tail)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("无牌", "no_plate"),
        ("无车牌", "no_plate"),
        ("未识别", "no_plate"),
        ("车牌", "no_plate"),
        ("无", "no_plate"),
        ("noplate", "no_plate"),
        ("No Plate", "no_plate"),
        ("Unknown", "no_plate"),
        ("", "empty"),
        (" · ", "empty"),
        ("浙A12😀45", "illegal_character"),
        ("浙A12?45", "illegal_character"),
        ("浙A12台45", "illegal_character"),
        ("A12浙345", "illegal_character"),
        ("浙", "bad_length"),
        ("浙A12", "bad_length"),
        ("浙A123456789", "bad_length"),
        ("浙ABCDEFG", "bad_serial"),
        ("ABCDEF", "bad_serial"),
    ],
)
def test_read_plate_rejects_absurd_input(raw: str, reason: str) -> None:
    with pytest.raises(PlateError) as info:
        read_plate(raw)
    assert info.value.reason == reason


# --- OCR confusion keys -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("浙A1O345", "浙A10345"),
        ("浙A8S2Z1", "浙AB5221"),
        ("浙AD12345", "浙A012345"),
        ("粤B6G1L7", "粤8G6I17"),
    ],
)
def test_confusable_reads_share_a_skeleton(a: str, b: str) -> None:
    assert skeleton(a) == skeleton(b)
    assert confusion_distance(a, b) > 0


def test_skeleton_classes() -> None:
    assert skeleton("0ODQ1IL78B5S2Z6G") == "0000111188552266"
    assert skeleton("odqilbszg") == "000118526"
    assert skeleton("浙AXY应急") == "浙AXY应急"
    assert skeleton("A\ud800O") == "A\ud8000"  # a lone surrogate cannot be UTF-8 encoded


@given(st.text())
def test_skeleton_bytes_path_matches_str_translate(text: str) -> None:
    assert skeleton(text) == text.translate(_SKELETON)


def test_different_provinces_share_the_tail() -> None:
    zhe, su = read_plate("浙A12345"), read_plate("苏A12345")
    assert zhe.tail == su.tail
    assert zhe.skeleton_tail == su.skeleton_tail
    assert zhe.skeleton != su.skeleton
    assert read_plate("A12345").skeleton_tail == zhe.skeleton_tail


def test_confusion_distance() -> None:
    assert confusion_distance("浙A1O345", "浙A10345") == 1
    assert confusion_distance("浙A12345", "浙A12345") == 0
    assert confusion_distance("A12345", "浙A12345") == 7


def test_mask() -> None:
    assert mask("浙A12345") == "浙A1***5"
    assert mask("浙AD12345") == "浙AD****5"
    assert mask("浙A1") == "***"
    assert mask("") == "***"


def test_plate_equality_ignores_derived_keys() -> None:
    plate = parse_plate("浙A12345")
    assert plate == Plate("浙A12345", ORDINARY, "浙", None)
    assert hash(plate) == hash(Plate("浙A12345", ORDINARY, "浙", None))


# --- properties ---------------------------------------------------------------------------------------

_PROVINCE_LIST = sorted(PROVINCES)
_AUTHORITY = "ABCDEFGHJKLMNOPQRSTUVWXYZ"
_SERIAL = "0123456789ABCDEFGHJKLMNPQRSTUVWXYZ"
_DIGITS = "0123456789"


def _run(alphabet: str, n: int) -> st.SearchStrategy[str]:
    return st.text(alphabet=alphabet, min_size=n, max_size=n)


def _concat(*parts: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.tuples(*parts).map("".join)


_province = st.sampled_from(_PROVINCE_LIST)
_authority = st.sampled_from(_AUTHORITY)
_ordinary = _concat(_province, _authority, _run(_SERIAL, 5))
_ne_small = _concat(_province, _authority, st.sampled_from("DF"), _run(_SERIAL, 1), _run(_DIGITS, 4))
_ne_large = _concat(_province, _authority, _run(_DIGITS, 5), st.sampled_from("DF"))
_suffixed = _concat(
    _province, _authority, _run(_SERIAL, 4), st.sampled_from(["学", "警", "挂", "领", "应急"])
)
_cross_border = _concat(st.just("粤Z"), _run(_SERIAL, 4), st.sampled_from("港澳"))
_embassy = _concat(st.just("使"), _run(_DIGITS, 6))

SHAPED_PLATES = st.one_of(
    _ordinary.map(lambda p: (p, ORDINARY)),
    _ne_small.map(lambda p: (p, NE_SMALL)),
    _ne_large.map(lambda p: (p, NE_LARGE)),
    _suffixed.map(lambda p: (p, SUFFIX)),
    _cross_border.map(lambda p: (p, SUFFIX)),
    _embassy.map(lambda p: (p, SUFFIX)),
)
VALID_PLATES = SHAPED_PLATES.map(lambda pair: pair[0])

_NOISE = [" ", "\u3000", "\t", "·", "・", "•", "-", "_", ".", "．", "－"]


def _fullwidth(ch: str) -> str:
    return chr(ord(ch) + 0xFEE0) if "!" <= ch <= "~" else ch


@given(SHAPED_PLATES)
def test_valid_plates_round_trip(pair: tuple[str, PlateShape]) -> None:
    text, shape = pair
    plate = parse_plate(normalize(text))
    assert plate.text == text
    assert plate.shape is shape
    assert read_plate(text) == plate


@given(VALID_PLATES, st.data())
def test_noisy_valid_plates_parse_to_the_same_text(text: str, data: st.DataObject) -> None:
    noisy = []
    for ch in text:
        noisy.append(data.draw(st.sampled_from(["", *_NOISE])))
        noisy.append(data.draw(st.sampled_from([ch, ch.lower(), _fullwidth(ch), _fullwidth(ch.lower())])))
    noisy.append(data.draw(st.sampled_from(["", *_NOISE])))
    assert parse_plate("".join(noisy)).text == text


@given(st.one_of(st.text(), VALID_PLATES))
def test_normalize_is_idempotent(text: str) -> None:
    once = normalize(text)
    assert normalize(once) == once


@given(st.text())
def test_skeleton_is_idempotent(text: str) -> None:
    once = skeleton(text)
    assert skeleton(once) == once
    assert len(once) == len(text)


@given(VALID_PLATES)
def test_valid_plate_skeleton_keeps_length(text: str) -> None:
    plate = parse_plate(text)
    assert len(plate.skeleton) == len(plate.text)
    assert len(plate.skeleton_tail) == len(plate.tail)


def _outcome(parse: Callable[[str], Plate], text: str) -> Plate | PlateError:
    # Any other exception propagates and fails the test.
    try:
        return parse(text)
    except PlateError as exc:
        return exc


@given(st.text())
def test_read_plate_raises_only_plate_error(text: str) -> None:
    outcome = _outcome(read_plate, text)
    if isinstance(outcome, PlateError):
        assert outcome.reason in REASONS
    else:
        assert outcome.text == normalize(text)


# Plate-like text, so the generator hits the rules rather than the illegal-character check.
_PLATE_ALPHABET = "".join(_PROVINCE_LIST[:4]) + "粤ZADFIO0123456789XB" + "".join(SUFFIXES) + "台"


@given(st.one_of(st.text(alphabet=_PLATE_ALPHABET, max_size=10), VALID_PLATES))
def test_diagnosis_agrees_with_the_fast_path(text: str) -> None:
    # parse_plate trusts _diagnose to explain every text _VALID refuses, and nothing else.
    assert (_VALID.fullmatch(text) is None) == (_diagnose(text) is not None)


@given(st.text(alphabet=_PLATE_ALPHABET, max_size=10))
def test_parse_plate_accepts_or_names_a_reason(text: str) -> None:
    outcome = _outcome(parse_plate, text)
    if isinstance(outcome, PlateError):
        assert outcome.reason in REASONS - {"no_plate"}
    else:
        assert outcome.shape in {ORDINARY, NE_SMALL, NE_LARGE, SUFFIX}


@given(VALID_PLATES)
def test_mask_never_returns_the_plate(text: str) -> None:
    masked = mask(text)
    assert masked != text
    assert len(masked) == len(text)
    assert "*" in masked
