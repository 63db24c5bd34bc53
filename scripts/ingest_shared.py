#!/usr/bin/env python
"""Ingest every real dataset in ../shared/datasets through dataprep and print what happened.

    .venv/bin/python scripts/ingest_shared.py [--only NAME] [--cache-dir DIR] [--out TABLE.md]

Each entry of DATASETS below is a pipeline spec: the reader and its options for that dataset's files, then
`normalize` (classification) or `to_bio2` with the file's tag scheme (NER), then `exact_dedup`. A second
`exact_dedup` on the reader's output measures duplicates of the text as written, which is what each dataset's
SOURCE.md counts, so the two rates side by side show what normalization adds. The table shows rows in and
out, rejects by reason, duplicates dropped and the SOURCE.md figure; the notes under it explain every
difference. Exit status 1 when a reject lacks a `<file>:<line>` id, a ledger does not balance or a pipeline
fails; 0 (with a message) when the shared folder is absent. Never copies any of the data anywhere but the
cache directory (a temporary one unless --cache-dir is given).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dataprep.catalog import all_stages  # noqa: E402
from dataprep.dag import parse_pipeline  # noqa: E402
from dataprep.ledger import Ledger  # noqa: E402
from dataprep.runner import Runner  # noqa: E402

TSV = {"delimiter": "\t", "quoting": "none"}
UNLABELED = ("unlabeled: `label_field` is the text itself (read_jsonl needs a label field), so copies can never "
             "conflict; normalize is skipped because it would drop every row as missing_label")

# name -> spec. dir: folder under shared/datasets (default: the name); files; reader and its options (`read`);
# kind cls -> normalize, bio -> to_bio2 with `bio` params; combine: also dedup all files together ("all" row);
# unlabeled: reader -> exact_dedup only; source: per file (or "all") SOURCE.md's extra copies of the raw text
# and its wording; notes: why our figures differ; skip: why the dataset is not ingested.
DATASETS: dict[str, dict] = {
    "en_ag_news": dict(
        files=["test.csv"], reader="read_csv", kind="cls",
        read={"header": False, "columns": ["label", "title", "description"], "text_field": "description"},
        source={"test.csv": (6, "description only: 6 (0.079%); title+description: 0")},
        notes=["text is the description (the cls contract has one text field), so compare with SOURCE.md's "
               "description-only figure"]),
    "en_airline_tweets": dict(
        files=["Tweets.csv"], reader="read_csv", kind="cls",
        read={"text_field": "text", "label_field": "airline_sentiment"},
        source={"Tweets.csv": (213, "213 (1.46%) in 187 groups; 25 texts with conflicting labels")},
        notes=["tweet_id is mangled (Excel scientific notation), so ids are <file>:<line>, not id_field",
               "normalize folds runs of spaces (a double space after an @mention): more copies, one more conflict"]),
    "en_davidson_hate_offensive": dict(
        files=["labeled_data.csv"], reader="read_csv", kind="cls",
        read={"text_field": "tweet", "label_field": "class", "max_record_lines": 50},
        source={"labeled_data.csv": (0, "0 exact; 46 (0.19%) after stripping `RT @user:`")},
        notes=["max_record_lines 50: quoted tweets span up to 43 physical lines (runs of blank lines); with the "
               "default 20 the 4 longest are cut as unbalanced quotes and their other lines come back as 89 "
               "bad_csv_row rejects", "the `RT @user:` near-duplicates are not exact copies and are kept",
               "normalize: one tweet equals another but for a space before a line break"]),
    "en_sms_spam": dict(
        files=["SMSSpamCollection"], reader="read_csv", kind="cls",
        read={**TSV, "header": False, "columns": ["label", "text"]},
        source={"SMSSpamCollection": (403, "403 (7.23%) in 281 groups; no conflicts")},
        notes=["quoting none: 145 messages hold raw or unbalanced `\"`",
               "normalize folds whitespace: messages that differ only in spaces become copies"]),
    "en_sst2": dict(
        files=["train.tsv", "dev.tsv", "test.tsv"], reader="read_csv", kind="cls", combine=True,
        read={**TSV, "text_field": "sentence"},
        source={"train.tsv": (293, "293 (0.48%); 3 conflicting texts"), "dev.tsv": (3, "3 (0.045%)"),
                "test.tsv": (0, "0"), "all": (371, "371 (0.54%); 5 conflicting texts")}),
    "en_trec": dict(
        files=["train_5500.label", "TREC_10.label"], reader="read_csv", kind="cls",
        read={"delimiter": " ", "quoting": "none", "header": False, "columns": ["label", "text"],
              "max_fields": 2},
        source={"train_5500.label": (71, "71 (1.30%) in 63 groups; 1 conflicting question")},
        notes=["`COARSE:fine question` lines: read_csv splits at the first space only (max_fields 2); the "
               "label is the fine label", "train line 66 has a raw 0xF0 byte: rejected as invalid_utf8"]),
    "ner_en_conll2003": dict(
        files=["eng.train", "eng.testa", "eng.testb"], reader="read_conll", kind="bio",
        read={"delimiter": " ", "token_col": 0, "tag_col": 3}, bio={"scheme": "IOB1"},
        source={"eng.train": (1350, "1,350 (9.6%)"), "eng.testa": (180, "180 (5.5%)"),
                "eng.testb": (269, "269 (7.8%)")},
        notes=["label_conflict: the same token sequence tagged differently (dropped: drop_all)"]),
    "ner_zh_msra": dict(
        files=["msra_test_bio.txt"], reader="read_conll", kind="bio",
        read={"delimiter": "\t"}, bio={"scheme": "IOB2"},
        source={"msra_test_bio.txt": (5, "5 (0.15%)")}),
    "ner_zh_peoples_daily": dict(
        files=["example.dev", "example.test"], reader="read_conll", kind="bio",
        read={"delimiter": " "}, bio={"scheme": "IOB2"},
        source={"example.dev": (0, "0"), "example.test": (0, "0")}),
    "ner_zh_resume": dict(
        files=["train.char.bmes", "dev.char.bmes", "test.char.bmes"], reader="read_conll", kind="bio",
        read={"delimiter": " "}, bio={"scheme": "BMES"},
        source={"train.char.bmes": (18, "18 (0.47%)"), "dev.char.bmes": (0, "0"), "test.char.bmes": (1, "1")}),
    "ner_zh_weibo_2nd": dict(
        dir="ner_zh_weibo", reader="read_conll", kind="bio",
        files=["weiboNER_2nd_conll.train", "weiboNER_2nd_conll.dev", "weiboNER_2nd_conll.test"],
        read={"delimiter": "\t", "strip_token_position": True}, bio={"scheme": "IOB2"},
        source={"weiboNER_2nd_conll.train": (101, "101 (7.5%)"), "weiboNER_2nd_conll.dev": (7, "7 (2.6%)"),
                "weiboNER_2nd_conll.test": (8, "8 (3.0%)")},
        notes=["revised annotation; tokens are char + word-position number (`新0`): strip_token_position",
               "tags keep their .NAM/.NOM suffix (to_bio2 strip_suffix off)",
               "label_conflict: a repeated post tagged differently",
               "where the original files hold CESU-8 surrogate halves these hold a U+FFFD U+FFFD token "
               "(replaced upstream; valid UTF-8, nothing rejected)"]),
    "ner_zh_weibo_orig": dict(
        dir="ner_zh_weibo", reader="read_conll", kind="bio",
        files=["weiboNER.conll.train", "weiboNER.conll.dev", "weiboNER.conll.test"],
        read={"delimiter": "\t", "invalid_utf8": "replace"}, bio={"scheme": "IOB2"},
        notes=["original annotation: each emoji is two lines holding one CESU-8 surrogate half each, which is "
               "not UTF-8. With invalid_utf8 replace (used here) such a line's token becomes three U+FFFD (one "
               "per byte) and keeps its tag, so no sentence is lost (counted as utf8_replaced_lines; the revised "
               "files hold U+FFFD there too); with the default, reject, each affected sentence is rejected "
               "whole as invalid_utf8:<first bad line>"]),
    "para_zh_en_tatoeba": dict(files=["cmn.txt"], skip="parallel reader not built yet"),
    "zh_chnsenticorp_htl": dict(
        files=["ChnSentiCorp_htl_all.csv"], reader="read_csv", kind="cls",
        read={"text_field": "review", "lang": "zh"},
        source={"ChnSentiCorp_htl_all.csv": (0, "0; one empty review")},
        notes=["the empty review (`0,`) is read as a null text and dropped by normalize as empty_text"]),
    "zh_fewclue_eprstmt": dict(
        files=["train_few_all.json", "dev_few_all.json", "test_public.json"], reader="read_jsonl", kind="cls",
        read={"text_field": "sentence", "lang": "zh"},
        source={"train_few_all.json": (29, "29 (18.1%)"), "dev_few_all.json": (25, "25 (15.6%)"),
                "test_public.json": (0, "0")},
        notes=["the input `id` column is not used as id_field, so every reject reads <file>:<line>"]),
    "zh_fewclue_eprstmt_unlabeled": dict(
        dir="zh_fewclue_eprstmt", files=["unlabeled.json"], reader="read_jsonl", kind="cls", unlabeled=True,
        read={"text_field": "sentence", "label_field": "sentence", "lang": "zh"},
        source={"unlabeled.json": (821, "821 (4.20%) in 688 groups")}, notes=[UNLABELED]),
    "zh_fewclue_iflytek": dict(
        files=["train_few_all.json", "dev_few_all.json", "test_public.json"], reader="read_jsonl", kind="cls",
        read={"text_field": "sentence", "label_field": "label_des", "lang": "zh"},
        source={"train_few_all.json": (0, "0"), "dev_few_all.json": (0, "0"), "test_public.json": (0, "0")}),
    "zh_fewclue_tnews": dict(
        files=["train_few_all.json", "dev_few_all.json", "test_public.json"], reader="read_jsonl", kind="cls",
        combine=True, read={"text_field": "sentence", "label_field": "label_desc", "lang": "zh"},
        source={"train_few_all.json": (0, "0"), "dev_few_all.json": (0, "0"), "test_public.json": (0, "0"),
                "all": (0, "0 across labeled splits")}),
    "zh_fewclue_tnews_unlabeled": dict(
        dir="zh_fewclue_tnews", files=["unlabeled.json"], reader="read_jsonl", kind="cls", unlabeled=True,
        read={"text_field": "sentence", "label_field": "sentence", "lang": "zh"},
        source={"unlabeled.json": (0, "0")}, notes=[UNLABELED]),
    "zh_online_shopping_10_cats": dict(
        files=[f"online_shopping_10_cats.part{i}of4.csv" for i in range(1, 5)], reader="read_csv", kind="cls",
        combine=True, read={"text_field": "review", "lang": "zh"},
        source={"all": (49, "49 (0.078%) in 45 groups; 18 conflicting texts")},
        notes=["normalize merges texts that differ in punctuation width (`！`/`!`), a U+FEFF inside the review "
               "or runs of spaces", "part3 has the one empty review (empty_text)"]),
    "zh_waimai_10k": dict(
        files=["waimai_10k.csv"], reader="read_csv", kind="cls", read={"text_field": "review", "lang": "zh"},
        source={"waimai_10k.csv": (7, "7 (0.058%), all 7 with conflicting labels")},
        notes=["normalize (NFKC) turns full-width commas `，` into `,`: texts that differ only in comma width "
               "become copies"]),
}

ID = re.compile(r"^(?P<file>.+):(?P<line>[1-9][0-9]*)$")


def shared_root() -> Path:
    """$DATAPREP_SHARED, else <repo>/../shared/datasets."""
    return Path(os.environ.get("DATAPREP_SHARED") or ROOT.parent / "shared" / "datasets")


def dataset_dir(name: str, root: Path) -> Path:
    return root / DATASETS[name].get("dir", name)


def pipeline_doc(name: str, root: Path, files: list[str] | None = None) -> dict:
    """The pipeline (as the YAML mapping) for one dataset: per file read -> prep -> dedup, plus rawdup (dedup
    of the reader's rows) and, with `combine`, dedup_all / rawdup_all over every file."""
    spec = DATASETS[name]
    files = files or spec["files"]
    nodes: dict[str, dict] = {}
    for i, f in enumerate(files):
        nodes[f"read_{i}"] = {"uses": spec["reader"], "with": {"path": str(dataset_dir(name, root) / f),
                                                              **spec.get("read", {})}}
        if spec.get("unlabeled"):
            nodes[f"dedup_{i}"] = {"uses": "exact_dedup", "input": f"read_{i}"}
            continue
        prep = ("to_bio2", spec["bio"]) if spec["kind"] == "bio" else ("normalize", spec.get("normalize", {}))
        nodes[f"prep_{i}"] = {"uses": prep[0], "input": f"read_{i}", "with": prep[1]}
        nodes[f"dedup_{i}"] = {"uses": "exact_dedup", "input": f"prep_{i}"}
        nodes[f"rawdup_{i}"] = {"uses": "exact_dedup", "input": f"read_{i}"}
    if spec.get("combine") and len(files) > 1:
        last = "read" if spec.get("unlabeled") else "prep"
        nodes["dedup_all"] = {"uses": "exact_dedup", "input": [f"{last}_{i}" for i in range(len(files))]}
        if not spec.get("unlabeled"):
            nodes["rawdup_all"] = {"uses": "exact_dedup", "input": [f"read_{i}" for i in range(len(files))]}
    return {"name": name, "nodes": nodes}


@dataclass
class Row:
    """One line of the table: one file, or `all` for the files deduplicated together."""
    dataset: str
    files: str
    reader: str
    records_in: int = 0
    reader_rejects: Counter = field(default_factory=Counter)
    rows_out: int | None = None
    stage_rejects: Counter = field(default_factory=Counter)
    notes: Counter = field(default_factory=Counter)
    dup: Counter = field(default_factory=Counter)  # duplicate_of, label_conflict, groups, extra, in
    raw_dup: Counter | None = None
    source: tuple[int, str] | None = None
    error: str = ""


@dataclass
class Result:
    name: str
    rows: list[Row]
    problems: list[str]  # reject ids without <file>:<line>, ledgers that do not balance
    seconds: float = 0.0
    skipped: str = ""


def run_dataset(name: str, root: Path, cache_dir: Path, files: list[str] | None = None) -> Result:
    """Build and run one dataset's pipeline; gather the table rows and check ids and ledgers."""
    spec, started = DATASETS[name], time.perf_counter()
    files = files or spec["files"]
    if spec.get("skip"):
        reader = next((s for s, st in all_stages().items() if st.kind == "source" and "parallel" in s), None)
        reason = spec["skip"] if reader is None else f"{spec['skip']} (a `{reader}` stage exists now: wire it in)"
        return Result(name, [Row(name, ", ".join(files), "—", error=f"skipped: {reason}")], [], 0.0, reason)
    runner = Runner(parse_pipeline(pipeline_doc(name, root, files)), cache_root=cache_dir)
    reports = {r.node: r.ledger for r in runner.run()}
    problems = check_ids(runner, files) + check_ledgers(runner, reports)
    rows = [file_row(name, spec, runner, reports, [i], f) for i, f in enumerate(files)]
    if "dedup_all" in reports:
        rows.append(file_row(name, spec, runner, reports, list(range(len(files))), "all", "_all"))
    return Result(name, rows, problems, time.perf_counter() - started)


def file_row(name: str, spec: dict, runner: Runner, ledgers: dict[str, Ledger], idx: list[int], label: str,
             suffix: str | None = None) -> Row:
    row = Row(name, label, reader_text(spec), source=spec.get("source", {}).get(label))
    for i in idx:
        read = ledgers[f"read_{i}"]
        row.records_in += read.rows_in
        row.reader_rejects += read.dropped
        row.notes += read.notes
        if f"prep_{i}" in ledgers:
            prep = ledgers[f"prep_{i}"]
            row.rows_out = (row.rows_out or 0) + prep.rows_out
            row.stage_rejects += prep.dropped
            row.notes += prep.notes
    suffix = suffix if suffix is not None else f"_{idx[0]}"
    row.dup = dup_counts(runner, ledgers, f"dedup{suffix}")
    if f"rawdup{suffix}" in ledgers:
        row.raw_dup = dup_counts(runner, ledgers, f"rawdup{suffix}")
    return row


def dup_counts(runner: Runner, ledgers: dict[str, Ledger], node: str) -> Counter:
    """Rows dropped as duplicate_of / label_conflict, and the extra copies: rows minus distinct keys. With
    conflicts=drop_all every member of a conflicting group is dropped, so each such group is one distinct key
    that no kept row stands for."""
    ledger = ledgers[node]
    rejects = runner.rejects(node).to_pylist()
    groups = {conflict_key(r["record"]) for r in rejects if r["reason"].startswith("label_conflict")}
    out = Counter({"in": ledger.rows_in, "duplicate_of": ledger.dropped.get("duplicate_of", 0),
                   "label_conflict": ledger.dropped.get("label_conflict", 0), "groups": len(groups)})
    out["extra"] = out["duplicate_of"] + out["label_conflict"] - out["groups"]
    return out


def conflict_key(record: str):
    row = json.loads(record)
    return tuple(row["tokens"]) if "tokens" in row else (row.get("text") or "")


def check_ids(runner: Runner, files: list[str]) -> list[str]:
    """Every reject of every node must be `<one of the files>:<line>`."""
    problems = []
    for node in runner.pipeline.nodes:
        for rid in runner.rejects(node).column("id").to_pylist():
            m = ID.match(rid or "")
            if not m or m["file"] not in files:
                problems.append(f"{runner.pipeline.name}.{node}: reject id {rid!r} is not <file>:<line>")
    return problems


def check_ledgers(runner: Runner, ledgers: dict[str, Ledger]) -> list[str]:
    """in = out + dropped - added for every node, and a node's rows in are its inputs' rows out."""
    problems = []
    for name, node in runner.pipeline.nodes.items():
        ledger = ledgers[name]
        if ledger.rows_in != ledger.rows_out + ledger.dropped_total - ledger.added:
            problems.append(f"{runner.pipeline.name}.{name}: ledger does not balance: {ledger.to_dict()}")
        if node.inputs and ledger.rows_in != sum(ledgers[i].rows_out for i in node.inputs):
            problems.append(f"{runner.pipeline.name}.{name}: {ledger.rows_in} rows in, its inputs gave "
                            f"{sum(ledgers[i].rows_out for i in node.inputs)}")
    return problems


# --- the table ---

def reader_text(spec: dict) -> str:
    opts = {k: v for k, v in spec.get("read", {}).items() if k not in ("lang",)}
    text = f"`{spec['reader']}` " + " ".join(f"{k}={_short(v)}" for k, v in opts.items())
    if spec.get("kind") == "bio":
        text += f" → `to_bio2` scheme={spec['bio']['scheme']}"
    elif not spec.get("unlabeled"):
        text += " → `normalize`"
    return text.strip()


def _short(v) -> str:
    if isinstance(v, list):
        return ",".join(map(str, v))
    return {"\t": "TAB", " ": "SPACE"}.get(v, str(v)) if isinstance(v, str) else str(v)


def _counts(c: Counter) -> str:
    return ", ".join(f"{k} {v:,}" for k, v in sorted(c.items()) if v) or "—"


def _rate(d: Counter | None) -> str:
    if not d:
        return "—"
    pct = 100 * d["extra"] / d["in"] if d["in"] else 0.0
    return f"{d['extra']:,} ({pct:.3g}%)" + (f"; {d['groups']} conflicting" if d["groups"] else "")


def _dropped(d: Counter) -> str:
    text = f"{d['duplicate_of']:,}"
    if d["label_conflict"]:
        text += f" + {d['label_conflict']:,} conflict ({d['groups']} group{'s' if d['groups'] != 1 else ''})"
    return text


HEADER = ["dataset", "file(s)", "reader → stage", "records in", "reader rejects", "rows out", "stage rejects",
          "dedup dropped (dup + conflict)", "extra copies: raw text", "after normalize/bio", "SOURCE.md"]


def table(results: list[Result]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    for res in results:
        for r in res.rows:
            if r.error:
                cells = [r.dataset, r.files, r.reader, r.error] + [""] * (len(HEADER) - 4)
            else:
                stage = _counts(r.stage_rejects) + (f" · {_counts(r.notes)}" if r.notes else "")
                cells = [r.dataset, r.files, r.reader, f"{r.records_in:,}", _counts(r.reader_rejects),
                         "—" if r.rows_out is None else f"{r.rows_out:,}", stage, _dropped(r.dup),
                         _rate(r.raw_dup if r.raw_dup is not None else r.dup),
                         "—" if r.raw_dup is None else _rate(r.dup), r.source[1] if r.source else "—"]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def notes(results: list[Result]) -> str:
    out = ["", "Notes:"]
    for res in results:
        spec = DATASETS[res.name]
        lines = list(spec.get("notes", []))
        for r in res.rows:
            raw = r.raw_dup if r.raw_dup is not None else r.dup
            if r.error:
                continue
            if r.source and raw["extra"] != r.source[0]:
                lines.append(f"**{r.files}: {raw['extra']} extra copies of the raw text, SOURCE.md says "
                             f"{r.source[0]}**")
            if r.raw_dup is not None and r.dup["extra"] != raw["extra"]:
                lines.append(f"{r.files}: {r.dup['extra'] - raw['extra']:+} copies after normalize/bio")
        out += [f"- {res.name}: " + "; ".join(lines)] if lines else []
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", action="append", help="a dataset name (or a prefix of one); repeatable")
    ap.add_argument("--cache-dir", help="where the pipelines' caches go (default: a temporary directory)")
    ap.add_argument("--out", help="also write the table as markdown to this file")
    args = ap.parse_args(argv)
    root = shared_root()
    if not root.is_dir():
        print(f"shared datasets not found at {root} (set DATAPREP_SHARED): nothing to ingest")
        return 0
    names = [n for n in DATASETS if not args.only or any(n.startswith(o) for o in args.only)]
    if not names:
        ap.error(f"no dataset matches {args.only}; known: {', '.join(DATASETS)}")
    with tempfile.TemporaryDirectory(prefix="dataprep-shared-") as tmp:
        cache = Path(args.cache_dir or tmp)
        results = [run_safely(n, root, cache) for n in names]
    problems = [p for r in results for p in r.problems]
    text = table(results) + "\n" + notes(results) + "\n"
    print(text)
    print(f"{sum(r.seconds for r in results):.1f} s; {len(problems)} problem(s)")
    for p in problems:
        print("PROBLEM:", p)
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
    return 1 if problems else 0


def run_safely(name: str, root: Path, cache: Path) -> Result:
    """A crash is a finding, not the end of the run: it goes into the table and the exit status."""
    try:
        return run_dataset(name, root, cache)
    except Exception as e:  # noqa: BLE001
        msg = f"CRASH {type(e).__name__}: {e}"
        return Result(name, [Row(name, ", ".join(DATASETS[name]["files"]), "", error=msg)], [f"{name}: {msg}"])


if __name__ == "__main__":
    sys.exit(main())
