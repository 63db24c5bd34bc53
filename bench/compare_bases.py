"""Issue #14's measurement table: the DAG-built tiny GPT-2 base (pretrain_lm) vs the DAG-built tiny BERT base
(pretrain_encoder) vs the baselines (majority and TF-IDF + logistic regression for classification; all-O and
the most frequent tag for NER), scored on the same test rows.

Every number comes from a real `dataprep run` of a pipeline YAML this script writes, one per (dataset, base):
train_lora's metrics.json holds the adapter's test metrics and, trained on the same training rows and scored on
the same test rows, its baselines (dataprep/train/lora.py::baselines_for).

    .venv/bin/python bench/compare_bases.py --out bench/BASES.md    # from the repository root

Not a `bench_*.py` file: `make bench` picks those up, and this runs for tens of minutes on a small CPU.

What is run
- The sample corpus: pipelines/zh_reviews.yaml as it is (GPT-2 base, tokenizer and LM built from the parallel
  corpus), and the same pipeline with an encoder base, `enc: {uses: pretrain_encoder, input: pairs}` as in
  pipelines/ner_zh.yaml, as the adapter's base_model.
- Real datasets from ../shared/datasets (absent ones are skipped): SST-2, ChnSentiCorp (hotel reviews), Weibo
  NER (revised 2nd_conll files), CoNLL-2003 English. Big training files are capped (a seeded sample of 4,000
  training rows, 500 validation rows, 1,000 test rows) and the samples are written under
  runs/compare_bases/inputs/, never into the project's data; files used whole are read where they are.

How a real dataset's pipeline is built
- Official splits are kept. Readers emit only the record contract (no `split` column from the input), so each
  file gets its own branch — reader -> normalize (cls) or to_bio2 (NER) -> exact_dedup -> split — whose split
  node puts every row in that file's split (train: val 0, test 0; validation: val 0.9999; test: test 0.9999;
  with fewer than 5,000 rows a label, every row lands in the named split, which the script checks), and the
  adapter reads the three branches. A set with no official split (ChnSentiCorp) is split here, seeded and
  stratified, into three files first. Rows equal across files are not deduplicated against each other (no
  stage can do that and keep the files' splits); the script counts such test rows and reports them.
- The tokenizer and both bases are trained on the dataset's own training text only (the train branch's
  deduplicated rows, before its split node): in-domain, and never a validation or test row. A build node
  downstream of `split` would read every split, test rows included (build nodes take no only_split).
- train_tokenizer vocab_size 2000 (4000, the stage's default, for Chinese: its training text has over 3,000
  characters), pretrain_lm epochs 3 and the bases' own defaults otherwise, as in the sample pipelines;
  train_lora as the sample pipelines: r 8, alpha 16, lr 5e-4, and batch 32 / 5 epochs (classification,
  zh_reviews.yaml) or batch 16 / 10 epochs (NER, ner_*.yaml). Torch threads stay at 1 (the stages' default).
- A diagnostic third run for classification: the encoder base with `modules_to_save: [pooler]`. The MLM
  encoder is saved without a pooler, so BertForSequenceClassification starts one at random and LoRA's default
  targets leave it frozen (and unsaved); `--no-diagnostic` skips it.

Options: --datasets (default: sample en_sst2 zh_chnsenticorp_htl ner_zh_weibo ner_en_conll2003; zh_waimai_10k
is the other Chinese set), --data-root, --work (default runs/compare_bases), --plan-only. Reruns are cheap:
every node is cached under runs/<pipeline>/ of the working directory.
"""
from __future__ import annotations

import argparse
import csv
import datetime
import io
import json
import os
import platform
import random
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
SEED = 13
CAPS = {"train": 4000, "validation": 500, "test": 1000}
# split shares that put every row of a file into one split (SplitParams needs val, test < 1 and val + test < 1;
# 0.9999 leaves the other splits a target below one row for any label with fewer than 5,000 rows)
PINNED = {"train": {"val": 0.0, "test": 0.0}, "validation": {"val": 0.9999, "test": 0.0},
          "test": {"val": 0.0, "test": 0.9999}}
BRANCH = {"train": "tr", "validation": "va", "test": "te"}


def sample_lora(pipeline: str) -> dict:
    """The adapter settings of a sample pipeline (its base aside): the table measures what users get."""
    doc = yaml.safe_load((REPO / "pipelines" / pipeline).read_text(encoding="utf-8"))
    return {k: v for k, v in doc["nodes"]["adapter"]["with"].items() if k != "base_model"}


CLS_LORA = sample_lora("zh_reviews.yaml")
NER_LORA = sample_lora("ner_zh.yaml")
BASES = {"gpt2": ("lm", {"uses": "pretrain_lm", "with": {"epochs": 3}}),
         "encoder": ("enc", {"uses": "pretrain_encoder", "with": {}})}
# Variant -> (base, extra train_lora params). `encoder_pooler` is a diagnostic for classification only: the
# MLM-pretrained encoder has no pooler, so BertForSequenceClassification starts one at random, and LoRA's
# default targets (query, value) leave it frozen; modules_to_save: [pooler] trains it (and saves it).
BASE_NAME = {"gpt2": "GPT-2", "encoder": "encoder"}
VARIANTS = {"gpt2": ("gpt2", {}), "encoder": ("encoder", {}),
            "encoder_pooler": ("encoder", {"target_modules": "all-linear", "lr": 5.0e-3})}
VARIANT_LABEL = {"gpt2": "GPT-2 base (pretrain_lm) + LoRA", "encoder": "encoder base (pretrain_encoder) + LoRA",
                 "encoder_pooler": "diagnostic: encoder base + LoRA on every linear layer, lr 5e-3 "
                                   "(the NER pipelines' setting)"}


# ------------------------------------------------------------------------------------------------ datasets

@dataclass
class Dataset:
    key: str              # directory under the datasets root
    title: str
    task: str             # cls | ner
    lang: str
    files: dict[str, str]  # split -> file name (one file: split here)
    reader: dict          # the reader's params, path excepted
    fmt: str              # tsv | csv | conll
    to_bio2: dict = field(default_factory=dict)
    note: str = ""

    @property
    def vocab_size(self) -> int:
        # 2000 as the sample pipelines; Chinese training text has more characters than that (ChnSentiCorp
        # 3,252, Weibo 3,261 at the default coverage) and train_tokenizer refuses a smaller vocabulary, so
        # Chinese sets get the stage's own default, 4000.
        return 4000 if self.lang == "zh" else 2000


DATASETS = {
    "en_sst2": Dataset(
        "en_sst2", "SST-2", "cls", "en", {"train": "train.tsv", "validation": "dev.tsv", "test": "test.tsv"},
        {"uses": "read_csv", "with": {"delimiter": "\t", "quoting": "none", "text_field": "sentence",
                                      "label_field": "label", "lang": "en"}}, "tsv",
        note="train/dev are parse-tree phrases, test is GLUE's labelled dev set (full sentences)"),
    "zh_chnsenticorp_htl": Dataset(
        "zh_chnsenticorp_htl", "ChnSentiCorp (hotel)", "cls", "zh", {"all": "ChnSentiCorp_htl_all.csv"},
        {"uses": "read_csv", "with": {"text_field": "review", "label_field": "label", "lang": "zh"}}, "csv",
        note="no official split: split here (seeded, stratified) into test / validation / train"),
    "zh_waimai_10k": Dataset(
        "zh_waimai_10k", "waimai_10k", "cls", "zh", {"all": "waimai_10k.csv"},
        {"uses": "read_csv", "with": {"text_field": "review", "label_field": "label", "lang": "zh"}}, "csv",
        note="no official split: split here (seeded, stratified) into test / validation / train"),
    "ner_zh_weibo": Dataset(
        "ner_zh_weibo", "Weibo NER (2nd_conll)", "ner", "zh",
        {"train": "weiboNER_2nd_conll.train", "validation": "weiboNER_2nd_conll.dev",
         "test": "weiboNER_2nd_conll.test"},
        {"uses": "read_conll", "with": {"strip_token_position": True, "lang": "zh"}}, "conll",
        {"scheme": "IOB2", "ill_formed": "repair",
         "types": [f"{t}.{m}" for t in ("PER", "ORG", "LOC", "GPE") for m in ("NAM", "NOM")]},
        note="8 types (NAM/NOM kept apart); ill-formed I- repaired"),
    "ner_en_conll2003": Dataset(
        "ner_en_conll2003", "CoNLL-2003 (en)", "ner", "en",
        {"train": "eng.train", "validation": "eng.testa", "test": "eng.testb"},
        {"uses": "read_conll", "with": {"lang": "en"}}, "conll",
        {"scheme": "IOB1", "types": ["PER", "ORG", "LOC", "MISC"]}, note="IOB1 -> BIO2; testb is the test file"),
}
DEFAULT = ["sample", "en_sst2", "zh_chnsenticorp_htl", "ner_zh_weibo", "ner_en_conll2003"]


def records(path: Path, fmt: str) -> tuple[bytes, list[bytes]]:
    """(header, records) of a file as raw bytes: a CSV record (quoted newlines kept), a TSV line, or a CoNLL
    sentence block (-DOCSTART- lines dropped)."""
    data = path.read_bytes()
    if fmt == "conll":
        blocks, lines = [], []
        for line in data.split(b"\n"):
            if not line.strip() or line.startswith(b"-DOCSTART-"):
                if lines:
                    blocks.append(b"\n".join(lines) + b"\n")
                lines = []
            else:
                lines.append(line)
        if lines:
            blocks.append(b"\n".join(lines) + b"\n")
        return b"", blocks
    if fmt == "tsv":
        lines = [line + b"\n" for line in data.split(b"\n") if line]
        return lines[0], lines[1:]
    rows = list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))
    return _csv_line(rows[0]).encode("utf-8"), [_csv_line(row).encode("utf-8") for row in rows[1:]]


def _csv_line(row: list[str]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(row)
    return buf.getvalue()


def write_records(path: Path, header: bytes, recs: list[bytes], fmt: str) -> None:
    sep = b"\n" if fmt == "conll" else b""
    body = sep.join(recs)
    path.write_bytes(header + body)


def sample(recs: list[bytes], cap: int, seed: int) -> list[bytes]:
    """A seeded sample of at most `cap` records, in file order."""
    if len(recs) <= cap:
        return recs
    keep = sorted(random.Random(seed).sample(range(len(recs)), cap))
    return [recs[i] for i in keep]


def prepare_inputs(ds: Dataset, root: Path, work: Path) -> dict[str, tuple[Path, int, int]]:
    """split -> (file the pipeline reads, records in it, records in the original); samples written to `work`."""
    out: dict[str, tuple[Path, int, int]] = {}
    work.mkdir(parents=True, exist_ok=True)
    if "all" in ds.files:  # no official split: a seeded, label-stratified one, written as three files
        header, recs = records(root / ds.files["all"], ds.fmt)
        labels = [next(csv.reader([r.decode("utf-8")]))[0] for r in recs]
        by_label: dict[str, list[int]] = {}
        for i, label in enumerate(labels):
            by_label.setdefault(label, []).append(i)
        rng = random.Random(SEED)
        chosen = {"test": [], "validation": [], "train": []}
        for label in sorted(by_label):
            idx = by_label[label][:]
            rng.shuffle(idx)
            share = len(idx) / len(recs)
            n_test, n_val = round(CAPS["test"] * share), round(CAPS["validation"] * share)
            chosen["test"] += idx[:n_test]
            chosen["validation"] += idx[n_test:n_test + n_val]
            chosen["train"] += idx[n_test + n_val:n_test + n_val + round(CAPS["train"] * share)]
        for split, idx in chosen.items():
            path = work / f"{split}.{ds.fmt}"
            write_records(path, header, [recs[i] for i in sorted(idx)], ds.fmt)
            out[split] = (path, len(idx), len(recs))
        return out
    for split, name in ds.files.items():
        src = root / name
        header, recs = records(src, ds.fmt)
        kept = sample(recs, CAPS[split], SEED)
        if len(kept) == len(recs):
            out[split] = (src, len(recs), len(recs))  # used whole: read where it is
        else:
            path = work / f"{split}.{ds.fmt}"
            write_records(path, header, kept, ds.fmt)
            out[split] = (path, len(kept), len(recs))
    return out


# ------------------------------------------------------------------------------------------------ pipelines

def dataset_pipeline(ds: Dataset, variant: str, inputs: dict[str, tuple[Path, int, int]]) -> dict:
    """The pipeline for one (dataset, base). The two bases' pipelines share a name, so their common nodes
    (data, tokenizer) are one cache entry."""
    nodes: dict[str, dict] = {}
    parts = []
    for split in ("train", "validation", "test"):
        b = BRANCH[split]
        nodes[f"{b}_raw"] = {"uses": ds.reader["uses"],
                             "with": {"path": str(inputs[split][0]), **ds.reader["with"]}}
        if ds.task == "cls":
            nodes[f"{b}_clean"] = {"uses": "normalize", "input": f"{b}_raw"}
            nodes[f"{b}_unique"] = {"uses": "exact_dedup", "input": f"{b}_clean",
                                    "with": {"fold": ["whitespace", "case"], "conflicts": "drop_all"}}
        else:
            nodes[f"{b}_bio"] = {"uses": "to_bio2", "input": f"{b}_raw", "with": dict(ds.to_bio2)}
            nodes[f"{b}_unique"] = {"uses": "exact_dedup", "input": f"{b}_bio"}
        nodes[f"{b}_split"] = {"uses": "split", "input": f"{b}_unique", "with": dict(PINNED[split])}
        parts.append(f"{b}_split")
    # In-domain tokenizer and base: the training file's own rows, never a validation or test row.
    nodes["tok"] = {"uses": "train_tokenizer", "input": "tr_unique", "with": {"vocab_size": ds.vocab_size}}
    base, extra = VARIANTS[variant]
    name, spec = BASES[base]
    nodes[name] = {"uses": spec["uses"], "input": "tr_unique",
                   "with": {"tokenizer": {"node": "tok"}, **spec["with"]}}
    lora = CLS_LORA if ds.task == "cls" else NER_LORA
    nodes["adapter"] = {"uses": "train_lora", "input": parts,
                        "with": {"base_model": {"node": name}, **lora, **extra}}
    return {"name": f"cmp_{ds.key}", "defaults": {"seed": SEED}, "nodes": nodes}


def sample_encoder_variant(path: Path, variant: str = "encoder") -> dict:
    """pipelines/zh_reviews.yaml with an encoder base for the adapter (built from the parallel corpus, as in
    pipelines/ner_zh.yaml); the perplexity filter keeps its GPT-2 LM. Same name: the data nodes are shared."""
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    nodes = {}
    for name, spec in doc["nodes"].items():
        nodes[name] = spec
        if name == "tok":
            nodes["enc"] = {"uses": "pretrain_encoder", "input": "pairs", "with": {"tokenizer": {"node": "tok"}}}
    nodes["adapter"]["with"]["base_model"] = {"node": "enc"}
    nodes["adapter"]["with"].update(VARIANTS[variant][1])
    return {**doc, "nodes": nodes}


class _NoAliases(yaml.SafeDumper):
    def ignore_aliases(self, data):  # a list used twice is written twice, not as &id001 / *id001
        return True


def write_yaml(doc: dict, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.dump(doc, Dumper=_NoAliases, sort_keys=False, allow_unicode=True, width=120),
                    encoding="utf-8")
    return path


# ------------------------------------------------------------------------------------------------ running

@dataclass
class Run:
    dataset: str
    base: str
    pipeline: Path
    base_node: str
    wall_s: float = 0.0   # this invocation's `dataprep run` (seconds when the nodes were cached)
    cold_s: float = 0.0   # the sum of every node's seconds, from their stats.json
    ok: bool = False
    error: str = ""
    metrics: dict = field(default_factory=dict)
    node_seconds: dict = field(default_factory=dict)
    splits: dict = field(default_factory=dict)
    notes: dict = field(default_factory=dict)
    ran: list = field(default_factory=list)


def child_env() -> dict[str, str]:
    """This checkout's dataprep first on the path of the `python -m dataprep` children."""
    return dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])]))


def run_pipeline(run: Run, logs: Path) -> Run:
    """`python -m dataprep run PIPELINE` in the working directory, with this checkout's dataprep first on
    PYTHONPATH; its output goes to a log file."""
    env = child_env()
    log = logs / f"{run.pipeline.stem}.log"
    started = time.monotonic()
    with open(log, "w", encoding="utf-8") as f:
        proc = subprocess.run([sys.executable, "-m", "dataprep", "run", str(run.pipeline)], stdout=f,
                              stderr=subprocess.STDOUT, env=env)
    run.wall_s = time.monotonic() - started
    text = log.read_text(encoding="utf-8", errors="replace")
    run.ran = [line.split()[0] for line in text.splitlines() if len(line.split()) > 1 and line.split()[1] == "ran"]
    if proc.returncode:
        last = text.strip().splitlines()[-1] if text.strip() else ""
        run.error = f"`dataprep run` exit {proc.returncode}: {last[:400]} (log: {log})"
        return run
    collect(run)
    return run


def collect(run: Run) -> None:
    """metrics.json of the adapter, node seconds, and the rows per split the adapter read — from the cache."""
    sys.path.insert(0, str(REPO))
    from dataprep.dag import load_pipeline
    from dataprep.runner import Runner

    runner = Runner(load_pipeline(run.pipeline), "runs")
    model = runner.model_dir("adapter")
    run.metrics = json.loads((model / "metrics.json").read_text(encoding="utf-8"))
    for name in ("tok", run.base_node, "adapter"):
        stats = json.loads((runner.cache(name).dir / "stats.json").read_text())
        run.node_seconds[name] = stats["seconds"]
        run.notes[name] = stats["ledger"].get("notes", {})
    counts: Counter = Counter()
    for name in runner.pipeline.nodes["adapter"].inputs:
        counts.update(runner.output(name).column("split").to_pylist())
    run.splits = dict(counts)
    # What the whole pipeline costs from cold: every node's seconds, as recorded by the run that built it (a
    # cached node keeps the seconds of its first run), so the number does not depend on what was cached today.
    run.cold_s = sum(json.loads((runner.cache(n).dir / "stats.json").read_text())["seconds"]
                     for n in runner.pipeline.nodes)
    run.ok = True


def check_pinned(run: Run) -> None:
    """Every row of a file must be in that file's split: the pinned split shares guarantee it below 5,000 rows
    a label; this checks it on the split nodes' output."""
    from dataprep.dag import load_pipeline
    from dataprep.runner import Runner

    runner = Runner(load_pipeline(run.pipeline), "runs")
    for split, b in BRANCH.items():
        seen = Counter(runner.output(f"{b}_split").column("split").to_pylist())
        if set(seen) - {split}:
            run.ok, run.error = False, f"{b}_split put rows outside {split}: {dict(seen)}"


def truncation(run: Run) -> str | None:
    """What the adapter could not see of its test rows: train_lora cuts every example at the base's positions
    (64 here), and for NER its gold entities are read from the cut encoding, while the baselines score whole
    rows. None when nothing was cut."""
    import pyarrow as pa
    import pyarrow.compute as pc
    from transformers import AutoConfig, AutoTokenizer

    from dataprep.dag import load_pipeline
    from dataprep.runner import Runner
    from dataprep.stages.bio import spans

    runner = Runner(load_pipeline(run.pipeline), "runs")
    model = runner.model_dir("adapter")
    tok = AutoTokenizer.from_pretrained(str(model))
    config = AutoConfig.from_pretrained(str(runner.model_dir(run.base_node)))
    limit = min(128, getattr(config, "n_positions", None) or config.max_position_embeddings)
    tables = [runner.output(n) for n in runner.pipeline.nodes["adapter"].inputs]
    test = pa.concat_tables(tables, promote_options="permissive")
    test = test.filter(pc.equal(test.column("split"), "test"))
    if "tokens" in test.column_names:
        tokens = test.column("tokens").to_pylist()
        lengths = [len(x) for x in tok(tokens, is_split_into_words=True)["input_ids"]]
        gold = sum(len(spans(tags, "IOB2")) for tags in test.column("tags").to_pylist())
        cut = sum(n > limit for n in lengths)
        if not cut:
            return None
        return (f"{cut} of {len(lengths)} test rows are longer than {limit} tokens; the adapter's entity scores "
                f"count {run.metrics.get('support')} gold entities (those inside the first {limit} tokens), the "
                f"baselines all {gold}")
    lengths = [len(x) for x in tok(test.column("text").to_pylist())["input_ids"]]
    cut = sum(n > limit for n in lengths)
    return (f"{cut} of {len(lengths)} test texts are longer than {limit} tokens and are cut for the adapter "
            "(the baselines read them whole)") if cut else None


def test_overlap(run: Run) -> int | None:
    """Test rows whose text (cls) or token sequence (NER) also occurs among the training rows."""
    from dataprep.dag import load_pipeline
    from dataprep.runner import Runner

    runner = Runner(load_pipeline(run.pipeline), "runs")
    if "tr_split" not in runner.pipeline.nodes:
        return None

    def keys(node: str) -> list:
        t = runner.output(node)
        if "text" in t.column_names:
            return [" ".join(x.lower().split()) for x in t.column("text").to_pylist()]
        return [tuple(x) for x in t.column("tokens").to_pylist()]

    train = set(keys("tr_split"))
    return sum(k in train for k in keys("te_split"))


# ------------------------------------------------------------------------------------------------ table

def fmt(x: float | None) -> str:
    return "—" if x is None else f"{x:.3f}"


def table(runs: list[Run], titles: dict[str, str], overlaps: dict[str, int | None], caveats: list[str]) -> str:
    by: dict[str, dict[str, Run]] = {}
    for r in runs:
        by.setdefault(r.dataset, {})[r.base] = r
    cls_rows, ner_rows, problems = [], [], []
    for ds, pair in by.items():
        good = [r for r in pair.values() if r.ok]
        for r in pair.values():
            if not r.ok:
                problems.append(f"- {titles[ds]}, {r.base}: {r.error}")
        if not good:
            continue
        first = good[0]
        task = first.metrics.get("accuracy") is not None and "seq_cls" or "token_cls"
        sp = first.splits
        rows_txt = f"{first.metrics['train']['examples']} / {sp.get('validation', 0)} / {sp.get('test', 0)}"
        title = titles[ds]
        for base in VARIANTS:
            r = pair.get(base)
            if r is None or not r.ok:
                continue
            m = r.metrics
            wall = (f"{r.node_seconds[r.base_node]:.0f} s base, {r.node_seconds['adapter']:.0f} s adapter; "
                    f"{r.cold_s:.0f} s whole DAG")
            if task == "seq_cls":
                cls_rows.append([title, VARIANT_LABEL[base], fmt(m["accuracy"]), fmt(m["macro_f1"]), rows_txt, wall])
            else:
                ner_rows.append([title, VARIANT_LABEL[base], fmt(m["precision"]), fmt(m["recall"]), fmt(m["f1"]),
                                 rows_txt, wall])
        baselines = first.metrics["baselines"]
        for other in good[1:]:
            if other.metrics["baselines"] != baselines:
                problems.append(f"- {title}: the baselines differ between the two runs (different rows?)")
        for name, b in baselines.items():
            if task == "seq_cls":
                cls_rows.append([title, f"baseline: {name}", fmt(b["accuracy"]), fmt(b["macro_f1"]), rows_txt, "—"])
            else:
                ner_rows.append([title, f"baseline: {name}", fmt(b["precision"]), fmt(b["recall"]), fmt(b["f1"]),
                                 rows_txt, "—"])
    out = [""]
    if cls_rows:
        out += ["### Classification (test split: accuracy, macro-F1)", "",
                "| dataset | model | accuracy | macro-F1 | train / val / test rows | wall time |",
                "|---|---|---|---|---|---|", *("| " + " | ".join(r) + " |" for r in cls_rows), ""]
    if ner_rows:
        out += ["### NER (test split: strict entity precision / recall / F1)", "",
                "| dataset | model | precision | recall | entity F1 | train / val / test rows | wall time |",
                "|---|---|---|---|---|---|---|", *("| " + " | ".join(r) + " |" for r in ner_rows), ""]
    extra = [f"- {titles[d]}: {n} test rows also occur in its training file (exact_dedup runs per file: no "
             "stage can deduplicate across files and keep each file's split)" for d, n in overlaps.items() if n]
    if extra or problems or caveats:
        out += ["### Problems and caveats met in this run", "", *problems, *extra, *caveats, ""]
    return "\n".join(out)


NOTES = [
    "How each pipeline is built (details in the script's docstring):",
    "- Sample corpus: `pipelines/zh_reviews.yaml` as it is (its tokenizer and GPT-2 are built from the parallel "
    "corpus), and the same DAG with `enc: {uses: pretrain_encoder, input: pairs}` as the adapter's base.",
    "- Real sets: the official train / validation / test files are kept as the splits (each file has its own "
    "reader -> normalize or to_bio2 -> exact_dedup -> split branch, with split shares that put every row into "
    "that file's split; ChnSentiCorp has no official split and is split by the script, seeded and stratified). "
    "Training files are capped at a seeded 4,000 rows, validation at 500, test at 1,000. Tokenizer and both "
    "bases are trained on the training file's own rows only (in-domain, never a validation or test row).",
    "- Same settings for both bases: train_tokenizer vocab 2000 (4000 for Chinese), pretrain_lm epochs 3 and "
    "otherwise each base stage's defaults (2 layers, hidden 128, 64 positions); train_lora r 8, alpha 16, lr "
    "5e-4, batch 32 x 5 epochs (classification) or 16 x 10 (NER), PEFT's default target modules.",
    "- The diagnostic rows (classification only) train the encoder's pooler too. pretrain_encoder saves a "
    "BertForMaskedLM, which has no pooler: BertForSequenceClassification initialises one at random, LoRA's "
    "default targets (query, value) leave it frozen, and the adapter does not save it.",
]


def dataset_notes(used: dict[str, dict[str, tuple[Path, int, int]]]) -> list[str]:
    """One line per real dataset: its files and how many of their records the pipelines read."""
    lines = []
    for key, inputs in used.items():
        ds = DATASETS[key]
        files = ", ".join(f"{split} {n:,} of {total:,}" for split, (_, n, total) in inputs.items())
        origin = ds.files.get("all") or " / ".join(ds.files.values())
        lines.append(f"- {ds.title} (`{key}`: {origin}): {files} records read; {ds.note}.")
    return ["", "Datasets (records before the pipelines' own cleaning and dedup):", *lines] if lines else []


def git_commit() -> str:
    try:
        head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--", "dataprep", "pipelines"],
                               capture_output=True, text=True).stdout.strip()
        return head + (" (with uncommitted changes in dataprep/ or pipelines/)" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", help="write the Markdown report here (e.g. bench/BASES.md)")
    ap.add_argument("--datasets", nargs="*", default=DEFAULT,
                    help=f"which to run: 'sample' and/or {', '.join(DATASETS)} (default: {' '.join(DEFAULT)})")
    ap.add_argument("--data-root", default=None,
                    help="the shared datasets directory (default: ../shared/datasets of the working directory)")
    ap.add_argument("--work", default="runs/compare_bases", help="where samples, pipelines and logs go")
    ap.add_argument("--plan-only", action="store_true",
                    help="write the samples and pipelines and show `dataprep plan` for each; train nothing")
    ap.add_argument("--no-diagnostic", action="store_true",
                    help="skip the diagnostic encoder-with-trained-pooler runs (classification)")
    args = ap.parse_args(argv)
    variants = [v for v in VARIANTS if not (args.no_diagnostic and v == "encoder_pooler")]

    root = Path(args.data_root) if args.data_root else Path.cwd().parent / "shared" / "datasets"
    work = Path(args.work)
    logs = work / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    runs: list[Run] = []
    titles = {"sample": "sample corpus (zh_reviews)"}
    overlaps: dict[str, int | None] = {}
    caveats: list[str] = []
    used: dict[str, dict[str, tuple[Path, int, int]]] = {}
    skipped = []
    for key in args.datasets:
        if key == "sample":
            sample_yaml = REPO / "pipelines" / "zh_reviews.yaml"
            plans = [("gpt2", sample_yaml, "lm")]
            plans += [(v, write_yaml(sample_encoder_variant(sample_yaml, v), work / "pipelines" /
                                     f"zh_reviews_{v}.yaml"), "enc") for v in variants if v != "gpt2"]
        else:
            ds = DATASETS[key]
            titles[key] = ds.title
            if not all((root / key / f).is_file() for f in ds.files.values()):
                skipped.append(f"{key} (not found under {root})")
                print(f"skip {key}: not found under {root}", flush=True)
                continue
            inputs = prepare_inputs(ds, root / key, work / "inputs" / key)
            used[key] = inputs
            plans = [(v, write_yaml(dataset_pipeline(ds, v, inputs), work / "pipelines" / f"{key}_{v}.yaml"),
                      BASES[VARIANTS[v][0]][0]) for v in variants if ds.task == "cls" or v != "encoder_pooler"]
        for base, path, node in plans:
            if args.plan_only:
                subprocess.run([sys.executable, "-m", "dataprep", "plan", str(path)], env=child_env())
                continue
            print(f"run {key} / {base}: {path}", flush=True)
            r = run_pipeline(Run(key, base, path, node), logs)
            runs.append(r)
            print(f"  {'ok' if r.ok else 'FAILED'} in {r.wall_s:.0f} s; ran: {' '.join(r.ran) or 'nothing'}"
                  + (f"; {r.error}" if r.error else ""), flush=True)
            if r.ok and key != "sample":
                overlaps[key] = test_overlap(r)
                check_pinned(r)
            where = f"- {titles[key]}, {BASE_NAME[VARIANTS[base][0]]} base: "  # one tokenizer, one limit a base
            if r.ok and not any(c.startswith(where) for c in caveats) and (cut := truncation(r)):
                caveats.append(where + cut)
    if args.plan_only:
        return 0
    body = table(runs, titles, overlaps, caveats)
    total = time.monotonic() - started
    header = [
        "# Base models compared (issue #14)", "",
        f"- command: `.venv/bin/python {' '.join(sys.argv)}`",
        f"- date: {datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')}",
        f"- git commit: {git_commit()}",
        f"- machine: {platform.machine()}, {os.cpu_count()} cores, torch threads 1 per node",
        f"- this invocation: {total:.0f} s (nodes already cached under runs/ are not rerun; the table's whole-DAG "
        "time is each pipeline's cold cost)" + (f"; skipped: {', '.join(skipped)}" if skipped else ""), "",
        "Rows: train / validation / test rows the adapter read (train after dedup and, for the sample corpus, "
        "back-translation and rebalancing); the baselines train on the same training rows and are scored on the "
        "same test rows (both runs of a dataset give the same baseline numbers; the script checks). Wall time: "
        "the base's and the adapter's node seconds, and the whole DAG from cold (every node's seconds, as "
        "recorded in its stats.json by the run that built it), on this machine with one torch thread per node. "
        "Rows in the table are deterministic (keyed); wall times are not.", "", *NOTES, *dataset_notes(used), ""]
    report = "\n".join(header) + body
    print(report)
    if args.out:
        Path(args.out).write_text(report, encoding="utf-8")
    return 0 if all(r.ok for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
