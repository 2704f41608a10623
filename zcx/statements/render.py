"""Statements as printable HTML (Jinja2), PDF (Chromium's print through Playwright) and the
verification web page. Every page carries the statement's canonical JSON; every PDF carries it
in its document information under /ZcxStatement (added with pypdf after Chromium prints).
"""

from __future__ import annotations

import io
import os
import time
from dataclasses import replace
from functools import lru_cache
from typing import Any

from zcx.statements.model import Statement, layout

CHROMIUM = os.environ.get("ZCX_CHROMIUM", "/usr/bin/chromium")
PDF_METADATA_KEY = "/ZcxStatement"
PDF_OPTIONS: dict[str, Any] = {
    "format": "A4",
    "print_background": True,
    "prefer_css_page_size": True,
    # No header or footer: Chromium's would print the date and URL, text the verifier does not
    # expect (and that no chain fact backs).
    "display_header_footer": False,
}


@lru_cache(maxsize=1)
def _environment() -> Any:
    from jinja2 import Environment, PackageLoader, select_autoescape

    return Environment(
        loader=PackageLoader("zcx.statements", "templates"),
        autoescape=select_autoescape(["html", "j2"]),
        trim_blocks=False,
        lstrip_blocks=False,
    )


def qr_svg(url: str) -> str:
    """An inline SVG QR code of `url` (error correction M, no title text)."""
    import segno

    if not url:
        return ""
    code = segno.make_qr(url, error="m")
    return str(code.svg_inline(scale=4, border=2, dark="#14213d", omitsize=True))


def document_id(statement: Statement) -> str:
    if statement.month:
        return f"{statement.chain_id}-{statement.month}-{statement.beneficiary}"
    return f"{statement.chain_id}-retirement-{statement.retirements[0].id}"


def _render(statement: Statement, *, banner: str = "", with_qr: bool = True) -> str:
    template = _environment().get_template("statement.html.j2")
    return str(
        template.render(
            layout=layout(statement),
            canonical_json=statement.canonical_json(),
            qr_svg=qr_svg(statement.verify_url) if with_qr else "",
            verify_url=statement.verify_url,
            banner=banner,
            doc_id=document_id(statement),
        )
    )


def render_statement_html(statement: Statement) -> str:
    """The printable statement page (print CSS for A4; also readable on screen and phones)."""
    return _render(statement)


def verification_page_html(statement: Statement, *, checked_block: int | None = None) -> str:
    """What the portal serves at /verify/retirement/<chain_id>/<zcv>/<id>: the statement as the
    chain shows it now (built fresh from the node, never from an uploaded file). Its "Issued"
    time is the page's own (now) unless the statement sets one."""
    if not statement.issued_at:
        statement = replace(statement, issued_at=int(time.time()))
    where = (
        f" ブロック {checked_block:,} 時点 / as of block {checked_block:,}" if checked_block else ""
    )
    banner = (
        "この償却はブロックチェーン上に記録されています。"
        f"Recorded on chain {statement.chain_id} by ZCV {statement.zcv}.{where}"
    )
    return _render(statement, banner=banner, with_qr=False)


class PdfPrinter:
    """One Chromium kept open to print many statements (starting Chromium is most of the cost
    of one PDF). Playwright's sync API: use it from one thread without a running asyncio loop.

        with PdfPrinter() as printer:
            pdfs = [printer.print(s) for s in statements]
    """

    def __enter__(self) -> PdfPrinter:
        from playwright.sync_api import sync_playwright

        self._playwright = sync_playwright().start()
        try:
            self._browser = self._playwright.chromium.launch(
                executable_path=CHROMIUM, args=["--no-sandbox"]
            )
        except Exception:
            self._playwright.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self._browser.close()
        finally:
            self._playwright.stop()

    def print(self, statement: Statement) -> bytes:
        page = self._browser.new_page()
        try:
            page.set_content(render_statement_html(statement), wait_until="load")
            pdf = page.pdf(**PDF_OPTIONS)
        finally:
            page.close()
        return embed_statement_block(pdf, statement)


def render_statement_pdf(statement: Statement) -> bytes:
    """The statement as a PDF printed by Chromium, with the statement block in its metadata.
    Uses Playwright's sync API: call it from a thread without a running asyncio loop (FastAPI
    runs plain `def` endpoints in one), or use `render_statement_pdf_async`; to print many,
    keep one `PdfPrinter` open."""
    with PdfPrinter() as printer:
        return printer.print(statement)


async def render_statement_pdf_async(statement: Statement) -> bytes:
    from playwright.async_api import async_playwright

    html = render_statement_html(statement)
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = await browser.new_page()
            await page.set_content(html, wait_until="load")
            pdf = await page.pdf(**PDF_OPTIONS)
        finally:
            await browser.close()
    return embed_statement_block(pdf, statement)


def embed_statement_block(pdf: bytes, statement: Statement) -> bytes:
    """Adds the canonical JSON (and a title and subject) to the PDF's document information."""
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf)))
    writer.add_metadata(
        {
            "/Title": f"ZCX retirement statement {document_id(statement)}",
            "/Subject": statement.verify_url or "ZCX retirement statement",
            PDF_METADATA_KEY: statement.canonical_json(),
        }
    )
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()
