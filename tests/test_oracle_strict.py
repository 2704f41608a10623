"""Strict bodies on every POST route (issue 10, point 7): application/json in UTF-8 only, no
byte-order mark, no duplicate keys, no NaN/Infinity, a nesting-depth limit. Each refusal is
problem+json naming the reason and the field, never a 500, and stores nothing; the same route
accepts the well-formed body (positive control)."""

from __future__ import annotations

import json
import time

import httpx
import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from oracle_fixtures import own_devnet, start_oracle, wire

from oracle.http import json_depth, parse_strict_json

METERS = ["STRICT-A", "STRICT-B"]


@pytest.fixture(scope="module")
def devnet(tmp_path_factory, oracle_keys):
    with own_devnet(tmp_path_factory.mktemp("strict"), oracle_keys[0], METERS) as parts:
        yield parts


@pytest.fixture
def api(devnet, tmp_path, oracle_keys):
    anvil, record, w3, epoch = devnet
    deployments_dir = anvil.state.parent / "deployments"
    yield from start_oracle(tmp_path, anvil.url, deployments_dir, oracle_keys[0], METERS)


def _good(epoch: int) -> str:
    return json.dumps({"readings": [wire("STRICT-A", epoch)]})


def _post(api, content: bytes, content_type: str | None = "application/json", path="readings"):
    headers = {"Authorization": f"Bearer {api.token}"}
    if content_type is not None:
        headers["Content-Type"] = content_type
    return httpx.post(f"{api.url}/v1/{path}", content=content, headers=headers, timeout=30)


def _problem(r: httpx.Response, status: int, field: str, words: str) -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["status"] == status
    assert body["errors"][0]["field"] == field, body
    assert words in (body["title"] + " " + body["detail"]).lower(), body


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "text/plain",
        "text/plain; charset=utf-8",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/jsonx",
        "application/json; charset=utf-16",
        "application/json; charset=latin-1",
    ],
)
def test_415_not_json_utf8(api, devnet, content_type):
    r = _post(api, _good(devnet[3]).encode(), content_type)
    _problem(r, 415, "Content-Type", "unsupported")
    assert api.store.count_readings() == 0


@pytest.mark.parametrize(
    ("encode", "status"),
    [
        (lambda t: t.encode("utf-16"), 415),  # with its byte-order mark
        (lambda t: t.encode("utf-16-le"), 415),  # without: json.loads(bytes) would guess it
        (lambda t: t.encode("utf-16-be"), 415),
        (lambda t: t.encode("utf-32"), 415),
        (lambda t: b"\xef\xbb\xbf" + t.encode(), 400),  # UTF-8 with a byte-order mark
        (lambda t: t.encode().replace(b"STRICT", b"STR\xc3\x28CT"), 400),  # invalid UTF-8
    ],
    ids=["utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-8-bom", "bad-utf-8"],
)
def test_utf8_only(api, devnet, encode, status):
    r = _post(api, encode(_good(devnet[3])))
    _problem(r, status, "body", "utf" if status == 415 else "")
    assert api.store.count_readings() == 0


def test_duplicate_keys_400(api, devnet):
    epoch = devnet[3]
    reading = json.dumps(wire("STRICT-A", epoch))
    twice_top = '{"readings": [' + reading + '], "readings": [' + reading + "]}"
    _problem(_post(api, twice_top.encode()), 400, "body", "'readings' appears twice")
    # The last one would silently win: 999 Wh would be stored instead of 1000.
    twice_inner = reading[:-1] + ', "generated_wh": 999}'
    body = '{"readings": [' + twice_inner + "]}"
    _problem(_post(api, body.encode()), 400, "body", "'generated_wh' appears twice")
    assert api.store.count_readings() == 0


def test_nan_and_infinity_400(api, devnet):
    for constant in ("NaN", "Infinity", "-Infinity"):
        body = _good(devnet[3]).replace('"generated_wh": 1000', f'"generated_wh": {constant}')
        _problem(_post(api, body.encode()), 400, "body", "not json")
    assert api.store.count_readings() == 0


@pytest.mark.parametrize("depth", [17, 1_000, 200_000])
def test_nesting_too_deep_400_never_500(api, depth):
    body = b'{"readings": ' + b"[" * (depth - 1) + b"]" * (depth - 1) + b"}"
    t0 = time.monotonic()
    r = _post(api, body)
    _problem(r, 400, "body", "nesting")
    assert time.monotonic() - t0 < 10  # refused before parsing, not after a deep recursion
    assert api.store.count_readings() == 0


def test_strict_rules_cover_every_post_route(api, devnet):
    """/v1/attestations (the quorum route) gets the same rules, whoever handles its auth."""
    body = b'{"chain_id": 1, "chain_id": 2}'
    _problem(_post(api, body, path="attestations"), 400, "body", "'chain_id' appears twice")
    _problem(_post(api, b"{}", "text/plain", path="attestations"), 415, "Content-Type", "")
    deep = b"[" * 50 + b"]" * 50
    _problem(_post(api, deep, path="attestations"), 400, "body", "nesting")


def test_unauthenticated_body_is_not_read(api, devnet):
    """The gateway token is checked before the body: a stranger's body is never parsed."""
    r = httpx.post(
        f"{api.url}/v1/readings",
        content=b"[" * 100_000,
        headers={"Content-Type": "application/json", "Authorization": "Bearer nope"},
        timeout=30,
    )
    _problem(r, 401, "Authorization", "token")
    assert r.headers["WWW-Authenticate"] == "Bearer"


def test_positive_control_and_charset_param(api, devnet):
    epoch = devnet[3]
    r = _post(api, _good(epoch).encode(), "application/json; charset=UTF-8")
    assert r.status_code == 202, r.text
    r = _post(api, json.dumps({"readings": [wire("STRICT-B", epoch)]}).encode(), "Application/JSON")
    assert r.status_code == 202, r.text
    assert api.store.count_readings() == 2


# Any text: strict parsing either returns what json.loads returns, or refuses with a named
# reason (never another exception, which would be a 500).
@hsettings(max_examples=300, deadline=None)
@given(st.text(alphabet='[]{}",:0123456789.eE+-truefalsnul \\\n\t"abc', max_size=80))
def test_parse_strict_json_never_raises_otherwise(text):
    from oracle.http import BodyRefused

    try:
        value = parse_strict_json(text.encode(), max_depth=16)
    except BodyRefused as exc:
        assert exc.status in (400, 415) and exc.message
        return
    assert value == json.loads(text)


@given(st.recursive(st.integers() | st.text(), lambda inner: st.lists(inner, max_size=3)))
def test_json_depth_matches_the_structure(value):
    def depth(v):
        return 1 + max((depth(x) for x in v), default=0) if isinstance(v, list) else 0

    assert json_depth(json.dumps(value)) == depth(value)
