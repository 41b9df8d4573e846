"""Closed vocabularies describing a vehicle on a watch entry or a read: plate colour, action, priority."""

from __future__ import annotations

import enum


class PlateColour(enum.StrEnum):
    """Plate background colour (GA 36). Cameras get it wrong at night, so it never decides a match alone."""

    BLUE = "blue"  # small vehicles
    YELLOW = "yellow"  # large vehicles, coaches
    GREEN = "green"  # small new-energy
    YELLOW_GREEN = "yellow_green"  # large new-energy
    WHITE = "white"  # police, military
    BLACK = "black"  # foreign, some cross-border
    UNKNOWN = "unknown"


class Action(enum.StrEnum):
    """What the court wants done when the vehicle is found."""

    SEIZE = "seize"  # 扣押: take it to an impound lot or a custodian
    LOCATE = "locate"  # locate only: tell the court where it is, no seizure
    SOFT_SEAL = "soft_seal"  # 活封: the owner keeps using it; sightings are logged, nobody is sent


class Priority(enum.StrEnum):
    """Decides whether night routing applies (normal) or the owning court is woken (urgent)."""

    URGENT = "urgent"
    NORMAL = "normal"
    LOW = "low"


class EntryStatus(enum.StrEnum):
    ACTIVE = "active"
    RELEASED = "released"  # 解封: paid, settled or expired; must leave every watchlist at once
    SEIZED = "seized"
    # Seized under another case of the same vehicle: in custody, off every list; its own court settles it.
    SEIZED_OTHER_CASE = "seized_other_case"
