"""Perplexity: for each filter that cuts on `ppl` (ppl_filter, quality_filter with a ppl_* bound), the scores of
the rows it judged, per label (and per language when there are several), with the cut, the kept and dropped
shares, and the lowest- and highest-scoring rows.

The cuts are read from the drop reasons, where the filter wrote each resolved threshold (`ppl_above_mad3.5:48.2`,
one per group when thresholds are per label): the line drawn is the one the rows were judged by. A filter that
dropped no row by perplexity recorded no threshold, and the plot says so.
"""
from __future__ import annotations

import math
from dataclasses import MISSING, Field, fields

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dataprep.report import plots
from dataprep.report.html import Section, count, esc, note, share, table, tag, text_cell
from dataprep.report.samples import EXTREMES, code, detail, texts
from dataprep.report.view import NodeState, RunView
from dataprep.scope import row_filter

ID = "perplexity"
KEPT, BY_PPL, BY_OTHER = "kept", "dropped: perplexity", "dropped: other rule"
FATES = (KEPT, BY_PPL, BY_OTHER)
FATE_COLOURS = {KEPT: plots.KEPT, BY_PPL: "#e45756", BY_OTHER: "#f58518"}
SCOPE = ("only_split", "only_augmented", "all_splits")
COLUMNS = ["id", "text", "tokens", "label", "lang", "ppl", "split", "aug"]


def section(view: RunView) -> Section:
    nodes = [s for s in view.row_nodes() if cuts_on_ppl(s)]
    if not nodes:
        return Section(ID, "Perplexity", omitted="no node filters on perplexity (ppl_filter, or quality_filter "
                       "with a ppl_* bound)")
    return Section(ID, "Perplexity", "".join(_block(view, s) for s in nodes))


def cuts_on_ppl(s: NodeState) -> bool:
    return s.stage == "ppl_filter" or getattr(s.node.params, "uses_ppl", False) is True


class Judged:
    """The rows one filter judged (its scope, as the runner routed them) and what became of each."""

    def __init__(self, view: RunView, s: NodeState):
        rows = view.inputs(s.name, COLUMNS)
        inside = row_filter(s.node.params)
        self.rows = rows.filter(inside(rows)) if inside is not None and rows.num_rows else rows
        rejects = view.rejects(s.name)
        self.reasons = dict(zip(rejects.column("id").to_pylist(), rejects.column("reason").to_pylist()))
        ids = self.rows.column("id").to_pylist() if self.rows.num_rows else []
        self.reason = [self.reasons.get(i) for i in ids]
        self.fate = np.array([KEPT if r is None else BY_PPL if code(r).startswith("ppl_") else BY_OTHER
                              for r in self.reason], dtype=object)
        ppl = self.rows.column("ppl") if "ppl" in self.rows.column_names else pa.nulls(len(ids), pa.float64())
        self.ppl = np.asarray(pc.fill_null(ppl.cast(pa.float64()), math.nan).to_numpy(zero_copy_only=False),
                              dtype=float)
        self.scored = np.isfinite(self.ppl) & (self.ppl > 0)

    def groups(self, column: str) -> dict[str, np.ndarray]:
        """Row positions per value of `column` (label or lang), sorted by value; one group "all" without it."""
        if column not in self.rows.column_names:
            return {"all": np.arange(self.rows.num_rows)}
        values = np.array(["(none)" if v is None else str(v) for v in self.rows.column(column).to_pylist()],
                          dtype=object)
        return {v: np.flatnonzero(values == v) for v in sorted(set(values.tolist()))}

    def cuts(self, rows: np.ndarray) -> list[float]:
        """The thresholds named by the perplexity reasons of these rows (distinct, sorted)."""
        found = set()
        for i in rows.tolist():
            reason = self.reason[i]
            if reason is not None and code(reason).startswith("ppl_"):
                try:
                    found.add(float(detail(reason)))
                except ValueError:  # ppl_bucket:tail, ppl_unscored: no number to draw
                    pass
        return sorted(found)


def _block(view: RunView, s: NodeState) -> str:
    title = tag("h3", f"{esc(s.name)} ({esc(s.stage)})") + tag("p", "criteria: " + _criteria(s))
    missing = [n for n in (s.name, *s.node.inputs) if not view.available(n)]
    if missing:
        return title + note(f"not in the cache: {', '.join(missing)}")
    judged = Judged(view, s)
    if not judged.scored.any():
        return title + note("no row this node judged has a perplexity score")
    parts = [title, _summary(judged, "label"), _histograms(judged, "label")]
    if len(judged.groups("lang")) > 1:
        parts += [tag("h4", "per language"), _summary(judged, "lang"), _histograms(judged, "lang")]
    return "".join(parts) + _extremes(judged)


def _criteria(s: NodeState) -> str:
    """The node's settings that differ from their defaults: for quality_filter, its perplexity ones and its
    scope (its rules are its own business); the run section lists every param."""
    changed = {f.name: getattr(s.node.params, f.name) for f in fields(s.node.params)
               if getattr(s.node.params, f.name) != _default(f)}
    if s.stage != "ppl_filter":
        changed = {k: v for k, v in changed.items() if k.startswith("ppl_") or k in SCOPE}
    return ", ".join(tag("code", f"{esc(k)}={esc(v)}") for k, v in sorted(changed.items())) or "the defaults"


def _default(f: Field):
    if f.default is not MISSING:
        return f.default
    return f.default_factory() if f.default_factory is not MISSING else None


def _summary(judged: Judged, column: str) -> str:
    rows = []
    for name, members in judged.groups(column).items():
        fates = judged.fate[members]
        n = len(members)
        cuts = judged.cuts(members)
        rows.append([esc(name), count(n), count(int(judged.scored[members].sum())),
                     share(int((fates == KEPT).sum()), n), share(int((fates == BY_PPL).sum()), n),
                     share(int((fates == BY_OTHER).sum()), n), esc(", ".join(f"{c:g}" for c in cuts) or "—")])
    headers = [column, "rows", "scored", "kept", "dropped: perplexity", "dropped: other rule", "cut (ppl)"]
    return table(headers, rows, numeric={1, 2, 3, 4, 5})


def _histograms(judged: Judged, column: str) -> str:
    """One panel per group: stacked histograms of ppl (log-spaced bins shared by all panels) by fate, with the
    cut as a dashed line."""
    groups = judged.groups(column)
    values = judged.ppl[judged.scored]
    low, high = float(values.min()), float(values.max())
    if high <= low * 1.0001:  # every score equal: a band around it, so the bins have a width
        low, high = low / 1.1, high * 1.1
    # Perplexity spans decades when garbage is in the rows: log bins then; a narrow range reads better linear.
    log = high / low > 10
    bins = np.geomspace(low, high, 31) if log else np.linspace(low, high, 31)
    cols = min(3, len(groups))
    rows = math.ceil(len(groups) / cols)

    def draw(fig):
        from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter
        axes = fig.subplots(rows, cols, squeeze=False, sharex=True).ravel()
        for ax, (name, members) in zip(axes, groups.items()):
            scored = members[judged.scored[members]]
            series = [judged.ppl[scored][judged.fate[scored] == f] for f in FATES]
            ax.hist(series, bins=bins, stacked=True, color=[FATE_COLOURS[f] for f in FATES], label=list(FATES))
            for cut in judged.cuts(members):
                ax.axvline(cut, color="#1d2430", linestyle="--", linewidth=1)
                ax.annotate(f"cut {cut:g}", (cut, 1), xycoords=("data", "axes fraction"), xytext=(3, -10),
                            textcoords="offset points", fontsize=8)
            if log:  # ticks at 1, 2, 5 x 10^k, written plainly; unlabelled minor ticks (their labels overlap)
                ax.set_xscale("log")
                ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
                ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
                ax.xaxis.set_minor_formatter(NullFormatter())
            ax.set_title(f"{column} {name}: {len(members)} rows")
            ax.set_xlabel("perplexity (log scale)" if log else "perplexity")
        for ax in axes[len(groups):]:
            ax.set_visible(False)
        axes[0].legend(fontsize=8)

    return plots.svg(draw, 3.6 * cols + 0.4, 2.6 * rows)


def _extremes(judged: Judged) -> str:
    """The lowest- and highest-scoring rows: what the model finds most fluent and most foreign."""
    scored = np.flatnonzero(judged.scored)
    ids = np.array(judged.rows.column("id").to_pylist(), dtype=object)
    order = scored[np.lexsort((ids[scored], judged.ppl[scored]))]  # ties by id: the page does not depend on ties
    shown = texts(judged.rows)
    labels = judged.rows.column("label").to_pylist() if "label" in judged.rows.column_names else [None] * len(ids)

    def rows(positions: np.ndarray) -> list[list[str]]:
        return [[f"{judged.ppl[i]:.4g}", esc(labels[i] if labels[i] is not None else "—"),
                 tag("code", esc(judged.reason[i] or "kept")), esc(ids[i]), text_cell(shown[i])]
                for i in positions.tolist()]

    headers = ["ppl", "label", "fate", "id", "text"]
    return (tag("h4", f"lowest perplexity ({min(EXTREMES, len(order))} rows)") +
            table(headers, rows(order[:EXTREMES]), numeric={0}) +
            tag("h4", f"highest perplexity ({min(EXTREMES, len(order))} rows)") +
            table(headers, rows(order[::-1][:EXTREMES]), numeric={0}))
