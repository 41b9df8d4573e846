"""Errors of the drivers classified once: retriable or not, by :func:`streams.errors.translate`."""

from __future__ import annotations

import asyncpg
import pytest
from aiokafka.errors import (
    KafkaConnectionError,
    KafkaTimeoutError,
    MessageSizeTooLargeError,
    NotEnoughReplicasError,
    OutOfOrderSequenceNumber,
)

from streams.errors import (
    BrokerRefused,
    InvalidInput,
    ServiceUnavailable,
    StoreRefused,
    StoreUnusable,
    is_record_fault,
    is_retriable,
    translate,
)


@pytest.mark.parametrize(
    "error",
    [
        asyncpg.exceptions.CannotConnectNowError("the database system is starting up"),
        asyncpg.exceptions.AdminShutdownError("terminating connection due to administrator command"),
        asyncpg.exceptions.SerializationError("could not serialize access"),
        asyncpg.exceptions.DeadlockDetectedError("deadlock detected"),
        asyncpg.exceptions.TooManyConnectionsError("too many clients"),
        asyncpg.exceptions.LockNotAvailableError("could not obtain lock"),
        asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
        ConnectionRefusedError(111, "Connection refused"),
        TimeoutError(),
        KafkaConnectionError("no broker"),
        KafkaTimeoutError(),
        NotEnoughReplicasError(),
    ],
    ids=type,
)
def test_failures_that_pass_are_retriable(error: Exception) -> None:
    translated = translate(error)
    assert isinstance(translated, ServiceUnavailable)
    assert translated.retriable
    assert translated.__cause__ is error
    assert is_retriable(error)


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (asyncpg.exceptions.UniqueViolationError("duplicate key"), StoreRefused),
        (asyncpg.exceptions.CheckViolationError("violates check constraint"), StoreRefused),
        (asyncpg.exceptions.CharacterNotInRepertoireError("invalid byte sequence: 0x00"), StoreRefused),
        (asyncpg.exceptions.UndefinedColumnError("column does not exist"), StoreUnusable),
        (asyncpg.exceptions.InsufficientPrivilegeError("permission denied for table hits"), StoreUnusable),
        (
            asyncpg.exceptions.ReadOnlySQLTransactionError(
                "cannot execute INSERT in a read-only transaction"
            ),
            StoreUnusable,
        ),
        (asyncpg.exceptions.InvalidPasswordError("password authentication failed"), StoreUnusable),
        (MessageSizeTooLargeError(), BrokerRefused),
        (OutOfOrderSequenceNumber(), BrokerRefused),
    ],
    ids=lambda v: v.__name__ if isinstance(v, type) else type(v).__name__,
)
def test_failures_that_repeat_are_not(error: Exception, kind: type[Exception]) -> None:
    translated = translate(error)
    assert isinstance(translated, kind)
    assert not translated.retriable
    assert not is_retriable(error)


def test_a_refused_statement_keeps_its_sqlstate_and_is_invalid_input() -> None:
    translated = translate(asyncpg.exceptions.UniqueViolationError("duplicate key"))
    assert isinstance(translated, InvalidInput)
    assert isinstance(translated, StoreRefused)
    assert translated.reason == "store_refused"
    assert translated.sqlstate == "23505"


def test_a_bug_is_not_translated_and_never_retriable() -> None:
    bug = KeyError("page_id")
    with pytest.raises(KeyError):
        translate(bug)
    assert not is_retriable(bug)


def test_our_own_errors_pass_through() -> None:
    own = ServiceUnavailable("Kafka did not acknowledge")
    assert translate(own) is own


@pytest.mark.parametrize(
    ("error", "at_fault"),
    [
        # The record's own: dead-letter it and go on.
        (asyncpg.exceptions.UniqueViolationError("duplicate key"), True),
        (asyncpg.exceptions.UntranslatableCharacterError("unsupported Unicode escape sequence"), True),
        (MessageSizeTooLargeError(), True),
        # The deployment's or the client's: no dead letter cures it (a watched read would be lost).
        (asyncpg.exceptions.InsufficientPrivilegeError("permission denied"), False),
        (asyncpg.exceptions.ReadOnlySQLTransactionError("read-only transaction"), False),
        (asyncpg.exceptions.UndefinedTableError("relation does not exist"), False),
        (OutOfOrderSequenceNumber(), False),
        (ConnectionRefusedError(111, "Connection refused"), False),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, Exception) else str(v),
)
def test_only_a_record_at_fault_is_dead_lettered(error: Exception, at_fault: bool) -> None:
    assert is_record_fault(translate(error)) is at_fault


@pytest.mark.parametrize(
    ("error", "dead_lettered"),
    [
        (asyncpg.exceptions.CharacterNotInRepertoireError("invalid byte sequence: 0x00"), True),
        (MessageSizeTooLargeError(), True),
        (KeyError("sighting"), True),  # a bug on one read: that read, not every vehicle's matching
        (OutOfOrderSequenceNumber(), False),  # the producer after a broker restart: the worker stops
        (asyncpg.exceptions.InsufficientPrivilegeError("permission denied for table hits"), False),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, Exception) else str(v),
)
def test_the_match_stage_dead_letters_a_read_only_when_the_read_is_at_fault(
    error: Exception, dead_lettered: bool
) -> None:
    from streams.matcher import _record_at_fault

    assert _record_at_fault(error) is dead_lettered
