"""Task S's retirement statements, served by the portal: the printable page, its PDF, and the
verification page that a statement's QR code points to (zcx.statements builds all three from
the chain; the portal only routes to them)."""

from __future__ import annotations

from typing import Any

from eth_utils import is_hex_address, to_checksum_address
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, Response
from web3.exceptions import ContractLogicError

from zcx.portal.app import Portal
from zcx.statements import (
    ChainReader,
    StatementError,
    beneficiary_statement,
    render_statement_html,
    render_statement_pdf,
    retirement_statement,
    verification_page_html,
)


def mount_statements(app: FastAPI, portal: Portal) -> None:
    """Adds /statements/... and /verify/... to the portal."""
    reader = ChainReader(
        portal.chain.w3,
        portal.chain.address("ZeroCarbonValue"),
        portal.chain.abis["ZeroCarbonValue"],
        from_block=portal.chain.deployment.deployment_block,
    )

    def base(request: Request) -> str:
        return str(request.base_url).rstrip("/")

    def retirement(request: Request, retirement_id: int) -> Any:
        try:
            return retirement_statement(reader, retirement_id, verify_base=base(request))
        except (StatementError, ContractLogicError) as exc:
            raise HTTPException(404, str(exc)) from None

    def month(request: Request, name: str, month_text: str) -> Any:
        try:
            return beneficiary_statement(reader, name, month_text, verify_base=base(request))
        except (StatementError, ContractLogicError, ValueError) as exc:
            raise HTTPException(404, str(exc)) from None

    def pdf(statement: Any, filename: str) -> Response:
        return Response(
            render_statement_pdf(statement),
            media_type="application/pdf",
            headers={"Content-Disposition": f'attachment; filename="{filename}"'},
        )

    def ours(chain_id: int, zcv: str) -> None:
        if chain_id != portal.chain.deployment.chain_id or not is_hex_address(zcv):
            raise HTTPException(404, "not this portal's chain")
        if to_checksum_address(zcv) != portal.chain.address("ZeroCarbonValue"):
            raise HTTPException(404, "not this portal's ZCV")

    # Plain `def` endpoints: FastAPI runs them in a worker thread, where Playwright's sync API
    # (Chromium's print) may run.
    @app.get("/statements/retirement/{retirement_id}.pdf")
    def retirement_pdf(request: Request, retirement_id: int) -> Response:
        return pdf(retirement(request, retirement_id), f"zcx-retirement-{retirement_id}.pdf")

    @app.get("/statements/retirement/{retirement_id}", response_class=HTMLResponse)
    def retirement_html(request: Request, retirement_id: int) -> HTMLResponse:
        return HTMLResponse(render_statement_html(retirement(request, retirement_id)))

    @app.get("/statements/beneficiary/{month_text}.pdf")
    def beneficiary_pdf(request: Request, month_text: str, name: str = "") -> Response:
        return pdf(month(request, name, month_text), f"zcx-beneficiary-{month_text}.pdf")

    @app.get("/statements/beneficiary/{month_text}", response_class=HTMLResponse)
    def beneficiary_html(request: Request, month_text: str, name: str = "") -> HTMLResponse:
        return HTMLResponse(render_statement_html(month(request, name, month_text)))

    @app.get("/verify/retirement/{chain_id}/{zcv}/{retirement_id}", response_class=HTMLResponse)
    def verify_retirement(
        request: Request, chain_id: int, zcv: str, retirement_id: int
    ) -> HTMLResponse:
        ours(chain_id, zcv)
        statement = retirement(request, retirement_id)
        return HTMLResponse(verification_page_html(statement, checked_block=reader.head()))

    @app.get("/verify/beneficiary/{chain_id}/{zcv}/{month_text}", response_class=HTMLResponse)
    def verify_beneficiary(
        request: Request, chain_id: int, zcv: str, month_text: str, name: str = ""
    ) -> HTMLResponse:
        ours(chain_id, zcv)
        statement = month(request, name, month_text)
        return HTMLResponse(verification_page_html(statement, checked_block=reader.head()))
