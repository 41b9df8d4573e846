"""Whom the traffic police call about a court's vehicle (``court_contact`` on every seize request).

The court's on-duty contact now, from the roster: the duty group's enforcement judge, else its judicial
police officer, else its bureau leader (the first of them an SMS or call can reach), else the court's
bureau duty leader. A court with none of them has no contact: the request goes out without one and a
warning is logged (the roster has no separate duty line to fall back on). The pager recomputes it as
the duty rotates and republishes the court's requests when it changes (:func:`refresh_contacts`).
"""

from __future__ import annotations

import logging
from datetime import datetime

from alerts.rosters import Officer, Role, Roster
from streams.db import Connection
from streams.watchstore import set_court_contact

log = logging.getLogger(__name__)

# Who takes the police's call, in order: the judge decides on the spot, the judicial police collect.
_ORDER = (Role.JUDGE, Role.JUDICIAL_POLICE, Role.BUREAU_LEADER)


def duty_officer(roster: Roster, court: str, at: datetime) -> Officer | None:
    """The officer the traffic police should call about ``court``'s vehicles at ``at``, or None."""
    group = roster.on_duty(court, at)
    if group is not None:
        for role in _ORDER:
            officer_id = group.member(role)
            officer = roster.officer(officer_id) if officer_id else None
            if officer is not None and officer.active and officer.phone:
                return officer
    leader = roster.bureau_duty_leader(court)
    if leader is not None and leader.active and leader.phone:
        return leader
    return None


def contact_text(officer: Officer) -> str:
    """As the request carries it: name, role and phone (``王法官（执行法官） +8613800001022``)."""
    role = {
        Role.JUDGE: "执行法官",
        Role.JUDICIAL_POLICE: "司法警察",
        Role.BUREAU_LEADER: "执行局领导",
    }.get(officer.role, "值班")
    return f"{officer.name}（{role}） {officer.phone}"


async def refresh_contacts(conn: Connection, roster: Roster, now: datetime) -> int:
    """Record every court's contact at ``now``; republish the requests of courts whose contact changed.

    Returns how many requests were republished.
    """
    courts = {c.court_id for c in roster.courts} | {
        str(row["court"])
        for row in await conn.fetch(
            "SELECT DISTINCT court FROM watch_entries WHERE status = 'active' AND action = 'seize'"
        )
    }
    republished = 0
    for court in sorted(courts):
        officer = duty_officer(roster, court, now)
        async with conn.transaction():
            changed = await set_court_contact(
                conn,
                court,
                contact_text(officer) if officer else None,
                officer_id=officer.officer_id if officer else None,
                now=now,
            )
        if changed is None:
            continue
        if officer is None:
            log.warning("court %s has nobody on duty to give the traffic police: its requests go without"
                        " a contact", court)  # fmt: skip
        republished += changed
    return republished
