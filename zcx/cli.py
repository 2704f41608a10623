"""The `zcx` command (pyproject [project.scripts]: zcx = "zcx.cli:main").

Each command group lives in its own module and is imported only when it runs, so `zcx --help`
stays fast and one group's import problem cannot break the others. To add a group, write a
click group in its own module and add one line to COMMAND_GROUPS:

    "oracle": ("oracle.cli:cli", "Run the meter-reading oracle."),
"""

from __future__ import annotations

import importlib
import logging
from typing import Any

import click

# name -> ("module:attribute", one-line help shown by `zcx --help` without importing the module)
COMMAND_GROUPS: dict[str, tuple[str, str]] = {
    "holder": (
        "zcx.commands.holder:holder",
        "Wallet holders: claim, balance and lots, transfer, pay, retire, show records.",
    ),
    "operator": (
        "zcx.commands.operator:operator",
        "The operator: register members and meters, flag meters, revoke certificates.",
    ),
    "oracle": (
        "oracle.cli:cli",
        "The meter-reading oracle: serve the ingest API, import CSVs, gateways, keys, status.",
    ),
    "audit": (
        "zcx.audit.cli:cli",
        "Auditors: rebuild the ledger from the chain, check every invariant, export and report.",
    ),
    "market": (
        "zcx.market_cli:cli",
        "Sell and buy ZCV with its certificates, the order book, statements, the devnet faucet.",
    ),
    "portal": (
        "zcx.portal.cli:portal",
        "Web portal for members and the operator: balances, certificates, wallet-signed actions.",
    ),
    "statements": (
        "zcx.statements.cli:statements",
        "Retirement statements (per retirement, per beneficiary and month) as PDF or HTML.",
    ),
    "export": ("zcx.export.cli:export", "Export certificates and actions as EnergyTag GC bundles."),
    "verify": (
        "zcx.statements.cli:verify",
        "Verify documents against the chain: `zcx verify statement FILE.pdf`.",
    ),
}


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use."""

    def __init__(self, *args: Any, lazy: dict[str, tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = lazy

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy:
            return self._load(cmd_name)
        return super().get_command(ctx, cmd_name)

    def _load(self, cmd_name: str) -> click.Command:
        target, _ = self.lazy[cmd_name]
        module_name, _, attribute = target.partition(":")
        command = getattr(importlib.import_module(module_name), attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{target} is not a click command")
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = []
        for name in self.list_commands(ctx):
            if name in self.lazy:
                rows.append((name, self.lazy[name][1]))
            else:
                command = super().get_command(ctx, name)
                if command is not None and not command.hidden:
                    rows.append((name, command.get_short_help_str()))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(
    cls=LazyGroup, lazy=COMMAND_GROUPS, context_settings={"help_option_names": ["-h", "--help"]}
)
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
@click.version_option(package_name="zcx")
def main(verbose: int) -> None:
    """ZCX: the zero-carbon value platform on the command line.

    Every chain command takes --network/--rpc (which node) and --account (which key).
    """
    _configure_logging(verbose)


class _StderrHandler(logging.Handler):
    """Writes to whatever sys.stderr is at the time (click's test runner swaps it)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            click.echo(self.format(record), err=True)
        except (OSError, ValueError):
            self.handleError(record)


def _configure_logging(verbose: int) -> None:
    """zcx logs to stderr at WARNING (-v INFO, -vv DEBUG). Ape's own per-transaction INFO lines
    are shown from -v on; the commands print their own one-line result."""
    from ape.logging import logger as ape_logger

    level = logging.WARNING - 10 * min(verbose, 2)
    zcx_logger = logging.getLogger("zcx")
    zcx_logger.setLevel(level)
    if not any(isinstance(h, _StderrHandler) for h in zcx_logger.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        zcx_logger.addHandler(handler)
    ape_logger.set_level(level if verbose else logging.WARNING)
