"""ZeroCarbonValue's packed bookkeeping (issue 11 gas work): the ERC-20 balance shares the
holder's Account slot with the current lot, size-class heads are packed six to a slot, and
balances and lots are 88-bit numbers under a supply cap. Checked against the Python model
(zcv_support.LotBook) across every size class and every head slot boundary, and from the side
of an issuer trying to overflow a packed balance."""

from __future__ import annotations

import pytest
from zcv_support import (
    CONSUMPTION,
    MAX_LOTS,
    LotBook,
    certificate_input,
    event_args,
    lots,
    reverts_with,
)

SUPPLY_CAP = 2**88 - 1


@pytest.fixture
def zcv_registered(registered):
    return registered.zcv


@pytest.fixture
def issuer(accounts, registered, admin):
    account = accounts[6]
    registered.zcv.grantRole(registered.zcv.ISSUER_ROLE(), account, sender=admin)
    return account


def _issue(zcv, issuer, holder, units, serial, book):
    tx = zcv.issue(holder, certificate_input(units, serial, wh=1_000), sender=issuer)
    (issued,) = event_args(tx, zcv.CertificateIssued)
    book.issue(str(holder.address), issued["certificateId"], units)
    return issued["certificateId"]


def _spend_all_in_order(zcv, book, holder, to):
    """Plain transfers of at most MAX_LOTS lots each until `holder` is empty; every LotMoved
    must be the model's prediction."""
    while zcv.balanceOf(holder):
        view = book.view(str(holder.address))
        units = sum(u for _, u in view[:MAX_LOTS])
        tx = zcv.transfer(to, units, sender=holder)
        moved = [(e["certificateId"], e["units"]) for e in event_args(tx, zcv.LotMoved)]
        assert moved == book.transfer(str(holder.address), str(to.address), units)


def test_lots_in_every_size_class_are_spent_largest_first(zcv_registered, issuer, alice, bob):
    """64 size classes live in 11 packed head slots: lots arriving in a scrambled order, two
    sharing a class (LIFO within it) and lots beyond 2^63 (the capped top class), are listed
    and spent exactly in the model's order, and arrive in the same order at the recipient."""
    zcv, book = zcv_registered, LotBook()
    sizes = [2**c + c for c in range(64)] + [2**63 + 5, 2**80, 3, 2**87]
    order = sorted(range(len(sizes)), key=lambda i: (i * 37) % len(sizes))
    for serial, i in enumerate(order):
        _issue(zcv, issuer, alice, sizes[i], serial, book)
    a, b = str(alice.address), str(bob.address)
    assert [tuple(x) for x in lots(zcv, alice)] == book.view(a)
    assert zcv.lotCount(alice) == len(sizes)
    assert zcv.balanceOf(alice) == sum(sizes) == zcv.totalSupply()

    _spend_all_in_order(zcv, book, alice, bob)
    assert zcv.lotCount(alice) == 0 and lots(zcv, alice) == []
    assert [tuple(x) for x in lots(zcv, bob)] == book.view(b)
    assert zcv.balanceOf(bob) == sum(sizes) == book.balance(b)
    # Named picks reach a lot anywhere in the packed lists, and the rest still pages correctly.
    mid = book.view(b)[len(sizes) // 2]
    zcv.transferLots(alice, [mid], sender=bob)
    book.take_picks(b, a, [mid])
    assert [tuple(x) for x in lots(zcv, bob)] == book.view(b)
    assert [tuple(x) for x in lots(zcv, alice)] == book.view(a) == [tuple(mid)]
    assert zcv.balanceOf(alice) + zcv.balanceOf(bob) == zcv.totalSupply()


def test_an_issuer_cannot_push_the_supply_past_the_packed_width(zcv_registered, issuer, alice, bob):
    """Balances and lots are 88-bit: the issuance that would lift the supply past 2^88 - 1
    reverts and stores nothing; everything below the cap moves and retires normally."""
    zcv, book = zcv_registered, LotBook()
    big = _issue(zcv, issuer, alice, SUPPLY_CAP - 1, 0, book)
    _issue(zcv, issuer, bob, 1, 1, book)
    assert zcv.totalSupply() == SUPPLY_CAP
    count = zcv.certificateCount()

    with reverts_with("ZcvSupplyCapExceeded", supply=SUPPLY_CAP + 1, cap=SUPPLY_CAP):
        zcv.issue(bob, certificate_input(1, 2, wh=1_000), sender=issuer)
    assert zcv.certificateCount() == count
    assert zcv.totalSupply() == SUPPLY_CAP and zcv.balanceOf(bob) == 1

    # The largest balances still move and burn exactly.
    zcv.transfer(bob, SUPPLY_CAP - 2, sender=alice)
    assert zcv.balanceOf(alice) == 1 and zcv.balanceOf(bob) == SUPPLY_CAP - 1
    assert zcv.lotBalance(bob, big) == SUPPLY_CAP - 2
    zcv.retire(SUPPLY_CAP - 1, "Bob Shoten KK", "cap test", *CONSUMPTION, sender=bob)
    assert zcv.balanceOf(bob) == 0 and zcv.totalSupply() == 1
    # Retired units free room under the cap again.
    _issue(zcv, issuer, bob, SUPPLY_CAP - 1, 3, book)
    assert zcv.totalSupply() == SUPPLY_CAP


def test_frozen_balance_counts_revoked_lots_in_every_head_slot(
    zcv_registered, issuer, operator, alice
):
    """frozenBalanceOf walks the packed head lanes: revoked lots still listed in size classes of
    three head slots (classes 2, 13 and 40) count, live ones never do (the top-class current
    lot, listed classes 2 and 20), and a revoked lot evicted to the frozen ledger counts once."""
    zcv, book = zcv_registered, LotBook()
    sizes = [5, 2**13 + 1, 2**40 + 3, 2**70, 2**20, 7]
    ids = [_issue(zcv, issuer, alice, units, serial, book) for serial, units in enumerate(sizes)]
    revoked = {ids[0]: sizes[0], ids[1]: sizes[1], ids[2]: sizes[2]}
    assert zcv.frozenBalanceOf(alice) == 0
    for certificate_id in revoked:
        zcv.revokeCertificate(certificate_id, "fraud", sender=operator)
    assert zcv.frozenBalanceOf(alice) == sum(revoked.values())

    zcv.evict(alice, ids[1], sender=alice)
    assert zcv.frozenBalanceOf(alice) == sum(revoked.values())
    assert zcv.balanceOf(alice) == sum(sizes)
