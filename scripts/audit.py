"""`ape run audit`: audit the ZCX deployment on the connected network (see docs/audit.md).

Same options as `zcx audit run`, minus --rpc-url: Ape's --network picks the node.
"""

import click
from ape import chain
from ape.cli import ConnectedProviderCommand

from zcx.audit.cli import audit_options, execute
from zcx.audit.events import abis_from_ape


@click.command(cls=ConnectedProviderCommand)
@audit_options
def cli(**opts):
    """Rebuild the ledger from the chain, check every invariant and cross-check sources;
    exit 1 if any violation is found."""
    opts.pop("network", None)
    opts.pop("provider", None)
    raise SystemExit(execute(chain.provider.web3, abis_from_ape(), **opts))
