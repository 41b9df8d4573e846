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
    # Who at the court takes the call when the police stop the vehicle: the court's duty line.
    court_contact: str | None = None


class ResultKind(enum.StrEnum):
    STOPPED = "stopped"  # stopped and held where it was found, waiting for the court
    SEIZED = "seized"  # taken into custody (impound lot or custodian)
    NOT_FOUND = "not_found"  # searched, not found


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
