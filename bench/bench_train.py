"""The bundled trainer vs HF `Trainer` + PEFT with its default collator: same tiny model (the sample
pipeline's pretrain_lm), same data (its train/validation splits), same hyper-parameters, one run each in its
own process (so peak RSS is its own). Also against `Trainer` with length-grouped sampling.

Run alone: `python bench/bench_train.py MODE` prints one JSON line for MODE in ours|trainer|trainer_grouped.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pyarrow.compute as pc

ROOT = Path(__file__).resolve().parent.parent
PIPELINE = ROOT / "pipelines" / "zh_reviews.yaml"
HP = {"lr": 5e-4, "batch_size": 16, "epochs": 3, "r": 8, "alpha": 16, "dropout": 0.05, "max_len": 64,
      "warmup_ratio": 0.06, "seed": 13}


def run():
    inputs()  # build the sample pipeline's model and splits once, outside the timed runs
    ours, plain, grouped = (measure(mode) for mode in ("ours", "trainer", "trainer_grouped"))
    return [_result(ours, plain, "HF Trainer + PEFT, default collator"),
            _result(ours, grouped, "HF Trainer + PEFT, group_by_length")]


def _result(ours: dict, base: dict, name: str):
    from run import Result
    notes = (f"val macro-F1 {ours['macro_f1']:.3f} vs {base['macro_f1']:.3f}; peak RSS {ours['rss_mb']:.0f} MB "
             f"vs {base['rss_mb']:.0f} MB; loop {ours['seconds']:.1f} s vs {base['seconds']:.1f} s")
    return Result(f"LoRA seq_cls, {ours['examples']} examples x {HP['epochs']} epochs, vs {name}",
                  ours["samples_per_s"], base["samples_per_s"], "samples/s", name, notes=notes)


def measure(mode: str) -> dict:
    from run import run_python
    child = run_python([__file__, mode], ROOT)
    return {**json.loads(child.stdout.strip().splitlines()[-1]), "rss_mb": child.rss_mb}


def inputs():
    """(base model directory, splits table) from the sample pipeline, cached under runs/."""
    from dataprep.dag import load_pipeline
    from dataprep.runner import Runner
    os.chdir(ROOT)
    runner = Runner(load_pipeline(PIPELINE))
    runner.run(until="splits")
    runner.run(until="lm")
    return runner.model_dir("lm"), runner.output("splits")


def ours() -> dict:
    import tempfile
    import warnings

    from dataprep.train.lora import Data, LoraTrainParams, train
    base, table = inputs()
    data = Data.from_tables([table.filter(pc.not_equal(table["split"], "test"))], "seq_cls")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        p = LoraTrainParams(base_model=str(base), **HP)
    with tempfile.TemporaryDirectory() as out:
        train(p, data, Path(out))
        metrics = json.loads((Path(out) / "metrics.json").read_text())
        seconds = json.loads((Path(out) / "efficiency.json").read_text())["train_seconds"]
    n = len(data.inputs["train"])
    return {"samples_per_s": n * HP["epochs"] / seconds, "seconds": seconds, "examples": n,
            "macro_f1": metrics["macro_f1"]}


def trainer(grouped: bool) -> dict:
    import tempfile

    import numpy as np
    import torch
    from datasets import Dataset
    from peft import LoraConfig, TaskType, get_peft_model
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        Trainer,
        TrainingArguments,
    )

    from dataprep.train.evaluate import classification
    base, table = inputs()
    labels = sorted(set(table.filter(pc.equal(table["split"], "train"))["label"].to_pylist()))
    tok = AutoTokenizer.from_pretrained(base)

    def dataset(split: str) -> Dataset:
        part = table.filter(pc.equal(table["split"], split))
        enc = tok(part["text"].to_pylist(), truncation=True, max_length=HP["max_len"])
        return Dataset.from_dict({"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"],
                                  "labels": [labels.index(y) for y in part["label"].to_pylist()]})

    torch.set_num_threads(1)  # as the bundled trainer runs (threads: 1, its default): same cores for both
    torch.manual_seed(HP["seed"])
    model = AutoModelForSequenceClassification.from_pretrained(base, num_labels=len(labels))
    model.config.pad_token_id = tok.pad_token_id
    model = get_peft_model(model, LoraConfig(task_type=TaskType.SEQ_CLS, r=HP["r"], lora_alpha=HP["alpha"],
                                             lora_dropout=HP["dropout"], fan_in_fan_out=True))
    train_set, val_set = dataset("train"), dataset("validation")

    def metrics(pred):
        guess = np.argmax(pred.predictions, -1)
        m = classification([labels[i] for i in pred.label_ids], [labels[i] for i in guess], labels)
        return {"macro_f1": m["macro_f1"]}

    with tempfile.TemporaryDirectory() as out:
        args = TrainingArguments(
            output_dir=out, learning_rate=HP["lr"], per_device_train_batch_size=HP["batch_size"],
            per_device_eval_batch_size=HP["batch_size"], num_train_epochs=HP["epochs"],
            warmup_steps=HP["warmup_ratio"],  # v5: a float below 1 is a share of the steps
            max_grad_norm=1.0, seed=HP["seed"], eval_strategy="epoch",
            save_strategy="no", report_to=[], logging_strategy="no", disable_tqdm=True, use_cpu=True,
            train_sampling_strategy="group_by_length" if grouped else "random")
        t = Trainer(model=model, args=args, train_dataset=train_set, eval_dataset=val_set,
                    data_collator=DataCollatorWithPadding(tok), compute_metrics=metrics)
        result = t.train()
        final = t.evaluate()
    return {"samples_per_s": result.metrics["train_samples_per_second"], "seconds": result.metrics["train_runtime"],
            "examples": len(train_set), "macro_f1": final["eval_macro_f1"]}


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    mode = sys.argv[1]
    print(json.dumps(ours() if mode == "ours" else trainer(grouped=mode == "trainer_grouped")))
