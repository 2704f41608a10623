"""Builds a portal for one node and deployment: connection, index, reports, app."""

from __future__ import annotations

import logging
from pathlib import Path

from fastapi import FastAPI
from web3 import Web3

from zcx import deployments
from zcx.audit.events import DEFAULT_MANIFEST, abis_from_manifest
from zcx.portal.app import Portal, create_app
from zcx.portal.chain import PortalChain
from zcx.portal.index import PortalIndex
from zcx.portal.reports import OperatorReports

log = logging.getLogger(__name__)


class PortalSetupError(RuntimeError):
    """No node, no deployment record, or no compiled contracts: the message says what to do."""


def build_portal(
    rpc_url: str,
    deployments_dir: Path = deployments.DEFAULT_DIR,
    db_path: Path | None = None,
    manifest: Path = DEFAULT_MANIFEST,
    prices: Path | None = None,
    page_blocks: int = 5_000,
) -> Portal:
    w3 = Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": 60}))
    try:
        chain_id = int(w3.eth.chain_id)
    except (OSError, ValueError) as exc:
        raise PortalSetupError(f"cannot reach {rpc_url}: {exc}. Start the node first") from exc
    try:
        deployment = deployments.load(chain_id, deployments_dir)
        abis = abis_from_manifest(manifest)
    except (FileNotFoundError, KeyError) as exc:
        raise PortalSetupError(str(exc)) from exc
    path = db_path or Path(f"portal-{chain_id}.sqlite")
    index = PortalIndex(path, w3, deployment, abis, page_blocks=page_blocks)
    head = index.sync()
    log.info("portal index %s at block %s", path, head)
    chain = PortalChain(w3, deployment, abis)
    reports = OperatorReports(index, chain.operator, prices)
    return Portal(index=index, chain=chain, reports=reports)


def build_app(portal: Portal) -> FastAPI:
    from zcx.portal.statement_pages import mount_statements

    app = create_app(portal)
    mount_statements(app, portal)
    return app
