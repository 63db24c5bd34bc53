"""Variants of one DAG (dataprep/variants.py): how ablation and sweep plans are wired and keyed, which plans are
refused because the variants would be scored on different test rows, and one small ablation run end to end."""
from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from click.testing import CliRunner

from dataprep import variants as V
from dataprep.dag import parse_pipeline
from dataprep.errors import ConfigError

# lr 5e-3, batch 8, r 2: outside the usual LoRA ranges on purpose (a tiny model); train_lora warns, rightly
pytestmark = pytest.mark.filterwarnings("ignore:train_lora:UserWarning")

GOOD, BAD = "好 棒 喜欢 推荐 满意".split(), "差 烂 失望 退货 糟糕".split()
FILLER = "这个 手机 酒店 房间 服务 外卖 快递 屏幕 很 真 的 了".split()


def review_records(n: int = 150, seed: int = 0) -> list[dict]:
    """Reviews whose label a word gives away, two positives to a negative (so rebalance has work), with every
    tenth text repeated (so dedup has work)."""
    rng = np.random.default_rng(seed)
    records = []
    for i in range(n):
        label = "pos" if i % 3 else "neg"
        words = list(rng.choice(FILLER, 4)) + [rng.choice(GOOD if label == "pos" else BAD)]
        records.append({"text": "".join(rng.permutation(words)), "label": label})
        if i % 10 == 9:
            records.append(dict(records[-1]))
    return records


def write_reviews(path, n: int = 150):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in review_records(n)), encoding="utf-8")
    return path


def nodes(data, base, **changes) -> dict:
    """raw -> clean -> unique (before split) -> splits -> bal (train only) -> adapter; `changes` replace or add
    nodes."""
    spec = {
        "raw": {"uses": "read_jsonl", "with": {"path": str(data), "lang": "zh"}},
        "clean": {"uses": "normalize", "input": "raw"},
        "unique": {"uses": "exact_dedup", "input": "clean"},
        "splits": {"uses": "split", "input": "unique", "with": {"val": 0.2, "test": 0.2}},
        "bal": {"uses": "rebalance", "input": "splits", "with": {"only_split": "train"}},
        "adapter": {"uses": "train_lora", "input": "bal",
                    "with": {"base_model": str(base), "lr": 5.0e-3, "epochs": 3, "batch_size": 8, "r": 4,
                             "alpha": 8}},
    }
    spec.update(changes)
    return spec


def pipeline(data, base="a-hub-model", **changes):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # lr 5e-3 is outside the usual LoRA range on purpose: tiny model
        return parse_pipeline({"name": "v", "defaults": {"seed": 13}, "nodes": nodes(data, base, **changes)})


@pytest.fixture
def data(tmp_path):
    return write_reviews(tmp_path / "reviews.jsonl")


# ----------------------------------------------------------------------------------------------------- plans

def test_a_bypassed_node_is_gone_and_its_consumers_read_its_input(data):
    p = pipeline(data, tag={"uses": "exact_dedup", "input": "bal", "with": {"keep_originals": True}},
                 adapter={**nodes(data, "m")["adapter"], "input": "tag"})
    plan = V.plan_ablation(p, "adapter", [["bal"], ["bal", "tag"]])
    assert [v.label for v in plan.variants] == ["full", "without bal", "without bal+tag"]
    one, both = plan.variants[1].pipeline, plan.variants[2].pipeline
    assert "bal" not in one.nodes and one.nodes["tag"].inputs == ("splits",)
    assert "tag" not in both.nodes and both.nodes["adapter"].inputs == ("splits",)  # a chain passes through
    assert p.nodes["tag"].inputs == ("bal",)  # the pipeline as written is left as it was


def test_variants_share_the_keys_of_their_common_prefix_and_seeds_change_only_the_trainer(data):
    p = pipeline(data)
    plan = V.plan_ablation(p, "adapter", ["bal"], seeds=3)
    keys = {(r.variant.label, r.seed): V.pipeline_keys(r.pipeline) for r in plan.runs()}
    full, without = keys[("full", 13)], keys[("without bal", 13)]
    for name in ("raw", "clean", "unique", "splits"):
        assert full[name] == without[name]
    assert full["adapter"] != without["adapter"]
    by_seed = [keys[("full", s)] for s in (13, 14, 15)]
    assert len({k["adapter"] for k in by_seed}) == 3
    assert all({n: k for n, k in ks.items() if n != "adapter"} == {n: k for n, k in by_seed[0].items()
                                                                     if n != "adapter"} for ks in by_seed)
    assert plan.keys()[("full", 13)] == V.pipeline_keys(p)["adapter"]  # the first run is the pipeline as written
    assert [r.pipeline.nodes["adapter"].params.seed for r in plan.runs()][:3] == [13, 14, 15]


@pytest.mark.parametrize(("without", "message"), [
    ("splits", r"^cannot bypass 'splits' \(split\): it assigns the splits"),
    ("adapter", r"^cannot bypass 'adapter' \(train_lora\): it is the target"),
    ("raw", r"^cannot bypass 'raw' \(read_jsonl\): it is a reader"),
    ("nope", r"^--without: no node 'nope' in pipeline 'v' \(nodes: raw, clean, unique, splits, bal, adapter\)$"),
    ("unique", r"^cannot compare the variants: bypassing 'unique' changes the test rows 'adapter' is scored on: "
               r"'unique' runs upstream of 'splits', so what it does decides which rows are scored\. Every variant "
               r"must be scored on the same untouched test rows"),
    ("clean", r"^cannot compare the variants: bypassing 'clean' changes the test rows"),
])
def test_a_plan_that_cannot_keep_the_test_rows_or_the_dag_is_refused(data, without, message):
    with pytest.raises(ConfigError, match=message):
        V.plan_ablation(pipeline(data), "adapter", [without])


def test_a_node_after_split_that_acts_on_test_rows_cannot_be_bypassed(data):
    p = pipeline(data, again={"uses": "exact_dedup", "input": "bal", "with": {"all_splits": True}},
                 adapter={**nodes(data, "m")["adapter"], "input": "again"})
    with pytest.raises(ConfigError, match=r"bypassing 'again' changes the test rows 'adapter' is scored on: "
                                          r"'again' acts on every split, test rows included \(all_splits: true\)"):
        V.plan_ablation(p, "adapter", ["again"])
    # a node upstream of it changes what it sees, and so the test rows: named as the node the change reaches
    with pytest.raises(ConfigError, match=r"bypassing 'bal' reaches 'again' \(exact_dedup\), which changes the "
                                          r"test rows"):
        V.plan_ablation(p, "adapter", ["bal"])


def test_a_node_with_several_inputs_or_a_build_cannot_be_bypassed(data, tmp_path):
    other = write_reviews(tmp_path / "more.jsonl", 30)
    p = pipeline(data, more={"uses": "read_jsonl", "with": {"path": str(other), "lang": "zh"}},
                 both={"uses": "normalize", "input": ["raw", "more"]},
                 clean={"uses": "normalize", "input": "both"},
                 tok={"uses": "train_tokenizer", "input": "raw", "with": {"vocab_size": 200}})
    with pytest.raises(ConfigError, match=r"^cannot bypass 'both' \(normalize\): it has 2 inputs \(raw, more\)"):
        V.plan_ablation(p, "adapter", ["both"])
    with pytest.raises(ConfigError, match=r"^cannot bypass 'tok' \(train_tokenizer\): it builds a model"):
        V.plan_ablation(p, "adapter", ["tok"])


def test_an_evaluate_target_on_rows_split_before_the_cleaning_lets_the_cleaning_be_ablated(data):
    """The arrangement of bench/zh_reviews_ablation.yaml: split first, the cleaning on the training branch, the
    adapter scored by an evaluate node on the test rows as split wrote them."""
    p = pipeline(data, splits={"uses": "split", "input": "clean", "with": {"val": 0.2, "test": 0.2}},
                 unique={"uses": "exact_dedup", "input": "splits", "with": {"all_splits": True}},
                 bal={"uses": "rebalance", "input": "unique", "with": {"only_split": "train"}},
                 heldout={"uses": "evaluate", "input": "splits",
                          "with": {"adapter": {"node": "adapter"}, "only_split": "test"}})
    plan = V.plan_ablation(p, "heldout", ["unique", "bal"], seeds=2)
    assert plan.trainer == "adapter"
    assert [r.pipeline.nodes["adapter"].params.seed for r in plan.runs()] == [13, 14] * 3
    # scored by the adapter itself, its input's test rows are what dedup (all_splits) changed: refused
    with pytest.raises(ConfigError, match=r"'unique' acts on every split, test rows included"):
        V.plan_ablation(p, "adapter", ["unique"])
    with pytest.raises(ConfigError, match=r"^cannot compare the variants: bypassing 'clean' changes the test rows "
                                          r"'heldout' is scored on"):
        V.plan_ablation(p, "heldout", ["clean"])


def test_the_target_must_be_a_trainer_or_score_one(data):
    with pytest.raises(ConfigError, match=r"^--target 'bal' is a rebalance node: the target must be a train_lora"):
        V.plan_ablation(pipeline(data), "bal", ["unique"])
    with pytest.raises(ConfigError, match=r"^--target: no node 'adaptor'"):
        V.plan_sweep(pipeline(data), "adaptor", {("adapter", "r"): [4]})


def test_a_sweep_is_the_pipeline_as_written_then_each_grid_point(data):
    p = pipeline(data)
    plan = V.plan_sweep(p, "adapter", V.parse_settings(["adapter.r=2,4,8", "adapter.alpha=8,16"]), seeds=2)
    labels = [v.label for v in plan.variants]
    # r=4, alpha=8 is the pipeline as written: its row is the reference, not a second copy
    assert labels == ["as written (adapter.r=4, adapter.alpha=8)", "adapter.r=2, adapter.alpha=8",
                      "adapter.r=2, adapter.alpha=16", "adapter.r=4, adapter.alpha=16",
                      "adapter.r=8, adapter.alpha=8", "adapter.r=8, adapter.alpha=16"]
    swept = plan.variants[-1].pipeline.nodes["adapter"].params
    assert (swept.r, swept.alpha, swept.lr) == (8, 16, 5e-3)
    keys = plan.keys()
    assert len(set(keys.values())) == len(keys) == 12
    prefix = V.pipeline_keys(plan.variants[-1].pipeline)
    assert all(prefix[n] == V.pipeline_keys(p)[n] for n in ("raw", "clean", "unique", "splits", "bal"))


@pytest.mark.parametrize(("setting", "message"), [
    (["adapter.r=4,eight"], r"^nodes\.adapter\.with\.r: expected int, got 'eight'$"),
    (["adapter.r=4,8.5"], r"^nodes\.adapter\.with\.r: expected int, got 8\.5$"),
    (["adapter.rank=4"], r"^nodes\.adapter\.with\.rank: unknown parameter 'rank' \(known: threads,"),
    (["adapter.r=0"], r"^nodes\.adapter\.with: r must be at least 1$"),
    (["adaptor.r=4"], r"^--set adaptor\.r: no node 'adaptor' in pipeline 'v'"),
    (["splits.test=0.1,0.3"], r"^cannot compare the variants: setting splits\.test changes the test rows 'adapter' "
                              r"is scored on: 'splits' assigns the test split"),
    (["clean.nfkc=true,false"], r"^cannot compare the variants: setting clean\.nfkc changes the test rows"),
    (["adapter.base_model=x,y"], r"^--set adapter\.base_model: a model parameter cannot be swept"),
])
def test_a_bad_sweep_is_refused_before_any_data_moves(data, setting, message):
    with pytest.raises(ConfigError, match=message):
        V.plan_sweep(pipeline(data), "adapter", V.parse_settings(setting))


def test_seeds_and_a_swept_seed_cannot_both_set_the_trainer(data):
    with pytest.raises(ConfigError, match=r"--set adapter\.seed and --seeds 3 both set the trainer's seed"):
        V.plan_sweep(pipeline(data), "adapter", V.parse_settings(["adapter.seed=1,2"]), seeds=3)


def test_settings_and_bypass_lists_are_parsed_as_typed():
    assert V.parse_settings(["adapter.r=4,8,16,32"]) == {("adapter", "r"): [4, 8, 16, 32]}
    assert V.parse_settings(["my.node.lr=1e-4,2.0e-4"]) == {("my.node", "lr"): ["1e-4", 2.0e-4]}
    assert V.parse_settings(["a.target_modules=[c_attn],[c_attn, c_proj]"]) == {
        ("a", "target_modules"): [["c_attn"], ["c_attn", "c_proj"]]}
    for bad, message in (("adapter.r", "expected NODE.PARAM=V1,V2"), ("r=4", "expected NODE.PARAM=V1,V2"),
                         ("adapter.r=4,4", "4 is listed twice"), ("adapter.r=", "expected NODE.PARAM")):
        with pytest.raises(ConfigError, match=message):
            V.parse_settings([bad])
    assert V.parse_without(["unique,kept", "aug+bal"]) == [["unique"], ["kept"], ["aug", "bal"]]


def test_the_table_shows_mean_std_delta_rows_and_for_a_sweep_the_weights():
    results = {"kind": "sweep", "pipeline": "p", "target": "adapter", "trainer": "adapter", "seeds": [13, 14],
               "metrics": ["accuracy", "macro_f1"], "reference": "as written (adapter.r=8)", "wall_seconds": 61.2,
               "test_rows": {"rows": 30, "digest": "ab" * 32, "split": "test"},
               "variants": [_row("as written (adapter.r=8)", [0.8, 0.9], None, 2048),
                            _row("adapter.r=4", [0.7, 0.7], -0.15, 1024)]}
    table = V.to_markdown(results)
    assert "| variant | accuracy | Δ | macro-F1 | Δ | rows (train) | trainable params | train s |" in table
    assert "| as written (adapter.r=8) | 0.850 ± 0.071 | — | 0.850 ± 0.071 | — | 1,200 (1,000) | 2,048 | 3.5 ± 0.7 |"\
        in table
    assert "| adapter.r=4 | 0.700 ± 0.000 | -0.150 ± 0.050 | 0.700 ± 0.000 | -0.150 ± 0.050 | 1,200 (1,000) | 1,024 |"\
        in table
    assert "same 30 test rows (sha256 abababababab)" in table
    ablation = V.to_markdown({**results, "kind": "ablation"})
    assert "trainable params" not in ablation and "| 1,200 (1,000) | 3.5 ± 0.7 |" in ablation


def _row(label, values, delta, weights):
    spread = {"mean": float(np.mean(values)), "std": float(np.std(values, ddof=1)), "values": values,
              "delta": delta, "delta_se": None if delta is None else V.delta_se(values, [0.8, 0.9])}
    return {"label": label, "rows": 1200, "train_rows": 1000, "trainable_params": weights,
            "metrics": {"accuracy": spread, "macro_f1": spread},
            "train_seconds": {"mean": 3.5, "std": 0.7071, "values": [3.0, 4.0]}}


def test_the_json_goes_beside_the_markdown_and_never_over_it(tmp_path):
    assert V.results_paths(tmp_path / "t.md") == (tmp_path / "t.md", tmp_path / "t.json")
    with pytest.raises(ConfigError, match="name the Markdown file"):
        V.results_paths(tmp_path / "t.json")


# ---------------------------------------------------------------------------------------------- end to end

@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A tiny GPT-2 base (as tests/test_train.py builds it), the reviews, the pipeline file and a cache."""
    import pyarrow as pa
    torch = pytest.importorskip("torch")
    pytest.importorskip("peft")
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

    from dataprep.models.tokenizer import TokenizerParams, train_tokenizer
    root = tmp_path_factory.mktemp("variants")
    data = write_reviews(root / "reviews.jsonl")
    texts = [r["text"] for r in review_records(300, seed=1)]
    table = pa.table({"id": [f"r{i}" for i in range(len(texts))], "text": texts})
    base = root / "base"
    train_tokenizer.impl(lambda: iter([table]), TokenizerParams(vocab_size=400), base)
    tok = AutoTokenizer.from_pretrained(base)
    torch.manual_seed(0)
    GPT2LMHeadModel(GPT2Config(vocab_size=len(tok), n_positions=64, n_embd=32, n_layer=2, n_head=2,
                               pad_token_id=tok.pad_token_id)).save_pretrained(base)
    doc = {"name": "v", "defaults": {"seed": 13}, "nodes": nodes(data, base)}
    (root / "p.yaml").write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")  # JSON is YAML
    return root


@pytest.fixture(scope="module")
def ablation(tiny):
    """`dataprep ablate` run once: the rebalance step bypassed, two seeds, the table written with -o."""
    from dataprep.cli import main
    out = tiny / "out"
    out.mkdir()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = CliRunner().invoke(main, ["ablate", str(tiny / "p.yaml"), "--target", "adapter", "--without", "bal",
                                           "--seeds", "2", "--cache-dir", str(tiny / "cache"), "-o",
                                           str(out / "table.md")])
    assert result.exit_code == 0, result.output
    return result, json.loads((out / "table.json").read_text())


def test_an_ablation_runs_trains_each_seed_and_writes_the_table_and_its_json(tiny, ablation):
    result, doc = ablation
    assert [v["label"] for v in doc["variants"]] == ["full", "without bal"]
    assert doc["seeds"] == [13, 14] and doc["task"] == "seq_cls" and doc["metrics"] == ["accuracy", "macro_f1"]
    full, without = doc["variants"]
    # rebalance oversamples the negatives of the train split only: more rows, the same test rows
    assert full["train_rows"] > without["train_rows"] and full["rows"] - full["train_rows"] == \
        without["rows"] - without["train_rows"]
    for variant in doc["variants"]:
        assert [r["seed"] for r in variant["runs"]] == [13, 14]
        accuracy = variant["metrics"]["accuracy"]
        assert accuracy["values"] == [r["metrics"]["accuracy"] for r in variant["runs"]]
        assert accuracy["mean"] == pytest.approx(np.mean(accuracy["values"]))
        assert accuracy["std"] == pytest.approx(np.std(accuracy["values"], ddof=1))
        assert variant["trainable_params"] > 0
    f1, f1_full = without["metrics"]["macro_f1"], full["metrics"]["macro_f1"]
    assert f1["delta"] == pytest.approx(f1["mean"] - f1_full["mean"])
    assert f1["delta_se"] == pytest.approx(np.sqrt(f1["std"] ** 2 / 2 + f1_full["std"] ** 2 / 2))
    assert f1_full["delta"] is None and f1_full["delta_se"] is None
    # the first run trained everything; the next seed and the variant found the shared prefix cached
    runs = [r for v in doc["variants"] for r in v["runs"]]
    assert runs[0]["nodes_ran"] == 6 and [r["nodes_ran"] for r in runs[1:]] == [1, 1, 1]
    assert (tiny / "out" / "table.md").read_text() == result.stdout
    assert "| without bal |" in result.stdout


def test_every_run_was_scored_on_the_test_rows_split_wrote(tiny, ablation):
    """The digest in the table is that of the `splits` node's test rows, computed here independently."""
    import hashlib

    from dataprep.dag import load_pipeline
    from dataprep.runner import Runner
    _, doc = ablation
    runner = Runner(load_pipeline(tiny / "p.yaml"), tiny / "cache")
    table = runner.output("splits")
    rows = [r for r in table.select(["id", "text", "label", "split"]).to_pylist() if r.pop("split") == "test"]
    expected = hashlib.sha256("\n".join(sorted(json.dumps(r, ensure_ascii=False, sort_keys=True)
                                               for r in rows)).encode()).hexdigest()
    assert doc["test_rows"] == {"rows": len(rows), "digest": expected, "split": "test"}
    assert len(rows) >= 20


def test_a_rerun_is_all_cache_and_gives_the_same_numbers(tiny, ablation):
    from dataprep.dag import load_pipeline
    _, doc = ablation
    plan = V.plan_ablation(load_pipeline(tiny / "p.yaml"), "adapter", ["bal"], seeds=2)
    again = V.run_plan(plan, tiny / "cache")
    assert all(r["nodes_ran"] == 0 for v in again["variants"] for r in v["runs"])
    assert [v["metrics"] for v in again["variants"]] == [v["metrics"] for v in doc["variants"]]


def test_runs_scored_on_different_test_rows_stop_the_comparison(tiny, ablation, monkeypatch):
    """A stage whose scope says it keeps off test rows and does not: the digest check after the run catches it."""
    from dataprep.dag import load_pipeline
    real = V.scored_rows
    calls = []

    def drifting(runner, target):
        rows = real(runner, target)
        calls.append(rows)
        return rows if len(calls) == 1 else {**rows, "rows": rows["rows"] - 1, "digest": "0" * 64}

    monkeypatch.setattr(V, "scored_rows", drifting)
    plan = V.plan_ablation(load_pipeline(tiny / "p.yaml"), "adapter", ["bal"], seeds=2)
    with pytest.raises(V.VariantError, match=r"^full \(seed 14\) was scored on different test rows than the first "
                                             r"run \(\d+ rows, digest 000000000000, vs \d+ rows"):
        V.run_plan(plan, tiny / "cache")


def test_the_cli_refuses_a_plan_in_one_line(tiny):
    from dataprep.cli import main
    result = CliRunner().invoke(main, ["ablate", str(tiny / "p.yaml"), "--target", "adapter", "--without", "unique",
                                       "--cache-dir", str(tiny / "cache")])
    assert result.exit_code == 1
    assert result.output.startswith("Error: cannot compare the variants: bypassing 'unique' changes the test rows")
    assert result.output.count("\n") == 1
    result = CliRunner().invoke(main, ["sweep", str(tiny / "p.yaml"), "--target", "adapter", "--set",
                                       "adapter.r=4,x", "--dry-run"])
    assert result.exit_code == 1 and "nodes.adapter.with.r: expected int, got 'x'" in result.output


def test_a_dry_run_lists_each_runs_key_and_whether_it_is_cached(tiny, ablation):
    from dataprep.cli import main
    result = CliRunner().invoke(main, ["sweep", str(tiny / "p.yaml"), "--target", "adapter", "--set",
                                       "adapter.r=4,8", "--cache-dir", str(tiny / "cache"), "--dry-run"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("as written (adapter.r=4)") and lines[0].endswith("cached")
    assert lines[1].startswith("adapter.r=8") and lines[1].endswith("will run")
