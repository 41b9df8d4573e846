"""``/api/v1/tasks``: the command centre's and officers' view of seizure tasks.

The caller authenticates with the pager's bearer token and says on whose behalf it acts
(``X-Officer-Id``); what that officer may see and change is decided by :mod:`alerts.taskviews`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Literal

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from alerts import custody, tasks, taskviews
from alerts.rosters import Officer
from alerts.rosterstore import load_roster
from alerts.service import Pager


class StateChange(BaseModel):
    state: Literal["acknowledged", "en_route", "seized", "not_found", "cancelled"]
    custody_kind: Literal["impound_lot", "custodian"] | None = None
    custody_name: str | None = None
    custody_address: str | None = None


class CustodyChange(BaseModel):
    """Where a seized vehicle is kept. A kind or address left out is kept only if the place is the same."""

    custody_name: str = Field(min_length=1, max_length=custody.NAME_MAX)  # the impound lot or custodian
    custody_kind: Literal["impound_lot", "custodian"] | None = None
    custody_address: str | None = Field(default=None, max_length=custody.ADDRESS_MAX)


def add_routes(
    app: FastAPI, pager_of: Callable[[Request], Pager], authorized: Callable[[Request], bool]
) -> None:
    async def officer(request: Request) -> Officer | JSONResponse:
        if not authorized(request):
            return JSONResponse({"error": "unauthorized"}, status_code=401)
        officer_id = request.headers.get("x-officer-id")
        if not officer_id:
            return JSONResponse(
                {"error": "X-Officer-Id names the officer the request acts for"}, status_code=400
            )
        async with pager_of(request).pool.acquire() as conn:
            roster = await load_roster(conn)
        try:
            return taskviews.officer_of(roster, officer_id)
        except taskviews.NotAllowed as exc:
            return JSONResponse({"error": str(exc)}, status_code=403)

    @app.get("/api/v1/tasks", tags=["tasks"])
    async def list_tasks(request: Request, district: str | None = None, state: str = "live") -> JSONResponse:
        """Open (or all) tasks the officer may see, optionally of one district."""
        who = await officer(request)
        if isinstance(who, JSONResponse):
            return who
        async with pager_of(request).pool.acquire() as conn:
            views = await taskviews.list_tasks(conn, who, district=district, live_only=state == "live")
        return JSONResponse({"tasks": [v.as_json() for v in views]})

    @app.get("/api/v1/tasks/{task_id}", tags=["tasks"])
    async def show(task_id: uuid.UUID, request: Request) -> JSONResponse:
        who = await officer(request)
        if isinstance(who, JSONResponse):
            return who
        async with pager_of(request).pool.acquire() as conn:
            try:
                view = await taskviews.get_task(conn, who, task_id)
            except taskviews.NotAllowed:
                return JSONResponse({"error": "no such task for this officer"}, status_code=404)
            trail, events = await taskviews.trail_and_events(conn, task_id, view.zone)
        return JSONResponse({**view.as_json(), "trail": trail, "events": events})

    @app.post("/api/v1/tasks/{task_id}/state", tags=["tasks"])
    async def change(task_id: uuid.UUID, body: StateChange, request: Request) -> JSONResponse:
        """Take a task (``acknowledged``), or move it on; a seizure names the custody."""
        who = await officer(request)
        if isinstance(who, JSONResponse):
            return who
        pager = pager_of(request)
        custody = (
            tasks.Custody(body.custody_kind, body.custody_name, body.custody_address)
            if body.custody_kind
            else None
        )
        async with pager.pool.acquire() as conn:
            try:
                view = await taskviews.set_state(
                    conn, who, task_id, body.state, channel="api", now=pager.clock(), custody=custody
                )
            except taskviews.NotAllowed:
                return JSONResponse({"error": "no such task for this officer"}, status_code=404)
            except tasks.TaskError as exc:
                return JSONResponse({"error": str(exc)}, status_code=409)
        return JSONResponse(view.as_json())

    @app.post("/api/v1/tasks/{task_id}/custody", tags=["tasks"])
    async def amend_custody(task_id: uuid.UUID, body: CustodyChange, request: Request) -> JSONResponse:
        """Record, or correct, where the vehicle of a seized task is kept (409 for any other state)."""
        who = await officer(request)
        if isinstance(who, JSONResponse):
            return who
        pager = pager_of(request)
        held = tasks.Custody(body.custody_kind, body.custody_name, body.custody_address)
        async with pager.pool.acquire() as conn:
            try:
                view = await taskviews.amend_custody(
                    conn, who, task_id, held, channel="api", now=pager.clock()
                )
            except taskviews.NotAllowed:
                return JSONResponse({"error": "no such task for this officer"}, status_code=404)
            except tasks.TaskError as exc:
                return JSONResponse({"error": str(exc)}, status_code=409)
        return JSONResponse(view.as_json())
