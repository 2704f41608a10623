"""Retirement statements: the time to build one from the chain, print it to PDF with Chromium,
and verify a PDF against the chain.

The chain is the audit benchmark's (bench_audit.build_chain) at a small size on its own Anvil:
ZCX_BENCH_STATEMENT_READINGS readings (default 20,000), one hourly claim per owner, transfers,
and 19 retirements whose units come from more than one certificate. Each figure is the median of
REPEATS runs on retirement 1, reading over HTTP JSON-RPC from the deployment block.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from typing import Any

from bench_audit import MANIFEST, OWNERS, Anvil, build_chain

REPEATS = 5


def _median_seconds(action: Callable[[], Any]) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(REPEATS):
        start = time.perf_counter()
        result = action()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def run() -> dict[str, dict[str, Any]]:
    from zcx.audit.events import abis_from_manifest
    from zcx.statements import (
        ChainReader,
        PdfPrinter,
        render_statement_html,
        render_statement_pdf,
        retirement_statement,
        verify_pdf,
    )

    size = int(os.environ.get("ZCX_BENCH_STATEMENT_READINGS", 20_000))
    with Anvil(accounts=3 + OWNERS) as node:
        built, _ = build_chain(node.w3, size)
        deployment = built["deployment"]
        abi = abis_from_manifest(MANIFEST)["ZeroCarbonValue"]
        reader = ChainReader(
            node.w3,
            deployment.contracts["ZeroCarbonValue"],
            abi,
            from_block=deployment.deployment_block,
        )
        build, statement = _median_seconds(lambda: retirement_statement(reader, 1))
        html, _ = _median_seconds(lambda: render_statement_html(statement))
        pdf_time, pdf = _median_seconds(lambda: render_statement_pdf(statement))
        with PdfPrinter() as printer:
            printer.print(statement)  # the first page of a fresh browser loads its fonts
            warm_time, _ = _median_seconds(lambda: printer.print(statement))
        verify_time, result = _median_seconds(lambda: verify_pdf(pdf, reader))
    if not result.ok:
        raise RuntimeError(f"an untouched statement failed to verify: {result.mismatches[:3]}")
    certificates = len(statement.retirements[0].certificates)
    scene = (
        f"retirement 1 ({certificates} certificates) on a chain of {built['readings']:,} readings, "
        f"{built['meters']} meters; median of {REPEATS}"
    )
    return {
        "statement_build_ms": {
            "value": round(build * 1000, 1),
            "unit": "ms",
            "note": f"records, Retired log and block over HTTP JSON-RPC; {scene}",
        },
        "statement_html_ms": {
            "value": round(html * 1000, 1),
            "unit": "ms",
            "note": f"Jinja2 page with inline SVG QR code; {scene}",
        },
        "statement_pdf_seconds": {
            "value": round(pdf_time, 2),
            "unit": "s",
            "note": f"Chromium launch, print and pypdf metadata step, per PDF; {scene}",
        },
        "statement_pdf_warm_seconds": {
            "value": round(warm_time, 2),
            "unit": "s",
            "note": f"one PdfPrinter (Chromium kept open), print and pypdf step, per PDF; {scene}",
        },
        "statement_verify_ms": {
            "value": round(verify_time * 1000, 1),
            "unit": "ms",
            "note": f"pypdf text extraction, rebuild from chain, three comparisons; {scene}",
        },
    }
