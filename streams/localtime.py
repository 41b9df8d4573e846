"""Times as people read and type them: the court's wall-clock time with its UTC offset.

Every list, show and export a person reads gives an instant as local time with an explicit offset
(``2026-12-04 21:00+08:00``), in the court's zone (the roster's ``courts.timezone``; Asia/Shanghai when
the court is not on the roster), as the SMS already do: never a bare UTC ISO string, never the zone of
the machine the command runs on. :func:`parse_when` reads the forms an officer types for an instant:
ISO 8601, ``21:00`` (today), ``明天 21:00``, ``tomorrow 08:30``.

Pure functions; "now" is always passed in, so nothing here depends on the time of day.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime, time, timedelta, tzinfo
from typing import Final
from zoneinfo import ZoneInfo

DEFAULT_ZONE: Final = ZoneInfo("Asia/Shanghai")

# Words for a day relative to today, each as its offset in days (lower case; Chinese has no case).
DAY_WORDS: Final[dict[str, int]] = {
    "昨天": -1,
    "今天": 0,
    "明天": 1,
    "后天": 2,
    "yesterday": -1,
    "today": 0,
    "tomorrow": 1,
}
_RELATIVE = re.compile(r"(?:(?P<day>[^\d\s]+)\s*)?(?P<hour>\d{1,2}):(?P<minute>\d{2})")
EXPECTED: Final = "e.g. 21:00, 明天 21:00, 今天 08:30, tomorrow 21:00 or 2026-11-23 21:00"


def _aware(at: datetime) -> datetime:
    if at.utcoffset() is None:
        raise ValueError(f"a time shown to people must be timezone-aware, got {at.isoformat()}")
    return at


def offset_text(at: datetime) -> str:
    """The UTC offset of an aware time as ``+08:00`` (``-03:30``, ``+00:00``)."""
    offset = _aware(at).strftime("%z")  # +0800, or +053045 for a historical LMT offset
    return f"{offset[:3]}:{offset[3:5]}"


def shown(at: datetime, zone: tzinfo = DEFAULT_ZONE) -> str:
    """``at`` as ``2026-12-04 21:00+08:00``: wall-clock time in ``zone``, to the minute, and its offset.

    Raises:
        ValueError: ``at`` is naive.
    """
    local = _aware(at).astimezone(zone)
    return f"{local:%Y-%m-%d %H:%M}{offset_text(local)}"


def shown_day(at: datetime, zone: tzinfo = DEFAULT_ZONE) -> str:
    """``at`` as a local date with the zone's offset: ``2026-12-31 (+08:00)`` (a seal's last day, say).

    Raises:
        ValueError: ``at`` is naive.
    """
    local = _aware(at).astimezone(zone)
    return f"{local:%Y-%m-%d} ({offset_text(local)})"


def local_iso(at: datetime, zone: tzinfo = DEFAULT_ZONE) -> str:
    """ISO 8601 in ``zone`` to the second, for JSON a person may read: ``2026-12-04T21:00:00+08:00``.

    Raises:
        ValueError: ``at`` is naive.
    """
    return _aware(at).astimezone(zone).isoformat(timespec="seconds")


def parse_when(text: str, *, now: datetime, zone: tzinfo = DEFAULT_ZONE) -> datetime:
    """The instant an officer means by ``text``, read in ``zone`` where it names no offset.

    Accepted: ISO 8601 (``2026-11-23 21:00``, ``2026-11-23T21:00+08:00``); ``HH:MM`` (today in
    ``zone``); a day word and ``HH:MM`` (``明天 21:00``, ``今天08:30``, ``tomorrow 21:00``; also 昨天 后天
    yesterday). Full-width digits, colon and spaces (``２１：００``) are read as ASCII.

    Raises:
        ValueError: anything else, with the text and the forms accepted; ``now`` naive.
    """
    now = _aware(now)
    cleaned = " ".join(unicodedata.normalize("NFKC", text).split())
    if not cleaned:
        raise ValueError(f"no time given: expected {EXPECTED}")
    relative = _RELATIVE.fullmatch(cleaned)
    if relative is None:
        try:
            parsed = datetime.fromisoformat(cleaned)
        except ValueError:
            raise ValueError(f"{text!r} is not a time: expected {EXPECTED}") from None
        return parsed if parsed.utcoffset() is not None else parsed.replace(tzinfo=zone)
    word = (relative["day"] or "今天").lower()
    if word not in DAY_WORDS:
        raise ValueError(f"{text!r}: unknown day {relative['day']!r}: expected {EXPECTED}")
    hour, minute = int(relative["hour"]), int(relative["minute"])
    if hour > 23 or minute > 59:
        raise ValueError(f"{text!r}: no such time of day: expected {EXPECTED}")
    day = now.astimezone(zone).date() + timedelta(days=DAY_WORDS[word])
    return datetime.combine(day, time(hour, minute), tzinfo=zone)
