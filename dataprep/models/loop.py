"""The training loop of the models the DAG builds from scratch (pretrain_lm, pretrain_encoder,
train_translator): AdamW, linear warmup then cosine decay over the step budget, clipping, and the optional
time guard. The step budget alone decides when training ends, so the weights depend on the data, the
params and the seed — never on how fast or busy the machine is."""
from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

from dataprep.models.compute import TimeGuard


def warmup_cosine(warmup: int, total: int) -> Callable[[int], float]:
    """The learning-rate factor after `step` steps: linear warmup over `warmup` steps, then cosine to 0."""
    return lambda step: min((step + 1) / warmup, 0.5 * (1 + math.cos(math.pi * min(1.0, step / total))))


def train_steps(model, epoch_batches: Callable[[], Iterable[Any]], loss_of: Callable[[Any], Any], *,
                lr: float, total: int, warmup: int, guard: TimeGuard, fused: bool = False) -> tuple[int, float]:
    """Train `model` for `total` optimizer steps; (steps taken, last loss).

    `epoch_batches()` gives one epoch's batches (a fresh, seeded order each call) and `loss_of(batch)` the
    loss to minimise. `fused`: one AdamW kernel instead of one per tensor (faster for many small tensors,
    and numerically its own: a builder keeps what it was trained with)."""
    import torch

    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01, fused=fused or None)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, warmup_cosine(warmup, total))
    step, loss = 0, float("nan")
    model.train()
    while step < total:
        for batch in epoch_batches():
            out = loss_of(batch)
            out.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
            step += 1
            loss = out.item()
            guard.check(step, total)
            if step >= total:  # the budget can end mid-epoch
                break
    model.eval()
    return step, loss

