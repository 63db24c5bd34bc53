"""pretrain_encoder: a tiny bidirectional encoder (BERT) pretrained with masked-LM on the input rows' text — a
base for classification and NER adapters that needs no network. A causal LM reads left to right, so it tags
a token before it has seen what follows; an encoder sees the whole sentence, as the BERT/RoBERTa models the
field fine-tunes do."""
from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from dataprep.models.compute import BuildCompute, TimeGuard, torch_for
from dataprep.models.lm import loss_note
from dataprep.models.load import device, load_tokenizer, pad, quiet_transformers, sequences
from dataprep.models.loop import Loop, train
from dataprep.registry import SplitScoped, param, stage

MASK = "<mask>"


@dataclass(frozen=True)
class EncoderParams(BuildCompute, SplitScoped):
    tokenizer: str | dict[str, str] | None = param(None, "tokenizer: a train_tokenizer node {node: NAME}, a "
                                                   "directory or a hub id", model_ref=True)
    layers: int = param(2, "transformer blocks")
    heads: int = param(4, "attention heads")
    hidden: int = param(128, "hidden size")
    ffn: int = param(256, "feed-forward width")
    max_len: int = param(64, "longest sequence in tokens; longer texts are cut")
    batch_size: int = param(32, "sequences per step")
    lr: float = param(1e-3, "peak learning rate (small models from scratch take high rates)")
    mask_share: float = param(0.15, "share of tokens masked per sequence (BERT: 80% <mask>, 10% random, 10% kept)")
    epochs: int = param(3, "passes over the data, unless max_steps stops it first")
    max_steps: int = param(1500, "step budget: with epochs, the only thing that decides how long it trains")
    seed: int = param(13, "initialisation, masking and shuffling seed")

    def __post_init__(self):
        super().__post_init__()
        if self.tokenizer is None:
            raise ValueError("pretrain_encoder needs a tokenizer, e.g. tokenizer: {node: tok}")
        if self.hidden % self.heads:
            raise ValueError(f"hidden ({self.hidden}) must be a multiple of heads ({self.heads})")
        if not 0 < self.mask_share < 1:
            raise ValueError(f"mask_share must be in (0, 1), got {self.mask_share}")


@stage("pretrain_encoder", version=1, kind="build", params=EncoderParams, consumes=("cls", "bio", "parallel"),
       produces="model")
def pretrain_encoder(batches: Callable[[], Iterator[pa.Table]], p: EncoderParams, out_dir: Path) -> dict:
    """Pretrain a BERT encoder from a config with masked-LM on the input text (the source side of parallel
    rows: a clean reference corpus; never feed it test rows), AdamW with warmup and cosine decay, seeded;
    save it with its tokenizer (a `<mask>` token added) so AutoModelForSequenceClassification and
    AutoModelForTokenClassification load it as a base.

    Drop reasons: none (a build stage outputs a model, not rows).
    """
    torch = torch_for(p)
    from transformers import BertConfig, BertForMaskedLM

    torch.manual_seed(p.seed)
    tok = load_tokenizer(p.tokenizer)
    tok.add_special_tokens({"mask_token": MASK})
    ids = sequences(tok, batches, p.max_len)
    config = BertConfig(vocab_size=len(tok), hidden_size=p.hidden, num_hidden_layers=p.layers,
                        num_attention_heads=p.heads, intermediate_size=p.ffn, max_position_embeddings=p.max_len,
                        type_vocab_size=1, pad_token_id=tok.pad_token_id)
    model = BertForMaskedLM(config).to(device())
    steps, loss = _train(model, ids, tok, p)
    with quiet_transformers():
        model.save_pretrained(str(out_dir))
        tok.save_pretrained(str(out_dir))
    return {"sequences": len(ids), "params": model.num_parameters(), "steps": steps, **loss_note("", loss)}


def _train(model, ids: list[list[int]], tok, p: EncoderParams) -> tuple[int, float]:
    """(steps taken, last loss): masked-LM loss on shuffled batches, for the step budget."""
    import torch

    total = min(p.max_steps, p.epochs * math.ceil(len(ids) / p.batch_size))
    gen = torch.Generator().manual_seed(p.seed)

    def epoch(_: int) -> list[list[int]]:
        return [idx.tolist() for idx in torch.randperm(len(ids), generator=gen).split(p.batch_size)]

    def loss_of(idx: list[int]):
        x, attention = pad([ids[i] for i in idx], tok.pad_token_id)
        inputs, labels = mask_tokens(x, attention, tok, p.mask_share, gen)
        return model(input_ids=inputs, attention_mask=attention, labels=labels).loss, int(attention.sum())

    cfg = Loop(total=total, lr=p.lr, warmup=max(1, total // 20), log_every=p.log_every)
    state = train(model, epoch, loss_of, cfg, guard=TimeGuard("pretrain_encoder", p.max_seconds))
    return state.step, state.loss


def mask_tokens(x, attention, tok, share: float, gen):
    """BERT's masking: `share` of the real, non-special tokens are predicted; of those 80% become <mask>, 10% a
    random token, 10% stay. Labels are -100 everywhere else. Draws come from `gen`, on the CPU: seeded."""
    import torch

    special = torch.isin(x.cpu(), torch.tensor(tok.all_special_ids))
    candidates = (attention.cpu() == 1) & ~special
    chosen = (torch.rand(x.shape, generator=gen) < share) & candidates
    roll = torch.rand(x.shape, generator=gen)
    random_ids = torch.randint(len(tok), x.shape, generator=gen)
    inputs = x.cpu().clone()
    inputs[chosen & (roll < 0.8)] = tok.mask_token_id
    swap = chosen & (roll >= 0.8) & (roll < 0.9)
    inputs[swap] = random_ids[swap]
    labels = torch.where(chosen, x.cpu(), torch.full_like(x.cpu(), -100))
    return inputs.to(x.device), labels.to(x.device)
