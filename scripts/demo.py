"""`ape run demo`: a community from meter to coin on a local chain (logic in zcx.demo).

By default the demo starts its own Anvil (see zcx.demo.LocalAnvil for why) and stops it at the
end; `--network ethereum:local:foundry` uses the Anvil that Ape's foundry provider starts instead.
"""

import contextlib
import tempfile
from pathlib import Path

import click
from ape.logging import LogLevel, logger

from zcx.demo import DELIVERY_MODES, DemoError, DemoOptions, local_chain, run_demo


@click.command()
@click.option(
    "--members", default=60, show_default=True, help="Community size (every kind from 5)."
)
@click.option("--days", default=7, show_default=True, help="Days simulated, ending now.")
@click.option("--seed", default=42, show_default=True, help="Seed of every random figure.")
@click.option(
    "--out",
    "out_dir",
    default="reports/demo",
    show_default=True,
    type=click.Path(path_type=Path, file_okay=False),
    help="Report folder.",
)
@click.option(
    "--prices",
    "prices_path",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="Contract prices file. Default: config/prices.toml.",
)
@click.option(
    "--delivery",
    type=click.Choice(DELIVERY_MODES),
    default="auto",
    show_default=True,
    help="oracle: gateways post to the oracle service; direct: FALLBACK that signs and "
    "submits without it; auto: the oracle when it can run.",
)
@click.option(
    "--speedup", default=0.0, help="Simulated seconds per wall second (0: window in ~30 s)."
)
@click.option(
    "--work-dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Keep the oracle's store, logs and Anvil's log here (default: a temporary folder).",
)
@click.option(
    "--network",
    "network_choice",
    default=None,
    help="Ape network choice, e.g. ethereum:local:foundry. Default: the demo's own Anvil.",
)
@click.option("--verbose", is_flag=True, help="Log every transaction Ape confirms.")
@click.option(
    "--keep-chain",
    is_flag=True,
    help="Leave the demo's Anvil running at the end and write the members' accounts to "
    "<out>/accounts.json, so `zcx` commands work on that chain afterwards.",
)
@click.option(
    "--portal",
    "with_portal",
    is_flag=True,
    help="Also start the web portal on the kept chain and print its address (implies "
    "--keep-chain).",
)
def cli(
    members,
    days,
    seed,
    out_dir,
    prices_path,
    delivery,
    speedup,
    work_dir,
    network_choice,
    verbose,
    keep_chain,
    with_portal,
):
    """Deploy, start the oracle, register a community, simulate it, deliver its readings, claim,
    trade and retire coins, and write the operator's balance report to reports/demo/."""
    from ape import networks

    keep_chain = keep_chain or with_portal
    if keep_chain and network_choice is not None:
        raise click.UsageError(
            "--keep-chain and --portal keep the demo's own Anvil: drop --network"
        )
    if not verbose:
        # Hundreds of "Confirmed 0x..." lines would bury the progress bars and the summary.
        logger.set_level(LogLevel.SUCCESS)

    try:
        options = DemoOptions(
            members=members,
            days=days,
            seed=seed,
            out_dir=out_dir,
            prices_path=prices_path,
            delivery=delivery,
            speedup=speedup,
            work_dir=work_dir,
            network_label=network_choice or "ethereum:local:foundry (demo's own Anvil)",
        )
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    with contextlib.ExitStack() as stack:
        if network_choice is None:
            logs = work_dir or Path(stack.enter_context(tempfile.TemporaryDirectory("-anvil")))
            if keep_chain:  # the kept Anvil logs somewhere that outlives the demo
                logs = work_dir or out_dir
            url = stack.enter_context(local_chain(Path(logs) / "anvil.log", keep=keep_chain))
            logger.info(f"Anvil started on {url}")
        else:
            provider = stack.enter_context(networks.parse_network_choice(network_choice))
            if provider.network.name != "local":
                raise click.UsageError("the demo runs on a local devnet")
        try:
            result = run_demo(options)
        except DemoError as exc:
            raise click.ClickException(str(exc)) from exc
        except KeyboardInterrupt:
            logger.warning("Interrupted: stopping the oracle and Anvil the demo started.")
            raise SystemExit(130) from None
    failed = [name for name, ok in result.checks.items() if not ok]
    if failed:
        raise click.ClickException("checks failed: " + "; ".join(failed))
    logger.success(f"Demo finished; open {result.report_path}")
    if keep_chain:
        _kept(result, url, out_dir, with_portal)


def _kept(result, url, out_dir, with_portal):
    """What --keep-chain and --portal leave behind, and how to use and stop it."""
    from zcx.demo import export_accounts, free_port
    from zcx.portal.launch import PortalStartError, start_portal

    accounts_file = export_accounts(result, url, Path(out_dir) / "accounts.json")
    deployments_dir = result.options.deployments_dir
    pid_file = Path(result.options.work_dir or out_dir) / "anvil.pid"
    anvil_pid = pid_file.read_text().strip() if pid_file.is_file() else "?"
    click.echo(
        f"Chain kept running: {url}  (Anvil pid {anvil_pid}; stop it with `kill {anvil_pid}`)"
    )
    click.echo(f"Members' accounts (devnet keys): {accounts_file}")
    click.echo(
        f"Try: zcx operator members --rpc-url {url}  (run from a folder whose deployments/ is "
        f"{deployments_dir}, or set ZCX_DEPLOYMENTS_DIR={deployments_dir})"
    )
    if with_portal:
        try:
            portal = start_portal(
                url,
                deployments_dir,
                Path(out_dir) / "portal.sqlite",
                Path(out_dir) / "portal.log",
                free_port(),
            )
        except PortalStartError as exc:
            raise click.ClickException(str(exc)) from exc
        click.echo(f"Portal: {portal.url}  (pid {portal.pid}; stop it with `kill {portal.pid}`)")
