"""Hostile inputs through every reader: no record crashes a node, no value is coerced silently, every ledger
balances. A bad record is a reject with `<file>:<line>` and an exact reason; a file that cannot be read at all
is one InputError line naming it. The second half drives each reader with random bytes and random JSON."""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import dataprep.io.jsonl as jsonl
from dataprep.catalog import get
from dataprep.errors import ConfigError, DataprepError, InputError
from dataprep.ledger import Ledger
from dataprep.outcome import Outcome
from dataprep.overlap import prefetch
from dataprep.schema import REJECTS, conform, empty


def drive(reader: str, path, **params) -> Outcome:
    """Run a reader as the runner does — on a prefetch thread, each batch counted by a ledger and conformed to
    the record contract — and check what the runner checks, plus that every string is valid UTF-8."""
    stage = get(reader)
    p = stage.make_params({"path": str(path), **params})
    kind, ledger, outs = stage.output_kind(p, None), Ledger(), []
    for outcome in prefetch(stage.impl(p)):
        ledger.record(outcome, None, reader)
        conform(outcome.output(), kind)
        outs.append(outcome)
    kept = pa.concat_tables([o.kept for o in outs], promote_options="permissive") if outs else empty(kind)
    rejected = pa.concat_tables([o.rejected for o in outs]) if outs else REJECTS.empty_table()
    ledger.check(reader, kept.num_rows, rejected.num_rows)
    kept.validate(full=True)
    rejected.validate(full=True)
    assert rejected.schema.equals(REJECTS)
    return Outcome(kept, rejected)


def reasons(out: Outcome) -> list[tuple[str, str]]:
    return [(r["id"], r["reason"]) for r in out.rejected.to_pylist()]


def kept(out: Outcome, *cols) -> list[tuple]:
    return [tuple(r[c] for c in cols) for r in out.kept.to_pylist()]


def write(path: Path, data: bytes | str) -> Path:
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def one_line_error(excinfo) -> str:
    message = str(excinfo.value)
    assert "\n" not in message
    return message


BLOCKS = [1, 64, 16 << 20]  # one line a block, a few lines a block, the whole file one block


@pytest.fixture(params=BLOCKS, ids=lambda b: f"block{b}")
def blocks(request, monkeypatch):
    """Every JSONL case runs with the fast path on single lines, on small blocks, and on the whole file."""
    monkeypatch.setattr(jsonl, "BLOCK_BYTES", request.param)
    return request.param


GOOD = b'{"text": "ok", "label": "x"}'


# --- JSONL: depth ---

def test_jsonl_a_5000_deep_array_is_one_reject(tmp_path, blocks):
    path = write(tmp_path / "d.jsonl", GOOD + b"\n" + b"[" * 5000 + b"]" * 5000 + b"\n" + GOOD + b"\n")
    out = drive("read_jsonl", path)
    assert reasons(out) == [("d.jsonl:2", "too_deep")]
    assert kept(out, "id") == [("d.jsonl:1",), ("d.jsonl:3",)]


def test_jsonl_a_deep_label_is_one_reject(tmp_path, blocks):
    deep = b'{"text": "a", "label": ' + b'{"a": ' * 5000 + b"1" + b"}" * 5000 + b"}"
    out = drive("read_jsonl", write(tmp_path / "d.jsonl", GOOD + b"\n" + deep + b"\n"))
    assert reasons(out) == [("d.jsonl:2", "too_deep")]


def test_jsonl_depth_limit_is_1024_levels(tmp_path, blocks):
    path = write(tmp_path / "d.jsonl", b"[" * 1024 + b"]" * 1024 + b"\n" + b"[" * 1025 + b"]" * 1025 + b"\n")
    assert reasons(drive("read_jsonl", path)) == [("d.jsonl:1", "not_an_object"), ("d.jsonl:2", "too_deep")]


def test_jsonl_bio_deep_record_is_one_reject(tmp_path):
    deep = b'{"tokens": ["a"], "tags": ' + b"[" * 3000 + b"]" * 3000 + b"}"
    out = drive("read_jsonl", write(tmp_path / "d.jsonl", deep + b'\n{"tokens": ["a"], "tags": ["O"]}\n'), kind="bio")
    assert reasons(out) == [("d.jsonl:1", "too_deep")]
    assert kept(out, "tokens") == [(["a"],)]


@pytest.mark.parametrize("keep", ["none", ["other"]])
def test_jsonl_deep_value_under_an_unread_key_is_kept_on_every_path(tmp_path, blocks, keep):
    """The fast path skips keys it does not read without looking; the slow path (forced here by a bad line in
    the same block) must keep the same line with the same values."""
    deep = b'{"text": "t", "label": "l", "meta": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    out = drive("read_jsonl", write(tmp_path / "d.jsonl", deep + b"\n{bad\n"), lang="zh", keep_fields=keep)
    assert kept(out, "id", "text", "label", "lang") == [("d.jsonl:1", "t", "l", "zh")]
    assert reasons(out) == [("d.jsonl:2", "malformed_json")]


def test_jsonl_deep_value_under_a_kept_key_is_too_deep(tmp_path, blocks):
    """keep_fields all reads every key: a value nested past 1024 levels cannot be kept, so its line goes."""
    deep = b'{"text": "t", "label": "l", "meta": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    out = drive("read_jsonl", write(tmp_path / "d.jsonl", deep + b"\n" + GOOD + b"\n"))
    assert reasons(out) == [("d.jsonl:1", "too_deep")] and kept(out, "id") == [("d.jsonl:2",)]


# --- JSONL: types ---

@pytest.mark.parametrize("line, reason", [
    ('{"text": "a", "label": ["a", "b"]}', "bad_type:label:list"),
    ('{"text": "a", "label": {"a": 1}}', "bad_type:label:object"),
    ('{"text": "a", "label": true}', "bad_type:label:bool"),
    ('{"text": "a", "label": 2.5}', "bad_type:label:number"),
    ('{"text": "a", "label": NaN}', "bad_type:label:number"),
    ('{"text": "a", "label": -Infinity}', "bad_type:label:number"),
    ('{"text": "a", "label": 1e20}', "bad_type:label:number"),  # past 2**53 a float is no exact integer
    ('{"text": "a", "label": 123456789012345678901234}', "bad_type:label:number"),  # orjson: a float
    ('{"text": 123, "label": "x"}', "bad_type:text:number"),
    ('{"text": NaN, "label": "x"}', "bad_type:text:number"),
    ('{"text": Infinity, "label": "x"}', "bad_type:text:number"),
    ('{"text": false, "label": "x"}', "bad_type:text:bool"),
    ('{"text": ["a"], "label": "x"}', "bad_type:text:list"),
    ('{"text": {"t": "a"}, "label": "x"}', "bad_type:text:object"),
    ('{"text": "a", "label": "x", "lang": 5}', "bad_type:lang:number"),
    ('{"text": "a", "label": "x", "lang": ["zh"]}', "bad_type:lang:list"),
    ('{"text": "a", "label": "x", "id": true}', "bad_type:id:bool"),
    ('{"text": "a", "label": "x", "id": 1.5}', "bad_type:id:number"),
    ('{"text": "a", "label": "x", "id": {"k": 1}}', "bad_type:id:object"),
    ('{"text": "a", "text": "b", "label": "x"}', "duplicate_key:text"),
    ('{"text": "a", "label": "x", "label": "y"}', "duplicate_key:label"),
    ('[{"text": "a", "label": "x"}]', "not_an_object"),
    ('"text"', "not_an_object"),
    ("17", "not_an_object"),
    ("null", "not_an_object"),
    ("true", "not_an_object"),
    ('{"text": "a", "label": "x"}{"text": "b", "label": "y"}', "malformed_json"),
    ('{"text": "a", "label": "x"},', "malformed_json"),
    ("{'text': 'a', 'label': 'x'}", "malformed_json"),
    ('{"text": "a", "label": "x", "o": "\\ud800"}', "invalid_utf8"),  # a lone surrogate, even unread
])
def test_jsonl_values_of_the_wrong_type_are_rejected_by_name(tmp_path, blocks, line, reason):
    out = drive("read_jsonl", write(tmp_path / "t.jsonl", GOOD + b"\n" + line.encode() + b"\n" + GOOD),
                id_field="id")
    assert reasons(out) == [("t.jsonl:2", reason)]
    assert kept(out, "id") == [("t.jsonl:1",), ("t.jsonl:3",)]


@pytest.mark.parametrize("value, label", [
    ("1", "1"), ("-3", "-3"), ("0.0", "0"), ("1.0", "1"), ("18446744073709551615", "18446744073709551615"),
    ('"1"', "1"), ('" pos "', " pos "), ("null", None),
])
def test_jsonl_integer_labels_are_their_decimal_string(tmp_path, blocks, value, label):
    path = write(tmp_path / "n.jsonl", b'{"text": "a", "label": %s}\n' % value.encode())
    out = drive("read_jsonl", path)
    assert kept(out, "label") == [(label,)] and reasons(out) == []


def test_jsonl_integer_ids_are_their_decimal_string_null_ids_are_the_line(tmp_path, blocks):
    path = write(tmp_path / "i.jsonl", '{"text": "a", "label": "x", "id": 17}\n'
                                       '{"text": "b", "label": "x", "id": 17.0}\n'
                                       '{"text": "c", "label": "x", "id": null}\n'
                                       '{"text": "d", "label": "x", "id": "r-4"}\n')
    out = drive("read_jsonl", path, id_field="id")
    assert kept(out, "id") == [("17",), ("17",), ("i.jsonl:3",), ("r-4",)]


def test_jsonl_two_objects_on_a_line_never_shift_ids(tmp_path, blocks):
    """Arrow reads `{..}{..}` as two rows: with a blank line in the same block the row count matched the line
    count and every later row got the id of the line before it."""
    path = write(tmp_path / "m.jsonl", b'{"text": "a", "label": "x"}{"text": "b", "label": "y"}\n\n'
                                       b'{"text": "c", "label": "z"}\n')
    out = drive("read_jsonl", path)
    assert reasons(out) == [("m.jsonl:1", "malformed_json")]
    assert kept(out, "id", "text") == [("m.jsonl:3", "c")]


def test_jsonl_nan_under_an_unread_key_is_kept_on_every_path(tmp_path, blocks):
    path = write(tmp_path / "n.jsonl", b'{"text": "a", "label": "x", "score": NaN}\n{bad\n')
    out = drive("read_jsonl", path)
    assert kept(out, "id", "text") == [("n.jsonl:1", "a")]
    assert reasons(out) == [("n.jsonl:2", "malformed_json")]


def test_jsonl_null_fields_pass_through(tmp_path, blocks):
    path = write(tmp_path / "n.jsonl", b'{"text": null, "label": null, "lang": null}\n')
    assert kept(drive("read_jsonl", path, lang="en"), "text", "label", "lang") == [(None, None, "en")]


def test_jsonl_line_separators_inside_text_are_text(tmp_path, blocks):
    """U+2028, U+0085 and a bare CR split lines for str.splitlines, never for a JSONL reader."""
    text = "a\u2028b\u0085c\rd"
    path = write(tmp_path / "u.jsonl", (json.dumps({"text": text, "label": "x"}, ensure_ascii=False) + "\n"
                                        + json.dumps({"text": "e", "label": "y"}) + "\n").encode())
    out = drive("read_jsonl", path)
    assert kept(out, "id", "text") == [("u.jsonl:1", "a\u2028b\u0085c\rd"), ("u.jsonl:2", "e")]


def test_jsonl_a_line_longer_than_arrows_block_is_read(tmp_path):
    long = "x" * (5 << 20)  # past the 4 MiB Arrow block: that parse fails, the line is read on its own
    path = write(tmp_path / "l.jsonl", json.dumps({"text": long, "label": "x"}) + "\n" + GOOD.decode() + "\n")
    out = drive("read_jsonl", path)
    assert [len(t) for (t,) in kept(out, "text")] == [5 << 20, 2]


@pytest.mark.parametrize("record, reason", [
    ({"tokens": ["a", 1], "tags": ["O", "O"]}, "bad_type:tokens:item:number"),
    ({"tokens": ["a"], "tags": [None]}, "bad_type:tags:item:null"),
    ({"tokens": ["a"], "tags": [["O"]]}, "bad_type:tags:item:list"),
    ({"tokens": [True], "tags": ["O"]}, "bad_type:tokens:item:bool"),
    ({"tokens": "a b", "tags": ["O"]}, "not_a_list:tokens"),
    ({"tokens": ["a"], "tags": None}, "not_a_list:tags"),
    ({"tokens": ["a"], "tags": ["O"], "lang": 1}, "bad_type:lang:number"),
    ({"tokens": ["a"]}, "missing_field:tags"),
])
def test_jsonl_bio_tokens_and_tags_must_be_lists_of_strings(tmp_path, record, reason):
    path = write(tmp_path / "b.jsonl", json.dumps(record) + "\n")
    assert reasons(drive("read_jsonl", path, kind="bio")) == [("b.jsonl:1", reason)]


def test_jsonl_an_empty_directory_is_a_config_error_on_path(tmp_path):
    with pytest.raises(ConfigError) as e:
        drive("read_jsonl", tmp_path)
    assert one_line_error(e) == (f"with.path: no .jsonl/.json/.ndjson file in directory '{tmp_path}' (searched "
                                 "recursively, hidden names skipped; name other files with a glob)")


# --- CSV and TSV ---

def test_csv_header_with_invalid_utf8_is_an_error_naming_line_1(tmp_path):
    path = write(tmp_path / "h.csv", b"te\xffxt,label\ntext,label\na,x\n")
    with pytest.raises(InputError) as e:
        drive("read_csv", path)
    assert one_line_error(e) == f"{path}:1: the header line is not valid UTF-8; no column can be mapped"


def test_csv_header_with_an_unclosed_quote_is_an_error(tmp_path):
    path = write(tmp_path / "q.csv", '"text,label\na,x\n')
    with pytest.raises(InputError) as e:
        drive("read_csv", path)
    assert one_line_error(e) == f"{path}:1: the header has a quote that is never closed; no column can be mapped"


def test_csv_duplicate_column_names_are_an_error(tmp_path):
    path = write(tmp_path / "d.csv", "text,label,label\na,x,y\n")
    with pytest.raises(InputError) as e:
        drive("read_csv", path)
    assert one_line_error(e) == (f"{path}:1: column 'label' appears twice in the header; rename one, or set "
                                 "header: false and give 'columns'")


def test_csv_a_header_name_with_a_newline_stays_on_one_line(tmp_path):
    path = write(tmp_path / "n.csv", '"a\nb",text,label,"a\nb"\n1,t,x,2\n')
    with pytest.raises(InputError) as e:
        drive("read_csv", path)
    assert one_line_error(e).endswith("column 'a\\nb' appears twice in the header; rename one, or set header: "
                                      "false and give 'columns'")


def test_csv_repeated_empty_column_names_are_allowed(tmp_path):
    out = drive("read_csv", write(tmp_path / "e.csv", "text,label,,\na,x,,\n"))
    assert kept(out, "text", "label") == [("a", "x")]


def test_csv_duplicate_names_in_columns_are_a_config_error():
    with pytest.raises(ConfigError, match="column 'text' appears twice in 'columns'"):
        get("read_csv").make_params({"path": "x.csv", "header": False, "columns": ["text", "text"]})


def test_csv_nul_and_bom_inside_fields_are_kept_as_text(tmp_path):
    out = drive("read_csv", write(tmp_path / "z.csv", b"\xef\xbb\xbftext,label\na\x00b,x\n\xef\xbb\xbfc,y\n"))
    assert kept(out, "id", "text") == [("z.csv:2", "a\x00b"), ("z.csv:3", "\ufeffc")]  # normalize strips them


def test_csv_old_mac_line_ends_are_an_error_naming_the_cause(tmp_path):
    path = write(tmp_path / "m.csv", b"text,label\ra,x\rb,y\r")
    with pytest.raises(InputError) as e:
        drive("read_csv", path)
    assert one_line_error(e) == (f"{path}:1: the header has a carriage return outside quotes (old Mac \\r line "
                                 "ends? convert them to \\n); no column can be mapped")


def test_csv_bare_cr_inside_a_record_is_one_reject(tmp_path):
    out = drive("read_csv", write(tmp_path / "r.csv", b'text,label\na\rb,x\n"c\rd",y\ne,z\r\n'))
    assert reasons(out) == [("r.csv:2", "bad_csv_row:bare_cr")]
    assert kept(out, "id", "text") == [("r.csv:3", "c\rd"), ("r.csv:4", "e")]  # quoted: a CR is text


@pytest.mark.parametrize("data", [b"", b"\n\n", b"\xef\xbb\xbf", b"text,label\n", b"text,label"])
def test_csv_an_empty_file_or_a_header_alone_has_no_records(tmp_path, data):
    out = drive("read_csv", write(tmp_path / "e.csv", data))
    assert out.kept.num_rows == 0 and out.rejected.num_rows == 0


def test_tsv_invalid_utf8_header_is_an_error_too(tmp_path):
    path = write(tmp_path / "h.tsv", b"\xfftext\tlabel\na\tx\n")
    with pytest.raises(InputError, match=r"h\.tsv:1: the header line is not valid UTF-8"):
        drive("read_csv", path, delimiter="\t")


# --- read_parallel ---

def test_parallel_bare_cr_is_one_reject(tmp_path):
    out = drive("read_parallel", write(tmp_path / "p.tsv", "你好\rx\thello\n再见\tbye\n"))
    assert reasons(out) == [("p.tsv:1", "bad_csv_row:bare_cr")]
    assert kept(out, "id", "src") == [("p.tsv:2", "再见")]


def test_parallel_unreadable_header_is_an_error_not_a_lost_pair(tmp_path):
    path = write(tmp_path / "p.tsv", b"z\xffh\ten\n\xe4\xbd\xa0\tyou\n")
    with pytest.raises(InputError) as e:
        drive("read_parallel", path, header=True)
    assert one_line_error(e) == f"{path}:1: the header line is not valid UTF-8; no column can be mapped"


def test_parallel_header_with_too_few_columns_is_an_error(tmp_path):
    """A one-field header made every one-field line pass the field count, then crash picking its tgt side."""
    path = write(tmp_path / "p.csv", "zh\n你好\n")
    with pytest.raises(InputError) as e:
        drive("read_parallel", path, header=True, delimiter=",")
    assert one_line_error(e) == f"{path}:1: the header has 1 column(s); src_col 0 and tgt_col 1 need 2"


# --- CoNLL ---

def test_conll_inconsistent_column_counts_reject_the_sentence(tmp_path):
    out = drive("read_conll", write(tmp_path / "c.conll", "a O\nb B-X extra\n\nc O\n\nd\n"))
    assert reasons(out) == [("c.conll:1", "bad_column_row:2"), ("c.conll:6", "bad_column_row:6")]
    assert kept(out, "id", "tokens", "tags") == [("c.conll:4", ["c"], ["O"])]


def test_conll_first_line_of_unicode_spaces_is_a_reject_not_the_files_shape(tmp_path):
    """U+3000 is not blank to the byte-level sentence splitter but splits into no column: it used to make the
    file's column count 0 and fail the node with a ConfigError."""
    out = drive("read_conll", write(tmp_path / "u.conll", "\u3000\n王 B-PER\n\n伟 I-PER\n"))
    assert reasons(out) == [("u.conll:1", "bad_column_row:1")]
    assert kept(out, "tokens", "tags") == [(["伟"], ["I-PER"])]


def test_conll_empty_delimiter_is_a_config_error():
    with pytest.raises(ConfigError, match="delimiter must not be empty"):
        get("read_conll").make_params({"path": "x.conll", "delimiter": ""})


# --- Parquet ---

def parquet(path: Path, **columns) -> Path:
    pq.write_table(pa.table(columns), path)
    return path


@pytest.mark.parametrize("name, data, detail", [
    ("empty.parquet", b"", "Parquet file size is 0 bytes"),
    ("text.parquet", b'{"text": "a", "label": "x"}\n', "Parquet magic bytes not found in footer. Either the "
                                                          "file is corrupted or this is not a parquet file."),
])
def test_parquet_unreadable_file_is_one_error_line(tmp_path, name, data, detail):
    path = write(tmp_path / name, data)
    with pytest.raises(InputError) as e:
        drive("read_parquet", path)
    assert one_line_error(e) == f"{path}: not a readable Parquet file: {detail}"


def test_parquet_truncated_file_is_an_error(tmp_path):
    good = parquet(tmp_path / "g.parquet", text=["a"] * 100, label=["x"] * 100)
    path = write(tmp_path / "t.parquet", good.read_bytes()[:-30])
    with pytest.raises(InputError) as e:
        drive("read_parquet", path)
    assert one_line_error(e).startswith(f"{path}: not a readable Parquet file: ")


def test_parquet_corrupt_pages_are_an_error_not_a_traceback(tmp_path):
    pq.write_table(pa.table({"text": [f"row {i} " * 20 for i in range(2000)], "label": ["x"] * 2000}),
                   tmp_path / "g.parquet", compression="none")
    data = bytearray((tmp_path / "g.parquet").read_bytes())
    for i in range(100, len(data) // 2, 3):
        data[i] = 0xFF  # the footer (at the end) stays whole: the file opens, its pages do not decode
    path = write(tmp_path / "c.parquet", bytes(data))
    with pytest.raises(InputError) as e:
        drive("read_parquet", path)
    assert one_line_error(e).startswith(f"{path}: corrupt Parquet data: ")


@pytest.mark.parametrize("column, value, reason", [
    ("text", pa.array([b"\xff\xfe"]), "bad_type:text:binary"),
    ("text", pa.array([["a", "b"]]), "bad_type:text:list"),
    ("text", pa.array([7]), "bad_type:text:number"),
    ("label", pa.array([{"a": 1}]), "bad_type:label:struct"),
    ("label", pa.array([True]), "bad_type:label:bool"),
    ("label", pa.array([2.5]), "bad_type:label:number"),
    ("label", pa.array([float("nan")]), "bad_type:label:number"),
    ("label", pa.array([b"pos"]), "bad_type:label:binary"),
    ("label", pa.array([[1]], pa.large_list(pa.int64())), "bad_type:label:list"),
    ("lang", pa.array([3]), "bad_type:lang:number"),
])
def test_parquet_values_of_the_wrong_type_are_rejected_by_name(tmp_path, column, value, reason):
    columns = {"text": pa.array(["t"]), "label": pa.array(["x"]), column: value}
    out = drive("read_parquet", parquet(tmp_path / "w.parquet", **columns))
    assert reasons(out) == [("w.parquet:1", reason)] and out.kept.num_rows == 0


def test_parquet_binary_reject_keeps_the_bytes_escaped_not_as_a_repr(tmp_path):
    out = drive("read_parquet", parquet(tmp_path / "b.parquet", text=pa.array([b"\xff\xfe", None]),
                                        label=["x", "y"]))
    assert reasons(out) == [("b.parquet:1", "bad_type:text:binary")]
    assert json.loads(out.rejected["record"][0].as_py()) == {"text": "\\xff\\xfe", "label": "x"}
    assert kept(out, "id", "text", "label") == [("b.parquet:2", None, "y")]  # a null is a null in any column


def test_parquet_conversions_that_are_allowed(tmp_path):
    path = parquet(tmp_path / "ok.parquet",
                   text=pa.array(["a", "b", "c", "d"]).dictionary_encode(),  # a pandas category
                   label=pa.array([1.0, None, 3.0, -0.0]), lang=pa.array(["", "en", None, "zh"], pa.large_string()),
                   rid=pa.array([7, None, 9, 10], pa.int32()))
    out = drive("read_parquet", path, id_field="rid", lang="xx")
    assert kept(out, "id", "text", "label", "lang") == [
        ("7", "a", "1", "xx"), ("ok.parquet:2", "b", None, "en"), ("9", "c", "3", "xx"), ("10", "d", "0", "zh")]


def test_parquet_invalid_utf8_in_a_string_column_is_a_reject(tmp_path):
    """Arrow does not validate UTF-8 when it reads Parquet: an unchecked writer's bytes would reach every stage."""
    raw = pa.array([b"\xff\xfe", b"ok"], pa.binary())
    text = pa.Array.from_buffers(pa.string(), 2, raw.buffers())  # a string column holding invalid UTF-8
    out = drive("read_parquet", parquet(tmp_path / "u.parquet", text=text, label=["x", "y"]))
    assert reasons(out) == [("u.parquet:1", "invalid_utf8:text")]
    assert kept(out, "text") == [("ok",)]


def test_parquet_rejects_are_numbered_by_row_even_with_an_id_field(tmp_path):
    path = parquet(tmp_path / "r.parquet", text=["a", "b"], label=pa.array([1.5, 2.0]), rid=["r1", "r2"])
    out = drive("read_parquet", path, id_field="rid", batch_rows=1)
    assert reasons(out) == [("r.parquet:1", "bad_type:label:number")]
    assert kept(out, "id", "label") == [("r2", "2")]


# --- datasets directories ---

def test_hf_path_dot_is_one_error_line(workdir):
    pytest.importorskip("datasets")
    with pytest.raises(InputError) as e:
        drive("read_hf", ".")
    assert one_line_error(e) == ".: cannot load a dataset: Directory . is neither a `Dataset` directory nor a " \
                                "`DatasetDict` directory."


def test_hf_damaged_dataset_directory_is_one_error_line(tmp_path):
    datasets = pytest.importorskip("datasets")
    datasets.Dataset.from_dict({"text": ["a"], "label": ["x"]}).save_to_disk(str(tmp_path / "ds"))
    (tmp_path / "ds" / "state.json").write_text("{not json")
    with pytest.raises(InputError) as e:
        drive("read_hf", tmp_path / "ds")
    assert one_line_error(e).startswith(f"{tmp_path / 'ds'}: cannot load a dataset: ")


def test_hf_missing_split_is_one_error_line(tmp_path):
    datasets = pytest.importorskip("datasets")
    datasets.DatasetDict({"train": datasets.Dataset.from_dict({"text": ["a"], "label": ["x"]}),
                          "test": datasets.Dataset.from_dict({"text": ["b"], "label": ["y"]})}
                         ).save_to_disk(str(tmp_path / "dd"))
    with pytest.raises(InputError) as e:
        drive("read_hf", tmp_path / "dd", split="validation")
    assert one_line_error(e) == f"{tmp_path / 'dd'}: no split 'validation' (it has train, test)"


def test_hf_binary_and_list_columns_are_rejected_by_name(tmp_path):
    datasets = pytest.importorskip("datasets")
    datasets.Dataset.from_dict({"text": [b"\xff", b"ok"], "label": [["a"], ["b"]]}).save_to_disk(str(tmp_path / "b"))
    out = drive("read_hf", tmp_path / "b")
    assert reasons(out) == [("b:1", "bad_type:text:binary"), ("b:2", "bad_type:text:binary")]


# --- random inputs: never a crash, always a balanced ledger, every reject traceable ---

PIECES = [b",", b'"', b"\t", b" ", b"\n", b"\r", b"\r\n", b"\x00", b"\xff", b"\xe4\xbd", b"\xef\xbb\xbf",
          "中文".encode(), "\u2028".encode(), "\u3000".encode(), b"\\", b"text", b"label", b"O", b"B-PER",
          b"-DOCSTART-", b"{", b"}", b"[", b"]", b":", b"a"]
hostile_bytes = st.one_of(st.binary(max_size=200), st.lists(st.sampled_from(PIECES), max_size=60).map(b"".join))

TEXT_READERS = [  # (reader, params, may raise InputError: only a header can make a file unreadable)
    ("read_jsonl", {}, False),
    ("read_jsonl", {"kind": "bio"}, False),
    ("read_csv", {}, True),
    ("read_csv", {"delimiter": "\t", "quoting": "none"}, True),
    ("read_csv", {"header": False, "columns": ["text", "label"], "max_record_lines": 3}, False),
    ("read_conll", {}, False),
    ("read_conll", {"delimiter": "\t", "invalid_utf8": "replace"}, False),
    ("read_parallel", {}, False),
    ("read_parallel", {"quoting": "minimal", "header": True, "delimiter": ","}, True),
]
REASON = re.compile(r"[a-z0-9_]+(:.+)?", re.DOTALL)
EXAMPLES = 1000 if os.environ.get("DATAPREP_SLOW") == "1" else 40  # ~7 s for the whole file by default
FAST = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def physical_lines(data: bytes) -> int:
    return data.count(b"\n") + (0 if data.endswith(b"\n") or not data else 1)


def check_traceable(out: Outcome, name: str, data: bytes) -> None:
    """Every reject has a reason and an id `<file>:<line>` of a line that exists; no line is read twice."""
    line_ids = re.compile(re.escape(name) + r":(\d+)")
    ids = [r["id"] for r in out.rejected.to_pylist()] + [r["id"] for r in out.kept.to_pylist()]
    for rid in ids:
        m = line_ids.fullmatch(rid)
        assert m and 1 <= int(m.group(1)) <= physical_lines(data), rid
    assert len(set(ids)) == len(ids)
    for r in out.rejected.to_pylist():
        assert REASON.fullmatch(r["reason"]) and r["record"] is not None, r


@pytest.mark.parametrize("reader, params, header", TEXT_READERS, ids=lambda x: str(x))
@FAST
@given(data=hostile_bytes)
def test_random_bytes_never_crash_a_reader(tmp_path, reader, params, header, data):
    path = write(tmp_path / "r.txt", data)
    try:
        out = drive(reader, path, **params)
    except InputError as e:
        assert header and "\n" not in str(e) and str(e).startswith(f"{path}:"), e
        return
    check_traceable(out, "r.txt", data)


def non_blank_lines(data: bytes) -> list[int]:
    """The line numbers a JSONL reader must account for: each non-blank line is a row or a reject."""
    data = data[3:] if data.startswith(b"\xef\xbb\xbf") else data
    lines = data.split(b"\n")
    return [i + 1 for i, line in enumerate(lines) if line.rstrip(b"\r").strip()]


SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-(2 ** 70), 2 ** 70), st.floats(),
                    st.text(st.characters(exclude_categories=[]), max_size=6))  # surrogates too
VALUES = st.recursive(SCALARS, lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=3), kids,
                                                                                          max_size=3), max_leaves=8)
RECORD_KEYS = st.sampled_from(["text", "label", "lang", "id", "tokens", "tags", "x"])
RECORDS = st.dictionaries(RECORD_KEYS, st.one_of(VALUES, st.text(max_size=5), st.lists(st.text(max_size=3))),
                          max_size=6)
RAW_LINES = st.sampled_from([b"", b"   ", b"\t\r", b"\x0c", b"{bad", b"[]", b"null", b'"s"', b"\xff\xfe",
                             b'{"text":"a","label":"x"}{"text":"b","label":"y"}', b"[" * 1100 + b"]" * 1100,
                             b'{"text":"a","label":"x","o":' + b"[" * 1100 + b"]" * 1100 + b"}",
                             b'{"text":"a","label":"x","text":"b"}', b'{"text":"a","label":"x","o":NaN}'])


def record_line(record: dict, ascii_only: bool) -> bytes:
    # allow_nan writes NaN/Infinity (Python's json reads them); surrogatepass writes lone surrogates as bytes
    return json.dumps(record, ensure_ascii=ascii_only, allow_nan=True).encode("utf-8", "surrogatepass")


JSON_LINES = st.lists(st.one_of(st.builds(record_line, RECORDS, st.booleans()), RAW_LINES), max_size=12)


def canonical(result) -> str:
    """Rows compared by value: columns in any order (a path that meets a kept field later adds its column later),
    NaN equal to NaN."""
    return repr([[sorted(row.items()) for row in rows] for rows in result])


@FAST
@given(lines=JSON_LINES, crlf=st.booleans(), bom=st.booleans())
def test_random_json_lines_read_the_same_on_every_path(tmp_path, monkeypatch, lines, crlf, bom):
    """Whether a line is read by Arrow in a whole block, in a halved chunk or on its own, or line by line, it
    gets the same row or the same reason; every non-blank line is accounted for exactly once."""
    data = (b"\xef\xbb\xbf" if bom else b"") + b"".join(line + (b"\r\n" if crlf else b"\n") for line in lines)
    path = write(tmp_path / "j.jsonl", data)
    results = []
    for block, slow_lines in ((16 << 20, 256), (16 << 20, 1), (1, 256), (64, 2)):
        monkeypatch.setattr(jsonl, "BLOCK_BYTES", block)
        monkeypatch.setattr(jsonl, "SLOW_LINES", slow_lines)
        out = drive("read_jsonl", path, lang="xx")
        results.append((out.kept.to_pylist(), out.rejected.to_pylist()))
    assert all(canonical(r) == canonical(results[0]) for r in results[1:])
    rows, rejected = results[0]
    assert sorted(int(r["id"].split(":")[1]) for r in rows + rejected) == non_blank_lines(data)
    for r in rejected:
        assert REASON.fullmatch(r["reason"]), r


@FAST
@given(lines=JSON_LINES)
def test_random_json_lines_through_the_bio_reader(tmp_path, lines):
    data = b"".join(line + b"\n" for line in lines)
    out = drive("read_jsonl", write(tmp_path / "b.jsonl", data), kind="bio")
    ids = [r["id"] for r in out.kept.to_pylist() + out.rejected.to_pylist()]
    assert sorted(int(i.split(":")[1]) for i in ids) == non_blank_lines(data)
    for tokens, tags in zip(out.kept["tokens"].to_pylist(), out.kept["tags"].to_pylist()):
        assert all(isinstance(t, str) for t in tokens + tags)


def test_a_reader_error_is_a_dataprep_error():
    assert issubclass(InputError, DataprepError)


# --- kept fields and splits on every path ---

def test_jsonl_an_integer_too_long_for_python_is_read_not_a_crash(tmp_path, blocks):
    """Python refuses to convert an integer literal of more than 4300 digits (ValueError, a crash before); it
    is a float there, as orjson and Arrow read it."""
    huge = b"1" + b"0" * 5000
    path = write(tmp_path / "h.jsonl", b'{"text": "a", "label": ' + huge + b'}\n{"text": "b", "label": "x", "n": '
                 + huge + b'}\n{bad\n')
    out = drive("read_jsonl", path)
    assert reasons(out) == [("h.jsonl:1", "bad_type:label:number"), ("h.jsonl:3", "malformed_json")]
    assert kept(out, "id", "meta_n") == [("h.jsonl:2", float("inf"))]
    assert kept(drive("read_jsonl", path, keep_fields="none"), "id") == [("h.jsonl:2",)]


SPLIT_VALUES = st.sampled_from(["train", "TEST", "dev", "val", "", "bogus", None, 1])
KEPT_KEYS = st.sampled_from(["text", "label", "a", "b", "split"])
KEPT_RECORDS = st.dictionaries(KEPT_KEYS, st.one_of(VALUES, SPLIT_VALUES, st.text(max_size=3)), max_size=5)
KEPT_LINES = st.lists(st.one_of(st.builds(record_line, KEPT_RECORDS, st.booleans()),
                                st.builds(record_line, st.fixed_dictionaries(
                                    {"text": st.text(max_size=3), "label": st.text(max_size=3)},
                                    optional={"a": VALUES, "b": VALUES, "split": SPLIT_VALUES}), st.booleans()),
                                RAW_LINES), max_size=14)


@pytest.mark.parametrize("keep", ["all", ["a"], "none"], ids=str)
@FAST
@given(lines=KEPT_LINES)
def test_random_kept_fields_and_splits_read_the_same_on_every_path(tmp_path, monkeypatch, keep, lines):
    """The first line that holds a kept field fixes its type, whatever block, chunk or path reads it; a split is
    checked the same way by Arrow and line by line."""
    data = b"".join(line + b"\n" for line in lines)
    path = write(tmp_path / "k.jsonl", data)
    results = []
    for block, slow_lines in ((16 << 20, 256), (16 << 20, 1), (1, 256), (64, 2)):
        monkeypatch.setattr(jsonl, "BLOCK_BYTES", block)
        monkeypatch.setattr(jsonl, "SLOW_LINES", slow_lines)
        out = drive("read_jsonl", path, keep_fields=keep, split_as="train")
        results.append((out.kept.to_pylist(), out.rejected.to_pylist()))
    assert all(canonical(r) == canonical(results[0]) for r in results[1:])
    rows, rejected = results[0]
    assert sorted(int(r["id"].split(":")[1]) for r in rows + rejected) == non_blank_lines(data)
    assert all(r["split"] in ("train", "validation", "test") for r in rows)


def test_a_kept_value_on_a_line_only_arrow_parses_is_judged_as_line_by_line(tmp_path, blocks):
    """Line 1 nests past what Python parses under a key not kept, so line 2 is the first the slow path sees
    `a` on: line 1's `a` has no type yet, and no path keeps the line (it would, had `a` come first)."""
    deep = b'{"text": "t", "label": "l", "a": 5, "o": ' + b"[" * 2000 + b"]" * 2000 + b"}"
    path = write(tmp_path / "d.jsonl", deep + b'\n{"text": "u", "label": "l", "a": 7}\n')
    out = drive("read_jsonl", path, keep_fields=["a"])
    assert reasons(out) == [("d.jsonl:1", "too_deep")] and kept(out, "id", "meta_a") == [("d.jsonl:2", 7)]
    first = write(tmp_path / "e.jsonl", b'{"text": "u", "label": "l", "a": 7}\n' + deep + b"\n")
    assert kept(drive("read_jsonl", first, keep_fields=["a"]), "meta_a") == [(7,), (5,)]


def test_jsonl_objects_keyed_by_ids_cannot_make_a_column_each(tmp_path, monkeypatch, blocks):
    import dataprep.io.fields as fields
    monkeypatch.setattr(fields, "MAX_KEPT_FIELDS", 3)
    lines = [b'{"text": "t%d", "label": "l", "k%d": %d}' % (i, i, i) for i in range(5)]
    path = write(tmp_path / "k.jsonl", b"\n".join(lines) + b"\n")
    out = drive("read_jsonl", path)
    assert reasons(out) == [("k.jsonl:4", "too_many_fields:k3"), ("k.jsonl:5", "too_many_fields:k4")]
    assert out.kept.column_names[5:] == ["meta_k0", "meta_k1", "meta_k2"]
    assert kept(drive("read_jsonl", path, keep_fields=["k4"]), "meta_k4")[-1] == (4,)
