"""Training: for each train_lora node, the loss, learning-rate, gradient-norm and validation curves
(train_log.jsonl), the test scores against the baselines, per-class precision / recall / F1 and the confusion
matrix (metrics.json), and latency and memory (efficiency.json, measured on the machine that trained)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from dataprep.report import plots
from dataprep.report.html import Section, count, esc, note, table, tag
from dataprep.report.view import NodeState, RunView, read_json
from dataprep.train.monitor import LOG

ID = "training"


def section(view: RunView) -> Section:
    nodes = view.using("train_lora")
    if not nodes:
        return Section(ID, "Training", omitted="no train_lora node in the pipeline")
    return Section(ID, "Training", "".join(_block(view, s) for s in nodes))


def _block(view: RunView, s: NodeState) -> str:
    title = tag("h3", f"{esc(s.name)} (train_lora)")
    model = view.model_dir(s.name)
    if model is None:
        return title + note("the adapter is not in the cache: run the pipeline to it (make train)")
    metrics = read_json(model / "metrics.json")
    if not metrics:
        return title + note(f"{model.name}/metrics.json is missing or unreadable")
    parts = [title, _scores(metrics), _per_class(metrics), _curves(model / LOG), _efficiency(model)]
    return "".join(parts)


def _scores(m: dict) -> str:
    """This adapter against the baselines trained on the same training rows and scored on the same test rows."""
    n = f" ({count(m['n'])} rows)" if isinstance(m.get("n"), int) else ""
    head = tag("h4", f"scores on the {esc(m.get('split', '?'))} split{n}")
    if "macro_f1" in m:
        names, keys = ["accuracy", "macro-F1"], ["accuracy", "macro_f1"]
    elif "f1" in m:
        names, keys = ["precision", "recall", "entity F1"], ["precision", "recall", "f1"]
    else:
        return head + table(["", "perplexity"], [["this adapter", f"{m.get('perplexity', float('nan')):.2f}"]])
    rows = [["this adapter", *(f"{m[k]:.3f}" for k in keys)]]
    rows += [[f"baseline: {esc(name)}", *(f"{b.get(k, float('nan')):.3f}" for k in keys)]
             for name, b in m.get("baselines", {}).items()]
    steps = m.get("train", {})
    trained = tag("p", f"trained {count(steps.get('steps'))} steps, {count(steps.get('epochs_completed'))} epochs "
                  f"on {count(steps.get('examples'))} training rows") if steps else ""
    return head + table(["", *names], rows, numeric=set(range(1, len(keys) + 1))) + trained


def _per_class(m: dict) -> str:
    per = m.get("per_class") or m.get("per_type")
    if not per:
        return ""
    what = "class" if "per_class" in m else "entity type"
    rows = [[esc(k), f"{v['precision']:.3f}", f"{v['recall']:.3f}", f"{v['f1']:.3f}", count(v.get("support"))]
            for k, v in per.items()]
    out = tag("h4", f"per {what}") + table([what, "precision", "recall", "F1", "support"], rows,
                                           numeric={1, 2, 3, 4})
    if m.get("confusion"):
        out += tag("h4", "confusion matrix (rows: true label, columns: predicted)") + _confusion(m["confusion"])
    return out


def _confusion(confusion: dict) -> str:
    labels = list(confusion)
    counts = np.array([[confusion[g].get(p, 0) for p in labels] for g in labels], dtype=float)
    shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)  # colour by recall: rows differ in size

    def draw(fig):
        ax = fig.subplots()
        # pcolormesh, not imshow: cells as vector shapes (imshow would embed a raster image in the SVG).
        ax.pcolormesh(np.arange(len(labels) + 1) - 0.5, np.arange(len(labels) + 1) - 0.5, shares, cmap="Blues",
                      vmin=0, vmax=1)
        ax.invert_yaxis()
        ax.set_aspect("equal")
        for (i, j), n in np.ndenumerate(counts):
            ax.text(j, i, f"{int(n)}", ha="center", va="center", color="white" if shares[i, j] > 0.6 else "#1d2430")
        ax.set_xticks(range(len(labels)), labels, rotation=30 if len(labels) > 4 else 0)
        ax.set_yticks(range(len(labels)), labels)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.grid(False)

    side = 1.6 + 0.55 * len(labels)
    return plots.svg(draw, side + 0.6, side)


def _curves(path: Path) -> str:
    head = tag("h4", "training curves")
    if not path.is_file():
        return head + note(f"no {LOG} in the adapter directory (an adapter trained before monitoring was added)")
    events = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    steps = [e for e in events if e.get("event") == "step"]
    evals = [e for e in events if e.get("event") == "eval"]
    if not steps:
        return head + note(f"{LOG} holds no optimizer step")

    def draw(fig):
        axes = fig.subplots(1, 4)
        x = [e["step"] for e in steps]
        for ax, key, name in zip(axes, ("loss", "lr", "grad_norm"), ("training loss", "learning rate",
                                                                      "gradient norm (before clipping)")):
            ax.plot(x, [e[key] for e in steps], color=plots.KEPT, linewidth=1.2)
            ax.set_title(name)
            ax.set_xlabel("step")
        ax = axes[3]
        if evals:
            ax.plot([e["step"] for e in evals], [e["score"] for e in evals], marker="o", color=plots.color(0))
            best = max(evals, key=lambda e: e["score"])
            ax.scatter([best["step"]], [best["score"]], s=80, facecolors="none", edgecolors="#1d2430", zorder=3,
                       label=f"best {best['score']:.3f}")
            ax.legend(fontsize=8)
        ax.set_title("validation score")
        ax.set_xlabel("step")

    return head + plots.svg(draw, 12, 2.6)


def _efficiency(model: Path) -> str:
    cost = read_json(model / "efficiency.json")
    head = tag("h4", "latency and memory (measured on the machine that trained: not part of the key)")
    if not cost:
        return head + note("no efficiency.json in the adapter directory")
    labels = {"latency_ms_batch1": "latency at batch 1 (ms / sample)",
              "latency_ms_batch32": "latency at batch 32 (ms / sample)",
              "process_peak_rss_mb": "peak process memory (MB RSS)",
              "cuda_peak_allocated_mb": "peak GPU memory (MB allocated)",
              "train_seconds": "training time (s)", "train_tokens_per_s": "training speed (tokens / s)"}
    rows = [[esc(name), f"{cost[key]:,.2f}" if isinstance(cost[key], float) else esc(cost[key])]
            for key, name in labels.items() if cost.get(key) is not None]
    return head + table(["", "value"], rows, numeric={1})
