"""What every adapter produces: raw reads in canonical vocabulary, before enrichment and validation.

An adapter turns one foreign payload into :class:`RawRead` objects (or :class:`AdapterError` per
record, naming the field and the reason); the ingest core (:mod:`connectors.ingest`) enriches them from
the device registry, validates them into canonical sightings and publishes them. Adapters are pure:
bytes in, reads out, no I/O.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass
from datetime import datetime, tzinfo
from zoneinfo import ZoneInfo

from streams.errors import InvalidInput
from streams.events import Location, SourceKind
from streams.vehicles import PlateColour

SHANGHAI = ZoneInfo("Asia/Shanghai")


class AdapterError(InvalidInput):
    """A received record that cannot become a read; ``reason`` is a stable code, ``field`` the culprit.

    ``index`` is the record's position in a batch payload (None for a whole-payload error).
    """

    def __init__(
        self, reason: str, message: str, *, field: str | None = None, index: int | None = None
    ) -> None:
        super().__init__(reason, message, field=field)
        self.index = index


@dataclass(frozen=True, slots=True)
class RawRead:
    """One plate read as a sender reported it, in our vocabulary."""

    record_id: str  # the sender's own id for the record (a resend carries the same one)
    device_id: str
    source_kind: SourceKind
    plate_raw: str
    observed_at: datetime  # timezone-aware; see :func:`localize`
    plate_colour: PlateColour = PlateColour.UNKNOWN
    confidence: float | None = None  # 0..1
    image_ref: str | None = None
    location: Location | None = None  # when the sender itself gives coordinates


def localize(value: datetime, tz: tzinfo = SHANGHAI) -> datetime:
    """A device time with its offset: naive times are the device's local time (Asia/Shanghai by default)."""
    return value if value.tzinfo is not None else value.replace(tzinfo=tz)


# GB2312 and GBK are subsets of GB18030: decoding with the superset never loses a character they encode.
_GB_FAMILY = {"gb2312", "gbk", "cp936", "gb18030", "euc-cn", "x-gbk", "hz-gb-2312"}
_NO_SURROGATES = frozenset({"utf-8", "gb18030"})
_SURROGATE = re.compile("[\ud800-\udfff]")
_XML_ENCODING = re.compile(rb"""^\s*<\?xml[^>]*encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")


def charset_of(content_type: str | None) -> str | None:
    """The charset parameter of a Content-Type header, lower case, or None."""
    if not content_type:
        return None
    for part in content_type.split(";")[1:]:
        name, _, value = part.strip().partition("=")
        if name.strip().lower() == "charset" and value.strip():
            return value.strip().strip('"').lower()
    return None


def decode_text(body: bytes, declared: str | None = None) -> tuple[str, str]:
    """Decode a text body on purpose; return (text, encoding used).

    A declared charset (header, or an XML prolog) is honoured, the GB family decoded as GB18030. With
    none, UTF-8 is tried strictly (a BOM is skipped) and GB18030 is the fallback for older devices. The
    encoding returned is the codec's canonical name (``utf-8``, ``gb18030``, ``big5``…), never the
    sender's label: it is a metric label, so it must come from a closed set.

    Raises:
        AdapterError: ``bad_encoding`` when the body is not text in the declared (or any tried) encoding
            (a lone surrogate is no text either), or the declared charset is unknown or no text encoding
            at all (``rot13``, ``zlib``).
    """
    if declared is None:
        prolog = _XML_ENCODING.match(body[:200])
        if prolog:
            declared = prolog.group(1).decode("ascii").lower()
    if declared is not None:
        label = declared[:40]  # quoted in the answer: a hostile label must not fill it
        name = "gb18030" if declared in _GB_FAMILY else declared
        try:
            codec = codecs.lookup(name)
        except (LookupError, ValueError) as exc:  # ValueError: a label with a NUL in it
            raise AdapterError("bad_encoding", f"unknown charset {label!r}", field="charset") from exc
        # Python's codec registry also holds bytes-to-bytes (zlib, base64) and str-to-str (rot13) codecs.
        if not getattr(codec, "_is_text_encoding", True):
            raise AdapterError("bad_encoding", f"charset {label!r} is not a text encoding", field="charset")
        try:
            text = body.decode("utf-8-sig" if codec.name == "utf-8" else codec.name)
        except UnicodeDecodeError as exc:
            raise AdapterError(
                "bad_encoding", f"body is not valid {label} text (byte {exc.start})", field="body"
            ) from exc
        except (UnicodeError, LookupError) as exc:  # codecs such as 'undefined' refuse every input
            raise AdapterError(
                "bad_encoding", f"charset {label!r} cannot decode text", field="charset"
            ) from exc
        # UTF-7 and the escape codecs decode "+2AA-" or "\ud800" to a lone surrogate, which no parser
        # or store downstream can encode again (ElementTree raised UnicodeEncodeError). UTF-8 and
        # GB18030, nearly every body, never yield one.
        if codec.name not in _NO_SURROGATES and (lone := _SURROGATE.search(text)):
            raise AdapterError(
                "bad_encoding",
                f"body is not {label} text: it decodes to a lone surrogate (character {lone.start()})",
                field="body",
            )
        return text, codec.name
    try:
        return body.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        return body.decode("gb18030"), "gb18030"
    except UnicodeDecodeError as exc:
        raise AdapterError(
            "bad_encoding", f"body is neither UTF-8 nor GB18030 text (byte {exc.start})", field="body"
        ) from exc
