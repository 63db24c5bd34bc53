"""Evaluation rows are never touched after `split` unless a node says so: the DAG rule, `only_augmented`
routing, and exact_dedup's keep_originals (a paraphrase of a test row goes; the test row stays)."""
from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from testkit import cls_table, write_jsonl

from dataprep.catalog import get
from dataprep.dag import parse_pipeline
from dataprep.errors import ConfigError
from dataprep.runner import Runner


def after_split(workdir, node: dict) -> dict:
    write_jsonl(workdir / "in.jsonl", [{"text": f"text {i}", "label": "a" if i % 2 else "b"} for i in range(20)])
    return {"name": "s", "imports": ["stages_split_scoped"], "nodes": {
        "raw": {"uses": "read_jsonl", "with": {"path": "in.jsonl"}},
        "splits": {"uses": "split", "input": "raw", "with": {"val": 0.2, "test": 0.2}},
        "next": node}}


@pytest.mark.parametrize("node, message", [
    ({"uses": "exact_dedup", "input": "splits"},
     r"^nodes\.next\.with: exact_dedup runs after `split` \(via 'splits'\) and would touch validation and test "
     r"rows: set only_split \(e\.g\. train\), only_augmented: true, or all_splits: true to mean it$"),
    ({"uses": "t_scoped_drop", "input": "splits"}, r"^nodes\.next\.with: t_scoped_drop runs after `split`"),
    ({"uses": "normalize", "input": "splits"},
     r"^nodes\.next\.uses: normalize runs after `split` \(via 'splits'\) and would touch validation and test "
     r"rows, and it cannot be limited to some rows: run it before `split`$"),
])
def test_a_row_node_after_split_must_say_which_rows_it_touches(workdir, node, message):
    with pytest.raises(ConfigError, match=message):
        parse_pipeline(after_split(workdir, node))


def test_the_rule_follows_the_rows_downstream_and_accepts_a_declared_scope(workdir):
    doc = after_split(workdir, {"uses": "t_scoped_upper", "input": "splits", "with": {"only_split": "train"}})
    doc["nodes"]["later"] = {"uses": "t_scoped_drop", "input": "next"}  # two nodes after split: still checked
    with pytest.raises(ConfigError, match=r"^nodes\.later\.with: t_scoped_drop runs after `split` \(via 'next'\)"):
        parse_pipeline(doc)
    doc["nodes"]["later"]["with"] = {"all_splits": True}
    assert list(parse_pipeline(doc).nodes) == ["raw", "splits", "next", "later"]
    dedup = after_split(workdir, {"uses": "exact_dedup", "input": "splits", "with": {"keep_originals": True}})
    assert "next" in parse_pipeline(dedup).nodes


def augmented_table() -> pa.Table:
    """Two originals (train, test) and three generated rows: one paraphrase equal to the test row, one equal
    to its own parent, one new."""
    table = cls_table(["good room", "bad screen", "Bad  screen", "good room", "nice view"],
                      ["pos", "neg", "neg", "pos", "pos"], split=["train", "test", "train", "train", "train"])
    aug = pa.array([None, None, "bt:en", "bt:en", "bt:en"], pa.string())
    return table.append_column("aug", aug)


def test_only_augmented_routes_original_rows_around_the_stage():
    out = get("t_scoped_drop").run(augmented_table(), only_augmented=True, drop_label="pos")
    assert [(r["id"], r["reason"]) for r in out.rejected.to_pylist()] == [("t:4", "scoped_drop:3"),
                                                                          ("t:5", "scoped_drop:3")]
    assert sorted(out.kept.column("id").to_pylist()) == ["t:1", "t:2", "t:3"]  # t:1 is 'pos' but an original


def test_only_split_and_only_augmented_together_mean_both():
    table = augmented_table().set_column(5, "split", pa.array(["train", "test", "train", "validation", "train"]))
    out = get("t_scoped_drop").run(table, only_split="train", only_augmented=True, drop_label="pos")
    assert [(r["id"], r["reason"]) for r in out.rejected.to_pylist()] == [("t:5", "scoped_drop:2")]


def test_only_augmented_leaves_generated_rows_in_evaluation_splits_alone():
    """Augmenting before `split` puts paraphrases in validation and test: they are evaluation rows too."""
    table = augmented_table().set_column(5, "split", pa.array(["train", "test", "test", "validation", "train"]))
    out = get("t_scoped_drop").run(table, only_augmented=True, drop_label="pos")
    assert [(r["id"], r["reason"]) for r in out.rejected.to_pylist()] == [("t:5", "scoped_drop:1")]


def test_keep_originals_drops_generated_copies_of_any_row_and_never_an_original():
    out = get("exact_dedup").run(augmented_table(), fold=["whitespace", "case"], keep_originals=True)
    assert sorted((r["id"], r["reason"]) for r in out.rejected.to_pylist()) == [
        ("t:3", "duplicate_of:t:2"),  # a paraphrase equal to a test row: it would leak the test row into train
        ("t:4", "duplicate_of:t:1")]
    assert sorted(out.kept.column("id").to_pylist()) == ["t:1", "t:2", "t:5"]


def test_keep_originals_when_a_generated_row_comes_before_the_original_it_copies():
    """Batches arrive in input order, and a batch's generated rows can precede a later batch's originals:
    the original is still the keeper, and the copy names it."""
    table = cls_table(["same text", "other", "same text"], ["x", "y", "z"])
    table = table.append_column("aug", pa.array(["bt:en", None, None], pa.string()))
    out = get("exact_dedup").run(table, keep_originals=True, conflicts="keep_first")
    assert [(r["id"], r["reason"]) for r in out.rejected.to_pylist()] == [("t:1", "label_conflict:x|z")]
    same = cls_table(["same text", "same text"], ["x", "x"]).append_column("aug", pa.array(["bt:en", None]))
    out = get("exact_dedup").run(same, keep_originals=True)
    assert [(r["id"], r["reason"]) for r in out.rejected.to_pylist()] == [("t:1", "duplicate_of:t:2")]


@pytest.mark.parametrize("conflicts", ["keep_majority", "keep_first", "drop_all"])
def test_generated_rows_never_outvote_an_original(conflicts):
    """Two paraphrases labelled neg equal a test row labelled pos: whatever the conflict rule, the test row
    stays with its label and neither paraphrase survives (one would leak the test row into training)."""
    table = cls_table(["same", "same", "same"], ["pos", "neg", "neg"], split=["test", "train", "train"])
    table = table.append_column("aug", pa.array([None, "bt:en", "bt:en"], pa.string()))
    for bits in (64, 128):
        out = get("exact_dedup").run(table, keep_originals=True, conflicts=conflicts, bits=bits)
        assert out.kept.column("id").to_pylist() == ["t:1"]
        assert sorted(r["reason"] for r in out.rejected.to_pylist()) == ["label_conflict:neg|pos"] * 2


def test_a_pipeline_that_refilters_only_augmented_rows_leaves_evaluation_rows_as_split_wrote_them(workdir):
    doc = after_split(workdir, {"uses": "t_scoped_drop", "input": "splits",
                                "with": {"only_augmented": True, "drop_label": "a"}})
    runner = Runner(parse_pipeline(doc), "cache")
    runner.run()
    before, after = runner.output("splits"), runner.output("next")
    assert after.sort_by("id").equals(before.sort_by("id"))  # no generated rows: nothing to touch
    assert pc.sum(pc.equal(after.column("split"), "test")).as_py() > 0


@pytest.mark.parametrize("node, message", [
    ({"uses": "train_tokenizer", "input": "splits"},
     r"^nodes\.next\.with: train_tokenizer runs after `split` \(via 'splits'\) and would learn from validation and "
     r"test rows: set only_split: train \(or all_splits: true to mean it\)$"),
    ({"uses": "pretrain_encoder", "input": "splits", "with": {"tokenizer": "some/tokenizer"}},
     r"^nodes\.next\.with: pretrain_encoder runs after `split`"),
])
def test_a_build_after_split_must_say_which_rows_it_learns_from(workdir, node, message):
    with pytest.raises(ConfigError, match=message):
        parse_pipeline(after_split(workdir, node))


def test_the_trainer_reads_the_splits_in_their_roles_without_a_scope(workdir):
    doc = after_split(workdir, {"uses": "train_lora", "input": "splits", "with": {"base_model": "some/model"}})
    assert "next" in parse_pipeline(doc).nodes


def test_a_build_learns_from_the_train_split_and_from_inputs_that_were_never_split(workdir):
    """A tokenizer on a reference corpus (parallel rows, no split column) plus the training split's text: the
    test rows' words never reach it."""
    (workdir / "pairs.tsv").write_text("".join(f"参考{i}\treference {i}\n" for i in range(6)), encoding="utf-8")
    doc = after_split(workdir, {"uses": "train_tokenizer", "input": ["pairs", "splits"],
                                "with": {"only_split": "train", "vocab_size": 300}})
    doc["nodes"]["pairs"] = {"uses": "read_parallel", "with": {"path": "pairs.tsv", "src_lang": "zh",
                                                              "tgt_lang": "en"}}
    runner = Runner(parse_pipeline(doc), workdir / "runs")
    [*_, report] = runner.run(until="next")
    splits = runner.output("splits")
    train_rows = pc.sum(pc.equal(splits["split"], "train")).as_py()
    assert 0 < train_rows < splits.num_rows
    assert report.ledger.rows_in == 6 + train_rows  # every reference row, only the train split's rows


# --- splits the data gives: a reader's split_as or split_field, a DatasetDict ---

def official(workdir, nodes: dict, imports: tuple = ("stages_split_scoped", "stages_for_tests")) -> dict:
    """Three files shipped one per split, each read with its `split_as`, then `nodes`."""
    for name, n in (("train", 12), ("dev", 4), ("test", 4)):
        write_jsonl(workdir / f"{name}.jsonl", [{"text": f"{name} text {i}", "label": "ab"[i % 2]} for i in range(n)])
    readers = {f"{name}_raw": {"uses": "read_jsonl", "with": {"path": f"{name}.jsonl", "split_as": name}}
               for name in ("train", "dev", "test")}
    return {"name": "o", "imports": list(imports), "nodes": {**readers, **nodes}}


@pytest.mark.parametrize("node, message", [
    ({"uses": "exact_dedup", "input": "test_raw"},
     r"^nodes\.next\.with: exact_dedup runs on the official splits of 'test_raw' \(split_as: test\) and would touch "
     r"validation and test rows: set only_split \(e\.g\. train\), only_augmented: true, or all_splits: true to "
     r"mean it$"),
    ({"uses": "t_scoped_drop", "input": ["train_raw", "dev_raw"]},
     r"^nodes\.next\.with: t_scoped_drop runs on the official splits of 'dev_raw' \(split_as: dev\)"),
    ({"uses": "t_min_len", "input": ["train_raw", "test_raw"]},
     r"^nodes\.next\.uses: t_min_len runs on the official splits of 'test_raw' \(split_as: test\) and would touch "
     r"validation and test rows, and it cannot be limited to some rows: run it on a branch without validation or "
     r"test rows \(e\.g\. the train file's alone\)$"),
    ({"uses": "train_tokenizer", "input": ["train_raw", "test_raw"]},
     r"^nodes\.next\.with: train_tokenizer runs on the official splits of 'test_raw' \(split_as: test\) and would "
     r"learn from validation and test rows: set only_split: train"),
])
def test_a_node_on_official_evaluation_rows_must_say_which_rows_it_touches(workdir, node, message):
    """Rows whose split the data gave are held out as surely as rows `split` assigned: a dedup over the test
    file alone would drop official test sentences (Weibo NER: 8 of 270 repeat another test sentence)."""
    with pytest.raises(ConfigError, match=message):
        parse_pipeline(official(workdir, {"next": node}))


def test_the_rule_follows_official_rows_through_other_nodes_and_names_the_way(workdir):
    doc = official(workdir, {"clean": {"uses": "t_upper", "input": "test_raw"},
                             "next": {"uses": "exact_dedup", "input": ["train_raw", "clean"]}})
    with pytest.raises(ConfigError, match=r"^nodes\.clean\.uses: t_upper runs on the official splits of 'test_raw'"):
        parse_pipeline(doc)
    doc["nodes"]["clean"] = {"uses": "normalize", "input": "test_raw"}
    with pytest.raises(ConfigError, match=r"^nodes\.next\.with: exact_dedup runs on the official splits of "
                                          r"'test_raw' \(split_as: test; via 'clean'\)"):
        parse_pipeline(doc)


def test_a_branch_of_training_rows_only_needs_no_scope_and_the_evaluation_rows_arrive_whole(workdir):
    """The shape of pipelines/sst2.yaml: the train file is deduplicated and sampled on its own branch, the
    evaluation files only normalized, and the trainer reads both."""
    doc = official(workdir, {
        "train_clean": {"uses": "normalize", "input": "train_raw"},
        "eval_clean": {"uses": "normalize", "input": ["dev_raw", "test_raw"]},
        "train_unique": {"uses": "exact_dedup", "input": "train_clean", "with": {"fold": ["case"]}},
        "train_kept": {"uses": "t_min_len", "input": "train_unique", "with": {"min_len": 5}},
        "tok": {"uses": "train_tokenizer", "input": "train_kept", "with": {"vocab_size": 300}},
        "both": {"uses": "split", "input": ["train_kept", "eval_clean"]}})
    write_jsonl(workdir / "train.jsonl", [{"text": t, "label": "a"} for t in ("same", "same", "Same", "other")])
    runner = Runner(parse_pipeline(doc), workdir / "runs")
    runner.run(until="both")
    out = runner.output("both")
    assert out.filter(pc.equal(out["split"], "train"))["text"].to_pylist() == ["other"]
    assert sorted(out.filter(pc.equal(out["split"], "test"))["text"].to_pylist()) == [f"test text {i}"
                                                                                      for i in range(4)]
    assert out.filter(pc.equal(out["split"], "validation")).num_rows == 4


@pytest.mark.parametrize("node", [
    {"uses": "normalize", "input": ["train_raw", "dev_raw", "test_raw"]},
    {"uses": "split", "input": ["train_raw", "test_raw"]},
    {"uses": "exact_dedup", "input": ["train_raw", "test_raw"], "with": {"keep_originals": True}},
    {"uses": "t_scoped_drop", "input": ["train_raw", "test_raw"], "with": {"only_split": "train"}},
    {"uses": "train_tokenizer", "input": ["train_raw", "test_raw"], "with": {"only_split": "train"}},
    {"uses": "train_lora", "input": ["train_raw", "dev_raw", "test_raw"], "with": {"base_model": "some/model"}},
])
def test_preparation_split_and_declared_scopes_may_run_on_official_rows(workdir, node):
    """normalize prepares every split as `dataprep predict` prepares new text; split keeps the splits rows
    have; a declared scope is honoured as after `split`; the trainer reads splits in their roles."""
    assert "next" in parse_pipeline(official(workdir, {"next": node})).nodes


def test_to_bio2_prepares_official_test_sentences(workdir):
    (workdir / "test.conll").write_text("张 B-PER\n三 I-PER\n\n", encoding="utf-8")
    doc = {"name": "o", "nodes": {
        "test_raw": {"uses": "read_conll", "with": {"path": "test.conll", "split_as": "test"}},
        "bio": {"uses": "to_bio2", "input": "test_raw"},
        "next": {"uses": "exact_dedup", "input": "bio"}}}
    with pytest.raises(ConfigError, match=r"^nodes\.next\.with: exact_dedup runs on the official splits of "
                                          r"'test_raw' \(split_as: test; via 'bio'\)"):
        parse_pipeline(doc)
    del doc["nodes"]["next"]
    assert "bio" in parse_pipeline(doc).nodes


def test_preparation_after_a_split_node_still_belongs_before_it(workdir):
    """After `split` the rule is as it was: normalize could have run before the split node."""
    doc = official(workdir, {"splits": {"uses": "split", "input": ["train_raw", "test_raw"]},
                             "next": {"uses": "normalize", "input": "splits"}})
    with pytest.raises(ConfigError, match=r"^nodes\.next\.uses: normalize runs after `split` \(via 'splits'\).*"
                                          r"run it before `split`$"):
        parse_pipeline(doc)


def test_the_preparation_stages_are_what_predict_prepares_new_rows_with():
    from dataprep.predict import PREPARE
    from dataprep.scope import PREPARATION_STAGES
    assert sorted(PREPARATION_STAGES) == sorted(PREPARE.values())


def test_an_explicit_split_field_means_every_split_and_the_default_one_is_known_only_at_run_time(workdir):
    write_jsonl(workdir / "data.jsonl", [{"text": f"t {i}", "label": "a", "fold": "test"} for i in range(4)])
    node = {"uses": "read_jsonl", "with": {"path": "data.jsonl", "split_field": "fold"}}
    doc = {"name": "o", "nodes": {"raw": node, "next": {"uses": "exact_dedup", "input": "raw"}}}
    with pytest.raises(ConfigError, match=r"^nodes\.next\.with: exact_dedup runs on the official splits of 'raw' "
                                          r"\(split_field: fold\)"):
        parse_pipeline(doc)
    node["with"]["split_field"] = None  # the input has no split: nothing to hold out
    assert "next" in parse_pipeline(doc).nodes


def test_a_dataset_dict_read_whole_holds_official_splits_and_one_split_does_not(workdir):
    datasets = pytest.importorskip("datasets")
    split_rows = {name: datasets.Dataset.from_dict({"text": [f"{name} {i}" for i in range(3)], "label": ["a"] * 3})
                  for name in ("train", "test")}
    datasets.DatasetDict(split_rows).save_to_disk(str(workdir / "dd"))
    doc = {"name": "o", "nodes": {"raw": {"uses": "read_hf", "with": {"path": "dd"}},
                                  "next": {"uses": "exact_dedup", "input": "raw"}}}
    with pytest.raises(ConfigError, match=r"^nodes\.next\.with: exact_dedup runs on the official splits of 'raw' "
                                          r"\(a DatasetDict read whole\)"):
        parse_pipeline(doc)
    doc["nodes"]["raw"]["with"]["split"] = "train"
    assert "next" in parse_pipeline(doc).nodes
