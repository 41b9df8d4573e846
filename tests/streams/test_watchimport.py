"""CSV import parsing: each row accepted or rejected with a reason; bad headers refused up front."""

from __future__ import annotations

import pytest

from streams.errors import InvalidInput
from streams.vehicles import Action, Priority
from streams.watchimport import Rejected, read_rows
from streams.watchstore import NewEntry

GOOD = """plate,case_number,court,action,priority,vehicle
浙J12345,(2024)浙1002执1号,椒江法院,seize,urgent,白色 大众
浙j 54321,(2024)浙1002执2号,椒江法院,,,
浙I12345,(2024)浙1002执3号,椒江法院,seize,normal,
浙J11111,,椒江法院,seize,normal,
浙J22222,(2024)浙1002执5号,椒江法院,tow,normal,
浙J33333,(2024)浙1002执6号,椒江法院,seize,normal,,extra
"""


def test_rows_are_accepted_or_rejected_with_reasons() -> None:
    rows = list(read_rows(GOOD.splitlines(keepends=True)))
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
        list(read_rows([header, "浙J12345,x,y\n"]))
