"""The list of vehicles the traffic police should stop (一键扣车), read from PostgreSQL, as CSV or JSON.

Courts send the traffic police this list periodically (the online list Changshan sends, say); the
compacted topic ``traffic.seizure-requests`` carries the same requests to integrations that consume
Kafka. Formatting is pure: requests in, bytes out.
"""

from __future__ import annotations

import csv
import enum
import io
from collections.abc import Iterable, Sequence
from datetime import datetime

import asyncpg
import orjson

from connectors.records import SHANGHAI
from streams.db import Connection
from streams.traffic import SeizureRequestV1
from streams.vehicles import PlateColour, Priority

# The CSV header: the contract's own field names, in its order, so a file row and a JSON object agree.
COLUMNS: tuple[str, ...] = tuple(SeizureRequestV1.model_fields)
# Excel reads a UTF-8 file without a BOM as the local ANSI code page (GBK on Chinese Windows).
UTF8_BOM = b"\xef\xbb\xbf"
# A spreadsheet cell starting with one of these is taken for a formula (CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class ExportFormat(enum.StrEnum):
    CSV = "csv"
    JSON = "json"


# The court's on-duty contact as the pager last computed it (court_contacts), as on the topic.
_QUERY = """
SELECT e.entry_id, e.plate, e.plate_colour, e.vehicle, e.case_number, e.court, e.priority, e.valid_until,
       e.updated_at, c.contact
FROM watch_entries e LEFT JOIN court_contacts c ON c.court = e.court
WHERE e.status = 'active' AND e.action = 'seize'
  AND e.valid_from <= $1 AND (e.valid_until IS NULL OR e.valid_until > $1)
  AND ($2::text IS NULL OR e.court = $2)
"""


def request_of(row: asyncpg.Record) -> SeizureRequestV1:
    """A watch entry row as the request the police consume; times in China Standard Time for people."""
    return SeizureRequestV1(
        request_id=row["entry_id"],
        plate=row["plate"],
        plate_colour=PlateColour(row["plate_colour"]),
        vehicle=row["vehicle"],
        case_number=row["case_number"],
        court=row["court"],
        priority=Priority(row["priority"]),
        # As on traffic.seizure-requests (streams/watchstore.py): when this version of the entry was made.
        requested_at=row["updated_at"].astimezone(SHANGHAI),
        valid_until=row["valid_until"].astimezone(SHANGHAI) if row["valid_until"] else None,
        court_contact=row["contact"],  # None: the court has nobody on duty on the roster
    )


def ordered(requests: Iterable[SeizureRequestV1]) -> list[SeizureRequestV1]:
    """By court, then plate (code point order, the same on every machine), then request id."""
    return sorted(requests, key=lambda r: (r.court, r.plate, str(r.request_id)))


async def seizure_requests(
    conn: Connection, *, at: datetime, court: str | None = None
) -> list[SeizureRequestV1]:
    """Every active seize entry in force at ``at`` (of one court, if given), as requests, ordered."""
    rows = await conn.fetch(_QUERY, at, court)
    return ordered(request_of(row) for row in rows)


def _cell(value: object) -> str:
    if value is None:
        return ""
    text = str(value)
    # Data from clerks reaches a spreadsheet: a leading apostrophe keeps a formula-like text inert.
    return "'" + text if text.startswith(_FORMULA_START) else text


def to_csv(requests: Sequence[SeizureRequestV1]) -> bytes:
    """UTF-8 with a BOM, a header of the contract's field names, one row per request; empty for null."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for request in requests:
        values = request.model_dump(mode="json")
        writer.writerow([_cell(values[column]) for column in COLUMNS])
    return UTF8_BOM + buffer.getvalue().encode("utf-8")


def to_json(requests: Sequence[SeizureRequestV1]) -> bytes:
    """A JSON array of requests, each as the contract's wire form (UTF-8, Chinese kept as is)."""
    return orjson.dumps([request.model_dump(mode="json") for request in requests], option=orjson.OPT_INDENT_2)


def render(requests: Sequence[SeizureRequestV1], fmt: ExportFormat) -> bytes:
    return to_csv(requests) if fmt is ExportFormat.CSV else to_json(requests)
