"""Re-checks a statement PDF against the chain.

A PDF carries two copies of its figures: the printed text (what a person reads) and the
statement block (canonical JSON in the PDF's document information, /ZcxStatement). Three
comparisons, each reported field by field:

1. printed vs chain: the statement is rebuilt from the node and laid out again; the text the
   PDF shows must be exactly that text (labels, values and their order);
2. block vs printed: the block, laid out, must give the same text the PDF shows;
3. block vs chain: every field of the block equals the chain's.

The block only says WHICH statement to rebuild (chain, ZCV address, retirement id or beneficiary
and month); the caller decides which ZCV address to trust (zcx.statements.cli). Text is compared
after Unicode NFKC and with all whitespace removed: line breaks are the printer's, not facts.
"""

from __future__ import annotations

import io
import json
import unicodedata
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zcx.statements.chain import (
    ChainReader,
    beneficiary_statement,
    beneficiary_verify_url,
    retirement_statement,
    retirement_verify_url,
)
from zcx.statements.model import (
    MONTH_KIND,
    Layout,
    Statement,
    StatementError,
    layout,
    statement_from_canonical,
)
from zcx.statements.render import PDF_METADATA_KEY


@dataclass(frozen=True)
class Mismatch:
    check: str  # "printed vs chain", "block vs printed", "block vs chain"
    field: str
    expected: str  # the chain's value (or the block's, for "block vs printed")
    found: str

    def __str__(self) -> str:
        expected_as, found_as = _SOURCES[self.check]
        return (
            f"{self.check}: {self.field}: "
            f"{expected_as} {self.expected!r}, {found_as} {self.found!r}"
        )


# Which copy each comparison takes as the reference, and which it checks.
_SOURCES = {
    "printed vs chain": ("chain", "printed"),
    "block vs printed": ("block", "printed"),
    "block vs chain": ("chain", "block"),
}


@dataclass(frozen=True)
class VerifyResult:
    statement: Statement | None  # the chain's
    mismatches: list[Mismatch]
    figures: int  # chain figures compared with the printed text

    @property
    def ok(self) -> bool:
        return not self.mismatches


# ---------------------------------------------------------------------------- reading a PDF


def read_pdf(pdf: bytes) -> tuple[str, str | None]:
    """(the text of every page, the statement block or None)."""
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(pdf))
        text = "\n".join(page.extract_text() or "" for page in reader.pages)
        metadata: dict[str, Any] = dict(reader.metadata or {})
        block = metadata.get(PDF_METADATA_KEY)
    except (PdfReadError, ValueError, KeyError) as exc:
        raise StatementError(f"file: not a readable PDF ({exc})") from None
    return text, (str(block) if block is not None else None)


# Fonts map a dash glyph back to whichever dash code point they like (U+2012 for an en dash).
_DASHES = dict.fromkeys(map(ord, "\u2010\u2011\u2012\u2013\u2014\u2015\u2212"), "-")


class _Text:
    """NFKC text without whitespace, remembering where each character came from."""

    def __init__(self, raw: str) -> None:
        chars, origin = [], []
        for index, char in enumerate(raw):
            for norm in unicodedata.normalize("NFKC", char).translate(_DASHES):
                if not norm.isspace():
                    chars.append(norm)
                    origin.append(index)
        self.raw, self.text, self.origin = raw, "".join(chars), origin

    def shown(self, start: int, end: int) -> str:
        """The original text of normalized positions start..end, whitespace collapsed."""
        if start >= end or start >= len(self.origin):
            return ""
        first, last = self.origin[start], self.origin[min(end, len(self.origin)) - 1] + 1
        return " ".join(self.raw[first:last].split())


def squeeze(text: str) -> str:
    folded = unicodedata.normalize("NFKC", text).translate(_DASHES)
    return "".join(c for c in folded if not c.isspace())


# ---------------------------------------------------------------------------- comparisons


def compare_printed(expected: Layout, printed: str, check: str) -> list[Mismatch]:
    """Walks the expected tokens through the printed text; each figure is the text between its
    label and the next label. Any text left over or missing is a 'layout' mismatch."""
    tokens = list(expected.tokens())
    doc = _Text(printed)
    text, cursor, found = doc.text, 0, []
    for i, (field, value) in enumerate(tokens):
        want = squeeze(value)
        if field == "text":
            if text.startswith(want, cursor):
                cursor += len(want)
                continue
            pos = text.find(want, cursor)
            shown = doc.shown(cursor, pos) if pos >= 0 else "(missing)"
            found.append(Mismatch(check, "layout", value, shown))
            cursor = pos + len(want) if pos >= 0 else cursor
            continue
        anchor = _next_fixed_text(tokens, i + 1)
        end = text.find(anchor, cursor) if anchor else len(text)
        end = len(text) if end < 0 else end
        if text[cursor:end] != want:
            found.append(Mismatch(check, field, value, doc.shown(cursor, end)))
        cursor = end
    if cursor < len(text):
        found.append(Mismatch(check, "layout", "(end of statement)", doc.shown(cursor, len(text))))
    return found


def _next_fixed_text(tokens: list[tuple[str, str]], start: int) -> str:
    """The run of fixed text after a figure (its next labels): what ends the figure."""
    run = []
    for field, value in tokens[start:]:
        if field != "text":
            break
        run.append(squeeze(value))
    return "".join(run)


def compare_blocks(chain: Statement, block: Statement) -> list[Mismatch]:
    ours, theirs = dict(_flatten(chain.to_canonical())), dict(_flatten(block.to_canonical()))
    return [
        Mismatch("block vs chain", path, _show(ours.get(path)), _show(theirs.get(path)))
        for path in sorted(set(ours) | set(theirs))
        if ours.get(path, _ABSENT) != theirs.get(path, _ABSENT)
    ]


_ABSENT = object()


def _show(value: Any) -> str:
    return "(absent)" if value is None else str(value)


def _flatten(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(value, Mapping):
        key = "id" if "id" in value else None
        for name, item in value.items():
            if name != key or not path:
                yield from _flatten(item, f"{path}.{name}" if path else name)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            label = item.get("id", index) if isinstance(item, Mapping) else index
            yield from _flatten(item, f"{path}[{label}]")
    else:
        yield path, value


# ---------------------------------------------------------------------------- the whole check


def expected_verify_url(block: Statement) -> tuple[str, str]:
    """(the URL's fixed tail for this statement, the base the block's URL was made with)."""
    if block.kind == MONTH_KIND:
        tail = beneficiary_verify_url(
            "", block.chain_id, block.zcv, block.beneficiary, str(block.month)
        )
    else:
        tail = retirement_verify_url("", block.chain_id, block.zcv, block.retirements[0].id)
    url = block.verify_url
    return tail, (url[: -len(tail)] if url.endswith(tail) else url)


def rebuild_from_chain(reader: ChainReader, block: Statement) -> Statement:
    """The statement the block names, as the chain has it, with the block's document facts."""
    _, base = expected_verify_url(block)
    options: dict[str, Any] = {"tz": block.tz, "verify_base": base, "issued_at": block.issued_at}
    if block.kind == MONTH_KIND:
        return beneficiary_statement(
            reader, block.beneficiary, str(block.month), as_of_block=block.as_of_block, **options
        )
    if len(block.retirements) != 1:
        raise StatementError(
            "retirements: a retirement statement names one retirement, "
            f"not {len(block.retirements)}"
        )
    return retirement_statement(reader, block.retirements[0].id, **options)


def verify_pdf(pdf: bytes, reader: ChainReader) -> VerifyResult:
    """All three comparisons of a statement PDF against the chain `reader` reads."""
    text, raw_block = read_pdf(pdf)
    if raw_block is None:
        raise StatementError(f"file: no {PDF_METADATA_KEY} statement block; not a ZCX statement")
    try:
        block = statement_from_canonical(json.loads(raw_block))
    except json.JSONDecodeError as exc:
        raise StatementError(f"statement block: not JSON ({exc})") from None
    if block.chain_id != reader.chain_id:
        raise StatementError(
            f"chain_id: the statement is for chain {block.chain_id}, the node is chain "
            f"{reader.chain_id}"
        )
    if block.zcv.lower() != reader.zcv.lower():
        raise StatementError(
            f"zcv: the statement names {block.zcv}, the trusted ZCV is {reader.zcv}"
        )
    mismatches = compare_printed(layout(block), text, "block vs printed")
    chain = rebuild_from_chain(reader, block)
    chain_layout = layout(chain)
    mismatches += compare_printed(chain_layout, text, "printed vs chain")
    mismatches += compare_blocks(chain, block)
    figures = sum(1 for field, _ in chain_layout.tokens() if field != "text")
    return VerifyResult(chain, mismatches, figures)


def verify_file(path: Path, reader: ChainReader) -> VerifyResult:
    return verify_pdf(path.read_bytes(), reader)
