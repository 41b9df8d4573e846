"""Real-looking samples of every format the connectors read: the seeds the byte mutations start from.

Taken from the connector tests (tests/connectors/) and docs/connectors.md, which follow payloads of real
checkpoint platforms, Hikvision cameras and parking systems; GBK variants where devices send GBK.
"""

from __future__ import annotations

import json
from typing import Any

# --- GA/T 1400 ----------------------------------------------------------------------------------------

GAT_DEVICE = "33100200001320000101"
GAT_TYPE = "application/VIID+JSON"


def gat_vehicle(n: int, **changes: object) -> dict[str, Any]:
    """A MotorVehicleObject as a checkpoint camera pushes it (tests/connectors/test_gat1400.py)."""
    vehicle: dict[str, Any] = {
        "MotorVehicleID": f"{GAT_DEVICE}02202411221830450000{n}", "InfoKind": 1,
        "SourceID": f"{GAT_DEVICE}0220241122183045000{n}", "TollgateID": "33100200001210000001",
        "DeviceID": GAT_DEVICE, "LaneNo": 2, "Direction": "1", "HasPlate": "1", "PlateClass": "02",
        "PlateColor": "5", "PlateNo": "浙J12345", "PlateReliability": "96", "VehicleColor": "2",
        "VehicleClass": "K33", "VehicleBrand": "1", "Speed": 52.5, "PassTime": "20241122183045",
        "StorageUrl1": f"http://10.33.1.8/pic/{n}-plate.jpg", "StorageUrl2": "", "LeftTopX": 120,
        "LeftTopY": 300, "RightBtmX": 900, "RightBtmY": 1000,
        "SubImageList": {"SubImageInfoObject": [{"ImageID": f"img-{n}", "Type": "02", "StoragePath": ""}]},
    }  # fmt: skip
    vehicle.update(changes)
    return vehicle


def gat_batch(*vehicles: dict[str, Any]) -> dict[str, Any]:
    return {"MotorVehicleListObject": {"MotorVehicleObject": list(vehicles)}}


GAT_BATCHES = (
    gat_batch(
        gat_vehicle(1),
        gat_vehicle(2, PlateNo="浙JD12345", PlateColor="9", PlateReliability=88.5, LaneNo=3),
        gat_vehicle(3, PlateNo="浙J·A1234", PlateColor=6, PlateReliability="", PassTime="20241122235959"),
    ),
    gat_batch(gat_vehicle(4, PlateNo="", HasPlate="0", StorageUrl1="")),
    gat_batch(
        gat_vehicle(
            5,
            StorageUrl1="",
            SubImageList={
                "SubImageInfoObject": [{"Type": "14", "StoragePath": "/pic/5.jpg", "Data": "/9j/4AAQ"}]
            },
        )
    ),
)
GAT_SYSTEM_OBJECTS = ("RegisterObject", "KeepaliveObject", "UnRegisterObject")

# --- Hikvision ISAPI ----------------------------------------------------------------------------------

ISAPI_BOUNDARY = "---------------------------7e1a2b3c4d5e6"
ISAPI_MULTIPART = f"multipart/form-data; boundary={ISAPI_BOUNDARY}"
ISAPI_XML = 'application/xml; charset="UTF-8"'
# Fake JPEGs holding CR, LF and dashes, the bytes a careless splitter trips over.
JPEG = b"\xff\xd8\xff\xe0plate\r\n--\r\n" + bytes(range(256)) + b"\xff\xd9"


def isapi_alert(plate: str = "蓝浙J12345", encoding: str = "UTF-8", *, gate: str = "") -> str:
    """An ANPR EventNotificationAlert as a Chinese-market capture camera sends it (test_isapi.py)."""
    return f"""<?xml version="1.0" encoding="{encoding}"?>
<EventNotificationAlert version="2.0" xmlns="http://www.isapi.org/ver20/XMLSchema">
<ipAddress>192.168.100.31</ipAddress>
<portNo>80</portNo>
<protocol>HTTP</protocol>
<macAddress>BC:5E:33:0A:1B:2C</macAddress>
<channelID>1</channelID>
<dateTime>2026-03-02T08:15:42+08:00</dateTime>
<activePostCount>1</activePostCount>
<eventType>ANPR</eventType>
<eventState>active</eventState>
<eventDescription>ANPR</eventDescription>
<channelName>IP CAPTURE CAMERA</channelName>
<ANPR>
<country>59</country>
<licensePlate>{plate}</licensePlate>
<line>1</line>
<direction>reverse</direction>
<confidenceLevel>97</confidenceLevel>
<plateType>92TypeCivil</plateType>
<plateColor>blue</plateColor>
<vehicleType>vehicle</vehicleType>
{gate}
<pictureInfoList>
<pictureInfo><fileName>licensePlatePicture.jpg</fileName><type>licensePlatePicture</type></pictureInfo>
</pictureInfoList>
</ANPR>
<UUID>46dd0716-1dd2-11b2-821f-0a1b2c3d4e5f</UUID>
<picNum>1</picNum>
</EventNotificationAlert>
"""


ISAPI_OVERSEAS = b"""<?xml version="1.0" encoding="UTF-8"?>
<EventNotificationAlert version="2.0" xmlns="http://www.hikvision.com/ver20/XMLSchema">
  <ipAddress>10.2.7.188</ipAddress><portNo>8123</portNo><protocol>HTTP</protocol>
  <macAddress>bc:5e:33:71:0f:9d</macAddress><channelID>1</channelID>
  <dateTime>2025-06-14T09:41:07+01:00</dateTime><activePostCount>1</activePostCount>
  <eventType>ANPR</eventType><eventState>active</eventState><eventDescription>ANPR</eventDescription>
  <ANPR><country>5</country><licensePlate>KH71830</licensePlate><line>1</line>
    <direction>forward</direction><confidenceLevel>100</confidenceLevel><plateColor>unknown</plateColor>
    <originalLicensePlate>KH71830</originalLicensePlate></ANPR>
  <UUID>2025061409410718200aBcDeFgHiJkLmNoPqRsTuVwXyZ</UUID><picNum>2</picNum>
</EventNotificationAlert>"""

ISAPI_HEARTBEAT = b"""<EventNotificationAlert version="2.0" xmlns="http://www.isapi.org/ver20/XMLSchema">
<ipAddress>10.17.133.46</ipAddress><portNo>80</portNo><protocol>HTTP</protocol>
<macAddress>44:19:b6:6d:24:85</macAddress><channelID>1</channelID>
<dateTime>2017-05-04T11:20:02+08:00</dateTime><activePostCount>0</activePostCount>
<eventType>heartBeat</eventType><eventState>active</eventState><eventDescription>heartBeat</eventDescription>
</EventNotificationAlert>"""


def isapi_multipart(xml: bytes, xml_type: str = ISAPI_XML, *, pictures: int = 2) -> bytes:
    """The XML part and JPEG parts, as cameras send them (part headers with Content-Length)."""
    delimiter = b"--" + ISAPI_BOUNDARY.encode()

    def part(name: str, kind: str, payload: bytes) -> bytes:
        head = (
            f'Content-Disposition: form-data; name="{name}";filename="{name}"\r\n'
            f"Content-Type: {kind}\r\nContent-Length: {len(payload)}"
        ).encode()
        return delimiter + b"\r\n" + head + b"\r\n\r\n" + payload + b"\r\n"

    parts = [part("anpr.xml", xml_type, xml)]
    parts += [part(f"picture{i}.jpg", "image/jpeg", JPEG) for i in range(pictures)]
    return b"".join(parts) + delimiter + b"--\r\n"


ISAPI_SAMPLES: tuple[tuple[bytes, str | None], ...] = (
    (isapi_alert().encode(), ISAPI_XML),
    (isapi_alert(encoding="GBK").encode("gbk"), "application/xml"),
    (
        isapi_alert("黄苏E12345", gate="<EntranceInfo><direction>enter</direction></EntranceInfo>").encode(),
        None,
    ),
    (ISAPI_OVERSEAS, ISAPI_XML),
    (ISAPI_HEARTBEAT, "text/xml"),
    (isapi_multipart(isapi_alert().encode()), ISAPI_MULTIPART),
    (
        isapi_multipart(isapi_alert(encoding="GB2312").encode("gbk"), "text/xml; charset=GB2312"),
        ISAPI_MULTIPART,
    ),
    (isapi_multipart(ISAPI_OVERSEAS, "application/octet-stream", pictures=0), ISAPI_MULTIPART),
    # Declared in the prolog only: legal XML, and the decoders where other codecs' hazards hide.
    (isapi_alert(encoding="UTF-7").encode("utf-7"), "application/xml"),
    (isapi_alert(encoding="UTF-16").encode("utf-16"), "application/xml"),
)

# --- parking ------------------------------------------------------------------------------------------


def parking_record(**changes: object) -> dict[str, Any]:
    """A record of the generic schema v1 (docs/connectors.md)."""
    record: dict[str, Any] = {
        "record_id": "8f1c-0001", "lot_id": "wanda", "gate": "gate-1-in", "direction": "in",
        "plate": "浙J12345", "plate_colour": "蓝", "time": "2026-11-23T18:00:00+08:00",
        "image_url": "https://lot.example/p/1.jpg", "confidence": 0.93,
    }  # fmt: skip
    record.update(changes)
    return record


PARKING_GENERIC = (
    {"records": [parking_record()]},
    {
        "records": [
            parking_record(
                record_id="r-2", direction="out", time="2026-11-23 18:00:00", plate_colour="yellow"
            ),
            parking_record(record_id="r-3", plate="浙JD12345", plate_colour="渐变绿", confidence=None),
        ]
    },
)


def example_cn_record(**changes: object) -> dict[str, Any]:
    """A record of the flat push format of Chinese parking platforms (connectors/parking.py, example_cn)."""
    record: dict[str, Any] = {
        "orderId": "ord-20261123-0001", "gateCode": "G01", "carNo": "浙J12345", "plateColor": "蓝色",
        "inOutType": 0, "passTime": "2026-11-23 18:00:00", "picUrl": "http://10.1.1.9/pic/1.jpg",
    }  # fmt: skip
    record.update(changes)
    return record


PARKING_EXAMPLE_CN = (
    {"parkCode": "P3310020001", "data": [example_cn_record()]},
    {"parkCode": "P3310020001", "data": [example_cn_record(inOutType=1, carNo="苏E12345", plateColor="黄")]},
)

# --- backfill -----------------------------------------------------------------------------------------

CSV_HEADER = "record_id,lot_id,gate,direction,plate,plate_colour,time,image_url,confidence\n"
CSV_EXPORT = (
    CSV_HEADER
    + "r-1,wanda,g1,in,浙J12345,蓝,2025-03-01 08:15:00,,0.9\n"
    + 'r-2,wanda,g1,out,"苏E12345",黄色,2025-03-01T08:16:00+08:00,https://lot.example/2.jpg,\n'
    + "\n"
    + "r-3,wanda,g2,in,浙JD12345,,2025-03-01 08:17:00\r\n"
)
JSONL_EXPORT = "".join(
    json.dumps(parking_record(record_id=f"r-{n}", time=f"2025-03-01T08:1{n}:00+08:00"), ensure_ascii=False)
    + "\n"
    for n in range(3)
)

# --- traffic police -----------------------------------------------------------------------------------


def traffic_result(**changes: object) -> dict[str, Any]:
    """A SeizureResultV1 as the traffic police post it (docs/connectors.md)."""
    result: dict[str, Any] = {
        "result_id": "TZ-20261123-0007", "request_id": "6f1c2a4e-0000-4000-8000-000000000001",
        "plate": "浙J12345", "result": "seized", "at": "2026-11-23T10:15:00+08:00",
        "place": "椒江区开元路与东海大道交叉口", "district": "331002", "officer": "王某 012345",
        "unit": "台州市公安局交通警察支队椒江大队", "custody_kind": "custodian",
        "custody_name": "椒江区某车辆保管有限公司", "custody_address": "椒江区葭沚街道",
    }  # fmt: skip
    result.update(changes)
    return result


TRAFFIC_RESULTS = (
    {"results": [traffic_result()]},
    {
        "results": [
            traffic_result(result_id="TZ-2", result="stopped", custody_kind=None, custody_name=None),
            traffic_result(result_id="TZ-3", result="not_found", note="未找到"),
        ]
    },
)

# --- device registry ----------------------------------------------------------------------------------

DEVICES_CSV = (
    "device_id,source_id,name,district,device_group,kind,address,latitude,longitude,owner,timezone\n"
    "wanda/gate-1-in,lot-wanda,椒江万达广场停车场 1号入口,331002,wanda,parking_entry,开元路1号,"
    "28.68,121.44,万达,\n"
    "33100200001320000101,kk-taizhou,椒江卡口 开元路,331002,kk,checkpoint,,,,交警支队,Asia/Shanghai\n"
    "bc:5e:33:0a:1b:2c:1,cam-luqiao,路桥 1号相机,331004,luqiao,,,,,,\n"
)
