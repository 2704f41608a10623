"""`zcx export ...`: ZCX's chain data in other registries' shapes (click group
`zcx.export.cli:export`).

    zcx export energytag --out exports/energytag [--rpc-url URL | --network CHOICE]
"""

from __future__ import annotations

import logging
from pathlib import Path

import click

from zcx.audit.events import DEFAULT_MANIFEST, DEFAULT_PAGE_BLOCKS, abis_from_manifest
from zcx.commands.common import chain_options, console, session

log = logging.getLogger(__name__)


@click.group()
def export() -> None:
    """Export certificates, transfers and retirements in other registries' shapes."""


def _out_dir(ctx: click.Context, param: click.Parameter, value: Path) -> Path:
    """Refuses, before anything is read, an output folder that a file stands in the way of."""
    blocker = next((p for p in (value, *value.parents) if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        raise click.BadParameter(
            f"cannot write to {value}: a file is in the way ({blocker})", param_hint="--out"
        )
    return value


@export.command("energytag")
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    required=True,
    callback=_out_dir,
    help="Folder for bundles.json, actions.json and export.json (created if missing; these "
    "three files are replaced, each atomically).",
)
@click.option(
    "--from-block",
    type=click.IntRange(min=0),
    default=None,
    help="Export only actions from this block on (an incremental feed). Bundles are always the "
    "state at the latest block, replayed from the deployment block.",
)
@click.option(
    "--page-blocks",
    type=click.IntRange(min=1),
    default=DEFAULT_PAGE_BLOCKS,
    show_default=True,
    help="Blocks per eth_getLogs call; a refused page is split in halves.",
)
@click.option(
    "--manifest",
    type=click.Path(path_type=Path, dir_okay=False),
    default=DEFAULT_MANIFEST,
    show_default=True,
    help="Ape manifest with the contract ABIs (`ape compile` writes it).",
)
@chain_options
def energytag(out: Path, from_block: int | None, page_blocks: int, manifest: Path) -> None:
    """Write hourly certificates as EnergyTag GC bundles and their transfers, retirements and
    revocations as actions, validated against schemas/energytag/ (docs/energytag.md)."""
    from ape import chain

    from zcx.export.energytag import ExportError, build_export, write_export
    from zcx.export.source import read_record

    try:
        abis = abis_from_manifest(manifest)
    except (FileNotFoundError, KeyError) as exc:
        raise click.ClickException(str(exc).strip("'\"")) from None
    with session() as client:
        deployment = client.deployment
        try:
            record = read_record(
                chain.provider.web3,
                deployment.contracts,
                abis,
                deployment.deployment_block,
                page_blocks=page_blocks,
            )
            result = build_export(record, from_block)
            written = write_export(result, out)
        except ExportError as err:
            raise click.ClickException(str(err)) from None
        except OSError as err:  # no permission, disk full: nothing half-written stays in place
            raise click.BadParameter(
                f"cannot write to {out}: {err.strerror}", param_hint="--out"
            ) from None
    skipped = f"; {len(result.skipped)} schema-1 certificates left out" if result.skipped else ""
    console().print(
        f"chain {record.chain_id} blocks {record.from_block}..{record.to_block}: "
        f"{len(result.bundles)} bundles, {len(result.actions)} actions{skipped} -> "
        f"{', '.join(str(p) for p in written.values())}"
    )
