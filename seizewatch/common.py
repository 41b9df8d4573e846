"""What every command module shares: the console, settings that stop with a clear message, guarded jobs."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import click
from rich.console import Console

from seizewatch.settings import Settings
from streams.errors import SeizewatchError

T = TypeVar("T")
console = Console()


def settings_from_env() -> Settings:
    """The process's settings; an invalid value ends the command naming the variable."""
    try:
        return Settings.from_env()
    except SeizewatchError as exc:
        raise click.ClickException(str(exc)) from exc


def guarded(job: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a database job; an error of ours becomes a clear message and exit code 1."""
    try:
        return asyncio.run(job())
    except SeizewatchError as exc:
        raise click.ClickException(str(exc)) from exc
