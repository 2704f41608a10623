"""`ape run deploy`: deploy ZCX to the selected network and write deployments/<chain_id>.json."""

import click
from ape import accounts, chain
from ape.cli import ConnectedProviderCommand
from ape.logging import logger

from zcx import deployments
from zcx.deploy import attach, deploy_all, describe, is_live
from zcx.dr import deploy_demand_response
from zcx.market import deploy_market, deploy_mock_yen


def _refuse_throwaway_node() -> None:
    """Ape starts its own Anvil when none answers at the configured host, and stops it when the
    command ends: a deployment there would leave a record of a chain that no longer exists."""
    if getattr(chain.provider, "process", None) is not None:
        raise click.ClickException(
            "no node is running at the configured host, and a deployment to Ape's temporary "
            "Anvil would vanish when this command ends; start one with `anvil --port 8545` and "
            "run `APE_FOUNDRY_HOST=http://127.0.0.1:8545 ape run deploy --network "
            "ethereum:local:foundry`"
        )


def _local_role_defaults() -> tuple[str, list[str]]:
    """On a local devnet only: test account 1 is the operator, test account 2 the oracle signer."""
    test = accounts.test_accounts
    return str(test[1].address), [str(test[2].address)]


@click.command(cls=ConnectedProviderCommand)
@click.option(
    "--account",
    "account_alias",
    help="Deployer/admin Ape account alias. Local default: test account 0.",
)
@click.option(
    "--operator",
    help="Operator account (registers members, revokes). Local default: test account 1.",
)
@click.option(
    "--signer", "signers", multiple=True, help="Oracle signer address; repeat for n signers."
)
@click.option(
    "--quorum", default=1, show_default=True, help="Signatures needed per batch (k of n)."
)
@click.option("--interval-seconds", default=1800, show_default=True, help="Reading length.")
@click.option(
    "--capacity-margin-bps", default=1000, show_default=True, help="Allowed PQ1 above capacity."
)
@click.option(
    "--expiry-months",
    default=24,
    show_default=True,
    help="Certificates expire this many months (1/12 of 365.2425 days) after their hour ends.",
)
@click.option(
    "--payment-token", help="ERC-20 the market settles in. Local default: a fresh mock JPYT."
)
@click.option("--market-fee-bps", default=250, show_default=True, help="Market operator fee.")
@click.option(
    "--force", is_flag=True, help="Deploy anew even if this chain holds a live deployment."
)
def cli(
    network,
    account_alias,
    operator,
    signers,
    quorum,
    interval_seconds,
    capacity_margin_bps,
    expiry_months,
    payment_token,
    market_fee_bps,
    force,
):
    """Deploy the member registry, generation registry, ZCV token and value exchange, wire their
    roles, and record them in deployments/<chain_id>.json."""
    _refuse_throwaway_node()
    try:
        existing = deployments.load(chain.chain_id)
    except FileNotFoundError:
        existing = None
    if existing and is_live(existing) and not force:
        logger.info(
            f"Chain {chain.chain_id} already holds this deployment; keeping it "
            "(use --force to redeploy)."
        )
        _print(existing.contracts, existing.deployment_block)
        attach(existing)
        return

    is_local = network.name == "local"
    if account_alias:
        account = accounts.load(account_alias)
    elif is_local:
        account = accounts.test_accounts[0]
    else:
        raise click.UsageError("--account is required off the local devnet")
    if not operator or not signers:
        if not is_local:
            raise click.UsageError(
                "--operator and at least one --signer are required off the local devnet"
            )
        default_operator, default_signers = _local_role_defaults()
        operator = operator or default_operator
        signers = signers or default_signers
    contracts, first_block = deploy_all(
        account, operator, signers, quorum, interval_seconds, capacity_margin_bps, expiry_months
    )
    record = describe(
        contracts, first_block, network.choice, str(account.address), operator, signers, quorum
    )
    if payment_token is None and is_local:
        payment_token = deploy_mock_yen(account, operator).address
        record.contracts["MockYenToken"] = str(payment_token)
    if payment_token is not None:
        market = deploy_market(
            account,
            contracts.zcv,
            payment_token,
            market_fee_bps,
            operator,
            operator=operator,
            treasury=operator,
        )
        record.contracts["ZcvMarket"] = str(market.address)
        # Demand-response rewards are paid in the same token; the operator announces and pays.
        dr = deploy_demand_response(account, operator, payment_token, contracts.registry)
        record.contracts["DemandResponse"] = str(dr.address)
    else:
        logger.warning(
            "No --payment-token given: the market and demand response were not deployed."
        )
    path = deployments.save(record)
    logger.success(f"Deployed to chain {chain.chain_id}; wrote {path}")
    _print(record.contracts, first_block)


def _print(contracts: dict[str, str], block: int) -> None:
    click.echo(f"{'contract':<20} address  (deployment block {block})")
    for name, address in contracts.items():
        click.echo(f"{name:<20} {address}")
