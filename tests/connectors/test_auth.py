"""Source credentials: derived per source and version, checked in constant time, replay-bounded."""

from __future__ import annotations

from pydantic import SecretStr

from connectors.auth import SIGNATURE_WINDOW_S, check_api_key, check_signature, sign, source_secret
from connectors.registry import AuthMethod, Connector, Source

MASTER = SecretStr("m" * 64)
SOURCE = Source("lot-wanda", Connector.PARKING, "generic", AuthMethod.API_KEY, 1, True)


def test_secrets_differ_by_source_version_and_master() -> None:
    base = source_secret(MASTER, "lot-wanda", 1)
    assert base == source_secret(MASTER, "lot-wanda", 1)
    assert base != source_secret(MASTER, "lot-wanda", 2)
    assert base != source_secret(MASTER, "lot-other", 1)
    assert base != source_secret(SecretStr("n" * 64), "lot-wanda", 1)


def test_api_key() -> None:
    key = source_secret(MASTER, "lot-wanda", 1)
    assert check_api_key(MASTER, SOURCE, key)
    assert not check_api_key(MASTER, SOURCE, key[:-1] + "0" if key[-1] != "0" else key[:-1] + "1")
    assert not check_api_key(MASTER, SOURCE, None)
    assert not check_api_key(MASTER, SOURCE, "")


def test_signature_over_timestamp_and_body() -> None:
    secret = source_secret(MASTER, "lot-wanda", 1)
    body = b'{"records": []}'
    now = 1_800_000_000.0
    signature = sign(secret, str(int(now)), body)
    assert check_signature(MASTER, SOURCE, str(int(now)), signature, body, now)
    assert not check_signature(MASTER, SOURCE, str(int(now)), signature, body + b" ", now)  # body changed
    assert not check_signature(MASTER, SOURCE, str(int(now) + 1), signature, body, now)  # timestamp changed
    late = now + SIGNATURE_WINDOW_S + 1
    assert not check_signature(MASTER, SOURCE, str(int(now)), signature, body, late)  # replayed later
    assert not check_signature(MASTER, SOURCE, "soon", signature, body, now)
    assert not check_signature(MASTER, SOURCE, None, signature, body, now)


def test_a_timestamp_of_400_digits_is_refused_not_a_crash() -> None:
    # Found by python -m tests.fuzz (auth_headers): OverflowError, int too large to convert to float.
    secret = source_secret(MASTER, "lot-wanda", 1)
    timestamp = "9" * 400
    signature = sign(secret, timestamp, b"")
    assert not check_signature(MASTER, SOURCE, timestamp, signature, b"", 1_800_000_000.0)


def test_only_plain_unix_seconds_are_a_timestamp() -> None:
    # int() also reads " 1800000000 ", "1_800_000_000" and Arabic-Indic digits; the format says seconds.
    secret = source_secret(MASTER, "lot-wanda", 1)
    for timestamp in (" 1800000000", "1_800_000_000", "١٨٠٠٠٠٠٠٠٠", "+1800000000"):
        assert not check_signature(
            MASTER, SOURCE, timestamp, sign(secret, timestamp, b""), b"", 1_800_000_000.0
        )
    assert check_signature(
        MASTER, SOURCE, "1800000000", sign(secret, "1800000000", b""), b"", 1_800_000_000.0
    )
