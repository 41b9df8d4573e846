"""One supervision policy for every process: its background loops run under a :class:`Supervisor`.

A loop of a seizewatch process is meant to run until the process stops. When one ends anyway — an error
it could not handle, or a return — the process must not serve ``/healthz`` "ok" while nothing is
consumed: the supervisor records the failure (``seizewatch_process_loop_failures_total``, healthy gauge
0), ``/healthz`` answers 503 naming the loop, and the process stops with a non-zero exit code so that its
own supervisor (systemd, compose's ``restart: unless-stopped``, the tests) restarts it. Restarting is safe
by design: every stage is idempotent on replay.

Retrying inside a loop is the loop's business, by :func:`streams.errors.translate`: a retriable error is
tried again with backoff, a record that fails for any other reason is dead-lettered with its reason.
Only what escapes that reaches the supervisor.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from streams import metrics

log = logging.getLogger(__name__)

#: Exit code of a process whose supervisor saw a loop fail (EX_SOFTWARE of sysexits.h).
EXIT_LOOP_FAILED = 70


class Supervisor:
    """The background loops of one process; the first that ends fails the process.

    Args:
        process: the process's name (``worker``, ``ingest``, ``pager``), a metric label.
        on_failure: called once, with the failure's description, when the first loop ends on its own
            (e.g. tells the HTTP server to stop).
    """

    def __init__(self, process: str, on_failure: Callable[[str], None] | None = None) -> None:
        self.process = process
        self._on_failure = on_failure
        self._tasks: list[asyncio.Task[Any]] = []
        self._stopping = False
        self.failure: str | None = None
        self.failed = asyncio.Event()
        metrics.PROCESS_HEALTHY.labels(process).set(1)

    @property
    def healthy(self) -> bool:
        return self.failure is None

    def spawn(self, name: str, loop: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Run ``loop`` as a supervised task named ``name``."""
        task = asyncio.create_task(loop, name=name)
        task.add_done_callback(self._done)
        self._tasks.append(task)
        metrics.LOOP_FAILURES.labels(self.process, name)  # the zero series, for rate() from the start
        return task

    def fail(self, name: str, why: str) -> None:
        """Fail the process from outside a task (a loop that reports a fatal state without ending)."""
        if self.failure is not None or self._stopping:
            return
        self.failure = f"{name}: {why}"
        metrics.LOOP_FAILURES.labels(self.process, name).inc()
        metrics.PROCESS_HEALTHY.labels(self.process).set(0)
        log.critical("%s: loop %s ended: %s; the process stops for its supervisor to restart it",
                     self.process, name, why)  # fmt: skip
        self.failed.set()
        if self._on_failure is not None:
            self._on_failure(self.failure)

    def _done(self, task: asyncio.Task[Any]) -> None:
        if task.cancelled() or self._stopping:
            return
        error = task.exception()
        why = "returned, but it should run until the process stops" if error is None else repr(error)
        if error is not None:
            log.error("%s: loop %s failed", self.process, task.get_name(), exc_info=error)
        self.fail(task.get_name(), why)

    def health(self) -> tuple[int, dict[str, str]]:
        """``/healthz``'s status and body: 200 ``ok``, or 503 naming the loop that ended."""
        if self.failure is None:
            return 200, {"status": "ok"}
        return 503, {"status": "failed", "failure": self.failure}

    async def stop(self) -> None:
        """Cancel every loop and wait for them (a clean shutdown is no failure)."""
        self._stopping = True
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
