"""rebalance: strategy meanings per mode, seeds, the copies' lineage, prefer_augmented, only_split in a pipeline,
the ledger, config errors — and per-class counts equal to imbalanced-learn's own samplers."""
from __future__ import annotations

import random
from collections import Counter, defaultdict

import numpy as np
import pyarrow as pa
import pytest
from testkit import cls_table, write_jsonl

from dataprep import rebalance
from dataprep.catalog import get
from dataprep.dag import parse_pipeline
from dataprep.errors import ConfigError
from dataprep.execute import outcomes
from dataprep.runner import Runner
from dataprep.stages.rebalance import RebalanceParams


def labelled(counts: dict[str, int], shuffle: int | None = 0) -> pa.Table:
    """Rows with these label counts, interleaved (seeded) so no class sits in one block."""
    labels = [label for label, n in counts.items() for _ in range(n)]
    if shuffle is not None:
        random.Random(shuffle).shuffle(labels)
    return cls_table([f"{label} text {i}" for i, label in enumerate(labels)], labels)


def augmented(table: pa.Table, aug: list[str | None], parents: list[str | None] | None = None) -> pa.Table:
    parents = parents if parents is not None else [None] * table.num_rows
    return table.append_column("parent_id", pa.array(parents, pa.string())).append_column(
        "aug", pa.array(aug, pa.string()))


def counts(table: pa.Table) -> dict[str, int]:
    return dict(Counter(table.column("label").to_pylist()))


def fit_apply(table: pa.Table, batch_rows: int | None = None, **params):
    """Drive the stage class as the runner does: fit on all batches, then apply batch by batch."""
    batches = [table] if batch_rows is None else [table.slice(i, batch_rows)
                                                  for i in range(0, table.num_rows, batch_rows)]
    driven = outcomes(rebalance, RebalanceParams(**params), lambda: iter(batches), "cls")
    return [outcome for outcome, _ in driven]


# --- what each strategy means, per mode ---

THREE = {"a": 12, "b": 5, "c": 2}


@pytest.mark.parametrize("mode, strategy, expected", [
    ("over", "auto", {"a": 12, "b": 12, "c": 12}),
    ("over", "not majority", {"a": 12, "b": 12, "c": 12}),
    ("over", "minority", {"a": 12, "b": 5, "c": 12}),
    ("over", "not minority", {"a": 12, "b": 12, "c": 2}),
    ("over", "all", {"a": 12, "b": 12, "c": 12}),
    ("over", {"b": 7, "c": 4}, {"a": 12, "b": 7, "c": 4}),
    ("under", "auto", {"a": 2, "b": 2, "c": 2}),
    ("under", "not minority", {"a": 2, "b": 2, "c": 2}),
    ("under", "majority", {"a": 2, "b": 5, "c": 2}),
    ("under", "not majority", {"a": 12, "b": 2, "c": 2}),
    ("under", "all", {"a": 2, "b": 2, "c": 2}),
    ("under", {"a": 3}, {"a": 3, "b": 5, "c": 2}),
    ("hybrid", "auto", {"a": 6, "b": 6, "c": 6}),  # mean 19 / 3, rounded down
    ("hybrid", "all", {"a": 6, "b": 6, "c": 6}),
    ("hybrid", {"a": 8, "c": 4}, {"a": 8, "b": 5, "c": 4}),
])
def test_strategy_meanings(mode, strategy, expected):
    outcome = rebalance.run(labelled(THREE), strategy=strategy, mode=mode)
    assert counts(outcome.output()) == expected
    if mode == "over":
        assert outcome.rejected.num_rows == 0  # originals are never dropped when over-sampling
    if mode == "under":
        assert outcome.added is None
        assert set(outcome.rejected.column("reason").to_pylist()) <= {"undersampled"}


@pytest.mark.parametrize("mode, ratio, expected", [
    ("over", 0.5, {"a": 10, "b": 5}), ("over", 1.0, {"a": 10, "b": 10}), ("over", 0.75, {"a": 10, "b": 7}),
    ("under", 0.5, {"a": 8, "b": 4}), ("under", 1.0, {"a": 4, "b": 4}), ("under", 0.4, {"a": 10, "b": 4}),
])
def test_a_float_is_a_ratio_to_the_majority_or_minority(mode, ratio, expected):
    assert counts(rebalance(labelled({"a": 10, "b": 4}), strategy=ratio, mode=mode)) == expected


def test_hybrid_over_samples_up_and_under_samples_down_to_the_mean():
    outcome = rebalance.run(labelled({"big": 30, "mid": 9, "small": 3}), mode="hybrid")  # mean 14
    assert counts(outcome.output()) == {"big": 14, "mid": 14, "small": 14}
    assert Counter(outcome.rejected.column("reason").to_pylist()) == {"undersampled": 16}
    assert counts(outcome.added) == {"mid": 5, "small": 11}


def test_an_under_sampled_class_keeps_a_subset_of_its_rows():
    table = labelled({"a": 50, "b": 10})
    outcome = rebalance.run(table, mode="under")
    kept = set(outcome.kept.column("id").to_pylist())
    assert len(kept) == 20 and kept <= set(table.column("id").to_pylist())
    rejected = outcome.rejected.column("id").to_pylist()
    assert len(rejected) == 40 and not kept & set(rejected)


def test_one_class_or_no_rows_pass_through():
    table = labelled({"only": 5})
    for mode in ("over", "under", "hybrid"):
        outcome = rebalance.run(table, mode=mode)
        assert outcome.kept.equals(table) and outcome.added is None and outcome.rejected.num_rows == 0
    assert rebalance(table.slice(0, 0)).num_rows == 0


def test_rows_without_a_label_pass_through_and_are_not_a_class():
    table = cls_table(["x", "y", "z", "w"], ["a", None, "a", "b"])
    out = rebalance(table)
    assert counts(out) == {"a": 2, "b": 2, None: 1}
    assert "t:2" in out.column("id").to_pylist()


# --- seeds and batches ---

def outcome_ids(outcome) -> tuple:
    added = outcome.added.column("id").to_pylist() if outcome.added is not None else []
    return tuple(outcome.kept.column("id").to_pylist()), tuple(outcome.rejected.column("id").to_pylist()), \
        tuple(added)


@pytest.mark.parametrize("mode", ["over", "under", "hybrid"])
def test_the_same_seed_gives_the_same_rows_and_another_seed_others(mode):
    table = labelled({"a": 40, "b": 15, "c": 6})
    first = outcome_ids(rebalance.run(table, mode=mode, seed=1))
    assert outcome_ids(rebalance.run(table, mode=mode, seed=1)) == first
    other = rebalance.run(table, mode=mode, seed=2)
    assert outcome_ids(other) != first
    assert counts(other.output()) == counts(rebalance(table, mode=mode, seed=1))  # only which rows changes


@pytest.mark.parametrize("mode", ["over", "under", "hybrid"])
def test_decisions_do_not_depend_on_batch_sizes(mode):
    table = labelled({"a": 40, "b": 15, "c": 6})

    def flat(outcomes) -> tuple:
        kept = [i for o in outcomes for i in o.kept.column("id").to_pylist()]
        dropped = [i for o in outcomes for i in o.rejected.column("id").to_pylist()]
        added = [i for o in outcomes if o.added is not None for i in o.added.column("id").to_pylist()]
        return kept, dropped, sorted(added)

    assert flat(fit_apply(table, mode=mode)) == flat(fit_apply(table, batch_rows=7, mode=mode))


# --- the copies ---

def test_copies_carry_new_ids_their_parent_and_aug_and_otherwise_equal_the_parent():
    table = labelled({"a": 20, "b": 2}).append_column("score", pa.array(range(22), pa.int64()))
    outcome = rebalance.run(table)
    originals = {r["id"]: r for r in table.to_pylist()}
    added = outcome.added.to_pylist()
    assert len(added) == 18
    per_parent = defaultdict(list)
    for row in added:
        parent = originals[row["parent_id"]]
        assert row["aug"] == "oversample"
        assert {k: row[k] for k in parent if k != "id"} == {k: v for k, v in parent.items() if k != "id"}
        stem, k = row["id"].rsplit("#os", 1)
        assert stem == row["parent_id"]
        per_parent[stem].append(int(k))
    assert all(sorted(ks) == list(range(1, len(ks) + 1)) for ks in per_parent.values())  # k = 1, 2, ... per row
    assert len({r["id"] for r in added} | set(originals)) == 18 + 22  # no id is used twice


def test_copies_of_rows_that_have_lineage_get_new_lineage():
    table = augmented(labelled({"a": 10, "b": 1}, shuffle=None), [None] * 10 + ["bt:en"], [None] * 10 + ["t:1"])
    copies = rebalance.run(table).added.to_pylist()
    assert {(r["parent_id"], r["aug"]) for r in copies} == {("t:11", "oversample")}


# --- prefer_augmented ---

def pool_table() -> pa.Table:
    """pos: 10 originals + 2 back-translations; neg: 3 originals + 4 back-translations."""
    labels = ["pos"] * 10 + ["neg"] * 3 + ["pos"] * 2 + ["neg"] * 4
    aug = [None] * 13 + ["bt:en"] * 6
    parents = [None] * 13 + ["t:1", "t:2", "t:11", "t:12", "t:13", "t:11"]
    return augmented(cls_table([f"text {i}" for i in range(19)], labels), aug, parents)


def test_prefer_augmented_fills_with_augmented_rows_first_then_copies_originals():
    table = pool_table()
    outcome = rebalance.run(table, prefer_augmented=True)
    assert counts(outcome.output()) == {"pos": 10, "neg": 10}  # targets come from the originals: 10 and 3
    assert [(r["id"], r["reason"]) for r in outcome.rejected.to_pylist()] == [
        ("t:14", "augmented_unused"), ("t:15", "augmented_unused")]  # the majority's back-translations
    assert {"t:16", "t:17", "t:18", "t:19"} <= set(outcome.kept.column("id").to_pylist())
    assert set(outcome.added.column("parent_id").to_pylist()) <= {"t:11", "t:12", "t:13"}  # originals only
    assert outcome.added.num_rows == 3


def test_prefer_augmented_takes_only_what_a_class_needs():
    labels = ["pos"] * 6 + ["neg"] * 2 + ["neg"] * 7
    table = augmented(cls_table([f"t{i}" for i in range(15)], labels), [None] * 8 + ["bt:en"] * 7)
    outcome = rebalance.run(table, prefer_augmented=True)
    assert counts(outcome.output()) == {"pos": 6, "neg": 6}
    assert outcome.added is None
    assert Counter(outcome.rejected.column("reason").to_pylist()) == {"augmented_unused": 3}
    choices = {outcome_ids(rebalance.run(table, prefer_augmented=True, seed=s))[1] for s in range(6)}
    assert len(choices) > 1  # which back-translations are used is drawn with the seed


def test_without_prefer_augmented_augmented_rows_are_ordinary_rows():
    outcome = rebalance.run(pool_table())
    assert counts(outcome.output()) == {"pos": 12, "neg": 12}  # counts include the back-translations
    assert outcome.rejected.num_rows == 0


def test_prefer_augmented_with_under_sampling_drops_every_augmented_row():
    outcome = rebalance.run(pool_table(), prefer_augmented=True, mode="under")
    assert counts(outcome.output()) == {"pos": 3, "neg": 3}
    assert Counter(outcome.rejected.column("reason").to_pylist()) == {"undersampled": 7, "augmented_unused": 6}
    assert outcome.output().column("aug").null_count == 6


def test_a_class_with_only_augmented_rows_uses_them_as_its_originals():
    table = augmented(cls_table([f"t{i}" for i in range(8)], ["pos"] * 6 + ["neg"] * 2), [None] * 6 + ["bt"] * 2)
    outcome = rebalance.run(table, prefer_augmented=True)
    assert counts(outcome.output()) == {"pos": 6, "neg": 6} and outcome.rejected.num_rows == 0


# --- stats ---

def test_class_counts_before_and_after_are_noted_once_whatever_the_batches():
    table = pool_table()
    notes = Counter()
    for outcome in fit_apply(table, batch_rows=4, prefer_augmented=True):
        notes.update(outcome.notes)
    assert notes == {"before:pos": 12, "before:neg": 7, "after:pos": 10, "after:neg": 10}


# --- in a pipeline: only_split, the ledger, the stats ---

def test_only_split_train_in_a_pipeline(workdir):
    write_jsonl(workdir / "in.jsonl", [{"text": f"review {i}", "label": "neg" if i % 4 == 0 else "pos"}
                                       for i in range(80)])
    pipeline = parse_pipeline({"name": "r", "defaults": {"seed": 3}, "nodes": {
        "raw": {"uses": "read_jsonl", "with": {"path": "in.jsonl"}},
        "splits": {"uses": "split", "input": "raw", "with": {"val": 0.2, "test": 0.2}},
        "bal": {"uses": "rebalance", "input": "splits", "with": {"only_split": "train"}}}})
    runner = Runner(pipeline, "cache", batch_rows=9)
    reports = {r.node: r for r in runner.run()}
    before, after = runner.output("splits"), runner.output("bal")

    def rows_of(table, split):
        return sorted((r for r in table.to_pylist() if r["split"] == split), key=lambda r: r["id"])

    for split in ("validation", "test"):  # untouched, every column, and not one more or fewer
        assert [{k: v for k, v in r.items() if k not in ("parent_id", "aug")} for r in rows_of(after, split)] \
            == rows_of(before, split)
    train_before = Counter(r["label"] for r in rows_of(before, "train"))
    train_after = Counter(r["label"] for r in rows_of(after, "train"))
    assert train_before["pos"] > train_before["neg"]
    assert train_after == {"pos": train_before["pos"], "neg": train_before["pos"]}

    ledger = reports["bal"].ledger
    assert ledger.rows_in == ledger.rows_out + ledger.dropped_total - ledger.added
    assert ledger.added == train_before["pos"] - train_before["neg"] and ledger.dropped_total == 0
    assert ledger.notes == {"before:pos": train_before["pos"], "before:neg": train_before["neg"],
                            "after:pos": train_before["pos"], "after:neg": train_before["pos"]}


def test_the_ledger_balances_when_rows_are_dropped_and_added(workdir):
    records = [{"text": f"r{i}", "label": ["a", "b", "c"][min(i % 10, 2)], "aug": "bt:en" if i % 7 == 0 else None}
               for i in range(90)]
    write_jsonl(workdir / "in.jsonl", records)
    pipeline = parse_pipeline({"name": "r", "nodes": {
        "raw": {"uses": "read_jsonl", "with": {"path": "in.jsonl"}},
        "bal": {"uses": "rebalance", "input": "raw", "with": {"mode": "hybrid", "prefer_augmented": True}}}})
    runner = Runner(pipeline, "cache", batch_rows=8)
    ledger = {r.node: r for r in runner.run()}["bal"].ledger
    assert ledger.added and ledger.dropped_total
    assert ledger.rows_in == ledger.rows_out + ledger.dropped_total - ledger.added
    assert runner.output("bal").num_rows == ledger.rows_out
    assert runner.rejects("bal").num_rows == ledger.dropped_total
    assert set(ledger.dropped) <= {"undersampled", "augmented_unused"}


# --- configuration errors ---

def pipeline_with(workdir, params: dict):
    write_jsonl(workdir / "in.jsonl", [{"text": "a", "label": "x"}])
    return parse_pipeline({"name": "r", "nodes": {
        "raw": {"uses": "read_jsonl", "with": {"path": "in.jsonl"}},
        "bal": {"uses": "rebalance", "input": "raw", "with": params}}})


@pytest.mark.parametrize("params, message", [
    ({"strategy": "most"}, "strategy must be one of auto"),
    ({"strategy": 1.5}, r"float strategy must be in \(0, 1\]"),
    ({"strategy": 0}, r"float strategy must be in \(0, 1\]"),
    ({"strategy": {"a": -1}}, "cannot be negative"),
    ({"strategy": "majority"}, "cannot be used with mode 'over'"),
    ({"strategy": "minority", "mode": "under"}, "cannot be used with mode 'under'"),
    ({"strategy": "minority", "mode": "hybrid"}, "mode hybrid"),
    ({"strategy": 0.5, "mode": "hybrid"}, "mode hybrid"),
])
def test_bad_strategies_are_config_errors_naming_the_node(workdir, params, message):
    with pytest.raises(ConfigError, match=r"^nodes\.bal\.with: .*" + message) as e:
        pipeline_with(workdir, params)
    assert e.value.node == "bal" and e.value.key == "with"


@pytest.mark.parametrize("params, key", [({"strategy": ["a"]}, "with.strategy"), ({"mode": "sideways"}, "with.mode"),
                                         ({"strategy": {"a": 1.5}}, "with.strategy"), ({"ratio": 1}, "with.ratio")])
def test_wrong_types_are_config_errors_naming_the_key(workdir, params, key):
    with pytest.raises(ConfigError) as e:
        pipeline_with(workdir, params)
    assert e.value.key == key and str(e.value).startswith(f"nodes.bal.{key}: ")


def test_bad_params_in_the_python_api_are_config_errors():
    with pytest.raises(ConfigError, match="strategy must be one of"):
        rebalance(labelled(THREE), strategy="balanced")


@pytest.mark.parametrize("params, message", [
    ({"strategy": {"a": 5}}, "over-sampling cannot remove rows: class 'a' has 12 rows, the strategy asks for 5"),
    ({"strategy": {"c": 3}, "mode": "under"}, "under-sampling cannot add rows: class 'c' has 2 rows"),
    ({"strategy": {"zzz": 3}}, r"not in the data: \['zzz'\]"),
    ({"strategy": 0.5}, "a float strategy needs exactly two classes, found 3"),
])
def test_targets_the_data_cannot_meet_fail_at_fit_with_a_clear_message(params, message):
    with pytest.raises(ValueError, match=message):
        rebalance(labelled(THREE), **params)


def test_the_stage_is_registered_as_a_global_stage_for_cls_rows():
    spec = get("rebalance")
    assert (spec.kind, spec.consumes, spec.version) == ("global", ("cls",), 1)
    assert "undersampled" in spec.doc and "augmented_unused" in spec.doc


# --- the same counts as imbalanced-learn ---

DISTRIBUTIONS = {
    "binary": {"a": 10, "b": 3},
    "binary_close": {"neg": 7, "pos": 6},
    "three": {"pos": 20, "neg": 7, "neu": 12},
    "ties": {"b": 8, "a": 8, "e": 5, "d": 2, "c": 2},  # majority and minority ties go to the label sorted first
    "digits": {"9": 8, "10": 4, "x": 1, "y": 3},
}
STRATEGIES = ["auto", "not majority", "minority", "not minority", "majority", "all",
              0.2, 0.3, 0.5, 0.75, 1.0, "dict_up", "dict_down"]


def resolve(strategy, dist: dict[str, int]):
    """Dicts depend on the distribution: targets above (dict_up) or below (dict_down) every other class."""
    labels = sorted(dist)
    if strategy == "dict_up":
        return {c: dist[c] + i for i, c in enumerate(labels) if i % 2 == 0}
    if strategy == "dict_down":
        return {c: max(dist[c] - i, 0) for i, c in enumerate(labels) if i % 2 == 1}
    return strategy


def imblearn_counts(labels: list[str], strategy, mode: str) -> Counter | None:
    """Per-class counts after imbalanced-learn's random sampler; None where it refuses the strategy."""
    imblearn = pytest.importorskip("imblearn")
    cls = imblearn.over_sampling.RandomOverSampler if mode == "over" else imblearn.under_sampling.RandomUnderSampler
    try:
        _, y = cls(sampling_strategy=strategy, random_state=0).fit_resample(
            np.arange(len(labels)).reshape(-1, 1), np.array(labels, dtype=object))
    except ValueError:
        return None
    return Counter(y.tolist())


@pytest.mark.parametrize("mode", ["over", "under"])
@pytest.mark.parametrize("strategy", STRATEGIES, ids=str)
@pytest.mark.parametrize("dist", DISTRIBUTIONS, ids=str)
def test_counts_equal_imbalanced_learn(dist, strategy, mode):
    pytest.importorskip("imblearn")
    counts_in = DISTRIBUTIONS[dist]
    table = labelled(counts_in, shuffle=len(counts_in))
    strategy = resolve(strategy, counts_in)
    expected = imblearn_counts(table.column("label").to_pylist(), strategy, mode)
    if expected is None:  # imbalanced-learn refuses: so do we, at configuration or at fit
        with pytest.raises((ConfigError, ValueError)):
            rebalance(table, strategy=strategy, mode=mode)
        return
    assert counts(rebalance(table, strategy=strategy, mode=mode)) == dict(expected)


def test_the_comparison_covers_accepted_and_refused_strategies():
    """Guard against a comparison that passes because imbalanced-learn refused everything."""
    pytest.importorskip("imblearn")
    outcomes = Counter()
    for dist in DISTRIBUTIONS.values():
        labels = labelled(dist).column("label").to_pylist()
        for strategy in STRATEGIES:
            for mode in ("over", "under"):
                outcomes[imblearn_counts(labels, resolve(strategy, dist), mode) is None] += 1
    assert outcomes[False] >= 60 and outcomes[True] >= 20
