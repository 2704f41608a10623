"""One audit end to end: read the chain, check, cross-check, produce. Shared by the `zcx audit`
CLI (any JSON-RPC URL), `ape run audit` (the connected provider) and the tests."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zcx.audit.checks import AuditConfig, run_checks
from zcx.audit.crosscheck import SourceRow, cross_check
from zcx.audit.dr import DrFigures, read_demand_response
from zcx.audit.events import OPTIONAL_CONTRACTS, Abi
from zcx.audit.findings import VIOLATION, WARNING, Finding
from zcx.audit.ledger import Ledger, build_ledger
from zcx.audit.market import (
    MARKET_CONTRACT,
    MarketFigures,
    custody_findings,
    read_market,
)
from zcx.deployments import Deployment
from zcx.dr import DR_CONTRACT

log = logging.getLogger(__name__)


@dataclass
class AuditResult:
    ledger: Ledger
    findings: list[Finding]
    timings: dict[str, float] = field(default_factory=dict)
    market: MarketFigures | None = None  # when the deployment records a ZcvMarket
    demand_response: DrFigures | None = None  # when it records a DemandResponse

    @property
    def violations(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == VIOLATION]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == WARNING]

    def checks_flagged(self, severity: str | None = None) -> set[str]:
        return {f.check for f in self.findings if severity is None or f.severity == severity}

    @property
    def ok(self) -> bool:
        return not self.violations


def ledger_contracts(deployment: Deployment, abis: Mapping[str, Abi]) -> dict[str, str]:
    """The contracts the ledger reads: the core four. The market and demand response (when
    recorded and their ABIs are known) are read on their own; others (a mock payment token) are
    not read."""
    return {
        name: address
        for name, address in deployment.contracts.items()
        if name in abis and name not in OPTIONAL_CONTRACTS
    }


def audit(
    w3: Any,
    deployment: Deployment,
    abis: Mapping[str, Abi],
    config: AuditConfig | None = None,
    sources: Iterable[tuple[str, Iterable[SourceRow]]] = (),
    strict_sources: bool = False,
    from_block: int | None = None,
    to_block: int | None = None,
    page_blocks: int = 5_000,
    with_state: bool = True,
    progress: Callable[[int], None] | None = None,
) -> AuditResult:
    """Audits one deployment. `from_block` defaults to the recorded deployment block."""
    config = config or AuditConfig()
    chain_id = int(w3.eth.chain_id)
    if chain_id != deployment.chain_id:
        raise ValueError(
            f"the node is chain {chain_id}; the deployment file is for chain {deployment.chain_id}"
        )
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    ledger = build_ledger(
        w3,
        chain_id,
        ledger_contracts(deployment, abis),
        abis,
        from_block=deployment.deployment_block if from_block is None else from_block,
        to_block=to_block,
        page_blocks=page_blocks,
        with_state=with_state,
        progress=progress,
    )
    market = None
    market_address = deployment.contracts.get(MARKET_CONTRACT)
    if market_address and MARKET_CONTRACT in abis:
        market = read_market(w3, market_address, abis[MARKET_CONTRACT], ledger, page_blocks)
    elif market_address:
        log.warning("the deployment records a ZcvMarket but no ABI was given; market not read")
    demand_response = None
    dr_address = deployment.contracts.get(DR_CONTRACT)
    if dr_address and DR_CONTRACT in abis:
        demand_response = read_demand_response(
            w3, dr_address, abis[DR_CONTRACT], ledger, page_blocks
        )
    timings["read_seconds"] = time.perf_counter() - t0
    t1 = time.perf_counter()
    findings = run_checks(ledger, config)
    if demand_response is not None:
        findings.extend(demand_response.findings)
    if market is not None:
        findings.extend(custody_findings(market))
    for name, rows in sources:
        findings.extend(cross_check(ledger, rows, name, strict=strict_sources))
    timings["check_seconds"] = time.perf_counter() - t1
    timings["total_seconds"] = time.perf_counter() - t0
    return AuditResult(ledger, findings, timings, market, demand_response)


def write_outputs(
    result: AuditResult,
    out: Path,
    formats: tuple[str, ...] = ("csv", "parquet"),
    html: bool = True,
    trails: Iterable[int] = (),
) -> dict[str, Path]:
    """Exports, the Fig. 6 ledger, trails and the HTML report under `out`."""
    from zcx.audit.findings import findings_frame
    from zcx.audit.report import certificate_trail, export, html_report, members_ledger

    frames = dict(result.ledger.frames())
    frames["members_ledger"] = members_ledger(result.ledger)
    frames["findings"] = findings_frame(result.findings)
    if result.market is not None:
        frames.update(result.market.frames())
    if result.demand_response is not None:
        frames.update(result.demand_response.frames())
    trail_frames = {}
    for rid in trails:
        trail_frames[rid] = certificate_trail(result.ledger, rid)
        frames[f"trail_{rid}_consumed"] = trail_frames[rid]["consumed"]
        frames[f"trail_{rid}_hops"] = trail_frames[rid]["hops"]
    written = {"exports": out / "data"}
    exported = export(frames, out / "data", formats, ledger=result.ledger)
    if html:
        written["html"] = html_report(
            result.ledger,
            result.findings,
            out / "report",
            trail_frames,
            result.market,
            result.demand_response,
            exported,
        )
    return written
