"""Logging that stays readable while Kafka is down: refusals summed per interval, library repeats folded.

While the broker is away the ingest refuses every request and aiokafka fails every reconnect: one line
each made 15,000 lines a second (2.35 GB in 35 minutes, issue 21). What on-call needs is when it began,
how many were refused and why, and when it ended; that is what these log.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable

#: How often a summary line may be written while refusals or repeats go on.
INTERVAL_S = 10.0


class RefusalLog:
    """Requests refused for want of Kafka: the first logged at once, the rest counted and summed up.

    Lines: one when refusals begin (with the cause), at most one per ``interval_s`` while they go on
    (counts by cause, the last detail), one when Kafka acknowledges again (how long, how many). Lines are
    written when something happens; there is no timer.
    """

    def __init__(
        self,
        logger: logging.Logger,
        interval_s: float = INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._log = logger
        self._interval_s = interval_s
        self._clock = clock
        self._since: float | None = None  # when refusals began
        self._total = 0
        self._pending: Counter[str] = Counter()  # since the last line
        self._last_line = 0.0
        self._detail = ""

    def refused(self, cause: str, detail: str) -> None:
        """One request refused; ``cause`` is a short stable word, ``detail`` the error's text."""
        now = self._clock()
        self._total += 1
        self._detail = detail
        if self._since is None:
            self._since = self._last_line = now
            self._log.warning(
                "answering 503 (%s): %s; further refusals are counted and logged every %.0f s",
                cause, detail, self._interval_s,
            )  # fmt: skip
            return
        self._pending[cause] += 1
        if now - self._last_line >= self._interval_s:
            self._log.warning(
                "answered 503 to %d requests in the last %.0f s (%s), %d since Kafka failed %.0f s ago;"
                " last: %s",
                sum(self._pending.values()), now - self._last_line, _counts(self._pending), self._total,
                now - self._since, detail,
            )  # fmt: skip
            self._pending.clear()
            self._last_line = now

    def acknowledged(self) -> None:
        """Kafka acknowledged a request: ends a run of refusals (one line), else nothing."""
        if self._since is None:
            return
        self._log.warning(
            "Kafka acknowledges again: %d requests were refused with 503 over %.1f s",
            self._total, self._clock() - self._since,
        )  # fmt: skip
        self._since = None
        self._total = 0
        self._pending.clear()


def _counts(counter: Counter[str]) -> str:
    return ", ".join(f"{cause} {n}" for cause, n in counter.most_common())


class RepeatFilter(logging.Filter):
    """Folds repeats of a library's log lines: a line whose template was written less than
    ``interval_s`` ago is dropped and counted; the next one written says how many were.

    Only records of loggers under ``prefixes`` (e.g. ``aiokafka``) are folded; seizewatch's own lines
    say what they mean once and pass untouched.
    """

    def __init__(
        self,
        prefixes: tuple[str, ...],
        interval_s: float = INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self._prefixes = prefixes
        self._interval_s = interval_s
        self._clock = clock
        self._seen: dict[tuple[str, int, str], tuple[float, int]] = {}  # key -> (last written, dropped)

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith(self._prefixes):
            return True
        key = (record.name, record.levelno, str(record.msg))
        now = self._clock()
        seen = self._seen.get(key)
        if seen is not None:
            last, dropped = seen
            if now - last < self._interval_s:
                self._seen[key] = (last, dropped + 1)
                return False
            if dropped:
                record.msg = f"{record.msg} [{dropped} more like this in the last {now - last:.0f} s]"
        elif len(self._seen) > 1000:  # templates are few; this only bounds a pathological library
            self._seen.clear()
        self._seen[key] = (now, 0)
        return True
