"""The portal's event index on a real chain: incremental sync, a reverted chain re-indexed,
an index file of another deployment emptied (never mixed)."""

from __future__ import annotations

import dataclasses

import pytest
from registry_helpers import claim_hourly
from web3 import Web3

from zcx.audit.events import abis_from_manifest
from zcx.deployments import Deployment
from zcx.eip712 import Reading, sign_quorum
from zcx.ids import meter_id
from zcx.portal.index import PortalIndex

INTERVAL = 1800


@pytest.fixture(scope="module")
def claimed(registered, alice, bob, carol, submitter, oracle_keys, chain, epoch):
    readings = [
        Reading(meter_id("ALICE-PV"), s, s + INTERVAL, 1000, 200, 800, 0)
        for s in range(epoch, epoch + 4 * INTERVAL, INTERVAL)
    ]
    signatures = sign_quorum(
        readings, chain.chain_id, str(registered.registry.address), oracle_keys[:2]
    )
    registered.registry.submitBatch([r.as_tuple() for r in readings], signatures, sender=submitter)
    claim_hourly(registered.exchange, registered.registry, meter_id("ALICE-PV"), sender=alice)
    return registered


@pytest.fixture
def index(claimed, chain, tmp_path):
    w3 = Web3(Web3.HTTPProvider(chain.provider.uri))
    deployment = Deployment(
        chain_id=chain.chain_id,
        network="ethereum:local:foundry",
        deployment_block=0,
        deployment_block_hash="",
        contracts=claimed.addresses(),
    )
    return PortalIndex(tmp_path / "index.sqlite", w3, deployment, abis_from_manifest())


def _transfers(index):
    return [
        (r["recipient"], r["units"]) for r in index.query("SELECT * FROM transfers ORDER BY pos")
    ]


def test_sync_indexes_members_meters_readings_and_coins(index, alice, bob):
    head = index.sync()
    assert index.last_block == head
    assert index.scalar("SELECT COUNT(*) FROM readings") == 4
    assert index.scalar("SELECT SUM(sold_wh) FROM readings") == 3200
    assert {r["name"] for r in index.query("SELECT name FROM members")} == {
        "Alice Tanaka",
        "Bob Shoten KK",
    }
    certs = index.query("SELECT * FROM certificates ORDER BY id")  # one per clock hour
    assert [(c["meter"], c["issued_to"], c["units"]) for c in certs] == [
        ("ALICE-PV", alice.address, 2000),
        ("ALICE-PV", alice.address, 2000),
    ]
    assert certs[0]["tx"].startswith("0x") and len(certs[0]["tx"]) == 66
    assert _transfers(index) == [(alice.address, 4000)]
    assert index.sync() == head  # nothing new: nothing re-read


def test_new_blocks_are_indexed_incrementally(index, claimed, alice, bob, operator):
    index.sync()
    claimed.zcv.transfer(bob, 1500, sender=alice)
    claimed.members.setMeterFlagged(meter_id("BOB-PV"), True, "tamper", sender=operator)
    index.sync()
    assert _transfers(index) == [(alice.address, 4000), (bob.address, 1500)]
    (meter,) = index.query("SELECT flagged, flag_reason FROM meters WHERE meter = 'BOB-PV'")
    assert (meter["flagged"], meter["flag_reason"]) == (1, "tamper")
    assert index.scalar("SELECT COUNT(*) FROM readings") == 4  # not read twice


def test_a_reverted_chain_is_indexed_again(index, claimed, alice, bob, carol, chain):
    snapshot = chain.snapshot()
    claimed.zcv.transfer(bob, 1000, sender=alice)
    index.sync()
    assert (bob.address, 1000) in _transfers(index)
    chain.restore(snapshot)
    claimed.zcv.transfer(carol, 700, sender=alice)
    index.sync()
    assert _transfers(index) == [(alice.address, 4000), (carol.address, 700)]


def test_an_index_of_another_deployment_is_emptied(index, tmp_path):
    index.sync()
    assert index.scalar("SELECT COUNT(*) FROM readings") == 4
    other = dataclasses.replace(
        index.deployment,
        contracts={**index.deployment.contracts, "ZeroCarbonValue": "0x" + "11" * 20},
    )
    again = PortalIndex(index.path, index.w3, other, index.abis)
    assert again.scalar("SELECT COUNT(*) FROM readings") == 0
    assert again.scalar("SELECT value FROM meta WHERE key = 'last_block'") is None
