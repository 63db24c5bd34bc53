"""Readers over a file, a directory or a glob of shards (ids `<path relative to the root>:<line>`), and byte
ranges of one JSON Lines file whose reads, concatenated, equal the whole read: same ids, rows and rejects."""
from __future__ import annotations

import json
import os
from pathlib import Path
from unittest import mock

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from testkit import write_jsonl, write_pipeline

import dataprep.io.fields as fields_module
import dataprep.io.jsonl as jsonl
from dataprep.cache import _xxh3, file_digests
from dataprep.catalog import get
from dataprep.dag import load_pipeline
from dataprep.errors import ConfigError, InputError
from dataprep.io import prepare_read, read_shard, reader_for
from dataprep.io.shards import Range, cut_points, expand, glob_root, plan_ranges, plan_source
from dataprep.runner import Runner


def outcomes(reader: str, path, **params):
    stage = get(reader)
    return list(stage.impl(stage.make_params({"path": str(path), **params})))


def gathered(outs) -> tuple[list[dict], list[dict]]:
    """Kept rows (columns by name: a range read may bring a column earlier than the whole read) and rejects."""
    outs = list(outs)
    if not outs:  # an empty file yields no batch at all
        return [], []
    kept = pa.concat_tables([o.kept for o in outs], promote_options="permissive")
    rejected = pa.concat_tables([o.rejected for o in outs])
    return [_nan_named(row) for row in kept.select(sorted(kept.column_names)).to_pylist()], rejected.to_pylist()


def _nan_named(row: dict) -> dict:
    """NaN, which equals nothing, as a string, so equal rows compare equal."""
    return {k: "NaN" if isinstance(v, float) and v != v else v for k, v in row.items()}


def ids(outs) -> list[str]:
    return [row["id"] for row in gathered(outs)[0]]


def reject_ids(outs) -> list[tuple[str, str]]:
    return [(r["id"], r["reason"]) for r in gathered(outs)[1]]


def record(text, label="x", **extra) -> dict:
    return {"text": text, "label": label, **extra}


# --- which files a path names ---

def test_a_directory_is_its_matching_files_recursively_in_byte_order_hidden_ones_skipped(tmp_path):
    for name in ["b.jsonl", "a.JSONL", "sub/c.json", "sub/deeper/d.ndjson", "Z.jsonl", "notes.txt", ".hidden.jsonl",
                 ".cache/e.jsonl", "sub/_SUCCESS"]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("")
    names = [s.name for s in expand(str(tmp_path), jsonl.JsonlParams.EXTENSIONS)]
    assert names == ["Z.jsonl", "a.JSONL", "b.jsonl", "sub/c.json", "sub/deeper/d.ndjson"]  # bytes: Z < a
    assert expand(str(tmp_path), jsonl.JsonlParams.EXTENSIONS)[0].path == os.path.join(str(tmp_path), "Z.jsonl")


def test_a_glob_matches_any_extension_and_names_shards_relative_to_its_fixed_directories(tmp_path):
    for name in ["in/2024/a.txt", "in/2025/b.txt", "in/2025/.c.txt", "in/x.jsonl"]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("")
    pattern = str(tmp_path / "in" / "**" / "*.txt")
    assert glob_root(pattern) == str(tmp_path / "in")
    assert [s.name for s in expand(pattern, ())] == ["2024/a.txt", "2025/b.txt"]
    assert [s.name for s in expand(str(tmp_path / "in" / "202[5]" / "*"), ())] == ["2025/b.txt"]
    assert glob_root("*.jsonl") == "."


def test_an_existing_file_whose_name_looks_like_a_glob_is_that_file(tmp_path):
    path = write_jsonl(tmp_path / "part[1].jsonl", [record("a")])
    assert ids(outcomes("read_jsonl", path)) == ["part[1].jsonl:1"]


def test_a_lone_file_keeps_its_base_name_ids_and_a_directory_of_it_reads_the_same(tmp_path):
    (tmp_path / "d").mkdir()
    path = write_jsonl(tmp_path / "d" / "a.jsonl", [record("a"), "{bad", record("b", kw=1)])
    assert gathered(outcomes("read_jsonl", path)) == gathered(outcomes("read_jsonl", tmp_path / "d"))
    assert gathered(outcomes("read_jsonl", path)) == gathered(outcomes("read_jsonl", tmp_path / "d" / "*.jsonl"))


@pytest.mark.parametrize("reader, path, why", [
    ("read_jsonl", "empty_dir", "no .jsonl/.json/.ndjson file in directory"),
    ("read_jsonl", "empty_dir/*.jsonl", "no file matches"),
    ("read_csv", "empty_dir", "no .csv file in directory"),
    ("read_conll", "empty_dir/**/*.conll", "no file matches"),
    ("read_parquet", "empty_dir", "no .parquet file in directory"),
    ("read_parallel", "empty_dir", "no .tsv/.tab file in directory"),
])
def test_no_shard_is_a_config_error_on_with_path_before_any_row(workdir, reader, path, why):
    (workdir / "empty_dir").mkdir()
    (workdir / "empty_dir" / "README.md").write_text("not a shard")
    stage = get(reader)
    params = stage.make_params({"path": path})
    assert why in params.path_problem()
    with pytest.raises(ConfigError) as e:
        list(stage.impl(params))
    assert str(e.value).startswith(f"with.path: {why}")


def test_path_problem_says_nothing_for_good_paths_and_file_not_found_for_a_missing_file(workdir):
    write_jsonl(workdir / "a.jsonl", [record("a")])
    stage = get("read_jsonl")
    assert stage.make_params({"path": "a.jsonl"}).path_problem() is None
    assert stage.make_params({"path": "*.jsonl"}).path_problem() is None
    assert stage.make_params({"path": "."}).path_problem() is None
    assert stage.make_params({"path": "b.jsonl"}).path_problem() == "file not found: 'b.jsonl'"
    assert stage.make_params({}).path_problem() == "missing 'path'"


def test_an_empty_directory_is_a_config_error_not_a_crash(tmp_path):
    """What `test_jsonl_a_directory_is_an_input_error` pinned before a directory meant shards."""
    with pytest.raises(ConfigError, match="no .jsonl/.json/.ndjson file in directory"):
        list(get("read_jsonl").impl(get("read_jsonl").make_params({"path": str(tmp_path)})))


# --- the cache key: every shard's name and bytes ---

def digests(params) -> list[tuple[str, str]]:
    """What the cache key should hash for a source: (name, xxh3) of each of `source_files()`."""
    return [(s.name, _xxh3(Path(s.path))) for s in params.source_files()]


def test_a_lone_files_digest_is_what_the_cache_hashes_today(tmp_path):
    path = write_jsonl(tmp_path / "a.jsonl", [record("a")])
    for reader in ("read_jsonl", "read_csv", "read_conll", "read_parquet", "read_parallel"):
        assert digests(get(reader).make_params({"path": str(path)})) == file_digests(str(path))


def test_a_saved_datasets_digest_is_what_the_cache_hashes_today(tmp_path):
    (tmp_path / "ds" / "train").mkdir(parents=True)
    (tmp_path / "ds" / "dataset_dict.json").write_text("{}")
    (tmp_path / "ds" / "train" / "data-00000.arrow").write_bytes(b"x")
    params = get("read_hf").make_params({"path": str(tmp_path / "ds")})
    assert digests(params) == file_digests(str(tmp_path / "ds"))
    assert params.path_problem() is None


def test_the_digest_changes_when_a_shard_is_added_removed_or_changed_not_for_other_files(tmp_path):
    write_jsonl(tmp_path / "a.jsonl", [record("a")])
    params = get("read_jsonl").make_params({"path": str(tmp_path)})
    before = digests(params)
    (tmp_path / "README.md").write_text("not a shard")
    assert digests(params) == before
    write_jsonl(tmp_path / "b.jsonl", [record("b")])
    added = digests(params)
    assert added != before
    write_jsonl(tmp_path / "b.jsonl", [record("c")])
    assert digests(params) != added
    (tmp_path / "b.jsonl").unlink()
    assert digests(params) == before


def test_a_pipeline_reads_a_directory_and_reruns_when_a_shard_changes(workdir):
    (workdir / "in").mkdir()
    write_jsonl(workdir / "in" / "a.jsonl", [record("a"), "{bad"])
    path = write_pipeline(workdir / "p.yaml", {"raw": {"uses": "read_jsonl", "with": {"path": "in"}}})
    first = Runner(load_pipeline(path), "cache")
    first.run()
    assert first.output("raw").column("id").to_pylist() == ["a.jsonl:1"]
    assert first.rejects("raw").column("id").to_pylist() == ["a.jsonl:2"]
    (workdir / "in" / "b").mkdir()
    write_jsonl(workdir / "in" / "b" / "c.jsonl", [record("c")])
    second = Runner(load_pipeline(path), "cache")
    assert [r.status for r in second.run()] == ["ran"] and second.keys["raw"] != first.keys["raw"]
    assert second.output("raw").column("id").to_pylist() == ["a.jsonl:1", "b/c.jsonl:1"]


# --- every reader over shards ---

def test_jsonl_shards_get_relative_ids_and_source_and_rejects_keep_them(tmp_path):
    (tmp_path / "in" / "b").mkdir(parents=True)
    write_jsonl(tmp_path / "in" / "b" / "x.jsonl", [record("b1"), "{bad"])
    write_jsonl(tmp_path / "in" / "a.jsonl", [record("a1"), record("a2")])
    outs = outcomes("read_jsonl", tmp_path / "in")
    kept, rejected = gathered(outs)
    assert [(r["id"], r["source"]) for r in kept] == [("a.jsonl:1", "a.jsonl"), ("a.jsonl:2", "a.jsonl"),
                                                     ("b/x.jsonl:1", "b/x.jsonl")]
    assert [(r["id"], r["reason"], r["record"]) for r in rejected] == [("b/x.jsonl:2", "malformed_json", "{bad")]


def test_jsonl_shards_are_one_table_a_kept_fields_type_is_fixed_by_the_first_shard(tmp_path):
    write_jsonl(tmp_path / "1.jsonl", [record("a", n=1)])
    write_jsonl(tmp_path / "2.jsonl", [record("b", n="two"), record("c", n=3)])
    outs = outcomes("read_jsonl", tmp_path)
    assert [(r["id"], r["meta_n"]) for r in gathered(outs)[0]] == [("1.jsonl:1", 1), ("2.jsonl:2", 3)]
    assert reject_ids(outs) == [("2.jsonl:1", "bad_type:meta_n:string")]


def test_csv_shards_each_have_their_own_header(tmp_path):
    (tmp_path / "a.csv").write_text("text,label,extra\nhello,pos,e1\n")
    (tmp_path / "b.csv").write_text("label,text\nneg,bye\nneg\n")
    outs = outcomes("read_csv", tmp_path)
    kept, _ = gathered(outs)
    assert [(r["id"], r["text"], r["label"], r["meta_extra"]) for r in kept] == [
        ("a.csv:2", "hello", "pos", "e1"), ("b.csv:2", "bye", "neg", None)]
    assert reject_ids(outs) == [("b.csv:3", "bad_csv_row:fields=1")]


def test_csv_a_bad_header_in_any_shard_fails_before_any_row(tmp_path):
    (tmp_path / "a.csv").write_text("text,label,k\nhello,pos,1\n")
    (tmp_path / "b.csv").write_bytes(b"text,label\nbye,neg\n")
    stage = get("read_csv")
    reading = stage.impl(stage.make_params({"path": str(tmp_path), "keep_fields": ["k"]}))
    with pytest.raises(InputError, match="b.csv:1: keep_fields names 'k'"):
        next(reading)


def test_tsv_directory_reads_tsv_files_only(tmp_path):
    (tmp_path / "a.tsv").write_text("text\tlabel\nhi\tpos\n")
    (tmp_path / "b.csv").write_text("text,label\nno,neg\n")
    assert ids(outcomes("read_csv", tmp_path, delimiter="\t")) == ["a.tsv:2"]
    assert reader_for(str(tmp_path / "*.tsv")) == ("read_csv", {"delimiter": "\t"})


def test_conll_shards_must_have_the_same_columns(tmp_path):
    (tmp_path / "a.conll").write_text("EU B-ORG\nrejects O\n\nGerman B-MISC\n")
    (tmp_path / "b.conll").write_text("-DOCSTART- O\n\nPeter B-PER\n")
    outs = outcomes("read_conll", tmp_path)
    assert [(r["id"], r["tokens"]) for r in gathered(outs)[0]] == [
        ("a.conll:1", ["EU", "rejects"]), ("a.conll:4", ["German"]), ("b.conll:3", ["Peter"])]
    (tmp_path / "c.conll").write_text("Peter NNP B-PER\n")
    with pytest.raises(InputError, match="c.conll: 3 columns on its first token line, but .*a.conll has 2"):
        outcomes("read_conll", tmp_path)


def test_conll_a_glob_reads_files_without_an_extension(tmp_path):
    (tmp_path / "eng.train").write_text("EU B-ORG\n")
    (tmp_path / "eng.testa").write_text("Peter B-PER\n")
    assert ids(outcomes("read_conll", tmp_path / "eng.*")) == ["eng.testa:1", "eng.train:1"]


def test_parquet_shards_number_rows_per_shard_and_check_every_footer_first(tmp_path):
    (tmp_path / "p" / "k=1").mkdir(parents=True)
    pq.write_table(pa.table({"text": ["a", "b"], "label": ["x", "y"]}), tmp_path / "p" / "k=1" / "part-0.parquet")
    pq.write_table(pa.table({"text": ["c"], "label": [None], "more": [1]}), tmp_path / "p" / "part-1.parquet")
    (tmp_path / "p" / "_SUCCESS").write_text("")
    outs = outcomes("read_parquet", tmp_path / "p")
    assert [(r["id"], r["source"], r.get("meta_more")) for r in gathered(outs)[0]] == [
        ("k=1/part-0.parquet:1", "k=1/part-0.parquet", None), ("k=1/part-0.parquet:2", "k=1/part-0.parquet", None),
        ("part-1.parquet:1", "part-1.parquet", 1)]
    (tmp_path / "p" / "z.parquet").write_bytes(b"PAR1 truncated")
    with pytest.raises(InputError, match="z.parquet: not a readable Parquet file"):
        next(get("read_parquet").impl(get("read_parquet").make_params({"path": str(tmp_path / "p")})))


def test_parallel_shards(tmp_path):
    (tmp_path / "a.tsv").write_text("你好\thello\n\n坏\n")
    (tmp_path / "b.tsv").write_text("谢谢\tthanks\n")
    outs = outcomes("read_parallel", tmp_path)
    assert [(r["id"], r["src"]) for r in gathered(outs)[0]] == [("a.tsv:1", "你好"), ("b.tsv:1", "谢谢")]
    assert reject_ids(outs) == [("a.tsv:3", "bad_parallel_row:fields=1")]


def test_parallel_a_bad_header_in_any_shard_fails_before_any_pair(tmp_path):
    (tmp_path / "a.tsv").write_text("zh\ten\n你好\thello\n")
    (tmp_path / "b.tsv").write_text("zh\n谢谢\n")
    stage = get("read_parallel")
    with pytest.raises(InputError, match="b.tsv:1: the header has 1 column"):
        next(stage.impl(stage.make_params({"path": str(tmp_path), "header": True})))


def test_reader_for_a_directory_of_shards(tmp_path):
    (tmp_path / "j").mkdir()
    write_jsonl(tmp_path / "j" / "a.jsonl", [record("a")])
    (tmp_path / "j" / "notes.md").write_text("")
    assert reader_for(str(tmp_path / "j")) == ("read_jsonl", {})
    (tmp_path / "j" / "b.csv").write_text("text,label\n")
    with pytest.raises(ValueError, match="several formats"):
        reader_for(str(tmp_path / "j"))
    (tmp_path / "ds").mkdir()
    (tmp_path / "ds" / "dataset_info.json").write_text("{}")
    assert reader_for(str(tmp_path / "ds")) == ("read_hf", {})


def shard_sources(root: Path) -> dict[str, dict]:
    """One multi-shard source per reader, with a split in a later shard only, bad records, and kept fields."""
    (root / "csv" / "sub").mkdir(parents=True)
    (root / "csv" / "a.csv").write_text("text,label,k\nhi,pos,1\nbad\n")
    (root / "csv" / "sub" / "b.csv").write_text("text,label,split\nyo,neg,test\nhey,pos,\n")
    (root / "conll").mkdir()
    (root / "conll" / "a.conll").write_text("EU NNP B-ORG\nrejects VBZ O\n\nbad line\n")
    (root / "conll" / "b.conll").write_text("Peter NNP B-PER\n")
    (root / "tsv").mkdir()
    (root / "tsv" / "a.tsv").write_text("你好\thello\n坏\n")
    (root / "tsv" / "b.tsv").write_text("谢谢\tthanks\tx\n")
    (root / "pq").mkdir()
    pq.write_table(pa.table({"text": ["a", "b"], "label": ["x", None], "k": [1, 2]}), root / "pq" / "a.parquet")
    pq.write_table(pa.table({"text": ["c", "d"], "label": [1.0, 2.5], "split": ["dev", None]}),
                   root / "pq" / "b.parquet")
    return {"read_csv": {"path": str(root / "csv")}, "read_conll": {"path": str(root / "conll")},
            "read_parallel": {"path": str(root / "tsv"), "fields": 2},
            "read_parquet": {"path": str(root / "pq"), "batch_rows": 1}}


@pytest.mark.parametrize("reader", ["read_csv", "read_conll", "read_parallel", "read_parquet"])
def test_shards_read_apart_give_the_whole_reads_rows_and_rejects(tmp_path, reader):
    values = shard_sources(tmp_path)[reader]
    params = get(reader).make_params(values)
    whole = gathered(get(reader).impl(params))
    assert whole[0] and whole[1]
    prepared, shards = prepare_read(reader, params)
    assert len(shards) == 2
    assert gathered(o for shard in shards for o in read_shard(reader, prepared, shard)) == whole


def test_json_lines_is_read_apart_by_ranges_not_by_shards(tmp_path):
    with pytest.raises(ValueError, match="by ranges"):
        prepare_read("read_jsonl", get("read_jsonl").make_params({"path": str(tmp_path)}))


# --- byte ranges ---

def test_cuts_land_after_a_newline_never_inside_a_character_or_a_crlf(tmp_path):
    body = "一二三\r\n\r\n四五六七八九\n\n😀x\r\nlast".encode()
    path = tmp_path / "c.jsonl"
    path.write_bytes(body)
    for n in range(1, len(body) + 2):
        cuts = cut_points(str(path), n)
        assert cuts[0] == 0 and cuts[-1] == len(body) and cuts == sorted(set(cuts)) and len(cuts) <= n + 1
        assert all(body[c - 1:c] == b"\n" for c in cuts[1:-1]), (n, cuts)


def test_plan_ranges_numbers_each_ranges_first_line(tmp_path):
    path = tmp_path / "l.jsonl"
    path.write_bytes(b"".join(b"%d\n" % i for i in range(1, 101)))
    ranges = plan_ranges(str(path), 7)
    assert len(ranges) == 7 and ranges[0].start == 0 and ranges[-1].stop == path.stat().st_size
    for r, after in zip(ranges, ranges[1:]):
        assert r.stop == after.start
    for r in ranges:
        first = path.read_bytes()[r.start:r.stop].split(b"\n")[0]
        assert int(first) == r.first_line  # line k holds the number k
    assert plan_ranges(str(path), 1000)[-1].first_line == 100  # more ranges than lines: one a line


def test_an_empty_file_is_one_empty_range(tmp_path):
    (tmp_path / "e.jsonl").write_bytes(b"")
    assert plan_ranges(str(tmp_path / "e.jsonl"), 4) == [Range(str(tmp_path / "e.jsonl"), "e.jsonl", 0, 0, 1)]


def read_by_ranges(p, ranges) -> tuple[list[dict], list[dict]]:
    """What a distributed backend does: scan every range, merge, then read each range with the merged fields."""
    fields = jsonl.merge_fields(p, [jsonl.scan_fields(p, r) for r in ranges])
    return gathered(o for r in ranges for o in jsonl.read_jsonl_range(p, r, fields))


TRICKY = [
    b'\xef\xbb\xbf{"text": "first", "label": "x", "n": 1}',
    b'{"text": "\xe4\xb8\xad\xe6\x96\x87\xe5\xad\x97", "label": "y", "n": 2.0}\r',  # CRLF, multi-byte text
    b"",
    b"   ",
    b'{"text": "two", "label": 1, "n": "three", "split": "dev"}',  # bad_type:meta_n
    b'{"text": "\xff", "label": "x"}',                               # invalid_utf8
    b"{bad",
    b"null",
    b'{"text": "late", "label": "z", "late": [1, {"a": 2}], "split": "nope"}',
    b'{"text": "\xf0\x9f\x98\x80\xf0\x9f\x98\x80", "label": "y", "late": "s"}\r',
    b'{"text": "no newline", "label": "x", "n": 5}',
]


@pytest.mark.parametrize("keep_fields", ["all", "none", ["n"]])
def test_every_cut_of_a_tricky_file_reads_as_the_whole_file(tmp_path, keep_fields):
    """Every n up to the file's size puts a cut on every byte offset: inside a multi-byte character, between
    `\\r` and `\\n`, on blank lines, before the last line that has no newline."""
    path = tmp_path / "t.jsonl"
    body = b"\n".join(TRICKY)
    path.write_bytes(body)
    p = get("read_jsonl").make_params({"path": str(path), "keep_fields": keep_fields})
    whole = gathered(get("read_jsonl").impl(p))
    assert len(whole[0]) + len(whole[1]) == len(TRICKY) - 2  # a row or a reject for each non-blank line
    seen, starts = set(), {0} | {i + 1 for i, byte in enumerate(body) if byte == ord("\n")}
    for n in range(1, len(body) + 1):
        ranges = plan_ranges(str(path), n)
        key = tuple(r.start for r in ranges)
        if key not in seen:
            seen.add(key)
            assert read_by_ranges(p, ranges) == whole, n
    assert set().union(*seen) == starts  # every line start was a cut


def test_ranges_over_several_blocks_and_shards(tmp_path):
    (tmp_path / "s").mkdir()
    write_jsonl(tmp_path / "s" / "a.jsonl", [record(f"a{i}", n=i) for i in range(300)] + ["{bad"])
    write_jsonl(tmp_path / "s" / "b.jsonl", [record("b0", n="str")] + [record(f"b{i}", k=True) for i in range(300)])
    p = get("read_jsonl").make_params({"path": str(tmp_path / "s")})
    whole = gathered(get("read_jsonl").impl(p))
    with mock.patch.object(jsonl, "BLOCK_BYTES", 256):
        assert gathered(get("read_jsonl").impl(p)) == whole
        for range_bytes in (100, 1000, 1 << 20):
            ranges = jsonl.plan_jsonl(p, range_bytes)
            assert {r.shard for r in ranges} == {0, 1}
            assert read_by_ranges(p, ranges) == whole
    assert ("b.jsonl:1", "bad_type:meta_n:string") in [(r["id"], r["reason"]) for r in whole[1]]


def test_a_range_needs_the_merged_fields_unless_none_are_kept(tmp_path):
    path = write_jsonl(tmp_path / "a.jsonl", [record("a", n=1)])
    rng = plan_ranges(str(path), 1)[0]
    with pytest.raises(ValueError, match="merge_fields"):
        list(jsonl.read_jsonl_range(get("read_jsonl").make_params({"path": str(path)}), rng))
    p = get("read_jsonl").make_params({"path": str(path), "keep_fields": "none"})
    assert not jsonl.needs_fields(p)
    assert gathered(jsonl.read_jsonl_range(p, rng)) == gathered(get("read_jsonl").impl(p))


def test_the_kept_field_limit_is_judged_across_ranges_as_in_the_whole_read(tmp_path):
    path = write_jsonl(tmp_path / "w.jsonl", [record("a", f1=1), record("b", f2=2), record("c", f3=3, f1=4),
                                              record("d", f4=4), record("e", f1=5)])
    p = get("read_jsonl").make_params({"path": str(path)})
    with mock.patch.object(fields_module, "MAX_KEPT_FIELDS", 2), mock.patch.object(jsonl, "MAX_KEPT_FIELDS", 2):
        whole = gathered(get("read_jsonl").impl(p))
        assert [(r["id"], r["reason"]) for r in whole[1]] == [("w.jsonl:3", "too_many_fields:f3"),
                                                             ("w.jsonl:4", "too_many_fields:f4")]
        for n in range(1, 6):
            assert read_by_ranges(p, plan_ranges(str(path), n)) == whole


# --- property: any file, any cut, any block size ---

VALUES = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.floats(allow_nan=False, width=32),
                   st.text("ab中😀", max_size=3), st.lists(st.integers(0, 2), max_size=2))
TEXTS = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=8)
RECORDS = st.fixed_dictionaries(
    {"text": st.one_of(TEXTS, st.none(), st.integers(0, 2))},
    optional={"label": st.one_of(st.sampled_from(["pos", "neg"]), st.integers(0, 2), st.just(1.5)),
              "kw": VALUES, "n": VALUES, "split": st.sampled_from(["train", "dev", "bogus", ""]),
              "lang": st.sampled_from(["zh", "", 3])})
LINES = st.one_of(
    RECORDS.map(lambda r: json.dumps(r, ensure_ascii=False).encode()),
    RECORDS.map(lambda r: json.dumps(r).encode()),
    st.fixed_dictionaries({"tokens": st.lists(TEXTS, max_size=3), "tags": st.lists(st.sampled_from(["O", "B-X"]),
                                                                                   max_size=3)},
                          optional={"kw": VALUES}).map(lambda r: json.dumps(r, ensure_ascii=False).encode()),
    st.sampled_from([b"", b"  ", b"\t", b"{bad", b"null", b"[1]", b'"s"', b'{"text": "\xff", "label": "x"}',
                     b'{"text": "a", "label": "x", "kw": NaN}', b'{"text": "a", "label": "x", "label": "y"}',
                     b'{"text": "\xe4\xb8", "label": "x"}', b'{"text": "\\ud83d", "label": "x"}',
                     b'{"text": "a", "label": "x", "kw": "\\ud83d"}', b'{"text": "a", "label": "x", "kw": Infinity}',
                     b'{"text": "a", "label": "x", "deep": ' + b"[" * 1100 + b"]" * 1100 + b"}",
                     b'{"text": "a", "label": "x", "kw": ' + b"[" * 1100 + b"]" * 1100 + b"}"]))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=st.lists(LINES, max_size=30), crlf=st.lists(st.booleans(), max_size=30), final_newline=st.booleans(),
       bom=st.booleans(), n=st.integers(1, 12), block=st.sampled_from([16, 64, 1 << 20]),
       keep=st.sampled_from(["all", "none", ["kw"]]))
def test_ranges_read_as_the_whole_file(tmp_path_factory, lines, crlf, final_newline, bom, n, block, keep):
    body = b"".join(line + (b"\r\n" if i < len(crlf) and crlf[i] else b"\n") for i, line in enumerate(lines))
    body = (b"\xef\xbb\xbf" if bom else b"") + (body if final_newline else body.rstrip(b"\n"))
    path = tmp_path_factory.mktemp("r") / "p.jsonl"
    path.write_bytes(body)
    p = get("read_jsonl").make_params({"path": str(path), "keep_fields": keep})
    with mock.patch.object(jsonl, "BLOCK_BYTES", block):
        whole = gathered(get("read_jsonl").impl(p))
        assert read_by_ranges(p, plan_ranges(str(path), n)) == whole


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(shards=st.lists(st.lists(LINES, max_size=12), min_size=1, max_size=3), range_bytes=st.integers(1, 400),
       kind=st.sampled_from(["cls", "bio"]))
def test_ranges_over_shards_read_as_the_whole_directory(tmp_path_factory, shards, range_bytes, kind):
    root = tmp_path_factory.mktemp("s")
    for i, lines in enumerate(shards):
        (root / f"{i}.jsonl").write_bytes(b"".join(line + b"\n" for line in lines))
    p = get("read_jsonl").make_params({"path": str(root), "kind": kind})
    whole = gathered(get("read_jsonl").impl(p))
    assert read_by_ranges(p, plan_source(p.shards(), range_bytes)) == whole
