"""The project's root exception and the core's errors.

Every error seizewatch raises on purpose derives from :class:`SeizewatchError`; each package adds its own
in its ``errors.py``. The ``retriable`` flag tells a caller whether trying the same thing again may
succeed, so no caller keeps a list of exception types::

    SeizewatchError
    ├── ConfigurationError            a setting is missing or invalid (stops start-up)
    ├── InvalidInput                  input that can never be processed (names field and reason)
    │   ├── PlateError                not a Chinese plate (streams.plates)
    │   ├── EventError                a payload that cannot become a canonical event
    │   └── StoreRefused              PostgreSQL refused a statement for its data (22, 23: a constraint)
    ├── StoreUnusable                 PostgreSQL refuses us for its setup (grant, schema, read-only)
    ├── BrokerRefused                 Kafka refused a request retrying cannot fix (size, fenced)
    ├── WatchlistLost                 the watchlist topic's partitions vanished under a follower
    └── ServiceUnavailable (retriable) Kafka or PostgreSQL does not answer

Errors of the drivers become these in one place, :func:`translate`, at the boundary: no loop keeps a
list of asyncpg's or aiokafka's exception types of its own.
"""

from __future__ import annotations


class SeizewatchError(Exception):
    """Root of every error raised on purpose by seizewatch."""

    retriable: bool = False


class ConfigurationError(SeizewatchError):
    """A setting is missing or invalid; start-up stops and names it."""


class InvalidInput(SeizewatchError):
    """Input that can never be processed, whatever is retried.

    ``reason`` is a short stable code (used as a metric label and in dead letters); ``field`` names the
    offending field when there is one.
    """

    def __init__(self, reason: str, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.field = field

    def __str__(self) -> str:
        text = super().__str__()
        return f"{self.field}: {text}" if self.field else text


class ServiceUnavailable(SeizewatchError):
    """Kafka or PostgreSQL does not answer; trying later may work."""

    retriable = True


class StoreRefused(InvalidInput):
    """The system of record refused a statement for what it holds (a constraint, a value it cannot
    store): the same statement fails again, so the record is dead-lettered, not retried."""

    def __init__(self, message: str, *, sqlstate: str | None) -> None:
        super().__init__("store_refused", message)
        self.sqlstate = sqlstate


class StoreUnusable(SeizewatchError):
    """PostgreSQL refuses us for a reason in its setup, not in the record: a revoked grant, a schema out
    of step with the code, a read-only server (a standby after a failover), authentication. No record is
    at fault, so none is dead-lettered: the loop fails and the process stops (exit 70) without
    committing, for its supervisor to restart it once the deployment is fixed."""

    def __init__(self, message: str, *, sqlstate: str | None) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate


class BrokerRefused(SeizewatchError):
    """Kafka refused a request for a reason retrying does not fix.

    ``record_fault``: the record itself is refused (over the size limit, a bad timestamp, corrupt): that
    record can be dead-lettered. Otherwise the client is (a producer out of sequence, fenced, an illegal
    state): no record is at fault, and only a new client (a restart of the process) cures it.
    """

    def __init__(self, message: str, *, record_fault: bool = False) -> None:
        super().__init__(message)
        self.record_fault = record_fault


class WatchlistLost(SeizewatchError):
    """Partitions of ``watchlist.changes`` vanished under a worker's follower (the topic deleted, or
    recreated): its index no longer follows the watchlist, and nothing it could retry would tell what
    changed meanwhile. The worker stops for its supervisor; a restart reads the topic again."""


# SQLSTATE classes whose failures pass: connection (08), a transaction rolled back by a serialization
# failure or deadlock (40), resources (53), operator intervention such as a shutdown (57), the system
# (58); and a lock that could not be had (55P03).
_PG_TRANSIENT_CLASSES = frozenset({"08", "40", "53", "57", "58"})
_PG_TRANSIENT_STATES = frozenset({"55P03"})
# Classes that are the record's fault: its data (22: a NUL in text, a value out of range) and the
# constraints it breaks (23). Any other refusal is the deployment's (StoreUnusable).
_PG_RECORD_CLASSES = frozenset({"22", "23"})


def translate(exc: BaseException) -> SeizewatchError:
    """The project's error for a failure at a boundary (asyncpg, aiokafka, the network), classified once.

    Every loop that retries asks this, never a list of exception types of its own: a
    :class:`ServiceUnavailable` (``retriable``) is tried again with backoff; anything else is not, and
    the record it was about goes to a dead-letter topic with the reason.

    Raises:
        BaseException: ``exc`` itself when it is none of the boundary's failures (a bug: let it surface;
            cancellation included).
    """
    # Imported here: the core's error module must stay importable without the drivers.
    import asyncpg
    from aiokafka.errors import KafkaError, KafkaTimeoutError

    if isinstance(exc, SeizewatchError):
        return exc
    translated: SeizewatchError
    if isinstance(exc, asyncpg.PostgresError):
        state = getattr(exc, "sqlstate", None) or ""
        if state[:2] in _PG_TRANSIENT_CLASSES or state in _PG_TRANSIENT_STATES:
            translated = ServiceUnavailable(f"PostgreSQL: {exc} ({state})")
        elif state[:2] in _PG_RECORD_CLASSES:
            translated = StoreRefused(f"PostgreSQL refused it: {exc} ({state})", sqlstate=state)
        else:
            translated = StoreUnusable(f"PostgreSQL refuses us: {exc} ({state})", sqlstate=state or None)
    elif isinstance(exc, asyncpg.InterfaceError | OSError | TimeoutError):
        # asyncpg's InterfaceError: the connection went away under a query (ConnectionDoesNotExistError).
        translated = ServiceUnavailable(f"{type(exc).__name__}: {exc}")
    elif isinstance(exc, KafkaError):
        if exc.retriable or isinstance(exc, KafkaTimeoutError):
            translated = ServiceUnavailable(f"Kafka: {exc!r}")
        else:
            translated = BrokerRefused(f"Kafka refused it: {exc!r}", record_fault=_record_fault(exc))
    else:
        raise exc
    translated.__cause__ = exc
    return translated


def _record_fault(exc: BaseException) -> bool:
    from aiokafka.errors import (
        CorruptRecordException,
        InvalidTimestampError,
        MessageSizeTooLargeError,
        RecordListTooLargeError,
        RecordTooLargeError,
    )

    return isinstance(
        exc,
        MessageSizeTooLargeError
        | RecordListTooLargeError
        | RecordTooLargeError
        | InvalidTimestampError
        | CorruptRecordException,
    )


def is_record_fault(error: SeizewatchError) -> bool:
    """Whether the record is what failed, so that it goes to a dead-letter topic and the stream goes on
    (an invalid input, a value PostgreSQL cannot store, a record Kafka refuses for what it is); False
    for a failure of the service or of the client, which no dead letter cures."""
    return isinstance(error, InvalidInput) or (isinstance(error, BrokerRefused) and error.record_fault)


def is_retriable(exc: BaseException) -> bool:
    """Whether trying the same operation again may succeed (see :func:`translate`); False for a bug."""
    try:
        return translate(exc).retriable
    except Exception:  # noqa: BLE001  # translate re-raised it: a bug, never retriable
        return False
