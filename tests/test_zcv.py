"""ZeroCarbonValue: ERC-20 behaviour, issuance rights, certificates, lot provenance, payments,
retirements, the Fig. 6 counters and revocation, each also from the attacker's side."""

from __future__ import annotations

import pytest
from conftest import INTERVAL
from eth_utils import keccak
from registry_helpers import claim_hourly
from zcv_support import (
    CONSUMPTION,
    MAX_LOTS,
    ZERO_ADDRESS,
    event_args,
    evidence_head,
    lots,
    mint,
    record,
    reverts_with,
)

from zcx.ids import meter_id

ALICE_PV = "ALICE-PV"
BOB_PV = "BOB-PV"
WIND = 1


@pytest.fixture
def zcv(registered):
    return registered.zcv


@pytest.fixture
def mint_to(registered, submit, epoch, alice, bob):
    """mint_to(owner, whs): the owner's meter records `whs` (one reading each) and is claimed."""
    labels = {str(alice.address): ALICE_PV, str(bob.address): BOB_PV}

    def _mint(owner, whs) -> int:
        return mint(registered, submit, owner, labels[str(owner.address)], whs, epoch)

    return _mint


def retire_args(units, beneficiary="Carol Bakery", reason="FY2026 Q1 store lighting"):
    return (units, beneficiary, reason, *CONSUMPTION)


def assert_conserved(zcv, holders, certificate_ids):
    """Invariant 4 for the given holders: lots sum to balances; certificates are conserved."""
    for holder in holders:
        assert sum(u for _, u in lots(zcv, holder)) == zcv.balanceOf(holder)
    for cid in certificate_ids:
        cert = zcv.certificate(cid)
        held = sum(u for h in holders for c, u in lots(zcv, h) if c == cid)
        assert held + cert.retiredUnits == cert.units


# --------------------------------------------------------------------------- ERC-20


def test_metadata(zcv):
    assert zcv.name() == "Zero-Carbon Value"
    assert zcv.symbol() == "ZCV"
    assert zcv.decimals() == 3
    assert zcv.totalSupply() == 0
    assert zcv.MAX_LOTS_PER_TRANSFER() == MAX_LOTS


def test_transfer_moves_balance_and_emits_lot_moved_then_transfer(zcv, mint_to, alice, bob):
    cid = mint_to(alice, [1000])
    tx = zcv.transfer(bob, 300, sender=alice)
    assert zcv.balanceOf(alice) == 700 and zcv.balanceOf(bob) == 300
    assert zcv.totalSupply() == 1000
    names = [log.event_name for log in tx.events]
    assert names == ["LotMoved", "Transfer"]
    assert event_args(tx, zcv.Transfer) == [
        {"from": alice.address, "to": bob.address, "value": 300}
    ]
    assert event_args(tx, zcv.LotMoved) == [
        {"from": alice.address, "to": bob.address, "certificateId": cid, "units": 300}
    ]


def test_approve_and_transfer_from(zcv, mint_to, alice, bob, carol):
    cid = mint_to(alice, [1000])
    tx = zcv.approve(bob, 400, sender=alice)
    assert event_args(tx, zcv.Approval) == [
        {"owner": alice.address, "spender": bob.address, "value": 400}
    ]
    assert zcv.allowance(alice, bob) == 400
    zcv.transferFrom(alice, carol, 250, sender=bob)
    assert zcv.allowance(alice, bob) == 150
    assert zcv.balanceOf(carol) == 250 and zcv.balanceOf(bob) == 0
    assert lots(zcv, carol) == [(cid, 250)] and lots(zcv, alice) == [(cid, 750)]
    with reverts_with("ERC20InsufficientAllowance", spender=bob, allowance=150, needed=151):
        zcv.transferFrom(alice, carol, 151, sender=bob)


def test_transfer_from_without_allowance_is_refused(zcv, mint_to, alice, carol):
    mint_to(alice, [1000])
    with reverts_with("ERC20InsufficientAllowance", spender=carol, allowance=0, needed=1):
        zcv.transferFrom(alice, carol, 1, sender=carol)
    assert zcv.balanceOf(alice) == 1000


def test_transfer_more_than_balance_reverts(zcv, mint_to, alice, bob):
    mint_to(alice, [1000])
    with reverts_with("ERC20InsufficientBalance", sender=alice, balance=1000, needed=1001):
        zcv.transfer(bob, 1001, sender=alice)
    with reverts_with("ERC20InsufficientBalance", sender=bob, balance=0, needed=1):
        zcv.transfer(alice, 1, sender=bob)


def test_transfer_to_zero_address_reverts(zcv, mint_to, alice):
    mint_to(alice, [1000])
    with reverts_with("ERC20InvalidReceiver", receiver=ZERO_ADDRESS):
        zcv.transfer(ZERO_ADDRESS, 1, sender=alice)


def test_self_and_zero_transfers_keep_lots(zcv, mint_to, alice, bob):
    first = mint_to(alice, [1000])
    second = mint_to(alice, [500])
    before = lots(zcv, alice)
    assert before == [(first, 1000), (second, 500)]
    zcv.transfer(alice, 1200, sender=alice)
    zcv.transfer(bob, 0, sender=alice)
    assert lots(zcv, alice) == before and lots(zcv, bob) == []
    with reverts_with("ERC20InsufficientBalance"):
        zcv.transfer(alice, 1501, sender=alice)


# --------------------------------------------------------------------------- issuance


@pytest.mark.parametrize("who", ["alice", "admin", "operator"])
def test_only_the_exchange_can_issue(zcv, registered, request, who, alice):
    caller = request.getfixturevalue(who)
    forged = (
        str(registered.registry.address),
        meter_id(ALICE_PV),
        "Alice Tanaka",
        0,
        1_000_000,
        0,
        INTERVAL,
        "TEPCO-13",
        5_000,
        b"\x00" * 32,
        1_000_000,
    )
    with reverts_with(
        "AccessControlUnauthorizedAccount", account=caller, neededRole=keccak(text="ISSUER_ROLE")
    ):
        zcv.issue(alice, forged, sender=caller)
    assert zcv.totalSupply() == 0 and zcv.certificateCount() == 0
    assert zcv.hasRole(zcv.ISSUER_ROLE(), registered.exchange)
    assert not zcv.hasRole(zcv.ISSUER_ROLE(), caller)


# --------------------------------------------------------------------------- certificates


def test_certificate_records_every_field(zcv, registered, submit, alice, epoch, chain):
    """Schema 2: one certificate per clock hour; static meter attributes (owner name, zone,
    method, capacity) stay in the member registry and are left empty here."""
    mid = meter_id(ALICE_PV)
    readings = record(registered, submit, ALICE_PV, [1200, 2500, 800], epoch)
    head = bytes(registered.registry.evidenceHead(mid))
    assert head == evidence_head(readings)  # the evidence is the digest of the signed readings

    tx = claim_hourly(registered.exchange, registered.registry, mid, sender=alice)
    cert = zcv.certificate(1)
    assert cert.schemaVersion == zcv.HOURLY_SCHEMA_VERSION() == 2
    assert cert.id == 1 and zcv.certificateCount() == 2
    assert cert.registry == registered.registry.address
    assert bytes(cert.meterId) == mid
    assert (cert.ownerName, cert.zone, cert.method, cert.capacityW) == ("", "", 0, 0)
    assert cert.wh == 3700
    assert (cert.periodStart, cert.periodEnd) == (epoch, epoch + 3600)
    assert bytes(cert.evidence) == head  # the claim's evidence head
    assert cert.issuedAt == chain.blocks[tx.block_number].timestamp
    assert cert.issuedTo == alice.address
    assert cert.units == 3700 and cert.retiredUnits == 0 and not cert.revoked
    hour_heads = [evidence_head(readings[:2]), evidence_head(readings[2:])]
    assert event_args(tx, zcv.CertificateIssued) == [
        {
            "certificateId": 1 + i,
            "meterId": mid,
            "to": alice.address,
            "units": wh,
            "wh": wh,
            "periodStart": epoch + 3600 * i,
            "periodEnd": epoch + 3600 * (i + 1),
            "evidence": hour_heads[i],
        }
        for i, wh in enumerate((3700, 800))
    ]

    # Later readings move the registry's head on, never the issued certificate's evidence.
    later = record(registered, submit, ALICE_PV, [100], epoch)
    assert bytes(registered.registry.evidenceHead(mid)) == evidence_head(later, head) != head
    assert bytes(zcv.certificate(1).evidence) == head


def test_certificate_carries_the_meters_method_zone_and_capacity(
    zcv, registered, submit, operator, bob, epoch
):
    mid = meter_id("BOB-WIND")
    registered.members.registerMeter(mid, bob, WIND, 20_000, "HEPCO-01", epoch, sender=operator)
    cid = mint(registered, submit, bob, "BOB-WIND", [9000], epoch)
    cert = zcv.certificate(cid)
    # Referenced, not copied: certificate -> its registry -> member registry -> the meter.
    assert (cert.method, cert.zone, cert.capacityW, cert.ownerName) == (0, "", 0, "")
    ledger = registered.registry
    assert cert.registry == ledger.address and ledger.memberRegistry() == registered.members.address
    meter = registered.members.meter(cert.meterId)
    assert (meter.spec.method, meter.zone, meter.spec.capacityW) == (WIND, "HEPCO-01", 20_000)
    assert registered.members.member(meter.spec.owner).name == "Bob Shoten KK"


def test_unknown_certificate_reverts(zcv):
    with reverts_with("ZcvUnknownCertificate", certificateId=7):
        zcv.certificate(7)


# --------------------------------------------------------------------------- provenance


def test_plain_transfer_takes_the_top_lot_first(zcv, mint_to, alice, bob):
    first = mint_to(alice, [1000])
    second = mint_to(alice, [2000])
    tx = zcv.transfer(bob, 2500, sender=alice)
    assert event_args(tx, zcv.LotMoved) == [
        {"from": alice.address, "to": bob.address, "certificateId": second, "units": 2000},
        {"from": alice.address, "to": bob.address, "certificateId": first, "units": 500},
    ]
    assert lots(zcv, alice) == [(first, 500)]
    assert lots(zcv, bob) == [(second, 2000), (first, 500)]
    assert_conserved(zcv, [alice, bob], [first, second])


def test_transfer_merges_into_the_recipients_lot_of_the_same_certificate(zcv, mint_to, alice, bob):
    cid = mint_to(alice, [1000])
    zcv.transfer(bob, 100, sender=alice)
    zcv.transfer(bob, 150, sender=alice)
    assert lots(zcv, bob) == [(cid, 250)]


def test_one_lot_per_certificate_whatever_the_order_of_arrival(zcv, mint_to, alice, bob):
    alices = mint_to(alice, [1000])
    zcv.transfer(bob, 100, sender=alice)
    bobs = mint_to(bob, [3000])  # larger: bob's own certificate becomes his current lot
    zcv.transfer(bob, 100, sender=alice)  # merged into bob's lot of alice's certificate
    assert lots(zcv, bob) == [(bobs, 3000), (alices, 200)]
    zcv.transfer(bob, 50, sender=alice)
    assert lots(zcv, bob) == [(bobs, 3000), (alices, 250)]
    assert zcv.lotCount(bob) == 2
    assert zcv.lotBalance(bob, alices) == 250 and zcv.lotBalance(bob, bobs) == 3000
    assert zcv.lotBalance(alice, bobs) == 0 and zcv.lotBalance(bob, 0) == 0
    assert_conserved(zcv, [alice, bob], [alices, bobs])


def test_units_trace_to_their_certificates_through_several_hops(zcv, mint_to, alice, bob, carol):
    a1 = mint_to(alice, [1000])
    b1 = mint_to(bob, [4000])
    a2 = mint_to(alice, [2000])  # larger than a1: alice's current lot
    zcv.transfer(bob, 2600, sender=alice)  # a2 2000, then a1 600
    assert lots(zcv, bob) == [(b1, 4000), (a2, 2000), (a1, 600)]
    zcv.transfer(carol, 3000, sender=bob)  # all from bob's current lot, b1
    assert lots(zcv, carol) == [(b1, 3000)]
    assert lots(zcv, bob) == [(b1, 1000), (a2, 2000), (a1, 600)]
    zcv.transfer(alice, 2100, sender=carol)  # b1 2100: larger than alice's a1 400
    assert lots(zcv, carol) == [(b1, 900)]
    assert lots(zcv, alice) == [(b1, 2100), (a1, 400)]
    assert_conserved(zcv, [alice, bob, carol], [a1, b1, a2])
    for cid in (a1, b1, a2):
        assert zcv.certificate(cid).issuedTo in (alice.address, bob.address)


def test_lots_are_paged_in_spend_order(zcv, mint_to, alice):
    c1, c2, c3 = mint_to(alice, [1000]), mint_to(alice, [2000]), mint_to(alice, [1500])
    order = [(c2, 2000), (c3, 1500), (c1, 1000)]  # current, then classes largest first
    assert lots(zcv, alice) == order
    pages = [[tuple(x) for x in zcv.lotsOf(alice, offset, 2)] for offset in (0, 2, 4)]
    assert pages == [order[:2], order[2:], []]
    assert [tuple(x) for x in zcv.lotsOf(alice, 1, 0)] == []
    assert zcv.lotCount(alice) == 3 and zcv.lotCount(ZERO_ADDRESS) == 0


def test_transfer_lots_moves_exactly_the_picked_units(zcv, mint_to, alice, bob):
    c1, c2, c3 = mint_to(alice, [1000]), mint_to(alice, [2000]), mint_to(alice, [2500])
    assert lots(zcv, alice) == [(c3, 2500), (c2, 2000), (c1, 1000)]
    tx = zcv.transferLots(bob, [(c1, 1000), (c3, 500)], sender=alice)
    assert lots(zcv, alice) == [(c3, 2000), (c2, 2000)]
    assert lots(zcv, bob) == [(c1, 1000), (c3, 500)]
    assert event_args(tx, zcv.Transfer) == [
        {"from": alice.address, "to": bob.address, "value": 1500}
    ]
    assert [e["certificateId"] for e in event_args(tx, zcv.LotMoved)] == [c1, c3]
    assert zcv.balanceOf(alice) == 4000 and zcv.balanceOf(bob) == 1500
    assert_conserved(zcv, [alice, bob], [c1, c2, c3])


def test_transfer_lots_from_spends_the_allowance(zcv, mint_to, alice, bob, carol):
    c1, c2 = mint_to(alice, [1000]), mint_to(alice, [2000])
    zcv.approve(bob, 500, sender=alice)
    tx = zcv.transferLotsFrom(alice, carol, [(c1, 300)], sender=bob)
    assert event_args(tx, zcv.Transfer) == [
        {"from": alice.address, "to": carol.address, "value": 300}
    ]
    assert zcv.allowance(alice, bob) == 200
    assert lots(zcv, carol) == [(c1, 300)] and lots(zcv, alice) == [(c2, 2000), (c1, 700)]
    with reverts_with("ERC20InsufficientAllowance", spender=bob, allowance=200, needed=201):
        zcv.transferLotsFrom(alice, carol, [(c2, 201)], sender=bob)
    with reverts_with("ERC20InsufficientAllowance", spender=carol, allowance=0, needed=1):
        zcv.transferLotsFrom(alice, carol, [(c2, 1)], sender=carol)
    with reverts_with("ERC20InvalidReceiver", receiver=ZERO_ADDRESS):
        zcv.transferLotsFrom(alice, ZERO_ADDRESS, [(c2, 1)], sender=bob)
    assert_conserved(zcv, [alice, carol], [c1, c2])


def test_transfer_lots_picks_must_ascend(zcv, mint_to, alice, bob):
    c1, c2 = mint_to(alice, [1000]), mint_to(alice, [2000])
    with reverts_with("ZcvLotPicksUnordered", certificateId=c1):
        zcv.transferLots(bob, [(c2, 10), (c1, 10)], sender=alice)
    with reverts_with("ZcvLotPicksUnordered", certificateId=c2):  # the same certificate twice
        zcv.transferLots(bob, [(c2, 10), (c2, 10)], sender=alice)
    with reverts_with("ZcvLotPicksUnordered", certificateId=0):  # id 0 is never a certificate
        zcv.transferLots(bob, [(0, 10)], sender=alice)
    assert lots(zcv, alice) == [(c2, 2000), (c1, 1000)]


def test_transfer_lots_refuses_a_certificate_not_held(zcv, mint_to, alice, bob):
    c1, c2 = mint_to(alice, [1000]), mint_to(alice, [2000])
    with reverts_with("ZcvLotTooSmall", certificateId=c2 + 5, requested=10, available=0):
        zcv.transferLots(bob, [(c2 + 5, 10)], sender=alice)
    zcv.transfer(bob, 2000, sender=alice)  # spends all of c2
    with reverts_with("ZcvLotTooSmall", certificateId=c2, requested=10, available=0):
        zcv.transferLots(bob, [(c1, 10), (c2, 10)], sender=alice)
    assert lots(zcv, alice) == [(c1, 1000)]


def test_transfer_lots_refuses_more_than_the_lot_and_zero_units(zcv, mint_to, alice, bob):
    c1, c2 = mint_to(alice, [1000]), mint_to(alice, [600])
    with reverts_with("ZcvLotTooSmall", certificateId=c1, requested=1001, available=1000):
        zcv.transferLots(bob, [(c1, 1001)], sender=alice)
    with reverts_with("ZcvLotTooSmall", certificateId=c2, requested=601, available=600):
        zcv.transferLots(bob, [(c1, 1), (c2, 601)], sender=alice)  # a listed lot too
    with reverts_with("ZcvZeroUnits"):
        zcv.transferLots(bob, [(c1, 0)], sender=alice)
    with reverts_with("ZcvZeroUnits"):
        zcv.transferLots(bob, [], sender=alice)
    assert lots(zcv, alice) == [(c1, 1000), (c2, 600)]


def test_transfer_lots_refuses_self_and_zero_recipient(zcv, mint_to, alice):
    c1 = mint_to(alice, [1000])
    with reverts_with("ERC20InvalidReceiver", receiver=alice):
        zcv.transferLots(alice, [(c1, 10)], sender=alice)
    with reverts_with("ERC20InvalidReceiver", receiver=ZERO_ADDRESS):
        zcv.transferLots(ZERO_ADDRESS, [(c1, 10)], sender=alice)


def test_transfer_lots_cannot_reach_another_holders_lots(zcv, mint_to, alice, bob):
    c1 = mint_to(alice, [1000])
    # Bob names Alice's certificate: picks read only the sender's own lots, where there is none.
    with reverts_with("ZcvLotTooSmall", certificateId=c1, requested=1000, available=0):
        zcv.transferLots(alice, [(c1, 1000)], sender=bob)
    assert lots(zcv, alice) == [(c1, 1000)]


def test_a_debit_that_shrinks_a_lot_moves_it_down_a_size_class(zcv, mint_to, alice, bob):
    c1, c2, c3 = mint_to(alice, [2000, 2000]), mint_to(alice, [1000]), mint_to(alice, [300])
    assert lots(zcv, alice) == [(c1, 4000), (c2, 1000), (c3, 300)]
    zcv.transferLots(bob, [(c2, 900)], sender=alice)  # c2 100: now below c3
    assert lots(zcv, alice) == [(c1, 4000), (c3, 300), (c2, 100)]
    zcv.transfer(bob, 4350, sender=alice)  # c1, then c3, then 50 of c2
    assert lots(zcv, alice) == [(c2, 50)]


@pytest.fixture
def many_lots(zcv, mint_to, alice, carol):
    """Carol holds MAX_LOTS + 2 lots of distinct certificates, all sent in one transferLots (its
    gas is O(picks), so it has no pick cap). Returns Carol's lots in spend order."""
    minted = [mint_to(alice, [100 + 7 * i]) for i in range(MAX_LOTS + 2)]
    picks = [(cid, zcv.lotBalance(alice, cid)) for cid in minted]
    zcv.transferLots(carol, picks, sender=alice)
    held = lots(zcv, carol)
    assert sorted(held) == sorted(picks) and zcv.lotCount(carol) == MAX_LOTS + 2
    return held


def test_plain_transfer_touching_more_than_max_lots_reverts(zcv, many_lots, carol, alice):
    first_32 = sum(u for _, u in many_lots[:MAX_LOTS])
    with reverts_with("ZcvTooManyLots", maxLots=MAX_LOTS):
        zcv.transfer(alice, first_32 + 1, sender=carol)
    with reverts_with("ZcvTooManyLots", maxLots=MAX_LOTS):
        zcv.pay(alice, first_32 + 1, b"\x01" * 32, sender=carol)
    with reverts_with("ZcvTooManyLots", maxLots=MAX_LOTS):
        zcv.retire(*retire_args(first_32 + 1), sender=carol)
    assert lots(zcv, carol) == many_lots

    tx = zcv.transfer(alice, first_32, sender=carol)  # exactly 32 lots: fine, in spend order
    assert [e["certificateId"] for e in event_args(tx, zcv.LotMoved)] == [
        cid for cid, _ in many_lots[:MAX_LOTS]
    ]
    assert lots(zcv, carol) == many_lots[MAX_LOTS:]
    zcv.transfer(alice, sum(u for _, u in many_lots[MAX_LOTS:]), sender=carol)  # the rest
    assert zcv.balanceOf(carol) == 0 and lots(zcv, carol) == [] and zcv.lotCount(carol) == 0


def test_transfer_lots_reaches_any_lot_of_a_large_holding(zcv, many_lots, carol, bob):
    cid, units = many_lots[-1]  # the last in spend order
    zcv.transferLots(bob, [(cid, units)], sender=carol)
    assert lots(zcv, carol) == many_lots[:-1]
    assert lots(zcv, bob) == [(cid, units)]


# --------------------------------------------------------------------------- pay


def test_pay_emits_paid_counts_used_and_moves_lots(zcv, mint_to, alice, bob):
    cid = mint_to(alice, [1000])
    ref = keccak(text="invoice 2026-01 #42")
    tx = zcv.pay(bob, 400, ref, sender=alice)
    assert event_args(tx, zcv.Paid) == [
        {"from": alice.address, "to": bob.address, "units": 400, "paymentReference": ref}
    ]
    assert [log.event_name for log in tx.events] == ["LotMoved", "Transfer", "Paid"]
    assert zcv.counters(alice).used == 400 and zcv.counters(bob).used == 0
    assert lots(zcv, bob) == [(cid, 400)] and lots(zcv, alice) == [(cid, 600)]


def test_paying_oneself_is_refused(zcv, mint_to, alice):
    """Paying oneself would count "used" coins while nothing changes hands."""
    cid = mint_to(alice, [1000])
    with reverts_with("ERC20InvalidReceiver", receiver=alice):
        zcv.pay(alice, 100, b"\x00" * 32, sender=alice)
    assert zcv.counters(alice).used == 0 and lots(zcv, alice) == [(cid, 1000)]


def test_pay_more_than_balance_changes_nothing(zcv, mint_to, alice, bob):
    mint_to(alice, [1000])
    with reverts_with("ERC20InsufficientBalance", needed=1001):
        zcv.pay(bob, 1001, b"\x00" * 32, sender=alice)
    with reverts_with("ERC20InvalidReceiver"):
        zcv.pay(ZERO_ADDRESS, 1, b"\x00" * 32, sender=alice)
    assert zcv.counters(alice).used == 0


# --------------------------------------------------------------------------- retirement


def test_retire_burns_and_records_a_versioned_retirement(zcv, mint_to, alice, bob, carol, chain):
    c1, c2 = mint_to(alice, [1000]), mint_to(alice, [2000])
    zcv.transfer(bob, 2600, sender=alice)  # bob: c2 2000, c1 600
    tx = zcv.retire(*retire_args(2300), sender=bob)  # c2 2000, then c1 300

    assert zcv.retirementCount() == 1
    record_ = zcv.retirement(1)
    assert record_.schemaVersion == zcv.RETIREMENT_SCHEMA_VERSION() == 1
    assert record_.id == 1
    assert record_.holder == bob.address
    assert record_.beneficiary == "Carol Bakery"  # separate from the holder
    assert record_.reason == "FY2026 Q1 store lighting"
    assert (record_.consumptionStart, record_.consumptionEnd) == CONSUMPTION
    assert record_.retiredAt == chain.blocks[tx.block_number].timestamp
    assert record_.units == 2300
    assert list(record_.certificateIds) == [c2, c1]
    assert list(record_.certificateUnits) == [2000, 300]
    assert event_args(tx, zcv.Retired) == [
        {
            "retirementId": 1,
            "holder": bob.address,
            "beneficiary": "Carol Bakery",
            "units": 2300,
            "consumptionStart": CONSUMPTION[0],
            "consumptionEnd": CONSUMPTION[1],
            "reason": "FY2026 Q1 store lighting",
            "certificateIds": [c2, c1],
            "certificateUnits": [2000, 300],
        }
    ]
    assert event_args(tx, zcv.Transfer) == [
        {"from": bob.address, "to": ZERO_ADDRESS, "value": 2300}
    ]
    assert zcv.balanceOf(bob) == 300 and lots(zcv, bob) == [(c1, 300)]
    assert zcv.totalSupply() == 700
    assert zcv.totalRetired() == 2300 and zcv.totalIssued() == 3000
    assert zcv.certificate(c1).retiredUnits == 300 and zcv.certificate(c2).retiredUnits == 2000
    assert zcv.counters(bob).amortized == 2300 and zcv.counters(alice).amortized == 0
    assert zcv.balanceOf(carol) == 0  # naming a beneficiary gives it nothing to hold
    assert_conserved(zcv, [alice, bob], [c1, c2])


def test_retire_lots_burns_the_picked_certificates(zcv, mint_to, alice):
    c1, c2, c3 = mint_to(alice, [1000]), mint_to(alice, [2000]), mint_to(alice, [1500])
    tx = zcv.retireLots([(c1, 100), (c2, 2000)], *retire_args(0)[1:], sender=alice)
    (event,) = event_args(tx, zcv.Retired)
    assert event["units"] == 2100
    assert event["certificateIds"] == [c1, c2] and event["certificateUnits"] == [100, 2000]
    record_ = zcv.retirement(event["retirementId"])
    assert list(record_.certificateIds) == [c1, c2] and record_.units == 2100
    assert lots(zcv, alice) == [(c3, 1500), (c1, 900)]
    assert zcv.certificate(c2).retiredUnits == 2000
    assert zcv.counters(alice).amortized == 2100 and zcv.totalRetired() == 2100
    assert_conserved(zcv, [alice], [c1, c2, c3])


def test_retire_requires_a_beneficiary(zcv, mint_to, alice):
    c1 = mint_to(alice, [1000])
    with reverts_with("ZcvEmptyBeneficiary"):
        zcv.retire(*retire_args(10, beneficiary=""), sender=alice)
    with reverts_with("ZcvEmptyBeneficiary"):
        zcv.retireLots([(c1, 10)], "", "r", *CONSUMPTION, sender=alice)


@pytest.mark.parametrize("period", [(100, 100), (200, 100)], ids=["empty", "reversed"])
def test_retire_requires_a_consumption_period(zcv, mint_to, alice, period):
    c1 = mint_to(alice, [1000])
    with reverts_with("ZcvBadConsumptionPeriod", start=period[0], end=period[1]):
        zcv.retire(10, "Alice household", "r", *period, sender=alice)
    with reverts_with("ZcvBadConsumptionPeriod", start=period[0], end=period[1]):
        zcv.retireLots([(c1, 10)], "Alice household", "r", *period, sender=alice)


def test_retire_refuses_zero_units(zcv, mint_to, alice):
    c1 = mint_to(alice, [1000])
    with reverts_with("ZcvZeroUnits"):
        zcv.retire(*retire_args(0), sender=alice)
    with reverts_with("ZcvZeroUnits"):
        zcv.retireLots([(c1, 0)], *retire_args(0)[1:], sender=alice)
    with reverts_with("ZcvLotTooSmall", certificateId=c1, requested=1001, available=1000):
        zcv.retireLots([(c1, 1001)], *retire_args(0)[1:], sender=alice)


def test_retire_more_than_balance_is_refused(zcv, mint_to, alice, bob):
    """A plain shortfall is reported as such, not as a revoked certificate."""
    mint_to(alice, [1000])
    with reverts_with("ERC20InsufficientBalance", sender=alice, balance=1000, needed=1001):
        zcv.retire(*retire_args(1001), sender=alice)
    with reverts_with("ERC20InsufficientBalance", sender=bob, balance=0, needed=1):
        zcv.retire(*retire_args(1), sender=bob)
    assert zcv.balanceOf(alice) == 1000 and zcv.totalRetired() == 0


def test_retire_shortfall_beside_revoked_lots_reports_insufficient_balance(
    zcv, mint_to, alice, operator
):
    c1 = mint_to(alice, [1000])
    zcv.revokeCertificate(c1, "fraud", sender=operator)
    mint_to(alice, [500])
    with reverts_with("ERC20InsufficientBalance", sender=alice, balance=1500, needed=1501):
        zcv.transfer(operator, 1501, sender=alice)  # what transfer reports
    with reverts_with("ERC20InsufficientBalance", sender=alice, balance=1500, needed=1501):
        zcv.retire(*retire_args(1501), sender=alice)


# --------------------------------------------------------------------------- Fig. 6 counters


def test_fig6_counters(zcv, mint_to, alice, bob, carol):
    mint_to(alice, [2000])
    mint_to(alice, [1000])
    zcv.pay(bob, 500, keccak(text="bill"), sender=alice)
    zcv.transfer(carol, 200, sender=alice)  # a transfer is not a payment
    zcv.retire(*retire_args(700), sender=alice)
    assert tuple(zcv.counters(alice)) == (3000, 500, 700, 1600)
    assert tuple(zcv.counters(bob)) == (0, 0, 0, 500)  # received coins are not "purchased"
    mint_to(bob, [400])
    zcv.retire(*retire_args(900), sender=bob)
    assert tuple(zcv.counters(bob)) == (400, 0, 900, 0)
    assert tuple(zcv.counters(carol)) == (0, 0, 0, 200)


# --------------------------------------------------------------------------- revocation


@pytest.mark.parametrize("who", ["alice", "admin"])
def test_only_the_revoker_can_revoke(zcv, mint_to, alice, request, who):
    cid = mint_to(alice, [1000])
    caller = request.getfixturevalue(who)
    with reverts_with(
        "AccessControlUnauthorizedAccount", account=caller, neededRole=keccak(text="REVOKER_ROLE")
    ):
        zcv.revokeCertificate(cid, "fraud", sender=caller)
    assert not zcv.certificate(cid).revoked


def test_revocation_is_recorded_once(zcv, mint_to, alice, operator):
    cid = mint_to(alice, [1000])
    tx = zcv.revokeCertificate(cid, "meter tampering found at inspection", sender=operator)
    assert event_args(tx, zcv.CertificateRevoked) == [
        {"certificateId": cid, "reason": "meter tampering found at inspection"}
    ]
    assert zcv.certificate(cid).revoked
    with reverts_with("ZcvAlreadyRevoked", certificateId=cid):
        zcv.revokeCertificate(cid, "again", sender=operator)
    with reverts_with("ZcvUnknownCertificate", certificateId=cid + 1):
        zcv.revokeCertificate(cid + 1, "no such certificate", sender=operator)


@pytest.fixture
def revoked(zcv, mint_to, alice, bob, operator):
    """Alice holds 1000 units of a certificate, Bob 400 of it and Alice has approved Bob; then the
    operator revokes it. Returns its id."""
    cid = mint_to(alice, [1400])
    zcv.transfer(bob, 400, sender=alice)
    zcv.approve(bob, 10_000, sender=alice)
    zcv.revokeCertificate(cid, "fraud", sender=operator)
    return cid


MOVES = {
    "transfer": lambda zcv, cid, alice, bob, carol: zcv.transfer(carol, 1, sender=alice),
    "transferFrom": lambda zcv, cid, alice, bob, carol: zcv.transferFrom(
        alice, carol, 1, sender=bob
    ),
    "pay": lambda zcv, cid, alice, bob, carol: zcv.pay(carol, 1, b"\x00" * 32, sender=alice),
    "retire": lambda zcv, cid, alice, bob, carol: zcv.retire(*retire_args(1), sender=alice),
    "retireLots": lambda zcv, cid, alice, bob, carol: zcv.retireLots(
        [(cid, 1)], *retire_args(0)[1:], sender=alice
    ),
    "transferLots": lambda zcv, cid, alice, bob, carol: zcv.transferLots(
        carol, [(cid, 1)], sender=alice
    ),
    "transferLotsFrom": lambda zcv, cid, alice, bob, carol: zcv.transferLotsFrom(
        alice, carol, [(cid, 1)], sender=bob
    ),
    "recipient_transfer": lambda zcv, cid, alice, bob, carol: zcv.transfer(carol, 1, sender=bob),
    "recipient_retireLots": lambda zcv, cid, alice, bob, carol: zcv.retireLots(
        [(cid, 400)], *retire_args(0)[1:], sender=bob
    ),
}


@pytest.mark.parametrize("path", list(MOVES))
def test_revoked_units_cannot_move(zcv, revoked, alice, bob, carol, path):
    before = (lots(zcv, alice), lots(zcv, bob), zcv.totalRetired(), zcv.allowance(alice, bob))
    with reverts_with("ZcvCertificateRevoked", certificateId=revoked):
        MOVES[path](zcv, revoked, alice, bob, carol)
    after = (lots(zcv, alice), lots(zcv, bob), zcv.totalRetired(), zcv.allowance(alice, bob))
    assert after == before == ([(revoked, 1000)], [(revoked, 400)], 0, 10_000)
    assert zcv.certificate(revoked).retiredUnits == 0 and zcv.balanceOf(carol) == 0


def test_other_units_still_move_and_revoked_lots_stay(zcv, mint_to, alice, bob, carol, operator):
    c1, c2, c3 = mint_to(alice, [1000]), mint_to(alice, [2000]), mint_to(alice, [1500])
    zcv.revokeCertificate(c2, "fraud", sender=operator)

    assert lots(zcv, alice) == [(c2, 2000), (c3, 1500), (c1, 1000)]
    assert zcv.isFrozen(c2) and not zcv.isFrozen(c1)
    assert zcv.frozenBalanceOf(alice) == 2000

    tx = zcv.transfer(bob, 1700, sender=alice)  # freezes c2 on the way, then c3 1500, c1 200
    assert event_args(tx, zcv.LotFrozen) == [
        {"holder": alice.address, "certificateId": c2, "units": 2000}
    ]
    assert [e["certificateId"] for e in event_args(tx, zcv.LotMoved)] == [c3, c1]
    assert lots(zcv, bob) == [(c3, 1500), (c1, 200)]
    assert lots(zcv, alice) == [(c1, 800), (c2, 2000)]  # c2 now in the frozen ledger, last
    tx = zcv.pay(carol, 300, b"\x00" * 32, sender=alice)  # never meets c2 again
    assert event_args(tx, zcv.LotFrozen) == []
    zcv.retire(*retire_args(100), sender=alice)
    assert lots(zcv, alice) == [(c1, 400), (c2, 2000)]
    zcv.transferLots(carol, [(c1, 400)], sender=alice)
    assert lots(zcv, alice) == [(c2, 2000)]
    assert zcv.balanceOf(alice) == 2000  # frozen, but still counted in the balance
    assert zcv.frozenBalanceOf(alice) == 2000 and zcv.lotBalance(alice, c2) == 2000

    with reverts_with("ZcvCertificateRevoked", certificateId=c2):
        zcv.transfer(bob, 1, sender=alice)
    assert zcv.certificate(c2).retiredUnits == 0
    assert_conserved(zcv, [alice, bob, carol], [c1, c2, c3])


def test_shortfall_of_unrevoked_units_reverts_with_the_revoked_certificate(
    zcv, mint_to, alice, bob, operator
):
    c1, c2 = mint_to(alice, [1000]), mint_to(alice, [2000])
    zcv.revokeCertificate(c1, "fraud", sender=operator)
    with reverts_with("ZcvCertificateRevoked", certificateId=c1):
        zcv.transfer(bob, 2001, sender=alice)  # balance 3000 covers it, unrevoked units do not
    with reverts_with("ZcvCertificateRevoked", certificateId=c1):
        zcv.retire(*retire_args(2001), sender=alice)
    zcv.transfer(bob, 2000, sender=alice)
    assert lots(zcv, alice) == [(c1, 1000)] and lots(zcv, bob) == [(c2, 2000)]
