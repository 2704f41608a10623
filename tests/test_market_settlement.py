"""Paying the operator's statements on chain: in the payment token through the market, or in
ZCV with zcv.pay (counted as used coins) confirmed by the operator from the Paid event."""

from __future__ import annotations

import ape
import pytest
from market_support import YEN, event_args, issue

from zcx.deployments import Deployment
from zcx.holder import _project
from zcx.market import MarketClient, MarketProblem, statement_reference, units_due

RATE = 25 * YEN // 1000  # the operator takes 1 ZCV (1 kWh) for 25 JPYT
OPEN, PAID_TOKEN, PAID_ZCV, VOIDED = 1, 2, 3, 4
STATEMENT = "2026-04-0x90f79bf6"

pytest_plugins = ["market_support"]  # the market fixtures


@pytest.fixture
def client(zcx, market, jpyt, chain):
    block = chain.blocks[0]
    contracts = {
        **zcx.addresses(),
        "ZcvMarket": str(market.address),
        "MockYenToken": str(jpyt.address),
    }
    record = Deployment(chain.chain_id, "ethereum:local:test", 0, block.hash.hex(), contracts)
    return MarketClient(record, _project())


def test_pay_statement_in_payment_token(market, funded, operator, alice, treasury, chain):
    market.setSettlementRate(RATE, sender=operator)
    ref = statement_reference(STATEMENT)
    amount = 1234 * YEN
    tx = market.postStatement(ref, alice, amount, chain.pending_timestamp + 86400, sender=operator)
    (posted,) = event_args(tx, market.StatementPosted)
    assert posted["unitsDue"] == units_due(amount, RATE) == 49_360
    assert posted["payee"] == treasury
    funded.mint(alice, amount, sender=operator)
    funded.approve(market, amount, sender=alice)
    with ape.reverts(market.MarketStatementAboveMax, amountDue=amount, maxAmount=amount - 1):
        market.payStatement(ref, amount - 1, sender=alice)
    before = funded.balanceOf(treasury)
    tx = market.payStatement(ref, amount, sender=alice)
    (paid,) = event_args(tx, market.StatementPaid)
    assert paid["member"] == alice and paid["payer"] == alice and paid["amount"] == amount
    assert paid["status"] == PAID_TOKEN
    assert funded.balanceOf(treasury) - before == amount and funded.balanceOf(market) == 0
    assert market.statement(ref).status == PAID_TOKEN
    with ape.reverts(market.MarketStatementNotOpen):
        market.payStatement(ref, amount, sender=alice)
    with ape.reverts(market.MarketStatementExists):
        market.postStatement(ref, alice, amount, 0, sender=operator)


def test_pay_statement_in_zcv_counts_used_coins(
    client, zcx, market, issuer, operator, alice, bob, treasury, chain
):
    market.setSettlementRate(RATE, sender=operator)
    amount = 100 * YEN
    client.post_statement(operator, STATEMENT, alice.address, amount, chain.pending_timestamp)
    view = client.statement(STATEMENT)
    assert view.status == "Open" and view.units_due == 4000
    # The operator cannot confirm before the member paid.
    with pytest.raises(MarketProblem, match="paid 0 of 4000"):
        client.confirm_zcv_payment(operator, STATEMENT)
    issue(zcx, issuer, alice, 5000)
    with pytest.raises(MarketProblem, match="only the member"):
        client.pay_statement(bob, STATEMENT, in_zcv=True)
    result = client.pay_statement(alice, STATEMENT, in_zcv=True)
    assert result.values["units"] == 4000
    assert zcx.zcv.counters(alice).used == 4000  # Fig. 6 "used coins"
    assert zcx.zcv.balanceOf(treasury) == 4000
    assert client.zcv_paid_for(STATEMENT) == 4000
    client.confirm_zcv_payment(operator, STATEMENT)
    assert client.statement(STATEMENT).status == "PaidInZcv"
    with ape.reverts(market.AccessControlUnauthorizedAccount):
        market.confirmZcvPayment(statement_reference("other"), sender=alice)


def test_statement_roles_and_void(market, operator, alice, chain):
    ref = statement_reference("2026-05-0x90f79bf6")
    with ape.reverts(market.AccessControlUnauthorizedAccount):
        market.postStatement(ref, alice, YEN, 0, sender=alice)
    with ape.reverts(market.AccessControlUnauthorizedAccount):
        market.setSettlementRate(1, sender=alice)
    with ape.reverts(market.MarketZeroAmount):
        market.postStatement(ref, alice, 0, 0, sender=operator)
    market.setSettlementRate(0, sender=operator)
    market.postStatement(ref, alice, YEN, 0, sender=operator)
    assert market.statement(ref).unitsDue == 0
    with ape.reverts(market.MarketZcvNotAccepted):
        market.confirmZcvPayment(ref, sender=operator)
    tx = market.voidStatement(ref, "posted twice", sender=operator)
    assert event_args(tx, market.StatementVoided)[0]["reason"] == "posted twice"
    with ape.reverts(market.MarketStatementNotOpen):
        market.payStatement(ref, YEN, sender=alice)
    with ape.reverts(market.MarketUnknownStatement):
        market.payStatement(statement_reference("nope"), YEN, sender=alice)
