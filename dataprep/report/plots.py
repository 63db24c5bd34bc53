"""Plots as inline SVG, drawn by matplotlib.

Why matplotlib: it is the well-kept standard of the Python world, draws offline into SVG that a page embeds as
it is (text stays text, so a browser renders any script a label is written in; a bar can carry a link), and
needs no JavaScript at all. Vega-Lite would need vega, vega-lite and vega-embed (about 1 MB of script) inlined
into every report, and the page would draw nothing until that script ran.

Deterministic output: a fixed `svg.hashsalt` for the ids matplotlib generates and no date in the metadata, so
the same cache gives the same bytes.
"""
from __future__ import annotations

import io
import re
import warnings
from collections.abc import Callable

# Colours: kept rows in one calm blue; reasons (and any other series) from a colour-blind-safe cycle.
KEPT = "#4c78a8"
ADDED = "#9ecae9"
SERIES = ["#e45756", "#f58518", "#b279a2", "#72b7b2", "#eeca3b", "#54a24b", "#ff9da6", "#9d755d", "#bab0ac",
          "#79706e"]
STYLE = {
    "svg.hashsalt": "dataprep-report",
    "svg.fonttype": "none",  # text as <text>: the browser's fonts render it (CJK labels included)
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "#e6e8eb",
    "axes.axisbelow": True,
    "legend.frameon": False,
}
_PROLOGUE = re.compile(r"\A.*?(?=<svg)", re.S)  # the XML declaration and DOCTYPE: not for inline SVG


def color(i: int) -> str:
    return SERIES[i % len(SERIES)]


def svg(draw: Callable, width: float, height: float) -> str:
    """Call `draw(figure)` on a fresh matplotlib Figure of `width` x `height` inches and return it as an inline
    `<svg>` element. A Figure, not pyplot: no global state, no GUI backend, nothing kept between plots."""
    import matplotlib
    from matplotlib.figure import Figure
    with matplotlib.rc_context(STYLE), warnings.catch_warnings():
        # Layout measures text with matplotlib's own font, which lacks CJK glyphs; the browser draws the text.
        warnings.filterwarnings("ignore", message="Glyph .* missing from font")
        figure = Figure(figsize=(width, height), layout="constrained")
        draw(figure)
        out = io.StringIO()
        figure.savefig(out, format="svg", metadata={"Date": None})
    return '<div class="plot">' + _PROLOGUE.sub("", out.getvalue()) + "</div>"
