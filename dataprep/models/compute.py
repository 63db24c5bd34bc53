"""How torch computes for a stage: the one place that sets a node's device and thread count.

Why the thread count is a keyed parameter and not an execution knob: torch's CPU reductions and MKL's GEMMs
split their work by thread, so the float sums — and after a few hundred steps, the weights — depend on how
many threads ran. Measured here (tiny GPT-2, 30 AdamW steps, same seed): 1 and 2 threads give different
weights, while 1 thread gives the same weights on a quiet and on a busy machine. A build or model node is
therefore decided by its key only if the thread count is in the key: `threads` is, and it defaults to 1.
One thread a node also stops torch from oversubscribing a busy machine (the project's notes saw two threads on
two busy cores run training several times slower); the other core reads, writes and hashes for the runner.

MKL picks its kernels by the CPU's instruction set, which would make weights differ between machines of one
cluster; `MKL_CBWR=AVX2` (set here unless the user set it) pins the AVX2 code path, which every x86-64
machine of the last decade runs, and which gave the same weights as MKL's own choice on this AVX-512 machine.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Literal

from dataprep.errors import DataprepError
from dataprep.registry import param

# Must be in the environment before MKL runs its first kernel; setdefault leaves a user's choice alone.
os.environ.setdefault("MKL_CBWR", "AVX2")


@dataclass(frozen=True)
class TorchCompute:
    """Params mixin for stages that run torch: where and with how many threads, both part of the key (a GPU
    and a CPU compute different floats from the same seed, as 1 and 2 threads do; see the module doc)."""
    threads: int = param(1, "torch threads for this node's math; part of the key, because the float results "
                         "depend on it (1: the same bytes on any machine, busy or quiet)")
    device: Literal["cpu", "cuda"] = param("cpu", "where this node computes; part of the key, because a GPU "
                                           "computes other floats than a CPU (set defaults: {device: cuda})")

    def __post_init__(self):
        if self.threads < 1:
            raise ValueError(f"threads must be at least 1, got {self.threads}")


@dataclass(frozen=True)
class BuildCompute(TorchCompute):
    """Params mixin for the stages that train a model: TorchCompute plus the optional time guard and how often
    the loop logs."""
    max_seconds: float | None = param(None, "optional guard: fail the node (save nothing) when training takes "
                                      "longer; never shortens training", knob=True)
    log_every: int = param(50, "optimizer steps between training log lines (0: none)", knob=True)


def torch_for(p: TorchCompute):
    """torch, with the node's device and thread count set: call at the start of every node that computes."""
    import torch

    from dataprep.models.load import use_device
    if p.device == "cuda" and not torch.cuda.is_available():
        raise DataprepError("device: cuda, but torch sees no CUDA device here; use device: cpu (the default)")
    use_device(p.device)
    torch.set_num_threads(p.threads)
    return torch


class TimeGuard:
    """An optional wall-clock limit that stops a build with an error, never with a model: weights trained
    until the clock ran out would depend on how fast and how busy the machine was, under the same key."""

    def __init__(self, stage: str, max_seconds: float | None):
        self.stage, self.max_seconds = stage, max_seconds
        self.started = time.monotonic()

    def check(self, step: int, total: int) -> None:
        if self.max_seconds is None or time.monotonic() - self.started <= self.max_seconds:
            return
        raise BuildTimeout(f"{self.stage}: max_seconds={self.max_seconds:g} ran out at step {step} of {total}; "
                           "nothing was saved (a model cut short by the clock would depend on this machine's "
                           "speed). Raise max_seconds, unset it, or lower max_steps.")


class BuildTimeout(DataprepError):
    """A build node's optional time limit ran out; the node is not committed."""
