"""What became of a page overnight, read when the court's morning notice goes out (and when it is answered).

At night a normal-priority hit pages only the district's police station, which finds and holds the vehicle
for the court (留置待法院接手). When the night window ends the court is told what the station did, from
the page's task as it stands then, never as it stood when the page was planned:

========================================  ==================================================================
the task at the end of the night          the morning notice
========================================  ==================================================================
taken (acknowledged, en route) by the     ``已由椒江区白云派出所控制。请接手。回复1 K7Q接手``: the court
station                                   takes the vehicle over from the station (a hand-over, not a
                                          seizure)
seized by the station                     ``已由椒江区白云派出所扣押，存放于椒江区扣押场。请接手。…``
not found                                 ``椒江区白云派出所未找到该车。`` (nothing to take)
left a parking lot, nobody took it        the seizure request, saying when it left (``11-23 23:40已驶离``)
nothing happened                          the usual seizure request
========================================  ==================================================================

Pure but for :func:`overnight`, which reads the task in the caller's transaction.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass
from datetime import datetime

from alerts.rosters import Officer, Role, Roster
from streams.db import Connection


class Overnight(enum.StrEnum):
    NOTHING = "nothing"  # nobody answered: the court is asked to seize it
    LEFT = "left"  # nobody answered, and the vehicle left the lot it was seen in
    HELD = "held"  # the station (or whoever took it) controls the vehicle: the court takes it over
    SEIZED = "seized"  # seized (by the station, or whoever took it), kept at ``custody``
    NOT_FOUND = "not_found"  # looked for and not found


@dataclass(frozen=True, slots=True)
class NightOutcome:
    kind: Overnight
    holder: Officer | None = None  # who took or seized it
    holder_name: str | None = None  # the station's name (椒江区白云派出所), else the officer's
    custody: str | None = None  # where a seized vehicle is kept, if recorded
    left_at: datetime | None = None  # when it left (kind LEFT)

    @property
    def by_station(self) -> bool:
        return self.holder is not None and self.holder.role is Role.STATION_DUTY


TRAFFIC_ACTOR = "traffic:"  # how a task event names the traffic police (alerts.traffic_results)


def holder_name(roster: Roster, officer: Officer, district: str | None) -> str:
    """How a notice names who holds the vehicle: a station duty contact by its station."""
    if officer.role is Role.STATION_DUTY:
        cover = roster.night_cover(district) if district is not None else None
        if cover is not None and cover.officer_id == officer.officer_id:
            return cover.station
    return officer.name


async def overnight(
    conn: Connection, roster: Roster, page_id: uuid.UUID, district: str | None
) -> NightOutcome:
    """The state of the page's task now, for the morning notice (see the module's table)."""
    task = await conn.fetchrow(
        "SELECT t.task_id, t.state, t.assignee, t.custody_name, p.acknowledged_by,"
        " (SELECT e.actor FROM task_events e WHERE e.task_id = t.task_id AND e.to_state = t.state"
        "  AND e.from_state IS DISTINCT FROM e.to_state ORDER BY e.at DESC, e.event_id DESC LIMIT 1) AS actor"
        " FROM tasks t JOIN pages p USING (page_id) WHERE t.page_id = $1 ORDER BY t.created_at DESC LIMIT 1",
        page_id,
    )
    if task is None:
        return NightOutcome(Overnight.NOTHING)
    state = task["state"]
    holder_id = task["assignee"] or task["acknowledged_by"]
    if state in ("seized", "not_found"):
        holder_id = task["actor"] if task["actor"] not in (None, "system") else holder_id
    holder = roster.officer(holder_id) if holder_id else None
    name = holder_name(roster, holder, district) if holder is not None else None
    if holder is None and holder_id and holder_id.startswith(TRAFFIC_ACTOR):
        # The traffic police (alerts.traffic_results: "traffic:<unit>/<officer>"): named by their unit,
        # never taken for the station.
        name = holder_id.removeprefix(TRAFFIC_ACTOR).split("/", 1)[0] or None
    if state == "seized":
        return NightOutcome(Overnight.SEIZED, holder, name, custody=task["custody_name"])
    if state == "not_found":
        return NightOutcome(Overnight.NOT_FOUND, holder, name)
    if holder is not None:
        return NightOutcome(Overnight.HELD, holder, name)
    left = await conn.fetchrow(
        "SELECT source_kind, observed_at FROM task_sightings WHERE task_id = $1"
        " AND outcome <> 'suppressed' ORDER BY observed_at DESC LIMIT 1",
        task["task_id"],
    )
    if left is not None and left["source_kind"] == "parking_exit":
        return NightOutcome(Overnight.LEFT, left_at=left["observed_at"])
    return NightOutcome(Overnight.NOTHING)
