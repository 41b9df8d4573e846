"""Wire contracts with the traffic police: the vehicles to stop (一键扣车) and what became of them."""

from __future__ import annotations

import enum
import uuid
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, model_validator

from streams.vehicles import PlateColour, Priority

_Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=256)]


class SeizureRequestV1(BaseModel):
    """One vehicle to stop, as the traffic police's integration consumes it (key: entry id).

    A tombstone (no value) on ``traffic.seizure-requests`` means: no longer wanted (released or seized).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: Literal[1] = 1
    request_id: uuid.UUID  # the watch entry id: results refer to it
    plate: str
    plate_colour: PlateColour
    vehicle: str
    case_number: str
    court: str
    priority: Priority
    requested_at: AwareDatetime
    valid_until: AwareDatetime | None
    # Who at the court takes the call when the police stop the vehicle: the court's on-duty contact
    # (name, role, phone) from the roster; None only when the roster has nobody (alerts/traffic_contacts).
    court_contact: str | None = None


class SeizureReleaseV1(BaseModel):
    """ "Release it" (解除扣留，放行): the police stopped or took a vehicle whose seal was lifted (paid,
    settled…). Published on ``traffic.seizure-requests`` under the request's key, in place of its
    tombstone, so the police's integration sees it; told apart from a request by ``instruction``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: Literal[1] = 1
    instruction: Literal["release"] = "release"
    request_id: uuid.UUID
    result_id: str  # the result it answers
    plate: str
    case_number: str
    court: str
    reason: str  # why the seal was lifted (closed reason and the clerk's note)
    released_at: AwareDatetime
    text: str  # what the officer on the road reads: 解除扣留，放行 with the case and the reason
    court_contact: str | None = None


class ResultKind(enum.StrEnum):
    STOPPED = "stopped"  # stopped and held where it was found, waiting for the court
    SEIZED = "seized"  # taken into custody (impound lot or custodian)
    NOT_FOUND = "not_found"  # searched, not found


class ResultOutcome(enum.StrEnum):
    """What became of one traffic-police result (recorded in ``traffic_results.outcome``)."""

    APPLIED_STOPPED = "applied_stopped"  # the task is now stopped, with the place; the court told
    APPLIED_SEIZED = "applied_seized"  # the task and entry closed as seized; the court told
    APPLIED_NOT_FOUND = "applied_not_found"  # noted on the live task; the court told
    NOT_FOUND_RECORDED = "not_found_recorded"  # noted; there was no task to note it on
    PLATE_MISMATCH = "plate_mismatch"  # the result's plate is not the request's: not applied
    UNKNOWN_REQUEST = "unknown_request"  # no such request: not applied
    RELEASED = "released"  # the seal was lifted: not applied; "release it" published for a stop/seizure
    ALREADY_SETTLED = "already_settled"  # the vehicle is already seized: not applied
    REPLAY = "replay"  # this result id was applied before: nothing more done

    @property
    def applied(self) -> bool:
        return self in _APPLIED


_APPLIED = frozenset(
    {
        ResultOutcome.APPLIED_STOPPED,
        ResultOutcome.APPLIED_SEIZED,
        ResultOutcome.APPLIED_NOT_FOUND,
        ResultOutcome.NOT_FOUND_RECORDED,
    }
)


class CustodyKind(enum.StrEnum):
    IMPOUND_LOT = "impound_lot"  # 停车场 / 扣押场
    CUSTODIAN = "custodian"  # contracted third-party custodian (拖、停、保管)


class SeizureResultV1(BaseModel):
    """A traffic-police result, from their topic or their HTTP endpoint (key: the request id)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: Literal[1] = 1
    result_id: _Text  # the sender's id: a resend carries the same one
    request_id: uuid.UUID  # the SeizureRequestV1 it answers (the watch entry id)
    plate: str  # as the officer read it; checked against the request
    result: ResultKind
    at: AwareDatetime
    place: _Text
    district: str | None = Field(default=None, max_length=64)
    officer: _Text  # the traffic officer's name or badge
    unit: _Text  # their unit (交警大队), possibly of another jurisdiction
    custody_kind: CustodyKind | None = None
    custody_name: str | None = Field(default=None, max_length=256)
    custody_address: str | None = Field(default=None, max_length=512)
    note: str = Field(default="", max_length=1000)

    @model_validator(mode="after")
    def _custody_when_seized(self) -> SeizureResultV1:
        if self.result is ResultKind.SEIZED and (self.custody_kind is None or not self.custody_name):
            raise ValueError("a seizure names where the vehicle is held: custody_kind and custody_name")
        return self
