"""The project's root exception and the core's errors.

Every error seizewatch raises on purpose derives from :class:`SeizewatchError`; each package adds its own
in its ``errors.py``. The ``retriable`` flag tells a caller whether trying the same thing again may
succeed, so no caller keeps a list of exception types::

    SeizewatchError
    ├── ConfigurationError            a setting is missing or invalid (stops start-up)
    ├── InvalidInput                  input that can never be processed (names field and reason)
    │   ├── PlateError                not a Chinese plate (streams.plates)
    │   └── EventError                a payload that cannot become a canonical event
    └── ServiceUnavailable (retriable) Kafka or PostgreSQL does not answer
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
