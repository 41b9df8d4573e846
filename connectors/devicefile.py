"""Device registry import: CSV rows into device records, refused whole on the first bad row."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from streams.errors import InvalidInput
from streams.events import SourceKind

REQUIRED = ("device_id", "source_id", "name", "district", "device_group")
OPTIONAL = ("kind", "address", "latitude", "longitude", "owner", "timezone")


def read_devices(lines: Iterable[str]) -> list[dict[str, object]]:
    """Parse device rows. The registry is configuration: one bad row refuses the file, naming it.

    Raises:
        InvalidInput: the header or a row is invalid (line and column named).
    """
    reader = csv.DictReader(iter(lines))
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
            try:
                row["latitude"], row["longitude"] = float(lat), float(lon)
            except ValueError as exc:
                raise InvalidInput(
                    "invalid_field", f"line {line}: coordinates must be numbers", field="latitude"
                ) from exc
        tz = values.get("timezone") or "Asia/Shanghai"
        try:
            ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise InvalidInput(
                "invalid_field", f"line {line}: unknown time zone {tz!r}", field="timezone"
            ) from exc
        row["timezone"] = tz
        rows.append(row)
    return rows
