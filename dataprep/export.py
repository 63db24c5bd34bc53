"""Export an adapter for serving without dataprep, PEFT or torch: ONNX (fp32), and dynamic INT8 beside it.

`export(ADAPTER, OUT, quantize="int8")` (and `dataprep export ADAPTER -o OUT --format onnx --quantize int8`):

1. load the train_lora directory (predict.Adapter.load) and merge the LoRA update into the base weights
   (PEFT `merge_and_unload`): one plain transformers model, no adapter indirection left;
2. export it with torch.onnx's TorchScript exporter (`dynamo=False`: it needs no onnxscript and exports
   the sample model in seconds where the dynamo exporter took ~40 s), opset 17, batch and sequence axes
   dynamic. GPT-2's Conv1D projections are rewritten as the equivalent nn.Linear first: Conv1D exports as
   `Gemm`, which ONNX Runtime's dynamic quantization leaves in fp32; Linear on a 3-D input is `MatMul`;
3. with `quantize="int8"`, quantize the weights of every MatMul (and the embedding Gather) to INT8 with
   ONNX Runtime's `quantize_dynamic` (activations are quantized at run time, no calibration data);
4. check the files against torch on real shapes before they are committed, and write what was found in
   `check.json`: the merged torch model's logits against the adapter's (the merge), ONNX fp32's against the
   merged model's (must be within `atol + rtol * |torch|`, numpy.allclose's rule, or nothing is written), and
   how many rows the INT8 model predicts the same as the merged model (the goal is >= 99%; below it the
   export is still written and check.json and the command say how many rows differ).

What is checked: rows from a file (`check_rows`, e.g. the adapter's test split read with
predict.read_prepared) or else SAMPLED_ROWS texts of tokens drawn from the tokenizer's own vocabulary with a
fixed seed, lengths spread from 1 to max_len pieces. They run through torch and ONNX Runtime in the same
length-grouped, right-padded batches, so the batch and sequence axes are exercised at many shapes, none of them
the shape the model was traced with. With labelled rows, each variant's accuracy (or entity F1) is recorded.

The export directory stands alone: model.onnx (+ model.int8.onnx), the tokenizer (its model_max_length set to
the adapter's max_len, so `truncation=True` cuts where training did), config.json (id2label, pad token),
label_map.json (as train_lora wrote it), check.json and a README.md saying how to run it with onnxruntime.
seq_cls and token_cls adapters are exported; causal_lm is refused (generation needs a KV-cache graph).
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from dataprep.errors import ConfigError, DataprepError

if TYPE_CHECKING:  # serving an export (OnnxPredictor) needs numpy and onnxruntime, not pyarrow
    import pyarrow as pa

OPSET = 17
# fp32 ONNX vs fp32 torch logits: |onnx - torch| <= ATOL + RTOL * |torch| (numpy.allclose). The same fp32
# arithmetic in another order (ONNX Runtime's kernels, fused LayerNorm/Softmax) moves a logit by a few units of
# its last place per layer: ~1e-7 to 1e-6 on the models here. 1e-4 leaves two orders of margin for deeper and
# wider bases and still fails what a wrong export does (a mask or padding traced as a constant, a head lost
# in the merge, dropout left on): those move logits by 1e-2 and more.
ATOL = RTOL = 1e-4
AGREEMENT_GOAL = 0.99       # share of checked rows on which INT8 must predict what fp32 torch predicts
SAMPLED_ROWS = 50           # rows checked when no file is given (50: batches of 32 and 18, two batch sizes)
SAMPLE_SEED = 0
FP32, INT8 = "model.onnx", "model.int8.onnx"
FORMATS = ("onnx",)
QUANTIZATIONS = ("int8",)


class ExportError(DataprepError):
    """The export does not do what the adapter does (its logits are outside the tolerance), or cannot be made."""


# ------------------------------------------------------------------------------------------------- rows

@dataclass
class Rows:
    """Encoded rows: piece ids, and for token_cls the piece that carries each word's tag (predict.word_heads)."""
    ids: list[list[int]]
    heads: list[list[tuple[int, int]]] | None  # token_cls: (piece position, word index), in word order
    gold: list | None                          # labels (seq_cls) or tag lists (token_cls); None if unlabelled
    source: dict                               # what these rows are, for check.json


def encode_rows(tok, task, max_len: int, table: pa.Table | None = None, source: str | None = None) -> Rows:
    """`table`'s rows (cls: text + label; bio: tokens + tags; labels optional), or SAMPLED_ROWS texts made
    from the tokenizer's vocabulary when `table` is None."""
    from dataprep.models.load import texts_of
    from dataprep.train.tasks import word_heads
    if table is None:
        inputs, gold = _sampled_inputs(tok, task.words, max_len), None
        what = {"source": "sampled", "rows": len(inputs), "seed": SAMPLE_SEED,
                "how": f"{len(inputs)} sequences of pieces drawn uniformly from the tokenizer's vocabulary "
                       f"(special tokens excluded), decoded to text: "
                       + (f"one word per piece, 1 to {max(max_len // 2, 1)} words" if task.words else
                          f"1 to {max_len} pieces")}
    elif task.words:
        if "tokens" not in table.column_names:
            raise ConfigError("this adapter tags tokens (token_cls): the check file must hold bio rows, with a "
                              "`tokens` column")
        inputs = [t or [] for t in table.column("tokens").to_pylist()]
        gold = table.column("tags").to_pylist() if "tags" in table.column_names else None
        what = {"source": "file", "file": source, "rows": len(inputs), "labelled": gold is not None}
    else:
        inputs = texts_of(table)
        gold = table.column("label").to_pylist() if "label" in table.column_names else None
        what = {"source": "file", "file": source, "rows": len(inputs), "labelled": gold is not None}
    if not inputs:
        raise ConfigError(f"no rows to check the export on{f' in {source}' if source else ''}")
    if not task.words:
        return Rows(tok(inputs, truncation=True, max_length=max_len)["input_ids"], None, gold, what)
    enc = tok(inputs, is_split_into_words=True, truncation=True, max_length=max_len)
    ids = enc["input_ids"]
    heads = [sorted(word_heads(enc.word_ids(i), tok.convert_ids_to_tokens(ids[i])).items(), key=lambda kw: kw[1])
             for i in range(len(ids))]
    return Rows(ids, heads, gold, what)


def _sampled_inputs(tok, words: bool, max_len: int) -> list:
    rng = np.random.default_rng(SAMPLE_SEED)
    special = set(tok.all_special_ids)
    vocab = np.array([i for i in range(len(tok)) if i not in special])
    out = []
    longest = max(max_len // 2, 1) if words else max_len  # a word is often two pieces: '▁' and its own
    for n in np.linspace(1, longest, SAMPLED_ROWS).round().astype(int):
        pieces = [tok.decode([int(i)]) for i in rng.choice(vocab, n)]
        if words:
            out.append([p.strip() or "x" for p in pieces])
        else:
            out.append("".join(pieces).strip() or "x")
    return out


# ----------------------------------------------------------------------------------------------- engines

Forward = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (input_ids, attention_mask) int64 -> logits fp32


def torch_forward(model) -> Forward:
    import torch

    def forward(ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            out = model(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask))
        return out.logits.float().numpy()
    return forward


def onnx_session(path: str | Path, threads: int = 1):
    """An ONNX Runtime CPU session on `threads` threads (1, as every torch stage here runs by default)."""
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = threads
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def onnx_forward(session) -> Forward:
    def forward(ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return session.run(["logits"], {"input_ids": ids, "attention_mask": mask})[0]
    return forward


def padded(seqs: list[list[int]], pad_id: int) -> tuple[np.ndarray, np.ndarray]:
    """Right-padded int64 input ids and attention mask, as the model was trained with."""
    width = max(map(len, seqs))
    ids = np.full((len(seqs), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(seqs), width), dtype=np.int64)
    for i, s in enumerate(seqs):
        ids[i, :len(s)], mask[i, :len(s)] = s, 1
    return ids, mask


def logits_of(rows: Rows, forward: Forward, pad_id: int, batch_size: int) -> tuple[list[np.ndarray], set]:
    """Each row's logits (seq_cls: [labels]; token_cls: [its pieces, labels], padding cut off), in row order,
    from length-grouped batches; and the (batch, sequence) shapes that ran."""
    from dataprep.models.batching import sorted_batches
    out: list[np.ndarray] = [None] * len(rows.ids)  # type: ignore[list-item]
    shapes = set()
    for batch in sorted_batches(range(len(rows.ids)), [len(x) for x in rows.ids], size=batch_size,
                                longest_first=True):
        ids, mask = padded([rows.ids[i] for i in batch], pad_id)
        shapes.add(ids.shape)
        logits = forward(ids, mask)
        for k, i in enumerate(batch):
            out[i] = logits[k] if rows.heads is None else logits[k, :len(rows.ids[i])]
    return out, shapes


def predictions(rows: Rows, logits: list[np.ndarray], labels: list[str]) -> list:
    """The label of each row (seq_cls) or the tag of each word the model saw (token_cls; words cut off by
    max_len are left out, as the trainer scores them)."""
    if rows.heads is None:
        return [labels[int(x.argmax())] for x in logits]
    return [[labels[int(x[k].argmax())] for k, _ in heads] for x, heads in zip(logits, rows.heads)]


def scores(rows: Rows, predicted: list, labels: list[str]) -> dict | None:
    """Accuracy and macro-F1 (seq_cls) or strict entity P/R/F1 (token_cls) on labelled rows, as the trainer
    computes them; None for unlabelled rows."""
    from dataprep.train import evaluate as E
    if rows.gold is None:
        return None
    if rows.heads is None:
        m = E.classification(rows.gold, predicted, labels)
        return {"accuracy": m["accuracy"], "macro_f1": m["macro_f1"], "n": m["n"]}
    gold = [[tags[w] if w < len(tags) else "O" for _, w in heads] for tags, heads in zip(rows.gold, rows.heads)]
    m = E.entities(gold, predicted)
    return {"precision": m["precision"], "recall": m["recall"], "f1": m["f1"], "n": len(gold)}


def max_diff(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    return max(float(np.abs(x.astype(np.float64) - y).max()) if x.size else 0.0 for x, y in zip(a, b))


def within(a: list[np.ndarray], reference: list[np.ndarray], atol: float, rtol: float) -> bool:
    return all(np.allclose(x, y, atol=atol, rtol=rtol) for x, y in zip(a, reference))


# ------------------------------------------------------------------------------------------------ export

def export(adapter_dir: str | Path, out_dir: str | Path, fmt: str = "onnx", quantize: str | None = None,
           check_rows: pa.Table | None = None, check_source: str | None = None, base: str | None = None,
           batch_size: int = 32, atol: float = ATOL, rtol: float = RTOL, overwrite: bool = False,
           threads: int = 1) -> dict:
    """Export the adapter in `adapter_dir` to `out_dir` (see the module doc); returns check.json's content.
    Raises ExportError, writing nothing, when ONNX fp32 or the merge is not within the tolerance."""
    import torch

    from dataprep.predict import Adapter
    if fmt not in FORMATS:
        raise ConfigError(f"unknown export format {fmt!r} (known: {', '.join(FORMATS)})")
    if quantize is not None and quantize not in QUANTIZATIONS:
        raise ConfigError(f"unknown quantization {quantize!r} (known: {', '.join(QUANTIZATIONS)})")
    out_dir = Path(out_dir)
    _check_destination(out_dir, overwrite)
    label_map = Path(adapter_dir) / "label_map.json"
    task = json.loads(label_map.read_text()).get("task") if label_map.is_file() else None
    if task == "causal_lm":  # refused before anything loads
        raise ConfigError(f"{adapter_dir}: export supports seq_cls and token_cls adapters, not causal_lm (a causal "
                          "LM generates step by step: its export needs a KV-cache graph)")
    adapter = Adapter.load(adapter_dir, base)  # not an adapter directory: its one-line error
    tok, labels, max_len = adapter.tok, adapter.labels, adapter.max_len
    pad_id = tok.pad_token_id
    rows = encode_rows(tok, adapter.task, max_len, check_rows, check_source)
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    scratch = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.partial-", dir=out_dir.parent))
    try:
        unmerged, _ = logits_of(rows, torch_forward(adapter.model), pad_id, batch_size)
        from dataprep.models.load import quiet_peft
        with quiet_peft():
            merged_model = adapter.model.merge_and_unload().eval()
        merged, _ = logits_of(rows, torch_forward(merged_model), pad_id, batch_size)
        to_onnx(merged_model, scratch / FP32, pad_id, tok, adapter.task.words)
        fp32, shapes = logits_of(rows, onnx_forward(onnx_session(scratch / FP32, threads)), pad_id, batch_size)
        check = {"adapter": str(adapter_dir), "task": adapter.task.name, "format": fmt, "opset": OPSET,
                 "files": [FP32], "max_len": max_len, "rows": rows.source,
                 **_check_fp32(rows, labels, unmerged, merged, fp32, atol, rtol, shapes), "int8": None}
        for name in ("merge", "fp32"):  # before quantizing: a wrong fp32 graph fails fast
            if not check[name]["ok"]:
                raise ExportError(f"{adapter_dir}: {_failure(name, check[name])}; nothing written to {out_dir}")
        int8 = None
        if quantize == "int8":
            quantize_int8(scratch / FP32, scratch / INT8)
            int8 = logits_of(rows, onnx_forward(onnx_session(scratch / INT8, threads)), pad_id, batch_size)[0]
            check["files"].append(INT8)
            check["int8"] = _check_int8(rows, labels, merged, int8)
        if rows.gold is not None:
            check["scores"] = {name: scores(rows, predictions(rows, logits, labels), labels)
                               for name, logits in (("torch_adapter", unmerged), ("torch_merged", merged),
                                                    ("onnx_fp32", fp32), ("onnx_int8", int8)) if logits is not None}
        check["versions"] = _versions()
        _write_beside(scratch, adapter, merged_model, check)
        umask = os.umask(0)
        os.umask(umask)
        scratch.chmod(0o777 & ~umask)  # mkdtemp's 0700 would follow the directory into place
        if out_dir.exists():
            shutil.rmtree(out_dir)
        scratch.rename(out_dir)
    finally:
        torch.set_num_threads(previous_threads)
        if scratch.exists():
            shutil.rmtree(scratch)
    return check


def _check_destination(out_dir: Path, overwrite: bool) -> None:
    """OUT must be new, empty, or (with overwrite) an earlier export: never a directory of other files."""
    if not out_dir.parent.is_dir():
        raise ConfigError(f"output directory {str(out_dir.parent)!r} does not exist")
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        if not out_dir.is_dir() or not (out_dir / "check.json").is_file():
            raise ConfigError(f"{out_dir} exists and is not an earlier export (no check.json): choose a new "
                              "directory")
        if not overwrite:
            raise ConfigError(f"{out_dir} holds an earlier export: --overwrite replaces it")


def _failure(name: str, c: dict) -> str:
    what = "merged torch vs the adapter" if name == "merge" else "ONNX fp32 vs merged torch"
    return (f"{what}: max |logit diff| {c['max_abs_logit_diff']:.3g} is outside the tolerance "
            f"(atol {c['tolerance']['atol']:g} + rtol {c['tolerance']['rtol']:g} x |torch|)")


def agreement(rows: Rows, labels: list[str], logits: list[np.ndarray], reference: list[np.ndarray]) -> dict:
    """On how many rows `logits` predict what `reference` predicts (token_cls: every word's tag)."""
    same = [g == r for g, r in zip(predictions(rows, logits, labels), predictions(rows, reference, labels))]
    differ = [i for i, ok in enumerate(same) if not ok]
    return {"agree": len(same) - len(differ), "rows": len(same), "share": (len(same) - len(differ)) / len(same),
            "differ": len(differ), "differing_rows": differ[:20]}


def _check_fp32(rows: Rows, labels: list[str], unmerged, merged, fp32, atol: float, rtol: float,
                shapes: set) -> dict:
    tolerance = {"atol": atol, "rtol": rtol, "rule": "|x - torch| <= atol + rtol * |torch| for every logit"}
    return {
        "merge": {"what": "merged torch model (merge_and_unload) vs the adapter on its base (PEFT)",
                  "max_abs_logit_diff": max_diff(merged, unmerged), "tolerance": tolerance,
                  "ok": within(merged, unmerged, atol, rtol)},
        "fp32": {"what": f"{FP32} (ONNX Runtime) vs the merged torch model, fp32 both",
                 "max_abs_logit_diff": max_diff(fp32, merged), "tolerance": tolerance,
                 "ok": within(fp32, merged, atol, rtol), **agreement(rows, labels, fp32, merged),
                 "shapes_run": sorted([list(s) for s in shapes])},
    }


def _check_int8(rows: Rows, labels: list[str], merged, int8) -> dict:
    out = {"what": f"{INT8} predictions vs the merged torch model's, row by row (token_cls: every word's tag)",
           "goal_share": AGREEMENT_GOAL, **agreement(rows, labels, int8, merged),
           "max_abs_logit_diff": max_diff(int8, merged)}
    return {**out, "ok": out["share"] >= AGREEMENT_GOAL}


# -------------------------------------------------------------------------------------- torch -> onnx

def linear_projections(model) -> None:
    """Replace every GPT-2 Conv1D (y = x W + b, W stored [in, out]) by the nn.Linear that computes the same
    (W stored [out, in]), in place. Conv1D flattens to 2-D and exports as Gemm, which dynamic quantization
    does not touch; Linear on [batch, sequence, hidden] exports as MatMul + Add, which it quantizes."""
    import torch
    from transformers.pytorch_utils import Conv1D
    for module in list(model.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, Conv1D):
                linear = torch.nn.Linear(child.nx, child.nf)
                with torch.no_grad():
                    linear.weight.copy_(child.weight.T)
                    linear.bias.copy_(child.bias)
                setattr(module, name, linear.eval())


def to_onnx(model, path: Path, pad_id: int, tok, per_piece: bool) -> None:
    """Trace `model` (a merged transformers classifier) to ONNX with dynamic batch and sequence axes."""
    import torch

    class Logits(torch.nn.Module):  # named inputs in, one fp32 output out: no cache, no dict
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask):
            return self.inner(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).logits.float()

    linear_projections(model)
    # The exporter restores the train/eval mode the module had: the wrapper must be in eval mode, or the whole
    # model comes back in training mode (dropout on) after the export.
    wrapper = Logits(model).eval()
    special = set(tok.all_special_ids)
    real = [i for i in range(min(len(tok), 64)) if i not in special][:7] or [0]
    ids = torch.full((2, 7), pad_id, dtype=torch.long)  # one full row, one padded: both mask paths traced
    ids[0, :] = torch.tensor((real * 7)[:7])
    ids[1, :4] = ids[0, :4]
    mask = (torch.arange(7)[None, :] < torch.tensor([[7], [4]])).long()
    axes = {"input_ids": {0: "batch", 1: "sequence"}, "attention_mask": {0: "batch", 1: "sequence"},
            "logits": {0: "batch", 1: "sequence"} if per_piece else {0: "batch"}}
    with warnings.catch_warnings():  # TracerWarnings about Python branches and the legacy exporter's notice
        warnings.simplefilter("ignore")
        torch.onnx.export(wrapper, (ids, mask), str(path), input_names=["input_ids", "attention_mask"],
                          output_names=["logits"], dynamic_axes=axes, opset_version=OPSET, dynamo=False,
                          do_constant_folding=True)
    model.eval()


def quantize_int8(src: Path, dst: Path) -> None:
    """Dynamic INT8 (ONNX Runtime): weights of MatMul and Gather to int8 now, activations at run time."""
    import logging

    from onnxruntime.quantization import QuantType, quantize_dynamic

    # It logs (root logger) a suggestion to run its pre-processing first: symbolic shape inference, 10+ s on
    # the sample model, which gave the same MatMulInteger graph here.
    def no_advice(record: logging.LogRecord) -> bool:
        return "pre-processing before quantization" not in record.getMessage()

    root = logging.getLogger()
    root.addFilter(no_advice)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8)
    finally:
        root.removeFilter(no_advice)


# ---------------------------------------------------------------------------------------------- serving

class OnnxPredictor:
    """An export directory as `dataprep serve` uses a model (serve.Predictor): `predict(items)` gives what
    serve's AdapterPredictor gives — {"label", "probs"} per text, or {"tags", "truncated_tokens"} per sentence
    (tags valid BIO2, as predict.Adapter.tag repairs them) — from ONNX Runtime and the exported tokenizer."""

    def __init__(self, directory: Path, model_file: str, threads: int = 1):
        from transformers import AutoTokenizer
        label_map = json.loads((directory / "label_map.json").read_text())
        self.task, self.labels = label_map["task"], list(label_map["labels"])
        self.tok = AutoTokenizer.from_pretrained(str(directory))
        self.max_len = self.tok.model_max_length
        self.model_file = model_file
        self.forward = onnx_forward(onnx_session(directory / model_file, threads))

    def predict(self, items: list) -> list[dict]:
        if not items:
            return []
        if self.task == "token_cls":
            return self._tag(items)
        ids = self.tok(list(items), truncation=True, max_length=self.max_len)["input_ids"]
        logits = self.forward(*padded(ids, self.tok.pad_token_id)).astype(np.float64)
        probs = np.exp(logits - logits.max(1, keepdims=True))
        probs /= probs.sum(1, keepdims=True)
        return [{"label": self.labels[int(p.argmax())], "probs": dict(zip(self.labels, p.tolist()))} for p in probs]

    def _tag(self, sentences: list[list[str]]) -> list[dict]:
        from dataprep.stages.bio import bio2, spans
        from dataprep.train.tasks import word_heads
        enc = self.tok([list(s) for s in sentences], is_split_into_words=True, truncation=True,
                       max_length=self.max_len)
        ids = enc["input_ids"]
        guesses = self.forward(*padded(ids, self.tok.pad_token_id)).argmax(-1)
        out = []
        for i, sentence in enumerate(sentences):
            heads = word_heads(enc.word_ids(i), self.tok.convert_ids_to_tokens(ids[i]))
            words = ["O"] * len(sentence)
            for k, w in heads.items():
                words[w] = self.labels[int(guesses[i, k])]
            out.append({"tags": bio2(spans(words, "IOB2", repair=True), len(words)),
                        "truncated_tokens": len(sentence) - len(set(heads.values()))})
        return out


def load_predictor(directory: str | Path, threads: int = 1, variant: str = "auto") -> OnnxPredictor:
    """The export in `directory` for `dataprep serve`. variant auto: the INT8 model when there is one and its
    check met the agreement goal (check.json), else fp32; or name `fp32` / `int8`."""
    directory = Path(directory)
    if not (directory / "label_map.json").is_file() or not (directory / FP32).is_file():
        raise ConfigError(f"{directory} is not an export directory (`dataprep export` writes {FP32} and "
                          "label_map.json there)")
    check = json.loads((directory / "check.json").read_text()) if (directory / "check.json").is_file() else {}
    if variant == "auto":
        variant = "int8" if (directory / INT8).is_file() and (check.get("int8") or {}).get("ok") else "fp32"
    if variant not in ("fp32", "int8"):
        raise ConfigError(f"unknown model variant {variant!r} (fp32, int8 or auto)")
    if variant == "int8" and not (directory / INT8).is_file():
        raise ConfigError(f"{directory} has no {INT8} (export with --quantize int8)")
    return OnnxPredictor(directory, INT8 if variant == "int8" else FP32, threads)


# ------------------------------------------------------------------------------------------------ files

def _write_beside(scratch: Path, adapter, merged_model, check: dict) -> None:
    tok = adapter.tok
    tok.model_max_length = adapter.max_len  # truncation=True then cuts where training cut
    tok.save_pretrained(str(scratch))
    merged_model.config.save_pretrained(str(scratch))
    shutil.copy(adapter.directory / "label_map.json", scratch / "label_map.json")
    (scratch / "check.json").write_text(json.dumps(check, indent=2, ensure_ascii=False))
    (scratch / "README.md").write_text(_readme(check))


def _readme(check: dict) -> str:
    per_piece = check["task"] == "token_cls"
    int8 = f" and `{INT8}` (dynamic INT8)" if INT8 in check["files"] else ""
    lines = [
        f"# ONNX export of a dataprep LoRA adapter ({check['task']})", "",
        f"`{FP32}` (fp32, the LoRA update merged into the base){int8}; opset {check['opset']}. Inputs "
        "`input_ids` and `attention_mask`, int64 `[batch, sequence]`, right-padded with the tokenizer's pad "
        "token (mask 1 on real pieces); output `logits`, float32 "
        + ("`[batch, sequence, labels]`: a word's tag is read at its first piece that is not a bare `▁`/`Ġ`."
           if per_piece else "`[batch, labels]`."),
        "Labels: `label_map.json` (index order) or `config.json` `id2label`. The tokenizer's `model_max_length` "
        f"is the adapter's max_len ({check['max_len']}).", "",
        "```python", "import numpy as np, onnxruntime as ort", "from transformers import AutoTokenizer", "",
        "tok = AutoTokenizer.from_pretrained('.')",
        f"session = ort.InferenceSession('{FP32}', providers=['CPUExecutionProvider'])",
        "enc = tok(" + ("[['张', '三']]" if per_piece else "['这个手机很好']") + ", truncation=True, padding=True,"
        + (" is_split_into_words=True," if per_piece else "") + " return_tensors='np')",
        "logits = session.run(['logits'], {'input_ids': enc['input_ids'].astype(np.int64),",
        "                                  'attention_mask': enc['attention_mask'].astype(np.int64)})[0]",
        "```", "", "`check.json`: what was checked on which rows, and what was found.", ""]
    return "\n".join(lines)


def _versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version
    out = {}
    for pkg in ("torch", "transformers", "peft", "onnx", "onnxruntime"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    return out


def summary(check: dict, out_dir: str | Path) -> list[str]:
    """The lines `dataprep export` prints: what was written, what was checked, what was found."""
    rows = check["rows"]
    where = f"{rows['rows']} rows of {rows['file']}" if rows["source"] == "file" else \
        f"{rows['rows']} texts sampled from the tokenizer's vocabulary"
    fp32 = check["fp32"]
    lines = [f"export: {', '.join(check['files'])}, tokenizer, config.json, label_map.json, check.json in {out_dir}",
             f"checked on {where}: ONNX fp32 max |logit diff| {fp32['max_abs_logit_diff']:.2g} vs merged torch "
             f"(tolerance atol {fp32['tolerance']['atol']:g} + rtol {fp32['tolerance']['rtol']:g}): ok; "
             f"merge {check['merge']['max_abs_logit_diff']:.2g}"]
    q = check["int8"]
    if q is not None:
        line = f"INT8: predictions agree with torch on {q['agree']}/{q['rows']} rows ({q['share']:.1%})"
        if not q["ok"]:
            line += f": below the {AGREEMENT_GOAL:.0%} goal, {q['differ']} rows differ (check.json lists them)"
        lines.append(line)
    for name, s in (check.get("scores") or {}).items():
        if s:
            lines.append(f"  {name:<14} " + "  ".join(f"{k} {v:.4f}" for k, v in s.items() if k != "n"))
    return lines
