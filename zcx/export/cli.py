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
    """The output folder, created now: a file in the way or no permission is a usage error."""
    try:
        value.mkdir(parents=True, exist_ok=True)
        probe = value / ".zcx-write-probe"
        probe.write_text("")
        probe.unlink()
    except OSError as err:
        reason = "a file is in the way" if value.exists() or _file_above(value) else err.strerror
        raise click.BadParameter(f"cannot write to {value}: {reason}", param_hint="--out") from None
    return value


def _file_above(path: Path) -> bool:
    return any(parent.is_file() for parent in path.parents)


@export.command("energytag")
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    required=True,
    callback=_out_dir,
    help="Folder for bundles.json, actions.json and export.json (created if missing; these "
    "three files are replaced).",
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
    skipped = f"; {len(result.skipped)} schema-1 certificates left out" if result.skipped else ""
    console().print(
        f"chain {record.chain_id} blocks {record.from_block}..{record.to_block}: "
        f"{len(result.bundles)} bundles, {len(result.actions)} actions{skipped} -> "
        f"{', '.join(str(p) for p in written.values())}"
    )
