"""The adapter in use: load a train_lora output directory, predict on new rows, score it on labelled ones.

`Adapter.load(DIR)` needs only what train_lora wrote there: label_map.json (the task and its labels), the
task model's config.json, the tokenizer, the adapter, and the base (base/, or the hub id or path the adapter
config records; `base=` overrides it). Rows are batched longest first (models/batching.py), so a batch too
big for memory fails at once; each row's result is the same whatever its batch-mates, up to float rounding.

Predictions: `cls` rows get `pred_label` and `probs` (each label's probability); `bio` rows get `pred_tags`,
one per input token and always valid BIO2 (an `I-` that continues nothing starts an entity; tokens cut off by
`max_len` are `O`, counted in `truncated_tokens`); `causal_lm` adapters give `generated`, the greedy
continuation of the text.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from dataprep.errors import ConfigError
from dataprep.models.batching import sorted_batches
from dataprep.models.compute import TorchCompute, torch_for
from dataprep.models.load import device, load_model, load_tokenizer, max_positions, pad, quiet_peft, texts_of
from dataprep.registry import SplitScoped, param, stage
from dataprep.train.tasks import TASKS, Task, word_heads

PIECE_LIMIT = 512  # when train_config.json is missing: the most pieces a row is given


@dataclass
class Adapter:
    model: object
    tok: object
    task: Task
    labels: list[str]
    max_len: int
    directory: Path

    @classmethod
    def load(cls, directory: str | Path, base: str | None = None) -> Adapter:
        """The adapter in `directory`, on its base, ready for inference (eval mode, on the current device)."""
        import transformers
        from peft import PeftModel

        directory = Path(directory)
        if not (directory / "adapter_config.json").is_file() or not (directory / "label_map.json").is_file():
            raise ConfigError(f"{directory} is not an adapter directory (train_lora writes adapter_config.json "
                              "and label_map.json there)")
        label_map = json.loads((directory / "label_map.json").read_text())
        task = TASKS[label_map["task"]]
        tok = load_tokenizer(str(directory))
        config = transformers.AutoConfig.from_pretrained(directory) if (directory / "config.json").is_file() else None
        kwargs = {"config": config} if config is not None else {}
        base_model = load_model(base or base_of(directory), getattr(transformers, task.head), **kwargs)
        with quiet_peft():
            model = PeftModel.from_pretrained(base_model, str(directory)).to(device()).eval()
        trained = json.loads((directory / "train_config.json").read_text()) \
            if (directory / "train_config.json").is_file() else {}
        max_len = max_positions(model.config, trained.get("max_len", PIECE_LIMIT))
        return cls(model, tok, task, list(label_map["labels"]), max_len, directory)

    # --- inference -------------------------------------------------------------------------------------

    def predict_table(self, table: pa.Table, batch_size: int = 32) -> pa.Table:
        """`table` with the prediction columns appended (see the module doc)."""
        if self.task.name == "causal_lm":
            return table.append_column("generated", pa.array(self.generate(texts_of(table), batch_size),
                                                             pa.string()))
        if self.task.words:
            tags, truncated = self.tag(_tokens_of(table), batch_size)
            table = table.append_column("pred_tags", pa.array(tags, pa.list_(pa.string())))
            return table.append_column("truncated_tokens", pa.array(truncated, pa.int64()))
        probs = self.probabilities(texts_of(table), batch_size)
        labels = [self.labels[i] for i in probs.argmax(1)] if len(probs) else []
        struct = pa.StructArray.from_arrays([pa.array(probs[:, k], pa.float64()) for k in range(len(self.labels))],
                                            names=self.labels) if len(probs) else \
            pa.array([], pa.struct([(name, pa.float64()) for name in self.labels]))
        return table.append_column("pred_label", pa.array(labels, pa.string())).append_column("probs", struct)

    def logits(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        """Classification logits, one row per text, in input order."""
        import torch
        ids = self.tok(texts, truncation=True, max_length=self.max_len)["input_ids"]
        out = np.zeros((len(texts), len(self.labels)), dtype=np.float64)
        with torch.inference_mode():
            for batch in sorted_batches(range(len(ids)), [len(x) for x in ids], size=batch_size, longest_first=True):
                x, mask = pad([ids[i] for i in batch], self.tok.pad_token_id)
                out[batch] = self.model(input_ids=x, attention_mask=mask).logits.float().cpu().numpy()
        return out

    def probabilities(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        logits = self.logits(texts, batch_size)
        shifted = np.exp(logits - logits.max(1, keepdims=True)) if len(logits) else logits
        return shifted / shifted.sum(1, keepdims=True) if len(logits) else logits

    def tag(self, sentences: list[list[str]], batch_size: int = 32) -> tuple[list[list[str]], list[int]]:
        """BIO2 tags per token of each sentence, and how many of its tokens were past max_len (tagged O)."""
        import torch

        from dataprep.stages.bio import bio2, spans
        enc = self.tok(sentences, is_split_into_words=True, truncation=True, max_length=self.max_len)
        ids = enc["input_ids"]
        tags: list[list[str]] = [[] for _ in sentences]
        truncated = [0] * len(sentences)
        with torch.inference_mode():
            for batch in sorted_batches(range(len(ids)), [len(x) for x in ids], size=batch_size, longest_first=True):
                x, mask = pad([ids[i] for i in batch], self.tok.pad_token_id)
                guesses = self.model(input_ids=x, attention_mask=mask).logits.argmax(-1).tolist()
                for i, guess in zip(batch, guesses):
                    heads = word_heads(enc.word_ids(i), self.tok.convert_ids_to_tokens(ids[i]))
                    words = ["O"] * len(sentences[i])
                    for k, w in heads.items():
                        words[w] = self.labels[guess[k]]
                    truncated[i] = len(sentences[i]) - len(set(heads.values()))
                    tags[i] = bio2(spans(words, "IOB2", repair=True), len(words))
        return tags, truncated

    def token_logits(self, sentences: list[list[str]], batch_size: int = 32) -> list[np.ndarray]:
        """Per sentence, the logits of its real pieces (pieces x labels), padding left out."""
        import torch
        ids = self.tok(sentences, is_split_into_words=True, truncation=True, max_length=self.max_len)["input_ids"]
        out: list[np.ndarray] = [np.zeros((0, len(self.labels)))] * len(sentences)
        with torch.inference_mode():
            for batch in sorted_batches(range(len(ids)), [len(x) for x in ids], size=batch_size, longest_first=True):
                x, mask = pad([ids[i] for i in batch], self.tok.pad_token_id)
                logits = self.model(input_ids=x, attention_mask=mask).logits.float().cpu().numpy()
                for row, i in enumerate(batch):
                    out[i] = logits[row, :len(ids[i])]
        return out

    def generate(self, texts: list[str], batch_size: int = 8, max_new_tokens: int = 32) -> list[str]:
        """The greedy continuation of each text (causal_lm adapters). Left-padded: a causal LM continues from
        the last position, which right padding would fill with pad tokens."""
        import torch
        out: list[str] = [""] * len(texts)
        ids = self.tok(texts, truncation=True, max_length=self.max_len)["input_ids"]
        with torch.inference_mode():
            for batch in sorted_batches(range(len(ids)), [len(x) for x in ids], size=batch_size, longest_first=True):
                width = max(len(ids[i]) for i in batch)
                pad_id = self.tok.pad_token_id
                x = torch.tensor([[pad_id] * (width - len(ids[i])) + ids[i] for i in batch], device=device())
                mask = (torch.arange(width, device=device())[None, :] >= torch.tensor(
                    [width - len(ids[i]) for i in batch], device=device())[:, None]).long()
                made = self.model.generate(input_ids=x, attention_mask=mask, max_new_tokens=max_new_tokens,
                                           do_sample=False, pad_token_id=pad_id)
                for i, row in zip(batch, made[:, width:].tolist()):
                    out[i] = self.tok.decode(row, skip_special_tokens=True)
        return out

    # --- scoring ---------------------------------------------------------------------------------------

    def evaluate(self, table: pa.Table, batch_size: int = 32) -> dict:
        """The task's metrics on labelled rows (labels the adapter never saw count as wrong: `unseen_labels`)."""
        from dataprep.train.lora import Data, evaluate
        inputs, targets = self.task.columns(table)
        data = Data(self.task, {"test": inputs}, {"test": targets}, self.labels)
        metrics = evaluate(self.model, self.tok, data, "test", data.encode(self.tok, "test", self.max_len), batch_size)
        known = set(self.labels)
        seen = [t for row in targets for t in row] if self.task.words else targets
        return {**metrics, "rows": table.num_rows, "unseen_labels": sorted({t for t in seen if t not in known})}


def base_of(directory: Path) -> str:
    """The base the adapter records: base/ beside it (copy_base), else the hub id or path as written."""
    recorded = json.loads((directory / "adapter_config.json").read_text())["base_model_name_or_path"]
    beside = directory / recorded
    return str(beside) if not Path(recorded).is_absolute() and beside.is_dir() else recorded


def _tokens_of(table: pa.Table) -> list[list[str]]:
    if "tokens" not in table.column_names:
        raise ConfigError("this adapter tags tokens (token_cls): give bio rows, with a `tokens` column")
    return [t or [] for t in table.column("tokens").to_pylist()]


# ------------------------------------------------------------------------------------------------ files

PREPARE = {"cls": "normalize", "bio": "to_bio2"}  # what training rows went through before the trainer


def read_prepared(path: str, reader: str | None = None, read_params: dict | None = None,
                  prepare_params: dict | None = None) -> tuple[pa.Table, pa.Table]:
    """A file's rows as training rows were prepared: its reader, then `normalize` (cls rows) or `to_bio2`
    (bio rows) with `prepare_params` (default: each stage's defaults; a pipeline that normalized otherwise
    should score through its own nodes and the `predict` / `evaluate` stages). (rows, rejects)."""
    import tempfile

    from dataprep.batch import input_reader
    from dataprep.dag import parse_pipeline
    from dataprep.runner import Runner

    name, defaults = input_reader(path, reader)
    nodes = {"input": {"uses": name, "with": {**defaults, "path": path, **(read_params or {})}}}
    kind = parse_pipeline({"name": "read", "nodes": nodes}).nodes["input"].kind
    if kind in PREPARE:
        nodes["prepared"] = {"uses": PREPARE[kind], "input": "input", "with": prepare_params or {}}
    with tempfile.TemporaryDirectory(prefix="dataprep-read-") as cache:
        runner = Runner(parse_pipeline({"name": "read", "nodes": nodes}), cache)
        reports = runner.run()
        # Parquet parts are read into memory, so the tables outlive the scratch cache
        return runner.output(reports[-1].node), pa.concat_tables([runner.rejects(r.node) for r in reports])


# ------------------------------------------------------------------------------------------- DAG stages

@dataclass(frozen=True)
class PredictParams(SplitScoped, TorchCompute):
    adapter: str | dict[str, str] | None = param(None, "a train_lora node {node: NAME} or an adapter directory",
                                                 model_ref=True)
    # In the key, not a knob: which rows share a forward pass changes their padding, and padding the floats.
    batch_size: int = param(32, "rows per forward pass")

    def __post_init__(self):
        super().__post_init__()
        if self.adapter is None:
            raise ValueError("needs an adapter, e.g. adapter: {node: adapter}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {self.batch_size}")


@stage("predict", version=1, kind="model", params=PredictParams, consumes=("cls", "bio"))
class PredictRows:
    """Add the adapter's predictions to each row: `pred_label` and `probs` (classification), `pred_tags` and
    `truncated_tokens` (NER), as `dataprep predict` writes them. After `split`, say which rows
    (`only_split: test`); the others pass through without the columns.

    Drop reasons: none.
    """

    def __init__(self, p: PredictParams):
        torch_for(p)
        self.p, self.adapter = p, Adapter.load(p.adapter)

    def __call__(self, table: pa.Table) -> pa.Table:
        return self.adapter.predict_table(table, self.p.batch_size)


@dataclass(frozen=True)
class EvaluateParams(PredictParams):
    robustness: bool = param(False, "also score the seeded perturbation suite (dataprep/robustness.py)")
    seed: int = param(13, "the perturbations' seed")


@stage("evaluate", version=1, kind="build", params=EvaluateParams, consumes=("cls", "bio"), produces="model")
def evaluate_rows(batches, p: EvaluateParams, out_dir: Path) -> dict:
    """Score the adapter on the input rows (after `split`: `only_split: test`, or a held-out file's rows) and
    write metrics.json and report.md to the node's directory; with `robustness`, the perturbation table too.

    Drop reasons: none (a build stage outputs a directory, not rows).
    """
    torch_for(p)
    adapter = Adapter.load(p.adapter)
    table = pa.concat_tables(list(batches()), promote_options="permissive")
    metrics = adapter.evaluate(table, p.batch_size)
    if p.robustness:
        from dataprep.robustness import robustness
        metrics["robustness"] = robustness(adapter, table, p.seed, p.batch_size)
    out_dir.mkdir(parents=True)
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2, ensure_ascii=False))
    (out_dir / "report.md").write_text(_report(metrics, adapter.task))
    key = "macro_f1" if "macro_f1" in metrics else "f1" if "f1" in metrics else "perplexity"
    return {"rows": table.num_rows, f"{key}_x1000": round(metrics[key] * 1000)}


def _report(m: dict, task: Task) -> str:
    lines = [f"# Evaluation — {task.name}", "", f"{m['rows']} rows.", "", *task.report({**m, "baselines": {}})]
    if m.get("unseen_labels"):
        lines += ["", f"Labels the adapter never saw: {', '.join(m['unseen_labels'])}."]
    if "robustness" in m:
        r = m["robustness"]
        lines += ["", f"| perturbation | {r['metric']} | drop | rows changed |", "|---|---|---|---|",
                  f"| clean | {r['clean']:.3f} | | |"]
        lines += [f"| {name} | {e[r['metric']]:.3f} | {e['drop']:+.3f} | {e['rows_changed']} |"
                  for name, e in r["perturbations"].items()]
    return "\n".join(lines) + "\n"
