"""Dead letters: the raw bytes of what could not be processed, with the reason in record headers.

The value is the payload exactly as received, so nothing is lost to a decoding step; headers follow Kafka
Connect's ``__connect.errors.*`` idea under our own names.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

REASON = "seizewatch.reason"
FIELD = "seizewatch.field"
MESSAGE = "seizewatch.message"
STAGE = "seizewatch.stage"
SOURCE = "seizewatch.source"
ORIGIN = "seizewatch.origin"  # topic/partition/offset of the record that failed, when it came from Kafka
FAILED_AT = "seizewatch.failed_at"


@dataclass(frozen=True, slots=True)
class DeadLetter:
    raw: bytes
    reason: str
    message: str
    stage: str
    source: str | None = None
    field: str | None = None
    origin: str | None = None

    def headers(self) -> list[tuple[str, bytes]]:
        headers = [
            (REASON, self.reason.encode()),
            (MESSAGE, self.message[:2000].encode()),
            (STAGE, self.stage.encode()),
            (FAILED_AT, datetime.now(UTC).isoformat().encode()),
        ]
        for name, value in ((SOURCE, self.source), (FIELD, self.field), (ORIGIN, self.origin)):
            if value is not None:
                headers.append((name, value.encode()))
        return headers


def read_headers(headers: list[tuple[str, bytes]] | tuple[tuple[str, bytes], ...]) -> dict[str, str]:
    """The dead-letter headers of a record as text (for tools and tests)."""
    return {name: value.decode() for name, value in headers if name.startswith("seizewatch.")}
