"""Readers turn dirty files into cls rows plus one reject per bad record (`<file>:<line>`, reason, raw record);
writers round-trip through the matching reader."""
from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from testkit import cls_table, write_jsonl

from dataprep.io import reader_for, write_table
from dataprep.outcome import Outcome
from dataprep.registry import get
from dataprep.schema import CLS, REJECTS


def read(reader: str, path, **params) -> Outcome:
    """Run a reader directly and gather every batch into one Outcome."""
    stage = get(reader)
    outs = list(stage.impl(stage.make_params({"path": str(path), **params})))
    kept = pa.concat_tables([o.kept for o in outs])
    rejected = pa.concat_tables([o.rejected for o in outs])
    assert kept.schema.equals(CLS) and rejected.schema.equals(REJECTS)
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
    back = out.kept.drop_columns(["source"])
    assert back.equals(TRICKY.drop_columns(["source"]))


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
