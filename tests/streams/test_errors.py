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
        (asyncpg.exceptions.UndefinedColumnError("column does not exist"), StoreRefused),
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
