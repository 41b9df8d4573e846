"""Starting `seizewatch ingest` processes of one's own in the resilience tests (to kill or to fail them)."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import MASTER_KEY, Isolated, Process, spawn


def spawn_ingest(isolated: Isolated, log: Path, **env: str) -> Process:
    """An ingest process as the ``ingest`` fixture starts it (not waited for), with extra variables."""
    variables = {
        **isolated.env,
        "SEIZEWATCH_INGEST_MASTER_KEY": MASTER_KEY,
        "SEIZEWATCH_INGEST_PRODUCE_TIMEOUT_S": "3",
        **env,
    }
    return spawn("ingest", variables, log, "SEIZEWATCH_INGEST_PORT")
