"""Metrics for the trainer: classification, BIO entities (strict, like seqeval's IOB2 mode), perplexity,
and the cost of inference (latency, peak memory)."""
from __future__ import annotations

import math
import resource
import sys
import time
from collections import Counter

from dataprep.stages.bio import Span, spans


def classification(gold: list[str], pred: list[str], labels: list[str]) -> dict:
    """Accuracy, macro-F1, per-class precision/recall/F1, the confusion matrix, and the majority baseline."""
    pairs = Counter(zip(gold, pred))  # one pass; everything below is read from these counts
    gold_n, pred_n = Counter(gold), Counter(pred)
    per_class = {label: _prf(pairs[label, label], pred_n[label], gold_n[label]) for label in labels}
    majority, count = gold_n.most_common(1)[0] if gold else ("", 0)
    return {
        "accuracy": _ratio(sum(n for (g, p), n in pairs.items() if g == p), len(gold)),
        "macro_f1": sum(c["f1"] for c in per_class.values()) / len(labels) if labels else 0.0,
        "per_class": per_class,
        "confusion": {g: {p: pairs[g, p] for p in labels} for g in labels},  # rows: gold, columns: predicted
        "majority_baseline": {"label": majority, "accuracy": _ratio(count, len(gold))},
        "n": len(gold),
    }


def entities(gold: list[list[str]], pred: list[list[str]]) -> dict:
    """Strict entity-level precision/recall/F1 over BIO2 spans: an entity counts only with the exact start,
    end and type. Predicted I- tags that start nothing are read as seqeval's strict IOB2 mode reads them:
    they are not entities."""
    g = {(i, s.start, s.end, s.type) for i, tags in enumerate(gold) for s in spans(tags, "IOB2")}
    p = {(i, s.start, s.end, s.type) for i, tags in enumerate(pred) for s in _strict(tags)}
    out = _prf(len(g & p), len(p), len(g))
    types = sorted({t for *_, t in g | p})
    out["per_type"] = {t: _prf(len({e for e in g & p if e[3] == t}), len({e for e in p if e[3] == t}),
                               len({e for e in g if e[3] == t})) for t in types}
    return out


def _strict(tags: list[str]) -> list[Span]:
    """Spans of a BIO2 sequence without repair: an entity needs its B-, followed by I- of the same type."""
    found, start, etype = [], None, None
    for i, tag in enumerate([*tags, "O"]):
        prefix, _, t = tag.partition("-")
        if start is not None and not (prefix == "I" and t == etype):
            found.append(Span(start, i, etype))
            start = None
        if prefix == "B":
            start, etype = i, t
    return found


def perplexity(total_nll: float, tokens: int) -> float:
    return math.exp(total_nll / tokens) if tokens else float("nan")


def _prf(tp: int, predicted: int, actual: int) -> dict:
    p, r = _ratio(tp, predicted), _ratio(tp, actual)
    return {"precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r else 0.0, "support": actual}


def _ratio(a: int, b: int) -> float:
    return a / b if b else 0.0


def latency_ms(predict, texts: list, batch_size: int, repeats: int = 3) -> float:
    """Milliseconds per sample for `predict(batch)` at a batch size (best of `repeats`, after a warm-up)."""
    sample = (texts * (batch_size // max(len(texts), 1) + 1))[: max(batch_size, min(len(texts), 64))]
    predict(sample[:batch_size])
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for i in range(0, len(sample), batch_size):
            predict(sample[i:i + batch_size])
        best = min(best, (time.perf_counter() - start) / len(sample))
    return best * 1000


def peak_memory_mb() -> dict:
    """Peak accelerator memory when there is one; always the process's peak RSS."""
    out = {"process_peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (1024 if sys.platform
                                                                                         != "darwin" else 1 << 20)}
    import torch
    if torch.cuda.is_available():
        out["cuda_peak_allocated_mb"] = torch.cuda.max_memory_allocated() / (1 << 20)
    return out
