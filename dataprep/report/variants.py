"""Variants: the tables `dataprep ablate` and `dataprep sweep` wrote (their `-o FILE.json`), one per document,
with a plot of the main metric per variant (each seed a dot, the mean with its spread) against the pipeline as
written, and the variants whose difference is larger than twice its standard error named in one line.

The report does not run the variants: they are as many trainings as variants times seeds, so they are a
separate, explicit command; the page shows what that command measured, from the file it wrote."""
from __future__ import annotations

import json
from pathlib import Path

from dataprep.errors import ConfigError
from dataprep.report import plots
from dataprep.report.html import Section, esc, note, table, tag, warning
from dataprep.variants import LABELS, footer, table_cells

ID = "variants"
TITLE = "Variants (ablation and sweeps)"
MAIN_METRICS = ("macro_f1", "f1", "accuracy", "perplexity")  # the first one a document has is plotted
REQUIRED = ("kind", "pipeline", "target", "trainer", "metrics", "seeds", "test_rows", "reference", "variants")


def load(paths, pipeline_name: str) -> list[dict]:
    """The results documents at `paths`, each checked to be one (`dataprep ablate/sweep -o`) and to be about
    the pipeline the report is of; a ConfigError naming the file otherwise."""
    docs = []
    for path in paths:
        doc = _read(Path(path))
        if doc["pipeline"] != pipeline_name:
            raise ConfigError(f"--variants {path}: the variants of pipeline {doc['pipeline']!r}, not of "
                              f"{pipeline_name!r} (this report's pipeline)")
        docs.append(doc)
    return docs


def _read(path: Path) -> dict:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ConfigError(f"--variants {path}: cannot read it as JSON ({e})") from e
    missing = [k for k in REQUIRED if not isinstance(doc, dict) or k not in doc]
    if missing:
        raise ConfigError(f"--variants {path}: not a results document of dataprep ablate/sweep -o (no "
                          f"{', '.join(missing)}); pass the .json written beside the table")
    return doc


def section(docs: list[dict], pipeline_path: str | Path) -> Section:
    if not docs:
        return Section(ID, TITLE, omitted="no variants given: run `dataprep ablate` or `dataprep sweep` with "
                       "-o FILE.md, then pass FILE.json to `dataprep report --variants`")
    return Section(ID, TITLE, "".join(_block(doc, pipeline_path) for doc in docs))


def _block(doc: dict, pipeline_path: str | Path) -> str:
    what = "ablation" if doc["kind"] == "ablation" else "sweep"
    title = tag("h3", f"{what} of {esc(doc['target'])}")
    head, rows = table_cells(doc)
    cells = [[esc(c) for c in row] for row in rows]
    parts = [title]
    source = doc.get("source")
    if source and Path(source).resolve() != Path(pipeline_path).resolve():
        # Same name, so the same cache, but maybe another arrangement of the DAG (one built to be ablated).
        parts.append(warning(f"measured on the variants of {source}, a pipeline of the same name but not this "
                             "file: its nodes may be arranged differently"))
    parts += [table(head, cells, numeric=set(range(1, len(head)))), tag("p", esc(footer(doc)), class_="muted")]
    metric = next((m for m in MAIN_METRICS if m in doc["metrics"]), None)
    if metric is None:
        return "".join(parts) + note("no metric to plot")
    parts += [_findings(doc, metric), _plot(doc, metric)]
    return "".join(parts)


def _findings(doc: dict, metric: str) -> str:
    """Which variants differ from the reference by more than twice the standard error of the difference: the
    only differences the seeds let one read as real."""
    if len(doc["seeds"]) < 2:
        return note("one seed per variant: no spread to tell a difference from seed noise")
    found = []
    for v in doc["variants"][1:]:
        s = v["metrics"][metric]
        if s["delta"] is not None and s["delta_se"] and abs(s["delta"]) > 2 * s["delta_se"]:
            found.append(f"{v['label']} ({s['delta']:+.3f} ± {s['delta_se']:.3f})")
    label = LABELS[metric]
    if not found:
        return tag("p", f"No variant's {esc(label)} differs from {esc(doc['reference'])} by more than twice "
                   "its standard error: nothing here is distinguishable from seed noise.")
    return tag("p", f"{esc(label)} differs from {esc(doc['reference'])} by more than twice its standard error "
               f"for: {esc('; '.join(found))}.")


def _plot(doc: dict, metric: str) -> str:
    variants = doc["variants"]
    reference = variants[0]["metrics"][metric]["mean"]

    def draw(fig):
        ax = fig.subplots()
        for y, v in enumerate(variants):
            s = v["metrics"][metric]
            ax.scatter(s["values"], [y] * len(s["values"]), s=12, color=plots.color(0), alpha=0.5, zorder=2)
            spread = s["std"] or 0.0
            ax.errorbar([s["mean"]], [y], xerr=[spread], fmt="D", color=plots.KEPT, markersize=5, capsize=3,
                        zorder=3)
        ax.axvline(reference, color="#6b7280", linestyle="--", linewidth=1)
        ax.set_yticks(range(len(variants)), [v["label"] for v in variants])
        ax.invert_yaxis()  # the reference on top, as in the table
        ax.set_xlabel(f"{LABELS[metric]} on the {doc['test_rows']['rows']:,} test rows\n"
                      "dots: seeds; diamond: mean ± std; dashed line: as written")

    return plots.svg(draw, 7.0, 0.45 * len(variants) + 1.2)
