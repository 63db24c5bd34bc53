"""A dataset's own splits and other fields survive: readers keep them, `split` fills only the rows without a
split, and `dataprep train` trains on the splits a file already has. The real datasets of ../shared (skipped
when absent) keep the splits they are shipped in, one file per split."""
from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from testkit import write_jsonl, write_pipeline

from dataprep import split
from dataprep.batch import every_row_has_a_split
from dataprep.catalog import get
from dataprep.cli import main
from dataprep.dag import load_pipeline
from dataprep.runner import Runner

SHARED = Path(os.environ.get("DATAPREP_SHARED") or Path(__file__).resolve().parents[2] / "shared" / "datasets")
needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason=f"shared datasets not found at {SHARED}")
GOOD, BAD = "好 棒 喜欢 推荐 满意".split(), "差 烂 失望 退货 糟糕".split()


def reviews(n: int, tag: str, offset: int = 0) -> list[dict]:
    """Distinct short reviews (no two equal after folding), with a field of their own."""
    out = []
    for i in range(offset, offset + n):
        label = "pos" if i % 3 else "neg"
        words = GOOD if label == "pos" else BAD
        out.append({"text": f"{tag} {i} {words[i % 5]} {words[(i // 5) % 5]}", "label": label, "origin": tag,
                    "stars": i % 5})
    return out


def run(pipeline: Path) -> Runner:
    runner = Runner(load_pipeline(str(pipeline)), "cache")
    runner.run()
    return runner


# --- a DAG over files shipped one per split ---

def test_official_splits_survive_split_and_only_the_other_rows_are_dealt_out(workdir):
    write_jsonl(workdir / "train.jsonl", reviews(40, "train"))
    write_jsonl(workdir / "dev.jsonl", reviews(10, "dev", 100))
    write_jsonl(workdir / "test.jsonl", reviews(10, "test", 200))
    write_jsonl(workdir / "more.jsonl", reviews(50, "more", 300))  # no split: `split` assigns these
    nodes = {name: {"uses": "read_jsonl", "with": {"path": f"{name}.jsonl", "lang": "zh", **extra}}
             for name, extra in (("train", {"split_as": "train"}), ("dev", {"split_as": "dev"}),
                                 ("test", {"split_as": "test"}), ("more", {}))}
    nodes["clean"] = {"uses": "normalize", "input": ["train", "dev", "test", "more"]}
    nodes["unique"] = {"uses": "exact_dedup", "input": "clean", "with": {"all_splits": True}}
    nodes["splits"] = {"uses": "split", "input": "unique", "with": {"val": 0.2, "test": 0.2}}
    out = run(write_pipeline(workdir / "p.yaml", nodes)).output("splits")
    rows = out.to_pylist()
    assert len(rows) == 110
    for r in rows:  # the reader's split, untouched; the other fields too, through normalize and dedup
        if r["meta_origin"] != "more":
            assert r["split"] == {"train": "train", "dev": "validation", "test": "test"}[r["meta_origin"]], r
    assert out.schema.field("meta_stars").type == pa.int64()
    more = Counter(r["split"] for r in rows if r["meta_origin"] == "more")
    for name, share in (("train", 0.6), ("validation", 0.2), ("test", 0.2)):  # shares of the 50 unassigned rows
        assert abs(more[name] - share * 50) <= 1, more


def test_a_split_field_of_the_data_is_kept_and_the_rows_without_one_are_assigned(workdir):
    records = reviews(30, "r")
    for i, r in enumerate(records):
        r["split"] = ("test" if i < 5 else "dev" if i < 10 else None)
    write_jsonl(workdir / "data.jsonl", records)
    out = run(write_pipeline(workdir / "p.yaml", {
        "raw": {"uses": "read_jsonl", "with": {"path": "data.jsonl"}},
        "splits": {"uses": "split", "input": "raw", "with": {"val": 0.1, "test": 0.1}}})).output("splits")
    got = out.column("split").to_pylist()
    assert got[:5] == ["test"] * 5 and got[5:10] == ["validation"] * 5
    assert set(got[10:]) <= {"train", "validation", "test"} and got[10:].count("train") == 16


def test_csv_files_of_official_splits_through_a_pipeline(workdir):
    (workdir / "train.tsv").write_text("sentence\tlabel\nnice one \t1\nawful \t0\n", encoding="utf-8")
    (workdir / "test.tsv").write_text("sentence\tlabel\ngood film \t1\n", encoding="utf-8")
    read = {"delimiter": "\t", "quoting": "none", "text_field": "sentence"}
    out = run(write_pipeline(workdir / "p.yaml", {
        "train": {"uses": "read_csv", "with": {"path": "train.tsv", "split_as": "train", **read}},
        "test": {"uses": "read_csv", "with": {"path": "test.tsv", "split_as": "test", **read}},
        "splits": {"uses": "split", "input": ["train", "test"]}})).output("splits")
    assert out.column("split").to_pylist() == ["train", "train", "test"]


# --- dataprep train on a file that has its splits ---

@pytest.fixture(scope="module")
def base_model(tmp_path_factory):
    """A tiny GPT-2 and its tokenizer, built offline (as tests/test_train.py builds one)."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("peft")
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

    from dataprep.models.tokenizer import TokenizerParams, train_tokenizer
    root = tmp_path_factory.mktemp("base") / "model"
    texts = [r["text"] for r in reviews(300, "t")]
    table = pa.table({"id": [str(i) for i in range(300)], "text": texts, "label": ["x"] * 300,
                      "lang": ["zh"] * 300, "source": ["t"] * 300})
    train_tokenizer.impl(lambda: iter([table]), TokenizerParams(vocab_size=400), root)
    tok = AutoTokenizer.from_pretrained(root)
    torch.manual_seed(0)
    GPT2LMHeadModel(GPT2Config(vocab_size=len(tok), n_positions=64, n_embd=32, n_layer=2, n_head=2,
                               pad_token_id=tok.pad_token_id)).save_pretrained(root)
    return root


TRAIN = ["--set", "epochs=1", "--set", "batch_size=8", "--set", "r=4", "--set", "alpha=8", "--set", "lr=0.005"]


def test_dataprep_train_uses_the_splits_of_what_dataprep_stage_split_wrote(workdir, base_model):
    cli = CliRunner()
    write_jsonl(workdir / "data.jsonl", reviews(60, "r"))
    result = cli.invoke(main, ["stage", "split", "data.jsonl", "-o", "split.parquet"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    splits = Counter(pq.read_table(workdir / "split.parquet").column("split").to_pylist())
    with _quiet():
        result = cli.invoke(main, ["train", "split.parquet", "-o", "adapter", "--cache-dir", "cache",
                                   "--set", f"base_model={base_model}", *TRAIN], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    metrics = json.loads((workdir / "adapter" / "metrics.json").read_text())
    assert metrics["train"]["examples"] == splits["train"] and metrics["split"] == "test"
    assert not (workdir / "cache" / "train-split" / "splits").exists()  # no second split: the file's were used


def test_dataprep_train_splits_only_the_rows_without_a_split(workdir, base_model):
    records = reviews(60, "r")
    for i, r in enumerate(records):
        r["split"] = "test" if i < 12 else None
    write_jsonl(workdir / "part.jsonl", records)
    with _quiet():
        result = CliRunner().invoke(main, ["train", "part.jsonl", "-o", "adapter", "--cache-dir", "cache",
                                           "--set", f"base_model={base_model}", *TRAIN], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert (workdir / "cache" / "train-part" / "splits").is_dir()
    runner = Runner(load_pipeline_of(workdir / "part.jsonl"), str(workdir / "cache"))
    got = runner.output("splits").column("split").to_pylist()
    assert got[:12] == ["test"] * 12 and "train" in got[12:]


def test_dataprep_train_prepares_a_raw_file_as_training_rows_are(workdir, base_model):
    records = reviews(60, "r") + [{"text": "好", "label": None}, {"text": "  ", "label": "pos"}]
    write_jsonl(workdir / "raw.jsonl", records)
    with _quiet():
        result = CliRunner().invoke(main, ["train", "raw.jsonl", "-o", "adapter", "--cache-dir", "cache",
                                           "--set", f"base_model={base_model}", *TRAIN], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    runner = Runner(load_pipeline_of(workdir / "raw.jsonl"), str(workdir / "cache"))
    reasons = runner.rejects("prepared").column("reason").to_pylist()
    assert sorted(reasons) == ["empty_text", "missing_label"]


def load_pipeline_of(path: Path):
    """The pipeline `dataprep train` ran for a JSONL file that needed a split node."""
    from dataprep.batch import train_pipeline_name
    from dataprep.dag import parse_pipeline
    nodes = {"input": {"uses": "read_jsonl", "with": {"path": str(path.name)}},
             "prepared": {"uses": "normalize", "input": "input"},
             "splits": {"uses": "split", "input": "prepared"}}
    return parse_pipeline({"name": train_pipeline_name(str(path)), "nodes": nodes})


class _quiet:
    """Silence the trainer's baseline warning (a tiny model on a toy task)."""

    def __enter__(self):
        import warnings
        self._w = warnings.catch_warnings()
        self._w.__enter__()
        warnings.simplefilter("ignore")

    def __exit__(self, *exc):
        return self._w.__exit__(*exc)


def test_every_row_has_a_split_looks_at_every_part(tmp_path):
    def part(name, **cols):
        pq.write_table(pa.table({"id": ["a", "b"], **cols}), tmp_path / name)
        return tmp_path / name
    split_ok = part("a.parquet", split=["train", "test"])
    assert every_row_has_a_split([split_ok])
    assert not every_row_has_a_split([split_ok, part("b.parquet", split=["train", None])])
    assert not every_row_has_a_split([split_ok, part("c.parquet", other=["x", "y"])])
    assert not every_row_has_a_split([part("d.parquet", split=["", "test"])])
    assert not every_row_has_a_split([])


# --- the real datasets, one file per split ---

def read_all(reader: str, path: Path, **params) -> pa.Table:
    stage = get(reader)
    outs = list(stage.impl(stage.make_params({"path": str(path), **params})))
    return pa.concat_tables([o.kept for o in outs], promote_options="permissive")


@needs_shared
def test_sst2_keeps_its_three_files_as_its_splits():
    root, tsv = SHARED / "en_sst2", {"delimiter": "\t", "quoting": "none", "text_field": "sentence"}
    table = pa.concat_tables([read_all("read_csv", root / f"{name}.tsv", split_as=name, **tsv)
                              for name in ("train", "dev", "test")])
    counts = Counter(table.column("split").to_pylist())
    assert counts == {"train": 60_614, "validation": 6_735, "test": 872}  # SOURCE.md's rows per file
    assert split(table, val=0.1, test=0.1)["split"].equals(table["split"])  # nothing left to assign


@needs_shared
@pytest.mark.parametrize("dataset, files, read, sentences", [
    ("ner_en_conll2003", ("eng.train", "eng.testa", "eng.testb"), {"delimiter": " ", "tag_col": 3},
     (14_041, 3_250, 3_453)),
    ("ner_zh_weibo", ("weiboNER_2nd_conll.train", "weiboNER_2nd_conll.dev", "weiboNER_2nd_conll.test"),
     {"delimiter": "\t", "strip_token_position": True}, (1_350, 270, 270)),
])
def test_conll_datasets_keep_their_files_as_their_splits(dataset, files, read, sentences):
    tables = [read_all("read_conll", SHARED / dataset / name, split_as=split_name, **read)
              for name, split_name in zip(files, ("train", "dev", "test"))]
    counts = [Counter(t.column("split").to_pylist()) for t in tables]
    assert counts == [{"train": sentences[0]}, {"validation": sentences[1]}, {"test": sentences[2]}]
    if dataset == "ner_en_conll2003":  # POS and chunk columns ride along, one per token
        first = tables[0].slice(0, 1).to_pylist()[0]
        assert first["tokens"][:2] == ["EU", "rejects"] and first["meta_col1"][:2] == ["NNP", "VBZ"]


@needs_shared
def test_fewclue_json_keeps_its_other_fields_typed():
    table = read_all("read_jsonl", SHARED / "zh_fewclue_tnews" / "train_few_all.json", text_field="sentence",
                     split_as="train")
    assert table.num_rows == 1_185  # SOURCE.md
    assert table.schema.field("meta_id").type == pa.int64()
    assert {"meta_label_desc", "meta_keywords"} <= set(table.column_names)
    assert set(table.column("split").to_pylist()) == {"train"}


@needs_shared
def test_chnsenticorp_has_no_split_of_its_own():
    table = read_all("read_csv", SHARED / "zh_chnsenticorp_htl" / "ChnSentiCorp_htl_all.csv", text_field="review")
    assert "split" not in table.column_names
