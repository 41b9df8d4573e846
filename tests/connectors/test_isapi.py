"""Hikvision ISAPI ANPR notifications: plain XML, multipart, encodings, hostile input, field mapping.

The samples follow real payloads, with the values changed:

- maciej-or/hikvision_next, tests/fixtures/ISAPI/EventNotificationAlert/ipc1_anpr_plate_detected.xml and
  ipc1_anpr_plate_unknown.xml (a DS-2CD4A26FWD, hikvision.com ver20 namespace; licensePlate "unknown"
  when nothing was read);
- Chinese-market captures quoted in public code: licensePlate "蓝苏A8HK52" / "蓝皖A7XG66" with plateColor
  blue, multipart parts ``anpr.xml`` + ``licensePlatePicture.jpg`` (+ ``detectionPicture.jpg``), an
  IE-style boundary of dashes, part headers with Content-Length;
- Hikvision's ISAPI ANPR message description (plateColor values, noPlate/unknown, EntranceInfo/direction,
  UUID per vehicle pass, deviceUUID) and the heartBeat sample of its alarm-receiving chapter.
"""

from __future__ import annotations

import contextlib
import re
import time
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors import isapi
from connectors.isapi import AnprEvent, parse_anpr
from connectors.records import AdapterError
from streams.events import SourceKind
from streams.vehicles import PlateColour

SHANGHAI = ZoneInfo("Asia/Shanghai")
ISAPI_NS = ' xmlns="http://www.isapi.org/ver20/XMLSchema"'
UUID = "46dd0716-1dd2-11b2-821f-0a1b2c3d4e5f"
BOUNDARY = "---------------------------7e1a2b3c4d5e6"
MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"
# Fake JPEGs holding CR, LF and dashes, the bytes a careless splitter trips over.
JPEG_PLATE = b"\xff\xd8\xff\xe0plate\r\n--\r\n" + bytes(range(256)) + b"\xff\xd9"
JPEG_SCENE = b"\xff\xd8\xff\xe0scene\n\n--" + BOUNDARY[:10].encode() + b"\xff\xd9"


def _el(name: str, value: str | None) -> str:
    return "" if value is None else f"<{name}>{value}</{name}>"


def alert_xml(
    *,
    plate: str | None = "蓝浙J12345",
    colour: str | None = "blue",
    when: str | None = "2026-03-02T08:15:42+08:00",
    mac: str | None = "BC:5E:33:0A:1B:2C",
    uuid: str | None = UUID,
    confidence: str | None = "97",
    event_type: str = "ANPR",
    event_state: str = "active",
    head_extra: str = "",
    anpr_extra: str = "",
    xmlns: str = ISAPI_NS,
    encoding: str = "UTF-8",
) -> str:
    """An ANPR EventNotificationAlert shaped like a Chinese-market capture camera's."""
    return f"""<?xml version="1.0" encoding="{encoding}"?>
<EventNotificationAlert version="2.0"{xmlns}>
<ipAddress>192.168.100.31</ipAddress>
<ipv6Address>::</ipv6Address>
<portNo>80</portNo>
<protocol>HTTP</protocol>
{_el("macAddress", mac)}
<channelID>1</channelID>
{_el("dateTime", when)}
<activePostCount>1</activePostCount>
<eventType>{event_type}</eventType>
<eventState>{event_state}</eventState>
<eventDescription>{event_type}</eventDescription>
<channelName>IP CAPTURE CAMERA</channelName>
{head_extra}
<ANPR>
<country>59</country>
{_el("licensePlate", plate)}
<line>1</line>
<direction>reverse</direction>
{_el("confidenceLevel", confidence)}
<plateType>92TypeCivil</plateType>
{_el("plateColor", colour)}
<licenseBright>0</licenseBright>
<plateCharBelieve>99,99,99,99,99,99,99</plateCharBelieve>
<vehicleType>vehicle</vehicleType>
<detectDir>2</detectDir>
<detectType>3</detectType>
<pictureInfoList>
<pictureInfo><fileName>licensePlatePicture.jpg</fileName><type>licensePlatePicture</type>
<dataType>0</dataType></pictureInfo>
<pictureInfo><fileName>detectionPicture.jpg</fileName><type>detectionPicture</type>
<dataType>0</dataType><plateRect><X>375</X><Y>645</Y><width>227</width><height>118</height></plateRect>
</pictureInfo>
</pictureInfoList>
{anpr_extra}
</ANPR>
{_el("UUID", uuid)}
<picNum>2</picNum>
<VehicleGATInfo><palteTypeByGAT>2</palteTypeByGAT><plateColorByGAT>2</plateColorByGAT></VehicleGATInfo>
</EventNotificationAlert>
"""


# An overseas-market camera (hikvision.com ver20 namespace, no colour prefix on the plate).
OVERSEAS = b"""<?xml version="1.0" encoding="UTF-8"?>
<EventNotificationAlert version="2.0"
  xmlns="http://www.hikvision.com/ver20/XMLSchema">
  <ipAddress>10.2.7.188</ipAddress>
  <portNo>8123</portNo>
  <protocol>HTTP</protocol>
  <macAddress>bc:5e:33:71:0f:9d</macAddress>
  <channelID>1</channelID>
  <dateTime>2025-06-14T09:41:07+01:00</dateTime>
  <activePostCount>1</activePostCount>
  <eventType>ANPR</eventType>
  <eventState>active</eventState>
  <eventDescription>ANPR</eventDescription>
  <channelName>Camera 01</channelName>
  <ANPR>
    <country>5</country>
    <licensePlate>KH71830</licensePlate>
    <line>1</line>
    <direction>forward</direction>
    <confidenceLevel>100</confidenceLevel>
    <plateType>unknown</plateType>
    <plateColor>unknown</plateColor>
    <vehicleType>vehicle</vehicleType>
    <originalLicensePlate>KH71830</originalLicensePlate>
    <vehicleListName>otherList</vehicleListName>
  </ANPR>
  <UUID>2025061409410718200aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789abcdefghij</UUID>
  <picNum>2</picNum>
  <isDataRetransmission>false</isDataRetransmission>
</EventNotificationAlert>"""

# The heartbeat sample of Hikvision's alarm-receiving chapter.
HEARTBEAT = b"""<EventNotificationAlert version="2.0" xmlns="http://www.isapi.org/ver20/XMLSchema">
<ipAddress>10.17.133.46</ipAddress>
<portNo>80</portNo>
<protocol>HTTP</protocol>
<macAddress>44:19:b6:6d:24:85</macAddress>
<channelID>1</channelID>
<dateTime>2017-05-04T11:20:02+08:00</dateTime>
<activePostCount>0</activePostCount>
<eventType>heartBeat</eventType>
<eventState>active</eventState>
<eventDescription>heartBeat</eventDescription>
</EventNotificationAlert>"""


def part(name: str, content_type: str, payload: bytes) -> tuple[bytes, bytes]:
    headers = (
        f'Content-Disposition: form-data; name="{name}";filename="{name}"\r\n'
        f"Content-Type: {content_type}\r\nContent-Length: {len(payload)}"
    ).encode()
    return headers, payload


def multipart(*parts: tuple[bytes, bytes], close: bool = True) -> bytes:
    delimiter = b"--" + BOUNDARY.encode()
    body = b"".join(
        delimiter + b"\r\n" + headers + b"\r\n\r\n" + payload + b"\r\n" for headers, payload in parts
    )
    return body + (delimiter + b"--\r\n" if close else b"")


def camera_multipart(xml: bytes, xml_type: str = 'application/xml; charset="UTF-8"') -> bytes:
    return multipart(
        part("anpr.xml", xml_type, xml),
        part("licensePlatePicture.jpg", "image/jpeg", JPEG_PLATE),
        part("detectionPicture.jpg", "image/jpeg", JPEG_SCENE),
    )


def parsed(body: bytes, content_type: str | None = "application/xml", **kwargs: object) -> AnprEvent:
    event = parse_anpr(body, content_type, **kwargs)  # type: ignore[arg-type]
    assert event is not None
    return event


def refused(body: bytes, content_type: str | None = "application/xml") -> AdapterError:
    with pytest.raises(AdapterError) as caught:
        parse_anpr(body, content_type)
    return caught.value


# --- the happy paths ---------------------------------------------------------------------------------


def test_public_api() -> None:
    assert set(isapi.__all__) == {"NO_PLATE_MARKERS", "AnprEvent", "parse_anpr"}


def test_plain_xml_from_an_overseas_camera() -> None:
    event = parsed(OVERSEAS, 'application/xml; charset="UTF-8"')
    read = event.read
    assert event.pictures == 0
    assert read.plate_raw == "KH71830"
    assert read.device_id == "bc:5e:33:71:0f:9d:1"
    assert read.record_id.startswith("2025061409410718200aBcDe")
    assert read.observed_at == datetime(2025, 6, 14, 8, 41, 7, tzinfo=UTC)
    assert read.plate_colour is PlateColour.UNKNOWN
    assert read.confidence == 1.0
    assert read.source_kind is SourceKind.CHECKPOINT
    assert read.image_ref is None
    assert read.location is None


def test_multipart_from_a_chinese_camera_counts_two_pictures() -> None:
    event = parsed(camera_multipart(alert_xml().encode()), MULTIPART)
    read = event.read
    assert event.pictures == 2
    assert read.plate_raw == "浙J12345"  # the 蓝 colour prefix is split off
    assert read.plate_colour is PlateColour.BLUE
    assert read.record_id == UUID
    assert read.device_id == "bc:5e:33:0a:1b:2c:1"
    assert read.observed_at == datetime(2026, 3, 2, 8, 15, 42, tzinfo=SHANGHAI)
    assert read.observed_at.utcoffset() == timedelta(hours=8)
    assert read.confidence == pytest.approx(0.97)


def test_the_same_event_reads_the_same_alone_or_in_multipart() -> None:
    xml = alert_xml().encode()
    assert parsed(xml).read == parsed(camera_multipart(xml), MULTIPART).read


def test_xml_part_found_by_its_body_when_its_content_type_is_generic() -> None:
    body = multipart(
        part("licensePlatePicture.jpg", "image/jpeg", JPEG_PLATE),
        part("anpr.xml", "application/octet-stream", b"\xef\xbb\xbf\r\n" + alert_xml().encode()),
    )
    event = parsed(body, MULTIPART)
    assert (event.read.plate_raw, event.pictures) == ("浙J12345", 1)


def test_a_missing_content_type_is_read_as_xml() -> None:
    assert parsed(OVERSEAS, None).read.plate_raw == "KH71830"


@pytest.mark.parametrize("declared", ["GB2312", "GBK", "gb18030"])
@pytest.mark.parametrize("in_multipart", [False, True])
def test_gb_encoded_xml_from_older_devices(declared: str, in_multipart: bool) -> None:
    xml = alert_xml(plate="浙J12345", colour="yellow", encoding=declared).encode("gb2312")
    if in_multipart:
        event = parsed(camera_multipart(xml, xml_type="application/xml"), MULTIPART)
    else:
        event = parsed(xml, "text/xml")
    assert event.read.plate_raw == "浙J12345"
    assert event.read.plate_colour is PlateColour.YELLOW


def test_a_charset_the_bytes_do_not_match_is_refused() -> None:
    xml = alert_xml(encoding="GB2312").encode("gb2312")
    error = refused(xml, 'application/xml; charset="UTF-8"')
    assert error.reason == "bad_encoding"


# --- nothing to read ---------------------------------------------------------------------------------


def test_heartbeat_is_not_a_read() -> None:
    assert parse_anpr(HEARTBEAT, "application/xml") is None
    assert parse_anpr(camera_multipart(HEARTBEAT), MULTIPART) is None


@pytest.mark.parametrize(
    ("event_type", "event_state"), [("videoloss", "inactive"), ("VMD", "active"), ("ANPR", "inactive")]
)
def test_other_and_inactive_events_are_not_reads(event_type: str, event_state: str) -> None:
    xml = alert_xml(event_type=event_type, event_state=event_state).encode()
    assert parse_anpr(xml, "application/xml") is None


@pytest.mark.parametrize("marker", ["unknown", "noPlate", "UNKNOWN", " unknown "])
def test_the_isapi_no_plate_markers_are_not_reads(marker: str) -> None:
    assert parse_anpr(alert_xml(plate=marker, colour="unknown").encode(), None) is None


def test_chinese_no_plate_words_are_left_to_the_plate_normalizer() -> None:
    assert parsed(alert_xml(plate="无车牌", colour="unknown").encode()).read.plate_raw == "无车牌"


# --- broken and hostile input ------------------------------------------------------------------------


def test_truncated_xml() -> None:
    xml = alert_xml().encode()
    error = refused(xml[: len(xml) // 2])
    assert (error.reason, error.field) == ("bad_xml", "body")


def test_a_document_that_is_not_an_event_notification() -> None:
    error = refused(b'<ResponseStatus version="2.0"><statusCode>1</statusCode></ResponseStatus>')
    assert error.reason == "bad_xml"
    assert "ResponseStatus" in str(error)


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<EventNotificationAlert><eventType>ANPR</eventType><ANPR><licensePlate>&lol9;</licensePlate></ANPR>
</EventNotificationAlert>"""

EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!doctype EventNotificationAlert [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<EventNotificationAlert><eventType>ANPR</eventType></EventNotificationAlert>"""


@pytest.mark.parametrize("body", [BILLION_LAUGHS, EXTERNAL_ENTITY], ids=["billion-laughs", "external"])
@pytest.mark.parametrize("in_multipart", [False, True])
def test_dtds_are_refused_before_parsing(body: bytes, in_multipart: bool) -> None:
    started = time.perf_counter()
    error = refused(camera_multipart(body), MULTIPART) if in_multipart else refused(body)
    assert time.perf_counter() - started < 0.5
    assert error.reason == "bad_xml"
    assert "not allowed" in str(error)


def test_multipart_without_a_boundary() -> None:
    error = refused(camera_multipart(alert_xml().encode()), "multipart/form-data")
    assert (error.reason, error.field) == ("bad_multipart", "Content-Type")


def test_multipart_with_another_boundary_than_declared() -> None:
    error = refused(camera_multipart(alert_xml().encode()), "multipart/form-data; boundary=AaB03x")
    assert error.reason == "bad_multipart"


def test_truncated_multipart() -> None:
    body = camera_multipart(alert_xml().encode())
    error = refused(body[: len(body) - 40], MULTIPART)
    assert error.reason == "bad_multipart"


def test_multipart_without_an_xml_part() -> None:
    body = multipart(
        part("licensePlatePicture.jpg", "image/jpeg", JPEG_PLATE),
        part("detectionPicture.jpg", "image/jpeg", JPEG_SCENE),
    )
    assert refused(body, MULTIPART).reason == "missing_xml"


def test_too_many_parts() -> None:
    pictures = [part(f"p{i}.jpg", "image/jpeg", JPEG_SCENE) for i in range(8)]
    body = multipart(part("anpr.xml", "application/xml", alert_xml().encode()), *pictures)
    assert refused(body, MULTIPART).reason == "bad_multipart"
    assert parsed(body, MULTIPART, max_parts=9).pictures == 8


def test_a_content_type_that_injects_headers_is_refused() -> None:
    body = camera_multipart(alert_xml().encode())
    assert refused(body, MULTIPART + "\r\nX-Injected: 1").reason == "bad_multipart"


@given(body=st.binary(max_size=600), content_type=st.sampled_from([None, "application/xml", MULTIPART]))
def test_arbitrary_bytes_raise_nothing_but_adapter_errors(body: bytes, content_type: str | None) -> None:
    with contextlib.suppress(AdapterError):
        parse_anpr(body, content_type)


@given(cut=st.integers(min_value=0, max_value=len(camera_multipart(alert_xml().encode()))))
def test_any_truncation_raises_nothing_but_adapter_errors(cut: int) -> None:
    body = camera_multipart(alert_xml().encode())[:cut]
    try:
        parse_anpr(body, MULTIPART)
    except AdapterError as exc:
        reason: str | None = exc.reason
    else:
        reason = None
    assert reason in {None, "bad_multipart", "missing_xml", "bad_xml", "bad_encoding"}


# --- field mapping -----------------------------------------------------------------------------------


def test_missing_license_plate() -> None:
    for xml in (
        alert_xml(plate=None),
        alert_xml(plate="  "),
        re.sub(r"<ANPR>.*</ANPR>", "", alert_xml(), flags=re.S),
    ):
        error = refused(xml.encode())
        assert (error.reason, error.field) == ("missing_field", "licensePlate")


@pytest.mark.parametrize("when", ["2026-13-02T08:15:42+08:00", "yesterday", "2026-03-02T25:00:00"])
def test_bad_date_time(when: str) -> None:
    error = refused(alert_xml(when=when).encode())
    assert (error.reason, error.field) == ("invalid_field", "dateTime")


def test_missing_date_time() -> None:
    error = refused(alert_xml(when=None).encode())
    assert (error.reason, error.field) == ("missing_field", "dateTime")


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        ("2026-03-02T08:15:42+08:00", datetime(2026, 3, 2, 0, 15, 42, tzinfo=UTC)),
        ("2026-03-02T08:15:42.847+07:00", datetime(2026, 3, 2, 1, 15, 42, 847000, tzinfo=UTC)),
        ("2026-03-02T08:15:42+0800", datetime(2026, 3, 2, 0, 15, 42, tzinfo=UTC)),
        ("2026-03-02T08:15Z", datetime(2026, 3, 2, 8, 15, tzinfo=UTC)),
        ("2026-03-02T08:15:42", datetime(2026, 3, 2, 2, 15, 42, tzinfo=UTC)),  # naive: the tz below
    ],
)
def test_date_time_forms(when: str, expected: datetime) -> None:
    read = parsed(alert_xml(when=when).encode(), tz=timezone(timedelta(hours=6))).read
    assert read.observed_at == expected
    assert read.observed_at.tzinfo is not None


def test_naive_times_default_to_shanghai() -> None:
    read = parsed(alert_xml(when="2026-03-02T08:15:42").encode()).read
    assert read.observed_at.utcoffset() == timedelta(hours=8)


@pytest.mark.parametrize(
    ("value", "colour"),
    [
        ("blue", PlateColour.BLUE),
        ("yellow", PlateColour.YELLOW),
        ("white", PlateColour.WHITE),
        ("black", PlateColour.BLACK),
        ("green", PlateColour.GREEN),
        ("newEnergyGreen", PlateColour.GREEN),
        ("newEnergyYellowGreen", PlateColour.YELLOW_GREEN),
        ("civilAviationBlack", PlateColour.BLACK),
        ("civilAviationGreen", PlateColour.GREEN),
        ("BLUE", PlateColour.BLUE),
        ("golden", PlateColour.UNKNOWN),
        ("orange", PlateColour.UNKNOWN),
        ("red", PlateColour.UNKNOWN),
        ("brown", PlateColour.UNKNOWN),
        ("mixedColor", PlateColour.UNKNOWN),
        ("other", PlateColour.UNKNOWN),
        ("unknown", PlateColour.UNKNOWN),
        (None, PlateColour.UNKNOWN),
    ],
)
def test_plate_colour_values(value: str | None, colour: PlateColour) -> None:
    assert parsed(alert_xml(plate="浙J12345", colour=value).encode()).read.plate_colour is colour


@pytest.mark.parametrize(
    ("reported", "plate_colour", "plate", "colour"),
    [
        ("蓝浙J12345", "unknown", "浙J12345", PlateColour.BLUE),
        ("黄浙J12345", "unknown", "浙J12345", PlateColour.YELLOW),
        ("绿浙AD12345", "unknown", "浙AD12345", PlateColour.GREEN),
        ("黄绿浙A12345D", "unknown", "浙A12345D", PlateColour.YELLOW_GREEN),
        ("白京A1234警", "unknown", "京A1234警", PlateColour.WHITE),
        ("黑黑A12345", "unknown", "黑A12345", PlateColour.BLACK),  # a black plate from Heilongjiang
        ("黑A12345", "unknown", "黑A12345", PlateColour.UNKNOWN),  # 黑 is the province here
        ("蓝黑A12345", "unknown", "黑A12345", PlateColour.BLUE),
        ("蓝A12345", "unknown", "A12345", PlateColour.BLUE),  # province not read
        ("蓝浙J12345", "yellow", "浙J12345", PlateColour.YELLOW),  # plateColor wins
    ],
)
def test_chinese_colour_prefixes(reported: str, plate_colour: str, plate: str, colour: PlateColour) -> None:
    read = parsed(alert_xml(plate=reported, colour=plate_colour).encode()).read
    assert (read.plate_raw, read.plate_colour) == (plate, colour)


@pytest.mark.parametrize(("level", "confidence"), [("100", 1.0), ("0", 0.0), ("78", 0.78), (None, None)])
def test_confidence_is_scaled_to_one(level: str | None, confidence: float | None) -> None:
    assert parsed(alert_xml(confidence=level).encode()).read.confidence == pytest.approx(confidence)


@pytest.mark.parametrize("level", ["101", "-1", "high", "nan"])
def test_bad_confidence(level: str) -> None:
    error = refused(alert_xml(confidence=level).encode())
    assert (error.reason, error.field) == ("invalid_field", "confidenceLevel")


@pytest.mark.parametrize(
    "xmlns",
    [
        ' xmlns="http://www.hikvision.com/ver10/XMLSchema"',
        ' xmlns="http://www.hikvision.com/ver20/XMLSchema"',
        ' xmlns="http://www.isapi.org/ver20/XMLSchema"',
        "",
        "prefixed",
    ],
)
def test_namespace_variants_read_alike(xmlns: str) -> None:
    if xmlns == "prefixed":
        xml = re.sub(r"<(/?)([A-Za-z]\w*)", r"<\1hik:\2", alert_xml(xmlns=""))
        xml = xml.replace("<hik:EventNotificationAlert ", '<hik:EventNotificationAlert xmlns:hik="urn:x" ', 1)
    else:
        xml = alert_xml(xmlns=xmlns)
    assert parsed(xml.encode()).read == parsed(alert_xml().encode()).read


def test_device_id_falls_back_from_mac_to_device_uuid_to_ip_address() -> None:
    serial = "<deviceUUID>DS-TCG405-E 20220323AIJ12345678</deviceUUID>"
    assert parsed(alert_xml(head_extra=serial).encode()).read.device_id == "bc:5e:33:0a:1b:2c:1"
    assert parsed(alert_xml(mac=None, head_extra=serial).encode()).read.device_id == (
        "DS-TCG405-E 20220323AIJ12345678:1"
    )
    assert parsed(alert_xml(mac=None).encode()).read.device_id == "192.168.100.31:1"
    no_channel = alert_xml(mac=None).replace("<channelID>1</channelID>", "")
    assert parsed(no_channel.encode()).read.device_id == "192.168.100.31:1"
    nvr_channel = alert_xml(mac=None).replace("<channelID>1</channelID>", "<channelID>35</channelID>")
    assert parsed(nvr_channel.encode()).read.device_id == "192.168.100.31:35"


def test_device_id_missing() -> None:
    xml = alert_xml(mac=None).replace("<ipAddress>192.168.100.31</ipAddress>", "")
    error = refused(xml.encode())
    assert (error.reason, error.field) == ("missing_field", "ipAddress")


def test_record_id_without_uuid_is_a_stable_composite() -> None:
    first = parsed(alert_xml(uuid=None).encode()).read.record_id
    assert first == parsed(alert_xml(uuid=None).encode()).read.record_id
    assert first == "bc:5e:33:0a:1b:2c:1|2026-03-02T08:15:42+08:00|浙J12345"
    assert first != parsed(alert_xml(uuid=None, plate="蓝浙J12346").encode()).read.record_id


@pytest.mark.parametrize(
    ("anpr_extra", "kind"),
    [
        (
            "<EntranceInfo><gateID>1</gateID><direction>enter</direction></EntranceInfo>",
            SourceKind.PARKING_ENTRY,
        ),
        ("<EntranceInfo><direction>leave</direction></EntranceInfo>", SourceKind.PARKING_EXIT),
        ("<rodeType>custom</rodeType><Custom><direction>leave</direction></Custom>", SourceKind.PARKING_EXIT),
        ("<rodeType>custom</rodeType><Custom><direction>parkind</direction></Custom>", SourceKind.CHECKPOINT),
        ("", SourceKind.CHECKPOINT),  # ANPR/direction reverse is the heading, not entry or exit
    ],
)
def test_source_kind_from_the_entrance_direction(anpr_extra: str, kind: SourceKind) -> None:
    assert parsed(alert_xml(anpr_extra=anpr_extra).encode()).read.source_kind is kind


def test_a_utf7_body_decoding_to_a_lone_surrogate_is_refused_not_a_crash() -> None:
    # Found by python -m tests.fuzz (isapi_anpr): UnicodeEncodeError out of ElementTree.
    body = alert_xml(plate="MARK", encoding="UTF-7").encode("utf-7").replace(b"MARK", b"+2AA-J12345")
    error = refused(body, "application/xml")
    assert (error.reason, error.field) == ("bad_encoding", "body")
