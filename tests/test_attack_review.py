"""Attacker's review of ledger v2 (issue 11): findings written as attacks, one fresh ZCV per case.

Each case builds two identical deployments ("clean" and "attacked"), lets the attacker act on one
of them only, then runs the victim's own plain call on both and compares the receipts (LotMoved
sequence and gasUsed), as DESIGN invariant 8 states the property.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from test_zcv_griefing import GAS_TOLERANCE, Devnet, all_lots, events, moved
from zcv_support import certificate_input

from oracle.devchain import Anvil
from zcx.holder import SpendStep, split_plain_spend

OWN_LOTS = (5_000, 3_000, 2_000)


@pytest.fixture(scope="module")
def net(tmp_path_factory) -> Iterator[Devnet]:
    anvil = Anvil(tmp_path_factory.mktemp("review") / "state.json").start()
    try:
        yield Devnet(anvil.url)
    finally:
        anvil.stop()


@dataclass
class World:
    zcv: Any
    own: list[int]
    strangers: list[int]


def _world(net: Devnet, stranger_lots: tuple[int, ...]) -> World:
    """The victim holds OWN_LOTS of three certificates; the attacker holds `stranger_lots`."""
    zcv = net.deploy_zcv()
    f = zcv.functions
    for serial, units in enumerate(OWN_LOTS):
        net.mined(f.issue(net.who["victim"], certificate_input(units, serial)), "issuer")
    for serial, units in enumerate(stranger_lots, start=len(OWN_LOTS)):
        net.mined(f.issue(net.who["attacker"], certificate_input(units, serial)), "issuer")
    ids = list(range(1, len(OWN_LOTS) + len(stranger_lots) + 1))
    return World(zcv, ids[: len(OWN_LOTS)], ids[len(OWN_LOTS) :])


def _victim_transfer(net: Devnet, world: World, units: int) -> Any:
    return net.mined(world.zcv.functions.transfer(net.who["recipient"], units), "victim")


# Finding 1: a stranger's small lot jumped ahead of the victim's larger lots whenever the victim's
# current lot was a small remainder (its own partial spend), because a credit was promoted to the
# current lot when it beat the current lot's size class alone, not every listed class too.
# Revoked afterwards, the victim's next spend paid to freeze it (+~45k gas, ~1.6x).

# Lots of 16, 32, ..., 512 units: each just above the size class of the lot it would displace
# (the 10-unit remainder, then each other), all below the victim's other lots' classes (3,000 and
# 2,000 units: classes 11 and 10). A lot in the same class as a victim's lot is the documented
# residual (docs/provenance.md): it costs the attacker at least half that lot.
CLIMBING = tuple(2**k for k in range(4, 10))


@pytest.mark.parametrize("revoke", [False, True], ids=["live", "revoked"])
def test_small_lots_cannot_jump_ahead_of_the_victims_larger_lots(net, revoke):
    clean, attacked = _world(net, CLIMBING), _world(net, CLIMBING)
    for world in (clean, attacked):
        # The victim's own partial spend leaves its current lot at 10 units (size class 3).
        _victim_transfer(net, world, OWN_LOTS[0] - 10)
    f = attacked.zcv.functions
    for cid, units in zip(attacked.strangers, CLIMBING, strict=True):
        net.mined(f.transferLots(net.who["victim"], [(cid, units)]), "attacker")
    order = [cid for cid, _ in all_lots(attacked.zcv, net.who["victim"])]
    assert order[:3] == attacked.own  # the remainder, then 3,000 and 2,000: the strangers after
    if revoke:
        for world in (clean, attacked):
            for cid in world.strangers:
                net.mined(world.zcv.functions.revokeCertificate(cid, "fraud"), "operator")
    without = _victim_transfer(net, clean, 4_000)
    with_attack = _victim_transfer(net, attacked, 4_000)
    assert moved(attacked.zcv, with_attack) == moved(clean.zcv, without)
    assert events(attacked.zcv, with_attack, "LotFrozen") == []
    assert with_attack.gasUsed <= GAS_TOLERANCE * without.gasUsed


def test_a_larger_stranger_lot_still_goes_first_for_a_fresh_holder(net):
    """The promotion that the fix narrows still protects a holder whose first lot was dust: its
    first real lot, larger than everything it holds, becomes the one spent first."""
    world = _world(net, (1,))
    f, newcomer = world.zcv.functions, net.who["anyone"]
    net.mined(f.transferLots(newcomer, [(world.strangers[0], 1)]), "attacker")
    net.mined(f.transferLots(newcomer, [(world.own[1], 3_000)]), "victim")
    assert all_lots(world.zcv, newcomer) == [(world.own[1], 3_000), (world.strangers[0], 1)]


# Finding 2 (SDK): split_plain_spend counted a revoked lot trailing a step's last take as visited
# by that step, but the contract stops at its last take, so the next transaction met it first,
# froze it, and visited MAX_LOTS_PER_TRANSFER + 1 lots: ZcvTooManyLots, the split spend stuck.


def test_split_counts_a_trailing_revoked_lot_in_the_next_step():
    lots = [(1, 5), (2, 5), (3, 5), (4, 5)]
    # Two lots a step: [1, frozen 2] moves 5 and stops at 1; 2 is met by the next step.
    assert split_plain_spend(lots, {2}, 15, 2) == [SpendStep(5), SpendStep(5), SpendStep(5)]
    assert split_plain_spend([*lots, (5, 5)], {2, 3}, 15, 2) == [
        SpendStep(5),
        SpendStep(0, (2, 3)),
        SpendStep(10),
    ]


def test_a_split_spend_with_a_revoked_lot_at_the_step_boundary_goes_through(net):
    """70 honest lots; the lot at the last position of the first 32-lot step is revoked. Every
    transaction the SDK plans must go through, and the whole free balance leaves."""
    zcv = net.deploy_zcv()
    f, holder, recipient = zcv.functions, net.who["victim"], net.who["recipient"]
    for serial in range(70):
        net.send(f.issue(holder, certificate_input(100, serial)), "issuer")
    net.settle()
    max_lots = f.MAX_LOTS_PER_TRANSFER().call()
    order = all_lots(zcv, holder)
    revoked = order[max_lots - 1][0]
    net.mined(f.revokeCertificate(revoked, "fraud"), "operator")
    steps = split_plain_spend(order, {revoked}, 69 * 100, max_lots)
    for step in steps:
        for cid in step.evict:
            net.mined(f.evict(holder, cid), "anyone")
        if step.units:
            net.mined(f.transfer(recipient, step.units), "victim")
    assert f.balanceOf(holder).call() == 100 == f.frozenBalanceOf(holder).call()
    assert f.balanceOf(recipient).call() == 69 * 100
