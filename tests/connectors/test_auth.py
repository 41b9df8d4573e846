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
