"""Tampering the audit must catch, each flagged by the check's name: a compromised oracle key
signing an impossible reading, an oracle store edited after submission, a gateway CSV that
disagrees with the chain, a forged oracle signer set, and a node that lies about the logs."""

from __future__ import annotations

import json
import sqlite3
import time

import pytest
from audit_support import RpcProxy, day_start, deployment_of, solar, standard_scenario
from conftest import INTERVAL, SOLAR
from eth_account import Account
from eth_utils import keccak

from zcx.audit import AuditConfig, audit
from zcx.audit.cli import web3_for
from zcx.audit.crosscheck import SourceRow, csv_rows, sqlite_rows, write_csv
from zcx.audit.events import abis_from_ape
from zcx.ids import meter_id


@pytest.fixture(scope="module")
def abis():
    return abis_from_ape()


@pytest.fixture
def scenario(registered, submit, alice, bob, carol, epoch):
    return standard_scenario(registered, submit, alice, bob, carol, epoch)


def _rows(batches) -> list[SourceRow]:
    from zcx.ids import meter_label

    return [
        SourceRow(
            meter_label(r.meter_id),
            r.start,
            r.end,
            r.generated_wh,
            r.consumed_wh,
            r.sold_wh,
            r.purchased_wh,
        )
        for batch in batches
        for r in batch
    ]


def _checks(result, severity=None):
    return result.checks_flagged(severity)


def test_compromised_oracle_over_capacity_is_caught(
    registered, submit, admin, operator, carol, chain, abis, epoch
):
    """Two oracle keys are stolen and the admin's margin is 50 %: the chain takes 3,600 Wh in
    30 min from a 5 kW roof (max 2,500 Wh). The audit's physical margin (10 %) does not."""
    registered.registry.setCapacityMarginBps(5000, sender=admin)
    registered.members.registerMember(carol, "Carol Cafe", 2, sender=operator)
    registered.members.registerMeter(
        meter_id("CAROL-PV"), carol, SOLAR, 10_000, "TEPCO-13", epoch - 86400, sender=operator
    )
    t0 = day_start(epoch)
    night = t0 + 13 * 3600  # 14:00 UTC = 23:00 JST
    submit(
        [
            solar("ALICE-PV", t0, 3600),  # 1.44x nameplate: physically impossible
            solar("ALICE-PV", night, 400),  # solar power at 23:00 in Tokyo
            solar("BOB-PV", t0, 10000, 4000),
            solar("CAROL-PV", t0, 2000),
            solar("CAROL-PV", t0 + INTERVAL, 8000),  # beyond even the chain's 50 %: rejected
        ]
    )
    gateway = [
        SourceRow("CAROL-PV", t0, t0 + INTERVAL, 2000, 300, 1700, 0),
        SourceRow("CAROL-PV", t0 + INTERVAL, t0 + 2 * INTERVAL, 8000, 300, 7700, 0),
    ]
    result = audit(
        chain.provider.web3, deployment_of(registered, chain), abis, sources=[("gateway", gateway)]
    )
    refused = [f for f in result.warnings if f.check == "reading_rejected_on_chain"]
    assert len(refused) == 1 and "RegistryGenerationExceedsCapacity" in refused[0].message
    plaus = [f for f in result.violations if f.check == "capacity_plausibility"]
    assert [(f.subject, f.details["pq1"]) for f in plaus] == [("ALICE-PV", 3600)]
    assert "1.44x" in plaus[0].message
    night_warnings = [f for f in result.warnings if f.check == "solar_at_night"]
    assert [f.subject for f in night_warnings] == ["ALICE-PV"] and "23:00" in night_warnings[
        0
    ].message
    outliers = [f for f in result.warnings if f.check == "zone_peer_outlier"]
    assert [f.subject for f in outliers] == ["ALICE-PV"]
    assert _checks(result, "violation") == {"capacity_plausibility"}
    # The chain's own margin let 3,600 Wh through: the audit is the only line that catches it.
    assert list(result.ledger.rejected["meter"]) == ["CAROL-PV"]
    # An auditor granting the same 50 % margin as the chain sees no violation (the knob works).
    lenient = audit(
        chain.provider.web3,
        deployment_of(registered, chain),
        abis,
        AuditConfig(capacity_margin_bps=5000),
    )
    assert "capacity_plausibility" not in _checks(lenient)


def _oracle_store(path, rows, rejected=()):
    """An oracle store (oracle/store.py schema) holding rows the chain confirmed or rejected."""
    from oracle.store import Store

    Store(path).close()
    db = sqlite3.connect(path)
    with db:
        for state, group in (("confirmed", rows), ("rejected", rejected)):
            for r in group:
                db.execute(
                    "INSERT INTO readings (meter, start, end, gen, cons, sold, purchased, state, "
                    "source, "
                    "accepted_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'gw-1', ?)",
                    (r.meter, r.start, r.end, r.pq1, r.pq2, r.pq3, r.pq4, state, time.time()),
                )
        # A reading still on its way is not expected on chain yet.
        db.execute(
            "INSERT INTO readings (meter, start, end, gen, cons, sold, purchased, state, source, "
            "accepted_at) VALUES ('ALICE-PV', 1, 1801, 5, 5, 0, 0, 'accepted', 'gw-1', 0)"
        )
    db.close()
    return path


def test_oracle_store_edited_after_submission(registered, scenario, chain, abis, tmp_path):
    rows = _rows(scenario["batches"])
    # The replayed reading (PQ1 999) never got into the oracle's store (same meter and start).
    store = _oracle_store(tmp_path / "oracle.sqlite", [r for r in rows if r.pq1 != 999])
    dep = deployment_of(registered, chain)
    clean = audit(chain.provider.web3, dep, abis, sources=[("store", list(sqlite_rows(store)))])
    assert clean.violations == [] and clean.warnings == []

    # Someone edits the store after the batch went on chain: inflates one reading, deletes another.
    db = sqlite3.connect(store)
    with db:
        db.execute(
            "UPDATE readings SET gen = gen + 5000 WHERE meter = 'BOB-PV' AND start = ?",
            (scenario["t0"] + INTERVAL,),
        )
        db.execute(
            "DELETE FROM readings WHERE meter = 'ALICE-PV' AND start = ?",
            (scenario["t0"] + 2 * INTERVAL,),
        )
    db.close()
    edited = audit(chain.provider.web3, dep, abis, sources=[("store", list(sqlite_rows(store)))])
    by_check = {(f.check, f.subject) for f in edited.violations}
    assert by_check == {("reading_altered", "BOB-PV"), ("reading_without_source", "ALICE-PV")}
    altered = next(f for f in edited.violations if f.check == "reading_altered")
    assert "pq1 17500 vs 12500" in altered.message


def test_gateway_csv_disagrees_with_chain(registered, scenario, chain, abis, tmp_path):
    rows = _rows(scenario["batches"])
    t0 = scenario["t0"]
    csv_rows_ = [
        r._replace(pq4=r.pq4 + 77) if (r.meter, r.start) == ("ALICE-PV", t0 + INTERVAL) else r
        for r in rows
        if r.pq1 != 999
    ]
    csv_rows_.append(SourceRow("BOB-PV", t0 + 9 * INTERVAL, t0 + 10 * INTERVAL, 9000, 100, 8900, 0))
    path = write_csv(tmp_path / "gateway.csv", csv_rows_)
    assert list(csv_rows(path)) == csv_rows_  # the CSV format round-trips (ISO-8601 times)
    result = audit(
        chain.provider.web3,
        deployment_of(registered, chain),
        abis,
        sources=[("gateway.csv", list(csv_rows(path)))],
    )
    found = {(f.check, f.subject) for f in result.violations}
    assert found == {("reading_altered", "ALICE-PV"), ("reading_lost", "BOB-PV")}
    altered = next(f for f in result.violations if f.check == "reading_altered")
    assert "pq4 77 vs 0" in altered.message


def test_forged_signer_set(
    registered, submit, admin, chain, abis, epoch, oracle_keys, oracle_addresses
):
    """A compromised admin registers its own oracle key and drops the quorum to 1, then feeds
    readings signed by that key alone. Every signature is valid for the on-chain signer set, so
    only an auditor who holds the signer set it trusts can tell: `trusted_signers`."""
    rogue = keccak(text="rogue-oracle")
    rogue_address = Account.from_key(rogue).address
    registered.registry.addSigner(rogue_address, sender=admin)
    registered.registry.setQuorum(1, sender=admin)
    t0 = day_start(epoch)
    submit([solar("ALICE-PV", t0, 1000)], keys=[rogue])
    submit([solar("ALICE-PV", t0 + INTERVAL, 1100)])  # an honest 2-of-3 batch
    dep = deployment_of(registered, chain)

    naive = audit(chain.provider.web3, dep, abis)
    assert naive.violations == []  # consistent with the chain's own history
    changes = [f.message for f in naive.warnings if f.check == "signer_set_changed"]
    assert changes == [f"signer add: {rogue_address}", "quorum set to 1"]

    trusting = audit(
        chain.provider.web3, dep, abis, AuditConfig(trusted_signers=set(oracle_addresses))
    )
    flagged = [f for f in trusting.violations if f.check == "trusted_signers"]
    assert len(flagged) == 2  # the rogue key's registration and the batch it signed alone
    assert all(rogue_address in f.message for f in flagged)
    assert _checks(trusting, "violation") == {"trusted_signers"}


def test_lying_node_is_caught_by_signature_reverification(registered, scenario, chain, abis):
    """A node (or indexer) that rewrites one ReadingRecorded in its eth_getLogs answers: the
    rebuilt batch no longer hashes to the signed digest, and the views disagree with the logs."""
    topic = (
        "0x"
        + keccak(text="ReadingRecorded(bytes32,uint64,uint64,uint64,uint64,uint64,uint64)").hex()
    )
    bob_topic = "0x" + meter_id("BOB-PV").hex()

    def rewrite(method, params, result):
        if method != "eth_getLogs":
            return result
        for entry in result:
            if (
                entry["topics"][:2] == [topic, bob_topic]
                and int(entry["data"][2 + 128 : 2 + 192], 16) == 12500
            ):
                words = entry["data"][2:]
                entry["data"] = "0x" + words[:128] + f"{2500:064x}" + words[192:]
        return result

    with RpcProxy(chain.provider.uri, rewrite=rewrite) as proxy:
        result = audit(web3_for(proxy.url), deployment_of(registered, chain), abis, page_blocks=7)
    sig = [f for f in result.violations if f.check == "batch_signatures"]
    assert (
        len(sig) == 1
        and "altered after signing" in sig[0].message
        and sig[0].subject.startswith("batch 0")
    )
    assert "state_matches_events" in _checks(result, "violation")
    json.dumps([str(f) for f in result.findings])  # findings are printable


def test_revoked_certificate_stays_frozen(registered, scenario, chain, abis, operator, bob):
    registered.zcv.revokeCertificate(3, "meter found tampered", sender=operator)
    result = audit(chain.provider.web3, deployment_of(registered, chain), abis)
    assert result.violations == []
    certs = result.ledger.certificates.set_index("certificate_id")
    assert bool(certs.loc[3, "revoked"]) and list(result.ledger.revocations["certificate_id"]) == [
        3
    ]
