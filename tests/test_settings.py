"""Settings: defaults, composition, and invalid values refused naming the variable."""

from __future__ import annotations

import pytest

from seizewatch.settings import Settings
from streams.errors import ConfigurationError
from streams.matching import MatchKind


def test_defaults_point_at_the_local_services(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "SEIZEWATCH_KAFKA_BOOTSTRAP_SERVERS",
        "SEIZEWATCH_KAFKA_TOPIC_PREFIX",
        "SEIZEWATCH_MATCH_HIT_KINDS",
    ):
        monkeypatch.delenv(name, raising=False)
    settings = Settings.from_env()
    assert settings.kafka.bootstrap_servers == "127.0.0.1:19092"
    assert settings.kafka.topic("plate.sightings") == "plate.sightings"
    assert settings.match.hit_kinds == {MatchKind.EXACT, MatchKind.PROVINCE}  # no OCR kind pages by default


def test_values_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEIZEWATCH_KAFKA_TOPIC_PREFIX", "t1.")
    monkeypatch.setenv("SEIZEWATCH_MATCH_HIT_KINDS", "exact, ocr")
    settings = Settings.from_env()
    assert settings.kafka.topic("watch.hits") == "t1.watch.hits"
    assert settings.match.hit_kinds == {MatchKind.EXACT, MatchKind.OCR}


def test_invalid_values_stop_start_up_naming_each_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEIZEWATCH_MATCH_HIT_KINDS", "exact,fuzzy")
    monkeypatch.setenv("SEIZEWATCH_KAFKA_TOPIC_PREFIX", "bad prefix!")
    monkeypatch.setenv("SEIZEWATCH_METRICS_PORT", "70000")
    with pytest.raises(ConfigurationError) as caught:
        Settings.from_env()
    text = str(caught.value)
    assert "SEIZEWATCH_MATCH_HIT_KINDS" in text
    assert "fuzzy" in text
    assert "SEIZEWATCH_KAFKA_TOPIC_PREFIX" in text
    assert "SEIZEWATCH_METRICS_PORT" in text


def test_empty_secrets_are_unset_not_zero_length_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    # What `KEY=` in an env file produces: neither an open acknowledgement API nor a "configured" Twilio.
    for name in ("PAGER_API_TOKEN", "TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_SENDER"):
        monkeypatch.setenv(f"SEIZEWATCH_{name}", "  ")
    settings = Settings.from_env()
    assert settings.pager.api_token is None
    assert settings.twilio.auth_token is None
    assert not settings.twilio.configured


def test_a_short_api_token_is_refused_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEIZEWATCH_PAGER_API_TOKEN", "secret")
    with pytest.raises(ConfigurationError, match="SEIZEWATCH_PAGER_API_TOKEN"):
        Settings.from_env()


def test_an_empty_twilio_token_beside_a_set_account_is_incomplete(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEIZEWATCH_TWILIO_ACCOUNT_SID", "AC" + "0" * 32)
    monkeypatch.setenv("SEIZEWATCH_TWILIO_AUTH_TOKEN", "")
    monkeypatch.setenv("SEIZEWATCH_TWILIO_SENDER", "+8610000000000")
    with pytest.raises(ConfigurationError, match="SEIZEWATCH_TWILIO_AUTH_TOKEN"):
        Settings.from_env()


def test_operators_are_id_and_number_pairs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEIZEWATCH_PAGER_OPERATORS", " ops-wang:+8613800000001, ops-li:+8613800000002,")
    operators = Settings.from_env().pager.operators
    assert [(o.operator_id, o.phone) for o in operators] == [
        ("ops-wang", "+8613800000001"),
        ("ops-li", "+8613800000002"),
    ]
    assert "+86" not in repr(operators)  # numbers stay out of logs
    monkeypatch.setenv("SEIZEWATCH_PAGER_OPERATORS", "")
    assert Settings.from_env().pager.operators == ()


@pytest.mark.parametrize(
    "value",
    [
        "ops-wang",  # no number
        "ops-wang:13800000001",  # not E.164
        "Ops Wang:+8613800000001",  # not an id
        "ops-wang:+8613800000001,ops-wang:+8613800000002",  # an id twice
        "ops-wang:+8613800000001,ops-li:+8613800000001",  # a number twice
    ],
)
def test_bad_operators_stop_start_up_without_repeating_a_number(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("SEIZEWATCH_PAGER_OPERATORS", value)
    with pytest.raises(ConfigurationError, match="SEIZEWATCH_PAGER_OPERATORS") as caught:
        Settings.from_env()
    assert "3800000001" not in str(caught.value)


def test_the_consumer_group_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SEIZEWATCH_KAFKA_INSTANCE_ID", raising=False)
    monkeypatch.delenv("SEIZEWATCH_KAFKA_SESSION_TIMEOUT_MS", raising=False)
    assert Settings.from_env().kafka.instance_id is None  # dynamic membership unless named
    assert Settings.from_env().kafka.session_timeout_ms == 10_000
    monkeypatch.setenv("SEIZEWATCH_KAFKA_INSTANCE_ID", " worker-1 ")
    assert Settings.from_env().kafka.instance_id == "worker-1"
    monkeypatch.setenv("SEIZEWATCH_KAFKA_INSTANCE_ID", "")  # `KEY=` in an env file: unset
    assert Settings.from_env().kafka.instance_id is None


def test_bad_consumer_group_settings_stop_start_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEIZEWATCH_KAFKA_INSTANCE_ID", "worker 1")
    monkeypatch.setenv("SEIZEWATCH_KAFKA_SESSION_TIMEOUT_MS", "3000")  # below the broker's minimum
    with pytest.raises(ConfigurationError) as caught:
        Settings.from_env()
    assert "SEIZEWATCH_KAFKA_INSTANCE_ID" in str(caught.value)
    assert "SEIZEWATCH_KAFKA_SESSION_TIMEOUT_MS" in str(caught.value)
