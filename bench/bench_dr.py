"""Gas of demand response: announcing an event and settling it for 1, 10 and 60 members.

A fresh Anvil is started through Ape (ethereum:local:foundry); the core, JPYT (MockYenToken) and
DemandResponse are deployed, and 60 members registered. Every figure is one receipt's `gas_used`
(21,000 base and calldata included), taken in an Anvil snapshot of the same state, after the
receipt's events prove the settlement paid every member. Members already hold JPYT (a warm
balance slot), as they would after their first reward; the operator approved DemandResponse once.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)

NETWORK = "ethereum:local:foundry"
YEN = 10**18
RATE = 30 * YEN
SIZES = (1, 10, 60)
HOUSEHOLD = 0

Figures = dict[str, dict[str, Any]]


def run() -> Figures:
    from ape import networks
    from ape.logging import logger as ape_logger

    with ape_logger.at_level("WARNING"):
        with networks.parse_network_choice(NETWORK):
            return _measure()


def _figure(value: float, unit: str, note: str) -> dict[str, Any]:
    return {"value": value, "unit": unit, "note": note}


def _measure() -> Figures:
    from ape import accounts, chain
    from eth_account import Account

    from zcx.deploy import deploy_all
    from zcx.dr import deploy_demand_response
    from zcx.market import deploy_mock_yen

    test = accounts.test_accounts
    admin, operator, signer = test[0], test[1], test[2]
    contracts, _ = deploy_all(admin, operator.address, [signer.address], 1)
    jpyt = deploy_mock_yen(admin, operator.address)
    dr = deploy_demand_response(admin, operator, jpyt, contracts.registry)
    members = sorted(
        (Account.create(f"zcx-bench-dr-{i}").address for i in range(max(SIZES))),
        key=lambda a: int(a, 16),
    )
    for i, member in enumerate(members):
        contracts.members.registerMember(member, f"member {i}", HOUSEHOLD, sender=operator)
        jpyt.mint(member, 1, sender=operator)  # warm balance slot
    jpyt.mint(operator, 10**30, sender=operator)
    jpyt.approve(dr, 2**256 - 1, sender=operator)
    start = (chain.pending_timestamp // 1800 + 2) * 1800
    announce = dr.announce("BENCH", start, 4, 10_000, RATE, [], sender=operator)
    figures: Figures = {
        "dr_announce_gas": _figure(
            int(announce.gas_used), "gas", "announce a 4-slot event open to its zone"
        )
    }
    chain.pending_timestamp = start + 4 * 1800 + 1
    chain.mine()
    for n in SIZES:
        snapshot = chain.snapshot()
        try:
            tx = dr.settle(1, members[:n], [1000 + i for i in range(n)], sender=operator)
            paid = [e for e in tx.events if e.event_name == "DemandResponseRewarded"]
            if len(paid) != n or any(int(e.amount) == 0 for e in paid):
                raise RuntimeError(f"settle({n}) did not pay every member")
            gas = int(tx.gas_used)
        finally:
            chain.restore(snapshot)
        figures[f"dr_settle_gas_{n}"] = _figure(
            gas, "gas", f"settle one event paying {n} members (each a non-zero reward)"
        )
        if n > 1:
            figures[f"dr_settle_gas_per_member_{n}"] = _figure(
                round(gas / n), "gas/member", f"dr_settle_gas_{n} / {n}"
            )
    return figures
