"""pretrain_lm: a tiny GPT-2 trained from scratch on the input rows' text — a perplexity model and a base
for LoRA that needs no network. Sized so it trains in a minute or two on a laptop CPU."""
from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from dataprep.models.compute import BuildCompute, TimeGuard, torch_for
from dataprep.models.load import device, load_tokenizer, name_the_loss, pad, quiet_transformers, sequences
from dataprep.models.loop import Loop, train
from dataprep.registry import SplitScoped, param, stage


@dataclass(frozen=True)
class LmParams(BuildCompute, SplitScoped):
    tokenizer: str | dict[str, str] | None = param(None, "tokenizer: a train_tokenizer node {node: NAME}, a "
                                                   "directory or a hub id", model_ref=True)
    n_layer: int = param(2, "transformer blocks")
    n_head: int = param(4, "attention heads")
    n_embd: int = param(128, "hidden size")
    max_len: int = param(64, "longest sequence in tokens; longer texts are cut")
    batch_size: int = param(32, "sequences per step")
    lr: float = param(3e-3, "peak learning rate (small models from scratch take high rates)")
    epochs: int = param(8, "passes over the data, unless max_steps stops it first")
    max_steps: int = param(2000, "step budget: with epochs, the only thing that decides how long it trains")
    seed: int = param(13, "initialisation and shuffling seed")

    def __post_init__(self):
        super().__post_init__()
        if self.tokenizer is None:
            raise ValueError("pretrain_lm needs a tokenizer, e.g. tokenizer: {node: tok}")
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd ({self.n_embd}) must be a multiple of n_head ({self.n_head})")


@stage("pretrain_lm", version=2, kind="build", params=LmParams, consumes=("cls", "bio", "parallel"),
       produces="model")
def pretrain_lm(batches: Callable[[], Iterator[pa.Table]], p: LmParams, out_dir: Path) -> dict:
    """Train a GPT-2-style causal LM from a config on the input text (each row one sequence: <s> text </s>;
    the source side of parallel rows — a clean reference corpus is what a perplexity filter wants),
    AdamW with warmup and cosine decay, seeded; save model and tokenizer together in the model directory.

    Drop reasons: none (a build stage outputs a model, not rows).
    """
    torch = torch_for(p)
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(p.seed)
    tok = load_tokenizer(p.tokenizer)
    ids = sequences(tok, batches, p.max_len)
    config = GPT2Config(vocab_size=len(tok), n_positions=p.max_len, n_embd=p.n_embd, n_layer=p.n_layer,
                        n_head=p.n_head, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                        pad_token_id=tok.pad_token_id)
    model = name_the_loss(GPT2LMHeadModel(config)).to(device())
    steps, loss = _train(model, ids, tok.pad_token_id, p)
    with quiet_transformers():
        model.save_pretrained(str(out_dir))
        tok.save_pretrained(str(out_dir))
    return {"sequences": len(ids), "params": model.num_parameters(), "steps": steps, **loss_note("", loss)}


def loss_note(prefix: str, loss: float) -> dict[str, int]:
    """The last training loss (x1000, notes are integers); none when no step ran."""
    return {f"{prefix}final_loss_x1000": round(loss * 1000)} if math.isfinite(loss) else {}


def _train(model, ids: list[list[int]], pad_id: int, p: LmParams) -> tuple[int, float]:
    """(steps taken, last loss): next-token loss on shuffled batches, for the step budget."""
    import torch

    total = min(p.max_steps, p.epochs * math.ceil(len(ids) / p.batch_size))
    gen = torch.Generator().manual_seed(p.seed)

    def epoch(_: int) -> list[list[int]]:
        return [idx.tolist() for idx in torch.randperm(len(ids), generator=gen).split(p.batch_size)]

    def loss_of(idx: list[int]):
        x, mask = pad([ids[i] for i in idx], pad_id)
        return model(input_ids=x, attention_mask=mask, labels=x.masked_fill(mask == 0, -100)).loss, int(mask.sum())

    cfg = Loop(total=total, lr=p.lr, warmup=max(1, total // 20), log_every=p.log_every)
    state = train(model, epoch, loss_of, cfg, guard=TimeGuard("pretrain_lm", p.max_seconds))
    return state.step, state.loss
