"""Who may push GA/T 1400: HTTP Digest for registration, and which registered devices are still alive.

GA/T 1400.4 registers a device with RFC 2617 Digest (MD5, ``qop="auth"``): the first ``POST
/VIID/System/Register`` is answered 401 with a challenge, the second carries the Authorization header. A
registered device then keeps alive with ``POST /VIID/System/Keepalive``; a registration that is not kept
alive lapses and the device must register again. Both pieces are pure state over injected clocks; the HTTP
handler owns them and the wire.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Callable
from typing import Final

# The standard text was not at hand. VIID platforms document a registration as valid "generally 5
# minutes", renewed by any successful request; device clients keep alive every 10 to 90 seconds. Five
# minutes tolerates a 90-second device missing two keepalives.
KEEPALIVE_EXPIRY_S: Final = 300.0
_CLOCK_SKEW_S: Final = 30.0  # a nonce minted by another process whose clock runs a little ahead

_DIGEST = re.compile(r"\s*digest\s+(.*)", re.IGNORECASE | re.DOTALL)
# auth-param = token BWS "=" BWS ( token / quoted-string ), RFC 7235; values may hold commas in quotes.
_PARAM = re.compile(r"""([!#$%&'*+.^_`|~0-9A-Za-z-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s",]+))\s*(?=,|\Z)""")
_ESCAPE = re.compile(r"\\(.)")
_NONCE = re.compile(r"[0-9a-f]{64}")
_NC = re.compile(r"[0-9a-fA-F]{8}")
_REQUIRED = ("username", "realm", "nonce", "uri", "response", "qop", "nc", "cnonce")


class Registrations:
    """Registered devices and when each was last heard of (registration or keepalive).

    ``clock`` is monotonic by default: this state lives in one process and must not jump with the wall
    clock. Not thread-safe; one event loop owns it.
    """

    def __init__(
        self, *, clock: Callable[[], float] = time.monotonic, expiry_s: float = KEEPALIVE_EXPIRY_S
    ) -> None:
        if expiry_s <= 0:
            raise ValueError("expiry_s must be positive")
        self._clock = clock
        self._expiry_s = expiry_s
        self._last_seen: dict[str, float] = {}

    def register(self, device_id: str) -> None:
        """Register (or register again) a device that passed authentication."""
        self._last_seen[device_id] = self._clock()

    def keepalive(self, device_id: str) -> bool:
        """Renew a live registration; False (and the device must register again) if there is none.

        The handler also calls this for every accepted push: any successful request renews the
        registration, as VIID platforms do.
        """
        if not self.is_active(device_id):
            self._last_seen.pop(device_id, None)
            return False
        self._last_seen[device_id] = self._clock()
        return True

    def unregister(self, device_id: str) -> bool:
        """Forget a device; False if it was not registered."""
        return self._last_seen.pop(device_id, None) is not None

    def is_active(self, device_id: str) -> bool:
        """Registered, and heard of within ``expiry_s``."""
        last = self._last_seen.get(device_id)
        return last is not None and self._clock() - last <= self._expiry_s

    def expire(self) -> list[str]:
        """Drop lapsed registrations and return their device ids (to log devices going offline)."""
        now = self._clock()
        lapsed = sorted(d for d, last in self._last_seen.items() if now - last > self._expiry_s)
        for device_id in lapsed:
            del self._last_seen[device_id]
        return lapsed


class DigestAuth:
    """RFC 2617 / 7616 Digest (MD5, ``qop="auth"``) with stateless nonces.

    A nonce is its minting time, a random salt and an HMAC of both under ``secret``, so any process holding
    the secret can check it and no nonce store is shared. The price of statelessness: ``nc`` is not tracked,
    so a captured Authorization header can be replayed for the same method and URI until its nonce expires
    (``nonce_ttl_s``). That only lets the replayer register the same device again.
    """

    def __init__(
        self,
        realm: str,
        secret: bytes,
        *,
        clock: Callable[[], float] = time.time,
        nonce_ttl_s: float = 300,
    ) -> None:
        if not realm or '"' in realm or "\\" in realm:
            raise ValueError("realm must be non-empty and hold no quote or backslash")
        if len(secret) < 16:
            raise ValueError("secret must be at least 16 bytes")
        if nonce_ttl_s <= 0:
            raise ValueError("nonce_ttl_s must be positive")
        self._realm = realm
        self._secret = secret
        self._clock = clock
        self._ttl_s = nonce_ttl_s
        # Some device clients expect an opaque to echo; it carries no security, so it is never checked.
        self._opaque = hmac.new(secret, b"opaque:" + realm.encode(), hashlib.sha256).hexdigest()[:32]

    def challenge(self, stale: bool = False) -> str:
        """A WWW-Authenticate header value with a fresh nonce; ``stale`` when only the nonce had expired."""
        value = (
            f'Digest realm="{self._realm}", qop="auth", nonce="{self._new_nonce()}", '
            f'opaque="{self._opaque}", algorithm=MD5'
        )
        return value + ", stale=true" if stale else value

    def verify(
        self,
        authorization: str | None,
        method: str,
        uri: str,
        password_for: Callable[[str], str | None],
    ) -> str | None:
        """The authenticated username, or None (malformed, unknown user, wrong password, bad nonce or uri).

        ``uri`` is the request-target as received; the header's ``uri`` must equal it.
        """
        params = parse_digest(authorization)
        if params is None or any(name not in params for name in _REQUIRED):
            return None
        if (
            params["realm"] != self._realm
            or params.get("algorithm", "MD5").upper() != "MD5"
            or params["qop"].lower() != "auth"
            or not _NC.fullmatch(params["nc"])
            or not params["cnonce"]
            or params["uri"] != uri
        ):
            return None
        age = self._nonce_age(params["nonce"])
        if age is None or age > self._ttl_s:
            return None
        username = params["username"]
        password = password_for(username)
        # An unknown user costs the same digest as a known one, so timing does not tell which names exist.
        ha1 = _md5(f"{username}:{self._realm}:{password or ''}")
        ha2 = _md5(f"{method}:{params['uri']}")
        expected = _md5(f"{ha1}:{params['nonce']}:{params['nc']}:{params['cnonce']}:auth:{ha2}")
        matches = hmac.compare_digest(expected.encode(), params["response"].lower().encode())
        return username if matches and password is not None else None

    def nonce_is_stale(self, authorization: str | None) -> bool:
        """True when the header's nonce is one of ours but expired: answer with ``challenge(stale=True)``."""
        params = parse_digest(authorization)
        age = self._nonce_age(params.get("nonce", "")) if params else None
        return age is not None and age > self._ttl_s

    def _new_nonce(self) -> str:
        stamp = f"{int(self._clock()):016x}{secrets.token_hex(8)}"
        return stamp + self._mac(stamp)

    def _mac(self, stamp: str) -> str:
        return hmac.new(self._secret, f"{stamp}:{self._realm}".encode(), hashlib.sha256).hexdigest()[:32]

    def _nonce_age(self, nonce: str) -> float | None:
        """Seconds since an authentic nonce was minted; None if it is not ours (forged, tampered, future)."""
        if not _NONCE.fullmatch(nonce):
            return None
        stamp, mac = nonce[:32], nonce[32:]
        if not hmac.compare_digest(self._mac(stamp).encode(), mac.encode()):
            return None
        age = self._clock() - int(stamp[:16], 16)
        return age if age >= -_CLOCK_SKEW_S else None


def parse_digest(header: str | None) -> dict[str, str] | None:
    """The parameters of a ``Digest`` Authorization header (names lower-cased), or None if malformed.

    Values may be quoted (with backslash escapes, commas inside) or bare tokens (``qop=auth``,
    ``nc=00000001``, as devices send them). A repeated parameter makes the header malformed.
    """
    match = _DIGEST.fullmatch(header) if header else None
    if match is None:
        return None
    rest = match.group(1)
    params: dict[str, str] = {}
    position = _skip_separators(rest, 0)
    while position < len(rest):
        param = _PARAM.match(rest, position)
        if param is None:
            return None
        name, quoted, token = param.group(1).lower(), param.group(2), param.group(3)
        if name in params:
            return None
        params[name] = _ESCAPE.sub(r"\1", quoted) if quoted is not None else token
        position = _skip_separators(rest, param.end())
    return params or None


def _skip_separators(text: str, position: int) -> int:
    # Empty list elements (", ,") are allowed by RFC 7230's list syntax.
    while position < len(text) and (text[position] == "," or text[position].isspace()):
        position += 1
    return position


def _md5(text: str) -> str:
    # Digest as GA/T 1400 devices speak it knows no other algorithm.
    return hashlib.md5(text.encode()).hexdigest()  # noqa: S324
