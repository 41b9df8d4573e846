"""Hikvision ISAPI ANPR notifications (EventNotificationAlert XML, alone or in multipart) as raw reads.

Cameras set up with an "HTTP listening" / alarm host POST one ``EventNotificationAlert`` per vehicle:
either the XML alone (``application/xml``) or ``multipart/form-data`` with the XML part (``anpr.xml``) and
JPEG parts (``licensePlatePicture.jpg``, ``detectionPicture.jpg``, …). Pictures are counted, never kept.
Field names and values follow Hikvision's ISAPI ANPR message description and payloads captured from
real cameras; the module docstring of the tests names the samples.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import datetime, tzinfo
from email import policy
from email.message import Message
from email.parser import BytesParser
from typing import Final

from connectors.records import SHANGHAI, AdapterError, RawRead, charset_of, decode_text, localize
from streams.events import SourceKind
from streams.plates import PROVINCES
from streams.vehicles import PlateColour

__all__ = ["NO_PLATE_MARKERS", "AnprEvent", "parse_anpr"]


@dataclass(frozen=True, slots=True)
class AnprEvent:
    """One ANPR notification: the read, and how many pictures came with it (counted, not stored)."""

    read: RawRead
    pictures: int


# ISAPI's own licensePlate values for "no plate": noPlate = a vehicle without a plate was seen, unknown =
# the plate was not recognized (compared case-insensitively). Chinese words for "no plate" are left to
# the plate normalizer, which knows every vendor's.
NO_PLATE_MARKERS: Final[frozenset[str]] = frozenset({"noplate", "unknown"})

# ISAPI plateColor values (keys case-folded). PlateColour is the background colour, so civil-aviation
# plates go with their colour. golden, orange, red, brown, mixedColor, other and unknown stay UNKNOWN.
_PLATE_COLOURS: Final[dict[str, PlateColour]] = {
    "blue": PlateColour.BLUE,
    "yellow": PlateColour.YELLOW,
    "white": PlateColour.WHITE,
    "black": PlateColour.BLACK,
    "green": PlateColour.GREEN,
    "newenergygreen": PlateColour.GREEN,
    "newenergyyellowgreen": PlateColour.YELLOW_GREEN,
    "civilaviationblack": PlateColour.BLACK,
    "civilaviationgreen": PlateColour.GREEN,
}

# Chinese-market firmware prefixes Chinese plates with their colour (蓝浙AX2P12); the normalizer would
# refuse 蓝 as an illegal character, so the prefix is split off here. 黑 is also Heilongjiang's province
# abbreviation: a leading 黑 is a colour only when a province follows it (黑黑A12345), never in 黑A12345.
_PREFIX_COLOURS: Final[dict[str, PlateColour]] = {
    "蓝": PlateColour.BLUE,
    "黄": PlateColour.YELLOW,
    "白": PlateColour.WHITE,
    "黑": PlateColour.BLACK,
    "绿": PlateColour.GREEN,
    "黄绿": PlateColour.YELLOW_GREEN,
}
_COLOUR_PREFIX: Final = re.compile(
    rf"(?P<before_province>[蓝黄白绿黑]+?)(?=[{''.join(sorted(PROVINCES))}使])"
    r"|(?P<before_letter>[蓝黄白绿]+)(?=[A-Z0-9])"
)

# ANPR/EntranceInfo/direction on parking-lot cameras, ANPR/Custom/direction for custom road types
# (its third value, parkind, says nothing about entry or exit). ANPR/direction (forward/reverse) is the
# vehicle's heading relative to the lens, not entry or exit, and is not used.
_GATE_DIRECTIONS: Final[dict[str, SourceKind]] = {
    "enter": SourceKind.PARKING_ENTRY,
    "leave": SourceKind.PARKING_EXIT,
}

# The stdlib parser expands internal entities (billion laughs, quadratic blowup) and ISAPI messages never
# carry a DTD, so any declaration is refused before the parser sees the text.
_DECLARATION: Final = re.compile(r"<!\s*(?:DOCTYPE|ENTITY)", re.IGNORECASE)
_BOM_AND_SPACE: Final = b"\xef\xbb\xbf \t\r\n"


def parse_anpr(
    body: bytes, content_type: str | None, *, tz: tzinfo = SHANGHAI, max_parts: int = 8
) -> AnprEvent | None:
    """Turn one ISAPI notification body into a read, or None when it carries no plate read.

    None means "answer 200 and count it": a heartbeat, any other event type (videoloss, VMD, …), an
    inactive event, or an ANPR event whose plate is the camera's no-plate marker. Reads are
    ``SourceKind.CHECKPOINT`` unless the camera says parking entry/exit (the device registry overrides
    either); times without an offset are local to ``tz``.

    Raises:
        AdapterError: ``bad_multipart`` (no boundary, truncated, more than ``max_parts`` parts),
            ``missing_xml`` (multipart without an XML part), ``bad_encoding``, ``bad_xml`` (not
            well-formed, a DTD, not an EventNotificationAlert), ``missing_field`` / ``invalid_field``
            naming the ISAPI field (licensePlate, dateTime, confidenceLevel, …).
    """
    media_type = (content_type or "").partition(";")[0].strip().lower()
    if content_type and media_type.startswith("multipart/"):
        xml, xml_type, pictures = _xml_part(body, content_type, max_parts)
    else:
        xml, xml_type, pictures = body, content_type, 0
    text, _ = decode_text(xml, charset_of(xml_type))
    return _event(_parse_alert(text), pictures, tz)


def _xml_part(body: bytes, content_type: str, max_parts: int) -> tuple[bytes, str | None, int]:
    """The XML part of a multipart body, its Content-Type, and the number of picture parts."""
    if "\r" in content_type or "\n" in content_type:
        raise AdapterError("bad_multipart", "Content-Type spans several lines", field="Content-Type")
    head = Message()
    head["Content-Type"] = content_type
    boundary = head.get_boundary()
    if not boundary:
        raise AdapterError("bad_multipart", "multipart body without a boundary", field="Content-Type")
    try:
        header = b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n"
        delimiter = b"--" + boundary.encode("latin-1")
    except UnicodeEncodeError as exc:
        raise AdapterError("bad_multipart", "boundary is not Latin-1 text", field="Content-Type") from exc
    # Parsing cost grows with the number of parts: a flood is refused before the parser sees it. Each part
    # needs one delimiter, and the close delimiter adds one.
    if body.count(delimiter) > max_parts + 1:
        raise AdapterError("bad_multipart", f"more than {max_parts} parts", field="body")
    message = BytesParser(policy=policy.HTTP).parsebytes(header + body)
    # The parser is lenient: it records a missing start or close delimiter as a defect and carries on.
    if message.defects or not message.is_multipart():
        found = ", ".join(type(defect).__name__ for defect in message.defects) or "no parts"
        raise AdapterError("bad_multipart", f"truncated or malformed multipart body ({found})", field="body")
    xml: tuple[bytes, str | None] | None = None
    pictures = 0
    for part in message.iter_parts():
        payload = part.get_payload(decode=True)
        if not isinstance(payload, bytes):
            continue  # a nested multipart, which ISAPI never sends
        part_type = part.get_content_type()
        if xml is None and ("xml" in part_type or payload.lstrip(_BOM_AND_SPACE).startswith(b"<")):
            header_value = part.get("Content-Type")
            xml = (payload, None if header_value is None else str(header_value))
        elif part_type.startswith("image/"):
            pictures += 1
    if xml is None:
        raise AdapterError("missing_xml", "multipart body without an XML part", field="body")
    return xml[0], xml[1], pictures


def _parse_alert(text: str) -> ET.Element:
    """The EventNotificationAlert element; blank lines before the XML declaration are tolerated."""
    if _DECLARATION.search(text):
        raise AdapterError("bad_xml", "DOCTYPE and ENTITY declarations are not allowed", field="body")
    try:
        # S314: the entity-expansion attacks defusedxml guards against are refused above.
        root = ET.fromstring(text.lstrip())  # noqa: S314
    except ET.ParseError as exc:
        raise AdapterError("bad_xml", f"not well-formed XML: {exc}", field="body") from exc
    if _local(root.tag) != "EventNotificationAlert":
        raise AdapterError(
            "bad_xml", f"expected an EventNotificationAlert, got <{_local(root.tag)}>", field="body"
        )
    return root


def _event(alert: ET.Element, pictures: int, tz: tzinfo) -> AnprEvent | None:
    event_type = _text(alert, "eventType")
    if event_type is None or event_type.casefold() != "anpr":
        return None
    # ISAPI: inactive = "invalid event"; the heartbeat of some firmware is also sent this way.
    if (_text(alert, "eventState") or "").casefold() == "inactive":
        return None
    anpr = _child(alert, "ANPR")
    reported = _text(anpr, "licensePlate")
    if reported is None:
        raise AdapterError("missing_field", "ANPR event without a licensePlate", field="licensePlate")
    if reported.casefold() in NO_PLATE_MARKERS:
        return None
    plate, prefix_colour = _split_colour(reported)
    device_id = _device_id(alert)
    observed_at = _observed_at(alert, tz)
    # ISAPI: UUID identifies the vehicle pass; a second upload of the same pass (hasMoreData, then the
    # pictures) carries the same UUID, so it becomes the same sighting.
    record_id = _text(alert, "UUID") or f"{device_id}|{observed_at.isoformat()}|{plate}"
    colour = _PLATE_COLOURS.get((_text(anpr, "plateColor") or "").casefold(), prefix_colour)
    read = RawRead(
        record_id=record_id,
        device_id=device_id,
        source_kind=_source_kind(anpr),
        plate_raw=plate,
        observed_at=observed_at,
        plate_colour=colour,
        confidence=_confidence(anpr),
    )
    return AnprEvent(read=read, pictures=pictures)


def _split_colour(reported: str) -> tuple[str, PlateColour]:
    """The plate without a Chinese colour prefix, and the colour the prefix names."""
    match = _COLOUR_PREFIX.match(reported)
    if match is None:
        return reported, PlateColour.UNKNOWN
    prefix = match.group("before_province") or match.group("before_letter")
    return reported[match.end() :], _PREFIX_COLOURS.get(prefix, PlateColour.UNKNOWN)


def _device_id(alert: ET.Element) -> str:
    """``<identity>:<channelID>``: the MAC, else deviceUUID, else the IP address; channel 1 if absent.

    The MAC is burnt in and sent by every firmware seen; deviceUUID (the serial number by default, but
    editable) only by some, and IP addresses move with DHCP. The channel keeps apart the cameras behind
    one NVR, which may send no MAC at all.
    """
    mac = _text(alert, "macAddress")
    identity = mac.lower() if mac else _text(alert, "deviceUUID") or _text(alert, "ipAddress")
    if identity is None:
        raise AdapterError(
            "missing_field", "no macAddress, deviceUUID or ipAddress names the camera", field="ipAddress"
        )
    return f"{identity}:{_text(alert, 'channelID') or '1'}"


def _observed_at(alert: ET.Element, tz: tzinfo) -> datetime:
    raw = _text(alert, "dateTime")
    if raw is None:
        raise AdapterError("missing_field", "ANPR event without a dateTime", field="dateTime")
    try:
        return localize(datetime.fromisoformat(raw), tz)
    except ValueError as exc:
        raise AdapterError("invalid_field", f"{raw!r} is not an ISO 8601 time", field="dateTime") from exc


def _confidence(anpr: ET.Element | None) -> float | None:
    raw = _text(anpr, "confidenceLevel")
    if raw is None:
        return None
    try:
        level = float(raw)
    except ValueError:
        level = float("nan")
    if not 0 <= level <= 100:  # also refuses NaN
        raise AdapterError("invalid_field", f"{raw!r} is not a level from 0 to 100", field="confidenceLevel")
    return level / 100


def _source_kind(anpr: ET.Element | None) -> SourceKind:
    for block in ("EntranceInfo", "Custom"):
        kind = _GATE_DIRECTIONS.get((_text(_child(anpr, block), "direction") or "").casefold())
        if kind is not None:
            return kind
    return SourceKind.CHECKPOINT


# Namespaces vary by firmware (hikvision.com ver10/ver20, isapi.org ver20, none), so elements are matched
# by local name.
def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _child(parent: ET.Element | None, name: str) -> ET.Element | None:
    if parent is None:
        return None
    return next((child for child in parent if _local(child.tag) == name), None)


def _text(parent: ET.Element | None, name: str) -> str | None:
    """The stripped text of a direct child, None when it is absent or blank."""
    node = _child(parent, name)
    text = node.text.strip() if node is not None and node.text is not None else ""
    return text or None
