"""Parking-lot feeds: the published generic schema, and vendor mappings as one function each.

A vendor whose system pushes its own JSON gets an adapter here (a function from the decoded document to
reads), registered in :data:`VENDORS`; the endpoint ``POST /parking/v1/{vendor}/records`` stays the same.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, field_validator

from connectors.records import SHANGHAI, AdapterError, RawRead, localize
from streams.events import SourceKind
from streams.vehicles import PlateColour

MAX_RECORDS = 500

_Id = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]

# Colour words as Chinese parking systems write them, beside our own names.
_COLOUR_WORDS = {
    "蓝": PlateColour.BLUE, "蓝色": PlateColour.BLUE, "黄": PlateColour.YELLOW, "黄色": PlateColour.YELLOW,
    "绿": PlateColour.GREEN, "绿色": PlateColour.GREEN, "渐变绿": PlateColour.GREEN,
    "黄绿": PlateColour.YELLOW_GREEN, "黄绿色": PlateColour.YELLOW_GREEN, "白": PlateColour.WHITE,
    "白色": PlateColour.WHITE, "黑": PlateColour.BLACK, "黑色": PlateColour.BLACK,
}  # fmt: skip


def colour_of(value: object) -> PlateColour:
    """A colour from our name or a Chinese word; anything else is unknown (never an error)."""
    if isinstance(value, str):
        text = value.strip().lower()
        if text in PlateColour.__members__.values():
            return PlateColour(text)
        return _COLOUR_WORDS.get(value.strip(), PlateColour.UNKNOWN)
    return PlateColour.UNKNOWN


class ParkingRecordV1(BaseModel):
    """One entry or exit read, as the generic parking schema (v1) has it."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    record_id: _Id = Field(description="The sender's own id of this read; a resend carries the same id.")
    lot_id: _Id = Field(description="The parking lot, as registered with the court.")
    gate: _Id = Field(description="The gate or lane camera within the lot.")
    direction: Literal["in", "out"] = Field(description="Entry (in) or exit (out).")
    plate: Annotated[str, StringConstraints(max_length=32)] = Field(
        description="Plate as read, e.g. 浙J12345."
    )
    plate_colour: str | None = Field(default=None, description="blue/yellow/green/… or 蓝/黄/绿/白/黑.")
    time: datetime = Field(description="ISO 8601; without an offset it is the lot's local time (+08:00).")
    image_url: Annotated[str, StringConstraints(max_length=1024)] | None = None
    confidence: float | None = Field(default=None, ge=0, le=1, description="OCR confidence, 0..1.")

    @field_validator("plate")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value


class ParkingBatchV1(BaseModel):
    """Body of ``POST /parking/v1/generic/records``: up to 500 reads."""

    model_config = ConfigDict(extra="forbid")

    records: list[ParkingRecordV1] = Field(min_length=1, max_length=MAX_RECORDS)


def _records_of(document: Any, key: str) -> list[Any]:
    if not isinstance(document, dict):
        raise AdapterError("invalid_json_content", "expected a JSON object", field=key)
    records = document.get(key)
    if not isinstance(records, list) or not records:
        raise AdapterError("missing_field", f"'{key}' must be a non-empty list", field=key)
    if len(records) > MAX_RECORDS:
        raise AdapterError("too_many_records", f"at most {MAX_RECORDS} records per request", field=key)
    return records


def _error(index: int, exc: ValidationError, prefix: str = "") -> AdapterError:
    """The record's first bad field as ``field``; every problem of the record in the message."""
    problems = [(prefix + ".".join(str(p) for p in e["loc"]), e["msg"]) for e in exc.errors()]
    # str(error) already starts with the first field's name; the others are named in the message.
    message = "; ".join([problems[0][1], *(f"{field}: {msg}" for field, msg in problems[1:])])
    return AdapterError("invalid_field", message, field=problems[0][0], index=index)


def generic_record(item: Any, index: int, prefix: str = "") -> RawRead | AdapterError:
    """One record of the generic schema (also a row of a backfill file) as a read, or why not."""
    try:
        record = ParkingRecordV1.model_validate(item)
    except ValidationError as exc:
        return _error(index, exc, prefix)
    return RawRead(
        record_id=record.record_id,
        device_id=f"{record.lot_id}/{record.gate}",
        source_kind=SourceKind.PARKING_ENTRY if record.direction == "in" else SourceKind.PARKING_EXIT,
        plate_raw=record.plate,
        observed_at=localize(record.time, SHANGHAI),
        plate_colour=colour_of(record.plate_colour),
        confidence=record.confidence,
        image_ref=record.image_url,
    )


def parse_generic(document: Any) -> list[RawRead | AdapterError]:
    """The generic schema (:class:`ParkingBatchV1`), record by record."""
    return [
        generic_record(item, index, f"records[{index}].")
        for index, item in enumerate(_records_of(document, "records"))
    ]


class _ExampleCnRecord(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    orderId: _Id  # noqa: N815  # the sender's field names
    gateCode: _Id  # noqa: N815
    carNo: Annotated[str, StringConstraints(max_length=32)]  # noqa: N815
    plateColor: str | None = None  # noqa: N815
    inOutType: Literal[0, 1]  # noqa: N815  # 0 entry, 1 exit
    passTime: str  # noqa: N815  # "yyyy-MM-dd HH:mm:ss", local time
    picUrl: str | None = None  # noqa: N815


def parse_example_cn(document: Any) -> list[RawRead | AdapterError]:
    """An example of the adapter layer: the flat push format many Chinese parking platforms use
    (``{"parkCode": …, "data": [{"orderId", "gateCode", "carNo", "plateColor", "inOutType", "passTime",
    "picUrl"}]}``). Not any one vendor's documented API: copy it when onboarding a real one."""
    park = document.get("parkCode") if isinstance(document, dict) else None
    if not isinstance(park, str) or not park.strip():
        raise AdapterError("missing_field", "'parkCode' must be the lot's code", field="parkCode")
    out: list[RawRead | AdapterError] = []
    for index, item in enumerate(_records_of(document, "data")):
        try:
            record = _ExampleCnRecord.model_validate(item)
            passed = datetime.strptime(record.passTime, "%Y-%m-%d %H:%M:%S")  # noqa: DTZ007  # localized below
        except ValidationError as exc:
            out.append(_error(index, exc, f"data[{index}]."))
            continue
        except ValueError:
            out.append(
                AdapterError(
                    "invalid_field",
                    f"data[{index}].passTime: expected yyyy-MM-dd HH:mm:ss",
                    field=f"data[{index}].passTime",
                    index=index,
                )
            )
            continue
        out.append(
            RawRead(
                record_id=record.orderId,
                device_id=f"{park.strip()}/{record.gateCode}",
                source_kind=SourceKind.PARKING_ENTRY if record.inOutType == 0 else SourceKind.PARKING_EXIT,
                plate_raw=record.carNo,
                observed_at=localize(passed, SHANGHAI),
                plate_colour=colour_of(record.plateColor),
                image_ref=record.picUrl,
            )
        )
    return out


VENDORS: dict[str, Callable[[Any], list[RawRead | AdapterError]]] = {
    "generic": parse_generic,
    "example_cn": parse_example_cn,
}
