"""The record contract: validate() names what is wrong; conform() casts to canonical types and keeps extras."""
from __future__ import annotations

import pyarrow as pa
import pytest
from testkit import cls_table

from dataprep.errors import SchemaError
from dataprep.schema import BIO, CLS, conform, validate


def test_valid_cls_table_passes():
    validate(cls_table(["a"]), "cls")


def test_missing_column_is_named():
    with pytest.raises(SchemaError, match=r"missing column 'label' required by kind 'cls'"):
        validate(cls_table(["a"]).drop_columns(["label"]), "cls")


def test_wrong_type_is_named_with_both_types():
    table = cls_table(["a"]).set_column(2, "label", pa.array([1], pa.int64()))
    with pytest.raises(SchemaError, match=r"column 'label' is int64, kind 'cls' needs string"):
        validate(table, "cls")


def test_where_prefixes_the_message():
    with pytest.raises(SchemaError, match=r"^input of 'x': missing column"):
        validate(pa.table({"id": ["1"]}), "cls", where="input of 'x'")


def test_unknown_kind_is_rejected():
    with pytest.raises(SchemaError, match="unknown schema kind 'ner'"):
        validate(cls_table(["a"]), "ner")


def test_conform_casts_null_typed_columns_to_string():
    table = pa.table({"id": ["1"], "text": ["t"], "label": [None], "lang": [None], "source": ["s"]})
    assert table.schema.field("lang").type == pa.null()
    out = conform(table, "cls")
    assert out.schema.field("lang").type == pa.string()
    assert out.schema.field("label").type == pa.string()
    assert out.column("lang").to_pylist() == [None]


def test_conform_casts_large_string_to_string():
    table = cls_table(["a"])
    table = table.set_column(1, "text", table.column("text").cast(pa.large_string()))
    assert conform(table, "cls").schema.field("text").type == pa.string()


def test_extra_columns_are_kept_untouched():
    table = cls_table(["a", "b"], ppl=[1.5, 2.5])
    out = conform(table, "cls")
    assert out.column_names == CLS.names + ["ppl"]
    assert out.schema.field("ppl").type == pa.float64()
    assert out.column("ppl").to_pylist() == [1.5, 2.5]


def test_lineage_columns_are_optional():
    validate(cls_table(["a"]), "cls")  # no parent_id / aug: fine


def test_lineage_column_with_wrong_type_is_rejected():
    with pytest.raises(SchemaError, match=r"column 'parent_id' is int64"):
        validate(cls_table(["a"], parent_id=[7]), "cls")


def test_lineage_columns_are_conformed_when_present():
    table = cls_table(["a"], parent_id=pa.nulls(1), aug=pa.nulls(1))
    out = conform(table, "cls")
    assert out.schema.field("parent_id").type == pa.string()
    assert out.schema.field("aug").type == pa.string()


def test_bio_accepts_large_list_of_large_string_and_conforms_it():
    tokens = pa.array([["a", "b"]], pa.large_list(pa.large_string()))
    table = pa.table({"id": ["1"], "tokens": tokens, "tags": pa.array([["O", "O"]]), "lang": ["en"],
                      "source": ["s"]})
    out = conform(table, "bio")
    assert out.schema.field("tokens").type == BIO.field("tokens").type


def test_bio_rejects_tokens_as_plain_string():
    table = pa.table({"id": ["1"], "tokens": ["a b"], "tags": pa.array([["O", "O"]]), "lang": ["en"],
                      "source": ["s"]})
    with pytest.raises(SchemaError, match=r"column 'tokens' is string, kind 'bio' needs list<"):
        validate(table, "bio")


def test_bio_rejects_list_of_ints():
    table = pa.table({"id": ["1"], "tokens": pa.array([[1, 2]]), "tags": pa.array([["O", "O"]]),
                      "lang": ["en"], "source": ["s"]})
    with pytest.raises(SchemaError, match="'tokens'"):
        validate(table, "bio")
