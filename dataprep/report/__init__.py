"""`dataprep report`: one self-contained HTML page about a pipeline's cached run — what each node did to the rows,
why rows were dropped, what the perplexity cut, the classes before and after rebalancing, what back-translation
made, how training went, the variants an ablation or sweep measured (when given their results), and the run itself.

It only reads the cache (as `dataprep show` does: every entry verified before it is trusted) and writes nothing
but the page. A section whose data is absent (no backtranslate node, an adapter not trained yet) is one line
saying so. The page is deterministic: samples are seeded, plots carry no date, and the only measured numbers in
it are the node times of stats.json and the adapter's latency and memory.

    from dataprep.report import build_report
    html = build_report("pipelines/zh_reviews.yaml", "runs")
    html = build_report("pipelines/zh_reviews.yaml", "runs", variants=["ablation.json"])
"""
from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

from dataprep.dag import load_pipeline
from dataprep.report import backtranslation, balance, funnel, perplexity, rejects, run, training
from dataprep.report import variants as variant_tables
from dataprep.report.html import Section, count, esc, page, tag
from dataprep.report.view import RunView


def build_report(pipeline_path: str | Path, cache_root: str | Path = "runs", variants: Sequence = ()) -> str:
    """The report of the pipeline at `pipeline_path` as cached under `cache_root`, as one HTML document;
    `variants` are results files of `dataprep ablate/sweep -o` (their .json) about this pipeline."""
    with warnings.catch_warnings():
        # What loading warns (a train_lora setting outside the usual range) is in the run section, per node.
        warnings.simplefilter("ignore")
        pipeline = load_pipeline(str(pipeline_path))
    tables = variant_tables.load(variants, pipeline.name)  # checked before anything is read from the cache
    view = RunView(pipeline, cache_root)
    found = run.collect_warnings(view)
    sections = [funnel.section(view), rejects.section(view), perplexity.section(view), balance.section(view),
                backtranslation.section(view), training.section(view), variant_tables.section(tables, pipeline_path),
                run.section(view, found)]
    return page(f"dataprep report: {view.pipeline.name}", _header(view, pipeline_path, found, sections), sections)


def write_report(pipeline_path: str | Path, output: str | Path, cache_root: str | Path = "runs",
                 variants: Sequence = ()) -> Path:
    """Build the report and write it to `output` (UTF-8); nothing else is written."""
    html = build_report(pipeline_path, cache_root, variants)
    path = Path(output)
    path.write_text(html, encoding="utf-8")
    return path


def _header(view: RunView, pipeline_path, found: dict[str, list[str]], sections: list[Section]) -> str:
    cached = sum(s.status == "cached" for s in view.nodes.values())
    facts = (f"pipeline {tag('code', esc(pipeline_path))}, cache {tag('code', esc(view.cache_root))}: "
             f"{cached} of {len(view.nodes)} nodes in the cache")
    omitted = [s.title for s in sections if s.body is None]
    parts = [tag("p", facts)]
    warned = sum(len(w) for w in found.values())
    if warned:
        parts.append(tag("p", tag("a", f"{count(warned)} warning{'s' if warned != 1 else ''}", href=f"#{run.ID}"),
                         class_="warn", id="warnings"))
    if omitted:
        parts.append(tag("p", "nothing to show for: " + esc(", ".join(omitted)), class_="muted"))
    return "".join(parts)
