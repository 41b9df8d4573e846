"""Source credentials: derived from the master key, checked in constant time, stored nowhere.

A source's secret is HMAC-SHA256(master key, "source id:key version"). Bumping the key version rotates
one source; changing the master key rotates all. The same secret serves as API key, HMAC signing key or
digest password, by the source's auth method.
"""

from __future__ import annotations

import hashlib
import hmac

from pydantic import SecretStr

from connectors.registry import Source

TIMESTAMP_HEADER = "X-Seizewatch-Timestamp"
SIGNATURE_HEADER = "X-Seizewatch-Signature"
API_KEY_HEADER = "X-Api-Key"
# A signed request older or newer than this is refused: a captured request cannot be replayed later.
SIGNATURE_WINDOW_S = 300
_MAX_TIMESTAMP_DIGITS = 12  # seconds until the year 33658


def source_secret(master: SecretStr, source_id: str, key_version: int) -> str:
    mac = hmac.new(master.get_secret_value().encode(), f"{source_id}:{key_version}".encode(), hashlib.sha256)
    return mac.hexdigest()[:40]


def check_api_key(master: SecretStr, source: Source, presented: str | None) -> bool:
    if not presented:
        return False
    return hmac.compare_digest(
        presented.encode(), source_secret(master, source.source_id, source.key_version).encode()
    )


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The signature header value a sender computes: ``sha256=<hex>`` over ``timestamp.`` + body."""
    return "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def check_signature(
    master: SecretStr, source: Source, timestamp: str | None, signature: str | None, body: bytes, now: float
) -> bool:
    # Unix seconds in ASCII digits only: int() would also take blanks, underscores and other scripts'
    # digits, and a 400-digit number cannot be compared with a float clock (OverflowError).
    if not signature or not timestamp or len(timestamp) > _MAX_TIMESTAMP_DIGITS:
        return False
    if not (timestamp.isascii() and timestamp.isdigit()):
        return False
    if abs(now - int(timestamp)) > SIGNATURE_WINDOW_S:
        return False
    expected = sign(source_secret(master, source.source_id, source.key_version), timestamp, body)
    return hmac.compare_digest(signature.encode(), expected.encode())
