"""Bulk import of watch entries from CSV: parse rows into :class:`NewEntry` or a reason per row.

The header names the columns by :class:`~streams.watchstore.NewEntry` field (``plate``, ``case_number``,
``court``, ``action``, ``priority``, ``plate_colour``, ``vehicle``, ``valid_from``, ``valid_until``,
``note``) or by its Chinese name (:data:`HEADER_ALIASES`: 车牌号, 案号, 法院, 措施…); values of action,
priority and plate colour may be Chinese too (扣押/查找/活封, 紧急/普通/低, 蓝/黄/绿…). Empty cells take
the default. Unknown columns are refused before any row is read, so a typo in a header never silently
drops a column. Validity cells take a plain date (``2027-12-31``: valid_from from the start of that day,
valid_until to its end, in the court's local time) or an ISO time (one without offset is local time).

The rejects file (:func:`write_rejects`) holds every rejected row as it was read plus a
:data:`REASON_COLUMN`; the import ignores that column, so the fixed file imports as it is.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Final
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from streams.errors import InvalidInput
from streams.vehicles import Action, PlateColour, Priority
from streams.watchstore import NewEntry

REQUIRED_COLUMNS = frozenset({"plate", "case_number", "court"})
KNOWN_COLUMNS = frozenset(NewEntry.model_fields)
REASON_COLUMN: Final = "reject_reason"  # added by the rejects file; ignored when it is imported again

# Chinese column names as clerks write them, each for one NewEntry field.
HEADER_ALIASES: Final[Mapping[str, str]] = {
    "车牌号": "plate",
    "车牌": "plate",
    "号牌号码": "plate",
    "车牌颜色": "plate_colour",
    "号牌颜色": "plate_colour",
    "案号": "case_number",
    "法院": "court",
    "执行法院": "court",
    "措施": "action",
    "处置": "action",
    "处置方式": "action",
    "优先级": "priority",
    "车辆": "vehicle",
    "车辆描述": "vehicle",
    "生效日期": "valid_from",
    "生效时间": "valid_from",
    "失效日期": "valid_until",
    "失效时间": "valid_until",
    "备注": "note",
}

# Chinese values, each for one value of the column's closed vocabulary; English values stay accepted.
VALUE_ALIASES: Final[Mapping[str, Mapping[str, str]]] = {
    "action": {
        "扣押": Action.SEIZE, "查找": Action.LOCATE, "活封": Action.SOFT_SEAL, "活扣": Action.SOFT_SEAL,
    },
    "priority": {"紧急": Priority.URGENT, "普通": Priority.NORMAL, "低": Priority.LOW},
    "plate_colour": {
        **{f"{word}{suffix}": colour for suffix in ("", "色") for word, colour in (
            ("蓝", PlateColour.BLUE), ("黄", PlateColour.YELLOW), ("绿", PlateColour.GREEN),
            ("黄绿", PlateColour.YELLOW_GREEN), ("白", PlateColour.WHITE), ("黑", PlateColour.BLACK),
        )},
        "渐变绿": PlateColour.GREEN,  # the small new-energy plate's official name
        "未知": PlateColour.UNKNOWN,
    },
}  # fmt: skip

_PLAIN_DATE: Final = re.compile(
    r"(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})"
)  # Excel rewrites 2027-12-31 as 2027/12/31
_VALIDITY: Final = ("valid_from", "valid_until")


@dataclass(frozen=True, slots=True)
class Rejected:
    line: int
    reason: str
    message: str


@dataclass(frozen=True, slots=True)
class Row:
    """One data row: where it was, its cells as read, and what they made."""

    line: int
    cells: tuple[str, ...]
    result: NewEntry | Rejected


@dataclass(frozen=True, slots=True)
class CsvRows:
    header: tuple[str, ...]  # as written in the file
    rows: list[Row]


def decode_csv(data: bytes, encoding: str | None = None) -> tuple[str, str]:
    """The file's text and the encoding it was read with.

    Without ``encoding``: UTF-8 (with or without the BOM Excel writes), else GB18030, the superset of the
    GBK that Excel on Chinese Windows saves "CSV" in. GBK bytes are hardly ever valid UTF-8, so the order
    decides nothing in practice.

    Raises:
        InvalidInput: ``bad_encoding``, the bytes are not text in the encoding (given or any tried).
    """
    tried = [encoding] if encoding else ["utf-8-sig", "gb18030"]
    for name in tried:
        try:
            return data.decode(name), name
        except UnicodeDecodeError as exc:
            error = exc
        except LookupError as exc:
            raise InvalidInput("bad_encoding", f"unknown encoding {name!r}", field="encoding") from exc
    raise InvalidInput(
        "bad_encoding",
        f"not {' or '.join(tried)} text ({error}); save it from Excel as 'CSV UTF-8' or give --encoding",
        field="encoding",
    )


def parse_validity(text: str, column: str, zone: ZoneInfo) -> datetime:
    """A validity cell as a time with its offset.

    A plain date is a whole day in ``zone``: ``valid_from`` starts at its midnight, ``valid_until`` ends at
    the next midnight (``2027-12-31`` is valid through that day). An ISO time without offset is read in
    ``zone``.

    Raises:
        ValueError: neither a date nor an ISO time (the message names the value).
    """
    value = text.strip()
    if plain := _PLAIN_DATE.fullmatch(value):
        try:
            day = date(int(plain.group(1)), int(plain.group(2)), int(plain.group(3)))
        except ValueError as exc:
            raise ValueError(f"{value!r} is not a date ({exc})") from exc
        if column == "valid_until":
            day += timedelta(days=1)
        return datetime.combine(day, time(0), tzinfo=zone)
    try:
        at = datetime.fromisoformat(value)
    except ValueError as exc:
        raise ValueError(
            f"{value!r} is neither a date (2027-12-31) nor an ISO time (2027-12-31T18:00+08:00)"
        ) from exc
    return at if at.utcoffset() is not None else at.replace(tzinfo=zone)


def _canonical_header(header: list[str]) -> list[str | None]:
    """The NewEntry field of each column (None for the rejects file's reason column).

    Raises:
        InvalidInput: a required column is missing, a column is unknown or given twice.
    """
    fields: list[str | None] = []
    unknown: list[str] = []
    for name in header:
        if name == REASON_COLUMN:
            fields.append(None)
            continue
        field = HEADER_ALIASES.get(name, name.lower())
        if field not in KNOWN_COLUMNS:
            unknown.append(name)
        fields.append(field)
    named = [f for f in fields if f is not None]
    twice = sorted({f for f in named if named.count(f) > 1})
    missing = REQUIRED_COLUMNS - set(named)
    if missing or unknown or twice:
        parts = []
        if missing:
            parts.append(f"missing required column(s) {sorted(missing)}")
        if unknown:
            known = ", ".join(f"{zh}/{en}" for zh, en in HEADER_ALIASES.items())
            parts.append(f"unknown column(s) {sorted(unknown)}; known: {sorted(KNOWN_COLUMNS)} or {known}")
        if twice:
            parts.append(f"column(s) given twice {twice}")
        raise InvalidInput("bad_header", "; ".join(parts), field="header")
    return fields


def _entry(
    line: int, header: list[str], fields: list[str | None], cells: list[str], zones: _Zones
) -> NewEntry | Rejected:
    values: dict[str, object] = {}
    for field, cell in zip(fields, cells, strict=False):
        value = cell.strip()
        if field is None or not value:
            continue
        if field in VALUE_ALIASES:
            value = VALUE_ALIASES[field].get(value, value.lower())
        values[field] = value
    zone = zones.of(str(values.get("court", "")))
    for name, field, cell in zip(header, fields, cells, strict=False):
        if field in _VALIDITY and cell.strip():
            try:
                values[field] = parse_validity(cell, field, zone)
            except ValueError as exc:
                return Rejected(line, f"invalid_{field}", f"{field} (column {name!r}): {exc}")
    try:
        return NewEntry.model_validate(values)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"])
        column = next((n for n, f in zip(header, fields, strict=False) if f == field), field)
        given = f" (given {first['input']!r})" if field in values else ""
        named = field if column == field else f"{field} (column {column!r})"
        return Rejected(line, f"invalid_{field}", f"{named}: {first['msg']}{given}")


@dataclass(frozen=True, slots=True)
class _Zones:
    default: ZoneInfo
    courts: Mapping[str, ZoneInfo]

    def of(self, court: str) -> ZoneInfo:
        return self.courts.get(court.strip(), self.default)


def read_rows(
    lines: Iterable[str], *, zone: ZoneInfo, court_zones: Mapping[str, ZoneInfo] | None = None
) -> CsvRows:
    """Every data row of the file, each an entry or a rejection; blank rows are skipped.

    Plain dates are read in the court's zone from ``court_zones``, else in ``zone``.

    Raises:
        InvalidInput: the header lacks a required column, names an unknown one or one twice.
    """
    reader = csv.reader(iter(lines))
    header = [name.strip() for name in next(reader, [])]
    fields = _canonical_header(header)
    zones = _Zones(zone, court_zones or {})
    rows: list[Row] = []
    for cells in reader:
        if not any(cell.strip() for cell in cells):
            continue  # Excel leaves rows of empty cells below the data
        line = reader.line_num
        if len(cells) > len(header) and any(cell.strip() for cell in cells[len(header) :]):
            rejected = Rejected(
                line, "extra_cells", f"more cells than the {len(header)} columns of the header"
            )
            rows.append(Row(line, tuple(cells), rejected))
            continue
        rows.append(Row(line, tuple(cells), _entry(line, header, fields, cells, zones)))
    return CsvRows(tuple(header), rows)


def write_rejects(path: Path, header: tuple[str, ...], rejected: Iterable[tuple[Row, Rejected]]) -> int:
    """Write every rejected row with its cells as read and the reason; return how many.

    UTF-8 with a BOM, so Excel shows the Chinese text; an earlier reason column is replaced, so the
    file of a second attempt holds only the new reasons.
    """
    keep = [i for i, name in enumerate(header) if name != REASON_COLUMN]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([header[i] for i in keep] + [REASON_COLUMN])
    count = 0
    for row, why in rejected:
        cells = [row.cells[i] if i < len(row.cells) else "" for i in keep]
        # Cells beyond the header's columns follow the reason, so the reason stays in its column.
        writer.writerow([*cells, f"line {why.line}: {why.message}", *row.cells[len(header) :]])
        count += 1
    path.write_text(out.getvalue(), encoding="utf-8-sig", newline="")
    return count
