"""The inputs of each fuzz target: structured documents of the format's own fields, mutated seeds.

Every strategy yields :class:`Sample` objects (a body, its Content-Type, and the headers or option the
target needs): about half built from the format's field names with plausible or hostile values, most of
the rest real-looking seeds (:mod:`tests.fuzz.seeds`) damaged byte by byte, and the seeds themselves.
Strategies are built once, at import: building one costs far more than drawing from it.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Literal
from xml.sax.saxutils import escape

from hypothesis import strategies as st

from connectors.auth import sign
from tests.fuzz import hostile, seeds
from tests.fuzz.hostile import MAX_BODY, PLATES


@dataclass(frozen=True)
class Sample:
    """One input: what an HTTP request (or a file) brings to a parser."""

    body: bytes = b""
    content_type: str | None = None
    headers: tuple[tuple[str, str], ...] = field(default=())
    option: str = ""  # what the target varies besides the body: a file's encoding, a system object

    def header(self, name: str) -> str | None:
        return next((value for key, value in self.headers if key == name), None)


def _often(
    likely: st.SearchStrategy[Any], rarely: st.SearchStrategy[Any], times: int = 3
) -> st.SearchStrategy[Any]:
    """``likely`` about ``times`` times as often as ``rarely``."""
    return st.one_of([likely] * times + [rarely])


def mixed(
    structured: st.SearchStrategy[Sample], samples: Sequence[Sample], media_types: tuple[str, ...]
) -> st.SearchStrategy[Sample]:
    """Structured inputs, mutated seeds (mostly with their own Content-Type), the seeds as they are."""
    bodies = [sample.body for sample in samples]
    kinds = hostile.content_type(media_types) if media_types else st.none()  # files have no Content-Type

    @st.composite
    def damaged(draw: st.DrawFn) -> Sample:
        seed = draw(st.sampled_from(samples))
        kind = draw(_often(st.just(seed.content_type), kinds))
        return Sample(hostile.damage(draw, seed.body, bodies), kind, seed.headers, seed.option)

    return st.one_of(structured, structured, damaged(), damaged(), st.sampled_from(samples))


_JSON_ENCODINGS = st.sampled_from(("utf-8",) * 5 + ("gbk", "gb18030", "big5", "utf-16"))
_DECLARED = st.sampled_from(("match",) * 5 + ("none", "none", "other"))


def encode_json(draw: st.DrawFn, document: Any, media_type: str, option: str = "") -> Sample:
    """A document as JSON in UTF-8, GBK, UTF-16…, its charset declared, left out, or wrongly declared."""
    encoding = draw(_JSON_ENCODINGS)
    body = hostile.json_bytes(document, ascii_only=draw(st.booleans()), encoding=encoding)
    declared = draw(_DECLARED)
    if declared == "match":
        kind: str | None = f"{media_type}; charset={encoding}"
    elif declared == "none":
        kind = draw(st.sampled_from((media_type, None)))
    else:
        kind = draw(hostile.content_type((media_type,)))
    return Sample(body[:MAX_BODY], kind, option=option)


def json_request(documents: st.SearchStrategy[Any], media_type: str) -> st.SearchStrategy[Sample]:
    @st.composite
    def request(draw: st.DrawFn) -> Sample:
        return encode_json(draw, draw(documents), media_type)

    return request()


def json_seeds(documents: Sequence[Any], media_type: str) -> list[Sample]:
    """Each document in UTF-8 (declared) and in GBK (undeclared, as older devices send it)."""
    utf8 = [
        Sample(hostile.json_bytes(d, ascii_only=False, encoding="utf-8"), f"{media_type}; charset=UTF-8")
        for d in documents
    ]
    gbk = [Sample(hostile.json_bytes(d, ascii_only=False, encoding="gbk"), media_type) for d in documents]
    return utf8 + gbk


_TEXT = hostile.text()
_IDS: hostile.Field = (
    st.sampled_from(("r-1", "wanda", "g1", "8f1c-0001", "gate-1-in", "P3310020001")),
    _TEXT,
)
_ODD_PLATES = st.one_of(
    _TEXT,
    st.sampled_from(
        ("无牌车", "未识别", "unknown", "noPlate", "黑黑A12345", "蓝蓝", "浙J1234\x00", "蓝浙J12345")
    ),
)
_PLATES: hostile.Field = (st.sampled_from(PLATES), _ODD_PLATES)
# Chinese-market Hikvision firmware puts the plate's colour before it (蓝浙J12345); only ISAPI splits it off.
_COLOUR_PLATES: hostile.Field = (
    st.builds(
        str.__add__, st.sampled_from(("", "", "蓝", "黄", "白", "黑", "绿", "黄绿")), st.sampled_from(PLATES)
    ),
    _ODD_PLATES,
)
# Times with an offset, for the contracts that require one (the traffic police's results).
_AWARE_TIMES = st.datetimes(
    min_value=hostile.RECENT[0],
    max_value=hostile.RECENT[1],
    timezones=st.sampled_from((timezone(timedelta(hours=8)), UTC)),
).map(datetime.isoformat)
_URLS: hostile.Field = (
    st.sampled_from(("https://lot.example/p/1.jpg", "http://10.1.1.9/pic/1.jpg", "/pic/5.jpg")),
    st.one_of(
        st.builds(lambda tail: "http://10.1.1.9/pic/" + tail, _TEXT),
        st.integers(1000, 1100).map(lambda n: "http://x/" + "a" * n),
        _TEXT,
    ),
)
_NUMBERS = hostile.number()


def _list_of(items: st.SearchStrategy[Any], *, limit: int) -> hostile.Field:
    """A short list of ``items``; or empty, over the limit (one object repeated), or not a list at all."""
    odd = st.one_of(st.just([]), items.map(lambda item: [item] * (limit + 1)), hostile.json_value())
    return st.lists(items, min_size=1, max_size=4), odd


def _choice(plausible: Sequence[Any], odd: Sequence[Any]) -> hostile.Field:
    return st.sampled_from(plausible), st.one_of(st.sampled_from(odd), _TEXT)


# --- parking ------------------------------------------------------------------------------------------

PARKING_FIELDS: dict[str, hostile.Field] = {
    "record_id": _IDS, "lot_id": _IDS, "gate": _IDS,
    "direction": _choice(("in", "out"), ("IN", "", "sideways", "0", "1")),
    "plate": _PLATES,
    "plate_colour": _choice(("蓝", "blue", "黄色", "渐变绿", "", "BLUE", "黑"), ("紫", "blue green")),
    "time": (
        hostile.time_text("iso", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S%z"),
        st.one_of(hostile.odd_time("iso", "%Y-%m-%d %H:%M:%S"), _NUMBERS),
    ),
    "image_url": _URLS,
    "confidence": (st.sampled_from((0, 1, 0.93, 0.5)), st.one_of(st.just(1.0000001), _NUMBERS)),
}  # fmt: skip
PARKING_RECORDS = hostile.document(
    PARKING_FIELDS, optional=("plate_colour", "image_url", "confidence"), keys=tuple(PARKING_FIELDS)
)
EXAMPLE_CN_FIELDS: dict[str, hostile.Field] = {
    "orderId": _IDS, "gateCode": _IDS, "carNo": _PLATES,
    "plateColor": _choice(("蓝色", "黄", "绿", ""), ("紫",)),
    "inOutType": (st.sampled_from((0, 1)), st.sampled_from((2, -1, "0", "1", True, False, None, 1.0, 0.5))),
    "passTime": (hostile.time_text("%Y-%m-%d %H:%M:%S"), hostile.odd_time("%Y-%m-%d %H:%M:%S")),
    "picUrl": _URLS,
}  # fmt: skip
_EXAMPLE_CN_RECORDS = hostile.document(
    EXAMPLE_CN_FIELDS, optional=("plateColor", "picUrl"), keys=tuple(EXAMPLE_CN_FIELDS)
)
_PARKING_DOCUMENTS = {
    "generic": hostile.document({"records": _list_of(PARKING_RECORDS, limit=500)}, envelope=True),
    "example_cn": hostile.document(
        {"parkCode": (st.just("P3310020001"), _TEXT), "data": _list_of(_EXAMPLE_CN_RECORDS, limit=500)},
        envelope=True,
    ),
}
_PARKING_MEDIA = ("application/json", "text/plain", "application/x-www-form-urlencoded")


def parking(vendor: str) -> st.SearchStrategy[Sample]:
    documents = seeds.PARKING_GENERIC if vendor == "generic" else seeds.PARKING_EXAMPLE_CN
    samples = json_seeds(documents, "application/json")
    return mixed(json_request(_PARKING_DOCUMENTS[vendor], "application/json"), samples, _PARKING_MEDIA)


# --- GA/T 1400 ----------------------------------------------------------------------------------------

_STORAGE: hostile.Field = (st.one_of(_URLS[0], st.just("")), _URLS[1])
_SUB_IMAGE = hostile.document(
    {"StoragePath": _STORAGE, "Type": _choice(("02", "14"), ("",)), "Data": (st.just("/9j/4AAQ"), _TEXT)},
    optional=("StoragePath", "Data"),
)
GAT_FIELDS: dict[str, hostile.Field] = {
    "MotorVehicleID": (st.just(seeds.GAT_DEVICE + "0220241122183045000011"), _TEXT),
    "DeviceID": (st.just(seeds.GAT_DEVICE), _TEXT),
    "PlateNo": _PLATES, "HasPlate": _choice(("1", 1), ("0", 0, None, "")),
    "PlateColor": (
        st.sampled_from(("5", 5, "9", " 2 ", "099")),
        st.one_of(st.sampled_from(("٥", "", "5\x00")), _NUMBERS, _TEXT),
    ),
    "PlateReliability": (
        st.sampled_from(("96", 96, 88.5, "", "0")),
        st.one_of(st.sampled_from(("1e400", "nan", "-0")), _NUMBERS, _TEXT),
    ),
    "PassTime": (
        hostile.time_text("%Y%m%d%H%M%S"), hostile.odd_time("%Y%m%d%H%M%S", "%Y%m%d%H%M%S%f", "iso")
    ),
    "StorageUrl1": _STORAGE, "StorageUrl2": _STORAGE, "StorageUrl5": _STORAGE,
    "SubImageList": (
        st.fixed_dictionaries({"SubImageInfoObject": st.lists(_SUB_IMAGE, max_size=3)}), hostile.json_value()
    ),
    "Direction": (st.sampled_from(("1", "2")), _TEXT), "LaneNo": (st.just(2), _NUMBERS),
}  # fmt: skip
_GAT_VEHICLES = hostile.document(
    GAT_FIELDS,
    optional=(
        "HasPlate",
        "PlateColor",
        "PlateReliability",
        "StorageUrl1",
        "StorageUrl2",
        "StorageUrl5",
        "SubImageList",
        "Direction",
        "LaneNo",
    ),
    keys=tuple(GAT_FIELDS),
)
_GAT_DOCUMENTS = hostile.document(
    {
        "MotorVehicleListObject": (
            hostile.document({"MotorVehicleObject": _list_of(_GAT_VEHICLES, limit=1000)}, envelope=True),
            hostile.json_value(),
        )
    },
    envelope=True,
)


def gat1400_vehicles() -> st.SearchStrategy[Sample]:
    samples = json_seeds(seeds.GAT_BATCHES, seeds.GAT_TYPE)
    return mixed(json_request(_GAT_DOCUMENTS, seeds.GAT_TYPE), samples, (seeds.GAT_TYPE, "application/json"))


_SYSTEM_INNER = hostile.document({"DeviceID": (st.just(seeds.GAT_DEVICE), _TEXT)}, envelope=True)


@st.composite
def _system_request(draw: st.DrawFn) -> Sample:
    expected = draw(st.sampled_from(seeds.GAT_SYSTEM_OBJECTS))
    sent = draw(
        _often(st.just(expected), st.one_of(st.sampled_from(seeds.GAT_SYSTEM_OBJECTS), hostile.text(12)))
    )
    document = draw(_often(st.builds(lambda inner: {sent: inner}, _SYSTEM_INNER), hostile.json_value()))
    return encode_json(draw, document, seeds.GAT_TYPE, option=expected)


def gat1400_system() -> st.SearchStrategy[Sample]:
    samples = [
        Sample(
            hostile.json_bytes({name: {"DeviceID": seeds.GAT_DEVICE}}, ascii_only=False, encoding="utf-8"),
            seeds.GAT_TYPE,
            option=name,
        )
        for name in seeds.GAT_SYSTEM_OBJECTS
    ]
    return mixed(_system_request(), samples, (seeds.GAT_TYPE,))


# --- GA/T 1400 Digest ---------------------------------------------------------------------------------

DIGEST_REALM = "seizewatch"
DIGEST_SECRET = b"fuzz-digest-secret-0123456789"
DIGEST_NOW = 1_800_000_000
DIGEST_URI = "/VIID/System/Register"
DIGEST_USERS = {"kk-taizhou": "Kk#2024,ok", "dahua": "secret"}


def digest_nonce(minted: int, salt: str) -> str:
    """A nonce as DigestAuth mints it: time and salt (32 hex digits), then their HMAC (32 more)."""
    stamp = f"{minted:016x}{salt}"
    return (
        stamp + hmac.new(DIGEST_SECRET, f"{stamp}:{DIGEST_REALM}".encode(), hashlib.sha256).hexdigest()[:32]
    )


def digest_response(params: dict[str, str], password: str, method: str = "POST") -> str:
    """RFC 2617 3.2.2 with qop=auth, computed from the header's own parameters."""

    def md5(text: str) -> str:
        return hashlib.md5(text.encode()).hexdigest()  # noqa: S324  # RFC 2617 is MD5

    ha1 = md5(f"{params['username']}:{params['realm']}:{password}")
    ha2 = md5(f"{method}:{params['uri']}")
    return md5(f"{ha1}:{params['nonce']}:{params['nc']}:{params['cnonce']}:{params['qop']}:{ha2}")


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


_DIGEST_USER = _often(st.sampled_from(sorted(DIGEST_USERS)), hostile.latin1_header(20))
_DIGEST_AGE = st.sampled_from((0, -10, -299, -301, 29, 31, -(10**6), 10**6))
_DIGEST_SALT = st.from_regex(r"\A[0-9a-f]{16}\Z")
_DIGEST_NAMES = st.sampled_from(
    ("algorithm", "cnonce", "nc", "nonce", "qop", "realm", "response", "uri", "username")
)
_DIGEST_BAD = st.one_of(
    hostile.latin1_header(40), st.sampled_from(("", "auth-int", "MD5-sess", "0" * 64, "auth,auth"))
)
_DIGEST_URI = _often(st.sampled_from((DIGEST_URI,)), hostile.latin1_header(30))


@st.composite
def _digest_header(draw: st.DrawFn) -> Sample:
    """An Authorization header: right, or right but for a part or two, or hostile; quoted or bare."""
    user = draw(_DIGEST_USER)
    nonce = digest_nonce(max(DIGEST_NOW + draw(_DIGEST_AGE), 0), draw(_DIGEST_SALT))
    params = {
        "username": user, "realm": DIGEST_REALM, "nonce": nonce, "uri": DIGEST_URI, "qop": "auth",
        "nc": "00000001", "cnonce": draw(st.sampled_from(("pwz08088", "0a4f113b"))),
    }  # fmt: skip
    params["response"] = digest_response(params, DIGEST_USERS.get(user, "wrong"))
    params["algorithm"] = "MD5"
    for name in draw(st.lists(_DIGEST_NAMES, max_size=2, unique=True)):
        params[name] = draw(_DIGEST_BAD)
    for name in draw(st.lists(_DIGEST_NAMES, max_size=1)):
        params.pop(name, None)
    separator = draw(st.sampled_from((", ", ",", " , ", ",,")))
    bare = draw(st.booleans())
    pairs = [f"{k}={v if bare and k in {'qop', 'nc', 'algorithm'} else _quote(v)}" for k, v in params.items()]
    scheme = draw(st.sampled_from(("Digest ", "digest ", "Digest", "Basic ", "  DIGEST\t")))
    return Sample(headers=(("authorization", scheme + separator.join(pairs)), ("uri", draw(_DIGEST_URI))))


def gat1400_digest() -> st.SearchStrategy[Sample]:
    valid = {"username": "kk-taizhou", "realm": DIGEST_REALM, "nonce": digest_nonce(DIGEST_NOW, "0" * 16),
             "uri": DIGEST_URI, "qop": "auth", "nc": "00000001", "cnonce": "pwz08088"}  # fmt: skip
    valid["response"] = digest_response(valid, DIGEST_USERS["kk-taizhou"])
    header = "Digest " + ", ".join(f"{name}={_quote(value)}" for name, value in valid.items())
    damaged = st.builds(
        lambda raw, uri: Sample(headers=(("authorization", raw.decode("latin-1")), ("uri", uri))),
        hostile.mutated([header.encode("latin-1")]),
        _DIGEST_URI,
    )
    seed = Sample(headers=(("authorization", header), ("uri", DIGEST_URI)))
    return st.one_of(_digest_header(), _digest_header(), damaged, st.just(seed))


# --- API key and HMAC signature -----------------------------------------------------------------------

AUTH_NOW = 1_800_000_000
_AUTH_BODIES = st.one_of(st.sampled_from((b"", b'{"records": []}')), st.binary(max_size=64))
_TIMESTAMPS = st.one_of(
    st.integers(-400, 400).map(lambda delta: str(AUTH_NOW + delta)),
    st.integers(-400, 400).map(lambda delta: str(AUTH_NOW + delta)),
    st.sampled_from(("9" * 400, "1e9", "1_800_000_000", " 1800000000 ", "١٨٠٠٠٠٠٠٠٠", "-0", "0x10", "")),
    st.integers(-(10**30), 10**30).map(str),
    hostile.latin1_header(30),
)


def auth_headers(key: str) -> st.SearchStrategy[Sample]:
    @st.composite
    def request(draw: st.DrawFn) -> Sample:
        body, timestamp = draw(_AUTH_BODIES), draw(_TIMESTAMPS)
        good = sign(key, timestamp, body)
        signature = draw(
            st.one_of(st.just(good), st.just(good.upper()), st.just(good[:-1]), hostile.latin1_header(80))
        )
        presented = draw(
            st.one_of(st.just(key), st.just(key[:-1]), st.just(key.upper()), hostile.latin1_header(60))
        )
        headers = (
            ("x-api-key", presented),
            ("x-seizewatch-timestamp", timestamp),
            ("x-seizewatch-signature", signature),
        )
        return Sample(body, headers=headers)

    return request()


# --- Hikvision ISAPI ----------------------------------------------------------------------------------

_ISAPI_HEAD = hostile.document(
    {
        "eventType": _choice(("ANPR", "anpr"), ("heartBeat", "VMD", "")),
        "eventState": _choice(("active",), ("inactive", "", "Inactive")),
        "macAddress": (st.just("BC:5E:33:0A:1B:2C"), _TEXT), "deviceUUID": (st.just("DS-2CD4A26FWD"), _TEXT),
        "ipAddress": (st.just("192.168.100.31"), _TEXT), "channelID": (st.just("1"), _TEXT),
        "dateTime": (hostile.time_text("iso"), hostile.odd_time("iso", "%Y-%m-%dT%H:%M:%S")),
        "UUID": (st.just("46dd0716-1dd2-11b2-821f-0a1b2c3d4e5f"), _TEXT),
    },
    optional=("eventState", "deviceUUID", "ipAddress", "channelID", "UUID"),
)  # fmt: skip
_ISAPI_ANPR = hostile.document(
    {
        "licensePlate": _COLOUR_PLATES,
        "plateColor": _choice(("blue", "newEnergyGreen", "unknown"), ("",)),
        "confidenceLevel": (st.sampled_from(("97", "100", "0")), st.one_of(_NUMBERS.map(str), _TEXT)),
    },
    optional=("plateColor", "confidenceLevel"),
)
_ISAPI_GATE = st.one_of(
    st.just(""),
    st.builds(
        lambda block, d: f"<{block}><direction>{d}</direction></{block}>",
        st.sampled_from(("EntranceInfo", "Custom")),
        st.sampled_from(("enter", "leave", "parkind", "", "ENTER")),
    ),
)
_NAMESPACES = st.sampled_from(("", ' xmlns="http://www.isapi.org/ver20/XMLSchema"', ' xmlns:x="urn:x"'))
_PROLOG_LABELS = _often(
    st.sampled_from(("UTF-8", "GBK", "GB2312", "utf-16")), st.sampled_from(hostile.CHARSETS), times=2
)
_XML_TYPES = hostile.content_type(("application/xml", "text/xml"))


@st.composite
def _alert_xml(draw: st.DrawFn) -> Sample:
    def element(name: str, value: Any) -> str:
        text = str(value)
        raw = draw(st.integers(0, 9)) == 0  # sometimes unescaped: markup in a value breaks the document
        return f"<{name}>{text if raw else escape(text)}</{name}>"

    head, anpr = draw(_ISAPI_HEAD), draw(_ISAPI_ANPR)
    inner = "".join(element(k, v) for k, v in anpr.items()) + draw(_ISAPI_GATE)
    xml = f"<EventNotificationAlert{draw(_NAMESPACES)}>" + "".join(element(k, v) for k, v in head.items())
    xml += f"<ANPR>{inner}</ANPR></EventNotificationAlert>"
    label = draw(_PROLOG_LABELS)
    prolog = draw(
        st.sampled_from((f'<?xml version="1.0" encoding="{label}"?>\n', "\n\n<?xml version='1.0'?>", ""))
    )
    encoding = draw(st.sampled_from(("utf-8", "utf-8", "gbk", "utf-16", label)))
    try:
        body = (prolog + xml).encode(encoding, "surrogatepass")
    # LookupError: no text encoding (rot13, zlib); ValueError: a label with a NUL in it
    except (UnicodeError, LookupError, ValueError):
        body = (prolog + xml).encode("utf-8", "surrogatepass")
    kind = draw(
        _often(st.sampled_from(("application/xml", 'application/xml; charset="UTF-8"')), _XML_TYPES, times=2)
    )
    if draw(st.booleans()):
        return Sample(body[:MAX_BODY], kind)
    return _multipart(draw, body, kind)


_BOUNDARIES = _often(
    st.just(seeds.ISAPI_BOUNDARY),
    st.one_of(st.sampled_from(("b", "a b", "--", "=_x")), st.text("-_=abcXYZ019 '", min_size=1, max_size=80)),
)
_BOUNDARY_PARAMETERS = _often(
    st.just("boundary={}"),
    st.sampled_from(('boundary="{}"', "boundary*=utf-8''{}", "BOUNDARY={}; charset=gbk")),
)
_PART_HEADERS = st.lists(
    st.sampled_from(
        (
            b'Content-Disposition: form-data; name="anpr.xml"; filename="anpr.xml"',
            b"Content-Type: text/xml; charset=rot13", b"Content-Type: application/xml; charset=\xff\xfe",
            b"Content-Transfer-Encoding: base64", b"Content-Transfer-Encoding: quoted-printable",
            b"Content-Transfer-Encoding: x-uuencode", b"Content-Length: 99999999999999999999",
            b"Content-Type: multipart/mixed; boundary=inner", b"X: =?utf-8?q?=E4?=",
        )
    ),
    max_size=3,
)  # fmt: skip


def _multipart(draw: st.DrawFn, xml: bytes, xml_type: str | None) -> Sample:
    """The XML in a multipart body, with boundaries, part headers and transfer encodings as they go wrong."""
    boundary = draw(_BOUNDARIES)
    kind = f"multipart/{draw(st.sampled_from(('form-data', 'form-data', 'mixed', 'related')))}; "
    kind += draw(_BOUNDARY_PARAMETERS).format(boundary)
    delimiter = b"--" + boundary.encode("utf-8")
    headers = [b"Content-Type: " + (xml_type or "application/xml").encode("latin-1"), *draw(_PART_HEADERS)]
    part = delimiter + b"\r\n" + b"\r\n".join(headers) + b"\r\n\r\n" + xml + b"\r\n"
    picture = delimiter + b"\r\nContent-Type: image/jpeg\r\n\r\n" + seeds.JPEG + b"\r\n"
    close = draw(_often(st.just(delimiter + b"--\r\n"), st.sampled_from((b"", delimiter + b"\r\n"))))
    preamble = draw(st.sampled_from((b"", b"", b"\r\n", b"preamble\r\n")))
    return Sample((preamble + part + picture * draw(st.integers(0, 12)) + close)[:MAX_BODY], kind)


def isapi() -> st.SearchStrategy[Sample]:
    samples = [Sample(body, kind) for body, kind in seeds.ISAPI_SAMPLES]
    return mixed(
        _alert_xml(), samples, ("application/xml", seeds.ISAPI_MULTIPART, "multipart/form-data", "text/xml")
    )


# --- backfill files -----------------------------------------------------------------------------------

FILE_ENCODINGS = ("utf-8", "gbk", "gb18030")
_ENCODINGS = st.sampled_from(FILE_ENCODINGS)
_LINE_ENDS = st.sampled_from(("\n", "\n", "\r\n", "\r"))
_PARKING_NAMES = list(PARKING_FIELDS)
_CSV_HEADERS = st.one_of(
    st.just(_PARKING_NAMES),
    st.just(_PARKING_NAMES),
    st.permutations(_PARKING_NAMES),
    st.lists(st.one_of(st.sampled_from(_PARKING_NAMES), hostile.text(8)), max_size=11),
)
_QUOTING: tuple[Literal[0, 1, 2, 3], ...] = (csv.QUOTE_MINIMAL, csv.QUOTE_ALL, csv.QUOTE_NONNUMERIC)


def _cell(value: Any) -> str:
    return value if isinstance(value, str) else "" if value is None else str(value)


def _declared(draw: st.DrawFn, encoding: str) -> str:
    """The --encoding given: mostly the file's own."""
    return str(draw(_often(st.just(encoding), _ENCODINGS)))


@st.composite
def _csv_file(draw: st.DrawFn) -> Sample:
    header = draw(_CSV_HEADERS)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator=draw(_LINE_ENDS), quoting=_QUOTING[draw(st.integers(0, 2))])
    writer.writerow(header)
    for row in draw(st.lists(PARKING_RECORDS, max_size=5)):
        cells = [_cell(row.get(name)) for name in header]
        if draw(st.integers(0, 3)):
            writer.writerow(cells)
        else:  # written by hand, as broken exports are: no quoting at all
            out.write(",".join(cells) + "\n")
    encoding = draw(_ENCODINGS)
    return Sample(out.getvalue().encode(encoding, "replace")[:MAX_BODY], option=_declared(draw, encoding))


_JSONL_LINES = st.lists(_often(PARKING_RECORDS, hostile.json_value(), times=6), max_size=6)
_JSONL_ENDS = st.sampled_from((b"\n", b"\n", b"\r\n", b"\n\n"))


@st.composite
def _jsonl_file(draw: st.DrawFn) -> Sample:
    encoding = draw(_ENCODINGS)
    body = b"".join(
        hostile.json_bytes(line, ascii_only=draw(st.booleans()), encoding=encoding) + draw(_JSONL_ENDS)
        for line in draw(_JSONL_LINES)
    )
    return Sample(body[:MAX_BODY], option=_declared(draw, encoding))


def backfill(fmt: str) -> st.SearchStrategy[Sample]:
    text = seeds.CSV_EXPORT if fmt == "csv" else seeds.JSONL_EXPORT
    samples = [Sample(text.encode(encoding), option=encoding) for encoding in FILE_ENCODINGS]
    samples.append(Sample(b"\xef\xbb\xbf" + text.encode(), option="utf-8"))
    return mixed(_csv_file() if fmt == "csv" else _jsonl_file(), samples, ())


# --- traffic police results ---------------------------------------------------------------------------

_TEXTS: hostile.Field = (
    st.sampled_from(("椒江区开元路", "王某 012345", "台州市公安局交通警察支队椒江大队", "331002")),
    _TEXT,
)
TRAFFIC_FIELDS: dict[str, hostile.Field] = {
    "result_id": _IDS,
    "request_id": (st.just("6f1c2a4e-0000-4000-8000-000000000001"), st.one_of(st.uuids().map(str), _TEXT)),
    "plate": _PLATES, "result": _choice(("seized", "stopped", "not_found"), ("SEIZED", "")),
    "at": (_AWARE_TIMES, hostile.odd_time("iso")), "place": _TEXTS, "district": _TEXTS,
    "officer": _TEXTS, "unit": _TEXTS,
    "custody_kind": (st.sampled_from(("impound_lot", "custodian")), st.sampled_from(("", None, "lot"))),
    "custody_name": _TEXTS, "custody_address": _TEXTS, "note": _TEXTS,
    "schema_version": (st.just(1), st.sampled_from((2, "1", None))),
}  # fmt: skip
_TRAFFIC_RESULTS = hostile.document(
    TRAFFIC_FIELDS,
    optional=("district", "custody_address", "note", "schema_version"),
    keys=tuple(TRAFFIC_FIELDS),
)
_TRAFFIC_DOCUMENTS = hostile.document({"results": _list_of(_TRAFFIC_RESULTS, limit=100)}, envelope=True)


def traffic() -> st.SearchStrategy[Sample]:
    samples = json_seeds(seeds.TRAFFIC_RESULTS, "application/json")
    return mixed(json_request(_TRAFFIC_DOCUMENTS, "application/json"), samples, ("application/json",))


# --- device registry file -----------------------------------------------------------------------------

DEVICE_COLUMNS = (
    "device_id",
    "source_id",
    "name",
    "district",
    "device_group",
    "kind",
    "address",
    "latitude",
    "longitude",
    "owner",
    "timezone",
)
_LATITUDES: hostile.Field = (
    st.sampled_from(("28.68", "-90", "90", "")),
    st.one_of(
        st.sampled_from(("nan", "inf", "1e400", "-90.0000001", "0x1p3", "1_0", "٢٨")), _NUMBERS.map(str)
    ),
)
_LONGITUDES: hostile.Field = (
    st.sampled_from(("121.44", "-180", "180", "")),
    st.one_of(st.sampled_from(("-inf", "181", "NaN")), _NUMBERS.map(str)),
)
_ZONES: hostile.Field = (
    st.sampled_from(("Asia/Shanghai", "UTC", "", "Asia/Urumqi")),
    st.one_of(
        st.sampled_from(
            (
                "../../etc/passwd",
                "Asia",
                "Etc/GMT+8",
                "/etc/localtime",
                "Asia/Shanghai\x00",
                "posixrules",
                "zone.tab",
                "x" * 300,
            )
        ),
        hostile.text(12),
    ),
)
DEVICE_FIELDS: dict[str, hostile.Field] = {
    "device_id": _IDS, "source_id": _IDS, "name": _TEXTS, "district": (st.just("331002"), _TEXT),
    "device_group": _IDS,
    "kind": _choice(("parking_entry", "parking_exit", "checkpoint", ""), ("gate",)),
    "address": _TEXTS, "latitude": _LATITUDES, "longitude": _LONGITUDES, "owner": _TEXTS, "timezone": _ZONES,
}  # fmt: skip
_DEVICE_ROWS = st.lists(hostile.document(DEVICE_FIELDS, optional=DEVICE_COLUMNS[5:]), max_size=4)
_DEVICE_HEADERS = st.one_of(
    st.just(list(DEVICE_COLUMNS)),
    st.permutations(DEVICE_COLUMNS),
    st.lists(st.one_of(st.sampled_from(DEVICE_COLUMNS), hostile.text(8)), max_size=12),
)
_DEVICE_ENCODINGS = st.sampled_from(("utf-8-sig", "utf-8-sig", "gbk"))


@st.composite
def _devices_file(draw: st.DrawFn) -> Sample:
    header = draw(_DEVICE_HEADERS)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator=draw(_LINE_ENDS))
    writer.writerow(header)
    for row in draw(_DEVICE_ROWS):
        writer.writerow([_cell(row.get(name)) for name in header])
    encoding = draw(_DEVICE_ENCODINGS)
    if encoding == "gbk":
        body = out.getvalue().encode("gbk", "replace")
    else:
        body = out.getvalue().encode("utf-8", "surrogatepass")
    return Sample(body[:MAX_BODY], option=draw(_often(st.just(encoding), _DEVICE_ENCODINGS)))


def devices() -> st.SearchStrategy[Sample]:
    samples = [
        Sample(seeds.DEVICES_CSV.encode(), option="utf-8-sig"),
        Sample(seeds.DEVICES_CSV.encode("gbk"), option="gbk"),
    ]
    return mixed(_devices_file(), samples, ())
