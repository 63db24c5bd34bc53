"""Monitoring a fine-tune: every optimizer step and evaluation of the loop, written where people look.

- `train_log.jsonl`, always: one line per step (step, epoch, loss, lr, grad_norm) and per evaluation (step,
  epoch, score, best). Only what the key decides goes in it — no timings — so it is the same bytes on any
  machine and the run report can read it. With checkpoints it lives beside them and a resumed run carries on
  from the checkpoint's step, so the log of an interrupted run is the log of an uninterrupted one.
- TensorBoard event files (`monitor/tensorboard/`) when `tensorboard` is installed and report_to names it;
- Weights & Biases (`monitor/wandb/`) when `wandb` is installed and report_to names it; offline unless the
  user set WANDB_MODE, so it never needs a network. These two carry tokens/s too and are measured files:
  the cache does not vouch for their bytes.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

LOG = "train_log.jsonl"
MONITOR = "monitor"  # cache.MEASURED_DIRS: event files hold wall-clock times
REPORTERS = ("tensorboard", "wandb")
STEP_FIELDS = ("step", "epoch", "loss", "lr", "grad_norm")
EVAL_FIELDS = ("step", "epoch", "score", "best")


def check_reporters(report_to: list[str]) -> None:
    """Fail at validation, not after training, when a reporter that was asked for is not installed."""
    import importlib.util
    modules = {"tensorboard": "tensorboard", "wandb": "wandb"}
    for name in report_to:
        if name not in REPORTERS:
            raise ValueError(f"report_to: unknown reporter {name!r}; use {', '.join(REPORTERS)}")
        if importlib.util.find_spec(modules[name]) is None:
            raise ValueError(f"report_to: {name} is not installed (pip install {name})")


class Monitor:
    """The loop's progress callback: `monitor(info)` for each event, `finish(out_dir)` once training ends."""

    def __init__(self, work: Path, report_to: list[str], run_name: str, config: dict, resumed_at: int = 0):
        self.work = work
        work.mkdir(parents=True, exist_ok=True)
        self.log_path = work / LOG
        _truncate_after(self.log_path, resumed_at)
        self.log = open(self.log_path, "a", encoding="utf-8")
        self.tensorboard = self.wandb = None
        if "tensorboard" in report_to:
            from torch.utils.tensorboard import SummaryWriter
            self.tensorboard = SummaryWriter(log_dir=str(work / MONITOR / "tensorboard"))
        if "wandb" in report_to:
            import wandb
            os.environ.setdefault("WANDB_MODE", "offline")  # no network unless the user chose one
            self.wandb = wandb.init(project="dataprep", name=run_name, dir=str(work / MONITOR), config=config,
                                    reinit="finish_previous")

    def __call__(self, info: dict) -> None:
        fields = STEP_FIELDS if info["event"] == "step" else EVAL_FIELDS
        self.log.write(json.dumps({"event": info["event"], **{k: info[k] for k in fields}}) + "\n")
        self.log.flush()
        if info["event"] == "step":
            scalars = {"train/loss": info["loss"], "train/lr": info["lr"], "train/grad_norm": info["grad_norm"],
                       "train/tokens_per_s": info["tokens_per_s"]}
        else:
            scalars = {"eval/score": info["score"]}
        if self.tensorboard is not None:
            for name, value in scalars.items():
                self.tensorboard.add_scalar(name, value, info["step"])
        if self.wandb is not None:
            self.wandb.log(scalars, step=info["step"])

    def finish(self, out_dir: Path) -> None:
        """Close the writers and put the log (and the reporters' files) into the model directory."""
        self.log.close()
        if self.tensorboard is not None:
            self.tensorboard.close()
        if self.wandb is not None:
            self.wandb.finish()
        out_dir.mkdir(parents=True, exist_ok=True)
        if self.work.resolve() == out_dir.resolve():  # no checkpoints: the log was written in place
            return
        shutil.copyfile(self.log_path, out_dir / LOG)
        if (self.work / MONITOR).is_dir():
            shutil.copytree(self.work / MONITOR, out_dir / MONITOR, dirs_exist_ok=True)


def _truncate_after(path: Path, step: int) -> None:
    """Keep the records up to `step` (the checkpoint a resumed run starts from); none for a fresh run."""
    if not path.exists():
        return
    kept = [line for line in path.read_text(encoding="utf-8").splitlines()
            if step and json.loads(line)["step"] <= step]
    path.write_text("".join(line + "\n" for line in kept), encoding="utf-8")


def read_log(path: Path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines()]
