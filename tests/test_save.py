"""`dataprep save` and `dataprep.save.load`: a node's rows as files that pandas, polars, datasets and
LLaMA-Factory read, one per split, in one schema."""
from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from testkit import write_jsonl, write_pipeline

from dataprep.cli import main
from dataprep.dag import load_pipeline
from dataprep.errors import ConfigError
from dataprep.runner import Runner
from dataprep.save import load, save, save_node


@pytest.fixture
def split_run(workdir):
    """40 review rows split 60/20/20, and 20 NER rows, each cached."""
    write_jsonl(workdir / "in.jsonl", [{"text": f"review number {i}", "label": "pos" if i % 3 else "neg"}
                                       for i in range(40)])
    write_jsonl(workdir / "ner.jsonl", [{"tokens": ["张", "三", "在", "北", "京"],
                                         "tags": ["B-PER", "I-PER", "O", "B-LOC", "I-LOC"]}] * 1 +
                [{"tokens": ["去", f"{i}"], "tags": ["O", "O"]} for i in range(19)])
    path = write_pipeline(workdir / "p.yaml", {
        "raw": {"uses": "read_jsonl", "with": {"path": "in.jsonl"}},
        "splits": {"uses": "split", "input": "raw", "with": {"val": 0.2, "test": 0.2}},
        "ner": {"uses": "read_jsonl", "with": {"path": "ner.jsonl", "kind": "bio", "lang": "zh"}},
    })
    Runner(load_pipeline(path), "runs").run()
    return path


def test_one_file_per_split_that_pandas_polars_and_datasets_read(split_run, workdir):
    counts = save_node(str(split_run), "splits", workdir / "out", "parquet")
    assert list(counts) == ["train", "validation", "test"] and sum(counts.values()) == 40
    import pandas as pd
    frame = pd.read_parquet(workdir / "out" / "train.parquet")
    assert len(frame) == counts["train"] and set(frame["split"]) == {"train"}
    assert list(frame.columns[:5]) == ["id", "text", "label", "lang", "source"]
    polars = pytest.importorskip("polars")
    assert polars.read_parquet(workdir / "out" / "test.parquet").height == counts["test"]
    from datasets import load_dataset
    splits = load_dataset("parquet", data_dir=str(workdir / "out"))
    assert {name: len(d) for name, d in splits.items()} == counts


def test_jsonl_keeps_every_column_and_the_rows(split_run, workdir):
    save_node(str(split_run), "splits", workdir / "out", "jsonl")
    rows = [json.loads(line) for line in (workdir / "out" / "validation.jsonl").read_text().splitlines()]
    assert rows and all(r["split"] == "validation" and r["text"].startswith("review") for r in rows)


def test_hf_format_is_a_dataset_dict_on_disk(split_run, workdir):
    from datasets import load_from_disk
    counts = save_node(str(split_run), "splits", workdir / "hf", "hf")
    loaded = load_from_disk(str(workdir / "hf"))
    assert {name: len(d) for name, d in loaded.items()} == counts
    assert loaded["train"][0]["text"].startswith("review")


def test_llamafactory_format_writes_alpaca_records_and_their_registry(split_run, workdir):
    save_node(str(split_run), "splits", workdir / "lf", "llamafactory")
    info = json.loads((workdir / "lf" / "dataset_info.json").read_text())
    assert set(info) == {"p_splits_train", "p_splits_validation", "p_splits_test"}
    assert info["p_splits_train"] == {"file_name": "train.json", "formatting": "alpaca",
                                      "columns": {"prompt": "instruction", "query": "input", "response": "output"}}
    [first, *_] = json.loads((workdir / "lf" / "train.json").read_text())
    assert first["instruction"] == "Classify the text. Answer with one of: neg, pos."
    assert first["input"].startswith("review") and first["output"] in ("neg", "pos")


def test_ner_rows_become_entity_lists_or_conll_and_never_csv(split_run, workdir):
    save_node(str(split_run), "ner", workdir / "lf", "llamafactory")
    records = json.loads((workdir / "lf" / "data.json").read_text())
    assert records[0]["input"] == "张三在北京" and records[0]["output"] == "PER: 张三\nLOC: 北京"
    assert records[1]["output"] == "none"
    save_node(str(split_run), "ner", workdir / "conll", "conll")
    assert (workdir / "conll" / "data.conll").read_text().startswith("张\tB-PER\n")
    with pytest.raises(ConfigError, match="CSV cannot"):
        save_node(str(split_run), "ner", workdir / "csv", "csv")


def test_a_second_save_does_not_overwrite_unless_asked(split_run, workdir):
    save_node(str(split_run), "splits", workdir / "out", "parquet")
    with pytest.raises(ConfigError, match="train.parquet exists; pass --overwrite"):
        save_node(str(split_run), "splits", workdir / "out", "parquet")
    save_node(str(split_run), "splits", workdir / "out", "parquet", overwrite=True)


def test_load_gives_the_nodes_rows_and_names_what_is_missing(split_run, workdir):
    table = load(str(split_run), "splits")
    assert table.num_rows == 40 and "split" in table.column_names
    with pytest.raises(ConfigError, match="no node 'nope' in pipeline p"):
        load(str(split_run), "nope")
    (workdir / "more.jsonl").write_text('{"text": "x", "label": "a"}\n')
    other = write_pipeline(workdir / "q.yaml", {"raw": {"uses": "read_jsonl", "with": {"path": "more.jsonl"}}},
                           name="q")
    with pytest.raises(ConfigError, match="'raw' has not run yet"):
        load(str(other), "raw")


def test_parts_of_different_schemas_are_saved_as_one(workdir):
    """Added rows carry lineage columns the originals lack: the saved file holds both, nulls filled."""
    table = pa.concat_tables([
        pa.table({"id": ["a"], "text": ["x"], "label": ["l"], "lang": ["en"], "source": ["s"]}),
        pa.table({"id": ["b"], "text": ["y"], "label": ["l"], "lang": ["en"], "source": ["s"],
                  "parent_id": ["a"], "aug": ["bt:en"]})], promote_options="permissive")
    save(table, workdir / "o", "parquet", "cls")
    assert pq.read_table(workdir / "o" / "data.parquet").column("aug").to_pylist() == [None, "bt:en"]


def test_the_save_command_reports_rows_per_split(split_run, workdir):
    result = CliRunner().invoke(main, ["save", str(split_run), "splits", "-o", "out", "--format", "jsonl"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("saved splits (jsonl) to out: train ")
    again = CliRunner().invoke(main, ["save", str(split_run), "splits", "-o", "out", "--format", "jsonl"])
    assert again.exit_code == 1 and again.output.startswith("Error: out/train.jsonl exists")
