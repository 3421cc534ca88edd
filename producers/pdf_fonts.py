"""TrueType fonts parsed once per process for fpdf2 (docs/adr/0040).

``FPDF.add_font`` parses the font file each time (its character map and
the width of every glyph: DejaVu Sans has some 6,000), about a third of
rendering an invoice. Those results never change; what does change per
document is the fontTools font object (fpdf2 subsets it *in place* when it
writes the PDF), the set of glyphs used, the font descriptor (it gets the
document's object numbers) and the widths map (a ``defaultdict``: a read
of a missing character writes to it). So a parsed font is kept as a
template, under a lock, and each document gets a font object with fresh
copies of those parts and a fontTools font opened anew (lazily) from the
file's bytes, which is cheap.

This uses fpdf2's ``TTFFont`` slots, which are not a public interface: the
unit test renders with and without the cache and requires the same bytes,
in threads too, so an fpdf2 upgrade that breaks the assumption fails there.
"""

from __future__ import annotations

import copy
import threading
from io import BytesIO
from pathlib import Path

from fontTools import ttLib  # type: ignore[import-untyped]  # no type hints shipped
from fpdf import FPDF
from fpdf.fonts import SubsetMap, TTFFont

_lock = threading.Lock()
_templates: dict[tuple[str, str], tuple[TTFFont, bytes]] = {}


def _template(path: str, style: str) -> tuple[TTFFont, bytes]:
    key = (path, style)
    with _lock:
        if key not in _templates:
            scratch = FPDF()
            scratch.add_font("template", style, path)
            parsed = scratch.fonts[f"template{style}"]
            if not isinstance(parsed, TTFFont):
                raise TypeError(f"{path} is not a TrueType font")
            _templates[key] = (parsed, Path(path).read_bytes())
        return _templates[key]


def add_font(pdf: FPDF, family: str, style: str, path: str) -> None:
    """``pdf.add_font(family, style, path)`` for a TrueType file, from the
    process's parsed template of it."""
    fontkey = f"{family.lower()}{style}"
    if fontkey in pdf.fonts:
        return
    template, data = _template(path, style)
    font = TTFFont.__new__(TTFFont)
    for slot in TTFFont.__slots__:
        if hasattr(template, slot):
            setattr(font, slot, getattr(template, slot))
    # What a document changes: its own copies.
    font.i = len(pdf.fonts) + 1
    font.fontkey = fontkey
    font.ttfont = ttLib.TTFont(BytesIO(data), recalcTimestamp=False, fontNumber=0, lazy=True)
    font.cw = copy.copy(template.cw)
    font.glyph_ids = dict(template.glyph_ids)
    font.cmap = dict(template.cmap)
    font.desc = copy.deepcopy(template.desc)
    font.missing_glyphs = []
    font.biggest_size_pt = 0
    font._hbfont = None  # shaping state, made on first use
    font.subset = SubsetMap(font)
    pdf.fonts[fontkey] = font
