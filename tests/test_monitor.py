"""Monitoring a fine-tune (dataprep/train/monitor.py): the JSONL log always, TensorBoard and W&B (offline) on
request, a resumed run's log equal to an uninterrupted one's, and the cache vouching only for the log."""
from __future__ import annotations

import json
import warnings

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("peft")

from test_train import Interrupt, base_model, cls_rows, params  # noqa: E402,F401  (base_model: a fixture)

from dataprep.train.lora import Data, LoraTrainParams, train  # noqa: E402
from dataprep.train.monitor import read_log  # noqa: E402


def test_every_step_and_evaluation_goes_to_the_log(base_model, tmp_path):  # noqa: F811
    train(params(base_model, epochs=2), Data.from_tables([cls_rows()], "auto"), tmp_path / "out")
    log = read_log(tmp_path / "out" / "train_log.jsonl")
    steps = [r for r in log if r["event"] == "step"]
    evals = [r for r in log if r["event"] == "eval"]
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert [r["step"] for r in steps] == list(range(1, metrics["train"]["steps"] + 1))
    assert all(set(r) == {"event", "step", "epoch", "loss", "lr", "grad_norm"} for r in steps)  # no timings
    assert [e["score"] for e in evals] == [h["score"] for h in metrics["train"]["selection"]]
    assert steps[0]["lr"] < steps[1]["lr"]  # warmup


def test_a_resumed_runs_log_is_the_uninterrupted_runs_log(base_model, tmp_path):  # noqa: F811
    data = Data.from_tables([cls_rows()], "auto")
    p = params(base_model, epochs=2, grad_accum=2, save_every=2)
    train(p, data, tmp_path / "full", checkpoints=tmp_path / "ck_full")

    def stop_at_step_5(info):
        if info["event"] == "step" and info["step"] == 5:
            raise Interrupt
    with pytest.raises(Interrupt):
        train(p, data, tmp_path / "cut", checkpoints=tmp_path / "ck_cut", progress=stop_at_step_5)
    train(p, data, tmp_path / "cut", checkpoints=tmp_path / "ck_cut")
    full, resumed = (tmp_path / "full" / "train_log.jsonl").read_bytes(), (tmp_path / "cut" / "train_log.jsonl")
    assert resumed.read_bytes() == full


def test_tensorboard_and_wandb_offline_write_beside_the_adapter(base_model, tmp_path, monkeypatch):  # noqa: F811
    pytest.importorskip("tensorboard")
    pytest.importorskip("wandb")
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("WANDB_SILENT", "true")
    train(params(base_model, epochs=1, report_to=["tensorboard", "wandb"]), Data.from_tables([cls_rows()], "auto"),
          tmp_path / "out", checkpoints=tmp_path / "ck")
    monitor = tmp_path / "out" / "monitor"
    assert list((monitor / "tensorboard").glob("events.out.tfevents.*"))
    assert list((monitor / "wandb").glob("offline-run-*")), sorted(p.name for p in monitor.rglob("*"))[:20]


def test_an_unknown_or_missing_reporter_fails_before_training(base_model):  # noqa: F811
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match="unknown reporter 'mlflow'"):
            LoraTrainParams(base_model=str(base_model), report_to=["mlflow"])


def test_the_cache_vouches_for_the_log_and_not_for_the_event_files(tmp_path):
    from dataprep.cache import _describe
    (tmp_path / "model" / "monitor" / "tensorboard").mkdir(parents=True)
    (tmp_path / "model" / "monitor" / "tensorboard" / "events.out.tfevents.1").write_bytes(b"times")
    (tmp_path / "model" / "train_log.jsonl").write_text("{}\n")
    assert sorted(_describe(tmp_path)) == ["model/train_log.jsonl"]
