"""Readers turn dirty files into cls rows plus one reject per bad record (`<file>:<line>`, reason, raw record);
writers round-trip through the matching reader."""
from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from testkit import cls_table, write_jsonl

from dataprep.catalog import get
from dataprep.io import reader_for, write_table
from dataprep.outcome import Outcome
from dataprep.schema import CLS, REJECTS


def read(reader: str, path, **params) -> Outcome:
    """Run a reader directly and gather every batch into one Outcome: the contract's columns first, then only
    a `split` column and kept fields (`meta_*`)."""
    stage = get(reader)
    outs = list(stage.impl(stage.make_params({"path": str(path), **params})))
    kept = pa.concat_tables([o.kept for o in outs], promote_options="permissive")
    rejected = pa.concat_tables([o.rejected for o in outs])
    contract = pa.schema(list(kept.schema)[:len(CLS)])
    assert contract.equals(CLS) and rejected.schema.equals(REJECTS)
    assert all(n == "split" or n.startswith("meta_") for n in kept.column_names[len(CLS):]), kept.column_names
    return Outcome(kept, rejected)


def rows(out: Outcome, *cols) -> list[tuple]:
    return [tuple(r[c] for c in cols) for r in out.kept.to_pylist()]


def rejects(out: Outcome) -> list[tuple]:
    return [(r["id"], r["reason"], r["record"]) for r in out.rejected.to_pylist()]


# --- JSONL ---

def test_jsonl_good_records_get_file_line_ids_and_source(tmp_path):
    write_jsonl(tmp_path / "a.jsonl", [{"text": "hi", "label": "pos", "lang": "en"}, {"text": "yo", "label": "neg"}])
    out = read("read_jsonl", tmp_path / "a.jsonl", lang="xx")
    assert out.kept.to_pylist() == [
        {"id": "a.jsonl:1", "text": "hi", "label": "pos", "lang": "en", "source": "a.jsonl"},
        {"id": "a.jsonl:2", "text": "yo", "label": "neg", "lang": "xx", "source": "a.jsonl"},  # lang default
    ]
    assert out.rejected.num_rows == 0


def test_jsonl_bom_at_start_is_ignored(tmp_path):
    (tmp_path / "b.jsonl").write_bytes(b'\xef\xbb\xbf{"text": "a", "label": "x"}\n{"text": "b", "label": "y"}\n')
    out = read("read_jsonl", tmp_path / "b.jsonl")
    assert rows(out, "id", "text") == [("b.jsonl:1", "a"), ("b.jsonl:2", "b")]
    assert out.rejected.num_rows == 0


def test_jsonl_crlf_line_ends(tmp_path):
    (tmp_path / "c.jsonl").write_bytes(b'{"text": "a", "label": "x"}\r\n{"text": "b", "label": "y"}\r\n')
    out = read("read_jsonl", tmp_path / "c.jsonl")
    assert rows(out, "text", "label") == [("a", "x"), ("b", "y")]


def test_jsonl_blank_lines_are_skipped_but_counted(tmp_path):
    (tmp_path / "d.jsonl").write_bytes(b'\n{"text": "a", "label": "x"}\n   \n\n{"text": "b", "label": "y"}\n\n')
    out = read("read_jsonl", tmp_path / "d.jsonl")
    assert rows(out, "id") == [("d.jsonl:2",), ("d.jsonl:5",)]
    assert out.rejected.num_rows == 0


def test_jsonl_bad_lines_become_rejects_with_line_ids_and_raw_records(tmp_path):
    write_jsonl(tmp_path / "e.jsonl", [
        {"text": "ok", "label": "x"},            # 1
        '{"text": "broken", "label": ',           # 2 malformed
        b'{"text": "caf\xe9", "label": "x"}',     # 3 latin-1 byte: invalid utf-8
        '["a", "list"]',                          # 4 not an object
        '"just a string"',                        # 5 not an object
        {"label": "x"},                           # 6 no text
        {"text": "no label"},                     # 7 no label
        {"text": "ok2", "label": "y"},           # 8
    ])
    out = read("read_jsonl", tmp_path / "e.jsonl")
    assert rows(out, "id") == [("e.jsonl:1",), ("e.jsonl:8",)]
    assert rejects(out) == [
        ("e.jsonl:2", "malformed_json", '{"text": "broken", "label": '),
        ("e.jsonl:3", "invalid_utf8", '{"text": "caf\\xe9", "label": "x"}'),
        ("e.jsonl:4", "not_an_object", '["a", "list"]'),
        ("e.jsonl:5", "not_an_object", '"just a string"'),
        ("e.jsonl:6", "missing_field:text", '{"label": "x"}'),
        ("e.jsonl:7", "missing_field:label", '{"text": "no label"}'),
    ]


def test_jsonl_lone_surrogate_escape_is_rejected_not_a_crash(tmp_path):
    write_jsonl(tmp_path / "s.jsonl", ['{"text": "cut \\ud83d emoji", "label": "x"}',
                                       '{"text": "whole \\ud83d\\ude00 emoji", "label": "x"}'])
    out = read("read_jsonl", tmp_path / "s.jsonl")
    assert rows(out, "text") == [("whole \U0001F600 emoji",)]
    assert [(i, r) for i, r, _ in rejects(out)] == [("s.jsonl:1", "invalid_utf8")]


def test_jsonl_null_text_passes_through_for_normalize_to_judge(tmp_path):
    write_jsonl(tmp_path / "n.jsonl", [{"text": None, "label": "x"}])
    out = read("read_jsonl", tmp_path / "n.jsonl")
    assert rows(out, "text", "label") == [(None, "x")]


def test_jsonl_integer_labels_become_strings_other_numbers_are_rejected(tmp_path):
    write_jsonl(tmp_path / "f.jsonl", [{"text": "a", "label": 1}, {"text": "b", "label": 0.0},
                                       {"text": "c", "label": 2.5}])
    out = read("read_jsonl", tmp_path / "f.jsonl")
    assert [r[0] for r in rows(out, "label")] == ["1", "0"]
    assert [(i, r) for i, r, _ in rejects(out)] == [("f.jsonl:3", "bad_type:label:number")]  # not "2.5"


def test_jsonl_field_names_and_id_field_are_honoured(tmp_path):
    write_jsonl(tmp_path / "g.jsonl", [{"review": "great", "stars": "5", "rid": 17},
                                       {"review": "meh", "stars": "3"}])  # no id: falls back to <file>:<line>
    out = read("read_jsonl", tmp_path / "g.jsonl", text_field="review", label_field="stars", id_field="rid")
    assert rows(out, "id", "text", "label") == [("17", "great", "5"), ("g.jsonl:2", "meh", "3")]


def test_jsonl_batches_split_at_batch_rows(tmp_path):
    write_jsonl(tmp_path / "h.jsonl", [{"text": str(i), "label": "x"} for i in range(7)] + ["bad"])
    stage = get("read_jsonl")
    outs = list(stage.impl(stage.make_params({"path": str(tmp_path / "h.jsonl"), "batch_rows": 3})))
    assert [o.kept.num_rows + o.rejected.num_rows for o in outs] == [3, 3, 2]



@pytest.mark.parametrize("block_bytes", [7, 64, 1 << 20])
def test_jsonl_blocks_cut_at_line_boundaries_whatever_the_block_size(tmp_path, monkeypatch, block_bytes):
    """Tiny blocks force every case of the block reader: a line longer than a block, a cut mid-line, a BOM,
    a blank line and a last line without its newline; ids and rejects must not depend on where blocks end."""
    import dataprep.io.jsonl as jsonl
    body = b'\xef\xbb\xbf{"text": "first", "label": "x"}\n' + b'{"text": "%s", "label": "y"}\n' % (b"long " * 40) + \
        b'\n{bad\n{"text": "last", "label": "z"}'
    (tmp_path / "k.jsonl").write_bytes(body)
    monkeypatch.setattr(jsonl, "BLOCK_BYTES", block_bytes)
    out = read("read_jsonl", tmp_path / "k.jsonl")
    assert rows(out, "id", "label") == [("k.jsonl:1", "x"), ("k.jsonl:2", "y"), ("k.jsonl:5", "z")]
    assert rows(out, "text")[1] == (("long " * 40),)
    assert rejects(out) == [("k.jsonl:4", "malformed_json", "{bad")]

# --- CSV ---

def write(path, text: str | bytes):
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


def test_csv_header_and_quoted_fields(tmp_path):
    write(tmp_path / "a.csv", 'text,label,extra\n'
                              '"hello, world",pos,1\n'
                              '"she said ""hi""",neg,2\n'
                              'plain,pos,3\n')
    out = read("read_csv", tmp_path / "a.csv")
    assert rows(out, "id", "text", "label") == [
        ("a.csv:2", "hello, world", "pos"), ("a.csv:3", 'she said "hi"', "neg"), ("a.csv:4", "plain", "pos")]
    assert out.rejected.num_rows == 0


def test_csv_embedded_newline_keeps_the_id_of_the_first_line(tmp_path):
    write(tmp_path / "b.csv", 'text,label\n"line one\nline two\nline three",pos\nnext,neg\n')
    out = read("read_csv", tmp_path / "b.csv")
    assert rows(out, "id", "text") == [("b.csv:2", "line one\nline two\nline three"), ("b.csv:5", "next")]


def test_csv_crlf_and_bom(tmp_path):
    write(tmp_path / "w.csv", b'\xef\xbb\xbftext,label\r\n"a\r\nb",x\r\nc,y\r\n')
    out = read("read_csv", tmp_path / "w.csv")
    assert rows(out, "id", "text", "label") == [("w.csv:2", "a\nb", "x"), ("w.csv:4", "c", "y")]


def test_csv_stray_quote_inside_unquoted_field_is_text(tmp_path):
    write(tmp_path / "c.csv", 'text,label\nit is 5" long,pos\n')
    out = read("read_csv", tmp_path / "c.csv")
    assert rows(out, "text", "label") == [('it is 5" long', "pos")]


def test_csv_wrong_field_counts_are_rejected_with_raw_line(tmp_path):
    write(tmp_path / "d.csv", 'text,label\na,pos,extra\nb\nc,neg\n')
    out = read("read_csv", tmp_path / "d.csv")
    assert rows(out, "id") == [("d.csv:4",)]
    assert rejects(out) == [("d.csv:2", "bad_csv_row:fields=3", "a,pos,extra"),
                            ("d.csv:3", "bad_csv_row:fields=1", "b")]


def test_csv_empty_fields_become_null(tmp_path):
    write(tmp_path / "e.csv", 'text,label\n,pos\n')
    assert rows(read("read_csv", tmp_path / "e.csv"), "text", "label") == [(None, "pos")]


def test_csv_missing_column_is_missing_field(tmp_path):
    write(tmp_path / "f.csv", 'review,label\ngood,pos\n')
    out = read("read_csv", tmp_path / "f.csv")
    assert [(i, r) for i, r, _ in rejects(out)] == [("f.csv:2", "missing_field:text")]


def test_csv_without_header_uses_columns(tmp_path):
    write(tmp_path / "g.csv", 'pos,good one\nneg,bad one\n')
    out = read("read_csv", tmp_path / "g.csv", header=False, columns=["label", "text"])
    assert rows(out, "id", "text", "label") == [("g.csv:1", "good one", "pos"), ("g.csv:2", "bad one", "neg")]


def test_csv_without_header_or_columns_is_a_config_error(tmp_path):
    from dataprep.errors import ConfigError
    with pytest.raises(ConfigError, match="needs 'columns'"):
        get("read_csv").make_params({"path": "x.csv", "header": False}, node="raw")


def test_tsv_with_quoting_none_keeps_quotes_as_text(tmp_path):
    write(tmp_path / "h.tsv", 'text\tlabel\n"quoted" word\tpos\nhalf "open\tneg\n')
    out = read("read_csv", tmp_path / "h.tsv", delimiter="\t", quoting="none")
    assert rows(out, "id", "text", "label") == [("h.tsv:2", '"quoted" word', "pos"), ("h.tsv:3", 'half "open', "neg")]


def test_csv_unbalanced_quote_is_rejected_and_reading_continues(tmp_path):
    lines = ["text,label", "first,pos", '"never closed,neg'] + [f"row {i},pos" for i in range(25)]
    write(tmp_path / "u.csv", "\n".join(lines) + "\n")
    out = read("read_csv", tmp_path / "u.csv")
    assert rejects(out) == [("u.csv:3", "bad_csv_row:unbalanced_quote", '"never closed,neg')]
    ids = [r[0] for r in rows(out, "id")]
    assert ids == ["u.csv:2"] + [f"u.csv:{n}" for n in range(4, 29)]  # every line after the bad one is read


def test_csv_unbalanced_quote_at_end_of_file(tmp_path):
    write(tmp_path / "v.csv", 'text,label\nfirst,pos\n"oops,neg\nlast,pos\n')
    out = read("read_csv", tmp_path / "v.csv")
    assert rejects(out) == [("v.csv:3", "bad_csv_row:unbalanced_quote", '"oops,neg')]
    assert rows(out, "id", "text") == [("v.csv:2", "first"), ("v.csv:4", "last")]


def test_csv_max_record_lines_bounds_a_legit_multiline_field(tmp_path):
    write(tmp_path / "m.csv", 'text,label\n"a\nb\nc",pos\n')
    assert read("read_csv", tmp_path / "m.csv", max_record_lines=3).kept.num_rows == 1
    out = read("read_csv", tmp_path / "m.csv", max_record_lines=2)
    assert rejects(out)[0][:2] == ("m.csv:2", "bad_csv_row:unbalanced_quote")


def test_csv_invalid_utf8_line_is_rejected_alone(tmp_path):
    write(tmp_path / "i.csv", b'text,label\ngood,pos\ncaf\xe9,neg\nalso good,neg\n')
    out = read("read_csv", tmp_path / "i.csv")
    assert rows(out, "id") == [("i.csv:2",), ("i.csv:4",)]
    assert rejects(out) == [("i.csv:3", "invalid_utf8", "caf\\xe9,neg")]


def test_csv_a_very_long_field_is_read_not_a_crash(tmp_path):
    long = "x" * 300_000  # past Python's default csv field limit (128 KiB)
    write(tmp_path / "l.csv", f"text,label\n{long},pos\nshort,neg\n")
    out = read("read_csv", tmp_path / "l.csv")
    assert [len(t) for (t,) in rows(out, "text")] == [300_000, 5]


def test_csv_blank_lines_are_not_records(tmp_path):
    write(tmp_path / "k.csv", 'text,label\n\na,pos\n\n')
    out = read("read_csv", tmp_path / "k.csv")
    assert rows(out, "id") == [("k.csv:3",)] and out.rejected.num_rows == 0


# --- Parquet and HF datasets ---

def test_parquet_reader_maps_fields_and_numbers_rows(tmp_path):
    pq.write_table(pa.table({"review": ["a", "b", "c"], "stars": [1, 2, 3]}), tmp_path / "p.parquet")
    out = read("read_parquet", tmp_path / "p.parquet", text_field="review", label_field="stars", batch_rows=2)
    assert rows(out, "id", "text", "label", "source") == [
        ("p.parquet:1", "a", "1", "p.parquet"), ("p.parquet:2", "b", "2", "p.parquet"),
        ("p.parquet:3", "c", "3", "p.parquet")]


def test_parquet_reader_missing_column_rejects_every_row(tmp_path):
    pq.write_table(pa.table({"body": ["a", "b"], "label": ["x", "y"]}), tmp_path / "q.parquet")
    out = read("read_parquet", tmp_path / "q.parquet")
    assert out.kept.num_rows == 0
    assert [(i, r) for i, r, _ in rejects(out)] == [("q.parquet:1", "missing_field:text"),
                                                    ("q.parquet:2", "missing_field:text")]
    assert json.loads(rejects(out)[0][2]) == {"body": "a", "label": "x"}


def test_hf_reader_reads_a_saved_dataset(tmp_path):
    datasets = pytest.importorskip("datasets")
    ds = datasets.Dataset.from_dict({"sentence": ["good", "bad"], "label": [1, 0], "idx": [10, 11]})
    ds.save_to_disk(str(tmp_path / "ds"))
    out = read("read_hf", tmp_path / "ds", text_field="sentence", id_field="idx")
    assert rows(out, "id", "text", "label", "source") == [("10", "good", "1", "ds"), ("11", "bad", "0", "ds")]


def test_hf_reader_picks_a_split_of_a_dataset_dict(tmp_path):
    datasets = pytest.importorskip("datasets")
    dd = datasets.DatasetDict({
        "train": datasets.Dataset.from_dict({"text": ["t1"], "label": ["a"]}),
        "test": datasets.Dataset.from_dict({"text": ["e1", "e2"], "label": ["b", "c"]})})
    dd.save_to_disk(str(tmp_path / "dd"))
    out = read("read_hf", tmp_path / "dd", split="test")
    assert rows(out, "id", "text") == [("dd:1", "e1"), ("dd:2", "e2")]


# --- writers ---

TRICKY = cls_table(['plain', 'comma, here', 'quote "q"', 'new\nline', 'tab\there', 'unicode 中文 ✓'],
                   labels=["a", "b", "c", "d", "e", "f"], ids=[f"r{i}" for i in range(6)])


@pytest.mark.parametrize("ext, reader, extra", [
    ("jsonl", "read_jsonl", {}),
    ("csv", "read_csv", {}),
    ("tsv", "read_csv", {"delimiter": "\t"}),
    ("parquet", "read_parquet", {}),
])
def test_write_table_round_trips_through_the_matching_reader(tmp_path, ext, reader, extra):
    path = tmp_path / f"out.{ext}"
    write_table(TRICKY, str(path))
    assert reader_for(str(path)) == (reader, extra)
    out = read(reader, path, id_field="id", **extra)
    assert out.rejected.num_rows == 0
    back = out.kept.drop_columns(["source", "meta_source"])
    assert back.equals(TRICKY.drop_columns(["source"]))
    assert out.kept["meta_source"].equals(TRICKY["source"])  # a column the reader does not map is kept


def test_write_table_keeps_nulls_in_jsonl_and_parquet(tmp_path):
    table = cls_table(["a", None])
    for ext, reader in (("jsonl", "read_jsonl"), ("parquet", "read_parquet")):
        write_table(table, str(tmp_path / f"n.{ext}"))
        assert read(reader, tmp_path / f"n.{ext}").kept.column("text").to_pylist() == ["a", None]


def test_write_table_rejects_unknown_extensions(tmp_path):
    with pytest.raises(ValueError, match="cannot write"):
        write_table(TRICKY, str(tmp_path / "out.xlsx"))


def test_reader_for_picks_by_extension(tmp_path):
    (tmp_path / "dir").mkdir()
    assert reader_for("a.JSONL") == ("read_jsonl", {})
    assert reader_for(str(tmp_path / "dir")) == ("read_hf", {})
    with pytest.raises(ValueError, match="no reader"):
        reader_for("a.txt")


# --- the input's other fields and its own split ---

def test_jsonl_keeps_other_fields_typed_under_meta(tmp_path):
    write_jsonl(tmp_path / "m.jsonl", [
        {"text": "a", "label": "x", "kw": "k1", "n": 1, "score": 0.5, "ok": True, "tags": {"a": [1, "b"]},
         "nothing": None},
        {"text": "b", "label": "y", "n": 2.0, "score": 2, "tags": "plain"},  # 2.0 fits an int, 2 a float
        {"text": "c", "label": "y", "kw": None}])
    out = read("read_jsonl", tmp_path / "m.jsonl")
    assert out.rejected.num_rows == 0
    assert out.kept.schema.names[5:] == ["meta_kw", "meta_n", "meta_score", "meta_ok", "meta_tags", "meta_nothing"]
    assert out.kept.schema.types[5:] == [pa.string(), pa.int64(), pa.float64(), pa.bool_(), pa.string(), pa.null()]
    assert rows(out, "meta_kw", "meta_n", "meta_score", "meta_ok", "meta_tags") == [
        ("k1", 1, 0.5, True, '{"a":[1,"b"]}'), (None, 2, 2.0, None, '"plain"'), (None, None, None, None, None)]


@pytest.mark.parametrize("line, reason", [
    ({"text": "b", "label": "y", "kw": 5}, "bad_type:meta_kw:number"),    # the first line made kw a string
    ({"text": "b", "label": "y", "n": 2.5}, "bad_type:meta_n:number"),    # ... and n an integer
    ({"text": "b", "label": "y", "n": "2"}, "bad_type:meta_n:string"),
    ({"text": "b", "label": "y", "ok": 1}, "bad_type:meta_ok:number"),
    ({"text": "b", "label": "y", "n": 2 ** 63}, "bad_type:meta_n:number"),  # no int64 holds it
])
def test_jsonl_a_later_value_of_another_type_is_rejected_by_name(tmp_path, line, reason):
    write_jsonl(tmp_path / "m.jsonl", [{"text": "a", "label": "x", "kw": "s", "n": 1, "ok": False}, line])
    out = read("read_jsonl", tmp_path / "m.jsonl")
    assert [(i, r) for i, r, _ in rejects(out)] == [("m.jsonl:2", reason)]
    assert rows(out, "id") == [("m.jsonl:1",)]


def test_jsonl_keep_fields_none_or_a_list(tmp_path):
    write_jsonl(tmp_path / "m.jsonl", [{"text": "a", "label": "x", "kw": "k", "n": 1}, {"text": "b", "label": "y"}])
    assert read("read_jsonl", tmp_path / "m.jsonl", keep_fields="none").kept.column_names == list(CLS.names)
    named = read("read_jsonl", tmp_path / "m.jsonl", keep_fields=["n", "absent"]).kept
    assert named.column_names == [*CLS.names, "meta_n", "meta_absent"]
    assert named["meta_n"].to_pylist() == [1, None] and named["meta_absent"].null_count == 2


def test_keep_fields_cannot_name_a_mapped_field(workdir):
    from dataprep.errors import ConfigError
    write_jsonl(workdir / "m.jsonl", [{"text": "a", "label": "x"}])
    with pytest.raises(ConfigError, match="already maps"):
        get("read_jsonl").make_params({"path": "m.jsonl", "keep_fields": ["label"]})


def test_jsonl_a_field_first_seen_in_a_later_block_adds_its_column_there(tmp_path, monkeypatch):
    import dataprep.io.jsonl as jsonl
    monkeypatch.setattr(jsonl, "BLOCK_BYTES", 64)
    write_jsonl(tmp_path / "m.jsonl", [{"text": f"t{i}", "label": "x"} for i in range(6)]
                + [{"text": "late", "label": "x", "late": "here"}])
    outs = list(get("read_jsonl").impl(get("read_jsonl").make_params({"path": str(tmp_path / "m.jsonl")})))
    assert "meta_late" not in outs[0].kept.column_names and "meta_late" in outs[-1].kept.column_names
    table = pa.concat_tables([o.kept for o in outs], promote_options="permissive")
    assert table["meta_late"].to_pylist() == [None] * 6 + ["here"]


@pytest.mark.parametrize("value, split", [
    ("train", "train"), ("TEST", "test"), ("dev", "validation"), ("Valid", "validation"), ("val", "validation"),
    ("validation", "validation"), ("training", "train"), ("", None), (None, None)])
def test_jsonl_a_split_field_lands_in_the_split_column(tmp_path, value, split):
    write_jsonl(tmp_path / "s.jsonl", [{"text": "a", "label": "x", "split": value}, {"text": "b", "label": "y",
                                                                                      "split": "train"}])
    out = read("read_jsonl", tmp_path / "s.jsonl")
    assert rows(out, "split") == [(split,), ("train",)] and "meta_split" not in out.kept.column_names


def test_jsonl_split_values_that_are_no_split_are_rejected(tmp_path):
    write_jsonl(tmp_path / "s.jsonl", [{"text": "a", "label": "x", "split": "unlabeled"},
                                       {"text": "b", "label": "x", "split": 1},
                                       {"text": "c", "label": "x", "fold": "test"}])
    out = read("read_jsonl", tmp_path / "s.jsonl")
    assert [(i, r) for i, r, _ in rejects(out)] == [("s.jsonl:1", "bad_split:unlabeled"),
                                                    ("s.jsonl:2", "bad_type:split:number")]
    own = read("read_jsonl", tmp_path / "s.jsonl", split_field="fold", split_as="train")  # `split` is a field now
    assert rows(own, "id", "split", "meta_split") == [("s.jsonl:1", "train", "unlabeled"), ("s.jsonl:3", "test", None)]
    assert [(i, r) for i, r, _ in rejects(own)] == [("s.jsonl:2", "bad_type:meta_split:number")]


def test_split_as_names_the_split_of_rows_without_one(tmp_path):
    write_jsonl(tmp_path / "dev.jsonl", [{"text": "a", "label": "x"}, {"text": "b", "label": "x", "split": "test"}])
    out = read("read_jsonl", tmp_path / "dev.jsonl", split_as="dev")
    assert rows(out, "split") == [("validation",), ("test",)]
    from dataprep.errors import ConfigError
    with pytest.raises(ConfigError, match="split_as must be train, validation or test"):
        get("read_jsonl").make_params({"path": "x", "split_as": "holdout"})


def test_csv_keeps_other_columns_as_strings_and_reads_its_split(tmp_path):
    write(tmp_path / "a.csv", "text,label,split,source,,notes\nhi,pos,dev,web,x,\nyo,neg,,book,,n2\n")
    out = read("read_csv", tmp_path / "a.csv")
    assert out.kept.column_names == [*CLS.names, "split", "meta_source", "meta_col4", "meta_notes"]
    assert rows(out, "split", "meta_source", "meta_col4", "meta_notes") == [
        ("validation", "web", "x", None), (None, "book", None, "n2")]
    assert read("read_csv", tmp_path / "a.csv", keep_fields=["notes"]).kept.column_names == [
        *CLS.names, "split", "meta_notes"]


def test_csv_keep_fields_naming_an_absent_column_is_an_error(tmp_path):
    from dataprep.errors import InputError
    write(tmp_path / "a.csv", "text,label\nhi,pos\n")
    with pytest.raises(InputError, match="keep_fields names 'note'"):
        read("read_csv", tmp_path / "a.csv", keep_fields=["note"])


def test_parquet_keeps_other_columns_typed_and_its_split(tmp_path):
    table = pa.table({"text": ["a", "b", "c"], "label": ["x", "y", "x"], "split": ["train", "Dev", None],
                      "n": pa.array([1, 2, None], pa.int32()), "tags": [["p"], [], None],
                      "cat": pa.array(["u", "v", "u"]).dictionary_encode()})
    pq.write_table(table, tmp_path / "p.parquet")
    out = read("read_parquet", tmp_path / "p.parquet", batch_rows=2)
    assert out.kept.column_names == [*CLS.names, "split", "meta_n", "meta_tags", "meta_cat"]
    assert out.kept.schema.field("meta_n").type == pa.int32()
    assert out.kept.schema.field("meta_tags").type == pa.list_(pa.string())
    assert rows(out, "split", "meta_n", "meta_tags", "meta_cat") == [
        ("train", 1, ["p"], "u"), ("validation", 2, [], "v"), (None, None, None, "u")]


def test_parquet_bad_splits_and_invalid_utf8_in_a_kept_column_are_rejected(tmp_path):
    bad = pa.array([b"ok", b"\xff", b"fine"], pa.binary()).cast(pa.string(), safe=False)
    pq.write_table(pa.table({"text": ["a", "b", "c"], "label": ["x", "y", "z"], "split": ["test", "test", "other"],
                             "note": bad}), tmp_path / "p.parquet")
    out = read("read_parquet", tmp_path / "p.parquet")
    assert [(i, r) for i, r, _ in rejects(out)] == [("p.parquet:2", "invalid_utf8:meta_note"),
                                                    ("p.parquet:3", "bad_split:other")]
    assert rows(out, "id", "split") == [("p.parquet:1", "test")]


def test_parquet_written_by_split_reads_back_with_its_splits(tmp_path):
    from dataprep import split
    table = cls_table([f"text {i}" for i in range(20)])
    pq.write_table(split(table), tmp_path / "s.parquet")
    out = read("read_parquet", tmp_path / "s.parquet", id_field="id")
    assert out.kept["split"].equals(split(table)["split"])
    assert out.kept["meta_source"].to_pylist() == ["t"] * 20


def test_hf_reader_reads_every_split_of_a_dataset_dict_by_default(tmp_path):
    datasets = pytest.importorskip("datasets")
    dd = datasets.DatasetDict({
        "train": datasets.Dataset.from_dict({"text": ["t1", "t2"], "label": ["a", "b"], "x": [1, 2]}),
        "dev": datasets.Dataset.from_dict({"text": ["d1"], "label": ["a"], "x": [3]}),
        "test": datasets.Dataset.from_dict({"text": ["e1"], "label": ["b"], "x": [4]})})
    dd.save_to_disk(str(tmp_path / "dd"))
    out = read("read_hf", tmp_path / "dd")
    assert rows(out, "id", "text", "split", "meta_x") == [
        ("dd/train:1", "t1", "train", 1), ("dd/train:2", "t2", "train", 2), ("dd/dev:1", "d1", "validation", 3),
        ("dd/test:1", "e1", "test", 4)]
    assert "split" not in read("read_hf", tmp_path / "dd", split="test").kept.column_names


def test_hf_a_split_name_that_is_no_split_rejects_its_rows(tmp_path):
    datasets = pytest.importorskip("datasets")
    dd = datasets.DatasetDict({"train": datasets.Dataset.from_dict({"text": ["t"], "label": ["a"]}),
                               "unsupervised": datasets.Dataset.from_dict({"text": ["u"], "label": ["a"]})})
    dd.save_to_disk(str(tmp_path / "dd"))
    out = read("read_hf", tmp_path / "dd")
    assert [(i, r) for i, r, _ in rejects(out)] == [("dd/unsupervised:1", "bad_split:unsupervised")]
    assert rows(read("read_hf", tmp_path / "dd", split="unsupervised", split_as="train"), "split") == [("train",)]


def test_parallel_keeps_its_other_columns(tmp_path):
    write(tmp_path / "p.tsv", "你好\thello\tCC-BY 2.0 (France) Attribution: tatoeba.org #1\n再见\tbye\t\n")
    out = get("read_parallel").impl(get("read_parallel").make_params({"path": str(tmp_path / "p.tsv"), "fields": 3}))
    table = pa.concat_tables([o.kept for o in out], promote_options="permissive")
    assert table.column_names[5:] == ["meta_col2"]
    assert table["meta_col2"].to_pylist() == ["CC-BY 2.0 (France) Attribution: tatoeba.org #1", None]
    none = get("read_parallel").impl(get("read_parallel").make_params(
        {"path": str(tmp_path / "p.tsv"), "fields": 3, "keep_fields": "none"}))
    assert next(iter(none)).kept.column_names == ["id", "src", "tgt", "src_lang", "tgt_lang"]


def test_hf_a_class_label_is_its_names_and_minus_one_is_no_label(tmp_path):
    datasets = pytest.importorskip("datasets")
    features = datasets.Features({"text": datasets.Value("string"),
                                  "label": datasets.ClassLabel(names=["neg", "pos"])})
    dd = datasets.DatasetDict({
        "train": datasets.Dataset.from_dict({"text": ["a", "b"], "label": [1, 0]}, features=features),
        "test": datasets.Dataset.from_dict({"text": ["c"], "label": [-1]}, features=features)})
    dd.save_to_disk(str(tmp_path / "glue"))
    assert rows(read("read_hf", tmp_path / "glue"), "label", "split") == [("pos", "train"), ("neg", "train"),
                                                                           (None, "test")]
