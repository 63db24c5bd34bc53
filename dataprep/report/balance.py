"""Class balance before and after each rebalance node (and what the added rows are made of), and the length of
the texts per split in the dataset the run ends in."""
from __future__ import annotations

from collections import Counter

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dataprep.report import plots
from dataprep.report.html import Section, count, esc, note, table, tag
from dataprep.report.view import NodeState, RunView

ID = "balance"
SPLITS = ("train", "validation", "test")
QUANTILES = (0.5, 0.9, 0.99)


def section(view: RunView) -> Section:
    parts = [tag("h3", "Class balance"), _balance(view), tag("h3", "Text length per split"), _lengths(view)]
    return Section(ID, "Class balance and length", "".join(parts))


# --- class balance ---

def _balance(view: RunView) -> str:
    nodes = view.using("rebalance")
    if not nodes:
        return note("no rebalance node in the pipeline: the class counts per split are in the table below") + \
            _counts_only(view)
    return "".join(_rebalanced(view, s) for s in nodes)


def _counts_only(view: RunView) -> str:
    final = view.final_rows()
    if final is None or not view.available(final.name):
        return note("the final dataset is not in the cache")
    rows = view.rows(final.name, ["label", "split"])
    if "label" not in rows.column_names:
        return note(f"{final.name} has no label column (NER rows: entity types are in the training section)")
    counts = _counts(rows)
    splits = _splits_of(counts)
    labels = sorted({label for _, label in counts})
    body = [[esc(label), *(count(counts[(split, label)]) for split in splits)] for label in labels]
    return tag("p", f"{esc(final.name)}:") + table(["label", *splits], body, numeric=set(range(1, len(splits) + 1)))


def _rebalanced(view: RunView, s: NodeState) -> str:
    title = tag("h4", f"{esc(s.name)} (rebalance, {esc(_scope(s))})")
    missing = [n for n in (s.name, *s.node.inputs) if not view.available(n)]
    if missing:
        return title + note(f"not in the cache: {', '.join(missing)}")
    before = view.inputs(s.name, ["label", "split", "aug"])
    after = view.rows(s.name, ["label", "split", "aug"])
    if "label" not in after.column_names:
        return title + note("the rows have no label column: nothing to balance")
    was, now = _counts(before), _counts(after)
    splits = _splits_of(was + now)
    labels = sorted({label for _, label in was + now})
    head = ["label"] + [f"{split} {when}" for split in splits for when in ("before", "after")]
    body = [[esc(label)] + [count(c[(split, label)]) for split in splits for c in (was, now)] for label in labels]
    changed = [split for split in splits if any(was[(split, lab)] != now[(split, lab)] for lab in labels)]
    chart = _origin_chart(after, changed[0], labels, was) if changed else note("no class count changed")
    return title + table(head, body, numeric=set(range(1, len(head)))) + chart


def _scope(s: NodeState) -> str:
    split = getattr(s.node.params, "only_split", None)
    return f"only_split: {split}" if split else "every split"


def _counts(rows: pa.Table) -> Counter:
    """Rows per (split, label); a table without splits counts as one split, "all"."""
    labels = rows.column("label").to_pylist()
    splits = rows.column("split").to_pylist() if "split" in rows.column_names else ["all"] * len(labels)
    return Counter((split or "(none)", "(none)" if label is None else label) for split, label in zip(splits, labels))


def _splits_of(counts: Counter) -> list[str]:
    present = {split for split, _ in counts}
    return [s for s in SPLITS if s in present] + sorted(present - set(SPLITS))


def _origin_chart(after: pa.Table, split: str, labels: list[str], before: Counter) -> str:
    """The split rebalancing changed, per label: the count before (outline) and the rows after, stacked by
    where they came from — original rows, back-translations, copies."""
    in_split = after.filter(pc.equal(after.column("split"), split)) if "split" in after.column_names else after
    aug = in_split.column("aug").to_pylist() if "aug" in in_split.column_names else [None] * in_split.num_rows
    origin = ["original" if a is None else "copy" if a == "oversample" else a.split(":")[0] + " rows" for a in aug]
    kinds = ["original"] + sorted(set(origin) - {"original", "copy"}) + (["copy"] if "copy" in origin else [])
    per = Counter(zip(in_split.column("label").to_pylist(), origin))

    def draw(fig):
        ax = fig.subplots()
        x = np.arange(len(labels))
        bottom = np.zeros(len(labels))
        for i, kind in enumerate(kinds):
            heights = np.array([per[(label, kind)] for label in labels])
            ax.bar(x + 0.2, heights, 0.4, bottom=bottom, label=f"after: {kind}",
                   color=plots.KEPT if kind == "original" else plots.color(i))
            bottom += heights
        ax.bar(x - 0.2, [before[(split, label)] for label in labels], 0.4, color="#d7dbe0", label="before")
        ax.set_xticks(x, labels)
        ax.set_ylabel(f"{split} rows")
        ax.grid(axis="x", visible=False)
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))

    return plots.svg(draw, min(2.5 + 0.9 * len(labels), 10), 2.8)


# --- text length ---

def _lengths(view: RunView) -> str:
    final = view.final_rows()
    if final is None or not view.available(final.name):
        return note("the final dataset is not in the cache")
    rows = view.rows(final.name, ["text", "tokens", "split"])
    if "text" in rows.column_names:
        lengths, unit = pc.utf8_length(pc.fill_null(rows.column("text"), "")), "characters"
    elif "tokens" in rows.column_names:
        lengths, unit = pc.fill_null(pc.list_value_length(rows.column("tokens")), 0), "tokens"
    else:
        return note(f"{final.name} has neither text nor tokens")
    values = np.asarray(lengths.to_numpy(zero_copy_only=False), dtype=float)
    splits = np.array([s or "(none)" for s in rows.column("split").to_pylist()] if "split" in rows.column_names
                      else ["all"] * len(values), dtype=object)
    per = {split: values[splits == split] for split in _splits_of(Counter((s, "") for s in splits.tolist()))}
    if not per:
        return note(f"{final.name} has no rows")
    head = ["split", "rows", "min", *(f"p{round(q * 100)}" for q in QUANTILES), "max", "mean"]
    body = [[esc(split), count(len(v)), f"{v.min():g}", *(f"{np.quantile(v, q):g}" for q in QUANTILES),
             f"{v.max():g}", f"{v.mean():.1f}"] for split, v in per.items()]
    intro = tag("p", f"{esc(final.name)}, in {unit}:")
    return intro + table(head, body, numeric=set(range(1, len(head)))) + _length_chart(per, unit)


def _length_chart(per: dict[str, np.ndarray], unit: str) -> str:
    """Each split's share of rows by length (densities, so a small test split is as visible as train)."""
    top = max(float(v.max()) for v in per.values())
    bins = np.linspace(0, max(top, 1), 41)

    def draw(fig):
        ax = fig.subplots()
        for i, (split, v) in enumerate(per.items()):
            ax.hist(v, bins=bins, density=True, histtype="step", linewidth=1.5, label=f"{split} ({len(v)})",
                    color=plots.KEPT if i == 0 else plots.color(i - 1))
        ax.set_xlabel(unit)
        ax.set_ylabel("share of rows")
        ax.legend(fontsize=8)

    return plots.svg(draw, 7, 2.6)
