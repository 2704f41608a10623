"""Verifiable retirement statements: one per retirement, one per beneficiary and month.

    reader = ChainReader(w3, zcv_address, zcv_abi, from_block=deployment_block)
    statement = retirement_statement(reader, 1, verify_base="https://portal.example")
    html = render_statement_html(statement)        # printable page (A4 print CSS, ja/en)
    pdf = render_statement_pdf(statement)          # Chromium's print + the statement block
    page = verification_page_html(statement)       # /verify/retirement/<chain>/<zcv>/<id>
    verify_pdf(pdf, reader).ok                     # every printed figure against the chain

See docs/statements.md for what a statement proves and how the tamper check works.
"""

from zcx.statements.chain import (
    ChainReader,
    beneficiary_statement,
    beneficiary_verify_url,
    month_bounds,
    retirement_statement,
    retirement_verify_url,
)
from zcx.statements.model import (
    CertificateUse,
    CfeScore,
    RetirementEntry,
    Statement,
    StatementError,
    layout,
    statement_from_canonical,
)
from zcx.statements.render import (
    PdfPrinter,
    render_statement_html,
    render_statement_pdf,
    render_statement_pdf_async,
    verification_page_html,
)
from zcx.statements.verify import Mismatch, VerifyResult, verify_pdf

__all__ = [
    "CertificateUse",
    "CfeScore",
    "ChainReader",
    "Mismatch",
    "PdfPrinter",
    "RetirementEntry",
    "Statement",
    "StatementError",
    "VerifyResult",
    "beneficiary_statement",
    "beneficiary_verify_url",
    "layout",
    "month_bounds",
    "render_statement_html",
    "render_statement_pdf",
    "render_statement_pdf_async",
    "retirement_statement",
    "retirement_verify_url",
    "statement_from_canonical",
    "verification_page_html",
    "verify_pdf",
]
