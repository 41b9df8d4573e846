"""Every connector parser under a short fuzz run, and the inputs the long runs found, kept as regressions.

The targets are those of ``python -m tests.fuzz`` (tests/fuzz/targets.py), which runs 100,000 inputs
each outside the suite; here a few hundred each, random every run, so the suite keeps looking too. A
failure prints the minimal input hypothesis found.
"""

from __future__ import annotations

import pytest

from streams.errors import InvalidInput
from tests.fuzz import seeds
from tests.fuzz.inputs import Sample
from tests.fuzz.runner import run
from tests.fuzz.targets import TARGETS

EXAMPLES = 200


@pytest.mark.parametrize("name", list(TARGETS))
def test_a_short_fuzz_run_finds_nothing(name: str) -> None:
    report = run(TARGETS[name], EXAMPLES)
    assert not report.findings, report.details()
    assert report.inputs >= EXAMPLES


def refusals(name: str, sample: Sample) -> list[tuple[str, str | None]]:
    """What the target's chain refused, as (reason, field); the oracles run too, so Unfit would raise."""
    return [(o.reason, o.field) for o in TARGETS[name].check(sample) if isinstance(o, InvalidInput)]


_YEAR_ONE = (
    b'{"record_id": "r-1", "lot_id": "r-1", "gate": "r-1", "direction": "in", "plate": "\xe6\xb5\x99J12345", '
    b'"time": "0001-01-01T00:00:00"}'
)
_EXAMPLE_CN_1900 = (
    b'{"parkCode": "P3310020001", "data": [{"orderId": "r-1", "gateCode": "r-1", '
    b'"carNo": "\xe6\xb5\x99J12345", "inOutType": 0, "passTime": "1900-01-01 00:00:00"}]}'
)
_CSV_NUL_IMAGE = (
    seeds.CSV_HEADER.encode()
    + b"r-2,wanda,g1,out,\xe8\x8b\x8fE12345,\xe9\xbb\x84,2025-03-01T08:16:00+08:00,\x00ttps://lot.example/2.jpg,\n"
)
_ISAPI_YEAR_ONE = (
    b"-----------------------------7e1a2b3c4d5e6\r\n\r\n\r\n"
    b'<?xml version="1.0" encoding="UTF-8"?>\n<EventNotificationAlert><eventType>ANPR</eventType>'
    b"<dateTime>0001-01-01T00:00:00</dateTime><macAddress>BC:5E:33:0A:1B:2C</macAddress>"
    b"<ANPR><licensePlate>\xe6\xb5\x99J12345</licensePlate></ANPR></EventNotificationAlert>\r\n"
    b"-----------------------------7e1a2b3c4d5e6--\r\n"
)
_ISAPI_UTF7 = seeds.isapi_alert(encoding="UTF-7").encode("utf-7").replace(b"<?xml", b"<?xml+2AA-", 1)
_DEVICES = b"device_id,source_id,name,district,device_group,kind,address,latitude,longitude,owner,timezone\n"
_SWAPPED = b"r-1,r-1,n,331002,r-1,parking_entry,,121.44,28.68,,\n"  # latitude and longitude swapped
_TRAFFIC_NUL = (
    b'{"results": [{"result_id": "gate-1-in", "request_id": "6f1c2a4e-0000-4000-8000-000000000001", '
    b'"plate": "\xe4\xbd\xbf123456", "result": "stopped", "at": "2025-09-04T00:17:44+00:00", "place": "p", '
    b'"officer": "o", "unit": "u", "note": "a\\u0000b"}]}'
)


@pytest.mark.parametrize(
    ("name", "sample", "expected"),
    [
        # A time in year 1 without an offset is Shanghai time (+08:05:43 then): no UTC form, so the
        # matcher raised OverflowError. Now the ingest refuses the read.
        ("parking_generic", Sample(b'{"records": [' + _YEAR_ONE + b"]}", "application/json; charset=utf-8"),
         ("invalid_field", "observed_at")),
        ("backfill_jsonl", Sample(_YEAR_ONE + b"\n", option="utf-8"), ("invalid_field", "observed_at")),
        ("isapi_anpr", Sample(_ISAPI_YEAR_ONE, seeds.ISAPI_MULTIPART), ("invalid_field", "observed_at")),
        # Before 1901 Shanghai time is +08:05:43; the event's JSON rounded it to +08:06, another instant.
        ("parking_example_cn", Sample(_EXAMPLE_CN_1900, "application/json; charset=utf-8"),
         ("invalid_field", "observed_at")),
        # A NUL in image_url was accepted, then PostgreSQL would refuse the hit.
        ("backfill_csv", Sample(_CSV_NUL_IMAGE, option="utf-8"), ("invalid_field", "image_ref")),
        # UTF-7 decoded "+2AA-" to a lone surrogate: UnicodeEncodeError out of ElementTree.
        ("isapi_anpr", Sample(_ISAPI_UTF7, "application/xml"), ("bad_encoding", "body")),
        # A NUL in a result's note was published, for the pager's PostgreSQL to refuse.
        ("traffic_results", Sample(_TRAFFIC_NUL, "application/json"), ("invalid_field", "results[0].note")),
        # Device rows PostgreSQL or the registry refuse, and a time zone that raised OSError.
        ("devicefile", Sample(_DEVICES + b"w/g1,lot,\xe4\xb8\x87\x00,331002,w,,,,,,\n", option="utf-8-sig"),
         ("invalid_field", "name")),
        ("devicefile", Sample(_DEVICES + _SWAPPED, option="utf-8-sig"),
         ("invalid_field", "latitude")),
        ("devicefile", Sample(_DEVICES + b"r,r,n,331002,r,,,,,," + b"x" * 300 + b"\n", option="utf-8-sig"),
         ("invalid_field", "timezone")),
        ("devicefile", Sample(_DEVICES + b"r-1,r-1,n," + b"x" * 65 + b",r-1,,,,,,\n", option="utf-8-sig"),
         ("invalid_field", "district")),
    ],
)  # fmt: skip
def test_inputs_the_fuzz_found_are_refused_naming_why(
    name: str, sample: Sample, expected: tuple[str, str | None]
) -> None:
    assert refusals(name, sample) == [expected]


def test_a_400_digit_timestamp_is_a_bad_signature_not_a_crash() -> None:
    # auth_headers: OverflowError (int too large to convert to float) out of check_signature.
    from tests.fuzz.targets import _KEY

    headers = (
        ("x-api-key", _KEY),
        ("x-seizewatch-timestamp", "9" * 400),
        ("x-seizewatch-signature", "sha256=0"),
    )
    assert TARGETS["auth_headers"].check(Sample(b"", headers=headers)) == [True, False]
