"""Gas of the ZCV market: list, fill, cancel, deposit, the same after a stranger sprayed 1,000
dust lots at the market, the seller and the buyer, and the baseline of a plain two-token swap.

A fresh Anvil is started through Ape (ethereum:local:foundry) and the project's contracts are
deployed on it: the core (MemberRegistry, GenerationRegistry, ZeroCarbonValue, ValueExchange), JPYT
(MockYenToken, 18 decimals), ZcvMarket with a 2.5 % fee, contracts/test/BaselineSwap.sol and
contracts/test/DustSprayer.sol (the attacker). Certificates are issued by a test account holding
ISSUER_ROLE (the issuance path is measured in bench_gas). Every figure is one receipt's
`gas_used` (21,000 base and calldata included), taken in an Anvil snapshot of the same warm
state, after the receipt's events prove the scenario did what it says.

The baseline is the cheapest atomic swap of the same two tokens: one call to BaselineSwap that
does ZCV.transferFrom(seller -> buyer) and JPYT.transferFrom(buyer -> seller), the same units,
the same price, from the same state as the fill. Target (issue 11): a fill costs at most 2x the
baseline; a cancel after 1,000 dust lots at most 1.1x the clean cancel.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

log = logging.getLogger(__name__)

NETWORK = "ethereum:local:foundry"
YEN = 10**18
UNIT_PRICE = 3 * YEN // 1000  # 3 JPYT per kWh
FEE_BPS = 250
CERT_UNITS = 10_000
FILL_UNITS = 100
FILL_VS_SWAP_TARGET = 2.0
DUST_LOTS = 1000
DUST_PER_TX = 25
DUST_TARGET = 1.1
ANY_METHOD = 255

Figures = dict[str, dict[str, Any]]


def run() -> Figures:
    from ape import networks
    from ape.logging import logger as ape_logger

    with ape_logger.at_level("WARNING"):
        with networks.parse_network_choice(NETWORK):
            return _MarketBench().measure()


def _figure(value: float, unit: str, note: str, target: str | None = None) -> dict[str, Any]:
    figure: dict[str, Any] = {"value": value, "unit": unit, "note": note}
    if target is not None:
        figure["target"] = target
    return figure


class _MarketBench:
    def __init__(self) -> None:
        from ape import accounts, chain, project

        from zcx.deploy import deploy_all
        from zcx.market import deploy_market, deploy_mock_yen

        self.chain = chain
        test = accounts.test_accounts
        self.admin, self.operator, self.signer = test[0], test[1], test[2]
        self.alice, self.bob, self.issuer, self.fees = test[3], test[4], test[5], test[6]
        contracts, _ = deploy_all(self.admin, self.operator.address, [self.signer.address], 1)
        self.zcv = contracts.zcv
        self.zcv.grantRole(self.zcv.ISSUER_ROLE(), self.issuer, sender=self.admin)
        self.jpyt = deploy_mock_yen(self.admin, self.operator.address)
        self.market = deploy_market(
            self.admin, self.zcv, self.jpyt, FEE_BPS, self.fees, operator=self.operator
        )
        self.swap = self.admin.deploy(project.BaselineSwap)
        self.sprayer = self.admin.deploy(project.DustSprayer, self.zcv, contracts.registry)
        self.zcv.grantRole(self.zcv.ISSUER_ROLE(), self.sprayer, sender=self.admin)
        self.attacker = test[7]

    # -- helpers

    def _issue(self, to: Any, units: int) -> int:
        start = int(time.time()) // 3600 * 3600 - 30 * 86400  # recent: not expired
        tx = self.zcv.issue(
            to,
            (
                self.zcv.address,
                b"\x11" * 32,
                "Bench PV",
                0,
                units,
                start,
                start + 1800,
                "TEPCO-13",
                5000,
                b"\x22" * 32,
                units,
            ),
            sender=self.issuer,
        )
        return int(tx.decode_logs(self.zcv.CertificateIssued)[0].certificateId)

    def _deposit(self, certificate_id: int, units: int) -> Any:
        return self.market.deposit([[certificate_id, units]], sender=self.alice)

    def _list(self, certificate_id: int, units: int) -> Any:
        expiry = self.chain.pending_timestamp + 30 * 86400
        return self.market.list(
            [[certificate_id, units]], UNIT_PRICE, expiry, ANY_METHOD, 0, 0, sender=self.alice
        )

    def _spray(self, victims: list[Any]) -> None:
        """The attacker sends DUST_LOTS one-unit lots of distinct certificates to each victim."""
        left = DUST_LOTS
        while left:
            count = min(left, DUST_PER_TX)
            self.sprayer.spray([str(v.address) for v in victims], count, sender=self.attacker)
            left -= count
        for victim in victims:
            if int(self.zcv.lotCount(victim)) < DUST_LOTS:
                raise RuntimeError(f"the spray left {victim} with too few lots")

    @contextmanager
    def _isolated(self) -> Iterator[None]:
        snapshot = self.chain.snapshot()
        try:
            yield
        finally:
            self.chain.restore(snapshot)

    # -- scenario

    def measure(self) -> Figures:
        # Warm state: Alice holds two certificates, approved the market and made one earlier
        # listing (and a deposit); Bob holds JPYT, approved both the market and the swap
        # contract, and already bought once (he holds a lot of a third certificate, which Alice
        # listed whole: so the fill and the baseline swap both give Bob a new certificate).
        prior = self._issue(self.alice, 1_000)
        old = self._issue(self.alice, CERT_UNITS)
        cert = self._issue(self.alice, CERT_UNITS)
        self.jpyt.mint(self.bob, 1_000_000 * YEN, sender=self.operator)
        self.jpyt.mint(self.alice, 1 * YEN, sender=self.operator)
        self.jpyt.mint(self.fees, 1 * YEN, sender=self.operator)
        self.jpyt.approve(self.market, 2**256 - 1, sender=self.bob)
        self.jpyt.approve(self.swap, 2**256 - 1, sender=self.bob)
        self.zcv.approve(self.swap, 2**256 - 1, sender=self.alice)
        self.zcv.approve(self.market, 2**256 - 1, sender=self.alice)
        first = self._list(prior, 1_000)
        first_id = int(first.decode_logs(self.market.Listed)[0].listingId)
        deadline = self.chain.pending_timestamp + 365 * 86400
        self.market.buy(first_id, 10, 10 * UNIT_PRICE, deadline, sender=self.bob)
        deposit = self._deposit(old, 1_000)

        # The same list, fill and cancel from this state, clean and after the spray.
        with self._isolated():
            listing, (fill, swap, cancel) = self._list_and_trade(cert, deadline)
        with self._isolated():
            self._spray([self.market, self.alice, self.bob])
            dusty_list, (dusty_fill, _, dusty_cancel) = self._list_and_trade(cert, deadline)

        fill_gas, swap_gas = int(fill.gas_used), int(swap.gas_used)
        cancel_gas, dusty_cancel_gas = int(cancel.gas_used), int(dusty_cancel.gas_used)
        ratio = fill_gas / swap_gas
        log.info("market fill %s gas, baseline swap %s gas (%.2fx)", fill_gas, swap_gas, ratio)
        dust_note = (
            f"after a stranger sent {DUST_LOTS:,} one-unit lots of distinct certificates (some "
            "revocable, none revoked) to the market, the seller and the buyer (DustSprayer); "
            "same state otherwise"
        )
        return {
            "market_list_gas": _figure(
                int(listing.gas_used),
                "gas",
                "list() of one certificate (2,000 units) pulled from the seller's wallet with "
                "zcv.transferLotsFrom (the seller approved the market; a new lot at the market); "
                "writes the listing (3 slots), its entry and the custody counter.",
            ),
            "market_list_gas_after_dust_1000": _figure(
                int(dusty_list.gas_used),
                "gas",
                f"the same list(), {dust_note}.",
                f"<= {DUST_TARGET * int(listing.gas_used):.0f} (1.1x market_list_gas)",
            ),
            "market_deposit_gas": _figure(
                int(deposit.gas_used),
                "gas",
                "deposit() of one certificate (1,000 units) from the seller's wallet to its "
                "deposit at the market (optional step: list pulls from the wallet itself).",
            ),
            "market_fill_gas": _figure(
                fill_gas,
                "gas",
                f"buy() of {FILL_UNITS} units (partial fill) of a one-certificate listing with a "
                f"{FILL_BPS_TEXT} fee: one listing entry, one transferLots market->buyer (new "
                "lot for the buyer), JPYT buyer->fee recipient and buyer->seller (both hold JPYT "
                "already). Buyer holds JPYT and another certificate's lot.",
                f"<= {FILL_VS_SWAP_TARGET * swap_gas:.0f} (2x market_swap_baseline_gas)",
            ),
            "market_fill_gas_after_dust_1000": _figure(
                int(dusty_fill.gas_used),
                "gas",
                f"the same buy(), {dust_note}.",
                f"<= {DUST_TARGET * fill_gas:.0f} (1.1x market_fill_gas)",
            ),
            "market_swap_baseline_gas": _figure(
                swap_gas,
                "gas",
                f"BaselineSwap.swap: ZCV.transferFrom(seller->buyer, {FILL_UNITS} units of a "
                "certificate new to the buyer, as in the fill) + JPYT.transferFrom(buyer->seller), "
                "same state as the fill; no fee, no custody, no provenance choice, no checks.",
            ),
            "market_fill_vs_swap": _figure(
                round(ratio, 3),
                "x",
                "market_fill_gas / market_swap_baseline_gas, measured in the same run.",
                f"<= {FILL_VS_SWAP_TARGET}",
            ),
            "market_cancel_gas": _figure(
                cancel_gas,
                "gas",
                "cancel() of an open one-certificate listing (2,000 units): revocation check, "
                "listing cleared, one transferLots market->seller (she holds that certificate).",
            ),
            "market_cancel_gas_after_dust_1000": _figure(
                dusty_cancel_gas,
                "gas",
                f"the same cancel(), {dust_note}.",
                f"<= {DUST_TARGET * cancel_gas:.0f} (1.1x market_cancel_gas)",
            ),
            "market_cancel_after_dust_vs_clean": _figure(
                round(dusty_cancel_gas / cancel_gas, 3),
                "x",
                "market_cancel_gas_after_dust_1000 / market_cancel_gas, same run.",
                f"<= {DUST_TARGET}",
            ),
        }

    def _list_and_trade(self, cert: int, deadline: int) -> tuple[Any, tuple[Any, Any, Any]]:
        listing = self._list(cert, 2_000)
        self._check_listed(listing, cert, 2_000)
        listing_id = int(listing.decode_logs(self.market.Listed)[0].listingId)
        return listing, self._trade(listing_id, cert, deadline)

    def _trade(self, listing_id: int, cert: int, deadline: int) -> tuple[Any, Any, Any]:
        """A partial fill, the baseline swap and a cancel, each from the same state."""
        with self._isolated():
            fill = self.market.buy(
                listing_id, FILL_UNITS, FILL_UNITS * UNIT_PRICE, deadline, sender=self.bob
            )
            self._check_fill(fill, cert)
        with self._isolated():
            swap = self.swap.swap(
                self.zcv,
                self.jpyt,
                self.alice,
                FILL_UNITS,
                FILL_UNITS * UNIT_PRICE,
                sender=self.bob,
            )
            moved = swap.decode_logs(self.zcv.LotMoved)
            if sum(int(e.units) for e in moved) != FILL_UNITS:
                raise RuntimeError(f"baseline swap moved {moved}")
            if any(
                int(self.zcv.lotBalance(self.bob, e.certificateId)) != FILL_UNITS for e in moved
            ):
                raise RuntimeError("baseline swap merged into a lot the buyer held: not comparable")
        with self._isolated():
            cancel = self.market.cancel(listing_id, sender=self.alice)
            (cancelled,) = cancel.decode_logs(self.market.Cancelled)
            if int(cancelled.returnedUnits) != 2_000:
                raise RuntimeError("cancel did not return the listing's units")
        return fill, swap, cancel

    def _check_listed(self, tx: Any, cert: int, units: int) -> None:
        (event,) = tx.decode_logs(self.market.Listed)
        if list(event.certificateIds) != [cert] or int(event.units) != units:
            raise RuntimeError(f"unexpected listing {event}")

    def _check_fill(self, tx: Any, cert: int) -> None:
        (event,) = tx.decode_logs(self.market.Bought)
        moved = tx.decode_logs(self.zcv.LotMoved)
        if list(event.certificateIds) != [cert] or [int(e.units) for e in moved] != [FILL_UNITS]:
            raise RuntimeError(f"fill moved {moved}, expected {FILL_UNITS} units of {cert}")
        if int(event.fee) != FILL_UNITS * UNIT_PRICE * FEE_BPS // 10_000:
            raise RuntimeError("fill charged an unexpected fee")


FILL_BPS_TEXT = f"{FEE_BPS / 100:g} %"
