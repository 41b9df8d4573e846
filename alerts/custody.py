"""Custody of a seized vehicle recorded after the seizure: where it is kept, amended as a task event.

An SMS seizure (``3 <code>``) may not say where the vehicle went; the place is added, or corrected, later
from an SMS (``存 <code> <place>``), the API or the CLI. Only a seized task has a custody to amend.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from alerts.tasks import Custody, TaskError, record_event
from streams.db import Connection

# As a traffic-police result allows (streams/traffic.py SeizureResultV1).
NAME_MAX = 256
ADDRESS_MAX = 512
KINDS = ("impound_lot", "custodian")


def _one_line(text: str | None) -> str | None:
    if text is None:
        return None
    return " ".join(text.split()) or None


async def amend_custody(
    conn: Connection, task_id: uuid.UUID, custody: Custody, *, actor: str, channel: str, now: datetime
) -> Custody:
    """Record where the vehicle of a seized task is kept; return the custody now recorded.

    The amendment states the custody anew: a kind or address it does not give is kept only when the
    place stays the same (a new place with an old address would be wrong). The change is a task event
    (``seized`` → ``seized``, detail ``{"custody": …, "previous": …}``) with who and when.
    Runs in the caller's transaction.

    Raises:
        TaskError: no such task, it is not seized, or a field is empty, too long or not a known kind.
    """
    name, address = _one_line(custody.name), _one_line(custody.address)
    if not name:
        raise TaskError("custody name (where the vehicle is kept) is empty")
    if len(name) > NAME_MAX:
        raise TaskError(f"custody name is longer than {NAME_MAX} characters")
    if address is not None and len(address) > ADDRESS_MAX:
        raise TaskError(f"custody address is longer than {ADDRESS_MAX} characters")
    if custody.kind is not None and custody.kind not in KINDS:
        raise TaskError(f"custody kind must be one of {', '.join(KINDS)}, not {custody.kind!r}")
    row = await conn.fetchrow(
        "SELECT state, custody_kind, custody_name, custody_address FROM tasks WHERE task_id = $1 FOR UPDATE",
        task_id,
    )
    if row is None:
        raise TaskError(f"no task {task_id}")
    if row["state"] != "seized":
        raise TaskError(f"task {task_id} is {row['state']}: custody is recorded only for a seized task")
    previous = Custody(row["custody_kind"], row["custody_name"], row["custody_address"])
    same_place = name == previous.name
    amended = Custody(
        custody.kind or (previous.kind if same_place else None),
        name,
        address or (previous.address if same_place else None),
    )
    await conn.execute(
        "UPDATE tasks SET custody_kind = $2, custody_name = $3, custody_address = $4, updated_at = $5"
        " WHERE task_id = $1",
        task_id,
        amended.kind,
        amended.name,
        amended.address,
        now,
    )
    await record_event(
        conn, task_id, now, actor, channel, "seized", "seized",
        {"event": "custody", "custody": _as_json(amended), "previous": _as_json(previous)},
    )  # fmt: skip
    return amended


def _as_json(custody: Custody) -> dict[str, object]:
    return {"kind": custody.kind, "name": custody.name, "address": custody.address}
