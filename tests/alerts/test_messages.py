"""SMS text: segment counting, rendering within the segment budget, reply codes and reply parsing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.messages import (
    CODE_ALPHABET,
    CODE_SPACE,
    PLATE_COLOURS,
    SHORTENING_ORDER,
    URGENT_MARK,
    Reply,
    StopStart,
    is_reply_code,
    parse_reply,
    render_alert,
    render_escalated,
    render_morning,
    render_taken,
    render_update,
    reply_code,
    segments,
)
from streams.vehicles import PlateColour

SEEN = datetime(2024, 11, 22, 18, 51, tzinfo=UTC)  # 11-23 02:51 in Shanghai
PLACE = "椒江万达广场停车场1号入口"
CASE = "(2024)浙1002执1201号"


def alert(**overrides: object) -> str:
    arguments: dict[str, object] = {
        "plate": "浙J12345",
        "place": PLACE,
        "observed_at": SEEN,
        "case_number": CASE,
        "action": "seize",
        "match_kind": "exact",
        "score": 1.0,
        "reply_code": "K7Q",
    }
    return render_alert(**{**arguments, **overrides})  # type: ignore[arg-type]  # test helper


# ------------------------------------------------------------------------------------------- segments


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", 1),
        ("a" * 160, 1),
        ("a" * 161, 2),
        ("a" * 306, 2),
        ("a" * 307, 3),
        ("€" * 80, 1),  # extension characters take two septets
        ("€" * 81, 2),
        ("a" * 152 + "€", 1),
        ("a" * 159 + "€", 2),
        ("中" * 70, 1),
        ("中" * 71, 2),
        ("中" * 134, 2),
        ("中" * 135, 3),
        ("a" * 69 + "中", 1),  # one character outside GSM-7 turns the whole text to UCS-2
        ("a" * 70 + "中", 2),
        ("😀" * 35, 1),  # an emoji is two UTF-16 units
        ("😀" * 36, 2),
        ("中" * 66 + "😀" + "中" * 67, 3),  # a surrogate pair is never split across parts
        ("Hello, World! @£$", 1),
    ],
)
def test_segments(text: str, expected: int) -> None:
    assert segments(text) == expected


# ------------------------------------------------------------------------------------------ rendering


def test_the_alert_reads_as_officers_expect() -> None:
    assert alert() == (
        "【执行查控 K7Q】浙J12345 11-23 02:51 出现在椒江万达广场停车场1号入口。"
        "案号(2024)浙1002执1201号，请扣押。回复1 K7Q接手，2 K7Q非本人"
    )


def test_a_non_exact_match_says_so_with_its_score() -> None:
    text = alert(match_kind="ocr", score=0.8, action="locate", vehicle="蓝色 比亚迪汉EV")

    assert "疑似，匹配度0.80，需核对" in text
    assert "仅查找位置，勿扣押" in text
    assert "蓝色 比亚迪汉EV" in text
    assert "疑似" not in alert()


def test_time_is_shown_in_the_officers_time_zone() -> None:
    assert "11-22 18:51" in alert(tz=UTC)
    assert "11-23 02:51" in alert(observed_at=SEEN.astimezone(timezone(timedelta(hours=-5))))
    with pytest.raises(ValueError, match="aware"):
        alert(observed_at=datetime(2024, 11, 23, 2, 51))  # noqa: DTZ001  # naive on purpose


def test_a_long_place_is_shortened_first() -> None:
    text = alert(place="椒江区" + "万达广场地下停车场" * 20, vehicle="白色 大众帕萨特")

    assert segments(text) == 2
    assert "…" in text
    assert CASE in text
    assert "白色 大众帕萨特" in text
    assert "回复1 K7Q接手，2 K7Q非本人" in text


def test_one_segment_keeps_plate_time_code_and_some_of_the_place() -> None:
    text = alert(max_segments=1, vehicle="白色 大众帕萨特", match_kind="province", score=0.9)

    assert segments(text) == 1
    assert text.startswith("【执行查控 K7Q】浙J12345")
    assert "11-23 02:51" in text
    assert "出现在椒江万达广场" in text


def test_escalation_names_who_did_not_answer() -> None:
    text = render_escalated(
        previous="张伟", reason="no_answer", plate="浙J12345", place=PLACE, observed_at=SEEN,
        case_number=CASE, action="seize", match_kind="exact", score=1.0, reply_code="K7Q",
    )  # fmt: skip

    assert text.startswith("【执行查控 K7Q】张伟未应答，转您处理：浙J12345 11-23 02:51")
    assert segments(text) <= 2


def test_updates() -> None:
    left = render_update(
        event="left", plate="浙J12345", place="椒江万达广场停车场", observed_at=SEEN, reply_code="K7Q"
    )
    again = render_update(
        event="seen_again",
        plate="浙J12345",
        place="路桥银座",
        observed_at=SEEN,
        reply_code="K7Q",
        taken=False,
    )

    assert (
        left
        == "【执行查控 K7Q】更新：浙J12345 11-23 02:51 驶离椒江万达广场停车场。回复3 K7Q已扣押，4 K7Q未找到"
    )
    assert "再次出现在路桥银座" in again
    assert "回复1 K7Q接手" in again


def test_a_malformed_code_or_budget_is_refused() -> None:
    with pytest.raises(ValueError, match="reply code"):
        alert(reply_code="K0Q")
    with pytest.raises(ValueError, match="max_segments"):
        alert(max_segments=0)


text_pieces = st.text(
    alphabet=st.sampled_from("椒江万达广场停车场路桥区入口出口号楼ABCDEFGH0123456789()（）-·— 😀€"),
    max_size=400,
)
plates = st.sampled_from(["浙J12345", "浙JD80123", "浙A12345D", "粤B1234港", "京A1234警", "沪A66G88"])


@settings(max_examples=300, deadline=None)
@given(
    place=text_pieces,
    case=text_pieces,
    vehicle=st.none() | text_pieces,
    plate=plates,
    kind=st.sampled_from(["exact", "province", "ocr", "ocr_province"]),
    action=st.sampled_from(["seize", "locate"]),
    n=st.integers(min_value=0, max_value=10 * CODE_SPACE),
    max_segments=st.integers(min_value=1, max_value=3),
)
def test_every_alert_fits_and_keeps_plate_time_and_code(
    place: str, case: str, vehicle: str | None, plate: str, kind: str, action: str, n: int, max_segments: int
) -> None:
    code = reply_code(n)
    common = {
        "plate": plate, "place": place, "observed_at": SEEN, "case_number": case, "action": action,
        "match_kind": kind, "score": 0.75, "reply_code": code, "vehicle": vehicle,
        "max_segments": max_segments,
    }  # fmt: skip
    texts = [
        render_alert(**common),  # type: ignore[arg-type]
        render_escalated(previous="欧阳建国", reason="unreachable", **common),  # type: ignore[arg-type]
        render_update(
            event="left",
            plate=plate,
            place=place,
            observed_at=SEEN,
            reply_code=code,
            max_segments=max_segments,
        ),
    ]
    for text in texts:
        assert segments(text) <= max_segments
        assert text.startswith(f"【执行查控 {code}】")
        assert plate in text
        assert "11-23 02:51" in text


@settings(max_examples=100, deadline=None)
@given(place_length=st.integers(0, 300), case_length=st.integers(0, 120))
def test_long_place_names_and_case_numbers_stay_within_two_segments(
    place_length: int, case_length: int
) -> None:
    place = ("椒江万达广场停车场" * 40)[:place_length]
    case = ("(2024)浙1002执" + "1" * 200)[:case_length]

    text = alert(place=place, case_number=case, vehicle="白色 大众帕萨特")

    assert segments(text) <= 2
    assert "回复1 K7Q接手" in text  # the long form's instructions always fit in two segments


# The longest real names the texts must carry (a lot's exit, a street address, a court, a resumed case's
# sub-case number) and the longest vehicle description of the demo's kind.
LONG_PLACE = "台州市椒江区万达广场地下停车场B2层东北角3号出入口"
LONG_ADDRESS = "浙江省台州市椒江区市府大道与白云山南路交叉口东南角万达广场"
LONG_COURT = "浙江省台州市椒江区人民法院"
LONG_CASE = "(2026)浙1002执恢12345号之一"
LONG_VEHICLE = "白色 大众帕萨特"


def test_an_urgent_alert_carries_the_marker_the_colour_and_the_address() -> None:
    text = alert(urgent=True, plate_colour=PlateColour.BLUE, address="椒江区工人西路558号")

    assert text == (
        "【紧急】【执行查控 K7Q】蓝牌浙J12345 11-23 02:51 "
        "出现在椒江万达广场停车场1号入口（椒江区工人西路558号）。"
        "案号(2024)浙1002执1201号，请扣押。回复1 K7Q接手，2 K7Q非本人"
    )
    assert segments(text) == 2


@pytest.mark.parametrize("colour", list(PlateColour))
def test_every_known_plate_colour_is_printed_and_unknown_is_not(colour: PlateColour) -> None:
    text = alert(plate_colour=colour)

    if colour is PlateColour.UNKNOWN:
        assert text == alert()
    else:
        assert f"{PLATE_COLOURS[colour]}浙J12345" in text
    assert URGENT_MARK not in text


def test_the_longest_real_names_fit_two_segments_dropping_the_address_first() -> None:
    text = alert(
        urgent=True, plate_colour=PlateColour.GREEN, place=LONG_PLACE, address=LONG_ADDRESS,
        case_number=LONG_CASE, vehicle=LONG_VEHICLE, match_kind="province", score=0.9,
    )  # fmt: skip

    assert segments(text) <= 2
    assert text.startswith("【紧急】【执行查控 K7Q】绿牌浙J12345")
    assert "（浙江" not in text  # the address went first, then the place lost its last characters …
    assert "出现在台州市椒江区万达广场地下停车场B2层东北角" in text
    assert f"{LONG_VEHICLE}，案号{LONG_CASE}，请扣押。" in text  # … so the vehicle and the case stay whole
    assert "请扣押。" in text
    assert "K7Q接手" in text


def test_an_escalation_from_a_court_with_the_longest_names_keeps_the_essentials() -> None:
    text = render_escalated(
        previous=f"{LONG_COURT}执行局值班人员", reason="unreachable", plate="浙J12345", place=LONG_PLACE,
        address=LONG_ADDRESS, observed_at=SEEN, case_number=LONG_CASE, action="locate",
        match_kind="ocr", score=0.8, reply_code="K7Q", vehicle=LONG_VEHICLE, urgent=True,
        plate_colour=PlateColour.YELLOW_GREEN,
    )  # fmt: skip

    assert segments(text) <= 2
    assert text.startswith("【紧急】【执行查控 K7Q】")
    assert "浙J12345" in text
    assert "11-23 02:51" in text
    assert "仅查找" in text  # the action, at least in its short form
    assert "（浙江" not in text  # the address went before the place was shortened
    assert "台州市椒江区万达广场" in text


def test_a_sub_case_number_keeps_its_suffix_when_shortened() -> None:
    # Longer and longer names of who was paged before push the case number to its short form.
    def escalated(previous: str) -> str:
        return render_escalated(
            previous=previous, plate="浙J12345", place=PLACE, observed_at=SEEN, case_number=LONG_CASE,
            action="seize", match_kind="ocr", score=0.8, reply_code="K7Q", vehicle=LONG_VEHICLE,
        )  # fmt: skip

    texts = [escalated("欧" * n) for n in range(40)]

    shortened = [t for t in texts if "案号(2026)…" in t]
    assert shortened
    assert all("案号(2026)…恢12345号之一，" in t for t in shortened)


def test_the_shortening_order_never_touches_marker_plate_code_or_action() -> None:
    shortened = {part for part, _ in SHORTENING_ORDER}

    assert not shortened & {"urgent", "plate", "code", "time"}
    assert ("action", 1) in SHORTENING_ORDER  # the short form of the action, never none
    assert ("address", 0) in SHORTENING_ORDER
    assert SHORTENING_ORDER.index(("address", 0)) < SHORTENING_ORDER.index(("place", 8))
    assert SHORTENING_ORDER[-1] == ("place", 0)


@settings(max_examples=300, deadline=None)
@given(
    place_length=st.integers(0, 60),
    address_length=st.integers(0, 60),
    case=st.sampled_from(["", CASE, LONG_CASE]),
    vehicle=st.sampled_from([None, LONG_VEHICLE]),
    previous=st.sampled_from([None, "张伟", f"{LONG_COURT}执行局值班人员"]),
    kind=st.sampled_from(["exact", "province"]),
    urgent=st.booleans(),
    colour=st.sampled_from(list(PlateColour)),
    max_segments=st.integers(1, 2),
)
def test_details_go_in_the_documented_order(
    place_length: int, address_length: int, case: str, vehicle: str | None, previous: str | None,
    kind: str, urgent: bool, colour: PlateColour, max_segments: int,
) -> None:  # fmt: skip
    place = (LONG_PLACE * 3)[:place_length]
    address = (LONG_ADDRESS * 3)[:address_length]
    common: dict[str, object] = {
        "plate": "浙J12345", "place": place, "address": address, "observed_at": SEEN, "case_number": case,
        "action": "seize", "match_kind": kind, "score": 0.9, "reply_code": "K7Q", "vehicle": vehicle,
        "urgent": urgent, "plate_colour": colour, "max_segments": max_segments,
    }  # fmt: skip
    text = (
        render_alert(**common)  # type: ignore[arg-type]
        if previous is None
        else render_escalated(previous=previous, **common)  # type: ignore[arg-type]
    )

    assert segments(text) <= max_segments
    assert text.startswith((URGENT_MARK if urgent else "") + "【执行查控 K7Q】")
    assert "浙J12345" in text
    assert "11-23 02:51" in text
    assert "扣押。" in text
    address_shown = bool(address) and f"（{address[:3]}" in text
    place_whole = f"出现在{place}" in text
    if address_shown:  # the address is the first to go: while any of it is there, all else is whole
        assert place_whole
        assert not vehicle or vehicle in text
        assert not case or case in text
    if place and not place_whole:  # the place is shortened only once the address is gone
        assert not address_shown
    if vehicle and vehicle not in text:  # the vehicle goes only once the place is down to its minimum
        assert not address_shown
    colour_word = PLATE_COLOURS.get(colour)
    if colour_word and colour_word not in text:  # the colour goes only after all of these
        assert not vehicle or vehicle not in text
        assert not case or "案号" not in text
        assert "（疑似）" in text or kind == "exact"
    if "请扣押" not in text:  # the action is shortened only once the colour is gone
        assert not colour_word or colour_word not in text


# ---------------------------------------------------------------------------------------- reply codes


def test_codes_are_three_unambiguous_characters_starting_with_a_letter() -> None:
    codes = [reply_code(n) for n in range(CODE_SPACE)]

    assert len(set(codes)) == CODE_SPACE
    assert all(len(code) == 3 and code[0].isalpha() and is_reply_code(code) for code in codes)
    assert not set("".join(codes)) & set("0O1IL")
    assert set("".join(codes)) == set(CODE_ALPHABET)
    assert reply_code(CODE_SPACE + 7) == reply_code(7)


def test_consecutive_codes_differ_in_every_character() -> None:
    for n in range(200):
        a, b = reply_code(n), reply_code(n + 1)
        assert all(x != y for x, y in zip(a, b, strict=True)), (a, b)


def test_a_negative_number_has_no_code() -> None:
    with pytest.raises(ValueError, match="≥ 0"):
        reply_code(-1)


# -------------------------------------------------------------------------------------------- replies


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1 K7Q", Reply("take", "K7Q")),
        ("1 k7q", Reply("take", "K7Q")),
        ("１K7Q", Reply("take", "K7Q")),
        ("１ｋ７ｑ", Reply("take", "K7Q")),
        ("1k7q", Reply("take", "K7Q")),
        ("k7q 1", Reply("take", "K7Q")),
        ("K7Q1", Reply("take", "K7Q")),
        ("  1，K7Q。", Reply("take", "K7Q")),
        ("1\u3000K7Q", Reply("take", "K7Q")),  # ideographic space
        ("2 K7Q", Reply("decline", "K7Q")),
        ("3-K7Q", Reply("seized", "K7Q")),
        ("4 K7Q", Reply("not_found", "K7Q")),
        ("1 K7Q 接手", Reply("take", "K7Q")),
        ("３　ｋ７ｑ 已扣押", Reply("seized", "K7Q")),
        ("2 A22", Reply("decline", "A22")),  # a code ending in a digit
        ("A222", Reply("decline", "A22")),
        ("STOP", StopStart("stop")),
        ("stop", StopStart("stop")),
        ("退订", StopStart("stop")),
        ("TD", StopStart("stop")),
        ("Unsubscribe.", StopStart("stop")),
        ("START", StopStart("start")),
        ("unstop", StopStart("start")),
        # Anything else is not an answer.
        ("1", None),
        ("K7Q", None),
        ("5 K7Q", None),
        ("0 K7Q", None),
        ("1 K7O", None),  # O is never in a code
        ("1 KQ", None),
        ("1 K7QQ", None),
        ("12 K7Q", None),
        ("1 K7Q 2", None),
        ("1 K7Q 非本人", None),  # the words contradict the digit
        ("1K7Q 不是我", None),
        ("好的", None),
        ("", None),
        ("浙J12345", None),
        # Where a seized vehicle is kept: at the seizure, or later with 存.
        ("3 K7Q 椒江区扣押场", Reply("seized", "K7Q", "椒江区扣押场")),
        ("３ ｋ７ｑ：已扣押，存放地点：椒江区 扣押场。", Reply("seized", "K7Q", "椒江区 扣押场")),
        ("3 K7Q 扣押场A", Reply("seized", "K7Q", "扣押场A")),  # a place that starts like the word
        ("3 K7Q 2号库", Reply("seized", "K7Q", "2号库")),
        ("存 K7Q 台州某拖车保管公司", Reply("custody", "K7Q", "台州某拖车保管公司")),
        ("存k7q台州某拖车保管公司", Reply("custody", "K7Q", "台州某拖车保管公司")),
        ("存 K7Q 存放：A区3号", Reply("custody", "K7Q", "A区3号")),
        ("3 K7Q 已扣押", Reply("seized", "K7Q")),  # no place
        ("存 K7Q", None),  # 存 always names a place
        ("存 K7Q 。", None),
        ("3 K7Q 4", None),  # two answers, no place
        ("3 K7Q 未找到了", None),
        ("3 K7QQ 椒江", None),
        ("存 K7O 椒江", None),
        ("1 K7Q 椒江区扣押场", None),  # only a seizure names a place
        ("K7Q 存 椒江", None),  # the command comes first
    ],
)
def test_parse_reply(text: str, expected: Reply | StopStart | None) -> None:
    assert parse_reply(text) == expected


@settings(max_examples=200, deadline=None)
@given(n=st.integers(0, CODE_SPACE - 1), digit=st.sampled_from("1234"), reverse=st.booleans())
def test_every_code_round_trips_in_both_orders(n: int, digit: str, reverse: bool) -> None:
    code = reply_code(n)
    text = f"{code.lower()} {digit}" if reverse else f"{digit}{code}"

    reply = parse_reply(text)

    assert isinstance(reply, Reply)
    assert reply.code == code
    assert reply.command == {"1": "take", "2": "decline", "3": "seized", "4": "not_found"}[digit]


@pytest.mark.parametrize(
    ("taker", "role", "over_station", "expected"),
    [
        ("周婷", "执行法官", False, "【执行查控 K7Q】浙J12345 已由周婷(执行法官)接手，无需处理。"),
        ("周婷", "执行法官", True, "【执行查控 K7Q】浙J12345 已由周婷(执行法官)从派出所接手，请配合交接。"),
        ("白云派出所值班室", None, False, "【执行查控 K7Q】浙J12345 已由白云派出所值班室接手，无需处理。"),
    ],
)
def test_render_taken(taker: str, role: str | None, over_station: bool, expected: str) -> None:
    text = render_taken(plate="浙J12345", taker=taker, role=role, reply_code="K7Q", over_station=over_station)
    assert text == expected
    assert segments(text) == 1


def test_render_taken_fits_one_sms_whatever_the_name() -> None:
    text = render_taken(
        plate="浙J12345", taker="长" * 80, role="执行法官", reply_code="K7Q", over_station=True
    )
    assert segments(text) == 1
    assert text.startswith("【执行查控 K7Q】浙J12345 已由长")
    assert text.endswith("…从派出所接手，请配合交接。")
    assert "执行法官" not in text  # the role goes first


# ------------------------------------------------------------------------------ the night and the morning


def test_the_station_is_asked_to_hold_the_vehicle_for_the_court() -> None:
    text = alert(action="hold")
    assert "请控制车辆，留置待法院接手。回复1 K7Q接手，2 K7Q非本人" in text
    assert "扣押" not in text
    squeezed = alert(action="hold", vehicle="白色 大众帕萨特", address="长" * 60, match_kind="ocr", score=0.8)
    assert segments(squeezed) <= 2
    assert "留置待法院接手" in squeezed  # its short form, at least


def morning(**overrides: object) -> str:
    arguments: dict[str, object] = {
        "overnight": "held",
        "holder": "椒江区白云派出所",
        "plate": "浙J12345",
        "place": PLACE,
        "observed_at": SEEN,
        "case_number": CASE,
        "match_kind": "exact",
        "score": 1.0,
        "reply_code": "K7Q",
    }
    return render_morning(**{**arguments, **overrides})  # type: ignore[arg-type]  # test helper


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({}, "案号(2024)浙1002执1201号，已由椒江区白云派出所控制。请接手。回复1 K7Q接手"),
        (
            {"overnight": "seized", "custody": "椒江区扣押场"},
            "已由椒江区白云派出所扣押，存放于椒江区扣押场。请接手。回复1 K7Q接手",
        ),
        (
            {"overnight": "seized"},
            "已由椒江区白云派出所扣押，存放地点未录。请接手。回复1 K7Q接手",
        ),  # custody not recorded
        ({"overnight": "not_found"}, "案号(2024)浙1002执1201号，椒江区白云派出所未找到该车。"),
        (
            {"overnight": "left", "holder": None, "left_at": SEEN + timedelta(hours=1)},
            "11-23 03:51已驶离。请扣押。回复1 K7Q接手，2 K7Q非本人",
        ),
    ],
)
def test_render_morning_says_what_happened_overnight(overrides: dict[str, object], expected: str) -> None:
    text = morning(**overrides)
    assert text.startswith("【执行查控 K7Q】浙J12345 11-23 02:51 出现在椒江万达广场停车场1号入口。")
    assert text.endswith(expected)
    assert segments(text) <= 2
    if overrides.get("overnight") != "left":
        assert "请扣押" not in text  # a hand-over or news, never a fresh seizure


def test_render_morning_keeps_the_custody_and_the_take_over_code_when_space_runs_out() -> None:
    text = morning(
        overnight="seized", custody="台州某拖车保管公司" * 6, vehicle="白色 大众帕萨特", address="长" * 40,
        urgent=True, plate_colour=PlateColour.BLUE,
    )  # fmt: skip
    assert segments(text) == 2
    assert text.startswith(f"{URGENT_MARK}【执行查控 K7Q】")
    assert "存放于台州某拖车保管公司" in text
    assert text.endswith("。请接手。回复1 K7Q接手")


def test_render_morning_of_a_vehicle_that_left_needs_when() -> None:
    with pytest.raises(ValueError, match="left_at"):
        morning(overnight="left")


def test_render_morning_of_a_vehicle_the_court_holds_already_asks_nothing() -> None:
    text = morning(overnight="seized", holder="张伟", custody="椒江区扣押场", take_over=False)
    assert text.endswith("已由张伟扣押，存放于椒江区扣押场。")
    assert "接手" not in text


def test_the_court_is_asked_to_take_over_what_the_station_holds_in_one_sms() -> None:
    from alerts.messages import render_held_by_station

    text = render_held_by_station(plate="浙J12345", station="椒江区白云派出所", reply_code="K7Q", urgent=True)
    assert text == "【紧急】【执行查控 K7Q】浙J12345 已由椒江区白云派出所控制，留置待法院接手。回复1 K7Q接手"
    station = "浙江省台州市公安局椒江分局白云派出所（值班室）夜间留置点"
    longest = render_held_by_station(plate="浙J12345", station=station, reply_code="K7Q", urgent=True)
    assert segments(longest) == 1
    assert longest.endswith("控制，留置待法院接手。回复1 K7Q接手")
    assert "浙江省台州市" in longest


# ------------------------------------------------------------------------------------ several cases


def test_a_vehicle_under_several_cases_lists_them_or_counts_them_within_two_segments() -> None:
    other = "(2026)浙1003执88号"
    whole = alert(cases=[other])
    assert f"案号{CASE}、{other}，" in whole
    assert segments(whole) <= 2
    # Space short (the place shortened first, as always): the first case and the count, never one alone.
    many = [other, *(f"(2026)浙100{n}执恢{n}00{n}号之一" for n in range(4, 9))]
    short = alert(cases=many, place="台州市椒江区" * 12, vehicle="白色 大众帕萨特")
    assert segments(short) <= 2
    assert "执1201号等7案，" in short
    squeezed = alert(cases=[other], max_segments=1)
    assert segments(squeezed) == 1
    assert "等2案" in squeezed


def test_the_cases_given_twice_or_equal_to_the_pages_own_are_listed_once() -> None:
    assert alert(cases=[CASE, " (2026)浙1003执88号", "(2026)浙1003执88号"]).count("执88号") == 1
    assert "等" not in alert(cases=[CASE])


def test_the_morning_notice_of_a_vehicle_under_several_cases_counts_them() -> None:
    other = "(2026)浙1003执88号"
    text = morning(cases=[other])
    assert f"案号{CASE}、{other}，已由椒江区白云派出所控制。" in text
    squeezed = morning(cases=[other], vehicle="白色 大众帕萨特", address="长" * 60, max_segments=1)
    assert segments(squeezed) == 1
    assert "等2案" in squeezed
