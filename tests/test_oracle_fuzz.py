"""Fuzzing against the published OpenAPI document: the server never answers 5xx and every
error is application/problem+json.

- schemathesis (pinned in the `test` extra) reads /openapi.json from the running server and
  generates cases for every operation, conforming and not (with a valid gateway token, so
  bodies get past authentication);
- Hypothesis strategies shaped after the request schemas add hostile inputs schemathesis does
  not produce: wrong tokens, raw bytes, mixed valid/invalid readings, aligned times."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from urllib.parse import quote

import httpx
import pytest
import schemathesis
from eth_account import Account
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from oracle_fixtures import INTERVAL, start_oracle, write_deployment
from schemathesis.checks import not_a_server_error

from zcx.deploy import deploy_all
from zcx.ids import meter_id

METERS = ["FZ-1", "FZ-2"]
FUZZ = settings(
    max_examples=50,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=20,
)
ints = st.one_of(
    st.integers(-5, 5_000),
    st.integers(-(2**70), 2**70),
    st.just(2**64 - 1),
    st.just(2**64),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=5),
)


@pytest.fixture(scope="module")
def fuzz_net(admin, operator, alice, oracle_keys, chain, epoch, tmp_path_factory):
    signer = Account.from_key(oracle_keys[0]).address
    contracts, _ = deploy_all(admin, operator.address, [signer], quorum=1)
    contracts.members.registerMember(alice, "Alice", 0, sender=operator)
    for label in METERS:
        contracts.members.registerMeter(
            meter_id(label), alice, 0, 3_000, "Z", epoch - 86400, sender=operator
        )
    chain.provider.set_balance(signer, 10**21)
    directory = tmp_path_factory.mktemp("fzdeploy")
    write_deployment(chain.provider.web3, contracts.addresses(), directory)
    tmp = tmp_path_factory.mktemp("fzoracle")
    # A peer credential puts the oracle in quorum mode, so /v1/attestations is served (and
    # fuzzed); in 1-of-1 mode it is not served at all.
    gen = start_oracle(
        tmp, chain.provider.uri, directory, oracle_keys[0], METERS, peer_names=["peer-1"]
    )
    running = next(gen)
    yield running, epoch
    next(gen, None)


@pytest.fixture
def openapi_schema(fuzz_net):
    api, _ = fuzz_net
    return schemathesis.openapi.from_url(f"{api.url}/openapi.json")


schema = schemathesis.pytest.from_fixture("openapi_schema")


@schema.parametrize()
@settings(max_examples=25, deadline=None, database=None, suppress_health_check=list(HealthCheck))
def test_schemathesis_no_5xx(case, fuzz_net):
    api, _ = fuzz_net
    response = case.call(headers={"Authorization": f"Bearer {api.token}"}, timeout=30)
    case.validate_response(response, checks=[not_a_server_error])
    if response.status_code >= 400:
        content_type = response.headers.get("content-type", [""])[0]  # schemathesis: lists
        assert content_type.startswith("application/problem+json"), (
            case.method,
            case.path,
            response.status_code,
            response.text[:200],
        )


def times(epoch: int) -> st.SearchStrategy:
    base = st.integers(epoch - 86400 * 400, epoch + 86400 * 400)
    aligned = st.integers(-48, 48).map(lambda k: epoch + k * INTERVAL)
    offsets = st.sampled_from([0, 9, -5, 14]).map(lambda h: timezone(timedelta(hours=h)))
    iso = st.tuples(st.one_of(base, aligned), offsets).map(
        lambda t: datetime.fromtimestamp(t[0], t[1]).isoformat()
    )
    return st.one_of(iso, iso.map(lambda s: s[:19]), st.text(max_size=30), st.integers(), st.none())


def readings(epoch: int) -> st.SearchStrategy:
    meter = st.one_of(st.sampled_from(METERS + ["NOPE", "FZ-1" * 9]), st.text(max_size=40))
    field = st.fixed_dictionaries(
        {
            "meter_id": meter,
            "interval_start": times(epoch),
            "interval_end": times(epoch),
            "generated_wh": ints,
            "consumed_wh": ints,
            "sold_wh": ints,
            "purchased_wh": ints,
        },
    )
    return st.one_of(
        field, field.map(lambda d: {k: v for k, v in d.items() if k != "sold_wh"}), json_values
    )


def _check(r: httpx.Response) -> None:
    assert r.status_code < 500, (r.status_code, r.text[:500])
    if r.status_code >= 400:
        assert r.headers["content-type"].startswith("application/problem+json"), r.text[:200]


def test_every_operation_is_covered(fuzz_net):
    api, _ = fuzz_net
    spec = httpx.get(f"{api.url}/openapi.json").json()
    ops = {(m.upper(), p) for p, item in spec["paths"].items() for m in item}
    assert ops == {
        ("POST", "/v1/readings"),
        ("GET", "/v1/meters/{meter_id}/readings"),
        ("POST", "/v1/attestations"),
        ("GET", "/healthz"),
        ("GET", "/metrics"),
    }
    body = spec["paths"]["/v1/readings"]["post"]["requestBody"]["content"]["application/json"]
    assert "readings" in json.dumps(body)


@FUZZ
@given(data=st.data())
def test_post_readings_never_5xx(fuzz_net, data):
    api, epoch = fuzz_net
    token = data.draw(st.sampled_from([api.token, api.token + "x", "", None]))
    body = data.draw(
        st.one_of(
            st.fixed_dictionaries({"readings": st.lists(readings(epoch), max_size=6)}),
            json_values,
        )
    )
    raw = data.draw(st.one_of(st.just(json.dumps(body).encode()), st.binary(max_size=64)))
    headers = {"content-type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}".strip()
    _check(httpx.post(f"{api.url}/v1/readings", content=raw, headers=headers, timeout=30))


@FUZZ
@given(
    meter=st.text(min_size=1, max_size=40).filter(lambda s: s not in {".", ".."}),
    frm=st.one_of(st.none(), st.text(max_size=30), st.just("2026-01-01T00:00:00+09:00")),
    to=st.one_of(st.none(), st.text(max_size=30), st.just("2026-01-01T00:00:00")),
    auth=st.booleans(),
)
def test_get_status_never_5xx(fuzz_net, meter, frm, to, auth):
    api, _ = fuzz_net
    params = {k: v for k, v in (("from", frm), ("to", to)) if v is not None}
    headers = {"Authorization": f"Bearer {api.token}"} if auth else {}
    path = quote(meter, safe="")
    _check(httpx.get(f"{api.url}/v1/meters/{path}/readings", params=params, headers=headers))


@FUZZ
@given(data=st.data())
def test_post_attestations_never_5xx(fuzz_net, data):
    api, epoch = fuzz_net
    reading = st.fixed_dictionaries(
        {
            "meter_id": st.one_of(st.sampled_from(METERS), st.text(max_size=40)),
            "start": ints,
            "end": ints,
            "generated_wh": ints,
            "consumed_wh": ints,
            "sold_wh": ints,
            "purchased_wh": ints,
        }
    )
    body = data.draw(
        st.one_of(
            st.fixed_dictionaries(
                {
                    "chain_id": st.one_of(st.just(31337), st.integers()),
                    "registry": st.one_of(st.just("0x" + "ab" * 20), st.text(max_size=42)),
                    "digest": st.one_of(st.just("0x" + "cd" * 32), st.text(max_size=66)),
                    "readings": st.lists(reading, max_size=4),
                }
            ),
            json_values,
        )
    )
    peer = api.peer_tokens["peer-1"]
    token = data.draw(st.sampled_from([peer, peer, peer + "x", api.token, "", None]))
    headers = {"Authorization": f"Bearer {token}".strip()} if token is not None else {}
    r = httpx.post(f"{api.url}/v1/attestations", json=body, headers=headers, timeout=30)
    _check(r)
    if token != peer:
        assert r.status_code == 401, r.text[:200]


def test_health_and_metrics(fuzz_net):
    api, _ = fuzz_net
    assert httpx.get(f"{api.url}/healthz").status_code == 200
    assert httpx.get(f"{api.url}/metrics").status_code == 200
