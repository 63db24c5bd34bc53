"""The funnel: rows in and out of every row node, drops stacked by reason, each reason a link to its examples.

The numbers are the ledgers of the cache entries, as `dataprep show` prints them; the browser test reads them off
the rendered page and compares them with the manifests.
"""
from __future__ import annotations

from dataprep.report import plots
from dataprep.report.html import Section, count, esc, note, tag
from dataprep.report.samples import anchor
from dataprep.report.view import NodeState, RunView

ID = "funnel"


def section(view: RunView) -> Section:
    nodes = view.row_nodes()
    if not nodes:
        return Section(ID, "Funnel", omitted="the pipeline has no row nodes")
    cached = [s for s in nodes if s.ledger is not None]
    chart = _chart(cached) if cached else note("no row node is in the cache yet: run the pipeline first")
    intro = tag("p", "Rows in and out of each node; a node may also add rows (back-translations, copies). "
                "in = out + dropped − added. Each drop reason links to sample rows.")
    return Section(ID, "Funnel", intro + _table(view, nodes) + chart)


def _table(view: RunView, nodes: list[NodeState]) -> str:
    head = ["node", "stage", "status", "in", "out", "added", "dropped", "drop reasons"]
    header = "".join(tag("th", h, class_="num" if h in ("in", "out", "added", "dropped") else None) for h in head)
    rows = "".join(_row(s) for s in nodes)
    return tag("table", tag("thead", tag("tr", header)) + tag("tbody", rows), id="funnel-table")


def _row(s: NodeState) -> str:
    """One node; the cells carry data-field so a test (or a script) finds each number without parsing text."""
    cells = [tag("td", esc(s.name), data_field="node"), tag("td", esc(s.stage), data_field="stage"),
             tag("td", esc(_status(s)), class_=f"status-{s.status}", data_field="status")]
    led = s.ledger
    values = {"in": led.rows_in, "out": led.rows_out, "added": led.added, "dropped": led.dropped_total} if led else {}
    for field in ("in", "out", "added", "dropped"):
        cells.append(tag("td", count(values.get(field)), class_="num", data_field=field))
    cells.append(tag("td", _reasons(s), class_="reasons", data_field="reasons"))
    return tag("tr", "".join(cells), data_node=s.name)


def _status(s: NodeState) -> str:
    if s.status == "corrupt":
        return f"corrupt ({s.problem})"
    return "cached" if s.status == "cached" else "not run"


def _reasons(s: NodeState) -> str:
    if s.ledger is None:
        return ""
    links = [tag("a", f"{esc(code)} {count(n)}", href=f"#{anchor(s.name, code)}", data_reason=code, data_count=n)
             for code, n in sorted(s.ledger.dropped.items())]
    return "".join(links)


def _chart(nodes: list[NodeState]) -> str:
    """Horizontal bars, one per node: the rows that went through, then each drop reason, then the rows added.
    A reason's segment links to its samples (matplotlib writes the url into the SVG as a link)."""
    codes = sorted({c for s in nodes for c in s.ledger.dropped})
    colours = {c: plots.color(i) for i, c in enumerate(codes)}

    def draw(fig):
        ax = fig.subplots()
        names = [s.name for s in nodes][::-1]  # top to bottom in DAG order
        ordered = nodes[::-1]
        kept = [s.ledger.rows_in - s.ledger.dropped_total for s in ordered]
        ax.barh(names, kept, color=plots.KEPT, label="passed through")
        left = list(kept)
        for c in codes:
            widths = [s.ledger.dropped.get(c, 0) for s in ordered]
            bars = ax.barh(names, widths, left=left, color=colours[c], label=f"dropped: {c}")
            for bar, s in zip(bars, ordered):
                bar.set_url(f"#{anchor(s.name, c)}")
            left = [a + b for a, b in zip(left, widths)]
        added = [s.ledger.added for s in ordered]
        if any(added):
            ax.barh(names, added, left=left, color=plots.ADDED, hatch="//", edgecolor="white", label="added")
        ax.set_xlabel("rows")
        ax.grid(axis="y", visible=False)
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)

    return plots.svg(draw, 10, 0.9 + 0.32 * len(nodes))
