"""The one training loop: every model dataprep trains — pretrain_lm, pretrain_encoder, train_translator and
train_lora — runs through `train`.

It reads top to bottom, as nanoGPT's train.py does: optimizer and schedule, (resume), then per batch: loss
under autocast, NaN guard, backward (scaled for fp16), and every `grad_accum` batches an optimizer step with
the true gradients clipped; after a step: the optional time guard, a log line, evaluation (every
`eval_every` steps, or at each epoch's end) with early stopping, a checkpoint. The step budget alone decides
when training ends, so the weights depend on the data, the params and the seed — never on how fast or busy
the machine is. What a model is and how its loss is computed stays with the caller: `epoch_batches(epoch)`
gives an epoch's batches and `loss_of(batch)` its (loss, real tokens).
"""
from __future__ import annotations

import contextlib
import json
import logging
import math
import random
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from dataprep.models.compute import TimeGuard

log = logging.getLogger("dataprep.train")


# --------------------------------------------------------------------------------------------- schedules

def builder_cosine(warmup: int, total: int) -> Callable[[int], float]:
    """The builders' schedule: linear warmup that starts at 1/warmup (the first step already learns), then
    cosine to 0 over the whole budget."""
    return lambda step: min((step + 1) / warmup, 0.5 * (1 + math.cos(math.pi * min(1.0, step / total))))


def linear_with_warmup(warmup: int, total: int) -> Callable[[int], float]:
    """From 0 up to 1 over `warmup` steps, then linearly down to 0 at `total` (transformers' formula)."""
    def factor(step: int) -> float:
        if step < warmup:
            return float(step) / float(max(1, warmup))
        return max(0.0, float(total - step) / float(max(1, total - warmup)))
    return factor


def cosine_with_warmup(warmup: int, total: int) -> Callable[[int], float]:
    """From 0 up to 1 over `warmup` steps, then half a cosine down to 0 at `total` (transformers' formula)."""
    def factor(step: int) -> float:
        if step < warmup:
            return float(step) / float(max(1, warmup))
        progress = float(step - warmup) / float(max(1, total - warmup))
        return max(0.0, 0.5 * (1.0 + math.cos(math.pi * 0.5 * 2.0 * progress)))
    return factor


SCHEDULES = {"linear": linear_with_warmup, "cosine": cosine_with_warmup, "builder_cosine": builder_cosine}


# ------------------------------------------------------------------------------------------------- config

@dataclass(frozen=True)
class Loop:
    """How to train: the step budget and everything that shapes the updates (all of it keyed by the
    stages that build one), plus how often to evaluate, save and log."""
    total: int                                  # optimizer steps
    lr: float                                   # peak learning rate (AdamW)
    warmup: int                                 # steps of warmup
    schedule: str = "builder_cosine"            # a name in SCHEDULES
    weight_decay: float = 0.01
    grad_accum: int = 1                         # forward passes per optimizer step (and one at each epoch's end)
    max_grad_norm: float = 1.0
    fused: bool = False                         # one AdamW kernel for all tensors: numerically its own
    precision: str = "fp32"                     # fp32 | bf16 | fp16 (fp16 runs with a gradient scaler)
    device_type: str = "cpu"
    eval_every: int | None = None               # steps; None: at the end of each epoch
    patience: int | None = None                 # evaluations without improvement before stopping
    save_every: int = 100                       # steps between checkpoints (and at each epoch's end)
    log_every: int = 50                         # steps between log lines


@dataclass
class Progress:
    """Where training stands; saved with every checkpoint so a resumed run continues exactly."""
    step: int = 0                               # optimizer steps taken
    epoch: int = 0                              # epochs completed
    batch: int = 0                              # batches of the current epoch done
    best: float | None = None                   # the best evaluation score so far (higher is better)
    since_best: int = 0                         # evaluations since it
    history: list[dict] = field(default_factory=list)
    loss: float = float("nan")                  # the last batch's loss

    def stopped_early(self, patience: int | None) -> bool:
        return patience is not None and self.since_best >= patience


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


# ------------------------------------------------------------------------------------------------ the loop

def train(model, epoch_batches: Callable[[int], Sequence[Any]], loss_of: Callable[[Any], tuple[Any, int]],
          cfg: Loop, *, evaluate: Callable[[], float] | None = None, checkpoints: Checkpoints | None = None,
          guard: TimeGuard | None = None, progress: Callable[[dict], None] | None = None) -> Progress:
    """Train `model` for `cfg.total` optimizer steps and return where it stopped, with the best evaluated
    weights loaded when there were evaluations and checkpoints.

    `epoch_batches(epoch)` gives one epoch's batches (a seeded order); `loss_of(batch)` the loss to minimise
    and the number of real tokens in the batch (for the log line). `evaluate()` scores the model, higher is
    better. `progress(info)` is called after every optimizer step (event "step": loss, lr, grad_norm,
    tokens_per_s) and every evaluation (event "eval": score, best)."""
    import torch

    opt = torch.optim.AdamW([w for w in model.parameters() if w.requires_grad], lr=cfg.lr,
                            weight_decay=cfg.weight_decay, fused=cfg.fused or None)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, SCHEDULES[cfg.schedule](cfg.warmup, cfg.total))
    autocast = _autocast(cfg)
    # fp16 gradients underflow without loss scaling; disabled (fp32, bf16), the scaler passes everything through.
    scaler = torch.amp.GradScaler(cfg.device_type, enabled=cfg.precision == "fp16")
    state = Progress()
    if checkpoints and checkpoints.has_last():
        state = checkpoints.load_last(model, opt, sched, scaler)
    started, tokens_seen = time.monotonic(), 0
    model.train()
    while state.step < cfg.total and not state.stopped_early(cfg.patience):
        batches = epoch_batches(state.epoch)
        for b in range(state.batch, len(batches)):
            with autocast:
                loss, tokens = loss_of(batches[b])
                loss = loss / cfg.grad_accum
            if not torch.isfinite(loss):
                where = checkpoints.last if checkpoints else "none"
                raise TrainingDiverged(f"loss is {loss.item()} at step {state.step}, epoch {state.epoch}; "
                                       f"last good checkpoint: {where}")
            scaler.scale(loss).backward()
            tokens_seen += tokens
            state.batch = b + 1
            epoch_done = state.batch == len(batches)
            if state.batch % cfg.grad_accum and not epoch_done:
                continue  # accumulate: the optimizer steps once per grad_accum batches (and at epoch end)
            scaler.unscale_(opt)  # clip the true gradients, not the scaled ones
            grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
            scaler.step(opt)
            scaler.update()
            sched.step()
            opt.zero_grad(set_to_none=True)
            state.step += 1
            state.loss = loss.item() * cfg.grad_accum
            if guard:
                guard.check(state.step, cfg.total)
            info = {"event": "step", "step": state.step, "total": cfg.total, "epoch": state.epoch,
                    "loss": state.loss, "lr": sched.get_last_lr()[0], "grad_norm": grad_norm.item(),
                    "tokens_per_s": tokens_seen / max(time.monotonic() - started, 1e-9)}
            _log(info, cfg.log_every)
            if progress:
                progress(info)
            if evaluate and cfg.eval_every and state.step % cfg.eval_every == 0:
                _evaluate_and_keep_best(model, evaluate, state, checkpoints, progress)
            if epoch_done:
                state.epoch, state.batch = state.epoch + 1, 0
                if evaluate and not cfg.eval_every:
                    _evaluate_and_keep_best(model, evaluate, state, checkpoints, progress)
            if checkpoints and (state.step % cfg.save_every == 0 or epoch_done):
                checkpoints.save_last(model, opt, sched, scaler, state)
            if state.step >= cfg.total or state.stopped_early(cfg.patience) or epoch_done:
                break
    model.eval()
    if checkpoints and checkpoints.has_best():
        checkpoints.load_best(model)  # the selected model, not merely the last one
    return state


def _autocast(cfg: Loop):
    import torch
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(cfg.precision)
    return torch.autocast(cfg.device_type, dtype=dtype) if dtype else contextlib.nullcontext()


def _log(info: dict, every: int) -> None:
    if every and (info["step"] % every == 0 or info["step"] == info["total"]):
        log.info("step %d/%d  epoch %d  loss %.4f  lr %.2e  %.0f tokens/s", info["step"], info["total"],
                 info["epoch"], info["loss"], info["lr"], info["tokens_per_s"])


def _evaluate_and_keep_best(model, evaluate: Callable[[], float], state: Progress, checkpoints, progress) -> None:
    score = evaluate()
    model.train()
    state.history.append({"step": state.step, "epoch": state.epoch, "score": score})
    log.info("step %d  evaluation %.4f%s", state.step, score, "" if state.best is None else f" (best {state.best:.4f})")
    if state.best is None or score > state.best:
        state.best, state.since_best = score, 0
        if checkpoints:
            checkpoints.save_best(model)
    else:
        state.since_best += 1
    if progress:
        progress({"event": "eval", "step": state.step, "epoch": state.epoch, "score": score, "best": state.best})


# ------------------------------------------------------------------------------------------- checkpoints

class Checkpoints:
    """`last` (weights, optimizer, scheduler, loss scaler, progress and RNG states: enough to continue as if
    never stopped) and `best` (the weights of the best evaluation) in one directory. Weights are saved with
    `save_pretrained`, so a PEFT model saves its adapter only."""

    def __init__(self, root: Path):
        self.root = root
        self.last, self.best = root / "last", root / "best"

    def has_last(self) -> bool:
        return self.last.is_dir()

    def resumed_step(self) -> int:
        """The step a run that starts now continues from: the last checkpoint's, or 0."""
        state = self.last / "state.json"
        return json.loads(state.read_text())["step"] if state.is_file() else 0

    def has_best(self) -> bool:
        return self.best.is_dir()

    def save_best(self, model) -> None:
        _replace_dir(self.best, model.save_pretrained)

    def load_best(self, model) -> None:
        load_weights(self.best, model)

    def save_last(self, model, opt, sched, scaler, state: Progress) -> None:
        import torch

        def write(tmp: str) -> None:
            model.save_pretrained(tmp)
            # Tensors and plain containers only: the checkpoint loads with weights_only=True (no pickle runs code).
            torch.save({"optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                        "scaler": scaler.state_dict(), "torch_rng": torch.get_rng_state()},
                       Path(tmp) / "trainer_state.pt")
            (Path(tmp) / "state.json").write_text(json.dumps({**asdict(state), "python_rng": random.getstate()}))
        _replace_dir(self.last, write)

    def load_last(self, model, opt, sched, scaler) -> Progress:
        import torch
        load_weights(self.last, model)
        saved = torch.load(self.last / "trainer_state.pt", weights_only=True)
        opt.load_state_dict(saved["optimizer"])
        sched.load_state_dict(saved["scheduler"])
        if saved.get("scaler"):  # empty when the scaler is disabled (fp32, bf16)
            scaler.load_state_dict(saved["scaler"])
        torch.set_rng_state(saved["torch_rng"])
        state = json.loads((self.last / "state.json").read_text())
        version, internal, gauss = state.pop("python_rng")
        random.setstate((version, tuple(internal), gauss))
        return Progress(**state)


def _replace_dir(path: Path, write: Callable[[str], None]) -> None:
    """Write into a fresh sibling, then swap it in: a crash mid-save leaves the previous copy whole."""
    tmp = path.with_name(path.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    write(str(tmp))
    shutil.rmtree(path, ignore_errors=True)
    tmp.rename(path)


def load_weights(path: Path, model) -> None:
    """Load what `save_pretrained` wrote into `model`: a PEFT adapter, or a whole model's weights."""
    from safetensors.torch import load_file
    adapter = path / "adapter_model.safetensors"
    if adapter.exists():
        from peft import set_peft_model_state_dict
        set_peft_model_state_dict(model, load_file(str(adapter)))
    else:
        # save_pretrained writes a tied weight once (GPT-2's lm_head is its embedding): those may be missing
        missing, unexpected = model.load_state_dict(load_file(str(path / "model.safetensors")), strict=False)
        tied = set(getattr(model, "all_tied_weights_keys", None) or {})
        if unexpected or set(missing) - tied:
            raise RuntimeError(f"checkpoint {path} does not fit the model: missing {sorted(set(missing) - tied)}, "
                               f"unexpected {sorted(unexpected)}")
