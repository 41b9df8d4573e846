"""Realistic plate reads and watchlist changes, deterministic from a seed.

Plates are spread over the 31 provinces by registered vehicles (粤 鲁 苏 浙 豫 heavy, 青 藏 light), with
the prefecture letters each province issues (the capital's letter most often), GA 36 serials (no I/O),
about 5 % new-energy plates (small 浙AD12345 / large 浙A12345D) and a few 挂/学 plates. Reads come out
the way cameras deliver them: confusable characters (0/O/D/Q, 1/I/L/7, 8/B, 5/S, 2/Z, 6/G), a misread or
missing province, parking entries with their exit minutes to hours later, checkpoint passes between.

Every read is built with :func:`streams.events.new_sighting` and encoded with ``Sighting.encode``, keyed by
the normalized plate: the bytes are what the connectors publish to ``plate.sightings``. Watch changes are
:class:`~streams.watchlist.WatchEntry` values encoded by :func:`~streams.watchlist.encode_entry` and keyed
by entry id: what the outbox relay publishes to ``watchlist.changes``.
"""

from __future__ import annotations

import heapq
import random
import uuid
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Final

from streams.events import EventError, Location, Sighting, SourceKind, new_sighting, sighting_id_for
from streams.plates import PROVINCES, parse_plate
from streams.vehicles import Action, EntryStatus, PlateColour, Priority
from streams.watchlist import WatchEntry, encode_entry

__all__ = [
    "ReadMix",
    "colour_of",
    "random_plate",
    "sightings",
    "watch_changes",
    "watch_entries",
    "watch_plates",
]


@dataclass(frozen=True)
class ReadMix:
    """Shares of a stream of reads; every share is a probability per read (0–1)."""

    watched_share: float = 0.001  # reads of a vehicle on the watch list
    ocr_noise: float = 0.02  # one confusable character misread (4 in 5) or the province misread (1 in 5)
    province_missing: float = 0.01  # the province character not read at all
    new_energy_share: float = 0.05  # 8-character new-energy plates among the vehicles
    parking_share: float = 0.5  # parking entries and exits among the reads; the rest are checkpoints


# (province, registered vehicles in millions ≈ 2023, prefecture letters issued)
_PROVINCE_TABLE: Final = (
    ("粤", 29.0, "ABCDEFGHJKLMNPQRSTUVWXY"), ("鲁", 26.0, "ABCDEFGHJKLMNPQRSUVY"),
    ("苏", 22.0, "ABCDEFGHJKLMN"), ("浙", 21.0, "ABCDEFGHJKL"), ("豫", 21.0, "ABCDEFGHJKLMNPQRSU"),
    ("冀", 18.0, "ABCDEFGHJRT"), ("川", 16.0, "ABCDEFHJKLMQRSTUVWXYZ"), ("鄂", 11.5, "ABCDEFGHJKLMNPQRS"),
    ("湘", 11.0, "ABCDEFGHJKLMNSU"), ("皖", 11.0, "ABCDEFGHJKLMNPRS"), ("云", 10.0, "ACDEFGHJKLMNPQRS"),
    ("闽", 9.0, "ABCDEFGHJK"), ("辽", 9.0, "ABCDEFGHJKLMNP"), ("陕", 9.0, "ABCDEFGHJKUV"),
    ("桂", 9.0, "ABCDEFGHJKLMNPR"), ("晋", 8.5, "ABCDEFHJKLM"), ("赣", 8.0, "ABCDEFGHJKLM"),
    ("京", 7.0, "ABCEFGHJKLMNPQ"), ("蒙", 7.0, "ABCDEFGHJKLM"), ("贵", 7.0, "ABCDEFGHJ"),
    ("渝", 6.0, "ABCDFGH"), ("黑", 6.0, "ABCDEFGHJKLMNPR"), ("沪", 5.0, "ABCDEFGHJKLMN"),
    ("吉", 5.0, "ABCDEFGHJK"), ("新", 5.0, "ABCDEFGHJKLMNPQR"), ("津", 4.0, "ABCDEFGHJKLMN"),
    ("甘", 4.0, "ABCDEFGHJKLMNP"), ("琼", 2.0, "ABCDEF"), ("宁", 1.5, "ABCDE"), ("青", 1.2, "ABCDEFGH"),
    ("藏", 0.6, "ABCDEFGHJ"),
)  # fmt: skip
if frozenset(p for p, _, _ in _PROVINCE_TABLE) != PROVINCES:  # the table must cover exactly the 31
    raise RuntimeError("benchmarks.generate: the province table does not match streams.plates.PROVINCES")
_PROVINCES: Final = [p for p, _, _ in _PROVINCE_TABLE]
_PROVINCE_WEIGHTS: Final = [w for _, w, _ in _PROVINCE_TABLE]
# The capital's letter (A) is issued most, the second city's (B) next.
_AUTHORITIES: Final = {p: (list(letters), [4 if c == "A" else 2 if c == "B" else 1 for c in letters])
                       for p, _, letters in _PROVINCE_TABLE}  # fmt: skip
_LETTERS: Final = "ABCDEFGHJKLMNPQRSTUVWXYZ"  # serial letters: no I, no O
_DIGITS: Final = "0123456789"
_TRAILER_SHARE: Final = 0.004  # 挂
_COACH_SHARE: Final = 0.002  # 学
# Each confusable character and what a camera reads instead.
_CONFUSABLE: Final = {
    ch: group.replace(ch, "") for group in ("0ODQ", "1IL7", "8B", "5S", "2Z", "6G") for ch in group
}
_CAMERA_UNKNOWN_COLOUR: Final = 0.03
_SHANGHAI: Final = timezone(timedelta(hours=8), "Asia/Shanghai")
_WINDOW: Final = timedelta(hours=12)  # reads are spread over the 12 hours before ``now``
_LOTS: Final = 8
_LANES: Final = 8
_DISTRICTS: Final = ("331002", "331003", "331004", "331081", "331082")


def _serial(rng: random.Random, length: int) -> str:
    """An ordinary serial: all digits, or one or two letters among digits (no I/O).

    Self-chosen serials (自编号, since 2007) made letters common; all-digit serials are the older ones.
    """
    letters = rng.choices((0, 1, 2), weights=(20, 55, 25))[0]
    chars = [rng.choice(_LETTERS) for _ in range(letters)] + rng.choices(_DIGITS, k=length - letters)
    rng.shuffle(chars)
    return "".join(chars)


def random_plate(rng: random.Random, new_energy_share: float = 0.05) -> str:
    """A valid normalized plate drawn like the national fleet (colour: :func:`colour_of`)."""
    province = rng.choices(_PROVINCES, weights=_PROVINCE_WEIGHTS)[0]
    letters, weights = _AUTHORITIES[province]
    head = province + rng.choices(letters, weights=weights)[0]
    draw = rng.random()
    if draw < new_energy_share:
        energy = rng.choice("DF")
        if rng.random() < 0.9:  # small: D/F, a letter or digit, 4 digits
            return head + energy + rng.choice(_LETTERS + _DIGITS) + "".join(rng.choices(_DIGITS, k=4))
        return head + "".join(rng.choices(_DIGITS, k=5)) + energy  # large: 5 digits, D/F
    if draw < new_energy_share + _TRAILER_SHARE:
        return head + _serial(rng, 4) + "挂"
    if draw < new_energy_share + _TRAILER_SHARE + _COACH_SHARE:
        return head + _serial(rng, 4) + "学"
    return head + _serial(rng, 5)


def colour_of(plate: str) -> PlateColour:
    """The plate's colour, derived from the plate itself so reads and watch entries of one car agree."""
    if len(plate) == 8 and plate[2] in "DF":
        return PlateColour.GREEN
    if len(plate) == 8 and plate[-1] in "DF":
        return PlateColour.YELLOW_GREEN
    if plate[-1] in "挂学":
        return PlateColour.YELLOW
    # One ordinary plate in ten is a large vehicle's yellow one.
    return PlateColour.YELLOW if zlib.crc32(plate.encode()) % 10 == 0 else PlateColour.BLUE


def watch_plates(n: int, *, seed: int = 1) -> list[str]:
    """``n`` distinct valid normalized plates, in drawing order."""
    rng = random.Random(seed)  # noqa: S311  # reproducible load, not secrets
    seen: dict[str, None] = {}
    while len(seen) < n:
        seen[random_plate(rng)] = None
    return list(seen)


def _misread(plate: str, rng: random.Random) -> str:
    """One camera error: a confusable character (4 in 5), else the province read as another one."""
    positions = [i for i, ch in enumerate(plate) if i > 0 and ch in _CONFUSABLE]
    if positions and rng.random() < 0.8:
        i = rng.choice(positions)
        return plate[:i] + rng.choice(_CONFUSABLE[plate[i]]) + plate[i + 1 :]
    if plate[0] in PROVINCES:
        return rng.choice([p for p in _PROVINCES if p != plate[0]]) + plate[1:]
    return plate


def _as_read(plate: str, mix: ReadMix, rng: random.Random) -> str:
    read = _misread(plate, rng) if rng.random() < mix.ocr_noise else plate
    if rng.random() < mix.province_missing and read[0] in PROVINCES:
        read = read[1:]
    return read


@dataclass(frozen=True, slots=True)
class _Device:
    device_id: str
    kind: SourceKind
    name: str
    district: str
    location: Location


def _devices(prefix: str) -> tuple[list[tuple[_Device, _Device]], list[_Device]]:
    """Parking lots (entry and exit gate) and checkpoint lanes, named under ``prefix``."""

    def device(suffix: str, kind: SourceKind, name: str, k: int) -> _Device:
        where = Location(latitude=round(28.60 + 0.011 * k, 4), longitude=round(121.30 + 0.017 * k, 4))
        return _Device(f"{prefix}/{suffix}", kind, name, _DISTRICTS[k % len(_DISTRICTS)], where)

    lots = [
        (
            device(f"p{k}-in", SourceKind.PARKING_ENTRY, f"基准停车场{k}号 入口", k),
            device(f"p{k}-out", SourceKind.PARKING_EXIT, f"基准停车场{k}号 出口", k),
        )
        for k in range(_LOTS)
    ]
    lanes = [device(f"kk{k}", SourceKind.CHECKPOINT, f"基准卡口 {k + 1}车道", k) for k in range(_LANES)]
    return lots, lanes


def sightings(
    n: int,
    watched: Sequence[str],
    *,
    mix: ReadMix = ReadMix(),  # frozen: one shared default is safe
    seed: int = 2,
    now: datetime | None = None,
    source_id: str = "bench-lot",
    device_id: str = "bench/g1",
) -> Iterator[tuple[bytes, bytes]]:
    """``n`` reads as (Kafka key, canonical sighting payload), observed over the 12 hours before ``now``.

    Arrivals are a watched vehicle (``mix.watched_share``, drawn from ``watched``) or one of the fleet;
    each passes a checkpoint lane or enters a parking lot, and exits that lot 5 minutes to 8 hours later
    (cars still parked at ``now`` have no exit). Every read is misread on its own (``mix.ocr_noise``,
    ``mix.province_missing``). Device ids are ``{device_id}/p{k}-in``, ``…/p{k}-out`` (8 lots) and
    ``{device_id}/kk{k}`` (8 lanes), enriched as registered devices are (district, name, location).
    Plates, devices and sighting ids depend only on ``seed``; times also on ``now`` (default: the clock).
    """
    rng = random.Random(seed)  # noqa: S311  # reproducible load, not secrets
    end = (now or datetime.now(UTC)).astimezone(_SHANGHAI)
    start = end - _WINDOW
    step = _WINDOW / max(n, 1)
    lots, lanes = _devices(device_id)
    # Exits not read yet: (due, sequence, plate, lot); sequence keeps the order stable on equal times.
    parked: list[tuple[datetime, int, str, int]] = []
    # A parking share s of reads needs entries to be s/(2-s) of arrivals: each entry brings an exit.
    entry_share = mix.parking_share / (2 - mix.parking_share)
    for i in range(n):
        at = start + step * i
        if parked and parked[0][0] <= at:
            at, _, plate, lot = heapq.heappop(parked)
            device = lots[lot][1]
        else:
            if watched and rng.random() < mix.watched_share:
                plate = rng.choice(watched)
            else:
                plate = random_plate(rng, mix.new_energy_share)
            if rng.random() < entry_share:
                lot = rng.randrange(_LOTS)
                device = lots[lot][0]
                dwell = timedelta(minutes=min(480.0, 5 + rng.expovariate(1 / 90)))
                heapq.heappush(parked, (at + dwell, i, plate, lot))
            else:
                device = rng.choice(lanes)
        colour = PlateColour.UNKNOWN if rng.random() < _CAMERA_UNKNOWN_COLOUR else colour_of(plate)
        sighting = _sighting(
            rng, _as_read(plate, mix, rng), plate, colour, at, source_id, device, f"{seed}-{i}"
        )
        yield sighting.plate.encode(), sighting.encode()


def _sighting(
    rng: random.Random,
    read: str,
    plate: str,
    colour: PlateColour,
    at: datetime,
    source_id: str,
    device: _Device,
    record_id: str,
) -> Sighting:
    sighting_id = sighting_id_for(source_id, device.device_id, record_id)
    received_at = at + timedelta(seconds=round(rng.uniform(0.2, 2.0), 3))
    confidence = round(rng.uniform(0.75, 0.99), 2)

    def build(plate_raw: str) -> Sighting:
        return new_sighting(
            sighting_id=sighting_id,
            source_kind=device.kind,
            source_id=source_id,
            device_id=device.device_id,
            plate_raw=plate_raw,
            plate_colour=colour,
            observed_at=at,
            received_at=received_at,
            location=device.location,
            district=device.district,
            device_name=device.name,
            confidence=confidence,
            image_ref=f"https://img.bench.example/{source_id}/{at:%Y%m%d}/{sighting_id}.jpg",
        )

    try:
        return build(read)
    except EventError:  # a misread a connector would refuse: the camera read it right this time
        return build(plate)


_COURTS: Final = (
    "台州市椒江区人民法院", "杭州市西湖区人民法院", "广州市天河区人民法院", "深圳市南山区人民法院",
    "济南市历下区人民法院", "南京市鼓楼区人民法院", "郑州市金水区人民法院", "成都市武侯区人民法院",
    "石家庄市长安区人民法院", "武汉市江汉区人民法院", "北京市朝阳区人民法院", "上海市浦东新区人民法院",
)  # fmt: skip
_BRANDS: Final = ("大众", "丰田", "本田", "比亚迪", "吉利", "长城", "日产", "别克", "奥迪", "宝马", "五菱")
_BODIES: Final = ("小型轿车", "小型普通客车", "小型越野客车", "重型半挂牵引车", "轻型厢式货车")
_PAINTS: Final = ("白色", "黑色", "银色", "灰色", "红色", "蓝色")


def watch_entries(
    plates: Sequence[str], *, seed: int = 3, now: datetime | None = None
) -> Iterator[WatchEntry]:
    """One active seize entry per plate, in force at ``now`` (valid from up to 2 years before it)."""
    rng = random.Random(seed)  # noqa: S311  # reproducible load, not secrets
    at = (now or datetime.now(UTC)).replace(microsecond=0)
    for plate in plates:
        valid_until = at + timedelta(days=rng.randint(30, 730)) if rng.random() < 0.7 else None
        year = rng.randint(2019, 2025)
        vehicle = "" if rng.random() < 0.2 else " ".join(rng.choice(t) for t in (_BRANDS, _BODIES, _PAINTS))
        yield WatchEntry(
            entry_id=uuid.UUID(int=rng.getrandbits(128), version=4),
            plate=parse_plate(plate),
            plate_colour=colour_of(plate),
            vehicle=vehicle,
            case_number=f"({year}){plate[0]}{rng.randint(1000, 9999)}执{rng.randint(1, 20000)}号",
            court=rng.choice(_COURTS),
            action=Action.SEIZE,
            priority=rng.choices((Priority.URGENT, Priority.NORMAL, Priority.LOW), weights=(10, 85, 5))[0],
            valid_from=at - timedelta(days=rng.randint(0, 700), seconds=rng.randint(0, 86399)),
            valid_until=valid_until,
            status=EntryStatus.ACTIVE,
            version=1,
        )


def watch_changes(plates: Sequence[str], *, seed: int = 3) -> Iterator[tuple[bytes, bytes]]:
    """(key, value) records of ``watchlist.changes`` for :func:`watch_entries`, as the outbox relay sends."""
    for entry in watch_entries(plates, seed=seed):
        yield str(entry.entry_id).encode(), encode_entry(entry)
