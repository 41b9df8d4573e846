"""GA/T 1400 (视图库, VIID) as checkpoint devices push it: motor-vehicle batches in, ResponseStatus out.

A checkpoint (卡口) camera registers with ``POST /VIID/System/Register`` (HTTP Digest, see
:mod:`connectors.gat1400_auth`), keeps alive with ``POST /VIID/System/Keepalive`` and pushes passes with
``POST /VIID/MotorVehicles``; every answer is a ``ResponseStatusObject`` (one per pushed object in a
``ResponseStatusListObject``). This module turns those bodies into :class:`RawRead` objects and builds the
answers. Pure: bytes in, values out.

Checked against public GA/T 1400 implementations, which agree with one another: the field names and the
``MotorVehicleListObject`` / ``RegisterObject`` / ``KeepaliveObject`` / ``UnRegisterObject`` envelopes
(C++ client structs that follow GA/T 1400.3, Java and Go VIID servers); the ``ResponseStatusObject`` fields,
``StatusCode`` sent as a number and ``LocalTime`` as ``yyyyMMddHHmmss`` (a VIID platform's capture of a
registration); the status codes 0-9 (a C++ client's header); the colour code table (a Java VIID server's
enum). The standard text itself was not available.
"""

from __future__ import annotations

import enum
import re
from datetime import datetime, tzinfo
from typing import Final, Literal

import orjson

from connectors.records import SHANGHAI, AdapterError, RawRead, charset_of, decode_text, localize
from streams.events import SourceKind
from streams.vehicles import PlateColour

# One POST is answered with one status per object; a bigger batch is refused whole, so a misconfigured
# device cannot make us hold (and answer) an unbounded list.
MAX_OBJECTS: Final = 1000
MAX_DEVICE_ID_LENGTH: Final = 64  # national codes are 20 digits; private platforms use longer ids
MAX_RECORD_ID_LENGTH: Final = 128  # MotorVehicleID is typically 48 characters (device id + time + serial)
MAX_IMAGE_REF_LENGTH: Final = 1024  # what a canonical sighting accepts

LIST_OBJECT: Final = "MotorVehicleListObject"
VEHICLE_OBJECT: Final = "MotorVehicleObject"

SystemObject = Literal["RegisterObject", "KeepaliveObject", "UnRegisterObject"]


class StatusCode(enum.IntEnum):
    """``ResponseStatusObject.StatusCode`` as GA/T 1400.4 defines it."""

    OK = 0
    OTHER_ERROR = 1
    DEVICE_BUSY = 2
    DEVICE_ERROR = 3
    INVALID_OPERATION = 4
    INVALID_XML_FORMAT = 5
    INVALID_XML_CONTENT = 6
    INVALID_JSON_FORMAT = 7
    INVALID_JSON_CONTENT = 8
    REBOOT = 9


# The standard's colour code (used by PlateColor and VehicleColor): 1 黑 2 白 3 灰 4 红 5 蓝 6 黄 7 橙 8 棕
# 9 绿 10 紫 11 青 12 粉 13 透明 99 其他. Only the colours a Chinese plate can have are mapped. The table has
# no yellow-green, so a large new-energy plate cannot be told apart here: it stays whatever the device
# chose (9 or 99), and the plate text (8 characters, D/F) tells the rest downstream.
_PLATE_COLOURS: Final = {
    1: PlateColour.BLACK,
    2: PlateColour.WHITE,
    5: PlateColour.BLUE,
    6: PlateColour.YELLOW,
    9: PlateColour.GREEN,
}
# StorageUrl1 is the close-up (近景照片) a checkpoint camera must send when capture is automatic; 2 the
# vehicle, 3 the wide shot, 4 a composite, 5 a thumbnail. Any of them shows the car to an officer.
_IMAGE_FIELDS: Final = ("StorageUrl1", "StorageUrl2", "StorageUrl3", "StorageUrl4", "StorageUrl5")
_PASS_TIME = re.compile(r"[0-9]{14}")
_CODE = re.compile(r"[0-9]{1,3}")


def parse_motor_vehicles(
    body: bytes, content_type: str | None, *, tz: tzinfo = SHANGHAI
) -> list[RawRead | AdapterError]:
    """Read a ``POST /VIID/MotorVehicles`` body: one read, or one error, per ``MotorVehicleObject``.

    ``tz`` is the devices' local time zone (PassTime carries no offset). Results keep the batch order, so
    the caller can answer each object and dead-letter the bad ones while the good ones go on.

    Raises:
        AdapterError: for the whole payload: ``bad_encoding``, ``not_json``, ``missing_field`` or
            ``invalid_field`` (the envelope), ``empty_batch``, ``too_many_records``.
    """
    document = _load_object(body, content_type)
    wrapper = _member(document, LIST_OBJECT, LIST_OBJECT)
    path = f"{LIST_OBJECT}.{VEHICLE_OBJECT}"
    objects = wrapper.get(VEHICLE_OBJECT)
    if objects is None:
        raise AdapterError("missing_field", f"no {VEHICLE_OBJECT} list in {LIST_OBJECT}", field=path)
    if not isinstance(objects, list):
        raise AdapterError("invalid_field", f"expected an array, got {_kind(objects)}", field=path)
    if not objects:
        raise AdapterError("empty_batch", "the batch holds no MotorVehicleObject", field=path)
    if len(objects) > MAX_OBJECTS:
        raise AdapterError(
            "too_many_records", f"{len(objects)} objects in one batch (at most {MAX_OBJECTS})", field=path
        )
    return [_vehicle(obj, index, tz) for index, obj in enumerate(objects)]


def parse_system_request(body: bytes, content_type: str | None, expected: SystemObject) -> str:
    """The DeviceID of a Register, Keepalive or UnRegister body (``{"RegisterObject": {"DeviceID": …}}``).

    Raises:
        AdapterError: ``bad_encoding``, ``not_json``, ``missing_field`` or ``invalid_field``.
    """
    inner = _member(_load_object(body, content_type), expected, expected)
    return _text(inner, "DeviceID", MAX_DEVICE_ID_LENGTH, field=f"{expected}.DeviceID")


def status_of(error: AdapterError) -> StatusCode:
    """The status code that answers an adapter error: unreadable JSON, or readable but wrong content."""
    if error.reason in {"bad_encoding", "not_json"}:
        return StatusCode.INVALID_JSON_FORMAT
    return StatusCode.INVALID_JSON_CONTENT


def response_status(
    request_url: str,
    status_code: int,
    status_string: str,
    object_id: str | None = None,
    *,
    now: datetime,
    tz: tzinfo = SHANGHAI,
) -> dict[str, object]:
    """One ``ResponseStatusObject``; ``now`` must be aware and is written as local time in ``tz``.

    ``Id`` names the object answered (the DeviceID for system requests, the MotorVehicleID in a batch);
    it is left out rather than sent as null when there is none.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    status: dict[str, object] = {
        "RequestURL": request_url,
        "StatusCode": int(status_code),
        "StatusString": status_string,
    }
    if object_id is not None:
        status["Id"] = object_id
    status["LocalTime"] = now.astimezone(tz).strftime("%Y%m%d%H%M%S")
    return status


def response_status_document(item: dict[str, object]) -> dict[str, object]:
    """The body answering a single request (Register, Keepalive, UnRegister)."""
    return {"ResponseStatusObject": item}


def response_status_list(items: list[dict[str, object]]) -> dict[str, object]:
    """The body answering a batch: one ``ResponseStatusObject`` per pushed object, in order."""
    return {"ResponseStatusListObject": {"ResponseStatusObject": list(items)}}


def _vehicle(obj: object, index: int, tz: tzinfo) -> RawRead | AdapterError:
    if not isinstance(obj, dict):
        return AdapterError(
            "invalid_field", f"expected a JSON object, got {_kind(obj)}", field=VEHICLE_OBJECT, index=index
        )
    try:
        record_id = _text(obj, "MotorVehicleID", MAX_RECORD_ID_LENGTH)
        device_id = _text(obj, "DeviceID", MAX_DEVICE_ID_LENGTH)
        plate_raw = _plate(obj)
        observed_at = _pass_time(obj.get("PassTime"), tz)
    except AdapterError as exc:
        exc.index = index
        return exc
    # LaneNo, TollgateID, Direction and the rest are the device registry's business (a lane is part of
    # where the device is, not of which device it is), so they are accepted and left alone.
    return RawRead(
        record_id=record_id,
        device_id=device_id,
        source_kind=SourceKind.CHECKPOINT,
        plate_raw=plate_raw,
        observed_at=observed_at,
        plate_colour=_plate_colour(obj.get("PlateColor")),
        confidence=_confidence(obj.get("PlateReliability")),
        image_ref=_image_ref(obj),
    )


def _load_object(body: bytes, content_type: str | None) -> dict[str, object]:
    # Older devices send GBK, often without saying so; decode_text honours a declared charset and
    # otherwise falls back from UTF-8 to GB18030.
    text, _ = decode_text(body, charset_of(content_type))
    try:
        document = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise AdapterError("not_json", f"not a JSON document: {exc}", field="body") from exc
    if not isinstance(document, dict):
        raise AdapterError("not_json", f"expected a JSON object, got {_kind(document)}", field="body")
    return document


def _member(document: dict[str, object], name: str, field: str) -> dict[str, object]:
    value = document.get(name)
    if value is None:
        raise AdapterError("missing_field", f"no {name} in the body", field=field)
    if not isinstance(value, dict):
        raise AdapterError("invalid_field", f"expected a JSON object, got {_kind(value)}", field=field)
    return value


def _text(obj: dict[str, object], name: str, max_length: int, *, field: str | None = None) -> str:
    # Ids are compared with the device registry and hashed into the idempotency key, so surrounding
    # blanks are dropped; numbers are refused because 20-digit codes do not survive as JSON numbers.
    value = obj.get(name)
    field = field or name
    if value is None or (isinstance(value, str) and not value.strip()):
        raise AdapterError("missing_field", f"{name} is required", field=field)
    if not isinstance(value, str):
        raise AdapterError("invalid_field", f"expected a string, got {_kind(value)}", field=field)
    text = value.strip()
    if len(text) > max_length:
        raise AdapterError("invalid_field", f"longer than {max_length} characters", field=field)
    return text


def _plate(obj: dict[str, object]) -> str:
    value = obj.get("PlateNo")
    if value is None or (isinstance(value, str) and not value.strip()):
        # HasPlate "0" is the camera saying it saw a car without a plate: not a malformed record, and
        # worth counting apart from devices that leave the plate out by mistake.
        if obj.get("HasPlate") in ("0", 0):
            raise AdapterError("no_plate", "the device saw no plate (HasPlate 0)", field="PlateNo")
        raise AdapterError("missing_field", "PlateNo is required", field="PlateNo")
    if not isinstance(value, str):
        raise AdapterError("invalid_field", f"expected a string, got {_kind(value)}", field="PlateNo")
    return value  # as read: normalization (full-width characters, separators) happens downstream


def _pass_time(value: object, tz: tzinfo) -> datetime:
    if value is None or value == "":
        raise AdapterError("missing_field", "PassTime is required", field="PassTime")
    if not isinstance(value, str) or not _PASS_TIME.fullmatch(value):
        raise AdapterError("invalid_field", f"expected yyyyMMddHHmmss, got {value!r}", field="PassTime")
    try:
        # Naive on purpose: PassTime is the device's local time and gets its zone from localize().
        naive = datetime.strptime(value, "%Y%m%d%H%M%S")  # noqa: DTZ007
    except ValueError as exc:
        raise AdapterError("invalid_field", f"not a valid time: {value!r}", field="PassTime") from exc
    return localize(naive, tz)


def _plate_colour(value: object) -> PlateColour:
    # An unknown or missing code is not an error: colour never decides a match on its own.
    if isinstance(value, bool):
        return PlateColour.UNKNOWN
    if isinstance(value, int):
        return _PLATE_COLOURS.get(value, PlateColour.UNKNOWN)
    if isinstance(value, str) and _CODE.fullmatch(value.strip()):
        return _PLATE_COLOURS.get(int(value), PlateColour.UNKNOWN)
    return PlateColour.UNKNOWN


def _confidence(value: object) -> float | None:
    # PlateReliability (号牌识别可信度) is a string in the standard; devices send "96", 96 or 96.5 on a
    # 0-100 scale, and 0 or "" when they do not rate the read. A value that is no such number is dropped
    # rather than failing the read: confidence never decides a match, a lost read of a sealed car would.
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return None
    if not isinstance(value, int | float) or not 0 < value <= 100:  # also refuses NaN
        return None
    return round(value / 100, 4)


def _image_ref(obj: dict[str, object]) -> str | None:
    # A reference too long for a sighting is skipped rather than failing the whole read downstream.
    for name in _IMAGE_FIELDS:
        value = obj.get(name)
        if isinstance(value, str) and value.strip() and len(value.strip()) <= MAX_IMAGE_REF_LENGTH:
            return value.strip()
    # Devices that fill no StorageUrl put their pictures in SubImageList; only a stored path is a
    # reference (inline base64 Data is not kept).
    images = obj.get("SubImageList")
    entries = images.get("SubImageInfoObject") if isinstance(images, dict) else None
    for entry in entries if isinstance(entries, list) else ():
        path = entry.get("StoragePath") if isinstance(entry, dict) else None
        if isinstance(path, str) and path.strip() and len(path.strip()) <= MAX_IMAGE_REF_LENGTH:
            return path.strip()
    return None


def _kind(value: object) -> str:
    """The JSON name of a decoded value's type, for messages a device integrator understands."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"
