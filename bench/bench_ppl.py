"""ppl_score (batched, length-sorted, memory-bounded) vs the loop a user would write: one text at a time
through the same model. Same model (the sample pipeline's pretrain_lm), same texts; scores must agree."""
from __future__ import annotations

import math
import os
import time
from pathlib import Path

import numpy as np
from run import Result

ROOT = Path(__file__).resolve().parent.parent


def run() -> list[Result]:
    import torch

    from dataprep.dag import load_pipeline
    from dataprep.runner import Runner
    from dataprep.stages.ppl import PplParams, PplScore
    os.chdir(ROOT)
    runner = Runner(load_pipeline(ROOT / "pipelines" / "zh_reviews.yaml"))
    runner.run(until="lm")
    runner.run(until="unique")
    texts = runner.output("unique").column("text").to_pylist()
    scorer = PplScore.impl(PplParams(model=str(runner.model_dir("lm"))))
    tokens = sum(len(scorer._ids(t)) - 1 for t in texts)  # predicted tokens

    start = time.perf_counter()
    batched = scorer.score(texts)
    ours = time.perf_counter() - start

    def one_at_a_time(text: str) -> float:
        ids = torch.tensor([scorer._ids(text)])
        with torch.inference_mode():
            logits = scorer.model(input_ids=ids).logits[0, :-1]
        return math.exp(torch.nn.functional.cross_entropy(logits, ids[0, 1:]).item())

    start = time.perf_counter()
    loop = np.array([one_at_a_time(t) for t in texts])
    base = time.perf_counter() - start
    np.testing.assert_allclose(batched, loop, rtol=1e-4)
    return [Result(f"ppl_score on {len(texts):,} sample texts", tokens / ours, tokens / base, "tokens/s",
                   "one text at a time, same model", notes=f"scores equal to 1e-4 relative; {ours:.1f} s vs "
                   f"{base:.1f} s")]
