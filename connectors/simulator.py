"""A simulated city feed: parking entries and exits, checkpoint passes and ANPR camera events.

Plates are drawn over the provinces (mostly local), about 5 % new-energy; a read is misread at a
configurable rate the way cameras misread (confusable characters, the province character). Each device
speaks its real feed's wire format (generic parking JSON, GA/T 1400, Hikvision ISAPI), so whoever runs it
exercises the connectors exactly as the devices would.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal
from xml.sax.saxutils import escape

from connectors.records import SHANGHAI
from streams.events import SourceKind
from streams.plates import PROVINCES
from streams.vehicles import PlateColour

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
# GA/T 1400 colour codes (1 black, 2 white, 5 blue, 6 yellow, 9 green) and Hikvision's colour words.
_GAT_COLOUR = {PlateColour.BLACK: "1", PlateColour.WHITE: "2", PlateColour.BLUE: "5", PlateColour.YELLOW: "6",
               PlateColour.GREEN: "9"}  # fmt: skip
_HIK_COLOUR = {PlateColour.BLUE: "blue", PlateColour.YELLOW: "yellow", PlateColour.GREEN: "newEnergyGreen",
               PlateColour.WHITE: "white", PlateColour.BLACK: "black"}  # fmt: skip

Feed = Literal["parking", "gat1400", "isapi"]


@dataclass(frozen=True, slots=True)
class Device:
    feed: Feed
    source_id: str
    device_id: str  # as the connector derives it from the payload
    kind: SourceKind
    name: str
    district: str
    latitude: float
    longitude: float
    # feed-specific identity in the payload
    lot_id: str = ""
    gate: str = ""
    mac: str = ""


@dataclass(frozen=True, slots=True)
class Read:
    device: Device
    plate_raw: str
    colour: PlateColour
    observed_at: datetime
    confidence: float


TAIZHOU_DEVICES: tuple[Device, ...] = (
    Device("parking", "demo-parking", "wanda/gate-1-in", SourceKind.PARKING_ENTRY,
           "椒江万达广场停车场 1号入口", "331002", 28.6561, 121.4208, lot_id="wanda", gate="gate-1-in"),
    Device("parking", "demo-parking", "wanda/gate-1-out", SourceKind.PARKING_EXIT,
           "椒江万达广场停车场 1号出口", "331002", 28.6559, 121.4212, lot_id="wanda", gate="gate-1-out"),
    Device("parking", "demo-parking", "hy-hospital/in", SourceKind.PARKING_ENTRY, "黄岩区人民医院停车场 入口",
           "331003", 28.6494, 121.2611, lot_id="hy-hospital", gate="in"),
    Device("parking", "demo-parking", "hy-hospital/out", SourceKind.PARKING_EXIT, "黄岩区人民医院停车场 出口",
           "331003", 28.6490, 121.2615, lot_id="hy-hospital", gate="out"),
    Device("gat1400", "demo-kk", "33100400001320000002", SourceKind.CHECKPOINT, "G15沈海高速 路桥卡口 2车道",
           "331004", 28.5823, 121.3650),
    Device("isapi", "demo-cam", "bc:5e:33:0a:1b:2c:1", SourceKind.CHECKPOINT,
           "市府大道 东环大道口 卡口 1车道", "331002", 28.6563, 121.4290, mac="BC:5E:33:0A:1B:2C"),
)  # fmt: skip


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


# --- wire formats ---------------------------------------------------------------------------------


def parking_record(read: Read, record_id: str) -> dict[str, object]:
    """A record of the generic parking schema."""
    d = read.device
    return {
        "record_id": record_id,
        "lot_id": d.lot_id,
        "gate": d.gate,
        "direction": "in" if d.kind is SourceKind.PARKING_ENTRY else "out",
        "plate": read.plate_raw,
        "plate_colour": read.colour.value,
        "time": read.observed_at.isoformat(),
        "confidence": read.confidence,
    }


def gat1400_vehicle(read: Read, record_id: str) -> dict[str, object]:
    """A GA/T 1400 MotorVehicleObject."""
    return {
        "MotorVehicleID": record_id,
        "DeviceID": read.device.device_id,
        "TollgateID": read.device.device_id[:10] + "1210000001",
        "LaneNo": 2,
        "HasPlate": "1",
        "PlateNo": read.plate_raw,
        "PlateColor": _GAT_COLOUR.get(read.colour, "99"),
        "PassTime": read.observed_at.astimezone(SHANGHAI).strftime("%Y%m%d%H%M%S"),
        "PlateReliability": str(round(read.confidence * 100)),
    }


def isapi_alert(read: Read, record_id: str) -> bytes:
    """A Hikvision ANPR EventNotificationAlert, as a camera posts it."""
    when = read.observed_at.astimezone(SHANGHAI).isoformat(timespec="seconds")
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<EventNotificationAlert version="2.0" xmlns="http://www.hikvision.com/ver20/XMLSchema">
<ipAddress>192.168.100.31</ipAddress><portNo>80</portNo><protocol>HTTP</protocol>
<macAddress>{read.device.mac}</macAddress><channelID>1</channelID><dateTime>{when}</dateTime>
<activePostCount>1</activePostCount><eventType>ANPR</eventType><eventState>active</eventState>
<eventDescription>ANPR</eventDescription><channelName>Camera 01</channelName>
<ANPR><licensePlate>{escape(read.plate_raw)}</licensePlate>
<confidenceLevel>{round(read.confidence * 100)}</confidenceLevel>
<plateColor>{_HIK_COLOUR.get(read.colour, "unknown")}</plateColor><country>CHN</country></ANPR>
<UUID>{record_id}</UUID>
</EventNotificationAlert>""".encode()


# The lots' street addresses (simulated), which the SMS prints after the place.
LOT_ADDRESSES: dict[str, str] = {"wanda": "椒江区工人西路558号", "hy-hospital": "黄岩区横街路218号"}


def device_rows() -> list[dict[str, object]]:
    """The simulated devices as device-registry rows."""
    return [
        {"device_id": d.device_id, "source_id": d.source_id, "name": d.name, "kind": d.kind.value,
         "district": d.district, "device_group": f"demo-{d.feed}", "latitude": d.latitude,
         "longitude": d.longitude, "owner": "演示", "address": LOT_ADDRESSES.get(d.lot_id, "")}
        for d in TAIZHOU_DEVICES
    ]  # fmt: skip


def now_local() -> datetime:
    return datetime.now(UTC).astimezone(SHANGHAI)
