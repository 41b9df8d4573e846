"""The pager's sending settings: defaults, what comes from the environment, and values refused."""

from __future__ import annotations

import pytest

from seizewatch.settings import Settings
from streams.errors import ConfigurationError


def test_sending_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SEND_CONCURRENCY", "IN_FLIGHT_MARGIN_S", "STATUS_LOOKUP_AFTER_S"):
        monkeypatch.delenv(f"SEIZEWATCH_PAGER_{name}", raising=False)
    pager = Settings.from_env().pager
    assert (pager.send_concurrency, pager.in_flight_margin_s, pager.status_lookup_after_s) == (8, 15.0, 120)


def test_sending_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEIZEWATCH_PAGER_SEND_CONCURRENCY", "16")
    monkeypatch.setenv("SEIZEWATCH_PAGER_IN_FLIGHT_MARGIN_S", "2.5")
    monkeypatch.setenv("SEIZEWATCH_PAGER_STATUS_LOOKUP_AFTER_S", "60")
    pager = Settings.from_env().pager
    assert (pager.send_concurrency, pager.in_flight_margin_s, pager.status_lookup_after_s) == (16, 2.5, 60)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SEND_CONCURRENCY", "0"),
        ("SEND_CONCURRENCY", "65"),
        ("IN_FLIGHT_MARGIN_S", "0"),
        ("STATUS_LOOKUP_AFTER_S", "0"),
    ],
)
def test_values_out_of_range_stop_start_up_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(f"SEIZEWATCH_PAGER_{name}", value)
    with pytest.raises(ConfigurationError, match=f"SEIZEWATCH_PAGER_{name}"):
        Settings.from_env()
