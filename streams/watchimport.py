"""Bulk import of watch entries from CSV: parse rows into :class:`NewEntry` or a reason per row.

The header names the columns by :class:`~streams.watchstore.NewEntry` field (``plate``, ``case_number``,
``court``, ``action``, ``priority``, ``plate_colour``, ``vehicle``, ``valid_from``, ``valid_until``,
``note``); empty cells take the default. Unknown columns are refused before any row is read, so a typo
in a header never silently drops a column.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from pydantic import ValidationError

from streams.errors import InvalidInput
from streams.watchstore import NewEntry

REQUIRED_COLUMNS = frozenset({"plate", "case_number", "court"})
KNOWN_COLUMNS = frozenset(NewEntry.model_fields)


@dataclass(frozen=True, slots=True)
class Rejected:
    line: int
    reason: str
    message: str


def read_rows(lines: Iterable[str]) -> Iterator[tuple[int, NewEntry | Rejected]]:
    """Yield (line number, entry or rejection) for each data row.

    Raises:
        InvalidInput: the header lacks a required column or names an unknown one.
    """
    reader = csv.DictReader(iter(lines))
    header = [name.strip() for name in reader.fieldnames or []]
    missing = REQUIRED_COLUMNS - set(header)
    unknown = set(header) - KNOWN_COLUMNS
    if missing or unknown:
        parts = []
        if missing:
            parts.append(f"missing required column(s) {sorted(missing)}")
        if unknown:
            parts.append(f"unknown column(s) {sorted(unknown)}; known: {sorted(KNOWN_COLUMNS)}")
        raise InvalidInput("bad_header", "; ".join(parts), field="header")
    reader.fieldnames = header
    for row in reader:
        line = reader.line_num
        if None in row:
            yield (
                line,
                Rejected(line, "extra_cells", f"more cells than the {len(header)} columns of the header"),
            )
            continue
        values = {key: value.strip() for key, value in row.items() if value is not None and value.strip()}
        try:
            yield line, NewEntry.model_validate(values)
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(part) for part in first["loc"])
            yield line, Rejected(line, f"invalid_{field}", f"{field}: {first['msg']}")
