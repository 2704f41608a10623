"""Oracle ingest API on a real uvicorn (127.0.0.1) against the registry on Anvil: readings go
from HTTP POST to ReadingRecorded on chain; every error status stores nothing."""

from __future__ import annotations

import json

import httpx
import pytest
from eth_account import Account
from oracle_fixtures import INTERVAL, iso, start_oracle, wait_until, wire, write_deployment

from oracle.signer import fast_batch_digest
from zcx.deploy import deploy_all
from zcx.eip712 import Reading, batch_digest
from zcx.ids import meter_id

SOLAR, HOUSEHOLD = 0, 0
METERS = ["API-A", "API-B", "API-C", "API-OFF", "API-OTHER"]
CAPACITY_W = 4_000  # 4 kW: at most 2,200 Wh per 30 minutes with the 10 % margin


@pytest.fixture(scope="module")
def solo(admin, operator, alice, oracle_keys, chain, epoch, tmp_path_factory):
    """A 1-of-1 registry whose signer is oracle key 0 (funded: it also sends the batches)."""
    signer = Account.from_key(oracle_keys[0]).address
    contracts, _ = deploy_all(admin, operator.address, [signer], quorum=1)
    contracts.members.registerMember(alice, "Alice Tanaka", HOUSEHOLD, sender=operator)
    for label in METERS:
        contracts.members.registerMeter(
            meter_id(label), alice, SOLAR, CAPACITY_W, "TEPCO-13", epoch - 86400, sender=operator
        )
    contracts.members.setMeterActive(meter_id("API-OFF"), False, sender=operator)
    chain.provider.set_balance(signer, 10**21)
    directory = tmp_path_factory.mktemp("deployments")
    w3 = chain.provider.web3
    write_deployment(w3, contracts.addresses(), directory)
    return contracts, directory, chain.provider.uri


@pytest.fixture
def api(solo, oracle_keys, tmp_path):
    _, directory, uri = solo
    yield from start_oracle(tmp_path, uri, directory, oracle_keys[0], METERS[:-1])


def test_digest_parity(solo, chain, epoch):
    contracts = solo[0]
    readings = [
        Reading(meter_id(m), epoch + i * INTERVAL, epoch + (i + 1) * INTERVAL, i, 2, 3, 4)
        for i, m in enumerate(["API-A", "API-B", "API-A"])
    ]
    fast = fast_batch_digest(readings, chain.chain_id, str(contracts.registry.address))
    assert fast == batch_digest(readings, chain.chain_id, str(contracts.registry.address))
    assert fast == bytes(contracts.registry.batchDigest([r.as_tuple() for r in readings]))


def test_post_to_confirmation(api, solo, epoch):
    registry = solo[0].registry
    body = [wire("API-A", epoch + i * INTERVAL, gen=1000 + i) for i in range(3)]
    body.append(wire("API-B", epoch, gen=500, cons=100, sold=400))
    r = api.post(body)
    assert r.status_code == 202, r.text
    assert r.json()["accepted"] == 4
    api.wait_final(4)
    rows = api.status("API-A")
    assert [x["status"] for x in rows] == ["confirmed"] * 3
    assert all(x["tx_hash"] and x["block_number"] for x in rows)
    assert registry.lastEnd(meter_id("API-A")) == epoch + 3 * INTERVAL
    assert registry.meterTotals(meter_id("API-A")).generatedWh == 3003
    assert registry.meterTotals(meter_id("API-B")).soldWh == 400
    # Re-posting the same readings is harmless: reported as duplicates, nothing changes.
    again = api.post(body)
    assert again.status_code == 202
    assert {x["status"] for x in again.json()["results"]} == {"duplicate"}
    assert api.store.count_readings() == 4
    metrics = httpx.get(f"{api.url}/metrics").text
    assert "zcx_oracle_readings_confirmed_total 4.0" in metrics
    assert "zcx_oracle_gas_used_total" in metrics and "zcx_oracle_queue_depth 0.0" in metrics
    health = httpx.get(f"{api.url}/healthz")
    assert health.status_code == 200 and health.json()["chain"] and health.json()["store"]


def test_chain_rejection_is_isolated(api, solo, operator, epoch):
    """A reading the chain refuses is marked rejected with the decoded reason; the good readings
    of the same batch are recorded."""
    members, registry = solo[0].members, solo[0].registry
    # A refused post still caches API-C's spec (active); then the operator deactivates it.
    assert api.post([wire("API-C", epoch, gen=999_999)]).status_code == 422
    members.setMeterActive(meter_id("API-C"), False, sender=operator)
    r = api.post([wire("API-A", epoch), wire("API-C", epoch), wire("API-A", epoch + INTERVAL)])
    assert r.status_code == 202, r.text
    api.wait_final(3)
    [c] = api.status("API-C")
    assert c["status"] == "rejected" and "RegistryInactiveMeter" in c["reason"]
    assert [x["status"] for x in api.status("API-A")] == ["confirmed", "confirmed"]
    assert registry.lastEnd(meter_id("API-A")) == epoch + 2 * INTERVAL
    assert registry.lastEnd(meter_id("API-C")) == 0


def _problem(r: httpx.Response, status: int) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["status"] == status and body["title"]
    return body


def _post_raw(api, content: bytes, token: str | None = "default") -> httpx.Response:
    headers = {"content-type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {api.token if token == 'default' else token}"
    return httpx.post(f"{api.url}/v1/readings", content=content, headers=headers, timeout=30)


def test_400_malformed_json(api, epoch):
    good = json.dumps({"readings": [wire("API-A", epoch)]})
    _problem(_post_raw(api, good[:-5].encode()), 400)
    _problem(_post_raw(api, b"\xff\xfe not utf-8"), 415)  # a UTF-16 byte-order mark
    assert api.store.count_readings() == 0


def test_401_missing_or_wrong_token(api, epoch):
    body = json.dumps({"readings": [wire("API-A", epoch)]}).encode()
    _problem(_post_raw(api, body, token=None), 401)
    _problem(_post_raw(api, body, token="not-a-token"), 401)
    r = httpx.get(f"{api.url}/v1/meters/API-A/readings")
    _problem(r, 401)
    assert api.store.count_readings() == 0


def test_403_meter_of_another_gateway(api, epoch):
    api.store.add_gateway("gw-2")
    api.store.bind("gw-2", ["API-OTHER"])
    body = _problem(api.post([wire("API-A", epoch), wire("API-OTHER", epoch)]), 403)
    assert [(e["index"], e["field"]) for e in body["errors"]] == [(1, "meter_id")]
    assert api.store.count_readings() == 0


def test_409_never_overwrites(api, epoch):
    assert api.post([wire("API-A", epoch, gen=100)]).status_code == 202

    def values():
        return [r.wire() for r in api.store.readings_of("API-A", None, None)]

    stored = values()
    # Different values for an accepted interval, alongside a fresh valid reading.
    body = _problem(api.post([wire("API-B", epoch), wire("API-A", epoch, gen=101)]), 409)
    assert [(e["index"], e["field"]) for e in body["errors"]] == [(1, "interval_start")]
    # Two different values for one interval inside one request.
    _problem(api.post([wire("API-B", epoch, gen=1), wire("API-B", epoch, gen=2)]), 409)
    assert values() == stored  # states move on in the background; the values never change
    assert api.store.count_readings() == 1


def test_409_late_interval_after_a_later_one_was_sent(api, epoch):
    assert api.post([wire("API-A", epoch + 4 * INTERVAL)]).status_code == 202
    api.wait_final(1)
    body = _problem(api.post([wire("API-A", epoch)]), 409)
    assert body["errors"][0]["index"] == 0
    assert api.store.count_readings() == 1


def test_413_too_large(api, epoch):
    many = [wire("API-A", epoch + i * INTERVAL) for i in range(5001)]
    _problem(api.post(many), 413)
    padded = b'{"readings": [' + b" " * 2_100_000 + b"]}"
    _problem(_post_raw(api, padded), 413)
    assert api.store.count_readings() == 0


BAD_READINGS = [
    # (description, mutate(reading dict, epoch) -> reading dict, field expected)
    (
        "missing value",
        lambda r, e: {k: v for k, v in r.items() if k != "consumed_wh"},
        "consumed_wh",
    ),
    ("negative", lambda r, e: {**r, "sold_wh": -1}, "sold_wh"),
    ("not an integer", lambda r, e: {**r, "generated_wh": 1.5}, "generated_wh"),
    ("a string number", lambda r, e: {**r, "purchased_wh": "5"}, "purchased_wh"),
    ("beyond uint64", lambda r, e: {**r, "consumed_wh": 2**64}, "consumed_wh"),
    ("implausibly large", lambda r, e: {**r, "consumed_wh": 2**62}, "consumed_wh"),
    (
        "no UTC offset",
        lambda r, e: {**r, "interval_start": "2026-01-01T00:00:00"},
        "interval_start",
    ),
    ("end before start", lambda r, e: {**r, "interval_end": iso(e - INTERVAL)}, "interval_end"),
    ("end equals start", lambda r, e: {**r, "interval_end": iso(e)}, "interval_end"),
    ("15-minute interval", lambda r, e: {**r, "interval_end": iso(e + 900)}, "interval_end"),
    ("misaligned", lambda r, e: wire("API-A", e + 60), "interval_start"),
    ("far future", lambda r, e: wire("API-A", e + 400 * 86400), "interval_end"),
    ("unknown meter", lambda r, e: {**r, "meter_id": "NO-SUCH-METER"}, "meter_id"),
    ("meter id too long", lambda r, e: {**r, "meter_id": "M" * 33}, "meter_id"),
    ("generation above capacity", lambda r, e: {**r, "generated_wh": 2_201}, "generated_wh"),
]


@pytest.mark.parametrize("case", BAD_READINGS, ids=[c[0] for c in BAD_READINGS])
def test_422_invalid_reading(api, epoch, case):
    _, mutate, field = case
    api.store.bind("gw-1", ["NO-SUCH-METER", "M" * 33])
    bad = mutate(wire("API-A", epoch + INTERVAL), epoch + INTERVAL)
    body = _problem(api.post([wire("API-B", epoch), bad]), 422)
    assert any(e["index"] == 1 and e["field"].endswith(field) for e in body["errors"]), body
    assert all(e["index"] == 1 for e in body["errors"]), body
    assert api.store.count_readings() == 0


def test_422_inactive_meter_and_capacity_edge(api, epoch):
    body = _problem(api.post([wire("API-OFF", epoch)]), 422)
    assert (
        body["errors"][0]["field"] == "meter_id" and "deactivated" in body["errors"][0]["message"]
    )
    # Exactly at the limit is fine: 4 kW x 0.5 h x 1.1 = 2,200 Wh.
    assert api.post([wire("API-A", epoch, gen=2_200)]).status_code == 202
    assert api.store.count_readings() == 1


def test_422_shape_errors(api):
    for body in ({}, {"readings": []}, {"readings": "x"}, [], {"readings": [{}], "extra": 1}):
        _problem(_post_raw(api, json.dumps(body).encode()), 422)
    assert api.store.count_readings() == 0


def test_status_window(api, epoch):
    assert api.post([wire("API-B", epoch + i * INTERVAL) for i in range(4)]).status_code == 202
    r = httpx.get(
        f"{api.url}/v1/meters/API-B/readings",
        params={"from": iso(epoch + INTERVAL), "to": iso(epoch + 3 * INTERVAL)},
        headers={"Authorization": f"Bearer {api.token}"},
    )
    assert r.status_code == 200
    starts = [x["interval_start"] for x in r.json()["readings"]]
    assert starts == [epoch + INTERVAL, epoch + 2 * INTERVAL]
    wait_until(lambda: all(x["status"] == "confirmed" for x in api.status("API-B")))
    r = httpx.get(
        f"{api.url}/v1/meters/API-OTHER/readings", headers={"Authorization": f"Bearer {api.token}"}
    )
    _problem(r, 403)
