"""A simulated city feed: parking entries and exits and checkpoint passes, with OCR noise.

Plates are drawn over the provinces (mostly local), about 5 % new-energy; a read is misread at a
configurable rate the way cameras misread (confusable characters, the province character). Pure: it
yields field dictionaries, and whoever runs it decides how they reach the pipeline.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from streams.events import SourceKind
from streams.plates import PROVINCES
from streams.vehicles import PlateColour

SHANGHAI = ZoneInfo("Asia/Shanghai")
_SERIAL = "ABCDEFGHJKLMNPQRSTUVWXYZ0123456789"
_DIGITS = "0123456789"
_CONFUSE = {
    "0": "D",
    "D": "0",
    "1": "L",
    "8": "B",
    "B": "8",
    "5": "S",
    "S": "5",
    "2": "Z",
    "Z": "2",
    "6": "G",
}
_PROVINCE_LIST = sorted(PROVINCES)


@dataclass(frozen=True, slots=True)
class Device:
    source_id: str
    device_id: str
    kind: SourceKind
    name: str


@dataclass(frozen=True, slots=True)
class Read:
    device: Device
    plate_raw: str
    colour: PlateColour
    observed_at: datetime
    confidence: float


TAIZHOU_DEVICES: tuple[Device, ...] = (
    Device("parking-jiaojiang", "wanda-gate-1-in", SourceKind.PARKING_ENTRY, "椒江万达广场停车场 1号入口"),
    Device("parking-jiaojiang", "wanda-gate-1-out", SourceKind.PARKING_EXIT, "椒江万达广场停车场 1号出口"),
    Device("parking-huangyan", "hospital-in", SourceKind.PARKING_ENTRY, "黄岩区人民医院停车场 入口"),
    Device("parking-huangyan", "hospital-out", SourceKind.PARKING_EXIT, "黄岩区人民医院停车场 出口"),
    Device("checkpoints-taizhou", "kk-g15-luqiao-2", SourceKind.CHECKPOINT, "G15沈海高速 路桥卡口 2车道"),
    Device("checkpoints-taizhou", "kk-shifu-ave-1", SourceKind.CHECKPOINT, "市府大道 东环大道口 卡口 1车道"),
)


def random_plate(
    rng: random.Random, *, local_province: str = "浙", local_share: float = 0.8
) -> tuple[str, PlateColour]:
    """A plausible plate and its colour: mostly local, ~5 % new-energy (green)."""
    province = local_province if rng.random() < local_share else rng.choice(_PROVINCE_LIST)
    authority = rng.choice("ABCDEFGHJKLM")
    if rng.random() < 0.05:
        serial = rng.choice("DF") + rng.choice(_SERIAL) + "".join(rng.choices(_DIGITS, k=4))
        return f"{province}{authority}{serial}", PlateColour.GREEN
    serial = "".join(rng.choices(_SERIAL, k=2)) + "".join(rng.choices(_DIGITS, k=3))
    serial = "".join(rng.sample(serial, k=len(serial)))
    colour = PlateColour.YELLOW if rng.random() < 0.1 else PlateColour.BLUE
    return f"{province}{authority}{serial}", colour


def misread(plate: str, rng: random.Random) -> str:
    """One camera-like error: a confusable serial character, or a wrong province character."""
    positions = [i for i, ch in enumerate(plate) if i >= 2 and ch in _CONFUSE]
    if positions and rng.random() < 0.7:
        i = rng.choice(positions)
        return plate[:i] + _CONFUSE[plate[i]] + plate[i + 1 :]
    return rng.choice(_PROVINCE_LIST) + plate[1:]


def city_feed(
    rng: random.Random,
    *,
    count: int,
    start: datetime,
    devices: tuple[Device, ...] = TAIZHOU_DEVICES,
    ocr_error_rate: float = 0.02,
    mean_gap: timedelta = timedelta(milliseconds=200),
) -> Iterator[Read]:
    """``count`` reads of random traffic, in time order from ``start``."""
    at = start
    for _ in range(count):
        plate, colour = random_plate(rng)
        if rng.random() < ocr_error_rate:
            plate = misread(plate, rng)
        at += timedelta(seconds=rng.expovariate(1 / mean_gap.total_seconds()))
        yield Read(rng.choice(devices), plate, colour, at, round(rng.uniform(0.75, 0.99), 2))
