"""train_lora: LoRA fine-tuning of a transformers model, in one file that reads top to bottom.

config -> data -> model (transformers + peft) -> a plain loop (accumulation, warmup, clipping, autocast where it
pays, NaN guard, evaluation, early stopping, checkpoints that resume exactly) -> metrics -> save.

Tasks: `seq_cls` on `cls` rows, `token_cls` on `bio` rows (first sub-token of a word carries its tag), and
`causal_lm` on text (loss on real tokens only). Rows must carry a `split` column (run `split` first): the model
trains on `train`, is selected on `validation`, and is scored once on `test`. What it writes is ordinary PEFT:
`PeftModel.from_pretrained(base, out_dir)` loads it with no help from this project.
"""
from __future__ import annotations

import json
import math
import random
import shutil
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import pyarrow as pa

from dataprep.models.compute import TorchCompute, torch_for
from dataprep.models.load import device, load_model, load_tokenizer, max_positions, pad, texts_of
from dataprep.registry import param, stage
from dataprep.train import baselines as B
from dataprep.train import evaluate as E

Task = Literal["auto", "seq_cls", "token_cls", "causal_lm"]


# ----------------------------------------------------------------------------------------------------- config

@dataclass(frozen=True)
class LoraTrainParams(TorchCompute):
    base_model: str | dict[str, str] | None = param(None, "the model to adapt: {node: NAME}, a directory or a hub "
                                                    "id", model_ref=True)
    task: Task = param("auto", "seq_cls, token_cls or causal_lm; auto: seq_cls for cls rows, token_cls for bio")
    # LoRA. r 8 / alpha 16 is the common middle of the 4-32 range: enough capacity for a few thousand examples.
    r: int = param(8, "LoRA rank")
    alpha: int = param(16, "LoRA alpha; the update is scaled by alpha / r (alpha / sqrt(r) with rslora)")
    dropout: float = param(0.05, "dropout on the LoRA input")
    target_modules: list[str] | str | None = param(None, "module names to adapt, 'all-linear', or None for "
                                                   "PEFT's default for the architecture")
    bias: Literal["none", "all", "lora_only"] = param("none", "which biases train")
    modules_to_save: list[str] | None = param(None, "extra modules trained in full and saved (the "
                                              "classification head is always included for cls tasks)")
    rslora: bool = param(False, "rank-stabilised scaling (alpha / sqrt(r)): better at high ranks")
    dora: bool = param(False, "weight-decomposed LoRA (DoRA)")
    # Optimisation. 2e-4 is the usual LoRA rate; higher rates suit adapters more than full fine-tuning.
    lr: float = param(2e-4, "peak learning rate (AdamW)")
    weight_decay: float = param(0.0, "AdamW weight decay")
    batch_size: int = param(16, "examples per forward pass")
    grad_accum: int = param(1, "forward passes per optimizer step (effective batch = batch_size x grad_accum)")
    epochs: int = param(3, "passes over the training split")
    max_steps: int | None = param(None, "stop after this many optimizer steps (overrides epochs)")
    warmup_ratio: float = param(0.06, "share of steps spent warming the learning rate up from 0")
    schedule: Literal["linear", "cosine"] = param("linear", "decay after warmup")
    max_grad_norm: float = param(1.0, "gradient clipping")
    max_len: int = param(128, "tokens per example; longer ones are cut")
    eval_every: int | None = param(None, "evaluate every N optimizer steps; None: at the end of each epoch")
    patience: int | None = param(None, "early stopping: evaluations without improvement before stopping")
    metric: str = param("auto", "validation metric to select on: auto = macro_f1 / f1 / -perplexity")
    precision: Literal["auto", "fp32", "bf16", "fp16"] = param(
        "auto", "auto: bf16 autocast on a GPU that supports it, fp32 on CPU (autocast is slower there); fp16 "
        "(device: cuda only) runs with a gradient scaler")
    save_every: int = param(100, "optimizer steps between checkpoints", knob=True)
    merge: bool = param(False, "also write a standalone merged model to merged/")
    seed: int = param(13, "initialisation, dropout and data order")

    def __post_init__(self):
        super().__post_init__()
        if self.base_model is None:
            raise ValueError("train_lora needs a base_model, e.g. base_model: {node: lm} or a hub id")
        for name in ("r", "alpha", "batch_size", "grad_accum", "epochs", "max_len"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.precision == "fp16" and self.device != "cuda":
            raise ValueError("precision fp16 needs device: cuda (on the CPU, fp16 autocast is slow and its "
                             "gradients would underflow unscaled); use fp32 or bf16")
        if not 0 <= self.warmup_ratio < 1 or not 0 <= self.dropout < 1 or self.lr <= 0:
            raise ValueError("need 0 <= warmup_ratio < 1, 0 <= dropout < 1 and lr > 0")
        _warn_outside_practice(self)


# The ranges practitioners report as safe for LoRA on a few thousand examples: outside them is allowed (a tiny
# model trained from scratch may want more), so they draw a warning, not an error.
PRACTICE = {"lr": (1e-4, 5e-4), "effective batch": (16, 128), "r": (4, 32), "epochs": (3, 10)}


def _warn_outside_practice(p: LoraTrainParams) -> None:
    values = {"lr": p.lr, "effective batch": p.batch_size * p.grad_accum, "r": p.r, "epochs": p.epochs}
    for name, value in values.items():
        low, high = PRACTICE[name]
        if not low <= value <= high:
            warnings.warn(f"train_lora: {name} {value} is outside the usual LoRA range {low}-{high}", stacklevel=3)


# ------------------------------------------------------------------------------------------------- the stage

@stage("train_lora", version=3, kind="build", params=LoraTrainParams, consumes=("cls", "bio"), produces="model")
def train_lora(batches: Callable[[], Iterator[pa.Table]], p: LoraTrainParams, out_dir: Path,
               work_dir: Path | None = None) -> dict:
    """Fine-tune `base_model` with LoRA on the `train` split of the input, select on `validation`, score on
    `test`; write the adapter (PEFT format), tokenizer, label map, metrics.json and report.md. A run that was
    interrupted continues from its last checkpoint (kept beside the node's cache entry).

    Drop reasons: none (a build stage outputs a model, not rows).
    """
    data = Data.from_tables(list(batches()), p.task)
    return train(p, data, out_dir, checkpoints=work_dir)[2]


# ------------------------------------------------------------------------------------------------------ data

@dataclass
class Data:
    task: str                              # seq_cls | token_cls | causal_lm
    inputs: dict[str, list]                # split -> texts (or token lists)
    targets: dict[str, list]               # split -> labels (or tag lists); empty for causal_lm
    labels: list[str]                      # the label (or tag) vocabulary, sorted; empty for causal_lm

    @property
    def label_ids(self) -> dict[str, int]:
        return {label: i for i, label in enumerate(self.labels)}

    @classmethod
    def from_tables(cls, tables: list[pa.Table], task: str) -> Data:
        table = pa.concat_tables(tables, promote_options="permissive")
        if "split" not in table.column_names:
            raise ValueError("train_lora needs a `split` column (train/validation/test): put a `split` node first")
        is_bio = "tokens" in table.column_names
        task = ("token_cls" if is_bio else "seq_cls") if task == "auto" else task
        inputs = table.column("tokens").to_pylist() if task == "token_cls" else texts_of(table)
        targets = (table.column("tags").to_pylist() if task == "token_cls" else
                   table.column("label").to_pylist() if task == "seq_cls" else [None] * table.num_rows)
        data = cls(task, {}, {}, [])
        for split, x, y in zip(table.column("split").to_pylist(), inputs, targets):
            data.inputs.setdefault(split, []).append(x)
            data.targets.setdefault(split, []).append(y)
        if task == "token_cls":
            data.labels = sorted({t for tags in data.targets.get("train", []) for t in tags})
        elif task == "seq_cls":
            data.labels = sorted(set(data.targets.get("train", [])))
        if not data.inputs.get("train"):
            raise ValueError("train_lora: the input has no rows in the `train` split")
        return data

    def eval_split(self) -> str:
        return "validation" if self.inputs.get("validation") else "train"


# ----------------------------------------------------------------------------------------------------- model

def build_model(p: LoraTrainParams, data: Data):
    """The base model with its task head, a pad token, and LoRA adapters on top."""
    import torch
    from peft import LoraConfig, TaskType, get_peft_model
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoModelForTokenClassification

    torch.manual_seed(p.seed)  # the head and the LoRA matrices are initialised from this
    tok = load_tokenizer(p.base_model)
    head = {"seq_cls": AutoModelForSequenceClassification, "token_cls": AutoModelForTokenClassification,
            "causal_lm": AutoModelForCausalLM}[data.task]
    kwargs = {} if data.task == "causal_lm" else {
        "num_labels": len(data.labels), "id2label": dict(enumerate(data.labels)), "label2id": data.label_ids}
    model = load_model(p.base_model, head, **kwargs)  # quiet: "some weights are newly initialized" is the head
    if tok.pad_token is None:  # GPT-style models ship without one; padding must never be a real token
        if tok.eos_token is not None:
            tok.pad_token = tok.eos_token
        else:
            tok.add_special_tokens({"pad_token": "<pad>"})
            model.resize_token_embeddings(len(tok))
    model.config.pad_token_id = tok.pad_token_id
    targets = p.target_modules
    if targets == "all-linear" and data.task != "causal_lm":
        targets = linear_layers_outside_the_head(model)
    config = LoraConfig(
        task_type={"seq_cls": TaskType.SEQ_CLS, "token_cls": TaskType.TOKEN_CLS,
                   "causal_lm": TaskType.CAUSAL_LM}[data.task],
        r=p.r, lora_alpha=p.alpha, lora_dropout=p.dropout, target_modules=targets, bias=p.bias,
        modules_to_save=list(p.modules_to_save) if p.modules_to_save else None, use_rslora=p.rslora,
        use_dora=p.dora, fan_in_fan_out=model.config.model_type == "gpt2")  # GPT-2 stores Linear as Conv1D
    with warnings.catch_warnings():  # peft asks transformers a deprecated question; nothing for users to act on
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        return get_peft_model(model, config).to(device()), tok


# -------------------------------------------------------------------------------------------------- batching

# The classification head of a task model: PEFT trains it in full (modules_to_save) for seq_cls and token_cls.
HEADS = {"classifier", "score"}


def linear_layers_outside_the_head(model) -> list[str]:
    """What `all-linear` means for a classification model: every Linear (or GPT-2 Conv1D) layer but the head.
    PEFT's own expansion also targets the head, which it then refuses to train in full (modules_to_save
    cannot be applied to a LoRA layer): token_cls with all-linear crashed."""
    import torch
    from transformers.pytorch_utils import Conv1D
    return [name for name, module in model.named_modules()
            if isinstance(module, (torch.nn.Linear, Conv1D)) and not HEADS & set(name.split("."))]


def encode(tok, data: Data, split: str, max_len: int) -> list[tuple[list[int], list[int] | int]]:
    """(input ids, target) per example: a label id (seq_cls), one label per token with -100 on tokens that
    do not start a word (token_cls), or the ids themselves (causal_lm)."""
    xs, ys = data.inputs.get(split, []), data.targets.get(split, [])
    label_ids = data.label_ids
    if data.task == "token_cls":
        enc = tok(xs, is_split_into_words=True, truncation=True, max_length=max_len)
        out = []
        for i, tags in enumerate(ys):
            pieces = tok.convert_ids_to_tokens(enc["input_ids"][i])
            heads = word_heads(enc.word_ids(i), pieces)
            target = [label_ids.get(tags[heads[k]], -100) if k in heads else -100 for k in range(len(pieces))]
            out.append((enc["input_ids"][i], target))
        return out
    ids = tok(xs, truncation=True, max_length=max_len)["input_ids"]
    if data.task == "causal_lm":
        return [(x, x) for x in ids]
    return [(x, label_ids.get(y, -100)) for x, y in zip(ids, ys)]  # a label unseen in train cannot be learned


# A piece that only marks a word boundary: sentencepiece's ▁ and byte-level BPE's Ġ standing alone. With
# is_split_into_words, a sentencepiece tokenizer turns a Chinese character into ['▁', '科']: the tag must go
# on '科', the piece that carries the word, or a left-to-right model is asked to tag a character it has not
# read yet (Weibo NER scored F1 0.000 that way).
BOUNDARY_ONLY = {"▁", "Ġ"}


def word_heads(word_ids: list[int | None], pieces: list[str]) -> dict[int, int]:
    """{piece position: word index} for the one piece of each word that carries its tag: the word's first
    piece with content, or its first piece when none has any."""
    positions: dict[int, list[int]] = {}
    for k, w in enumerate(word_ids):
        if w is not None:
            positions.setdefault(w, []).append(k)
    heads = {}
    for w, ks in positions.items():
        head = next((k for k in ks if pieces[k] not in BOUNDARY_ONLY), ks[0])
        heads[head] = w
    return heads


def batch_order(lengths: list[int], batch_size: int, seed: int, epoch: int) -> list[list[int]]:
    """Length-grouped batches: shuffle, sort by length inside chunks of 50 batches (little padding), shuffle
    the batches. A function of (seed, epoch) only, so a resumed run sees the same order."""
    rng = random.Random(seed * 1000 + epoch)
    order = list(range(len(lengths)))
    rng.shuffle(order)
    chunk = batch_size * 50
    batches = []
    for start in range(0, len(order), chunk):
        piece = sorted(order[start:start + chunk], key=lambda i: -lengths[i])
        batches += [piece[i:i + batch_size] for i in range(0, len(piece), batch_size)]
    rng.shuffle(batches)
    return batches


def collate(examples: list[tuple[list[int], list[int] | int]], pad_id: int, task: str):
    """Right-pad to the longest example of the batch (dynamic padding); loss only on real tokens."""
    import torch
    ids, mask = pad([x for x, _ in examples], pad_id)
    if task == "seq_cls":
        labels = torch.tensor([y for _, y in examples], device=ids.device)
    elif task == "token_cls":
        labels, _ = pad([y for _, y in examples], -100)
    else:  # causal_lm: the ids themselves, padding excluded
        labels = ids.masked_fill(mask == 0, -100)
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


# ------------------------------------------------------------------------------------------------------ loop

class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


def train(p: LoraTrainParams, data: Data, out_dir: Path, checkpoints: Path | None = None,
          progress: Callable[[dict], None] | None = None):
    """Train, select, score and save; return (model, tokenizer, notes for the node's stats)."""
    torch = torch_for(p)

    model, tok = build_model(p, data)
    max_len = max_positions(model.config, p.max_len)
    train_set = encode(tok, data, "train", max_len)
    eval_set = encode(tok, data, data.eval_split(), max_len)
    batches_per_epoch = math.ceil(len(train_set) / p.batch_size)
    steps_per_epoch = math.ceil(batches_per_epoch / p.grad_accum)
    total = p.max_steps or p.epochs * steps_per_epoch
    opt = torch.optim.AdamW([w for w in model.parameters() if w.requires_grad], lr=p.lr,
                            weight_decay=p.weight_decay)
    sched = _schedule(opt, p, total)
    autocast = _autocast(p)
    # fp16 gradients underflow without loss scaling; disabled (fp32, bf16), the scaler passes everything through.
    scaler = torch.amp.GradScaler(device().type, enabled=p.precision == "fp16")
    state = {"step": 0, "epoch": 0, "batch": 0, "best": None, "since_best": 0, "history": []}
    if checkpoints and (checkpoints / "last").is_dir():
        state = _load_checkpoint(checkpoints / "last", model, opt, sched, scaler)
    started, tokens_seen = time.monotonic(), 0
    model.train()
    while state["step"] < total and not _stop_early(p, state):
        order = batch_order([len(x) for x, _ in train_set], p.batch_size, p.seed, state["epoch"])
        for b in range(state["batch"], len(order)):
            batch = collate([train_set[i] for i in order[b]], tok.pad_token_id, data.task)
            with autocast:
                loss = model(**batch).loss / p.grad_accum
            if not torch.isfinite(loss):
                raise TrainingDiverged(f"loss is {loss.item()} at step {state['step']}, epoch {state['epoch']}; "
                                       f"last good checkpoint: {checkpoints / 'last' if checkpoints else 'none'}")
            scaler.scale(loss).backward()
            tokens_seen += int(batch["attention_mask"].sum())
            state["batch"] = b + 1
            if state["batch"] % p.grad_accum and state["batch"] != len(order):
                continue  # accumulate: the optimizer steps once per grad_accum batches (and at epoch end)
            scaler.unscale_(opt)  # clip the true gradients, not the scaled ones
            torch.nn.utils.clip_grad_norm_(model.parameters(), p.max_grad_norm)
            scaler.step(opt)
            scaler.update()
            sched.step()
            opt.zero_grad(set_to_none=True)
            state["step"] += 1
            if progress:
                progress({"step": state["step"], "total": total, "loss": loss.item() * p.grad_accum,
                          "lr": sched.get_last_lr()[0], "tokens_per_s": tokens_seen / (time.monotonic() - started)})
            if p.eval_every and state["step"] % p.eval_every == 0:
                _evaluate_and_keep_best(model, tok, data, eval_set, p, state, checkpoints)
                model.train()
            if state["batch"] == len(order):  # the epoch is complete
                state["epoch"], state["batch"] = state["epoch"] + 1, 0
                if not p.eval_every:
                    _evaluate_and_keep_best(model, tok, data, eval_set, p, state, checkpoints)
                    model.train()
            if checkpoints and (state["step"] % p.save_every == 0 or state["batch"] == 0):
                _save_checkpoint(checkpoints / "last", model, opt, sched, scaler, state)
            if state["step"] >= total or _stop_early(p, state) or state["batch"] == 0:
                break
    seconds = time.monotonic() - started
    if checkpoints and (checkpoints / "best").is_dir():
        _load_adapter(checkpoints / "best", model)  # the selected model, not merely the last one
    return model, tok, _finish(model, tok, data, p, max_len, out_dir, state, seconds, tokens_seen)


def _schedule(opt, p: LoraTrainParams, total: int):
    from transformers import get_cosine_schedule_with_warmup, get_linear_schedule_with_warmup
    make = get_cosine_schedule_with_warmup if p.schedule == "cosine" else get_linear_schedule_with_warmup
    return make(opt, num_warmup_steps=math.ceil(p.warmup_ratio * total), num_training_steps=total)


def _autocast(p: LoraTrainParams):
    """Mixed precision only where it pays: bf16 on a GPU that has it. On CPU, bf16 autocast runs but is slower."""
    import contextlib

    import torch
    on_gpu = device().type == "cuda"
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(p.precision)
    if p.precision == "auto":
        dtype = torch.bfloat16 if on_gpu and torch.cuda.is_bf16_supported() else None
    return torch.autocast(device().type, dtype=dtype) if dtype else contextlib.nullcontext()


def _stop_early(p: LoraTrainParams, state: dict) -> bool:
    return p.patience is not None and state["since_best"] >= p.patience


def _evaluate_and_keep_best(model, tok, data: Data, eval_set, p: LoraTrainParams, state: dict, checkpoints):
    metrics = evaluate(model, tok, data, eval_set, p.batch_size)
    score = selection_score(metrics, data.task, p.metric)
    state["history"].append({"step": state["step"], "epoch": state["epoch"], "score": score})
    if state["best"] is None or score > state["best"]:
        state["best"], state["since_best"] = score, 0
        if checkpoints:
            _save_adapter(checkpoints / "best", model)
    else:
        state["since_best"] += 1


def selection_score(metrics: dict, task: str, metric: str) -> float:
    """Higher is better: macro-F1 (seq_cls), entity F1 (token_cls), minus perplexity (causal_lm)."""
    if metric != "auto":
        return metrics[metric]
    return {"seq_cls": metrics.get("macro_f1"), "token_cls": metrics.get("f1"),
            "causal_lm": -metrics.get("perplexity", float("inf"))}[task]


# ------------------------------------------------------------------------------------------------ evaluation

def evaluate(model, tok, data: Data, examples, batch_size: int) -> dict:
    import torch
    model.eval()
    gold, pred, nll, tokens = [], [], 0.0, 0
    with torch.inference_mode():
        for start in range(0, len(examples), batch_size):
            chunk = examples[start:start + batch_size]
            batch = collate(chunk, tok.pad_token_id, data.task)
            out = model(**batch)
            if data.task == "causal_lm":
                n = int((batch["labels"][:, 1:] != -100).sum())
                nll, tokens = nll + out.loss.item() * n, tokens + n
                continue
            guess = out.logits.argmax(-1)
            if data.task == "seq_cls":
                gold += [y for _, y in chunk]
                pred += guess.tolist()
            else:
                for (_, y), guessed in zip(chunk, guess.tolist()):  # one device read a batch, not a token
                    keep = [k for k, t in enumerate(y) if t != -100]
                    gold.append([data.labels[y[k]] for k in keep])
                    pred.append([data.labels[guessed[k]] for k in keep])
    if data.task == "causal_lm":
        return {"perplexity": E.perplexity(nll, tokens), "tokens": tokens}
    if data.task == "token_cls":
        return E.entities(gold, pred)
    names = [data.labels[i] if i >= 0 else "<unseen>" for i in gold]
    return E.classification(names, [data.labels[i] for i in pred], data.labels)


def inference_cost(model, tok, data: Data, split: str, max_len: int) -> dict:
    """Latency per sample at batch 1 and 32 on real inputs, and peak memory."""
    import torch
    model.eval()
    xs = data.inputs.get(split) or data.inputs["train"]

    def predict(batch):
        kwargs = {"is_split_into_words": True} if data.task == "token_cls" else {}
        enc = tok(batch, truncation=True, max_length=max_len, padding=True, return_tensors="pt", **kwargs)
        with torch.inference_mode():
            model(**{k: v.to(device()) for k, v in enc.items() if k in ("input_ids", "attention_mask")})

    return {"latency_ms_batch1": E.latency_ms(predict, xs[:64], 1),
            "latency_ms_batch32": E.latency_ms(predict, xs[:64], 32), **E.peak_memory_mb()}


# ------------------------------------------------------------------------------------------------------ save

def _finish(model, tok, data: Data, p: LoraTrainParams, max_len: int, out_dir: Path, state: dict,
            seconds: float, tokens_seen: int) -> dict:
    split = "test" if data.inputs.get("test") else data.eval_split()
    metrics = {"split": split, **evaluate(model, tok, data, encode(tok, data, split, max_len), p.batch_size),
               "baselines": baselines_for(data, split),
               "train": {"steps": state["step"], "epochs_completed": state["epoch"],
                         "selection": state["history"], "examples": len(data.inputs["train"])}}
    warning = B.verdict(data.task, metrics, metrics["baselines"])
    if warning:
        warnings.warn(f"train_lora: {warning}", stacklevel=2)
    # Timings and memory depend on the machine and how busy it is: they live apart from what the key decides
    # (metrics.json, report.md and the weights are the same bytes on any machine; the cache leaves these out).
    cost = {**inference_cost(model, tok, data, split, max_len), "train_seconds": round(seconds, 2),
            "train_tokens_per_s": round(tokens_seen / seconds, 1) if seconds else None}
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out_dir))
    tok.save_pretrained(str(out_dir))
    (out_dir / "label_map.json").write_text(json.dumps({"task": data.task, "labels": data.labels}, indent=2))
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2, ensure_ascii=False))
    (out_dir / "efficiency.json").write_text(json.dumps(cost, indent=2))
    (out_dir / "train_config.json").write_text(json.dumps(asdict(p), indent=2, default=str))
    (out_dir / "report.md").write_text(report(metrics, data.task))
    (out_dir / "efficiency.md").write_text(efficiency_report(cost, metrics["train"]["steps"]))
    if p.merge:
        merged = model.merge_and_unload()
        merged.save_pretrained(str(out_dir / "merged"))
        tok.save_pretrained(str(out_dir / "merged"))
    headline = metrics.get("accuracy", metrics.get("f1", metrics.get("perplexity")))
    notes = {"steps": state["step"], "examples": len(data.inputs["train"]),
             "test_metric_x1000": round(headline * 1000) if headline == headline else 0}
    if data.task in B.STRONG:
        notes["beats_strong_baseline"] = int(warning is None)
    return notes


def baselines_for(data: Data, split: str) -> dict:
    """The baselines of this task, trained on the adapter's training rows, scored on its test rows."""
    train_x, train_y = data.inputs["train"], data.targets["train"]
    test_x, test_y = data.inputs.get(split, []), data.targets.get(split, [])
    if data.task == "seq_cls":
        return B.classification(train_x, train_y, test_x, test_y, data.labels)
    if data.task == "token_cls":
        return B.entities(train_x, train_y, test_x, test_y)
    return {}


def report(m: dict, task: str) -> str:
    lines = [f"# LoRA adapter — {task}", "", f"Scored on the `{m['split']}` split.", ""]
    if task == "seq_cls":
        base = m["majority_baseline"]
        lines += [f"- accuracy: {m['accuracy']:.3f} (majority baseline '{base['label']}': {base['accuracy']:.3f})",
                  f"- macro-F1: {m['macro_f1']:.3f}", "", "| label | precision | recall | F1 | support |",
                  "|---|---|---|---|---|"]
        lines += [f"| {k} | {v['precision']:.3f} | {v['recall']:.3f} | {v['f1']:.3f} | {v['support']} |"
                  for k, v in m["per_class"].items()]
        lines += ["", "| on the same test rows | accuracy | macro-F1 |", "|---|---|---|",
                  f"| this adapter | {m['accuracy']:.3f} | {m['macro_f1']:.3f} |"]
        lines += [f"| baseline: {name} | {b['accuracy']:.3f} | {b['macro_f1']:.3f} |"
                  for name, b in m["baselines"].items()]
    elif task == "token_cls":
        lines += [f"- entity precision / recall / F1 (strict): {m['precision']:.3f} / {m['recall']:.3f} / "
                  f"{m['f1']:.3f}"]
        lines += ["", "| on the same test rows | precision | recall | entity F1 |", "|---|---|---|---|",
                  f"| this adapter | {m['precision']:.3f} | {m['recall']:.3f} | {m['f1']:.3f} |"]
        lines += [f"| baseline: {name} | {b['precision']:.3f} | {b['recall']:.3f} | {b['f1']:.3f} |"
                  for name, b in m["baselines"].items()]
    else:
        lines += [f"- perplexity: {m['perplexity']:.2f}"]
    warning = B.verdict(task, m, m.get("baselines", {}))
    if warning:
        lines += ["", f"**Warning:** {warning}."]
    lines += ["", f"- training: {m['train']['steps']} steps, {m['train']['epochs_completed']} epochs"]
    return "\n".join(lines) + "\n"


def efficiency_report(cost: dict, steps: int) -> str:
    """Latency, memory and speed, measured on the machine that trained (so not part of what the key decides)."""
    return "\n".join([
        "## Efficiency (measured on this machine)", "",
        f"- latency: {cost['latency_ms_batch1']:.2f} ms/sample at batch 1, "
        f"{cost['latency_ms_batch32']:.2f} ms/sample at batch 32",
        f"- peak memory: {cost['process_peak_rss_mb']:.0f} MB process RSS",
        f"- training: {steps} steps in {cost['train_seconds']} s, {cost['train_tokens_per_s']} tokens/s", ""])


# ------------------------------------------------------------------------------------------------ checkpoints

def _save_adapter(path: Path, model) -> None:
    tmp = path.with_name(path.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(str(tmp))
    shutil.rmtree(path, ignore_errors=True)
    tmp.rename(path)


def _load_adapter(path: Path, model) -> None:
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file
    set_peft_model_state_dict(model, load_file(str(path / "adapter_model.safetensors")))


def _save_checkpoint(path: Path, model, opt, sched, scaler, state: dict) -> None:
    """Adapter, optimizer, scheduler, loss scaler, counters and RNG states: enough to continue as if never
    stopped."""
    import torch
    tmp = path.with_name(path.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(str(tmp))
    # Tensors and plain containers only: the checkpoint loads with weights_only=True (no pickle runs code).
    torch.save({"optimizer": opt.state_dict(), "scheduler": sched.state_dict(), "scaler": scaler.state_dict(),
                "torch_rng": torch.get_rng_state()}, tmp / "trainer_state.pt")
    (tmp / "state.json").write_text(json.dumps({**state, "python_rng": random.getstate()}))
    shutil.rmtree(path, ignore_errors=True)
    tmp.rename(path)


def _load_checkpoint(path: Path, model, opt, sched, scaler) -> dict:
    import torch
    _load_adapter(path, model)
    saved = torch.load(path / "trainer_state.pt", weights_only=True)
    opt.load_state_dict(saved["optimizer"])
    sched.load_state_dict(saved["scheduler"])
    if saved.get("scaler"):  # empty when the scaler is disabled (fp32, bf16)
        scaler.load_state_dict(saved["scaler"])
    torch.set_rng_state(saved["torch_rng"])
    state = json.loads((path / "state.json").read_text())
    version, internal, gauss = state.pop("python_rng")
    random.setstate((version, tuple(internal), gauss))
    return state
