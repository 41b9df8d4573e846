"""The fault suite's figures as the table in docs/operations.md: ``python -m tests.faults.report [FILE]``.

Reads the JSON lines the scenarios append (``var/faults/figures.jsonl`` by default) and prints one row per
scenario, the latest run of each.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tests.faults.harness import FIGURES

COLUMNS = (
    ("scenario", "scenario"),
    ("reads", "reads"),
    ("accepted", "2xx"),
    ("unaccepted", "never 2xx"),
    ("refused_503", "503 answers"),
    ("on_topic", "on topic"),
    ("extra_copies", "extra copies"),
    ("lost_reads", "reads lost"),
    ("hits", "hits"),
    ("missing_hits", "hits missing"),
    ("pages", "pages"),
    ("sms", "SMS"),
    ("sms_duplicates", "SMS twice"),
    ("unsent", "SMS lost"),
    ("failed_permanent", "SMS refused for good"),
    ("unpaged", "pages unsent"),
    ("dead_letters", "dead letters"),
    ("recovery_s", "recovery (s)"),
    ("max_sms_wait_s", "longest SMS wait (s)"),
    ("restarts", "restarts by the supervisor"),
)


def table(path: Path) -> str:
    latest: dict[str, dict[str, object]] = {}
    for line in path.read_text().splitlines():
        if line.strip():
            row = json.loads(line)
            latest[str(row["scenario"])] = row
    lines = [
        "| " + " | ".join(title for _, title in COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
    ]
    for row in latest.values():
        lines.append("| " + " | ".join(str(row.get(key, "")) for key, _ in COLUMNS) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(table(Path(sys.argv[1]) if len(sys.argv) > 1 else FIGURES))
