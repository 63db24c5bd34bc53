"""pretrain_lm: a tiny GPT-2 trained from scratch on the input rows' text — a perplexity model and a base
for LoRA that needs no network. Sized so it trains in a minute or two on a laptop CPU."""
from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from dataprep.models.load import device, load_tokenizer, quiet_transformers, texts_of
from dataprep.registry import param, stage


@dataclass(frozen=True)
class LmParams:
    tokenizer: str | dict[str, str] | None = param(None, "tokenizer: a train_tokenizer node {node: NAME}, a "
                                                   "directory or a hub id", model_ref=True)
    n_layer: int = param(2, "transformer blocks")
    n_head: int = param(4, "attention heads")
    n_embd: int = param(128, "hidden size")
    max_len: int = param(64, "longest sequence in tokens; longer texts are cut")
    batch_size: int = param(32, "sequences per step")
    lr: float = param(3e-3, "peak learning rate (small models from scratch take high rates)")
    epochs: int = param(8, "passes over the data, unless max_steps or max_seconds stop it first")
    max_steps: int = param(2000, "step budget")
    max_seconds: float = param(300.0, "time budget in seconds; the model trained so far is saved", knob=True)
    seed: int = param(13, "initialisation and shuffling seed")

    def __post_init__(self):
        if self.tokenizer is None:
            raise ValueError("pretrain_lm needs a tokenizer, e.g. tokenizer: {node: tok}")
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd ({self.n_embd}) must be a multiple of n_head ({self.n_head})")


@stage("pretrain_lm", version=1, kind="build", params=LmParams, consumes=("cls", "bio", "parallel"),
       produces="model")
def pretrain_lm(batches: Callable[[], Iterator[pa.Table]], p: LmParams, out_dir: Path) -> dict:
    """Train a GPT-2-style causal LM from a config on the input text (each row one sequence: <s> text </s>;
    the source side of parallel rows — a clean reference corpus is what a perplexity filter wants),
    AdamW with warmup and cosine decay, seeded; save model and tokenizer together in the model directory.

    Drop reasons: none (a build stage outputs a model, not rows).
    """
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(p.seed)
    tok = load_tokenizer(p.tokenizer)
    ids = [x for x in tok([t for b in batches() for t in texts_of(b)], truncation=True,
                         max_length=p.max_len)["input_ids"] if len(x) > 2]
    config = GPT2Config(vocab_size=len(tok), n_positions=p.max_len, n_embd=p.n_embd, n_layer=p.n_layer,
                        n_head=p.n_head, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                        pad_token_id=tok.pad_token_id)
    model = GPT2LMHeadModel(config).to(device())
    steps, planned, loss = _train(model, ids, tok.pad_token_id, p)
    with quiet_transformers():
        model.save_pretrained(str(out_dir))
        tok.save_pretrained(str(out_dir))
    return {"sequences": len(ids), "params": model.num_parameters(), **loss_note("", loss),
            **budget_notes("pretrain_lm", "", steps, planned, p.max_seconds)}


def loss_note(prefix: str, loss: float) -> dict[str, int]:
    """The last training loss (x1000, notes are integers); none when no step ran."""
    return {f"{prefix}final_loss_x1000": round(loss * 1000)} if math.isfinite(loss) else {}


def budget_notes(stage: str, prefix: str, steps: int, planned: int, max_seconds: float) -> dict[str, int]:
    """`steps` and `planned_steps` for the ledger's notes, and a warning when the time budget, not the step
    budget, ended training: such a model depends on how fast (and how busy) the machine was."""
    if steps < planned:
        warnings.warn(f"{stage}: max_seconds={max_seconds:g} stopped {prefix or 'training'} at step {steps} of "
                      f"{planned}; the model depends on this machine's speed. Raise max_seconds (or lower "
                      f"max_steps) for a run that reproduces.", stacklevel=2)
    return {f"{prefix}steps": steps, f"{prefix}planned_steps": planned}


def _train(model, ids: list[list[int]], pad_id: int, p: LmParams) -> tuple[int, int, float]:
    """(steps taken, steps planned, last loss)."""
    import torch

    total = min(p.max_steps, p.epochs * math.ceil(len(ids) / p.batch_size))
    opt = torch.optim.AdamW(model.parameters(), lr=p.lr, weight_decay=0.01)
    warmup = max(1, total // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min((s + 1) / warmup, 0.5 * (
        1 + math.cos(math.pi * min(1.0, s / total)))))
    gen, started, step, loss = torch.Generator().manual_seed(p.seed), time.monotonic(), 0, float("nan")
    model.train()
    while step < total and time.monotonic() - started < p.max_seconds:
        for idx in torch.randperm(len(ids), generator=gen).split(p.batch_size):
            x, mask = pad([ids[i] for i in idx.tolist()], pad_id)
            out = model(input_ids=x, attention_mask=mask, labels=x.masked_fill(mask == 0, -100))
            out.loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step(), sched.step(), opt.zero_grad(set_to_none=True)
            step, loss = step + 1, out.loss.item()
            if step >= total or time.monotonic() - started >= p.max_seconds:
                break
    model.eval()
    return step, total, loss


def pad(seqs: list[list[int]], pad_id: int):
    """Right-padded input ids and attention mask (right padding leaves a causal LM's real positions intact)."""
    import torch
    width = max(map(len, seqs))
    x = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, s in enumerate(seqs):
        x[i, :len(s)] = torch.tensor(s)
        mask[i, :len(s)] = 1
    return x.to(device()), mask.to(device())
