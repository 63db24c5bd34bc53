"""The Ray backend computes the same nodes as the local runner: same keys, same bytes, a cache hit either way.

A local Ray cluster is started once for the module (an explicit temp dir, no dashboard) and shut down after.
"""
from __future__ import annotations

import json
import logging
import os
import random
import shutil
import sys
import tempfile
from itertools import chain
from pathlib import Path
from unittest import mock

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from testkit import write_jsonl

ray = pytest.importorskip("ray")

import dataprep.backends.ray as on_ray  # noqa: E402
import dataprep.io.jsonl as jsonl  # noqa: E402
from dataprep.backends.ray import RayRunner  # noqa: E402
from dataprep.catalog import get  # noqa: E402
from dataprep.dag import parse_pipeline  # noqa: E402
from dataprep.errors import ConfigError, InputError  # noqa: E402
from dataprep.outcome import Outcome  # noqa: E402
from dataprep.runner import Runner  # noqa: E402

TESTS = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def cluster():
    temp = tempfile.mkdtemp(prefix="dp-ray-", dir="/tmp")  # short: Ray's socket paths must fit in 107 bytes
    # workers import the test stages (t_model) as the driver does
    paths = [str(TESTS), str(TESTS.parent)] + [p for p in sys.path if p]
    ray.init(num_cpus=2, include_dashboard=False, _temp_dir=temp, logging_level="ERROR", log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": ":".join(paths)}})
    yield
    ray.shutdown()
    shutil.rmtree(temp, ignore_errors=True)


def corpus(path: Path) -> None:
    """Reviews with copies spread over the whole file (so over several part files), label conflicts among
    them, and a malformed line."""
    rng = random.Random(7)
    rows = []
    for i in range(1200):
        n = rng.randrange(500)
        label = "neg" if n % 3 == 0 else "pos"
        if i % 97 == 0:
            label = "pos" if label == "neg" else "neg"  # a copy that disagrees: a label conflict
        rows.append({"text": f"review {n}", "label": label})
    write_jsonl(path, rows + ["not json"])


PIPELINE = {"name": "onray", "defaults": {"seed": 5}, "imports": ["stages_for_tests", "stages_split_scoped"], "nodes": {
    "raw": {"uses": "read_jsonl", "with": {"path": "in.jsonl"}},
    "norm": {"uses": "normalize", "input": "raw"},
    "unique": {"uses": "exact_dedup", "input": "norm", "with": {"conflicts": "keep_majority"}},
    "scored": {"uses": "t_model", "input": "unique"},
    "q": {"uses": "quality_score", "input": "scored"},
    "splits": {"uses": "split", "input": "q", "with": {"val": 0.2, "test": 0.2}},
    # scoped nodes: a map and a model on the cluster (the other splits pass through on the driver), a global
    # one on the driver
    "upper": {"uses": "t_scoped_upper", "input": "splits", "with": {"only_split": "train", "suffix": "!"}},
    "seen": {"uses": "t_scoped_model", "input": "upper", "with": {"only_split": "train"}},
    "dropped": {"uses": "t_scoped_drop", "input": "seen", "with": {"only_split": "train", "drop_label": "neg"}},
}}


@pytest.fixture(scope="module")
def both(cluster, tmp_path_factory):
    """The pipeline run locally and on Ray, from the same files, small parts so that inputs span several."""
    work = tmp_path_factory.mktemp("ray")
    corpus(work / "in.jsonl")
    doc = json.loads(json.dumps(PIPELINE))
    doc["nodes"]["raw"]["with"]["path"] = str(work / "in.jsonl")
    pipeline = parse_pipeline(doc, base_dir=work)
    local = Runner(pipeline, work / "local", batch_rows=150, rows_per_part=400)
    local.run()
    remote = RayRunner(pipeline, work / "ray", batch_rows=150, rows_per_part=400)
    remote.run()
    return local, remote, pipeline


def outputs(runner: Runner, node: str) -> dict[str, bytes]:
    """A node's files but the measured ones (stats.json) and the manifest that lists their digests."""
    d = runner.cache(node).dir
    return {p.name: p.read_bytes() for p in sorted(d.iterdir()) if p.name not in ("stats.json", "manifest.json")}


def test_every_node_has_the_same_key_and_bytes_on_ray(both):
    local, remote, pipeline = both
    assert remote.keys == local.keys
    for node in pipeline.nodes:
        assert remote.rejects(node).to_pylist() == local.rejects(node).to_pylist(), node
        assert remote.output(node).to_pylist() == local.output(node).to_pylist(), node
        assert remote.cache(node).manifest()["ledger"] == local.cache(node).manifest()["ledger"], node
        assert outputs(remote, node) == outputs(local, node), node
    assert len(local.cache("norm").parts()) > 1  # the dedup shuffle really had several pieces to join
    assert remote.ran_on["upper"] == remote.ran_on["seen"] == "cluster" and remote.ran_on["dropped"] == "driver"
    seen = local.output("seen")
    assert set(seen.filter(pc.field("split") != "train").column("seen").to_pylist()) == {None}
    assert 0 < seen.filter(pc.field("split") == "train").num_rows < seen.num_rows


def test_dedup_on_ray_finds_copies_across_parts_and_names_the_first(both):
    local, remote, _ = both
    rejects = remote.rejects("unique").to_pylist()
    reasons = {r["reason"].split(":")[0] for r in rejects}
    assert reasons == {"duplicate_of", "label_conflict"}
    kept = remote.output("unique").column("id").to_pylist()
    position = {rid: i for i, rid in enumerate(remote.output("norm").column("id").to_pylist())}
    for r in rejects:
        if r["reason"].startswith("duplicate_of:"):
            keeper = r["reason"].removeprefix("duplicate_of:")
            assert keeper in kept and position[keeper] < position[r["id"]]


def test_a_node_computed_on_ray_is_a_cache_hit_locally(both, tmp_path):
    local, remote, pipeline = both
    again = Runner(pipeline, remote.cache_root, batch_rows=150, rows_per_part=400)
    assert {r.status for r in again.plan()} == {"cached"}


# --- readers: a task a shard, or a byte range of a big JSON Lines file ---

def record(text: str, **fields) -> dict:
    return {"text": text, "label": "pos" if len(text) % 2 else "neg", **fields}


def jsonl_shards(root: Path) -> None:
    """`score` is null only in the first shard (a null column there), an integer from the second on (so a
    float in the third is a reject); the second brings `tag` and splits, the third has no split."""
    (root / "a").mkdir(parents=True)
    write_jsonl(root / "a" / "part-0.jsonl", [record(f"a{i}", score=None) for i in range(3)] + ["not json", ""]
                + [record(f"a{i}", score=None) for i in range(3, 9)])
    write_jsonl(root / "a" / "part-1.jsonl", [record(f"b{i}", score=i, tag="t", split="train") for i in range(10)])
    write_jsonl(root / "b.jsonl", [record(f"c{i}", score=i) for i in range(7)] + [record("c7", score=2.5)])


def other_shards(root: Path) -> None:
    """CSV shards with their own headers (a row of the wrong width), CoNLL shards (a line with a column too
    many), Parquet shards (a label that is no integer)."""
    (root / "c" / "sub").mkdir(parents=True)
    (root / "c" / "x.csv").write_text("text,label,note\n" + "".join(f"x{i},pos,n{i}\n" for i in range(7)))
    (root / "c" / "sub" / "y.csv").write_text("text,label,split\ny0,neg,dev\ny1,neg,test,extra\n"
                                              + "".join(f"y{i},pos,train\n" for i in range(2, 7)))
    (root / "n").mkdir()
    sentence = "EU B-ORG\nrejects O\nit O\n"
    (root / "n" / "d1.conll").write_text("\n".join([sentence] * 5))
    (root / "n" / "d2.conll").write_text("\n".join([sentence] * 2 + ["one two three\n"] + [sentence] * 2))
    (root / "q").mkdir()
    pq.write_table(pa.table({"text": [f"q{i}" for i in range(5)], "label": ["pos"] * 5}), root / "q" / "p0.parquet")
    pq.write_table(pa.table({"text": ["r0", "r1", "r2"], "label": [1.0, 2.5, 3.0], "split": ["dev", None, "test"]}),
                   root / "q" / "p1.parquet")


def big_jsonl(path: Path) -> None:
    """One file of two read blocks (jsonl.BLOCK_BYTES each at most): a malformed line in each, and a kept field
    null in the first and an integer in the second, so the second range is read with a type the first range's
    rows decided nothing about."""
    line = b'{"text": "doc %07d with a few words", "label": "pos"}\n'
    n = (jsonl.BLOCK_BYTES + (1 << 20)) // len(line % 0)
    head = [b'{"text": "first", "label": "neg", "late": null}\n', b"not json\n"]
    tail = [b'{"text": "l1", "label": "neg", "late": 5}\n', b"{bad\n", b'{"text": "l2", "label": "neg", "late": "x"}\n']
    path.write_bytes(b"".join(chain(head, (line % i for i in range(n)), tail)))


def chunked_shards(root: Path) -> None:
    """A shard of 4.75 MB: Arrow parses it in 4 MiB blocks, so its first batch's parsed columns come in two chunks
    and its ids in one; the Parquet bytes follow the chunks (a copy of the batch cut at the union of the
    boundaries, as a plain IPC stream cuts it, writes other bytes)."""
    line = '{"text": "review %d of something fairly ordinary, with words", "label": "%s", "stars": %d}\n'
    (root / "w").mkdir()
    (root / "w" / "part-0.jsonl").write_text(line % (0, "neg", 1) + "not json\n")
    (root / "w" / "part-1.jsonl").write_text("".join(line % (i, "pos" if i % 3 else "neg", i % 5)
                                                     for i in range(150_000, 200_000)))


SOURCES = {
    "j": {"uses": "read_jsonl", "with": {"path": "j", "batch_rows": 4}},
    "c": {"uses": "read_csv", "with": {"path": "c", "batch_rows": 3}},
    "n": {"uses": "read_conll", "with": {"path": "n", "batch_rows": 2}},
    "q": {"uses": "read_parquet", "with": {"path": "q", "batch_rows": 2}},
    "big": {"uses": "read_jsonl", "with": {"path": "big.jsonl"}},
    "w": {"uses": "read_jsonl", "with": {"path": "w"}},
}


class Messages(logging.Handler):
    def __init__(self):
        super().__init__(logging.INFO)
        self.seen: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.seen.append(record.getMessage())


@pytest.fixture(scope="module")
def sources(cluster, tmp_path_factory):
    """Every sharded reader and one JSON Lines file cut into two ranges, read locally and on Ray."""
    work = tmp_path_factory.mktemp("sources")
    jsonl_shards(work / "j")
    other_shards(work)
    big_jsonl(work / "big.jsonl")
    chunked_shards(work)
    nodes = {name: {**node, "with": {**node["with"], "path": str(work / node["with"]["path"])}}
             for name, node in SOURCES.items()}
    pipeline = parse_pipeline({"name": "read", "nodes": nodes}, base_dir=work)
    local = Runner(pipeline, work / "local")
    local.run()
    messages, logger = Messages(), logging.getLogger(on_ray.__name__)
    logger.addHandler(messages)
    logger.setLevel(logging.INFO)
    try:
        remote = RayRunner(pipeline, work / "ray", range_bytes=1 << 20)
        remote.run()
    finally:
        logger.removeHandler(messages)
    return local, remote, pipeline, messages.seen


def test_every_reader_on_ray_writes_the_local_bytes(sources):
    local, remote, pipeline, _ = sources
    for node in SOURCES:
        assert remote.rejects(node).num_rows, node  # every source has rejects, and keeps them
        assert remote.rejects(node).to_pylist() == local.rejects(node).to_pylist(), node
        assert remote.cache(node).manifest()["ledger"] == local.cache(node).manifest()["ledger"], node
        assert outputs(remote, node) == outputs(local, node), node


def test_each_source_was_read_as_several_pieces_the_big_file_by_block(sources):
    _, remote, pipeline, _ = sources
    for name in SOURCES:
        node = pipeline.nodes[name]
        plan = on_ray._plan_source(node.stage.name, node.params, remote.range_bytes)
        assert len(plan.pieces) >= 2, name
    big = pipeline.nodes["big"]
    ranges = on_ray._plan_source("read_jsonl", big.params, remote.range_bytes).pieces
    assert [r.start for r in ranges] == jsonl.block_starts(big.params.path)[:-1]
    assert ranges[1].first_line > 1 and ranges[1].stop is None


def test_shard_ids_are_relative_paths_and_a_later_shard_fixes_a_kept_type(sources):
    _, remote, _, _ = sources
    rejects = {(r["id"], r["reason"]) for r in remote.rejects("j").to_pylist()}
    assert rejects == {("a/part-0.jsonl:4", "malformed_json"), ("b.jsonl:8", "bad_type:meta_score:number")}
    rows = remote.output("j")
    assert rows.column("id").to_pylist()[:2] == ["a/part-0.jsonl:1", "a/part-0.jsonl:2"]
    assert rows.schema.field("meta_score").type == pa.int64()
    assert ("sub/y.csv:3", "bad_csv_row:fields=4") in {(r["id"], r["reason"]) for r in remote.rejects("c").to_pylist()}
    assert {r["reason"] for r in remote.rejects("big").to_pylist()} == {"malformed_json", "bad_type:meta_late:string"}


def test_a_piece_whose_guessed_state_was_wrong_is_read_again_on_the_driver(sources):
    """b.jsonl was guessed to follow no split (a/part-1.jsonl had them) and its first batch has none: read
    from the guess, its batches would lack the split column the local read gives them. So is x.csv, after
    sub/y.csv. Every other piece was taken as the cluster read it."""
    *_, messages = sources
    assert sorted(m for m in messages if "read again on the driver" in m) == [
        "nodes.c: x.csv read again on the driver (the state before it was not the guessed one)",
        "nodes.j: b.jsonl read again on the driver (the state before it was not the guessed one)"]


def test_a_reader_error_in_a_task_is_the_local_error(cluster, tmp_path):
    (tmp_path / "q").mkdir()
    pq.write_table(pa.table({"text": ["a"], "label": ["x"]}), tmp_path / "q" / "a.parquet")
    pq.write_table(pa.table({"text": [f"words {i} " * 3 for i in range(200)], "label": ["x"] * 200}),
                   tmp_path / "q" / "b.parquet")
    data = bytearray((tmp_path / "q" / "b.parquet").read_bytes())
    data[40:200] = bytes(b ^ 0x5A for b in data[40:200])  # the data pages, not the footer
    (tmp_path / "q" / "b.parquet").write_bytes(bytes(data))
    pipeline = parse_pipeline({"name": "bad", "nodes": {"q": {"uses": "read_parquet",
                                                               "with": {"path": str(tmp_path / "q")}}}})
    with pytest.raises(InputError) as here:
        Runner(pipeline, tmp_path / "local").run()
    with pytest.raises(InputError) as there:
        RayRunner(pipeline, tmp_path / "ray").run()
    assert str(there.value) == str(here.value) and "corrupt Parquet data" in str(here.value)


def test_an_outcome_crosses_to_the_driver_with_each_columns_chunks():
    """pack/unpack keep every column's chunks (the Parquet writer's pages follow them), schema and values."""
    kept = pa.table({"id": pa.chunked_array([["a", "b", "c", "d", "e"]]),
                     "text": pa.chunked_array([["x", "y"], ["z"], ["u", "v"]]),
                     "n": pa.chunked_array([[1, 2, 3], [4, None]])})
    kept = kept.replace_schema_metadata({"k": "v"})
    back, rows_in = on_ray.unpack(on_ray.pack(Outcome(kept), 5))
    assert rows_in == 5 and back.kept.equals(kept) and back.kept.schema.metadata == kept.schema.metadata
    assert [[len(c) for c in col.chunks] for col in back.kept.columns] == [[5], [2, 1, 2], [3, 2]]
    empty, _ = on_ray.unpack(on_ray.pack(Outcome(kept.slice(0, 0)), 0))
    assert empty.kept.schema == kept.schema and empty.kept.num_rows == 0


def test_block_starts_are_where_the_whole_read_begins_its_blocks(tmp_path):
    """Long lines (a window doubled), a BOM, CRLF, blank lines, a last line without a newline, an empty file."""
    rng = random.Random(11)
    path = tmp_path / "f.jsonl"
    with mock.patch.object(jsonl, "BLOCK_BYTES", 32):
        for _ in range(200):
            body = (b"\xef\xbb\xbf" if rng.random() < 0.3 else b"") + b"".join(
                b"x" * rng.choice([0, 1, 5, 31, 32, 33, 100]) + rng.choice([b"\n", b"\r\n"])
                for _ in range(rng.randrange(12))) + b"y" * rng.choice([0, 0, 3, 40])
            path.write_bytes(body)
            ends, pos = [], jsonl.block_starts(str(path))[0]
            for _, view in jsonl._blocks(str(path)):
                pos = min(pos + len(view), len(body))  # a last line without a newline is read with one
                ends.append(pos)
            assert jsonl.block_starts(str(path))[1:] == ends, body


def test_pieces_read_in_order_from_the_state_before_them_are_the_whole_reads_batches(tmp_path):
    """What the Ray backend does, without Ray: shards cut into ranges at block starts, each read from its guess
    (the scans of the pieces before it), read again from the true state when `_fits` says so. Batch for batch,
    schema for schema, the whole read's."""
    rng = random.Random(5)
    for trial in range(30):
        root = tmp_path / str(trial)
        root.mkdir()
        for s in range(rng.randrange(1, 4)):
            lines = [rng.choice(["not json", "", json.dumps(record(f"t{i}", **{
                k: rng.choice([None, 1, 2.5, "s", True, [1], "train", ""])
                for k in rng.sample(["f1", "f2", "split", "lang"], rng.randrange(3))}))]) for i in range(25)]
            write_jsonl(root / f"p{s}.jsonl", lines)
        params = get("read_jsonl").make_params({"path": str(root), "batch_rows": rng.choice([1, 3, 50]),
                                                "keep_fields": rng.choice(["all", "none", ["f1"]])})
        with mock.patch.object(jsonl, "BLOCK_BYTES", rng.choice([16, 64, 256])):
            whole = list(get("read_jsonl").impl(params))
            plan = on_ray._plan_source("read_jsonl", params, rng.choice([1, 100]))
            assert_batches_equal(list(read_in_order(plan)), whole)


def read_in_order(plan):
    guesses, merged = [], jsonl.Fields()
    for piece in plan.pieces:
        guesses.append(on_ray._Carry(fields=merged))
        merged = jsonl.merge_fields(plan.params, [merged, jsonl.scan_fields(plan.params, piece)])
    true = plan.start()
    for i, guess in enumerate(guesses):
        items = on_ray._piece_items(plan, i, guess)
        first = next(items)
        if not on_ray._fits(plan, i, guess, true, first):
            items = on_ray._piece_items(plan, i, true)
            first = next(items)
        true = yield from on_ray._passed(chain([first], items), true)


def assert_batches_equal(got, want) -> None:
    assert len(got) == len(want)
    for a, b in zip(got, want):
        assert a.kept.schema == b.kept.schema and a.kept.equals(b.kept)
        assert a.rejected.equals(b.rejected) and a.notes == b.notes


@pytest.mark.parametrize("defaults, message", [
    ({"backend": "spark"}, "expected local or ray"),
    ({"backend": "ray", "address": 6379}, "a Ray address"),
    ({"backend": "ray", "concurrency": 0}, "a whole number of actors >= 1, got 0"),
    ({"backend": "ray", "concurrency": "4"}, "a whole number of actors >= 1, got '4'"),
    ({"backend": "ray", "num_gpus": -1}, "a number of GPUs >= 0"),
    ({"backend": "ray", "num_gpus": True}, "a number of GPUs >= 0"),
])
def test_a_bad_backend_fails_naming_the_key(defaults, message, tmp_path):
    (tmp_path / "x.jsonl").write_text("")
    doc = {"name": "p", "defaults": defaults,
           "nodes": {"raw": {"uses": "read_jsonl", "with": {"path": str(tmp_path / "x.jsonl")}}}}
    with pytest.raises(ConfigError, match=message) as e:
        parse_pipeline(doc)
    assert "defaults." in str(e.value)


def test_the_backend_is_outside_the_keys(tmp_path):
    (tmp_path / "x.jsonl").write_text("")
    doc = {"name": "p", "nodes": {"raw": {"uses": "read_jsonl", "with": {"path": str(tmp_path / "x.jsonl")}}}}
    plain = Runner(parse_pipeline(doc), "unused")
    on_ray = Runner(parse_pipeline({**doc, "defaults": {"backend": "ray", "concurrency": 4, "num_gpus": 0.5}}),
                    "unused")
    assert plain.keys == on_ray.keys
    assert on_ray.pipeline.execution == {"backend": "ray", "concurrency": 4, "num_gpus": 0.5}


def test_the_ray_knobs_reach_the_runner_from_defaults_and_the_command_line(tmp_path):
    from dataprep.cli import _runner
    (tmp_path / "x.jsonl").write_text("")
    path = tmp_path / "p.yaml"
    path.write_text(json.dumps({"name": "p", "defaults": {"backend": "ray", "concurrency": 4}, "nodes": {
        "raw": {"uses": "read_jsonl", "with": {"path": str(tmp_path / "x.jsonl")}}}}))
    runner = _runner(str(path), str(tmp_path / "c"))  # made, not run: no cluster starts
    assert (runner.concurrency, runner.num_gpus) == (4, 0)
    runner = _runner(str(path), str(tmp_path / "c"), ray_knobs={"concurrency": None, "num_gpus": 1.0})
    assert (runner.concurrency, runner.num_gpus) == (4, 1.0)
    from click.testing import CliRunner

    from dataprep.cli import main
    local = CliRunner().invoke(main, ["run", str(path), "--backend", "local", "--concurrency", "3",
                                      "--cache-dir", str(tmp_path / "c")])
    assert local.exit_code != 0 and "--concurrency is a Ray setting" in local.output


# --- the shared datasets (../shared/datasets, or $DATAPREP_SHARED): skipped where they are absent ---

SHARED = Path(os.environ.get("DATAPREP_SHARED") or TESTS.parent.parent / "shared" / "datasets")
SHARED_READS = {  # one reader over several real files each (shards: Ray pieces), as scripts/ingest_shared.py reads them
    "shopping": ("read_csv", "zh_online_shopping_10_cats/online_shopping_10_cats.part*of4.csv",
                 {"text_field": "review", "lang": "zh"}, "normalize", {}),
    "tnews": ("read_jsonl", "zh_fewclue_tnews/*_few_all.json",
              {"text_field": "sentence", "label_field": "label_desc", "lang": "zh"}, "normalize", {}),
    "weibo": ("read_conll", "ner_zh_weibo/weiboNER_2nd_conll.*",
              {"delimiter": "\t", "strip_token_position": True}, "to_bio2", {"scheme": "IOB2"}),
}


@pytest.mark.skipif(not SHARED.is_dir(), reason=f"shared datasets not found at {SHARED}")
def test_ingesting_the_shared_datasets_on_ray_writes_the_local_bytes(cluster, tmp_path):
    nodes = {}
    for name, (reader, glob, read, prep, prep_with) in SHARED_READS.items():
        nodes[f"{name}_raw"] = {"uses": reader, "with": {"path": str(SHARED / glob), **read}}
        nodes[f"{name}_prep"] = {"uses": prep, "input": f"{name}_raw", "with": prep_with}
        nodes[f"{name}_unique"] = {"uses": "exact_dedup", "input": f"{name}_prep"}
    pipeline = parse_pipeline({"name": "shared", "nodes": nodes}, base_dir=tmp_path)
    local = Runner(pipeline, tmp_path / "local", rows_per_part=20_000)
    local.run()
    remote = RayRunner(pipeline, tmp_path / "ray", rows_per_part=20_000)
    remote.run()
    for node in nodes:
        assert remote.cache(node).manifest()["ledger"] == local.cache(node).manifest()["ledger"], node
        assert outputs(remote, node) == outputs(local, node), node
    assert local.cache("shopping_unique").manifest()["ledger"]["dropped"]  # real copies, found across shards
    assert len(local.cache("shopping_prep").parts()) > 1  # the dedup shuffle joined several pieces


# --- a million docs: copies spread across files, blocks and parts ---

def million_docs(directory: Path, docs: int = 1_000_000, shards: int = 4) -> None:
    """`docs` short docs in `shards` JSON Lines files; 10% are copies of a doc anywhere before them (so in
    another file, block and part as often as not), 1% of those with the other label (label conflicts)."""
    rng = np.random.default_rng(11)
    source = np.arange(docs)
    copy = rng.random(docs) < 0.10
    copy[0] = False
    source[copy] = (rng.random(copy.sum()) * np.flatnonzero(copy)).astype(np.int64)
    while not np.array_equal(source, source[source]):  # a copy of a copy is a copy of the original
        source = source[source]
    flip = copy & (rng.random(docs) < 0.01)
    labels = np.where((source % 2 == 0) ^ flip, "a", "b")
    directory.mkdir()
    per = docs // shards
    for s in range(shards):
        lines = [f'{{"id": "d{i}", "text": "doc {source[i]} of the corpus", "label": "{labels[i]}"}}'
                 for i in range(s * per, (s + 1) * per)]
        (directory / f"part-{s}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_a_million_docs_dedup_on_ray_writes_the_local_bytes(cluster, tmp_path):
    million_docs(tmp_path / "docs")
    pipeline = parse_pipeline({"name": "million", "nodes": {
        "raw": {"uses": "read_jsonl", "with": {"path": str(tmp_path / "docs"), "id_field": "id"}},
        "unique": {"uses": "exact_dedup", "input": "raw", "with": {"conflicts": "keep_majority"}}}},
        base_dir=tmp_path)
    local = Runner(pipeline, tmp_path / "local", rows_per_part=200_000)
    local.run()
    remote = RayRunner(pipeline, tmp_path / "ray", rows_per_part=200_000)
    remote.run()
    for node in ("raw", "unique"):
        assert remote.cache(node).manifest()["ledger"] == local.cache(node).manifest()["ledger"], node
        assert outputs(remote, node) == outputs(local, node), node
    dropped = local.cache("unique").manifest()["ledger"]["dropped"]
    assert dropped["duplicate_of"] > 80_000 and dropped["label_conflict"] > 0
    assert len(local.cache("raw").parts()) == 5
