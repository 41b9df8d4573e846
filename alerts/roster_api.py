"""The roster over HTTP, for the command centre's tools: who is on duty at T, import, overrides.

Same bearer token as the acknowledgement API; every change is attributed (``by``) like the CLI's.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import datetime
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, BaseModel

from alerts.rosters import Role
from alerts.rosterstore import add_group_override, import_roster, load_roster, parse_document, replace_member
from alerts.service import Pager
from streams.errors import InvalidInput


class GroupOverrideIn(BaseModel):
    court_id: str
    group_id: str
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    by: str
    reason: str = ""


class MemberOverrideIn(BaseModel):
    group_id: str
    role: Role
    officer_id: str
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    by: str
    reason: str = ""


def _json(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _json(getattr(value, f.name)) for f in dataclasses.fields(value) if f.init}
    if isinstance(value, tuple | list):
        return [_json(v) for v in value]
    if isinstance(value, dict):
        return {k: _json(v) for k, v in value.items()}
    if isinstance(value, datetime):
        return value.isoformat()
    return value if value is None or isinstance(value, str | int | float | bool) else str(value)


def add_routes(
    app: FastAPI, pager_of: Callable[[Request], Pager], authorized: Callable[[Request], bool]
) -> None:
    def refused() -> JSONResponse:
        return JSONResponse({"error": "unauthorized"}, status_code=401)

    def invalid(exc: InvalidInput) -> JSONResponse:
        return JSONResponse(
            {"error": {"reason": exc.reason, "field": exc.field, "message": str(exc)}}, status_code=400
        )

    @app.get("/api/v1/roster/on-duty", tags=["roster"])
    async def on_duty(request: Request, at: AwareDatetime | None = None) -> JSONResponse:
        """Every court's duty group at ``at`` (default now) with its members, and night contacts in force."""
        if not authorized(request):
            return refused()
        pager = pager_of(request)
        when = at or pager.clock()
        async with pager.pool.acquire() as conn:
            roster = await load_roster(conn)
        courts = []
        for court in roster.courts:
            group = roster.on_duty(court.court_id, when)
            members = {}
            if group is not None:
                for role, officer_id in group.members:
                    officer = roster.officer(officer_id) if officer_id else None
                    members[role.value] = {
                        "officer_id": officer_id,
                        "name": officer.name if officer else None,
                    }
            courts.append(
                {"court_id": court.court_id, "group": group.group_id if group else None, "members": members}
            )
        nights = []
        for contact in roster.night_contacts:
            officer = roster.night_contact(contact.district, when)
            if officer is not None:
                nights.append(
                    {"district": contact.district, "officer_id": officer.officer_id, "name": officer.name}
                )
        return JSONResponse({"at": when.isoformat(), "courts": courts, "night_contacts": nights})

    @app.post("/api/v1/roster", tags=["roster"])
    async def import_document(request: Request, by: str) -> JSONResponse:
        """Upsert a roster document (the format of ``seizewatch roster import``); all of it or nothing."""
        if not authorized(request):
            return refused()
        try:
            doc = parse_document(await request.body())
            async with pager_of(request).pool.acquire() as conn:
                report = await import_roster(conn, doc, by=by)
        except InvalidInput as exc:
            return invalid(exc)
        return JSONResponse(_json(report))

    @app.post("/api/v1/roster/group-overrides", tags=["roster"])
    async def group_override(body: GroupOverrideIn, request: Request) -> JSONResponse:
        """A swapped shift: the court's duty goes to another of its groups for a period."""
        if not authorized(request):
            return refused()
        try:
            async with pager_of(request).pool.acquire() as conn:
                override = await add_group_override(conn, **body.model_dump())
        except InvalidInput as exc:
            return invalid(exc)
        return JSONResponse(_json(override), status_code=201)

    @app.post("/api/v1/roster/member-overrides", tags=["roster"])
    async def member_override(body: MemberOverrideIn, request: Request) -> JSONResponse:
        """One member of a group replaced for a period."""
        if not authorized(request):
            return refused()
        try:
            async with pager_of(request).pool.acquire() as conn:
                override = await replace_member(conn, **body.model_dump())
        except InvalidInput as exc:
            return invalid(exc)
        return JSONResponse(_json(override), status_code=201)
