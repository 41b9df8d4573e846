"""Text decoding on purpose: UTF-8, declared GBK/GB2312/GB18030, detected GB18030, XML prologs."""

from __future__ import annotations

import pytest

from connectors.records import AdapterError, charset_of, decode_text

TEXT = '{"plate": "浙J12345", "lot": "椒江万达"}'


@pytest.mark.parametrize(
    ("content_type", "expected"),
    [
        ("application/json; charset=GBK", "gbk"),
        ('text/xml; charset="gb2312"', "gb2312"),
        ("application/json", None),
        (None, None),
        ("application/json; boundary=x; Charset=UTF-8", "utf-8"),
    ],
)
def test_charset_of(content_type: str | None, expected: str | None) -> None:
    assert charset_of(content_type) == expected


def test_utf8_with_and_without_bom() -> None:
    assert decode_text(TEXT.encode()) == (TEXT, "utf-8")
    assert decode_text(b"\xef\xbb\xbf" + TEXT.encode()) == (TEXT, "utf-8")


@pytest.mark.parametrize("declared", ["gbk", "gb2312", "gb18030", "cp936"])
def test_declared_gb_family_is_decoded_as_gb18030(declared: str) -> None:
    assert decode_text(TEXT.encode("gbk"), declared) == (TEXT, "gb18030")


def test_undeclared_gbk_is_detected() -> None:
    assert decode_text(TEXT.encode("gbk")) == (TEXT, "gb18030")


def test_xml_prolog_declares_the_encoding() -> None:
    xml = '<?xml version="1.0" encoding="GB2312"?><a>浙J12345</a>'
    assert decode_text(xml.encode("gb2312")) == (xml, "gb18030")


@pytest.mark.parametrize(
    ("body", "declared", "field"),
    [
        (TEXT.encode("gbk"), "utf-8", "body"),  # declared UTF-8, sent GBK
        (b"abc", "klingon", "charset"),
        # Labels Python knows as codecs, but of no text (issue 16: LookupError/UnicodeError escaped).
        (b"abc", "rot13", "charset"),
        (b"abc", "zlib", "charset"),
        (b"abc", "base64", "charset"),
        (b"abc", "undefined", "charset"),
        (b"abc", "utf\x00-8", "charset"),
        (b'<?xml version="1.0" encoding="zlib"?><a/>', None, "charset"),
        (b'<?xml version="1.0" encoding="undefined"?><a/>', None, "charset"),
        (b"\x81\x20\xff\xfe", None, "body"),  # neither UTF-8 nor GB18030
    ],
)
def test_undecodable_bodies_are_refused_naming_why(body: bytes, declared: str | None, field: str) -> None:
    with pytest.raises(AdapterError) as caught:
        decode_text(body, declared)
    assert (caught.value.reason, caught.value.field) == ("bad_encoding", field)


def test_the_encoding_named_is_the_codecs_own_not_the_senders_label() -> None:
    # It becomes a metric label: a sender's spelling must not create a series of its own.
    assert decode_text(b"abc", "UTF8".lower()) == ("abc", "utf-8")
    assert decode_text(b"abc", "latin_1") == ("abc", "iso8859-1")
    assert decode_text(b"abc", "l1") == ("abc", "iso8859-1")


def test_a_hostile_label_is_not_echoed_whole() -> None:
    with pytest.raises(AdapterError) as caught:
        decode_text(b"abc", "x" * 100_000)
    assert len(str(caught.value)) < 200


@pytest.mark.parametrize(
    ("body", "declared"),
    [
        # isapi_anpr (python -m tests.fuzz): a UTF-7 prolog and "+2AA-" in the text decode to U+D800, a
        # lone surrogate; ElementTree then raised UnicodeEncodeError out of parse_anpr.
        (
            b'<?xml version="1.0" encoding="UTF-7"?><EventNotificationAlert>+2AA-</EventNotificationAlert>',
            None,
        ),
        (b'{"plate": "+2AA-"}', "utf-7"),
        (b'{"plate": "\\ud800"}', "unicode_escape"),
    ],
)
def test_text_holding_a_lone_surrogate_is_no_text(body: bytes, declared: str | None) -> None:
    with pytest.raises(AdapterError) as caught:
        decode_text(body, declared)
    assert (caught.value.reason, caught.value.field) == ("bad_encoding", "body")
    assert "surrogate" in str(caught.value)
