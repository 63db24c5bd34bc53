"""Back-translation throughput: the backtranslate stage (batched, length-sorted generation) against what a user
would otherwise write, `generate()` on one sentence at a time, with the same models on the same texts (greedy,
so the outputs must be identical: the benchmark checks it).

The models are the sample pipeline's: train_translator on sample_data/zh_en_parallel.tsv with its defaults,
built once through the ordinary runner and cached under bench/out/ (about three minutes on a laptop the first
time; a rerun finds it in the cache).
"""
from __future__ import annotations

import json
import time
from pathlib import Path

from run import Result

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "bench" / "out" / "backtranslate"
N_TEXTS = 300


def run() -> list[Result]:
    from dataprep.catalog import get
    from dataprep.stages.backtranslate import BacktranslateParams, fold, judge

    texts = review_texts(N_TEXTS)
    params = BacktranslateParams(forward=translator_dir(), pivot="en")
    stage = get("backtranslate").impl(params)
    table = _table(texts)
    started = time.perf_counter()
    outcome = stage(table)
    ours = time.perf_counter() - started

    started = time.perf_counter()
    pivots = [one_at_a_time(stage.forward, t) for t in texts]
    backs = [one_at_a_time(stage.backward, p) for p in pivots]
    base = time.perf_counter() - started

    expected = [(f"r:{i}#bt1", b, p) for i, (t, p, b) in enumerate(zip(texts, pivots, backs))
                if judge(t, fold(t), b, {fold(t)}, params) is None]
    added = outcome.added
    got = list(zip(added.column("id").to_pylist(), added.column("text").to_pylist(),
                   added.column("bt_pivot").to_pylist())) if added is not None else []
    assert got == expected, "batched and one-at-a-time greedy outputs differ"
    return [Result(f"backtranslate zh→en→zh, {len(texts)} review sentences (greedy)", len(texts) / ours,
                   len(texts) / base, "sentences/s", "generate() one sentence at a time, same models",
                   notes=f"outputs identical; batch_size {params.batch_size}; {len(expected)} round trips kept; "
                         f"{ours:.1f} s vs {base:.1f} s")]


def one_at_a_time(direction, text: str | None) -> str | None:
    """The loop a user writes: tokenize one text, generate (bounded by its length, as the stage is), decode."""
    import torch
    if text is None:  # the pivot ran away: nothing to translate back
        return None
    tok, model = direction.tok, direction.model
    inputs = tok(direction.prefix + text, return_tensors="pt", truncation=True, max_length=direction.max_len)
    bound = min(direction.cap, direction.decoding.bound(inputs["input_ids"].shape[1]))
    with torch.inference_mode():
        out = model.generate(**inputs.to(model.device), max_new_tokens=bound,
                             **direction.decoding.generate_kwargs(), **direction.lang_kwargs)
    return direction._decode(out[0].tolist(), bound)


def review_texts(n: int) -> list[str]:
    """The first n non-empty texts of the sample reviews (dirt included: mojibake, HTML, keyboard mash)."""
    texts = []
    for line in (ROOT / "sample_data" / "zh_reviews.jsonl").read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            text = json.loads(line.lstrip("\ufeff")).get("text")
        except (json.JSONDecodeError, AttributeError):
            continue
        if isinstance(text, str) and text.strip():
            texts.append(text)
    return texts[:n]


def translator_dir() -> str:
    """The sample pipeline's translator pair, built by the runner (a cache hit after the first run)."""
    from dataprep.dag import parse_pipeline
    from dataprep.runner import Runner

    nodes = {"pairs": {"uses": "read_parallel", "with": {"path": str(ROOT / "sample_data" / "zh_en_parallel.tsv")}},
             "mt": {"uses": "train_translator", "input": "pairs"}}
    runner = Runner(parse_pipeline({"name": "bench_bt", "nodes": nodes}), CACHE)
    runner.run()
    return str(runner.model_dir("mt"))


def _table(texts: list[str]):
    import pyarrow as pa

    from dataprep.schema import CLS
    n = len(texts)
    return pa.table({"id": [f"r:{i}" for i in range(n)], "text": texts, "label": ["x"] * n, "lang": ["zh"] * n,
                     "source": ["bench"] * n}, schema=CLS)


if __name__ == "__main__":
    for r in run():
        print(f"{r.name}: {r.ours:.4g} vs {r.baseline:.4g} {r.unit} -> {r.ratio:.2f}x ({r.notes})")
