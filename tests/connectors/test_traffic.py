"""The traffic police's side (一键扣车): the exported list's formats and the validation of their results."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest

from connectors.records import AdapterError
from connectors.traffic_export import COLUMNS, UTF8_BOM, ExportFormat, ordered, render, to_csv, to_json
from connectors.traffic_routes import MAX_RESULTS, encode_result, parse_results, result_of
from streams.traffic import CustodyKind, ResultKind, SeizureRequestV1, SeizureResultV1
from streams.vehicles import PlateColour, Priority

CST = timezone(timedelta(hours=8))


def request(**changes: Any) -> SeizureRequestV1:
    fields: dict[str, Any] = {
        "request_id": uuid.UUID("6f1c2a4e-0000-4000-8000-000000000001"), "plate": "浙J12345",
        "plate_colour": PlateColour.BLUE, "vehicle": "白色 丰田 凯美瑞",
        "case_number": "(2024)浙1002执1234号", "court": "台州市椒江区人民法院", "priority": Priority.URGENT,
        "requested_at": datetime(2026, 11, 1, 9, 0, tzinfo=CST), "valid_until": None,
    }  # fmt: skip
    fields.update(changes)
    return SeizureRequestV1(**fields)


def result(**changes: Any) -> dict[str, Any]:
    item: dict[str, Any] = {
        "result_id": "tp-2026-0001", "request_id": "6f1c2a4e-0000-4000-8000-000000000001",
        "plate": "浙J12345", "result": "seized", "at": "2026-11-23T10:15:00+08:00",
        "place": "椒江区开元路与东海大道交叉口", "district": "331002", "officer": "王警官 (警号 012345)",
        "unit": "台州市公安局交通警察支队椒江大队", "custody_kind": "impound_lot",
        "custody_name": "椒江区车辆扣押场", "custody_address": "椒江区葭沚街道",
    }  # fmt: skip
    item.update(changes)
    return {k: v for k, v in item.items() if v is not None}


def csv_rows(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))


# --- the exported list ------------------------------------------------------------------------------


def test_csv_starts_with_a_bom_and_a_header_of_the_contract_fields() -> None:
    data = to_csv([request()])
    assert data.startswith(UTF8_BOM)
    assert not data[len(UTF8_BOM) :].startswith(UTF8_BOM)
    header, row = csv_rows(data)
    assert tuple(header) == COLUMNS
    assert header[:3] == ["schema_version", "request_id", "plate"]
    assert "court_contact" in header
    values = dict(zip(header, row, strict=True))
    assert values["plate"] == "浙J12345"
    assert values["court"] == "台州市椒江区人民法院"
    assert values["case_number"] == "(2024)浙1002执1234号"
    assert values["vehicle"] == "白色 丰田 凯美瑞"
    assert values["requested_at"] == "2026-11-01T09:00:00+08:00"
    assert values["valid_until"] == values["court_contact"] == ""  # null is an empty cell


def test_csv_chinese_is_utf8_not_the_local_code_page() -> None:
    data = to_csv([request()])
    assert "台州市椒江区人民法院".encode() in data
    with pytest.raises(UnicodeDecodeError):
        data[len(UTF8_BOM) :].decode("ascii")


def test_csv_of_nothing_is_the_header_alone() -> None:
    assert csv_rows(to_csv([])) == [list(COLUMNS)]


def test_csv_keeps_formula_like_text_inert_for_spreadsheets() -> None:
    data = to_csv([request(vehicle='=HYPERLINK("http://x")', court_contact="+8657688888888")])
    _, row = csv_rows(data)
    values = dict(zip(COLUMNS, row, strict=True))
    assert values["vehicle"] == '\'=HYPERLINK("http://x")'
    assert values["court_contact"] == "'+8657688888888"


def test_json_is_an_array_that_round_trips_into_requests() -> None:
    requests = [
        request(),
        request(
            request_id=uuid.uuid4(), plate="浙AD12345", plate_colour=PlateColour.GREEN,
            priority=Priority.NORMAL, valid_until=datetime(2027, 5, 1, tzinfo=UTC),
            court_contact="0576-88888888",
        ),
    ]  # fmt: skip
    data = to_json(requests)
    decoded = orjson.loads(data)
    assert isinstance(decoded, list)
    assert [SeizureRequestV1.model_validate(item) for item in decoded] == requests
    assert "台州市椒江区人民法院".encode() in data  # not \u-escaped


def test_render_picks_the_format() -> None:
    assert render([request()], ExportFormat.CSV).startswith(UTF8_BOM)
    assert render([request()], ExportFormat.JSON).startswith(b"[")


def test_requests_are_ordered_by_court_then_plate() -> None:
    a = request(court="天台县人民法院", plate="浙J00001", request_id=uuid.uuid4())
    b = request(court="台州市椒江区人民法院", plate="浙J99999", request_id=uuid.uuid4())
    c = request(court="台州市椒江区人民法院", plate="浙J11111", request_id=uuid.uuid4())
    assert [r.plate for r in ordered([a, b, c])] == ["浙J11111", "浙J99999", "浙J00001"]


# --- results the traffic police post ----------------------------------------------------------------


def test_a_valid_seizure_result() -> None:
    parsed = result_of(result(), 0)
    assert isinstance(parsed, SeizureResultV1)
    assert parsed.result is ResultKind.SEIZED
    assert parsed.custody_kind is CustodyKind.IMPOUND_LOT
    assert SeizureResultV1.model_validate_json(encode_result(parsed)) == parsed


@pytest.mark.parametrize(
    ("item", "reason", "field", "says"),
    [
        (result(custody_kind=None, custody_name=None), "invalid_field", "results[3].custody_kind", "custody"),
        (result(custody_name=None), "invalid_field", "results[3].custody_name", "custody"),
        (result(result="towed"), "invalid_field", "results[3].result", "stopped"),
        (result(at="2026-11-23T10:15:00"), "invalid_field", "results[3].at", "timezone"),
        (result(request_id=None), "missing_field", "results[3].request_id", "required"),
        (result(request_id="not-a-uuid"), "invalid_field", "results[3].request_id", "uuid"),
        (result(custody_kind="garage"), "invalid_field", "results[3].custody_kind", "impound_lot"),
        (result(officer="  "), "invalid_field", "results[3].officer", "at least 1"),
        (result(colour="blue"), "invalid_field", "results[3].colour", "not permitted"),
    ],
)
def test_an_invalid_result_names_the_field(item: dict[str, Any], reason: str, field: str, says: str) -> None:
    error = result_of(item, 3)
    assert isinstance(error, AdapterError)
    assert (error.reason, error.field, error.index) == (reason, field, 3)
    assert says.lower() in str(error).lower()
    assert str(error).startswith(f"{field}: ")


def test_stopped_and_not_found_need_no_custody() -> None:
    for kind in ("stopped", "not_found"):
        parsed = result_of(result(result=kind, custody_kind=None, custody_name=None), 0)
        assert isinstance(parsed, SeizureResultV1)


def test_every_problem_of_an_item_is_in_the_message() -> None:
    error = result_of(result(result="towed", at="yesterday", place=None), 0)
    assert isinstance(error, AdapterError)
    message = str(error)
    assert "results[0].result" in message
    assert "at:" in message
    assert "place:" in message


def test_a_batch_is_judged_item_by_item_in_order() -> None:
    items = parse_results({"results": [result(), result(result="towed"), result(result_id="tp-2")]})
    assert [type(i).__name__ for i in items] == ["SeizureResultV1", "AdapterError", "SeizureResultV1"]


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        ([result()], "invalid_json_content"),
        ({"records": [result()]}, "missing_field"),
        ({"results": []}, "missing_field"),
        ({"results": {"0": result()}}, "missing_field"),
        ({"results": [result(result_id=f"r{i}") for i in range(MAX_RESULTS + 1)]}, "too_many_records"),
    ],
)
def test_a_payload_that_is_no_batch_is_refused_whole(document: Any, reason: str) -> None:
    with pytest.raises(AdapterError) as caught:
        parse_results(document)
    assert (caught.value.reason, caught.value.field) == (reason, "results")


def test_a_full_batch_is_accepted() -> None:
    items = parse_results({"results": [result(result_id=f"r{i}") for i in range(MAX_RESULTS)]})
    assert all(isinstance(i, SeizureResultV1) for i in items)


# --- what the pager's PostgreSQL refuses, refused at the door (found by python -m tests.fuzz) ----------


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        # traffic_results: a NUL in a text field was accepted and published, for the pager to write
        # into PostgreSQL text and jsonb columns, which refuse it.
        ({"note": "a\x00b"}, "results[2].note"),
        ({"place": "椒江区\x00"}, "results[2].place"),
        ({"custody_name": "\x00"}, "results[2].custody_name"),
        # asyncpg sends timestamptz in UTC: this time has none (OverflowError)
        ({"at": "0001-01-01T00:00:00+08:00"}, "results[2].at"),
    ],
)
def test_a_result_the_pager_cannot_store_is_refused_naming_the_field(
    changes: dict[str, Any], field: str
) -> None:
    error = result_of(result(**changes), 2)
    assert isinstance(error, AdapterError)
    assert (error.reason, error.field, error.index) == ("invalid_field", field, 2)
