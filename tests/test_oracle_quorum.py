"""2-of-3 quorum across three independent oracles (own keys, own SQLite stores, own uvicorn on
different loopback ports): the leader collects a peer's attestation over POST /v1/attestations
and submits; one oracle alone never gets a batch accepted."""

from __future__ import annotations

import contextlib
import time

import ape
import httpx
import pytest
from eth_account import Account
from oracle_fixtures import INTERVAL, start_oracle, wait_until, wire, write_deployment

from oracle.quorum import request_for
from oracle.signer import fast_batch_digest
from oracle.submitter import to_reading
from zcx.eip712 import Reading, sign_quorum
from zcx.ids import meter_id

METERS = ["Q-1", "Q-2"]


@pytest.fixture(scope="module")
def quorum_net(zcx, operator, carol, oracle_keys, chain, epoch, tmp_path_factory):
    zcx.members.registerMember(carol, "Carol School", 1, sender=operator)
    for label in METERS:
        zcx.members.registerMeter(
            meter_id(label), carol, 0, 10_000, "KANSAI", epoch - 86400, sender=operator
        )
    chain.provider.set_balance(Account.from_key(oracle_keys[0]).address, 10**21)
    directory = tmp_path_factory.mktemp("qdeploy")
    write_deployment(chain.provider.web3, zcx.addresses(), directory)
    return zcx, directory, chain.provider.uri


@contextlib.contextmanager
def oracle_at(tmp, net, key, **overrides):
    _, directory, uri = net
    tmp.mkdir(parents=True, exist_ok=True)
    gen = start_oracle(tmp, uri, directory, key, METERS, **overrides)
    running = next(gen)
    try:
        yield running
    finally:
        with contextlib.suppress(StopIteration):
            next(gen)


def test_one_oracle_alone_is_not_enough(quorum_net, oracle_keys, tmp_path, epoch, submitter, chain):
    zcx = quorum_net[0]
    with oracle_at(tmp_path / "a", quorum_net, oracle_keys[0]) as alone:
        assert alone.post([wire("Q-1", epoch)]).status_code == 202
        wait_until(lambda: alone.store.state_counts().get("batched") == 1, 10, "batched")
        time.sleep(1.5)
        [batch] = alone.store.batches(("signing",))
        assert batch.error == "1 of 2 signatures"
        assert alone.store.state_counts() == {"batched": 1}
    assert zcx.registry.lastEnd(meter_id("Q-1")) == 0
    # And the registry itself refuses a batch carrying one oracle's signature.
    reading = Reading(meter_id("Q-1"), epoch, epoch + INTERVAL, 1, 1, 1, 1)
    sigs = sign_quorum([reading], chain.chain_id, str(zcx.registry.address), oracle_keys[:1])
    with ape.reverts(zcx.registry.RegistryQuorumNotMet):
        zcx.registry.submitBatch([reading.as_tuple()], sigs, sender=submitter)


def test_two_of_three(quorum_net, oracle_keys, tmp_path, epoch):
    zcx = quorum_net[0]
    with (
        oracle_at(tmp_path / "b", quorum_net, oracle_keys[1], leader=False) as b,
        oracle_at(tmp_path / "c", quorum_net, oracle_keys[2], leader=False) as c,
        oracle_at(tmp_path / "a", quorum_net, oracle_keys[0], peers=[c.url, b.url]) as a,
    ):
        readings = [wire(m, epoch + i * INTERVAL, gen=700 + i) for m in METERS for i in range(3)]
        # Oracle C never received the readings: it refuses; B vouches; 2 of 3 is enough.
        for oracle in (b, a):
            assert oracle.post(readings).status_code == 202
        a.wait_final(6)
        assert a.store.state_counts() == {"confirmed": 6}
        wait_until(lambda: b.store.state_counts() == {"confirmed": 6}, 15, "follower B confirmed")
        assert c.store.count_readings() == 0
        assert zcx.registry.lastEnd(meter_id("Q-2")) == epoch + 3 * INTERVAL
        assert zcx.registry.meterTotals(meter_id("Q-1")).generatedWh == 700 + 701 + 702
        [row] = a.status("Q-1")[:1]
        assert row["status"] == "confirmed" and row["tx_hash"] == b.status("Q-1")[0]["tx_hash"]


def test_peer_refuses_what_it_did_not_see(quorum_net, oracle_keys, tmp_path, epoch, chain):
    zcx = quorum_net[0]
    with oracle_at(tmp_path / "b", quorum_net, oracle_keys[1], leader=False) as b:
        assert b.post([wire("Q-1", epoch, gen=500)]).status_code == 202
        rows = b.store.readings_of("Q-1", None, None)
        genuine = [to_reading(r) for r in rows]
        forged = [Reading(genuine[0].meter_id, epoch, epoch + INTERVAL, 9_000, 1, 1, 1)]
        registry = str(zcx.registry.address)
        for readings, status in ((forged, 409), (genuine, 200), (genuine, 200)):
            digest = fast_batch_digest(readings, chain.chain_id, registry)
            body = request_for(digest, readings, chain.chain_id, registry)
            r = httpx.post(f"{b.url}/v1/attestations", json=body)
            assert r.status_code == status, r.text
        # A wrong digest for genuine readings is refused too.
        body["digest"] = "0x" + "11" * 32
        assert httpx.post(f"{b.url}/v1/attestations", json=body).status_code == 422
        assert b.store.state_counts() == {"batched": 1}
