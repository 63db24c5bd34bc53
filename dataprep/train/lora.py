"""train_lora: LoRA fine-tuning of a transformers model, in one file that reads top to bottom.

config -> data -> model (transformers + peft) -> the shared loop (models/loop.py: accumulation, warmup,
clipping, autocast where it pays, NaN guard, evaluation, early stopping, checkpoints that resume exactly) ->
metrics and baselines -> save.

Tasks are rows of train/tasks.py: `seq_cls` on `cls` rows, `token_cls` on `bio` rows (the first piece that
carries a word's content carries its tag), and `causal_lm` on text (loss on real tokens only). Rows must
carry a `split` column (run `split` first): the model trains on `train`, is selected on `validation`, and is
scored once on `test`. What it writes is ordinary PEFT: `PeftModel.from_pretrained(base, out_dir)` loads it
with no help from this project.
"""
from __future__ import annotations

import json
import math
import shutil
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pyarrow as pa

from dataprep.models.batching import windowed_batches
from dataprep.models.compute import BuildCompute, TimeGuard, torch_for
from dataprep.models.load import device, load_model_and_fresh_weights, load_tokenizer, max_positions, pad, quiet_peft
from dataprep.models.loop import Checkpoints, Loop, Progress
from dataprep.models.loop import train as train_loop
from dataprep.registry import key_params, param, stage
from dataprep.train import baselines as B
from dataprep.train import evaluate as E
from dataprep.train.monitor import Monitor, check_reporters
from dataprep.train.tasks import Example, Task, task_of

TaskName = Literal["auto", "seq_cls", "token_cls", "causal_lm"]


# ----------------------------------------------------------------------------------------------------- config

@dataclass(frozen=True)
class LoraTrainParams(BuildCompute):
    base_model: str | dict[str, str] | None = param(None, "the model to adapt: {node: NAME}, a directory or a hub "
                                                    "id", model_ref=True)
    task: TaskName = param("auto", "seq_cls, token_cls or causal_lm; auto: seq_cls for cls rows, token_cls for bio")
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
    report_to: list[Literal["tensorboard", "wandb"]] = param(
        factory=list, help="also log each step to TensorBoard and/or Weights & Biases (offline unless WANDB_MODE "
        "says otherwise), in monitor/ beside the adapter; train_log.jsonl is always written", knob=True)
    copy_base: bool = param(True, "copy a base given as a directory into base/ beside the adapter, so the "
                            "adapter directory loads anywhere (a hub id is recorded as it is)")
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
        check_reporters(self.report_to)
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

@stage("train_lora", version=4, kind="build", params=LoraTrainParams, consumes=("cls", "bio"), produces="model",
       reads_splits=True, resumable=True)
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
    task: Task                             # the task row (train/tasks.py)
    inputs: dict[str, list]                # split -> texts (or token lists)
    targets: dict[str, list]               # split -> labels (or tag lists); None for causal_lm
    labels: list[str]                      # the label (or tag) vocabulary, sorted; empty for causal_lm

    @property
    def label_ids(self) -> dict[str, int]:
        return {label: i for i, label in enumerate(self.labels)}

    @classmethod
    def from_tables(cls, tables: list[pa.Table], task: str) -> Data:
        table = pa.concat_tables(tables, promote_options="permissive")
        if "split" not in table.column_names:
            raise ValueError("train_lora needs a `split` column (train/validation/test): put a `split` node first")
        row = task_of(table, task)
        data = cls(row, {}, {}, [])
        for split, x, y in zip(table.column("split").to_pylist(), *row.columns(table)):
            data.inputs.setdefault(split, []).append(x)
            data.targets.setdefault(split, []).append(y)
        if not data.inputs.get("train"):
            raise ValueError("train_lora: the input has no rows in the `train` split")
        unlabelled = sum(y is None for targets in data.targets.values() for y in targets) if row.labelled else 0
        if unlabelled:
            raise ValueError(f"train_lora: {unlabelled} rows have no label (null); normalize (or to_bio2) rejects "
                             "them: run it before split")
        data.labels = row.vocabulary(data.targets["train"])
        return data

    def eval_split(self) -> str:
        return "validation" if self.inputs.get("validation") else "train"

    def test_split(self) -> str:
        return "test" if self.inputs.get("test") else self.eval_split()

    def encode(self, tok, split: str, max_len: int) -> list[Example]:
        return self.task.encode(tok, self.inputs.get(split, []), self.targets.get(split, []), self.label_ids,
                                max_len)


# ----------------------------------------------------------------------------------------------------- model

def build_model(p: LoraTrainParams, data: Data):
    """The base model with its task head, a pad token, and LoRA adapters on top."""
    import torch
    import transformers
    from peft import LoraConfig, TaskType, get_peft_model

    torch.manual_seed(p.seed)  # the head and the LoRA matrices are initialised from this
    tok = load_tokenizer(p.base_model)
    task = data.task
    head_kwargs = {"num_labels": len(data.labels), "id2label": dict(enumerate(data.labels)),
                   "label2id": data.label_ids} if task.labelled else {}
    model, fresh = load_model_and_fresh_weights(p.base_model, getattr(transformers, task.head), **head_kwargs)
    fresh_modules = modules_without_weights(fresh)
    if tok.pad_token is None:  # GPT-style models ship without one; padding must never be a real token
        if tok.eos_token is not None:
            tok.pad_token = tok.eos_token
        else:
            tok.add_special_tokens({"pad_token": "<pad>"})
            model.resize_token_embeddings(len(tok))
    model.config.pad_token_id = tok.pad_token_id
    targets = p.target_modules
    if targets == "all-linear" and task.labelled:
        targets = [name for name in linear_layers_outside_the_head(model) if name not in fresh_modules]
    to_save = list(p.modules_to_save or []) + [m for m in fresh_modules if m not in (p.modules_to_save or [])]
    config = LoraConfig(
        task_type=getattr(TaskType, task.peft_type), r=p.r, lora_alpha=p.alpha, lora_dropout=p.dropout,
        target_modules=targets, bias=p.bias, modules_to_save=to_save or None,
        use_rslora=p.rslora, use_dora=p.dora,
        fan_in_fan_out=model.config.model_type == "gpt2")  # GPT-2 stores Linear as Conv1D
    with quiet_peft():
        return get_peft_model(model, config).to(device()), tok


# The classification head of a task model: PEFT trains it in full (modules_to_save) for seq_cls and token_cls.
HEADS = {"classifier", "score"}


def modules_without_weights(fresh: list[str]) -> list[str]:
    """The modules besides the head whose weights the base did not hold — a BERT pretrained with masked-LM
    has no pooler, which BertForSequenceClassification then starts from random. Frozen and left out of the
    adapter, they would be random again at every load (measured: SST-2 accuracy 0.491-0.517 by load seed);
    so they are trained in full and saved with the adapter, as the head is."""
    return sorted({key.rsplit(".", 1)[0] for key in fresh if not HEADS & set(key.split("."))})


def linear_layers_outside_the_head(model) -> list[str]:
    """What `all-linear` means for a classification model: every Linear (or GPT-2 Conv1D) layer but the head.
    PEFT's own expansion also targets the head, which it then refuses to train in full (modules_to_save
    cannot be applied to a LoRA layer): token_cls with all-linear crashed."""
    import torch
    from transformers.pytorch_utils import Conv1D
    return [name for name, module in model.named_modules()
            if isinstance(module, (torch.nn.Linear, Conv1D)) and not HEADS & set(name.split("."))]


# -------------------------------------------------------------------------------------------------- batching

def batch_order(lengths: list[int], batch_size: int, seed: int, epoch: int) -> list[list[int]]:
    """Length-grouped batches: shuffle, sort by length (longest first) inside windows of 50 batches (little
    padding), shuffle the batches. A function of (seed, epoch) only, so a resumed run sees the same order."""
    import random
    rng = random.Random(seed * 1000 + epoch)
    order = list(range(len(lengths)))
    rng.shuffle(order)
    batches = [b for window in windowed_batches(order, lengths, batch_size, longest_first=True) for b in window]
    rng.shuffle(batches)
    return batches


def collate(examples: list[Example], pad_id: int, task: Task) -> dict:
    """Right-pad to the longest example of the batch (dynamic padding); the task decides the labels."""
    ids, mask = pad([x for x, _ in examples], pad_id)
    return {"input_ids": ids, "attention_mask": mask, "labels": task.target_tensor(examples, ids, mask)}


# ------------------------------------------------------------------------------------------------------ train

def train(p: LoraTrainParams, data: Data, out_dir: Path, checkpoints: Path | None = None,
          progress: Callable[[dict], None] | None = None):
    """Train, select, score and save; return (model, tokenizer, notes for the node's stats)."""
    torch_for(p)
    model, tok = build_model(p, data)
    max_len = max_positions(model.config, p.max_len)
    train_set = data.encode(tok, "train", max_len)
    eval_set = data.encode(tok, data.eval_split(), max_len)
    lengths = [len(x) for x, _ in train_set]
    steps_per_epoch = math.ceil(math.ceil(len(train_set) / p.batch_size) / p.grad_accum)
    total = p.max_steps or p.epochs * steps_per_epoch

    def epoch_batches(epoch: int) -> list[list[int]]:
        return batch_order(lengths, p.batch_size, p.seed, epoch)

    def loss_of(batch: list[int]):
        inputs = collate([train_set[i] for i in batch], tok.pad_token_id, data.task)
        return model(**inputs).loss, int(inputs["attention_mask"].sum())

    def validation_score() -> float:
        metrics = evaluate(model, tok, data, data.eval_split(), eval_set, p.batch_size)
        return selection_score(metrics, data.task, p.metric)

    cfg = Loop(total=total, lr=p.lr, warmup=math.ceil(p.warmup_ratio * total), schedule=p.schedule,
               weight_decay=p.weight_decay, grad_accum=p.grad_accum, max_grad_norm=p.max_grad_norm,
               precision=resolved_precision(p), device_type=device().type, eval_every=p.eval_every,
               patience=p.patience, save_every=p.save_every, log_every=p.log_every)
    saved = Checkpoints(checkpoints) if checkpoints else None
    monitor = Monitor(checkpoints or out_dir, p.report_to, "train_lora", key_params(p),
                      resumed_at=saved.resumed_step() if saved else 0)
    speed = _Speed(monitor, progress)
    state = train_loop(model, epoch_batches, loss_of, cfg, evaluate=validation_score, checkpoints=saved,
                       guard=TimeGuard("train_lora", p.max_seconds), progress=speed)
    monitor.finish(out_dir)
    return model, tok, _finish(model, tok, data, p, max_len, out_dir, state, speed.measured())


class _Speed:
    """Passes the loop's progress to the monitor and the caller, and remembers how fast this process trained
    (not keyed: measured)."""

    def __init__(self, monitor: Monitor, then: Callable[[dict], None] | None):
        self.monitor, self.then, self.started, self.tokens_per_s = monitor, then, time.monotonic(), None

    def __call__(self, info: dict) -> None:
        if info["event"] == "step":
            self.tokens_per_s = info["tokens_per_s"]
        self.monitor(info)
        if self.then:
            self.then(info)

    def measured(self) -> dict:
        seconds = time.monotonic() - self.started
        return {"train_seconds": round(seconds, 2),
                "train_tokens_per_s": round(self.tokens_per_s, 1) if self.tokens_per_s else None}


def resolved_precision(p: LoraTrainParams) -> str:
    """Mixed precision only where it pays: auto is bf16 on a GPU that has it; on the CPU, bf16 autocast runs
    but is slower, so auto is fp32 there."""
    import torch
    if p.precision != "auto":
        return p.precision
    return "bf16" if device().type == "cuda" and torch.cuda.is_bf16_supported() else "fp32"


def selection_score(metrics: dict, task: Task, metric: str) -> float:
    """Higher is better: the named metric, or the task's own (macro-F1, entity F1, minus perplexity)."""
    return metrics[metric] if metric != "auto" else task.select(metrics)


# ------------------------------------------------------------------------------------------------ evaluation

def evaluate(model, tok, data: Data, split: str, examples: list[Example], batch_size: int) -> dict:
    """The task's metrics of `model` on the encoded examples of `split`, in batches of `batch_size`."""
    import torch
    model.eval()
    scorer = data.task.scorer(data.labels, data.targets.get(split, []))
    with torch.inference_mode():
        for start in range(0, len(examples), batch_size):
            chunk = examples[start:start + batch_size]
            batch = collate(chunk, tok.pad_token_id, data.task)
            scorer.add(chunk, batch, model(**batch))
    return scorer.metrics()


def inference_cost(model, tok, data: Data, split: str, max_len: int) -> dict:
    """Latency per sample at batch 1 and 32 on real inputs, and peak memory."""
    import torch
    model.eval()
    xs = data.inputs.get(split) or data.inputs["train"]
    kwargs = {"is_split_into_words": True} if data.task.words else {}

    def predict(batch):
        enc = tok(batch, truncation=True, max_length=max_len, padding=True, return_tensors="pt", **kwargs)
        with torch.inference_mode():
            model(**{k: v.to(device()) for k, v in enc.items() if k in ("input_ids", "attention_mask")})

    return {"latency_ms_batch1": E.latency_ms(predict, xs[:64], 1),
            "latency_ms_batch32": E.latency_ms(predict, xs[:64], 32), **E.peak_memory_mb()}


# ------------------------------------------------------------------------------------------------------ save

def _finish(model, tok, data: Data, p: LoraTrainParams, max_len: int, out_dir: Path, state: Progress,
            speed: dict) -> dict:
    task, split = data.task, data.test_split()
    metrics = {"split": split, **evaluate(model, tok, data, split, data.encode(tok, split, max_len), p.batch_size),
               "baselines": task.baselines(data.inputs["train"], data.targets["train"], data.inputs.get(split, []),
                                           data.targets.get(split, []), data.labels),
               "train": {"steps": state.step, "epochs_completed": state.epoch, "selection": state.history,
                         "examples": len(data.inputs["train"])}}
    warning = B.verdict(task.name, metrics, metrics["baselines"])
    if warning:
        warnings.warn(f"train_lora: {warning}", stacklevel=2)
    # Timings and memory depend on the machine and how busy it is: they live apart from what the key decides
    # (metrics.json, report.md and the weights are the same bytes on any machine; the cache leaves these out).
    cost = {**inference_cost(model, tok, data, split, max_len), **speed}
    out_dir.mkdir(parents=True, exist_ok=True)
    base = save_self_contained(model, tok, p, out_dir)
    (out_dir / "label_map.json").write_text(json.dumps({"task": task.name, "labels": data.labels}, indent=2))
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2, ensure_ascii=False))
    (out_dir / "efficiency.json").write_text(json.dumps(cost, indent=2))
    # What decided this adapter: the keyed params (knobs such as save_every would change the bytes, not it).
    # The base as the adapter records it (base/, or a hub id): not the cache path, which differs by machine.
    config = {**key_params(p), "base_model": base}
    (out_dir / "train_config.json").write_text(json.dumps(config, indent=2, default=str))
    (out_dir / "report.md").write_text(report(metrics, task))
    (out_dir / "efficiency.md").write_text(efficiency_report(cost, state.step))
    if p.merge:
        merged = model.merge_and_unload()
        merged.save_pretrained(str(out_dir / "merged"))
        tok.save_pretrained(str(out_dir / "merged"))
    headline = task.headline(metrics)
    notes = {"steps": state.step, "examples": len(data.inputs["train"]),
             "test_metric_x1000": round(headline * 1000) if headline == headline else 0}
    if task.name in B.STRONG:
        notes["beats_strong_baseline"] = int(warning is None)
    return notes


BASE_COPY = "base"  # where copy_base puts the base model, inside the adapter directory


def save_self_contained(model, tok, p: LoraTrainParams, out_dir: Path) -> str:
    """The adapter (PEFT format), the tokenizer, and the task model's config (config.json: labels, pad token)
    — and, with copy_base, the base model itself in base/, recorded as `base` (relative to the adapter
    directory): the directory can be moved or copied and still loads with plain transformers + PEFT. Returns
    the base as recorded."""
    model.save_pretrained(str(out_dir))
    tok.save_pretrained(str(out_dir))
    model.get_base_model().config.save_pretrained(str(out_dir))
    base = p.base_model
    if p.copy_base and Path(base).is_dir():
        shutil.copytree(base, out_dir / BASE_COPY)
        base = BASE_COPY
    _stable_adapter_config(out_dir / "adapter_config.json", base)
    # PEFT's model card template names the base by the path it was loaded from; this one says how to load.
    (out_dir / "README.md").write_text(model_card(base, model.get_base_model().__class__.__name__))
    return base


def model_card(base: str, head_class: str) -> str:
    where = f"{base}/ (in this directory)" if base == BASE_COPY else base
    load_base = "adapter / 'base'" if base == BASE_COPY else repr(base)
    return "\n".join([
        "---", f"base_model: {base}", "library_name: peft", "tags: [lora, dataprep]", "---", "",
        "# LoRA adapter trained by dataprep", "", f"Base model: {where}. Metrics: report.md, metrics.json.", "",
        "```python", "from pathlib import Path", "from peft import PeftModel",
        f"from transformers import AutoConfig, {_auto_class(head_class)}", "",
        "adapter = Path('.')  # this directory",
        "config = AutoConfig.from_pretrained(adapter)  # labels and pad token",
        f"base = {_auto_class(head_class)}.from_pretrained({load_base}, config=config)",
        "model = PeftModel.from_pretrained(base, adapter)", "```", ""])


def _auto_class(head_class: str) -> str:
    for suffix, auto in (("ForSequenceClassification", "AutoModelForSequenceClassification"),
                         ("ForTokenClassification", "AutoModelForTokenClassification")):
        if head_class.endswith(suffix):
            return auto
    return "AutoModelForCausalLM"


def _stable_adapter_config(path: Path, base: str) -> None:
    """PEFT keeps target_modules as a set and writes it in the set's order, which changes with Python's hash
    seed from one process to the next: the same key wrote different bytes. Sorted here, with the base named."""
    config = json.loads(path.read_text())
    if isinstance(config.get("target_modules"), list):
        config["target_modules"] = sorted(config["target_modules"])
    config["base_model_name_or_path"] = base
    path.write_text(json.dumps(config, indent=2, sort_keys=True))


def report(m: dict, task: Task) -> str:
    lines = [f"# LoRA adapter — {task.name}", "", f"Scored on the `{m['split']}` split.", "", *task.report(m)]
    warning = B.verdict(task.name, m, m.get("baselines", {}))
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
