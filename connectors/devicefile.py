"""Device registry import: CSV rows into device records, refused whole on the first bad row."""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from streams.errors import InvalidInput
from streams.events import SourceKind, text_fault

REQUIRED = ("device_id", "source_id", "name", "district", "device_group")
OPTIONAL = ("kind", "address", "latitude", "longitude", "owner", "timezone")
# What a sighting holds of a device's row (streams.events.Sighting, Location): a longer value would make
# every read of the device a refusal, so the row is refused instead.
MAX_LENGTHS = {"device_id": 128, "district": 64, "name": 256, "address": 256}
# The devices table's CHECK constraints, and streams.events.Location's: NaN and infinities are outside.
RANGES = {"latitude": 90.0, "longitude": 180.0}


def read_devices(lines: Iterable[str]) -> list[dict[str, object]]:
    """Parse device rows. The registry is configuration: one bad row refuses the file, naming it.

    Raises:
        InvalidInput: the header or a row is invalid (line and column named).
    """
    reader = csv.DictReader(iter(lines))
    try:
        return _rows(reader)
    except csv.Error as exc:  # a cell over csv's field size limit (128 KiB)
        raise InvalidInput("bad_csv", f"line {reader.line_num}: {exc}", field="body") from exc


def _rows(reader: csv.DictReader[str]) -> list[dict[str, object]]:
    header = [h.strip() for h in reader.fieldnames or []]
    missing = [c for c in REQUIRED if c not in header]
    unknown = [c for c in header if c not in REQUIRED + OPTIONAL]
    if missing or unknown:
        raise InvalidInput("bad_header", f"missing {missing}, unknown {unknown}", field="header")
    reader.fieldnames = header
    rows: list[dict[str, object]] = []
    for raw in reader:
        line = reader.line_num
        values = {k: (v or "").strip() for k, v in raw.items() if k is not None}
        for column, value in values.items():
            if fault := text_fault(value):  # PostgreSQL stores no NUL
                raise InvalidInput("invalid_field", f"line {line}: {column} {fault}", field=column)
            limit = MAX_LENGTHS.get(column)
            if limit is not None and len(value) > limit:
                raise InvalidInput(
                    "invalid_field", f"line {line}: {column} must be at most {limit} characters", field=column
                )
        for column in REQUIRED:
            if not values[column]:
                raise InvalidInput("missing_field", f"line {line}: {column} is empty", field=column)
        row: dict[str, object] = {c: values[c] for c in REQUIRED}
        row["address"] = values.get("address", "")
        row["owner"] = values.get("owner", "")
        if values.get("kind"):
            try:
                row["kind"] = SourceKind(values["kind"]).value
            except ValueError as exc:
                kinds = [k.value for k in SourceKind]
                raise InvalidInput(
                    "invalid_field", f"line {line}: kind must be one of {kinds}", field="kind"
                ) from exc
        lat, lon = values.get("latitude", ""), values.get("longitude", "")
        if bool(lat) != bool(lon):
            raise InvalidInput(
                "invalid_field", f"line {line}: give both latitude and longitude or neither", field="latitude"
            )
        if lat:
            row["latitude"], row["longitude"] = (
                _coordinate(lat, "latitude", line),
                _coordinate(lon, "longitude", line),
            )
        tz = values.get("timezone") or "Asia/Shanghai"
        try:
            ZoneInfo(tz)
        # OSError: a key that names a directory (Asia) or is too long for a file name
        except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
            raise InvalidInput(
                "invalid_field", f"line {line}: unknown time zone {tz[:64]!r}", field="timezone"
            ) from exc
        row["timezone"] = tz
        rows.append(row)
    return rows


def _coordinate(text: str, column: str, line: int) -> float:
    try:
        value = float(text)
    except ValueError as exc:
        raise InvalidInput(
            "invalid_field", f"line {line}: coordinates must be numbers", field="latitude"
        ) from exc
    limit = RANGES[column]
    if not (math.isfinite(value) and -limit <= value <= limit):
        raise InvalidInput(
            "invalid_field", f"line {line}: {column} must be from {-limit:g} to {limit:g}", field=column
        )
    return value
