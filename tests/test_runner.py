"""The local runner: caching by key, reruns of exactly what changed, the ledger check, atomic commits."""
from __future__ import annotations

import json

import pytest
import stages_for_tests
from testkit import write_jsonl, write_pipeline

from dataprep.dag import load_pipeline, parse_pipeline
from dataprep.errors import LedgerError, SchemaError
from dataprep.runner import Runner


def statuses(reports) -> dict[str, str]:
    return {r.node: r.status for r in reports}


def runner(path, cache="cache", **kw) -> Runner:
    return Runner(load_pipeline(path), cache, **kw)


def edit(path, node: str, **with_):
    """Rewrite one node's `with:` in a pipeline file."""
    import yaml
    doc = yaml.safe_load(path.read_text())
    doc["nodes"][node].setdefault("with", {}).update(with_)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))


def test_first_run_runs_everything_and_writes_the_cache_layout(small_pipeline, workdir):
    r = runner(small_pipeline)
    reports = r.run()
    assert statuses(reports) == {"raw": "ran", "up": "ran", "kept": "ran", "side": "ran"}
    entry = workdir / "cache" / "p" / "kept" / r.keys["kept"]
    assert sorted(p.name for p in entry.iterdir()) == ["manifest.json", "part-00000.parquet", "rejects.parquet",
                                                       "stats.json"]
    manifest = json.loads((entry / "manifest.json").read_text())
    assert manifest["key"] == r.keys["kept"] and manifest["inputs"] == {"up": r.keys["up"]}
    ledger = manifest["ledger"]
    assert (ledger["in"], ledger["out"], ledger["added"], ledger["dropped"]) == (5, 4, 0, {"too_short": 1})
    assert r.output("kept").column("text").to_pylist() == ["GOOD MOVIE", "BAD MOVIE", "FINE FILM", "LOVED IT"]
    assert r.rejects("kept").column("reason").to_pylist() == ["too_short:3"]
    assert r.rejects("raw").to_pylist() == [{"id": "in.jsonl:3", "reason": "malformed_json", "record": "{not json"}]
    assert r.output("side").column("tag").to_pylist() == ["pos!", "neg!", "pos!", "neg!", "pos!"]


def test_rerun_with_nothing_changed_runs_nothing(small_pipeline):
    runner(small_pipeline).run()
    reports = runner(small_pipeline).run()
    assert set(statuses(reports).values()) == {"cached"}
    assert reports[0].ledger.rows_in == 6  # the cached ledger comes back with the report


def test_changing_a_param_reruns_that_node_and_its_dependents_only(small_pipeline):
    first = runner(small_pipeline)
    first.run()
    edit(small_pipeline, "up", suffix="!")
    second = runner(small_pipeline)
    assert statuses(second.run()) == {"raw": "cached", "up": "ran", "kept": "ran", "side": "cached"}
    assert second.keys["raw"] == first.keys["raw"] and second.keys["side"] == first.keys["side"]
    assert second.keys["up"] != first.keys["up"] and second.keys["kept"] != first.keys["kept"]
    assert second.output("kept").column("text")[0].as_py() == "GOOD MOVIE!"


def test_changing_a_leaf_param_reruns_only_the_leaf(small_pipeline):
    runner(small_pipeline).run()
    edit(small_pipeline, "kept", min_len=9)
    r = runner(small_pipeline)
    assert statuses(r.run()) == {"raw": "cached", "up": "cached", "kept": "ran", "side": "cached"}
    assert r.rejects("kept").column("reason").to_pylist() == ["too_short:9"] * 2


def test_changing_the_source_bytes_reruns_everything(small_pipeline, workdir):
    first = runner(small_pipeline)
    first.run()
    with open(workdir / "in.jsonl", "a") as f:
        f.write('{"text": "one more", "label": "pos"}\n')
    second = runner(small_pipeline)
    assert set(statuses(second.run()).values()) == {"ran"}
    assert all(second.keys[n] != first.keys[n] for n in first.keys)
    assert second.output("kept").num_rows == 5


def test_a_knob_only_change_keeps_every_key(small_pipeline):
    import yaml
    doc = yaml.safe_load(small_pipeline.read_text())
    doc["nodes"]["seeded"] = {"uses": "t_seeded", "input": "raw", "with": {"knob": 1}}
    small_pipeline.write_text(yaml.safe_dump(doc, sort_keys=False))
    first = runner(small_pipeline)
    first.run()
    edit(small_pipeline, "seeded", knob=2)
    second = runner(small_pipeline)
    assert second.keys == first.keys
    assert set(statuses(second.run()).values()) == {"cached"}


def test_a_readers_batch_rows_is_in_its_key(small_pipeline):
    """It decides the Parquet row groups of the reader's parts, so their bytes: not a knob."""
    first = runner(small_pipeline)
    edit(small_pipeline, "raw", batch_rows=2)
    assert runner(small_pipeline).keys["raw"] != first.keys["raw"]


def test_until_runs_only_the_node_and_its_ancestors(small_pipeline):
    r = runner(small_pipeline)
    assert statuses(r.run(until="up")) == {"raw": "ran", "up": "ran"}
    assert {p.node: p.status for p in r.plan()} == {"raw": "cached", "up": "cached", "kept": "missing",
                                                    "side": "missing"}


def test_force_reruns_the_node_and_its_descendants(small_pipeline):
    runner(small_pipeline).run()
    assert statuses(runner(small_pipeline).run(force=["up"])) == {
        "raw": "cached", "up": "ran", "kept": "ran", "side": "cached"}


def test_plan_reports_keys_and_cache_state(small_pipeline):
    r = runner(small_pipeline)
    assert [(p.node, p.status) for p in r.plan()] == [("raw", "missing"), ("up", "missing"), ("kept", "missing"),
                                                      ("side", "missing")]
    r.run()
    plan = runner(small_pipeline).plan()
    assert all(p.status == "cached" and p.key == r.keys[p.node] for p in plan)


def test_a_stage_that_loses_rows_raises_and_commits_nothing(workdir):
    write_jsonl(workdir / "in.jsonl", [{"text": "a", "label": "x"}, {"text": "b", "label": "y"}])
    path = write_pipeline(workdir / "p.yaml", {
        "raw": {"uses": "read_jsonl", "with": {"path": "in.jsonl"}},
        "lossy": {"uses": "t_lose_row", "input": "raw"}})
    r = runner(path)
    with pytest.raises(LedgerError, match="'lossy'.*rows were lost or invented"):
        r.run()
    assert r.cache("raw").committed
    assert not r.cache("lossy").committed
    assert not list((workdir / "cache" / "p" / "lossy").glob("*/manifest.json"))
    assert statuses(runner(path).run(until="raw")) == {"raw": "cached"}


def test_a_map_stage_returning_a_non_conforming_table_raises_schema_error(workdir):
    write_jsonl(workdir / "in.jsonl", [{"text": "a", "label": "x"}])
    path = write_pipeline(workdir / "p.yaml", {
        "raw": {"uses": "read_jsonl", "with": {"path": "in.jsonl"}},
        "broken": {"uses": "t_drop_label_column", "input": "raw"}})
    r = runner(path)
    with pytest.raises(SchemaError, match="missing column 'label'"):
        r.run()
    assert not r.cache("broken").committed


def global_pipeline(workdir, copies=2):
    write_jsonl(workdir / "in.jsonl", [
        {"text": "a", "label": "keep"}, {"text": "b", "label": "drop"}, {"text": "c", "label": "keep"},
        {"text": "d", "label": "drop"}, {"text": "e", "label": "keep"}])
    return write_pipeline(workdir / "p.yaml", {
        "raw": {"uses": "read_jsonl", "with": {"path": "in.jsonl", "batch_rows": 2}},
        "over": {"uses": "t_oversample", "input": "raw", "with": {"copies": copies}},
        "after": {"uses": "t_upper", "input": "over"}})


def test_a_global_stage_with_added_rows_balances(workdir):
    r = runner(global_pipeline(workdir), batch_rows=2)
    reports = {x.node: x for x in r.run()}
    led = reports["over"].ledger
    assert (led.rows_in, led.rows_out, led.added, dict(led.dropped)) == (5, 5, 2, {"unwanted_label": 2})
    assert led.rows_in == led.rows_out + led.dropped_total - led.added
    out = r.output("over")
    assert out.column("id").to_pylist() == ["in.jsonl:1", "in.jsonl:3", "in.jsonl:5",
                                            "in.jsonl:1#copy0", "in.jsonl:1#copy1"]
    assert out.column("parent_id").to_pylist() == [None, None, None, "in.jsonl:1", "in.jsonl:1"]
    assert out.column("aug").to_pylist() == [None, None, None, "copy", "copy"]
    assert r.rejects("over").column("id").to_pylist() == ["in.jsonl:2", "in.jsonl:4"]
    # downstream sees the added rows too, with their lineage
    assert r.output("after").column("parent_id").to_pylist()[-2:] == ["in.jsonl:1", "in.jsonl:1"]


def test_a_model_stage_is_loaded_once_per_node(workdir):
    write_jsonl(workdir / "in.jsonl", [{"text": str(i), "label": "x"} for i in range(10)])
    path = write_pipeline(workdir / "p.yaml", {
        "raw": {"uses": "read_jsonl", "with": {"path": "in.jsonl"}},
        "scored": {"uses": "t_model", "input": "raw"}})
    before = len(stages_for_tests.MODEL_LOADS)
    r = runner(path, batch_rows=3)  # four input batches
    r.run()
    assert len(stages_for_tests.MODEL_LOADS) == before + 1
    assert r.output("scored").column("scored").to_pylist() == [True] * 10


def test_multi_input_nodes_concatenate_in_input_order(workdir):
    write_jsonl(workdir / "a.jsonl", [{"text": "a1", "label": "x"}, {"text": "a2", "label": "x"}])
    write_jsonl(workdir / "b.jsonl", [{"text": "b1", "label": "y"}])
    path = write_pipeline(workdir / "p.yaml", {
        "a": {"uses": "read_jsonl", "with": {"path": "a.jsonl"}},
        "b": {"uses": "read_jsonl", "with": {"path": "b.jsonl"}},
        "ab": {"uses": "t_identity", "input": ["a", "b"]},
        "ba": {"uses": "t_identity", "input": ["b", "a"]}})
    r = runner(path)
    r.run()
    assert r.output("ab").column("text").to_pylist() == ["a1", "a2", "b1"]
    assert r.output("ba").column("text").to_pylist() == ["b1", "a1", "a2"]
    assert r.keys["ab"] != r.keys["ba"]


def test_many_small_batches_give_the_same_output_as_one_batch(workdir):
    records = [{"text": "x" * (i % 7), "label": str(i % 3)} for i in range(103)] + ["bad line"]
    write_jsonl(workdir / "in.jsonl", records)
    def nodes(batch_rows):
        return {
            "raw": {"uses": "read_jsonl", "with": {"path": "in.jsonl", "batch_rows": batch_rows}},
            "up": {"uses": "t_upper", "input": "raw"},
            "kept": {"uses": "t_min_len", "input": "up", "with": {"min_len": 3}},
            "over": {"uses": "t_oversample", "input": "kept", "with": {"drop_label": "2"}}}
    one = Runner(parse_pipeline({"name": "p", "nodes": nodes(10_000)}), "one")
    many = Runner(parse_pipeline({"name": "p", "nodes": nodes(4)}), "many", batch_rows=5, rows_per_part=17)
    one.run()
    many.run()
    assert one.keys["raw"] != many.keys["raw"]  # the reader's batch_rows decides its row groups: keyed
    assert len(many.cache("up").parts()) > 1 and len(one.cache("up").parts()) == 1
    for node in ("raw", "up", "kept", "over"):
        assert many.output(node).equals(one.output(node)), node
        assert many.rejects(node).equals(one.rejects(node)), node
        assert many.cache(node).manifest()["ledger"] == one.cache(node).manifest()["ledger"]


def test_arrow_parts_hold_the_same_rows_and_the_format_is_not_part_of_the_key(workdir):
    records = [{"text": "x" * (i % 7), "label": str(i % 3)} for i in range(103)] + ["bad line"]
    write_jsonl(workdir / "in.jsonl", records)
    nodes = {"raw": {"uses": "read_jsonl", "with": {"path": "in.jsonl", "batch_rows": 10}},
             "kept": {"uses": "t_min_len", "input": "raw", "with": {"min_len": 3}},
             "over": {"uses": "t_oversample", "input": "kept", "with": {"drop_label": "2"}}}
    pipeline = parse_pipeline({"name": "p", "nodes": nodes})
    parquet = Runner(pipeline, "parquet", rows_per_part=17)
    arrow = Runner(pipeline, "arrow", rows_per_part=17, part_formats=dict.fromkeys(nodes, "arrow"))
    parquet.run(), arrow.run()
    assert arrow.keys == parquet.keys
    assert {p.suffix for p in arrow.cache("kept").parts()} == {".arrow"}
    for node in nodes:
        assert arrow.output(node).equals(parquet.output(node)), node
        assert arrow.rejects(node).equals(parquet.rejects(node)), node
        assert arrow.cache(node).manifest()["ledger"] == parquet.cache(node).manifest()["ledger"]
    # A runner that would write Parquet reuses the Arrow entries as they are.
    assert {r.status for r in Runner(pipeline, "arrow").run()} == {"cached"}


def test_a_failing_stage_reports_its_own_error_and_commits_nothing(workdir):
    write_jsonl(workdir / "in.jsonl", [{"text": "a", "label": "x"}, {"text": "b", "label": "boom"}])
    path = write_pipeline(workdir / "p.yaml", {
        "raw": {"uses": "read_jsonl", "with": {"path": "in.jsonl", "batch_rows": 1}},
        "bad": {"uses": "t_fail_on", "input": "raw", "with": {"label": "boom"}}})
    r = runner(path)
    with pytest.raises(RuntimeError, match="t_fail_on: boom"):
        r.run()
    assert r.cache("raw").committed and not r.cache("bad").committed


def test_a_stage_that_rejects_everything_leaves_an_empty_output(workdir):
    write_jsonl(workdir / "in.jsonl", [{"text": "a", "label": "x"}])
    path = write_pipeline(workdir / "p.yaml", {
        "raw": {"uses": "read_jsonl", "with": {"path": "in.jsonl"}},
        "kept": {"uses": "t_min_len", "input": "raw", "with": {"min_len": 5}},
        "after": {"uses": "t_upper", "input": "kept"}})
    r = runner(path)
    reports = {x.node: x for x in r.run()}
    assert reports["after"].ledger.rows_in == 0
    assert r.output("kept").num_rows == 0 and r.rejects("kept").num_rows == 1


def test_killed_scratch_directories_are_not_trusted_and_are_cleaned(small_pipeline, workdir):
    r = runner(small_pipeline)
    r.run(until="raw")
    stale = workdir / "cache" / "p" / "up" / f"{r.keys['up']}.partial-999999"
    stale.mkdir(parents=True)
    (stale / "part-00000.parquet").write_bytes(b"garbage")
    assert {p.node: p.status for p in r.plan()}["up"] == "missing"
    assert statuses(r.run(until="up"))["up"] == "ran"
    assert not stale.exists()



def test_a_model_node_is_handed_to_its_consumer_as_the_cache_spells_it(small_pipeline, workdir):
    """An adapter writes its base's path into adapter_config.json: resolved to an absolute path, two
    checkouts would write different bytes under one key."""
    import yaml
    doc = yaml.safe_load(small_pipeline.read_text())
    doc["nodes"]["base"] = {"uses": "t_echo_model", "input": "raw"}
    doc["nodes"]["adapter"] = {"uses": "t_echo_model", "input": "raw", "with": {"base": {"node": "base"}}}
    small_pipeline.write_text(yaml.safe_dump(doc, sort_keys=False))
    r = runner(small_pipeline)
    r.run(until="adapter")
    recorded = (r.model_dir("adapter") / "base.txt").read_text()
    assert recorded == f"cache/p/base/{r.keys['base']}/model"


def test_a_scoped_filter_after_a_scoped_scorer_sees_only_scored_rows(workdir):
    # The rows quality_score routes around (validation, test) lack its q_* columns; they land in their own
    # part file, and quality_filter, scoped the same way, must not be handed an empty batch cut from it.
    write_jsonl(workdir / "in.jsonl", [{"text": f"一个很好的酒店 房间 {i} 干净", "label": "pos" if i % 2 else "neg",
                                        "lang": "zh"} for i in range(200)])
    pipeline = parse_pipeline({"name": "scoped", "nodes": {
        "raw": {"uses": "read_jsonl", "with": {"path": "in.jsonl"}},
        "splits": {"uses": "split", "input": "raw"},
        "q": {"uses": "quality_score", "input": "splits", "with": {"only_split": "train"}},
        "f": {"uses": "quality_filter", "input": "q", "with": {"only_split": "train"}}}})
    r = Runner(pipeline, "cache", batch_rows=30)
    reports = {x.node: x for x in r.run()}
    parts = r.cache("q").parts()
    assert len(parts) == 2  # the routed rows and the scored ones, two parts of one schema: any reader takes them
    import pyarrow.parquet as pq
    assert pq.read_schema(parts[0]) == pq.read_schema(parts[1])
    assert "q_units" in pq.read_schema(parts[0]).names
    import polars as pl
    assert pl.read_parquet([str(p) for p in parts]).height == 200
    assert reports["f"].ledger.rows_in == 200
    assert r.output("f").num_rows + r.rejects("f").num_rows == 200
