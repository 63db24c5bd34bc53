"""ppl_filter: each criterion alone and together, reason precedence, percentile math against numpy, per-label and
per-language groups, unscored rows, config errors, and a pipeline where a new threshold reruns only the filter."""
from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pytest
import stages_ppl  # noqa: F401  (registers t_ppl_len)
import yaml
from testkit import cls_table, write_jsonl, write_pipeline

from dataprep import ppl_filter
from dataprep.dag import load_pipeline, parse_pipeline
from dataprep.errors import ConfigError, SchemaError
from dataprep.runner import Runner
from dataprep.schema import BIO
from dataprep.stages.ppl_filter import PplFilterParams, sig4


def scored(ppl, labels=None, langs=None) -> pa.Table:
    """One cls row per ppl value (ids t:1, t:2, ...), with a float64 `ppl` column."""
    table = cls_table([f"row {i}" for i in range(len(ppl))], labels)
    if langs is not None:
        table = table.set_column(table.column_names.index("lang"), "lang", pa.array(langs, pa.string()))
    return table.append_column("ppl", pa.array(ppl, pa.float64()))


def kept_ppl(outcome) -> list[float]:
    return outcome.kept.column("ppl").to_pylist()


def reasons(outcome) -> dict[str, str]:
    return dict(zip(outcome.rejected.column("id").to_pylist(), outcome.rejected.column("reason").to_pylist()))


ELEVEN = [float(i) for i in range(11)]  # 0..10: p30 = 3, p60 = 6 exactly, so the cut rows test the boundaries


# --- each criterion alone ---

def test_max_ppl_drops_rows_above_it_and_keeps_equal_ones():
    out = ppl_filter.run(scored(ELEVEN), max_ppl=7)
    assert kept_ppl(out) == ELEVEN[:8]
    assert set(reasons(out).values()) == {"ppl_above:7"}
    assert out.rejected.num_rows == 3


def test_min_ppl_drops_rows_below_it():
    out = ppl_filter.run(scored(ELEVEN), min_ppl=2.5)
    assert kept_ppl(out) == ELEVEN[3:]
    assert reasons(out) == {"t:1": "ppl_below:2.5", "t:2": "ppl_below:2.5", "t:3": "ppl_below:2.5"}


def test_max_percentile_matches_numpy_linear_percentile():
    values = np.random.default_rng(7).lognormal(3, 1, 500)
    out = ppl_filter.run(scored(values.tolist()), max_percentile=90)
    threshold = np.percentile(values, 90, method="linear")
    assert kept_ppl(out) == values[values <= threshold].tolist()
    assert out.rejected.num_rows == np.count_nonzero(values > threshold) == 50
    assert set(reasons(out).values()) == {f"ppl_above_p90:{sig4(threshold)}"}


def test_percentile_threshold_in_the_reason_has_four_significant_digits():
    out = ppl_filter.run(scored([1.0, 2.0, 123456.0, 200000.0]), max_percentile=75)  # p75 = 142592
    assert set(reasons(out).values()) == {"ppl_above_p75:142600"}
    assert sig4(12.34567) == "12.35" and sig4(0.000123456) == "0.0001235" and sig4(95.0) == "95"


def test_max_percentile_100_keeps_every_scored_row():
    assert ppl_filter.run(scored(ELEVEN), max_percentile=100).rejected.num_rows == 0


def test_buckets_head_and_middle_drop_exactly_the_rows_at_or_above_p60():
    values = np.random.default_rng(3).gamma(2, 50, 300)
    out = ppl_filter.run(scored(values.tolist()), keep=["head", "middle"])
    p60 = np.percentile(values, 60)
    assert kept_ppl(out) == values[values < p60].tolist()
    assert set(reasons(out).values()) == {"ppl_bucket:tail"}
    assert out.rejected.num_rows == np.count_nonzero(values >= p60)


def test_bucket_boundaries_belong_to_the_upper_bucket():
    out = ppl_filter.run(scored(ELEVEN), keep=["head", "middle"])  # p60 = 6: the row 6 is tail
    assert kept_ppl(out) == [0, 1, 2, 3, 4, 5]
    assert out.notes == {"kept_head": 3, "kept_middle": 3}  # head 0..2 (p30 = 3 is middle), middle 3..5
    out = ppl_filter.run(scored(ELEVEN), keep=["middle", "tail"])
    assert reasons(out) == {"t:1": "ppl_bucket:head", "t:2": "ppl_bucket:head", "t:3": "ppl_bucket:head"}
    assert out.notes == {"kept_middle": 3, "kept_tail": 5}


def test_bucket_cuts_move_the_buckets():
    out = ppl_filter.run(scored(ELEVEN), keep=["head"], bucket_cuts=[20, 50])  # p20 = 2, p50 = 5
    assert kept_ppl(out) == [0, 1]
    assert sorted(set(reasons(out).values())) == ["ppl_bucket:middle", "ppl_bucket:tail"]


# --- the robust threshold: median + k·MAD of log(ppl) ---

def mad_bounds(values, k):
    logs = np.log(values)
    median = np.median(logs)
    mad = 1.4826 * np.median(np.abs(logs - median))
    return np.exp(median + k * mad), np.exp(median - k * mad)


def test_max_mad_matches_numpy_median_and_scaled_mad_of_log_ppl():
    values = np.random.default_rng(9).lognormal(3, 0.5, 400)
    out = ppl_filter.run(scored(values.tolist()), max_mad=2)
    upper, _ = mad_bounds(values, 2)
    assert kept_ppl(out) == values[values <= upper].tolist()
    assert set(reasons(out).values()) == {f"ppl_above_mad2:{sig4(upper)}"}


def test_min_mad_drops_the_suspiciously_fluent_tail():
    values = np.append(np.random.default_rng(2).lognormal(3, 0.5, 300), [1.05, 1.1, 1.2])  # `好好好好...`
    out = ppl_filter.run(scored(values.tolist()), min_mad=2.5)
    _, lower = mad_bounds(values, 2.5)
    assert set(reasons(out)) == {"t:301", "t:302", "t:303"} and np.count_nonzero(values < lower) == 3
    assert set(reasons(out).values()) == {f"ppl_below_mad2.5:{sig4(lower)}"}


def test_the_robust_cut_adapts_where_a_percentile_cannot():
    # A clean corpus loses 3% to p97 and next to nothing to median + 3.5 MAD (a normal tail beyond 3.5 sigma:
    # 0.02%); with 8% garbage planted, p97 still drops 3% and misses most of it, while the MAD cut, hardly moved
    # by the garbage, drops the garbage.
    rng = np.random.default_rng(1)
    clean = np.exp(rng.normal(4, 0.4, 1000))
    garbage = np.exp(rng.normal(8, 0.5, 87))
    assert ppl_filter.run(scored(clean.tolist()), max_mad=3.5).rejected.num_rows <= 2
    assert ppl_filter.run(scored(clean.tolist()), max_percentile=97).rejected.num_rows == 30
    mixed = scored(np.concatenate([clean, garbage]).tolist())
    by_mad = set(reasons(ppl_filter.run(mixed, max_mad=3.5)))
    assert {f"t:{i}" for i in range(1001, 1088)} <= by_mad and len(by_mad) <= 87 + 2
    assert len(set(reasons(ppl_filter.run(mixed, max_percentile=97)))) == 33


def test_mad_thresholds_are_per_group_and_in_thresholds():
    values = [10.0, 11.0, 12.0, 13.0, 14.0, 1000.0] * 2
    table = scored(values, ["a"] * 6 + ["b"] * 6, langs=["zh"] * 6 + ["en"] * 6)
    phases = ppl_filter.impl(PplFilterParams(max_mad=3.5, per="lang"), "cls")
    state = phases.fit([table])
    assert set(state.thresholds) == {"zh", "en"}
    assert state.thresholds["zh"]["median"] == pytest.approx(math.sqrt(12 * 13))  # the median of the logs
    assert state.thresholds["zh"]["above_mad3.5"] == pytest.approx(mad_bounds(np.array(values[:6]), 3.5)[0])
    assert set(reasons(phases.apply(table, state, range(table.num_rows)))) == {"t:6", "t:12"}


def test_a_zero_mad_falls_back_to_the_mean_absolute_deviation():
    # more than half the scores equal: the MAD is 0, and a cut at the median itself would drop 40% of rows
    values = [20.0] * 6 + [21.0, 22.0, 23.0, 5000.0]
    out = ppl_filter.run(scored(values), max_mad=3.5)
    assert set(reasons(out)) == {"t:10"}


def test_mad_takes_its_place_in_the_precedence():
    values = ELEVEN + [1e6]
    out = ppl_filter.run(scored(values), max_ppl=1e5, max_percentile=90, max_mad=3.5)
    assert reasons(out)["t:12"] == "ppl_above:100000"            # absolute bounds first
    out = ppl_filter.run(scored(values), max_percentile=90, max_mad=3.5)
    assert reasons(out)["t:12"].startswith("ppl_above_p90:")     # then the percentile, then the MAD bound
    assert reasons(ppl_filter.run(scored(values), max_mad=3.5))["t:12"].startswith("ppl_above_mad3.5:")


# --- combinations and precedence: unscored, absolute, percentile, bucket ---

def test_when_several_criteria_drop_a_row_the_first_in_precedence_names_it():
    # 0..10 plus 500 and a null: p80 of the twelve scored values is 8.8, p60 is 6.6
    values = ELEVEN + [500.0, None]
    out = ppl_filter.run(scored(values), max_ppl=100, min_ppl=1, max_percentile=80, keep=["head", "middle"])
    assert reasons(out) == {
        "t:13": "ppl_unscored",           # no score: nothing else applies
        "t:12": "ppl_above:100",          # also above p80 and in the tail
        "t:1": "ppl_below:1",             # 0 < 1, though head
        "t:10": "ppl_above_p80:8.8",      # 9 and 10: above p80 and also tail
        "t:11": "ppl_above_p80:8.8",
        "t:8": "ppl_bucket:tail",         # 7 and 8: tail (>= 6.6) but not above p80
        "t:9": "ppl_bucket:tail",
    }
    assert kept_ppl(out) == [1, 2, 3, 4, 5, 6]


def test_absolute_and_percentile_criteria_combine():
    out = ppl_filter.run(scored(ELEVEN), min_ppl=2, max_percentile=50)  # p50 = 5
    assert kept_ppl(out) == [2, 3, 4, 5]
    assert sorted(set(reasons(out).values())) == ["ppl_above_p50:5", "ppl_below:2"]


# --- percentiles per label and per language ---

def test_per_label_percentiles_differ_from_global_ones():
    # label a scores low (1..10), label b high (101..110): globally p50 = 55.5 drops every b row
    values = [float(i) for i in range(1, 11)] + [float(i) for i in range(101, 111)]
    labels = ["a"] * 10 + ["b"] * 10
    table = scored(values, labels)
    everything = ppl_filter.run(table, max_percentile=50)
    assert kept_ppl(everything) == values[:10]
    per_label = ppl_filter.run(table, max_percentile=50, per="label")
    assert kept_ppl(per_label) == values[:5] + values[10:15]
    assert set(reasons(per_label).values()) == {"ppl_above_p50:5.5", "ppl_above_p50:105.5"}


def test_per_lang_thresholds_match_numpy_per_group():
    rng = np.random.default_rng(11)
    langs = rng.choice(["en", "zh", "de"], 400).tolist()
    values = rng.lognormal(3, 1, 400) * np.where(np.array(langs) == "zh", 4, 1)  # zh scores higher
    phases = ppl_filter.impl(PplFilterParams(max_percentile=80, keep=["head", "middle"], per="lang"), "cls")
    table = scored(values.tolist(), langs=langs)
    state = phases.fit([table])
    for lang, got in state.thresholds.items():
        mine = values[np.array(langs) == lang]
        assert got == pytest.approx(dict(zip(["p80", "p30", "p60"], np.percentile(mine, [80, 30, 60]))))
    out = phases.apply(table, state, range(table.num_rows))
    expected = np.zeros(len(values), bool)
    for lang in ("en", "zh", "de"):
        mine = np.array(langs) == lang
        expected |= mine & (values < np.percentile(values[mine], 60))
    assert kept_ppl(out) == values[expected].tolist()
    overall = ppl_filter.run(table, max_percentile=80, keep=["head", "middle"])
    zh_rows = {f"t:{i + 1}" for i, lang in enumerate(langs) if lang == "zh"}
    zh_kept = {name: len(zh_rows & set(o.kept.column("id").to_pylist())) for name, o in
               (("per_lang", out), ("overall", overall))}
    assert zh_kept["overall"] < zh_kept["per_lang"] / 2  # one cut for all languages mostly drops zh


def test_a_null_label_is_a_group_of_its_own():
    table = scored([1.0, 2.0, 3.0, 100.0, 200.0, 300.0], ["a", "a", "a", None, None, None])
    out = ppl_filter.run(table, max_percentile=50, per="label")
    assert kept_ppl(out) == [1.0, 2.0, 100.0, 200.0]


def test_per_label_on_bio_rows_is_a_schema_error():
    bio = pa.table({"id": ["b:1"], "tokens": [["x"]], "tags": [["O"]], "lang": ["en"], "source": ["t"]},
                   schema=BIO).append_column("ppl", pa.array([1.0]))
    with pytest.raises(SchemaError, match="per: lang or all"):
        ppl_filter.run(bio, max_percentile=50, per="label")
    assert ppl_filter.run(bio, max_percentile=50, per="lang").kept.num_rows == 1


# --- unscored rows ---

def test_null_nan_and_inf_are_unscored_and_do_not_move_the_percentiles():
    values = ELEVEN + [None, math.nan, math.inf, -math.inf]
    out = ppl_filter.run(scored(values), max_percentile=50)
    assert reasons(out) == {"t:12": "ppl_unscored", "t:13": "ppl_unscored", "t:14": "ppl_unscored",
                            "t:15": "ppl_unscored", "t:7": "ppl_above_p50:5", "t:8": "ppl_above_p50:5",
                            "t:9": "ppl_above_p50:5", "t:10": "ppl_above_p50:5", "t:11": "ppl_above_p50:5"}


def test_drop_unscored_false_keeps_them_unjudged():
    values = [1.0, 50.0, None, math.inf, math.nan]
    out = ppl_filter.run(scored(values), max_ppl=10, drop_unscored=False)
    assert out.kept.column("id").to_pylist() == ["t:1", "t:3", "t:4", "t:5"]
    assert reasons(out) == {"t:2": "ppl_above:10"}
    assert out.notes == {"kept_unscored": 3}


def test_a_missing_ppl_column_is_a_schema_error():
    with pytest.raises(SchemaError, match="run ppl_score"):
        ppl_filter.run(cls_table(["a"]), max_ppl=10)


def test_an_all_null_ppl_column_drops_every_row_as_unscored():
    table = cls_table(["a", "b"]).append_column("ppl", pa.nulls(2))
    assert set(reasons(ppl_filter.run(table, max_percentile=50)).values()) == {"ppl_unscored"}


def test_empty_input():
    out = ppl_filter.run(scored([]), max_percentile=50, keep=["head"], per="label")
    assert out.kept.num_rows == 0 and out.rejected.num_rows == 0


# --- batches: fit sees all of them, apply judges each against the same thresholds ---

def test_many_batches_give_the_same_result_as_one():
    values = np.random.default_rng(5).normal(50, 10, 99).tolist()
    labels = ["a", "b", "c"] * 33
    table = scored(values, labels)
    params = PplFilterParams(max_percentile=90, keep=["head", "middle"], per="label", min_ppl=30)
    whole = ppl_filter.run(table, **vars(params))
    phases = ppl_filter.impl(params, "cls")
    batches = [table.slice(i, 10) for i in range(0, 99, 10)]
    state = phases.fit(iter(batches))
    parts = [phases.apply(b, state, range(i * 10, i * 10 + b.num_rows)) for i, b in enumerate(batches)]
    assert sum((p.kept.column("id").to_pylist() for p in parts), []) == whole.kept.column("id").to_pylist()
    assert sum((p.rejected.column("reason").to_pylist() for p in parts), []) == \
        whole.rejected.column("reason").to_pylist()


# --- configuration errors name the node ---

@pytest.mark.parametrize("with_, key, message", [
    ({}, "with", "at least one criterion"),
    ({"max_percentile": 0}, "with", "(0, 100]"),
    ({"max_percentile": 100.5}, "with", "(0, 100]"),
    ({"min_ppl": 10, "max_ppl": 10}, "with", "min_ppl must be below max_ppl"),
    ({"max_ppl": float("inf")}, "with", "finite"),
    ({"keep": []}, "with", "keep must list"),
    ({"keep": ["head", "head"]}, "with", "each once"),
    ({"keep": ["head"], "bucket_cuts": [60, 30]}, "with", "bucket_cuts"),
    ({"keep": ["head"], "bucket_cuts": [0, 60]}, "with", "bucket_cuts"),
    ({"keep": ["head"], "bucket_cuts": [30, 100]}, "with", "bucket_cuts"),
    ({"keep": ["head"], "bucket_cuts": [30]}, "with", "bucket_cuts"),
    ({"max_ppl": 10, "per": "label"}, "with", "only applies to percentiles"),
    ({"max_mad": 0}, "with", "max_mad must be a finite number above 0"),
    ({"min_mad": -2}, "with", "min_mad must be a finite number above 0"),
    ({"keep": ["body"]}, "with.keep", "expected"),
    ({"per": "source", "max_percentile": 90}, "with.per", "expected"),
    ({"max_pct": 90}, "with.max_pct", "unknown parameter"),
])
def test_bad_config_is_a_config_error_naming_the_node(workdir, with_, key, message):
    write_jsonl(workdir / "in.jsonl", [{"text": "a", "label": "x"}])
    with pytest.raises(ConfigError) as e:
        parse_pipeline({"name": "p", "imports": ["stages_ppl"], "nodes": {
            "raw": {"uses": "read_jsonl", "with": {"path": "in.jsonl"}},
            "scored": {"uses": "t_ppl_len", "input": "raw"},
            "kept": {"uses": "ppl_filter", "input": "scored", "with": with_}}})
    assert (e.value.node, e.value.key) == ("kept", key)
    assert str(e.value).startswith(f"nodes.kept.{key}: ") and message in str(e.value), str(e.value)


# --- in a pipeline: a new threshold reruns only the filter ---

def test_changing_the_threshold_reruns_only_the_filter_and_the_ledger_balances(workdir):
    texts = ["a" * n for n in range(1, 21)] + ["unscorable"]  # ppl = 1..20, and one null
    write_jsonl(workdir / "in.jsonl", [{"text": t, "label": "x"} for t in texts])
    nodes = {"raw": {"uses": "read_jsonl", "with": {"path": "in.jsonl", "batch_rows": 4}},
             "scored": {"uses": "t_ppl_len", "input": "raw"},
             "kept": {"uses": "ppl_filter", "input": "scored", "with": {"max_percentile": 50}}}
    path = write_pipeline(workdir / "p.yaml", nodes, imports=["stages_ppl"])
    first = Runner(load_pipeline(path), "cache", batch_rows=3)
    reports = {r.node: r for r in first.run()}
    assert {n: r.status for n, r in reports.items()} == {"raw": "ran", "scored": "ran", "kept": "ran"}
    ledger = reports["kept"].ledger
    assert (ledger.rows_in, ledger.rows_out, dict(ledger.dropped)) == (21, 10, {"ppl_above_p50": 10,
                                                                                "ppl_unscored": 1})
    assert first.output("kept").column("ppl").to_pylist() == [float(n) for n in range(1, 11)]  # p50 = 10.5

    doc = yaml.safe_load(path.read_text())
    doc["nodes"]["kept"]["with"] = {"max_percentile": 80}
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    second = Runner(load_pipeline(path), "cache", batch_rows=3)
    reports = {r.node: r for r in second.run()}
    assert {n: r.status for n, r in reports.items()} == {"raw": "cached", "scored": "cached", "kept": "ran"}
    ledger = reports["kept"].ledger
    assert ledger.rows_in == ledger.rows_out + ledger.dropped_total - ledger.added == 21
    assert dict(ledger.dropped) == {"ppl_above_p80": 4, "ppl_unscored": 1}  # p80 of 1..20 = 16.2
    assert second.rejects("kept").column("reason").to_pylist()[:4] == ["ppl_above_p80:16.2"] * 4
