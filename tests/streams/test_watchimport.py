"""CSV import parsing: each row accepted or rejected with a reason; bad headers refused up front; Chinese
headers and values, plain dates, encodings and the rejects file."""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from streams.errors import InvalidInput
from streams.vehicles import Action, PlateColour, Priority
from streams.watchimport import (
    REASON_COLUMN,
    CsvRows,
    Rejected,
    decode_csv,
    parse_validity,
    read_rows,
    write_rejects,
)
from streams.watchstore import NewEntry

SHANGHAI = ZoneInfo("Asia/Shanghai")
URUMQI = ZoneInfo("Asia/Urumqi")


def read(text: str, court_zones: dict[str, ZoneInfo] | None = None) -> CsvRows:
    return read_rows(text.splitlines(keepends=True), zone=SHANGHAI, court_zones=court_zones)


GOOD = """plate,case_number,court,action,priority,vehicle
浙J12345,(2024)浙1002执1号,椒江法院,seize,urgent,白色 大众
浙j 54321,(2024)浙1002执2号,椒江法院,,,
浙I12345,(2024)浙1002执3号,椒江法院,seize,normal,
浙J11111,,椒江法院,seize,normal,
浙J22222,(2024)浙1002执5号,椒江法院,tow,normal,
浙J33333,(2024)浙1002执6号,椒江法院,seize,normal,,extra
"""


def test_rows_are_accepted_or_rejected_with_reasons() -> None:
    rows = [(row.line, row.result) for row in read(GOOD).rows]
    assert [line for line, _ in rows] == [2, 3, 4, 5, 6, 7]
    first, second = rows[0][1], rows[1][1]
    assert isinstance(first, NewEntry)
    assert (first.plate, first.action, first.priority) == ("浙J12345", Action.SEIZE, Priority.URGENT)
    assert isinstance(second, NewEntry)
    assert (second.plate, second.action, second.priority) == ("浙J54321", Action.SEIZE, Priority.NORMAL)
    rejected = {line: row for line, row in rows if isinstance(row, Rejected)}
    assert rejected[4].reason == "invalid_plate"
    assert "letter" in rejected[4].message or "authority" in rejected[4].message
    assert rejected[5].reason == "invalid_case_number"
    assert rejected[6].reason == "invalid_action"
    assert rejected[7].reason == "extra_cells"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("plate,court\n", "missing required column(s) ['case_number']"),
        ("plate,case_number,court,colour\n", "unknown"),
    ],
)
def test_bad_header_is_refused_before_any_row(header: str, expected: str) -> None:
    with pytest.raises(
        InvalidInput, match=expected.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")
    ):
        read_rows([header, "浙J12345,x,y\n"], zone=SHANGHAI)


def entries(rows: CsvRows) -> list[NewEntry]:
    found = [row.result for row in rows.rows]
    assert all(isinstance(e, NewEntry) for e in found), found
    return [e for e in found if isinstance(e, NewEntry)]


def test_a_plain_date_is_a_whole_day_in_the_courts_zone() -> None:
    rows = read(
        "plate,case_number,court,valid_from,valid_until\n"
        "浙J12345,(2027)浙1002执1号,椒江法院,2027-01-01,2027-12-31\n"
        "浙J12346,(2027)浙1002执2号,椒江法院,2027/1/1,2027/12/31\n"  # as Excel rewrites the dates
        "新A12345,(2027)新0102执3号,乌鲁木齐天山法院,,2027-12-31\n"
    )
    first, excel, urumqi = entries(rows)
    assert first.valid_from == datetime(2026, 12, 31, 16, tzinfo=UTC)  # 2027-01-01 00:00 +08:00
    assert first.valid_until == datetime(2027, 12, 31, 16, tzinfo=UTC)  # end of 12-31: 2028-01-01 00:00 +08
    assert (excel.valid_from, excel.valid_until) == (first.valid_from, first.valid_until)
    assert urumqi.valid_until == datetime(2027, 12, 31, 16, tzinfo=UTC)  # default zone when none known
    zoned = entries(read("plate,case_number,court,valid_until\n新A12345,x,乌鲁木齐天山法院,2027-12-31\n",
                         court_zones={"乌鲁木齐天山法院": URUMQI}))  # fmt: skip
    assert zoned[0].valid_until == datetime(2027, 12, 31, 18, tzinfo=UTC)  # the court's own zone, +06:00


def test_iso_times_stay_accepted_and_a_time_without_offset_is_local() -> None:
    assert parse_validity("2027-06-30T18:00:00+00:00", "valid_until", SHANGHAI) == datetime(
        2027, 6, 30, 18, tzinfo=UTC
    )
    assert parse_validity("2027-06-30 18:00", "valid_until", SHANGHAI) == datetime(
        2027, 6, 30, 10, tzinfo=UTC
    )
    with pytest.raises(ValueError, match="2027-02-30"):
        parse_validity("2027-02-30", "valid_until", SHANGHAI)


def test_a_bad_date_names_the_row_column_and_value() -> None:
    rows = read("车牌号,案号,法院,失效日期\n浙J12345,(2027)浙1002执1号,椒江法院,2027年12月31\n").rows
    rejected = rows[0].result
    assert isinstance(rejected, Rejected)
    assert (rejected.line, rejected.reason) == (2, "invalid_valid_until")
    assert "失效日期" in rejected.message
    assert "2027年12月31" in rejected.message


def test_chinese_headers_and_values() -> None:
    rows = read(
        "车牌号,车牌颜色,案号,法院,措施,优先级,车辆,生效日期,失效日期,备注\n"
        "浙J12345,蓝,(2027)浙1002执1号,椒江法院,扣押,紧急,白色 大众,2027-01-01,2027-12-31,首次\n"
        "浙J12346,黄色,(2027)浙1002执2号,椒江法院,查找,普通,,,,\n"
        "浙J12347,绿,(2027)浙1002执3号,椒江法院,活封,低,,,,\n"
        "浙J12348,,(2027)浙1002执4号,椒江法院,Seize,URGENT,,,,\n"
    )
    seize, locate, soft, english = entries(rows)
    assert (seize.action, seize.priority, seize.plate_colour) == (
        Action.SEIZE,
        Priority.URGENT,
        PlateColour.BLUE,
    )
    assert (seize.vehicle, seize.note) == ("白色 大众", "首次")
    assert (locate.action, locate.priority, locate.plate_colour) == (
        Action.LOCATE, Priority.NORMAL, PlateColour.YELLOW,
    )  # fmt: skip
    assert (soft.action, soft.priority, soft.plate_colour) == (
        Action.SOFT_SEAL,
        Priority.LOW,
        PlateColour.GREEN,
    )
    assert (english.action, english.priority) == (Action.SEIZE, Priority.URGENT)
    bad = read("车牌号,案号,法院,措施\n浙J12345,x,椒江法院,拖走\n").rows[0].result
    assert isinstance(bad, Rejected)
    assert "措施" in bad.message
    assert "拖走" in bad.message


def test_a_column_named_twice_is_refused() -> None:
    with pytest.raises(InvalidInput, match="given twice"):
        read_rows(["plate,车牌号,case_number,court\n"], zone=SHANGHAI)


def test_excel_encodings_are_read_on_purpose() -> None:
    text = "车牌号,案号,法院\n浙J12345,(2027)浙1002执1号,椒江法院\n"
    assert decode_csv(text.encode("gbk")) == (text, "gb18030")
    assert decode_csv(text.encode("utf-8-sig")) == (text, "utf-8-sig")
    assert decode_csv(text.encode("utf-8")) == (text, "utf-8-sig")
    assert decode_csv(text.encode("gbk"), "gbk") == (text, "gbk")
    with pytest.raises(InvalidInput, match="not utf-8"):
        decode_csv(text.encode("gbk"), "utf-8")
    with pytest.raises(InvalidInput, match="unknown encoding"):
        decode_csv(b"x", "klingon")


def test_the_rejects_file_holds_every_rejected_row_and_imports_again(tmp_path: Path) -> None:
    bad = [f"浙I{i:05d},(2027)浙1002执{i}号,椒江法院,扣押\n" for i in range(120)]  # I is never on a plate
    rows = read("车牌号,案号,法院,措施\n" + "".join(bad) + "浙J12345,(2027)浙1002执9号,椒江法院,扣押,多余\n")
    rejected = [(row, row.result) for row in rows.rows if isinstance(row.result, Rejected)]
    path = tmp_path / "rejects.csv"
    assert write_rejects(path, rows.header, rejected) == 121
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # the BOM: Excel shows the Chinese text
    table = list(csv.reader(raw.decode("utf-8-sig").splitlines()))
    assert table[0] == ["车牌号", "案号", "法院", "措施", REASON_COLUMN]
    assert len(table) == 122
    assert table[1][:4] == ["浙I00000", "(2027)浙1002执0号", "椒江法院", "扣押"]
    assert table[1][4].startswith("line 2: plate")
    assert table[121][4].startswith("line 122: more cells")
    assert table[121][5] == "多余"
    # fixed in the spreadsheet, the file imports as it is: the reason column is ignored, a new one replaces it
    fixed = path.read_text(encoding="utf-8-sig").replace("浙I", "浙J")
    again = read_rows(fixed.splitlines(keepends=True), zone=SHANGHAI)
    assert sum(isinstance(row.result, NewEntry) for row in again.rows) == 120
    write_rejects(path, again.header, [(r, r.result) for r in again.rows if isinstance(r.result, Rejected)])
    assert path.read_text(encoding="utf-8-sig").splitlines()[0] == f"车牌号,案号,法院,措施,{REASON_COLUMN}"


def test_blank_rows_excel_leaves_are_skipped() -> None:
    rows = read("plate,case_number,court\n浙J12345,x,椒江法院\n,,\n\n")
    assert len(rows.rows) == 1
