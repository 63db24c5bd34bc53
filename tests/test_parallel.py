"""read_parallel: sentence pairs one a line; every dirty line becomes a reject with its reason and line."""
from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from dataprep.dag import parse_pipeline
from dataprep.errors import ConfigError
from dataprep.io.parallel import ParallelParams, read_parallel
from dataprep.runner import Runner

SAMPLE = Path(__file__).resolve().parent.parent / "sample_data" / "zh_en_parallel.tsv"

DIRTY = [
    "\ufeff这个房间很干净。\tThe room is very clean.",      # 1: BOM
    "服务很热情。\tThe service is warm.\r",                  # 2: CRLF
    b"\xff\xfe\xe5\x9d\x8f\tbad bytes",                       # 3: invalid UTF-8
    "只有中文没有英文",                                        # 4: no tab
    "",                                                        # 5: blank: no record
    "三列。\tThree fields.\tsource=web",                       # 6: a third field
    "空的目标。\t",                                            # 7: empty target
    "\tEmpty source.",                                         # 8: empty source
    "  \t   ",                                                 # 9: both sides blank
    '他说"好"。\tHe said "good".',                             # 10: quotes are text
]


def write_lines(path: Path, lines) -> Path:
    path.write_bytes(b"\n".join(x if isinstance(x, bytes) else x.encode() for x in lines) + b"\n")
    return path


def read(path: Path, **params) -> tuple[pa.Table, pa.Table]:
    outcomes = list(read_parallel.impl(ParallelParams(path=str(path), **params)))
    return (pa.concat_tables([o.kept for o in outcomes]), pa.concat_tables([o.rejected for o in outcomes]))


def test_dirty_lines_become_rejects_with_reasons(tmp_path):
    kept, rejected = read(write_lines(tmp_path / "p.tsv", DIRTY))
    assert kept.column("id").to_pylist() == ["p.tsv:1", "p.tsv:2", "p.tsv:10"]
    assert kept.column("src").to_pylist() == ["这个房间很干净。", "服务很热情。", '他说"好"。']
    assert kept.column("tgt").to_pylist() == ["The room is very clean.", "The service is warm.", 'He said "good".']
    assert set(kept.column("src_lang").to_pylist()) == {"zh"} and set(kept.column("tgt_lang").to_pylist()) == {"en"}
    assert dict(zip(rejected.column("id").to_pylist(), rejected.column("reason").to_pylist())) == {
        "p.tsv:3": "invalid_utf8", "p.tsv:4": "bad_parallel_row:fields=1", "p.tsv:6": "bad_parallel_row:fields=3",
        "p.tsv:7": "empty_side:tgt", "p.tsv:8": "empty_side:src", "p.tsv:9": "empty_side:src"}
    assert rejected.column("record").to_pylist()[0] == "\\xff\\xfe坏\tbad bytes"  # raw, never lost


def test_header_columns_and_languages(tmp_path):
    path = write_lines(tmp_path / "p.csv", ["id,en,zh", "1,Good room.,好房间。", "2,Bad,坏,extra", "3,Fine.,还行。"])
    kept, rejected = read(path, delimiter=",", header=True, src_col=2, tgt_col=1, src_lang="zh", tgt_lang="en")
    assert kept.column("src").to_pylist() == ["好房间。", "还行。"]
    assert kept.column("tgt").to_pylist() == ["Good room.", "Fine."]
    assert rejected.column("reason").to_pylist() == ["bad_parallel_row:fields=4"]  # the header has 3


def test_quoting_minimal_reads_quoted_delimiters(tmp_path):
    path = write_lines(tmp_path / "p.csv", ['"好,很好。","Good, very good."', '"a ""quote""",b'])
    kept, _ = read(path, delimiter=",", quoting="minimal")
    assert kept.column("src").to_pylist() == ["好,很好。", 'a "quote"']
    kept, rejected = read(path, delimiter=",")  # quoting none: the comma inside splits the line
    assert kept.num_rows == 1 and rejected.column("reason").to_pylist() == ["bad_parallel_row:fields=4"]


def test_quoting_minimal_reads_a_field_over_two_lines_and_rejects_an_unbalanced_quote(tmp_path):
    path = write_lines(tmp_path / "p.csv", ['"第一行\n第二行。",Two lines.', '"没有结尾,No end.', "好。,Good."])
    kept, rejected = read(path, delimiter=",", quoting="minimal", max_record_lines=2)
    assert kept.column("id").to_pylist() == ["p.csv:1", "p.csv:4"]  # a record's id is its first line
    assert kept.column("src").to_pylist() == ["第一行\n第二行。", "好。"]
    assert rejected.to_pylist() == [{"id": "p.csv:3", "reason": "bad_csv_row:unbalanced_quote",
                                     "record": '"没有结尾,No end.'}]


def test_batches_cover_every_line_once(tmp_path):
    path = write_lines(tmp_path / "p.tsv", [f"句子{i}。\tSentence {i}." if i % 7 else "broken" for i in range(1, 101)])
    outcomes = list(read_parallel.impl(ParallelParams(path=str(path), batch_rows=10)))
    assert max(o.kept.num_rows + o.rejected.num_rows for o in outcomes) <= 10
    ids = [i for o in outcomes for i in o.kept.column("id").to_pylist() + o.rejected.column("id").to_pylist()]
    assert sorted(ids, key=lambda s: int(s.split(":")[1])) == [f"p.tsv:{i}" for i in range(1, 101)]


def test_sample_data_planted_dirt_is_exactly_what_is_rejected():
    kept, rejected = read(SAMPLE)
    assert dict(zip(rejected.column("id").to_pylist(), rejected.column("reason").to_pylist())) == {
        "zh_en_parallel.tsv:703": "bad_parallel_row:fields=1", "zh_en_parallel.tsv:2512": "bad_parallel_row:fields=1",
        "zh_en_parallel.tsv:4743": "bad_parallel_row:fields=1", "zh_en_parallel.tsv:1029": "bad_parallel_row:fields=3",
        "zh_en_parallel.tsv:2522": "empty_side:tgt", "zh_en_parallel.tsv:7550": "empty_side:tgt"}
    assert kept.num_rows == 8000 - 6


def test_in_a_pipeline_it_produces_parallel_rows_and_balances(workdir):
    write_lines(workdir / "p.tsv", DIRTY)
    nodes = {"raw": {"uses": "read_parallel", "with": {"path": "p.tsv"}}}
    runner = Runner(parse_pipeline({"name": "p", "nodes": nodes}), workdir / "cache")
    assert runner.pipeline.nodes["raw"].kind == "parallel"
    ledger = runner.run()[0].ledger
    assert (ledger.rows_in, ledger.rows_out, dict(ledger.dropped)) == (
        9, 3, {"invalid_utf8": 1, "bad_parallel_row": 2, "empty_side": 3})


@pytest.mark.parametrize("bad, message", [
    ({"src_col": 1, "tgt_col": 1}, "two different columns"),
    ({"delimiter": "||"}, "one character"),
    ({"fields": 1}, "must exceed src_col and tgt_col"),
])
def test_config_errors_name_the_node(workdir, bad, message):
    write_lines(workdir / "p.tsv", DIRTY)
    with pytest.raises(ConfigError, match=rf"nodes\.raw\.with: .*{message}"):
        parse_pipeline({"name": "p", "nodes": {"raw": {"uses": "read_parallel", "with": {"path": "p.tsv", **bad}}}})
