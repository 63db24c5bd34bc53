"""The page: small HTML helpers, the stylesheet and the one script, all inline, so the file opens from disk with
no network (no CDN, no fonts, no images but the inline SVG plots)."""
from __future__ import annotations

from dataclasses import dataclass
from html import escape


def esc(value: object) -> str:
    """Text (or any value's str) made safe to place in HTML, quotes included (it may land in an attribute)."""
    return escape(str(value), quote=True)


def count(n: int | None) -> str:
    """A row count with thousands separators; a dash for none."""
    return "—" if n is None else f"{n:,}"


def share(part: int, whole: int) -> str:
    return f"{part / whole:.1%}" if whole else "—"


def tag(name: str, content: str = "", **attrs: object) -> str:
    """`<name attrs>content</name>`; content is HTML already. `class_` names the class, `data_x` is `data-x`;
    an attribute whose value is None is left out."""
    parts = [name]
    for key, value in attrs.items():
        if value is None:
            continue
        attr = key.rstrip("_").replace("_", "-")
        parts.append(f'{attr}="{esc(value)}"')
    return f"<{' '.join(parts)}>{content}</{name}>"


def table(headers: list[str], rows: list[list[str]], numeric: set[int] = frozenset(), **attrs: object) -> str:
    """A table whose cells are HTML already; columns in `numeric` are right-aligned."""
    head = "".join(tag("th", esc(h), class_="num" if i in numeric else None) for i, h in enumerate(headers))
    body = "".join(tag("tr", "".join(tag("td", cell, class_="num" if i in numeric else None)
                                     for i, cell in enumerate(row))) for row in rows)
    return tag("table", tag("thead", tag("tr", head)) + tag("tbody", body), **attrs)


def note(text: str) -> str:
    """A one-line note where a part of a section has nothing to show, saying why."""
    return tag("p", esc(text), class_="omitted")


def warning(text: str) -> str:
    return tag("p", esc(text), class_="warn")


def text_cell(text: str | None, limit: int = 240) -> str:
    """A row's text, cut at `limit` characters (the whole text stays in the tooltip)."""
    if text is None:
        return tag("span", "(none)", class_="muted")
    short = text if len(text) <= limit else text[:limit] + "…"
    return tag("span", esc(short), class_="text", title=text if short != text else None)


@dataclass(frozen=True)
class Section:
    """One part of the report: a body, or (when its data is absent) a one-line note instead."""
    id: str
    title: str
    body: str | None = None
    omitted: str | None = None

    def html(self) -> str:
        inner = self.body if self.body is not None else note(self.omitted or "nothing to show")
        return tag("section", tag("h2", esc(self.title)) + inner, id=self.id)


STYLE = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1d2430; margin: 0 auto;
       max-width: 1200px; padding: 0 24px 64px; }
h1 { font-size: 24px; margin: 24px 0 4px; }
h2 { font-size: 19px; margin: 36px 0 8px; padding-top: 8px; border-top: 2px solid #d7dbe0; }
h3 { font-size: 15px; margin: 20px 0 6px; }
h4 { font-size: 14px; margin: 14px 0 4px; }
nav.toc { margin: 8px 0 0; }
nav.toc a { margin-right: 14px; }
a { color: #2158a8; }
table { border-collapse: collapse; margin: 6px 0 14px; }
th, td { padding: 3px 9px; border-bottom: 1px solid #e3e6ea; text-align: left; vertical-align: top; }
th { background: #f3f5f7; font-weight: 600; }
.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.muted, .omitted { color: #6b7280; }
.omitted { font-style: italic; }
.warn { background: #fff4e0; border-left: 3px solid #e8a33d; padding: 4px 10px; margin: 6px 0; }
.text { display: inline-block; max-width: 560px; word-break: break-word; white-space: pre-wrap; }
code, .key { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 12.5px; }
details { margin: 6px 0; }
details > summary { cursor: pointer; font-weight: 600; padding: 2px 0; }
details[open] > summary { margin-bottom: 4px; }
.reasons a { margin-right: 10px; white-space: nowrap; }
.plot svg { max-width: 100%; height: auto; }
.status-missing, .status-corrupt { color: #b42318; font-weight: 600; }
"""

# Row samples sit in <details> that start closed (the page stays short); a link to one, from the funnel's table
# or a bar of its chart, must open it, and so must the page opened with that #fragment.
SCRIPT = """
function reveal(id) {
  const target = id ? document.getElementById(id) : null;
  if (!target) return;
  for (let el = target; el; el = el.parentElement) {
    if (el.tagName === "DETAILS") el.open = true;
  }
  target.scrollIntoView();
}
function fragment() { return decodeURIComponent(location.hash.slice(1)); }
document.addEventListener("click", (event) => {
  const link = event.target.closest("a");
  const href = link ? (link.getAttribute("href") || link.getAttribute("xlink:href")) : null;
  if (href && href.startsWith("#")) reveal(href.slice(1));
});
window.addEventListener("hashchange", () => reveal(fragment()));
document.addEventListener("DOMContentLoaded", () => reveal(fragment()));
"""


def page(title: str, header: str, sections: list[Section]) -> str:
    """The whole document: one file, its style and script inline."""
    toc = tag("nav", "".join(tag("a", esc(s.title), href=f"#{s.id}") for s in sections), class_="toc")
    head = ('<meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">'
            # An empty icon: otherwise a browser asks the file's directory for favicon.ico.
            '<link rel="icon" href="data:,">' + tag("title", esc(title)) + tag("style", STYLE))
    body = tag("h1", esc(title)) + header + toc + "".join(s.html() for s in sections) + tag("script", SCRIPT)
    return f"<!DOCTYPE html>\n<html lang=\"en\">{tag('head', head)}{tag('body', body)}</html>\n"
