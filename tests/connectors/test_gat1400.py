"""GA/T 1400: motor-vehicle batches into reads, system requests, responses, registrations and Digest auth."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.gat1400 import (
    MAX_OBJECTS,
    StatusCode,
    parse_motor_vehicles,
    parse_system_request,
    response_status,
    response_status_document,
    response_status_list,
    status_of,
)
from connectors.gat1400_auth import DigestAuth, Registrations, parse_digest
from connectors.records import AdapterError, RawRead
from streams.events import SourceKind
from streams.vehicles import PlateColour

SHANGHAI = ZoneInfo("Asia/Shanghai")
DEVICE = "33100200001320000101"
JSON_TYPE = "application/VIID+JSON"


def vehicle(n: int, **changes: object) -> dict[str, object]:
    """A MotorVehicleObject as a checkpoint camera pushes it, with the fields we ignore filled in too."""
    obj: dict[str, object] = {
        "MotorVehicleID": f"{DEVICE}02202411221830450000{n}",
        "InfoKind": 1,
        "SourceID": f"{DEVICE}0220241122183045000{n}",
        "TollgateID": "33100200001210000001",
        "DeviceID": DEVICE,
        "LaneNo": 2,
        "Direction": "1",
        "HasPlate": "1",
        "PlateClass": "02",
        "PlateColor": "5",
        "PlateNo": "浙J12345",
        "PlateReliability": "96",
        "VehicleColor": "2",
        "VehicleClass": "K33",
        "VehicleBrand": "1",
        "Speed": 52.5,
        "PassTime": "20241122183045",
        "StorageUrl1": f"http://10.33.1.8/pic/{n}-plate.jpg",
        "StorageUrl2": "",
        "LeftTopX": 120,
        "LeftTopY": 300,
        "RightBtmX": 900,
        "RightBtmY": 1000,
        "SubImageList": {"SubImageInfoObject": [{"ImageID": f"img-{n}", "Type": "02", "StoragePath": ""}]},
    }
    obj.update(changes)
    return obj


def batch(*objects: object) -> dict[str, object]:
    return {"MotorVehicleListObject": {"MotorVehicleObject": list(objects)}}


def body(document: object, encoding: str = "utf-8") -> bytes:
    return orjson.dumps(document).decode().encode(encoding)


REALISTIC = batch(
    vehicle(1),
    vehicle(2, PlateNo="浙JD12345", PlateColor="9", PlateReliability=88.5, LaneNo=3),
    vehicle(3, PlateNo="浙J·A1234", PlateColor=6, PlateReliability="", PassTime="20241122235959"),
)


def reads_of(results: list[RawRead | AdapterError]) -> list[RawRead]:
    assert all(isinstance(r, RawRead) for r in results), results
    return [r for r in results if isinstance(r, RawRead)]


def errors_of(results: list[RawRead | AdapterError]) -> dict[int | None, AdapterError]:
    return {r.index: r for r in results if isinstance(r, AdapterError)}


# --- motor-vehicle batches ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "content_type"),
    [
        (body(REALISTIC), f"{JSON_TYPE};charset=UTF-8"),
        (body(REALISTIC, "gbk"), f"{JSON_TYPE}; charset=GBK"),
        (body(REALISTIC, "gbk"), JSON_TYPE),  # undeclared GBK: detected
        (body(REALISTIC), None),
    ],
    ids=["utf8", "gbk-declared", "gbk-undeclared", "no-content-type"],
)
def test_realistic_batch_becomes_reads(payload: bytes, content_type: str | None) -> None:
    first, second, third = reads_of(parse_motor_vehicles(payload, content_type))

    assert first == RawRead(
        record_id=f"{DEVICE}022024112218304500001",
        device_id=DEVICE,
        source_kind=SourceKind.CHECKPOINT,
        plate_raw="浙J12345",
        observed_at=datetime(2024, 11, 22, 18, 30, 45, tzinfo=SHANGHAI),
        plate_colour=PlateColour.BLUE,
        confidence=0.96,
        image_ref="http://10.33.1.8/pic/1-plate.jpg",
    )
    assert first.observed_at.utcoffset() == timedelta(hours=8)
    assert first.observed_at.astimezone(UTC) == datetime(2024, 11, 22, 10, 30, 45, tzinfo=UTC)
    assert (second.plate_raw, second.plate_colour, second.confidence) == (
        "浙JD12345",
        PlateColour.GREEN,
        0.885,
    )
    assert second.device_id == DEVICE  # the lane is not folded into the device
    assert (third.plate_raw, third.plate_colour, third.confidence) == ("浙J·A1234", PlateColour.YELLOW, None)
    assert third.observed_at == datetime(2024, 11, 22, 23, 59, 59, tzinfo=SHANGHAI)


def test_pass_time_takes_the_given_zone() -> None:
    (read,) = reads_of(parse_motor_vehicles(body(batch(vehicle(1))), None, tz=ZoneInfo("Asia/Urumqi")))
    assert read.observed_at.utcoffset() == timedelta(hours=6)


@pytest.mark.parametrize(
    ("code", "colour"),
    [
        ("1", PlateColour.BLACK),
        ("2", PlateColour.WHITE),
        ("5", PlateColour.BLUE),
        ("05", PlateColour.BLUE),
        (6, PlateColour.YELLOW),
        ("9", PlateColour.GREEN),
        ("3", PlateColour.UNKNOWN),  # grey: no plate is grey
        ("99", PlateColour.UNKNOWN),
        ("42", PlateColour.UNKNOWN),
        ("blue", PlateColour.UNKNOWN),
        ("", PlateColour.UNKNOWN),
        (None, PlateColour.UNKNOWN),
        (True, PlateColour.UNKNOWN),
    ],
)
def test_plate_colour_codes(code: object, colour: PlateColour) -> None:
    (read,) = reads_of(parse_motor_vehicles(body(batch(vehicle(1, PlateColor=code))), None))
    assert read.plate_colour is colour


def test_missing_plate_colour_is_unknown() -> None:
    obj = vehicle(1)
    del obj["PlateColor"]
    (read,) = reads_of(parse_motor_vehicles(body(batch(obj)), None))
    assert read.plate_colour is PlateColour.UNKNOWN


@pytest.mark.parametrize(
    ("reliability", "confidence"),
    [("100", 1.0), (73, 0.73), ("0", None), (0.0, None), ("n/a", None), (180, None), (None, None)],
)
def test_plate_reliability_is_a_percentage(reliability: object, confidence: float | None) -> None:
    (read,) = reads_of(parse_motor_vehicles(body(batch(vehicle(1, PlateReliability=reliability))), None))
    assert read.confidence == confidence


def test_image_ref_falls_back_to_other_pictures() -> None:
    sub_images = {"SubImageInfoObject": [{"Data": "base64…"}, {"StoragePath": "http://fs/a.jpg"}]}
    objects = batch(
        vehicle(1, StorageUrl1="", StorageUrl3="http://fs/wide.jpg"),
        vehicle(2, StorageUrl1="", SubImageList=sub_images),
        vehicle(3, StorageUrl1="http://fs/" + "x" * 1100),
    )
    first, second, third = reads_of(parse_motor_vehicles(body(objects), None))
    assert first.image_ref == "http://fs/wide.jpg"
    assert second.image_ref == "http://fs/a.jpg"
    assert third.image_ref is None  # too long for a sighting: the read survives without it


MALFORMED = [
    (vehicle(9, PlateNo=None), "missing_field", "PlateNo"),
    (vehicle(9, PlateNo="  "), "missing_field", "PlateNo"),
    (vehicle(9, PlateNo="", HasPlate="0"), "no_plate", "PlateNo"),
    (vehicle(9, PlateNo=12345), "invalid_field", "PlateNo"),
    (vehicle(9, MotorVehicleID=None), "missing_field", "MotorVehicleID"),
    (vehicle(9, MotorVehicleID="x" * 129), "invalid_field", "MotorVehicleID"),
    (vehicle(9, DeviceID=""), "missing_field", "DeviceID"),
    (vehicle(9, DeviceID=3310020000132), "invalid_field", "DeviceID"),
    (vehicle(9, DeviceID="d" * 65), "invalid_field", "DeviceID"),
    (vehicle(9, PassTime="20241301250000"), "invalid_field", "PassTime"),
    (vehicle(9, PassTime="2024-11-22 18:30:45"), "invalid_field", "PassTime"),
    (vehicle(9, PassTime="20241122183045123"), "invalid_field", "PassTime"),
    (vehicle(9, PassTime=20241122183045), "invalid_field", "PassTime"),
    (vehicle(9, PassTime=None), "missing_field", "PassTime"),
    ("not an object", "invalid_field", "MotorVehicleObject"),
    ([vehicle(9)], "invalid_field", "MotorVehicleObject"),
    (None, "invalid_field", "MotorVehicleObject"),
]


@pytest.mark.parametrize(("bad", "reason", "field"), MALFORMED)
def test_a_bad_object_fails_alone(bad: object, reason: str, field: str) -> None:
    results = parse_motor_vehicles(body(batch(vehicle(1), bad, vehicle(3))), JSON_TYPE)

    assert len(results) == 3
    assert isinstance(results[0], RawRead)
    assert isinstance(results[2], RawRead)
    assert results[2].record_id.endswith("3")
    error = results[1]
    assert isinstance(error, AdapterError)
    assert (error.reason, error.field, error.index) == (reason, field, 1)
    assert field in str(error)


def test_missing_field_entirely_absent() -> None:
    obj = vehicle(2)
    del obj["MotorVehicleID"]
    del obj["PlateNo"]
    errors = errors_of(parse_motor_vehicles(body(batch(vehicle(1), obj)), None))
    assert list(errors) == [1]
    assert (errors[1].reason, errors[1].field) == ("missing_field", "MotorVehicleID")  # first problem


def test_impossible_pass_time_message_names_the_value() -> None:
    results = parse_motor_vehicles(body(batch(vehicle(1, PassTime="20241301250000"))), None)
    (error,) = errors_of(results).values()
    assert "20241301250000" in str(error)


@pytest.mark.parametrize(
    ("payload", "content_type", "reason", "field"),
    [
        (body(REALISTIC)[:-7], JSON_TYPE, "not_json", "body"),
        (b"", JSON_TYPE, "not_json", "body"),
        (b"<MotorVehicleListObject/>", "application/xml", "not_json", "body"),
        (body([vehicle(1)]), JSON_TYPE, "not_json", "body"),
        (body(REALISTIC, "gbk"), f"{JSON_TYPE}; charset=UTF-8", "bad_encoding", "body"),
        (body(REALISTIC), f"{JSON_TYPE}; charset=klingon", "bad_encoding", "charset"),
        (body({"FaceListObject": {}}), JSON_TYPE, "missing_field", "MotorVehicleListObject"),
        (body({"MotorVehicleListObject": []}), JSON_TYPE, "invalid_field", "MotorVehicleListObject"),
        (
            body({"MotorVehicleListObject": {}}),
            JSON_TYPE,
            "missing_field",
            "MotorVehicleListObject.MotorVehicleObject",
        ),
        (
            body({"MotorVehicleListObject": {"MotorVehicleObject": vehicle(1)}}),
            JSON_TYPE,
            "invalid_field",
            "MotorVehicleListObject.MotorVehicleObject",
        ),
        (body(batch()), JSON_TYPE, "empty_batch", "MotorVehicleListObject.MotorVehicleObject"),
        (
            body(batch(*[vehicle(1)] * (MAX_OBJECTS + 1))),
            JSON_TYPE,
            "too_many_records",
            "MotorVehicleListObject.MotorVehicleObject",
        ),
    ],
    ids=[
        "truncated",
        "empty-body",
        "xml",
        "top-level-array",
        "gbk-declared-utf8",
        "unknown-charset",
        "no-list-object",
        "list-object-not-object",
        "no-vehicle-list",
        "vehicle-list-not-array",
        "empty-list",
        "too-many",
    ],
)
def test_whole_payload_problems_raise(payload: bytes, content_type: str, reason: str, field: str) -> None:
    with pytest.raises(AdapterError) as caught:
        parse_motor_vehicles(payload, content_type)
    assert (caught.value.reason, caught.value.field, caught.value.index) == (reason, field, None)


def test_a_full_batch_is_accepted() -> None:
    objects = [vehicle(i, MotorVehicleID=f"mv-{i}") for i in range(MAX_OBJECTS)]
    reads = reads_of(parse_motor_vehicles(body(batch(*objects)), None))
    assert [r.record_id for r in reads] == [f"mv-{i}" for i in range(MAX_OBJECTS)]


# --- system requests ---------------------------------------------------------------------------------


@pytest.mark.parametrize("expected", ["RegisterObject", "KeepaliveObject", "UnRegisterObject"])
def test_system_request_gives_the_device_id(expected: str) -> None:
    payload = body({expected: {"DeviceID": f" {DEVICE} "}})
    assert parse_system_request(payload, JSON_TYPE, expected) == DEVICE  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("payload", "reason", "field"),
    [
        (b'{"RegisterObject": {"DeviceID": ', "not_json", "body"),
        (body({"KeepaliveObject": {"DeviceID": DEVICE}}), "missing_field", "RegisterObject"),
        (body({"RegisterObject": DEVICE}), "invalid_field", "RegisterObject"),
        (body({"RegisterObject": {}}), "missing_field", "RegisterObject.DeviceID"),
        (body({"RegisterObject": {"DeviceID": ""}}), "missing_field", "RegisterObject.DeviceID"),
        (body({"RegisterObject": {"DeviceID": 42}}), "invalid_field", "RegisterObject.DeviceID"),
        (body({"RegisterObject": {"DeviceID": "9" * 65}}), "invalid_field", "RegisterObject.DeviceID"),
    ],
)
def test_bad_system_request_raises(payload: bytes, reason: str, field: str) -> None:
    with pytest.raises(AdapterError) as caught:
        parse_system_request(payload, JSON_TYPE, "RegisterObject")
    assert (caught.value.reason, caught.value.field) == (reason, field)


def test_gbk_system_request() -> None:
    payload = body({"RegisterObject": {"DeviceID": "椒江卡口-01"}}, "gbk")
    assert parse_system_request(payload, "application/json;charset=gb2312", "RegisterObject") == "椒江卡口-01"


# --- responses ---------------------------------------------------------------------------------------


def test_status_codes_are_the_standards() -> None:
    assert [(c.name, c.value) for c in StatusCode] == [
        ("OK", 0),
        ("OTHER_ERROR", 1),
        ("DEVICE_BUSY", 2),
        ("DEVICE_ERROR", 3),
        ("INVALID_OPERATION", 4),
        ("INVALID_XML_FORMAT", 5),
        ("INVALID_XML_CONTENT", 6),
        ("INVALID_JSON_FORMAT", 7),
        ("INVALID_JSON_CONTENT", 8),
        ("REBOOT", 9),
    ]


def test_status_of_adapter_errors() -> None:
    assert status_of(AdapterError("not_json", "x")) is StatusCode.INVALID_JSON_FORMAT
    assert status_of(AdapterError("bad_encoding", "x")) is StatusCode.INVALID_JSON_FORMAT
    assert status_of(AdapterError("missing_field", "x", field="PlateNo")) is StatusCode.INVALID_JSON_CONTENT


def test_response_status_single() -> None:
    now = datetime(2024, 11, 22, 7, 53, 5, tzinfo=UTC)  # 15:53:05 in Shanghai
    item = response_status("/VIID/System/Register", StatusCode.OK, "注册成功", DEVICE, now=now)
    document = response_status_document(item)

    assert document == {
        "ResponseStatusObject": {
            "RequestURL": "/VIID/System/Register",
            "StatusCode": 0,
            "StatusString": "注册成功",
            "Id": DEVICE,
            "LocalTime": "20241122155305",
        }
    }
    assert orjson.loads(orjson.dumps(document))["ResponseStatusObject"]["StatusCode"] == 0
    assert type(item["StatusCode"]) is int  # not the enum: serializes as a plain number everywhere


def test_response_status_list() -> None:
    now = datetime(2024, 11, 22, 18, 30, 46, tzinfo=SHANGHAI)
    items = [
        response_status("/VIID/MotorVehicles", StatusCode.OK, "OK", "mv-1", now=now),
        response_status("/VIID/MotorVehicles", StatusCode.INVALID_JSON_CONTENT, "PlateNo: required", now=now),
    ]
    assert response_status_list(items) == {
        "ResponseStatusListObject": {
            "ResponseStatusObject": [
                {
                    "RequestURL": "/VIID/MotorVehicles",
                    "StatusCode": 0,
                    "StatusString": "OK",
                    "Id": "mv-1",
                    "LocalTime": "20241122183046",
                },
                {
                    "RequestURL": "/VIID/MotorVehicles",
                    "StatusCode": 8,
                    "StatusString": "PlateNo: required",
                    "LocalTime": "20241122183046",
                },
            ]
        }
    }


def test_response_status_refuses_a_naive_time() -> None:
    with pytest.raises(ValueError, match="aware"):
        response_status("/VIID/System/Keepalive", 0, "OK", now=datetime(2024, 11, 22, 18, 0))  # noqa: DTZ001


# --- registrations -----------------------------------------------------------------------------------


class FakeClock:
    def __init__(self, start: float = 1_732_271_445.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


def test_registration_lives_while_kept_alive() -> None:
    clock = FakeClock()
    registrations = Registrations(clock=clock, expiry_s=180)
    registrations.register(DEVICE)
    assert registrations.is_active(DEVICE)

    clock.now += 180
    assert registrations.is_active(DEVICE)  # exactly at the limit
    assert registrations.keepalive(DEVICE)
    clock.now += 179
    assert registrations.is_active(DEVICE)
    clock.now += 2
    assert not registrations.is_active(DEVICE)


def test_lapsed_registration_needs_registering_again() -> None:
    clock = FakeClock()
    registrations = Registrations(clock=clock)  # the default expiry: 300 s
    registrations.register(DEVICE)
    clock.now += 300.5
    assert not registrations.keepalive(DEVICE)
    clock.now -= 200  # even if the clock seemed to allow it again, the registration is gone
    assert not registrations.is_active(DEVICE)
    registrations.register(DEVICE)
    assert registrations.keepalive(DEVICE)


def test_keepalive_of_an_unregistered_device() -> None:
    registrations = Registrations(clock=FakeClock())
    assert not registrations.keepalive(DEVICE)
    assert not registrations.is_active(DEVICE)


def test_unregister() -> None:
    registrations = Registrations(clock=FakeClock())
    registrations.register(DEVICE)
    registrations.register("other")
    assert registrations.unregister(DEVICE)
    assert not registrations.unregister(DEVICE)
    assert not registrations.is_active(DEVICE)
    assert not registrations.keepalive(DEVICE)
    assert registrations.is_active("other")


def test_expire_reports_devices_going_offline() -> None:
    clock = FakeClock()
    registrations = Registrations(clock=clock, expiry_s=60)
    registrations.register("b")
    registrations.register("a")
    clock.now += 30
    registrations.register("c")
    clock.now += 31
    assert registrations.expire() == ["a", "b"]
    assert registrations.expire() == []
    assert registrations.is_active("c")


def test_registrations_refuse_a_bad_expiry() -> None:
    with pytest.raises(ValueError, match="expiry_s"):
        Registrations(expiry_s=0)


# --- Digest authentication ---------------------------------------------------------------------------

SECRET = b"0123456789abcdef0123456789abcdef"
REALM = "seizewatch-viid"
USERS = {"hik": "Kk#2024,ok", "dahua": "secret"}
URI = "/VIID/System/Register"


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()  # noqa: S324  # RFC 2617 is MD5


def client_response(
    challenge: str,
    *,
    username: str = "hik",
    password: str = USERS["hik"],
    method: str = "POST",
    uri: str = URI,
    cnonce: str = "pwz08088",
    nc: str = "00000001",
) -> str:
    """What a device sends back, computed per RFC 2617 3.2.2 with qop=auth, in the form devices use."""
    params = parse_digest(challenge)
    assert params is not None
    ha1 = md5(f"{username}:{params['realm']}:{password}")
    ha2 = md5(f"{method}:{uri}")
    response = md5(f"{ha1}:{params['nonce']}:{nc}:{cnonce}:auth:{ha2}")
    quoted = username.replace("\\", "\\\\").replace('"', '\\"')
    return (
        f'Digest username="{quoted}", realm="{params["realm"]}", nonce="{params["nonce"]}", uri="{uri}", '
        f'qop=auth, nc={nc}, cnonce="{cnonce}", algorithm=MD5, opaque="{params["opaque"]}", '
        f'response="{response}"'
    )


def auth(clock: FakeClock | None = None, secret: bytes = SECRET) -> DigestAuth:
    return DigestAuth(REALM, secret, clock=clock or FakeClock(), nonce_ttl_s=300)


def test_challenge_header() -> None:
    challenge = auth().challenge()
    params = parse_digest(challenge)
    assert challenge.startswith(f'Digest realm="{REALM}", qop="auth", nonce="')
    assert params is not None
    assert (params["realm"], params["qop"], params["algorithm"]) == (REALM, "auth", "MD5")
    assert "stale" not in params
    assert parse_digest(auth().challenge(stale=True))["stale"] == "true"  # type: ignore[index]
    assert auth().challenge() != challenge  # each challenge has its own nonce


def test_full_handshake_returns_the_username() -> None:
    digest = auth()
    header = client_response(digest.challenge())
    assert digest.verify(header, "POST", URI, USERS.get) == "hik"


def test_another_process_with_the_same_secret_verifies() -> None:
    clock = FakeClock()
    header = client_response(auth(clock).challenge())
    assert auth(clock).verify(header, "POST", URI, USERS.get) == "hik"
    assert (
        auth(clock, secret=b"another secret, 32 bytes long!!!").verify(header, "POST", URI, USERS.get) is None
    )


def test_quoted_algorithm_and_qop_are_accepted() -> None:
    digest = auth()
    header = client_response(digest.challenge()).replace("qop=auth", 'qop="auth"')
    header = header.replace("algorithm=MD5", 'algorithm="MD5"')
    assert digest.verify(header, "POST", URI, USERS.get) == "hik"


def test_wrong_password() -> None:
    digest = auth()
    header = client_response(digest.challenge(), password=USERS["dahua"])
    assert digest.verify(header, "POST", URI, USERS.get) is None


def test_unknown_user() -> None:
    digest = auth()
    header = client_response(digest.challenge(), username="mallory", password="")
    assert digest.verify(header, "POST", URI, USERS.get) is None


def test_tampered_nonce() -> None:
    digest = auth()
    challenge = digest.challenge()
    nonce = parse_digest(challenge)["nonce"]  # type: ignore[index]
    # Move the minting time forward one second, as someone stretching a nonce's life would.
    later = f"{int(nonce[:16], 16) + 1:016x}" + nonce[16:]
    header = client_response(challenge.replace(nonce, later))
    assert digest.verify(header, "POST", URI, USERS.get) is None
    assert not digest.nonce_is_stale(header)


def test_forged_nonce() -> None:
    digest = auth()
    header = client_response(digest.challenge().replace('nonce="', 'nonce="0123', 1))
    assert digest.verify(header, "POST", URI, USERS.get) is None


def test_expired_nonce_is_stale() -> None:
    clock = FakeClock()
    digest = auth(clock)
    header = client_response(digest.challenge())
    clock.now += 300
    assert digest.verify(header, "POST", URI, USERS.get) == "hik"
    clock.now += 1
    assert digest.verify(header, "POST", URI, USERS.get) is None
    assert digest.nonce_is_stale(header)


def test_nonce_from_the_far_future_is_refused() -> None:
    clock = FakeClock()
    header = client_response(auth(FakeClock(clock.now + 3600)).challenge())
    assert auth(clock).verify(header, "POST", URI, USERS.get) is None


def test_wrong_uri_or_method() -> None:
    digest = auth()
    header = client_response(digest.challenge())
    assert digest.verify(header, "POST", "/VIID/System/UnRegister", USERS.get) is None
    assert digest.verify(header, "PUT", URI, USERS.get) is None
    # A response computed for another uri than the one the header names.
    lying = client_response(digest.challenge(), uri="/VIID/System/Keepalive").replace(
        'uri="/VIID/System/Keepalive"', f'uri="{URI}"'
    )
    assert digest.verify(lying, "POST", URI, USERS.get) is None


def test_other_realm_algorithm_or_qop() -> None:
    digest = auth()
    header = client_response(digest.challenge())
    for original, changed in [
        (f'realm="{REALM}"', 'realm="other"'),
        ("algorithm=MD5", "algorithm=SHA-256"),
        ("qop=auth", "qop=auth-int"),
        ("nc=00000001", "nc=1"),
    ]:
        assert digest.verify(header.replace(original, changed), "POST", URI, USERS.get) is None


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "Basic aGlrOnNlY3JldA==",
        "Digest",
        "Digest ",
        'Digest username="hik"',
        "Digest username=",
        'Digest username="unterminated, realm="x"',
        "Digest username=hik realm=x",
        'Digest username="hik", username="dahua"',
        "Digest ===",
        "\x00\xff garbage",
    ],
)
def test_garbage_headers_fail(header: str | None) -> None:
    assert auth().verify(header, "POST", URI, USERS.get) is None


def test_garbage_response_value_fails() -> None:
    digest = auth()
    header = client_response(digest.challenge())
    start = header.index('response="') + len('response="')
    for bad in ("", "zz", "é" * 32):
        assert digest.verify(header[:start] + bad + header[start + 32 :], "POST", URI, USERS.get) is None


def test_parse_digest_handles_quotes_commas_and_escapes() -> None:
    header = 'Digest  username="a,b \\"c\\"" ,, realm=viid,qop=auth, nc=00000001 , cnonce="x=y,z",'
    assert parse_digest(header) == {
        "username": 'a,b "c"',
        "realm": "viid",
        "qop": "auth",
        "nc": "00000001",
        "cnonce": "x=y,z",
    }
    assert parse_digest("digest QOP=auth") == {"qop": "auth"}


@given(
    username=st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=30),
    password=st.text(max_size=30),
    cnonce=st.text(alphabet="abcdef0123456789=,; ", min_size=1, max_size=20),
)
def test_any_username_and_cnonce_round_trip(username: str, password: str, cnonce: str) -> None:
    digest = auth()
    header = client_response(digest.challenge(), username=username, password=password, cnonce=cnonce)
    assert digest.verify(header, "POST", URI, {username: password}.get) == username


def test_digest_auth_refuses_bad_settings() -> None:
    with pytest.raises(ValueError, match="secret"):
        DigestAuth(REALM, b"short")
    with pytest.raises(ValueError, match="realm"):
        DigestAuth('a"b', SECRET)
    with pytest.raises(ValueError, match="nonce_ttl_s"):
        DigestAuth(REALM, SECRET, nonce_ttl_s=0)
