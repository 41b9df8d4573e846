"""One fuzz target per connector parser: the chain its route (or command) runs on a body, and its inputs.

A target passes an input when the chain returns, or raises one of the target's documented refusals
(:class:`~connectors.records.AdapterError`, :class:`~streams.errors.InvalidInput`, per the functions'
``Raises:``) that the route can answer, and when everything it accepts passes the oracles of
:mod:`tests.fuzz.oracles`. Any other exception (KeyError, TypeError, OverflowError, RecursionError,
UnicodeError, LookupError, an untranslated ET.ParseError…) or an :class:`~tests.fuzz.oracles.Unfit`
output is a finding.
"""

from __future__ import annotations

import hmac
import io
from collections.abc import Callable
from dataclasses import dataclass

import orjson
from hypothesis import strategies as st
from pydantic import SecretStr

from connectors import auth
from connectors.backfill import csv_header, csv_item, jsonl_item, read_lines
from connectors.devicefile import read_devices
from connectors.gat1400 import parse_motor_vehicles, parse_system_request
from connectors.gat1400_auth import DigestAuth, parse_digest
from connectors.isapi import parse_anpr
from connectors.isapi_routes import MAX_PARTS
from connectors.parking import VENDORS
from connectors.records import AdapterError, RawRead, charset_of, decode_text
from connectors.registry import AuthMethod, Connector, Source
from connectors.traffic_routes import parse_results
from streams.errors import InvalidInput
from tests.fuzz import inputs
from tests.fuzz.inputs import Sample
from tests.fuzz.oracles import Unfit, accept, check_device_row, check_refusal, check_result, utf8


@dataclass(frozen=True)
class Target:
    """A parser under fuzz: ``run`` is the chain on one input, ``inputs`` what hypothesis draws."""

    name: str
    function: str  # what is under test, as the report names it
    run: Callable[[Sample], list[object]]
    inputs: st.SearchStrategy[Sample]
    refusals: tuple[type[Exception], ...] = (InvalidInput,)

    def check(self, sample: Sample) -> list[object]:
        """Run the chain: what became of each record (accepted, or its refusal), or the refusal of the
        whole input. A refusal passes if the route can answer it; anything else raises."""
        try:
            return self.run(sample)
        except self.refusals as exc:
            check_refusal(exc)
            return [exc]


def _settle(item: RawRead | AdapterError, *, backfill: bool = False) -> object:
    if isinstance(item, AdapterError):
        check_refusal(item)
        return item
    return accept(item, backfill=backfill)


def _json_document(sample: Sample) -> object:
    # As parking_routes.push and traffic_routes.push_results read a body.
    text, _ = decode_text(sample.body, charset_of(sample.content_type))
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise AdapterError("not_json", f"not a JSON document: {exc}") from exc


def _parking(vendor: str) -> Callable[[Sample], list[object]]:
    adapter = VENDORS[vendor]

    def run(sample: Sample) -> list[object]:
        return [_settle(item) for item in adapter(_json_document(sample))]

    return run


def _gat1400_vehicles(sample: Sample) -> list[object]:
    return [_settle(item) for item in parse_motor_vehicles(sample.body, sample.content_type)]


def _gat1400_system(sample: Sample) -> list[object]:
    device_id = parse_system_request(sample.body, sample.content_type, sample.option)  # type: ignore[arg-type]
    if not device_id or device_id != device_id.strip() or len(device_id) > 64:
        raise Unfit(f"DeviceID {device_id[:80]!r} is not a stripped id of at most 64 characters")
    if not utf8(device_id):  # it is echoed in the answer
        raise Unfit(f"DeviceID {device_id[:80]!r} does not encode as UTF-8")
    return [device_id]


_DIGEST = DigestAuth(inputs.DIGEST_REALM, inputs.DIGEST_SECRET, clock=lambda: float(inputs.DIGEST_NOW))


def _gat1400_digest(sample: Sample) -> list[object]:
    # As gat1400_routes.register checks a registration: verify, else a challenge (stale or not).
    header, uri = sample.header("authorization"), sample.header("uri") or ""
    username = _DIGEST.verify(header, "POST", uri, inputs.DIGEST_USERS.get)
    stale = _DIGEST.nonce_is_stale(header)
    challenge = _DIGEST.challenge(stale=stale)
    if parse_digest(challenge) is None:
        raise Unfit(f"our own challenge does not parse: {challenge!r}")
    if username is None:
        return [None]
    # Accepted: then the response must be the right one, for the right URI, with a fresh nonce of ours.
    params = parse_digest(header) or {}
    password = inputs.DIGEST_USERS.get(username)
    if password is None or params.get("uri") != uri or stale:
        raise Unfit(f"accepted {username!r} for {params.get('uri')!r} (request {uri!r}, stale {stale})")
    expected = inputs.digest_response({**params, "qop": "auth"}, password)
    if not hmac.compare_digest(expected, params.get("response", "").lower()):
        raise Unfit("accepted a response that is not the digest of the password")
    return [username]


_MASTER = SecretStr("fuzz-master-key-" * 4)
_SOURCE = Source("lot-fuzz", Connector.PARKING, "generic", AuthMethod.HMAC, 1, True)
_KEY = auth.source_secret(_MASTER, _SOURCE.source_id, _SOURCE.key_version)


def _auth_headers(sample: Sample) -> list[object]:
    # As connectors.http.authenticate checks an API key and an HMAC signature.
    presented = sample.header("x-api-key")
    timestamp, signature = sample.header("x-seizewatch-timestamp"), sample.header("x-seizewatch-signature")
    if auth.check_api_key(_MASTER, _SOURCE, presented) and presented != _KEY:
        raise Unfit(f"accepted the API key {presented!r}")
    now = float(inputs.AUTH_NOW)
    signed = auth.check_signature(_MASTER, _SOURCE, timestamp, signature, sample.body, now)
    if signed:
        assert timestamp is not None  # accepted, so present
        if signature != auth.sign(_KEY, timestamp, sample.body) or abs(int(timestamp) - now) > 300:
            raise Unfit(f"accepted the signature {signature!r} at {timestamp!r}")
    return [presented == _KEY, signed]


def _isapi(sample: Sample) -> list[object]:
    event = parse_anpr(sample.body, sample.content_type, max_parts=MAX_PARTS)
    return [None if event is None else accept(event.read)]


def _backfill_csv(sample: Sample) -> list[object]:
    # As backfill.prepare reads the header and backfill.batches the rows after it.
    lines = read_lines(io.BytesIO(sample.body))
    header = csv_header(next(lines, None), sample.option)
    items = (csv_item(line, header, sample.option) for line in lines)
    return [_settle(item, backfill=True) for item in items if item is not None]


def _backfill_jsonl(sample: Sample) -> list[object]:
    items = (jsonl_item(line, sample.option) for line in read_lines(io.BytesIO(sample.body)))
    return [_settle(item, backfill=True) for item in items if item is not None]


def _traffic(sample: Sample) -> list[object]:
    outcomes: list[object] = []
    for item in parse_results(_json_document(sample)):
        if isinstance(item, AdapterError):
            check_refusal(item)
        else:
            check_result(item)
        outcomes.append(item)
    return outcomes


def _devices(sample: Sample) -> list[object]:
    # As `seizewatch devices import` reads a file: Path.read_text (universal newlines), then the rows.
    try:
        text = io.TextIOWrapper(io.BytesIO(sample.body), encoding=sample.option).read()
    except UnicodeDecodeError as exc:
        return [exc]  # the command answers it, naming the byte
    rows = read_devices(text.splitlines(keepends=True))
    for row in rows:
        check_device_row(row)
    return list(rows)


_JSON = "decode_text → JSON → "
TARGETS: dict[str, Target] = {
    target.name: target
    for target in (
        Target(
            "parking_generic", _JSON + "parking.parse_generic", _parking("generic"), inputs.parking("generic")
        ),
        Target(
            "parking_example_cn",
            _JSON + "parking.parse_example_cn",
            _parking("example_cn"),
            inputs.parking("example_cn"),
        ),
        Target(
            "gat1400_vehicles", "gat1400.parse_motor_vehicles", _gat1400_vehicles, inputs.gat1400_vehicles()
        ),
        Target("gat1400_system", "gat1400.parse_system_request", _gat1400_system, inputs.gat1400_system()),
        Target(
            "gat1400_digest", "DigestAuth.verify, parse_digest", _gat1400_digest, inputs.gat1400_digest(), ()
        ),
        Target(
            "auth_headers",
            "auth.check_api_key, check_signature",
            _auth_headers,
            inputs.auth_headers(_KEY),
            (),
        ),
        Target("isapi_anpr", "isapi.parse_anpr (XML, multipart)", _isapi, inputs.isapi()),
        Target(
            "backfill_csv",
            "backfill read_lines → csv_header → csv_item",
            _backfill_csv,
            inputs.backfill("csv"),
        ),
        Target(
            "backfill_jsonl", "backfill read_lines → jsonl_item", _backfill_jsonl, inputs.backfill("jsonl")
        ),
        Target("traffic_results", _JSON + "traffic_routes.parse_results", _traffic, inputs.traffic()),
        Target("devicefile", "devicefile.read_devices", _devices, inputs.devices()),
    )
}
