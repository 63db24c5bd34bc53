"""The one training loop (models/loop.py) and the one batching helper (models/batching.py): schedules, the NaN
guard, accumulation, early stopping, the log line, exact resume of a whole model, and length grouping."""
from __future__ import annotations

import logging
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from dataprep.models.batching import interleave, sorted_batches, windowed_batches  # noqa: E402
from dataprep.models.loop import SCHEDULES, Checkpoints, Loop, TrainingDiverged, train  # noqa: E402


def tiny_lm(seed: int = 0):
    from transformers import GPT2Config, GPT2LMHeadModel
    torch.manual_seed(seed)
    return GPT2LMHeadModel(GPT2Config(vocab_size=50, n_positions=16, n_embd=16, n_layer=1, n_head=2))


DATA = torch.randint(0, 50, (24, 8), generator=torch.Generator().manual_seed(1))


def epoch_batches(epoch: int) -> list[list[int]]:
    order = torch.randperm(len(DATA), generator=torch.Generator().manual_seed(epoch)).tolist()
    return [order[i:i + 4] for i in range(0, len(order), 4)]  # 6 batches an epoch


def loss_of(model):
    def loss(batch):
        x = DATA[batch]
        return model(input_ids=x, labels=x).loss, x.numel()
    return loss


def weights(model) -> dict:
    return {k: v.clone() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("name", ["linear", "cosine"])
def test_the_lora_schedules_are_transformers_own_formulas(name):
    from transformers import get_cosine_schedule_with_warmup, get_linear_schedule_with_warmup
    make = {"linear": get_linear_schedule_with_warmup, "cosine": get_cosine_schedule_with_warmup}[name]
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    theirs = make(opt, num_warmup_steps=7, num_training_steps=100).lr_lambdas[0]
    ours = SCHEDULES[name](7, 100)
    assert [ours(s) for s in range(110)] == [theirs(s) for s in range(110)]  # equal floats: same weights


def test_the_step_budget_decides_the_steps_and_accumulation_steps_once_per_n_batches():
    model = tiny_lm()
    state = train(model, epoch_batches, loss_of(model), Loop(total=5, lr=1e-3, warmup=1, grad_accum=2, log_every=0))
    assert (state.step, state.epoch, state.batch) == (5, 1, 4)  # 3 steps an epoch (6 batches / 2), then 2 more
    assert math.isfinite(state.loss) and not model.training


def test_a_nan_loss_stops_training_with_the_step_and_epoch():
    model = tiny_lm()

    def nan_at_third_batch(batch):
        loss, tokens = loss_of(model)(batch)
        return (loss * float("nan") if nan_at_third_batch.calls == 2 else loss), tokens
    nan_at_third_batch.calls = 0

    def counting(batch):
        out = nan_at_third_batch(batch)
        nan_at_third_batch.calls += 1
        return out
    with pytest.raises(TrainingDiverged, match="loss is nan at step 2, epoch 0"):
        train(model, epoch_batches, counting, Loop(total=10, lr=1e-3, warmup=1, log_every=0))


def test_early_stopping_keeps_the_best_evaluation_and_stops_after_patience(tmp_path):
    model = tiny_lm()
    scores = iter([0.5, 0.9, 0.7, 0.6, 0.95])
    snapshots = []

    def evaluate():
        snapshots.append(weights(model))
        return next(scores)
    cfg = Loop(total=100, lr=1e-2, warmup=1, eval_every=2, patience=2, log_every=0)
    state = train(model, epoch_batches, loss_of(model), cfg, evaluate=evaluate, checkpoints=Checkpoints(tmp_path))
    assert state.step == 8 and state.best == 0.9 and [h["score"] for h in state.history] == [0.5, 0.9, 0.7, 0.6]
    assert all(torch.equal(v, snapshots[1][k]) for k, v in model.state_dict().items())  # the best is loaded


def test_a_log_line_reports_step_loss_and_rate(caplog):
    model = tiny_lm()
    with caplog.at_level(logging.INFO, logger="dataprep.train"):
        train(model, epoch_batches, loss_of(model), Loop(total=4, lr=1e-3, warmup=1, log_every=2))
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2 and lines[0].startswith("step 2/4  epoch 0  loss ") and lines[1].startswith("step 4/4")
    assert "tokens/s" in lines[0]


class Interrupt(Exception):
    pass


def test_a_whole_model_resumes_exactly_from_its_checkpoint(tmp_path):
    cfg = Loop(total=9, lr=1e-2, warmup=2, save_every=2, log_every=0)
    full = tiny_lm()
    train(full, epoch_batches, loss_of(full), cfg)

    def stop_at_5(info):
        if info["step"] == 5:
            raise Interrupt
    cut = tiny_lm()
    with pytest.raises(Interrupt):
        train(cut, epoch_batches, loss_of(cut), cfg, checkpoints=Checkpoints(tmp_path), progress=stop_at_5)
    resumed = tiny_lm(seed=99)  # other initial weights: everything must come from the checkpoint
    state = train(resumed, epoch_batches, loss_of(resumed), cfg, checkpoints=Checkpoints(tmp_path))
    assert state.step == 9
    assert all(torch.equal(v, resumed.state_dict()[k]) for k, v in full.state_dict().items())


def test_sorted_batches_cut_by_size_or_by_a_padded_budget():
    lengths = [5, 1, 3, 3, 9, 2]
    assert sorted_batches(range(6), lengths, size=4) == [[1, 5, 2, 3], [0, 4]]
    assert sorted_batches(range(6), lengths, size=4, longest_first=True) == [[4, 0, 2, 3], [5, 1]]
    by_budget = sorted_batches(range(6), lengths, fits=lambda rows, longest: rows * longest <= 9)
    assert by_budget == [[1, 5, 2], [3], [0], [4]]  # 3 x 3 fits; 2 x 5 does not; 9 alone is allowed
    with pytest.raises(ValueError, match="one of size or fits"):
        sorted_batches(range(6), lengths)


def test_windowed_batches_group_lengths_inside_each_window_only():
    lengths = list(np.random.default_rng(0).integers(1, 100, 400))
    order = list(np.random.default_rng(1).permutation(400))
    windows = windowed_batches(order, lengths, 8, window=10)
    assert [len(w) for w in windows] == [10] * 5
    for start, window in zip(range(0, 400, 80), windows):
        assert sorted(i for b in window for i in b) == sorted(order[start:start + 80])
        flat = [lengths[i] for b in window for i in b]
        assert flat == sorted(flat)
    assert interleave(5) == [0, 4, 1, 3, 2]
