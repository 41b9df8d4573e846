"""Log lines while Kafka is down: bounded by intervals, not by requests or reconnect attempts."""

from __future__ import annotations

import logging

import pytest

from connectors.logs import RefusalLog, RepeatFilter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_refusals_are_logged_when_they_begin_once_per_interval_and_when_they_end(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    logger = logging.getLogger("test.refusals")
    refusals = RefusalLog(logger, interval_s=10, clock=clock)
    with caplog.at_level(logging.WARNING, logger="test.refusals"):
        for n in range(3000):  # 100 a second for 30 s
            clock.now = 1000 + n / 100
            refusals.refused("breaker_open", "Kafka was unreachable moments ago")
        clock.now = 1030
        refusals.acknowledged()
        refusals.acknowledged()  # nothing refused since: nothing to say
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 + 2 + 1, lines
    assert lines[0].startswith("answering 503 (breaker_open): Kafka was unreachable moments ago")
    assert lines[1].startswith("answered 503 to 1000 requests in the last 10 s (breaker_open 1000)")
    assert lines[-1] == "Kafka acknowledges again: 3000 requests were refused with 503 over 30.0 s"


def test_library_repeats_are_folded_and_counted_own_lines_pass() -> None:
    clock = Clock()
    folding = RepeatFilter(("aiokafka",), interval_s=10, clock=clock)

    def record(name: str, msg: str, *args: object) -> logging.LogRecord:
        return logging.LogRecord(name, logging.ERROR, __file__, 1, msg, args, None)

    passed = []
    for n in range(2000):  # a reconnect attempt every 10 ms for 20 s
        clock.now = 1000 + n / 100
        entry = record("aiokafka", "Unable connect to node with id %s: %s", 1, f"attempt {n}")
        if folding.filter(entry):
            passed.append(entry.getMessage())
        assert folding.filter(record("connectors.producer", "answering 503"))
    assert len(passed) == 2, passed
    assert passed[1].endswith("[999 more like this in the last 10 s]"), passed
    other = record("aiokafka.conn", "another complaint")
    assert folding.filter(other)
