"""The device registry file: rows PostgreSQL and every later read can take, or the file refused naming why.

The refusals below were found by ``python -m tests.fuzz devicefile``: each row was accepted, and then
PostgreSQL refused it (NUL, a latitude CHECK), the registry could not load it back (a Location out of
range), every read of the device was refused (a district or name longer than a sighting holds), or the
parser crashed (OSError from a 300-character time zone).
"""

from __future__ import annotations

import pytest

from connectors.devicefile import read_devices
from streams.errors import InvalidInput

HEADER = "device_id,source_id,name,district,device_group,kind,address,latitude,longitude,owner,timezone\n"


def rows(*lines: str) -> list[dict[str, object]]:
    return read_devices([HEADER, *lines])


def refusal(*lines: str) -> InvalidInput:
    with pytest.raises(InvalidInput) as caught:
        rows(*lines)
    return caught.value


def test_a_good_file() -> None:
    [gate, checkpoint] = rows(
        "wanda/gate-1-in,lot-wanda,万达 1号入口,331002,wanda,parking_entry,开元路,28.68,121.44,万达,\n",
        "33100200001320000101,kk-taizhou,椒江卡口,331002,kk,checkpoint,,,,交警支队,Asia/Shanghai\n",
    )
    assert (gate["latitude"], gate["longitude"], gate["timezone"]) == (28.68, 121.44, "Asia/Shanghai")
    assert "latitude" not in checkpoint


@pytest.mark.parametrize(
    ("line", "field", "message"),
    [
        # the fuzz's minimal inputs, each accepted before
        ("wanda/gate-1-in,lot-wanda,椒江万达广场\x00停车场,331002,wanda,,,,,,\n", "name", "NUL"),
        ("r-1,r-1,n,331002,r-1,parking_entry,,121.44,28.68,,Asia/Shanghai\n", "latitude", "from -90 to 90"),
        ("r-1,r-1,n,331002,r-1,,,28.68,181,,\n", "longitude", "from -180 to 180"),
        ("r-1,r-1,n,331002,r-1,,,nan,nan,,\n", "latitude", "from -90 to 90"),
        ("r-1,r-1,n,331002,r-1,,,1e400,0,,\n", "latitude", "from -90 to 90"),
        (f"r-1,r-1,n,{'x' * 65},r-1,,,,,,\n", "district", "at most 64"),
        (f"r-1,r-1,{'停' * 257},331002,r-1,,,,,,\n", "name", "at most 256"),
        (f"r-1,r-1,n,331002,r-1,,{'路' * 257},,,,\n", "address", "at most 256"),
        (f"{'d' * 129},r-1,n,331002,r-1,,,,,,\n", "device_id", "at most 128"),
        (f"r-1,r-1,n,331002,r-1,,,,,,{'x' * 300}\n", "timezone", "unknown time zone"),  # was OSError
        ("r-1,r-1,n,331002,r-1,,,,,,Asia\n", "timezone", "unknown time zone"),
    ],
)
def test_rows_the_stores_refuse_are_refused_naming_line_and_column(
    line: str, field: str, message: str
) -> None:
    error = refusal(line)
    assert error.field == field
    assert str(error).startswith(f"{field}: line 2: ")
    assert message in str(error)


def test_a_cell_over_the_csv_field_limit_is_a_refusal_not_a_crash() -> None:
    error = refusal(f"r-1,r-1,{'n' * 200_000},331002,r-1,,,,,,\n")
    assert error.reason == "bad_csv"
