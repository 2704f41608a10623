"""Tampering with statement PDFs the way a forger would: edit glyphs in a page's content stream
(what a PDF editor does to change a printed number) or rewrite the statement block."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable
from typing import Any

from pypdf import PdfReader, PdfWriter
from pypdf.generic import ByteStringObject, ContentStream

from zcx.statements.render import PDF_METADATA_KEY

_BFCHAR = re.compile(rb"<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>")
_BFRANGE = re.compile(rb"<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>")


def _to_unicode(font: Any) -> dict[bytes, str]:
    """code -> text from a font's ToUnicode CMap (bfchar and bfrange entries)."""
    stream = font.get("/ToUnicode")
    if stream is None:
        return {}
    data = stream.get_object().get_data()
    mapping: dict[bytes, str] = {}
    for block in re.findall(rb"beginbfrange(.*?)endbfrange", data, re.S):
        for low, high, first in _BFRANGE.findall(block):
            start, width = int(low, 16), len(low) // 2
            base = int(first, 16)
            for offset in range(int(high, 16) - start + 1):
                mapping[(start + offset).to_bytes(width, "big")] = chr(base + offset)
    for block in re.findall(rb"beginbfchar(.*?)endbfchar", data, re.S):
        for code, text in _BFCHAR.findall(block):
            mapping[bytes.fromhex(code.decode())] = bytes.fromhex(text.decode()).decode("utf-16-be")
    return mapping


def edit_printed_text(pdf: bytes, old: str, new: str, occurrence: int = 0) -> bytes:
    """Replaces the printed characters `old` with `new` (same length, no spaces) by swapping
    glyph codes in the content stream, in the fonts already used there. `occurrence` picks which
    match."""
    assert len(old) == len(new)
    reader = PdfReader(io.BytesIO(pdf))
    writer = PdfWriter(clone_from=reader)
    seen = 0
    for page in writer.pages:
        fonts = {name: f.get_object() for name, f in page["/Resources"]["/Font"].items()}
        maps = {name: _to_unicode(font) for name, font in fonts.items()}
        content = ContentStream(page.get_contents(), writer)
        glyphs: list[tuple[int, str, str]] = []  # (operation index, font, char)
        font = ""
        for index, (operands, operator) in enumerate(content.operations):
            if operator == b"Tf":
                font = str(operands[0])
            elif operator == b"Tj":
                char = maps[font].get(bytes(operands[0].original_bytes), "\x00")
                if not char.isspace():  # spaces are drawn as glyphs too; match without them
                    glyphs.append((index, font, char))
        text = "".join(g[2] for g in glyphs)
        start = -1
        for _ in range(occurrence - seen + 1):
            start = text.find(old, start + 1)
            if start < 0:
                break
        if start < 0:
            seen += text.count(old)
            continue
        for (index, font_name, char), wanted in zip(
            glyphs[start : start + len(old)], new, strict=True
        ):
            if char == wanted:
                continue
            inverse = {v: k for k, v in maps[font_name].items()}
            assert wanted in inverse, f"font {font_name} has no glyph for {wanted!r}"
            content.operations[index][0][0] = ByteStringObject(inverse[wanted])
        page.replace_contents(content)
        out = io.BytesIO()
        writer.write(out)
        return out.getvalue()
    raise AssertionError(f"{old!r} is not printed {occurrence + 1} times")


def edit_block(pdf: bytes, change: Callable[[dict[str, Any]], None]) -> bytes:
    """Rewrites the statement block in the PDF's document information."""
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf)))
    block = json.loads(str(writer.metadata[PDF_METADATA_KEY]))
    change(block)
    writer.add_metadata(
        {PDF_METADATA_KEY: json.dumps(block, sort_keys=True, separators=(",", ":"))}
    )
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()
