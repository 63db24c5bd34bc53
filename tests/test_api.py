"""The Python API takes what users have (issue #13): pandas and polars DataFrames, datasets.Dataset and
DatasetDict in, the same type out; columns mapped and typed at the edge (dataprep/frames.py); help() and dir()."""
from __future__ import annotations

import inspect
import math
import pydoc
import subprocess
import sys

import pyarrow as pa
import pytest

import dataprep
from dataprep import exact_dedup, normalize, rebalance, split, to_bio2
from dataprep.errors import ConfigError, SchemaError

pd = pytest.importorskip("pandas")


def reasons(outcome) -> list[tuple[str, str]]:
    return list(zip(outcome.rejected["id"].to_pylist(), outcome.rejected["reason"].to_pylist()))


# --- same type in, same type out ---

def test_pandas_in_pandas_out_with_rejects_through_run():
    df = pd.DataFrame({"review": ["Good  movie", "", "ｂａｄ"], "stars": [1, 0, 0], "extra": [0.5, 1.5, 2.5]})
    out = normalize(df, text_field="review", label_field="stars")
    assert isinstance(out, pd.DataFrame)
    assert out["text"].tolist() == ["Good movie", "bad"]
    assert out["label"].tolist() == ["1", "0"]           # an integer label is its decimal string
    assert out["id"].tolist() == ["row:0", "row:2"]      # the row's position: df.iloc[2]
    assert out["source"].tolist() == ["memory", "memory"]
    assert out["extra"].tolist() == [0.5, 2.5]           # columns outside the contract are kept
    outcome = normalize.run(df, text_field="review", label_field="stars")
    assert isinstance(outcome.kept, pa.Table) and isinstance(outcome.rejected, pa.Table)
    assert reasons(outcome) == [("row:1", "empty_text")]


def test_polars_in_polars_out():
    pl = pytest.importorskip("polars")
    df = pl.DataFrame({"text": ["a b", "a  b", "中文 文本"], "label": pl.Series(["x", "x", "y"], dtype=pl.Categorical),
                       "n": [1, 2, 3]})
    out = exact_dedup(df, fold=["whitespace"])
    assert isinstance(out, pl.DataFrame)
    assert out["text"].to_list() == ["a b", "中文 文本"]
    assert out["lang"].to_list() == ["en", "zh"]         # no lang column: guessed from the script
    assert out["n"].to_list() == [1, 3]
    assert reasons(exact_dedup.run(df, fold=["whitespace"])) == [("row:1", "duplicate_of:row:0")]


def test_dataset_with_a_class_label_gets_its_names():
    datasets = pytest.importorskip("datasets")
    features = datasets.Features({"sentence": datasets.Value("string"), "idx": datasets.Value("int32"),
                                  "label": datasets.ClassLabel(names=["negative", "positive"])})
    ds = datasets.Dataset.from_dict({"sentence": ["nice", "awful", "meh"], "idx": [0, 1, 2], "label": [1, 0, -1]},
                                    features=features)
    out = normalize(ds, text_field="sentence")
    assert isinstance(out, datasets.Dataset)
    assert out["label"] == ["positive", "negative"]
    assert out["idx"] == [0, 1]
    assert reasons(normalize.run(ds, text_field="sentence")) == [("row:2", "missing_label")]  # -1: no label


def test_dataset_dict_each_split_processed_same_type_back():
    datasets = pytest.importorskip("datasets")
    dd = datasets.DatasetDict({
        "train": datasets.Dataset.from_dict({"text": ["good", "bad", "  "], "label": ["pos", "neg", "pos"]}),
        "test": datasets.Dataset.from_dict({"text": ["good", "fine"], "label": ["pos", "pos"]}),
    })
    out = normalize(dd)
    assert isinstance(out, datasets.DatasetDict) and list(out) == ["train", "test"]
    assert out["train"]["id"] == ["train:0", "train:1"] and out["test"]["id"] == ["test:0", "test:1"]
    assert "split" not in out["train"].column_names     # the split is the dict's key, as it came in
    outcome = normalize.run(dd)                         # one Outcome: its rows carry their split
    assert reasons(outcome) == [("train:2", "empty_text")]
    assert outcome.kept["split"].to_pylist() == ["train", "train", "test", "test"]


def test_dataset_dict_global_stages_follow_the_split_rule():
    datasets = pytest.importorskip("datasets")
    dd = datasets.DatasetDict({
        "train": datasets.Dataset.from_dict({"text": ["a", "b", "a", "c", "d", "e"], "label": list("xxxxxy")}),
        "test": datasets.Dataset.from_dict({"text": ["b", "z"], "label": ["x", "y"]}),
    })
    with pytest.raises(ConfigError, match=r"exact_dedup on a DatasetDict would touch .* all_splits=True"):
        exact_dedup(dd)
    across = exact_dedup.run(dd, all_splits=True)        # across splits: the first copy is kept
    assert reasons(across) == [("train:2", "duplicate_of:train:0"), ("test:0", "duplicate_of:train:1")]
    with pytest.raises(ConfigError, match=r"split: a DatasetDict is split already \(train, test\)"):
        split(dd)
    balanced = rebalance(dd, only_split="train")         # train alone; test passes through untouched
    assert balanced["train"]["label"].count("y") == 5
    assert balanced["test"]["text"] == ["b", "z"]


# --- columns: mapping, filling, types ---

def test_column_mapping_and_a_clash_is_an_error():
    df = pd.DataFrame({"body": ["x y"], "cat": ["spam"], "uid": [42], "language": ["de"]})
    out = exact_dedup(df, text_field="body", label_field="cat", id_field="uid", lang_field="language")
    assert out[["id", "text", "label", "lang"]].values.tolist() == [["42", "x y", "spam", "de"]]
    assert "body" not in out.columns                     # the mapped column takes the contract's name
    with pytest.raises(SchemaError, match="text_field='body' maps a column onto 'text', and there is a column"):
        exact_dedup(df.assign(text=["other"]), text_field="body", label_field="cat")
    with pytest.raises(SchemaError, match=r"no column 'review' \(text_field='review'\); columns: body, cat"):
        exact_dedup(df, text_field="review", label_field="cat")
    with pytest.raises(ConfigError, match="unknown parameter 'text_feild'.*columns: text_field"):
        exact_dedup(df, text_feild="body")
    with pytest.raises(ConfigError, match=r"^exact_dedup: bits: expected one of 64, 128, got 32$"):
        exact_dedup(df, text_field="body", label_field="cat", bits=32)


def test_a_bare_text_label_table_gets_id_lang_and_source():
    table = pa.table({"text": ["hello world", "你好世界"], "label": ["a", "b"]})
    out = exact_dedup(table)
    assert isinstance(out, pa.Table)
    assert out.column_names == ["id", "text", "label", "lang", "source"]
    assert out.to_pylist() == [
        {"id": "row:0", "text": "hello world", "label": "a", "lang": "en", "source": "memory"},
        {"id": "row:1", "text": "你好世界", "label": "b", "lang": "zh", "source": "memory"}]
    assert exact_dedup(table, lang="de", source="crawl")["lang"].to_pylist() == ["de", "de"]
    assert exact_dedup(table, source="crawl")["source"].to_pylist() == ["crawl", "crawl"]


@pytest.mark.parametrize("nulls", [[None, None], [math.nan, math.nan]])  # object nulls, and a float column
def test_an_all_null_lang_column_is_filled(nulls):
    df = pd.DataFrame({"text": ["good movie", "很好看"], "label": ["pos", "pos"], "lang": nulls})
    assert normalize(df)["lang"].tolist() == ["en", "zh"]        # normalize guesses, on the cleaned text
    assert exact_dedup(df)["lang"].tolist() == ["en", "zh"]      # the edge guesses for the others
    assert normalize(df, lang="xx")["lang"].tolist() == ["xx", "xx"]
    assert normalize(df, detect_lang=False)["lang"].isna().all()


@pytest.mark.parametrize("frame, message", [
    ({"text": ["a"], "label": [True]}, r"^column 'label' is bool; a label or id is a string or an integer"),
    ({"text": [1], "label": ["a"]}, r"^column 'text' is int64; it must hold strings"),
    ({"text": ["a", "b"], "label": ["x", 2]}, r"^column 'label' does not hold one type"),
    ({"text": ["a", "b"], "label": [1.0, 2.5]}, r"^column 'label' holds 2.5 \(row 1\)"),
    ({"text": ["a"], "label": [["x"]]}, r"^column 'label' is list<item: string>"),
    ({"text": ["a"], "label": ["x"], "lang": [3]}, r"^column 'lang' is int64"),
])
def test_a_wrong_type_is_one_line_naming_the_column(frame, message):
    with pytest.raises(SchemaError, match=message) as caught:
        normalize(pd.DataFrame(frame))
    assert "\n" not in str(caught.value)


def test_whole_floats_are_integers_and_nan_is_a_missing_label():
    df = pd.DataFrame({"text": ["a", "b", "c"], "label": [1, None, 0]})   # pandas makes it float64
    outcome = normalize.run(df)
    assert outcome.kept["label"].to_pylist() == ["1", "0"]
    assert reasons(outcome) == [("row:1", "missing_label")]


def test_bio_class_label_tags_are_mapped():
    datasets = pytest.importorskip("datasets")
    features = datasets.Features({"tokens": datasets.Sequence(datasets.Value("string")),
                                  "ner_tags": datasets.Sequence(datasets.ClassLabel(names=["O", "B-PER", "I-PER"]))})
    ds = datasets.Dataset.from_dict({"tokens": [["Ann", "Lee", "sings"], ["hi"]], "ner_tags": [[1, 2, 0], [0]]},
                                    features=features)
    out = to_bio2(ds, tags_field="ner_tags")
    assert out["tags"] == [["B-PER", "I-PER", "O"], ["O"]]
    with pytest.raises(SchemaError, match=r"column 'tags' is list<item: int64>; it must hold lists of strings"):
        to_bio2(pd.DataFrame({"tokens": [["a"]], "tags": [[1]]}))      # codes without their names


def test_sources_and_builds_are_not_functions_over_rows():
    with pytest.raises(TypeError, match="reads files"):
        dataprep.read_jsonl(pd.DataFrame({"text": ["a"], "label": ["b"]}))
    with pytest.raises(TypeError, match="builds a model"):
        dataprep.train_lora(pd.DataFrame({"text": ["a"], "label": ["b"]}))
    with pytest.raises(TypeError, match=r"got Series \(call .to_frame\(\) first\)"):
        normalize(pd.Series(["a"]))


# --- help(), dir(), import time ---

def test_help_shows_the_docstring_and_parameters():
    text = pydoc.render_doc(normalize, renderer=pydoc.plaintext)
    assert "normalize(data, /, *, nfkc: bool = True" in text
    assert "Normalize text and labels" in text and "Drop reasons" in text
    assert "label_map: dict[str | int, str] or null = None" in text and "rename labels" in text
    assert "Stage(name=" not in text
    signature = inspect.signature(exact_dedup)
    assert signature.parameters["fold"].default == [] and signature.parameters["text_field"].default == "text"


def test_dir_lists_the_stages():
    names = dir(dataprep)
    assert {"normalize", "exact_dedup", "split", "to_bio2", "read_jsonl", "run", "Runner"} <= set(names)
    assert "annotations" not in names


def test_import_dataprep_imports_no_dataframe_library():
    code = ("import sys, dataprep; dataprep.normalize; "
            "print(sorted(m for m in ('pandas', 'polars', 'datasets', 'torch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
