"""The devnet faucet: mints the mock payment token (contracts/MockYenToken.sol, JPYT) to anyone,
so a newcomer can buy on the market or pay a statement without an operator at hand.

Only on the local devnet (chain id 31337) and only when the deployment record lists the mock:
a real payment token (e.g. JPYC) cannot be minted, and a mock deployed to a public testnet
should not be handed out by a command that a script might run against the wrong network.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from zcx.errors import format_amount
from zcx.holder import HolderError, TxResult, ZcxClient

DEVNET_CHAIN_ID = 31337  # Anvil's default; the oracle's dev key is refused elsewhere too
MOCK_TOKEN = "MockYenToken"
MINTER_ROLE_NAME = "MINTER_ROLE"


def human_amount(base_units: int, decimals: int) -> str:
    """Base units as the token's own amount with thousands separators, trailing zeros beyond
    two decimals dropped: 10**22 at 18 decimals -> '10,000.00'; 5 * 10**17 -> '0.50'."""
    text = format_amount(base_units, decimals)
    if "." not in text:
        return text
    whole, frac = text.split(".")
    return f"{whole}.{frac.rstrip('0').ljust(2, '0')}"


class FaucetRefused(HolderError):
    """The faucet does not run here (not the devnet, or no mock token)."""


def check_faucet_allowed(chain_id: int, contracts: dict[str, str]) -> str:
    """The mock token's address, or FaucetRefused saying why the faucet does not run here."""
    if chain_id != DEVNET_CHAIN_ID:
        raise FaucetRefused(
            f"the faucet runs only on the local devnet (chain id {DEVNET_CHAIN_ID}); this is chain "
            f"{chain_id}: get the payment token from its issuer"
        )
    address = contracts.get(MOCK_TOKEN)
    if not address:
        raise FaucetRefused(
            f"this deployment has no mock payment token ({MOCK_TOKEN} is not in its record; "
            "it was deployed with --payment-token): nothing for the faucet to mint"
        )
    return address


def parse_token_amount(text: str, decimals: int) -> int:
    """'1,000.5' JPYT -> base units; a positive amount with at most `decimals` decimals."""
    try:
        value = Decimal(text.strip().replace(",", "").replace("_", ""))
    except InvalidOperation:
        raise HolderError(f"amount {text!r}: not a number (e.g. 10000 or 2500.5)") from None
    scaled = value * (Decimal(10) ** decimals)
    if not value.is_finite() or value <= 0 or scaled != scaled.to_integral_value():
        raise HolderError(f"amount {text!r}: a positive amount with at most {decimals} decimals")
    return int(scaled)


class Faucet:
    """The mock token of a devnet deployment, minted by an account holding its MINTER_ROLE."""

    def __init__(self, client: ZcxClient) -> None:
        from ape import chain

        self.client = client
        address = check_faucet_allowed(int(chain.chain_id), client.deployment.contracts)
        self.token = client._project.get_contract(MOCK_TOKEN).at(address)
        self.symbol = str(self.token.symbol())
        self.decimals = int(self.token.decimals())

    def show(self, base_units: int) -> str:
        return f"{human_amount(base_units, self.decimals)} {self.symbol}"

    def minter(self, alias: str | None) -> Any:
        """The signing account: `alias`, else the first test account holding MINTER_ROLE (the
        devnet operator, TEST::1, after `ape run deploy`)."""
        role = self.token.MINTER_ROLE()
        if alias:
            account = self.client.account(alias)
            if not self.token.hasRole(role, account.address):
                raise FaucetRefused(
                    f"{alias} ({account.address}) may not mint {self.symbol}: it lacks "
                    f"{MINTER_ROLE_NAME}; omit --account to use the devnet's minter"
                )
            return account
        from ape import accounts

        for account in accounts.test_accounts:
            if self.token.hasRole(role, account.address):
                return account
        raise FaucetRefused(
            f"no test account holds {MINTER_ROLE_NAME} on {self.symbol}; pass --account with "
            "the minter's alias"
        )

    def mint(self, minter: Any, to: str, base_units: int) -> TxResult:
        receipt = self.client._send(self.token, "mint", (to, base_units), minter)
        return self.client._result(
            receipt,
            to=to,
            token=self.symbol,
            token_address=str(self.token.address),
            amount=human_amount(base_units, self.decimals),
            amount_base_units=str(base_units),
            balance=human_amount(int(self.token.balanceOf(to)), self.decimals),
        )
