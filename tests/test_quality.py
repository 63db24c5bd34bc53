"""quality_score and quality_filter: each statistic against a plain-Python reference, per-language units, the
rules and their reasons, per-language thresholds, vote and perplexity combinations, the learned model built by a
DAG node, config errors, and the sample corpus's planted garbage."""
from __future__ import annotations

import math
import random
import unicodedata
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from testkit import ROOT, cls_table, write_jsonl, write_pipeline

from dataprep import quality_filter, quality_score
from dataprep.catalog import get
from dataprep.dag import load_pipeline, parse_pipeline
from dataprep.errors import ConfigError, SchemaError
from dataprep.runner import Runner
from dataprep.schema import BIO
from dataprep.stages.quality import STATS, ZH_STOPCHARS, score
from dataprep.stages.quality_filter import RULES, logistic_regression


def table(texts, langs, labels=None) -> pa.Table:
    t = cls_table(texts, labels)
    return t.set_column(t.column_names.index("lang"), "lang", pa.array(langs, pa.string()))


def values(out: pa.Table, stat: str) -> list:
    return out.column("q_" + stat).to_pylist()


def reasons(outcome) -> dict[str, str]:
    return dict(zip(outcome.rejected.column("id").to_pylist(), outcome.rejected.column("reason").to_pylist()))


# --- the statistics against plain Python ---

def ref_units(text: str, cjk: bool) -> list[str]:
    if cjk:
        return [c for c in text if unicodedata.category(c)[0] in "LMN"]
    return [w.lower() for w in text.split()]


def ref_dup(units: list[str], n: int) -> float:
    """Characters covered by an n-gram seen earlier in the text, over all characters."""
    seen, covered = set(), [False] * len(units)
    for i in range(len(units) - n + 1):
        gram = tuple(units[i:i + n])
        if gram in seen:
            covered[i:i + n] = [True] * n
        seen.add(gram)
    total = sum(map(len, units))
    return sum(len(u) for u, c in zip(units, covered) if c) / total if total else math.nan


def ref_top(units: list[str], n: int) -> float:
    grams = Counter(tuple(units[i:i + n]) for i in range(len(units) - n + 1))
    best = max((c * sum(map(len, g)) for g, c in grams.items() if c >= 2), default=0)
    total = sum(map(len, units))
    return min(best / total, 1.0) if total else math.nan


def ref_dup_lines(text: str) -> float:
    lines = [x.strip() for x in __import__("re").split(r"[\n\r。！？!?；;…]+", text) if x.strip()]
    seen, again = set(), 0
    for line in lines:
        again += line in seen
        seen.add(line)
    return again / len(lines) if lines else math.nan


def random_texts(seed: int, n: int) -> tuple[list[str], list[str]]:
    """Short texts from small alphabets, so that n-grams repeat: half Chinese, half English."""
    rng = random.Random(seed)
    han, words = "好评不错酒店房间哈的了", ["good", "bad", "the", "room", "Room", "was", "and", "!!", "3"]
    texts, langs = [], []
    for i in range(n):
        if i % 2:
            texts.append("".join(rng.choice(han + "，。！ 1") for _ in range(rng.randint(0, 40))))
            langs.append("zh")
        else:
            texts.append(" ".join(rng.choice(words) for _ in range(rng.randint(0, 30))))
            langs.append("en")
    return texts, langs


def close(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or abs(a - b) < 1e-9


def test_ngram_statistics_match_plain_python_on_random_texts():
    texts, langs = random_texts(3, 160)
    out = quality_score(table(texts, langs))
    for i, (text, lang) in enumerate(zip(texts, langs)):
        units = ref_units(text, lang == "zh")
        got = {s: (out.column("q_" + s)[i].as_py() if out.column("q_" + s)[i].is_valid else math.nan)
               for s in STATS}
        assert got["units"] == len(units)
        for n in range(5, 11):
            assert close(got[f"dup{n}_frac"], ref_dup(units, n)), (text, n)
        for n in (2, 3, 4):
            assert close(got[f"top{n}_frac"], ref_top(units, n)), (text, n)
        assert close(got["dup_line_frac"], ref_dup_lines(text)), text


def test_character_statistics_match_plain_python():
    texts = ["房间很好，服务不错。12", "Ã©tÃ© est lÃ ", "The room, the bed and 42 rooms...", "", "   ", "酒店 hotel!!!"]
    out = quality_score(table(texts, ["zh", "en", "en", "zh", "en", "zh"]))
    for i, text in enumerate(texts):
        n = len(text)
        letters = sum(unicodedata.category(c)[0] in "LM" for c in text)
        # a run of one repeated non-letter counts once
        runs = sum(1 for j in range(1, n) if text[j] == text[j - 1] and unicodedata.category(text[j])[0] not in "LM")
        special = (n - letters - runs) / (n - runs) if n else None
        digits = sum(c.isdigit() for c in text) / n if n else None
        assert values(out, "special_frac")[i] == pytest.approx(special)
        assert values(out, "digit_frac")[i] == pytest.approx(digits)
    # Han weighted x3 against the other letters in a Chinese row; Latin letters' share in an English one
    assert values(out, "script_frac")[5] == pytest.approx(6 / (6 + 5))
    assert values(out, "special_frac")[5] == pytest.approx(2 / 9)   # the space and one `!`, of 9
    assert values(out, "script_frac")[2] == 1.0
    assert values(out, "mojibake_frac")[1] > 0.3 and values(out, "mojibake_frac")[0] == 0


def test_stop_words_rare_characters_and_markup():
    texts = ["我的房间很好", "鍝堝搱杩欎釜閰掑簵", "the cat and the dog", '<a href="/">首页</a> | 登录 | 注册 &nbsp;',
             "{x: 1}"]
    out = quality_score(table(texts, ["zh", "zh", "en", "zh", "en"]))
    assert values(out, "stopword_frac")[0] == pytest.approx(sum(c in ZH_STOPCHARS for c in texts[0]) / 6)
    assert values(out, "stopword_frac")[2] == pytest.approx(3 / 5)       # the, and, the (Gopher's words)
    assert values(out, "rare_han_frac")[0] == 0                           # all GB 2312 level 1
    assert values(out, "rare_han_frac")[1] > 0.6                          # UTF-8 read as GBK
    assert values(out, "boilerplate")[3] == 3                              # 首页, 登录, 注册
    assert values(out, "markup_frac")[3] > 0.3
    assert values(out, "curly") == [0, 0, 0, 0, 2]


def test_the_lang_column_decides_characters_or_words():
    out = quality_score(table(["好评 好评 好评 好评 好评 好评"] * 2, ["zh", "en"]))
    assert values(out, "units") == [12, 6]          # characters vs words
    assert values(out, "mean_word_len") == [None, 2]  # a word statistic does not apply to a Chinese row
    out = quality_score(table(["好评好评", "nice one"], [None, "zh-Hant"]))
    assert values(out, "units") == [4, 7]            # a null lang is guessed (zh); any zh subtag is Chinese


def test_padding_is_neither_repetition_nor_symbols_but_junk_is():
    # a review padded with 。。。 repeats no content (punctuation is no unit of Chinese text), and a run of one
    # mark counts once among the special characters; a syllable repeated and symbol junk do not get off
    out = quality_score(table(["总的来说很不错。。。。。。。。。。。。。。", "好评好评好评好评好评好评", "#$@!%^&*~?"],
                              ["zh", "zh", "zh"]))
    assert values(out, "dup5_frac")[:2] == [0, pytest.approx(10 / 12)]
    assert values(out, "special_frac") == [pytest.approx(1 / 8), 0, 1]


def test_a_row_scores_the_same_whatever_its_batch():
    texts, langs = random_texts(8, 120)
    whole = score(table(texts, langs))
    order = list(range(120))
    random.Random(2).shuffle(order)
    shuffled = score(table([texts[i] for i in order], [langs[i] for i in order]))
    for column in whole:
        np.testing.assert_array_equal(whole[column][order], shuffled[column])


def test_bio_rows_are_scored_on_their_tokens():
    bio = pa.table({"id": ["b:1", "b:2"], "tokens": [list("好评好评好评好评"), ["good", "good", "good", "good",
                                                                               "good", "good"]],
                    "tags": [["O"] * 8, ["O"] * 6], "lang": ["zh", "en"], "source": ["s", "s"]}, schema=BIO)
    out = quality_score(bio)
    assert values(out, "units") == [8, 6]
    assert values(out, "special_frac")[0] == 0      # Chinese tokens are joined without spaces
    assert values(out, "dup5_frac") == [pytest.approx(6 / 8), pytest.approx(5 / 6)]  # 5-grams seen before


def test_stats_param_picks_columns_and_rescoring_replaces_them():
    out = quality_score(table(["好评"], ["zh"]), stats=["units", "curly"])
    assert [c for c in out.column_names if c.startswith("q_")] == ["q_units", "q_curly"]
    again = quality_score(out, stats=["units"])
    assert again.column_names.count("q_units") == 1 and again.num_rows == 1
    with pytest.raises(ConfigError, match="stats must list some of"):
        get("quality_score").make_params({"stats": ["units", "nope"]}, node="q")


def test_every_statistic_is_documented():
    doc = get("quality_score").doc
    for stat in STATS.values():
        assert stat.column in doc and len(stat.doc) > 20, stat.name


# --- quality_filter: rules, thresholds, reasons ---

def scored(langs, **stats) -> pa.Table:
    """Rows with the given q_* columns and every other statistic at a harmless value."""
    n = len(langs)
    t = table([f"row {i}" for i in range(n)], langs)
    harmless = {s: 0.0 for s in STATS} | {"units": 30.0, "script_frac": 1.0, "stopword_frac": 0.3,
                                          "alpha_word_frac": 1.0, "mean_word_len": 5.0}
    for name in STATS:
        column = stats.get(name, [harmless[name]] * n)
        t = t.append_column("q_" + name, pa.array(column, pa.float64()))
    return t


def test_each_rule_names_itself_and_its_threshold():
    out = quality_filter.run(scored(["en"] * 5, dup5_frac=[0.5, 0.1, 0, 0, 0], special_frac=[0, 0, 0.9, 0, 0],
                                    script_frac=[1, 1, 1, 0.2, None], boilerplate=[0, 0, 0, 0, 3]))
    assert reasons(out) == {"t:1": "quality:dup5_frac>0.15", "t:3": "quality:special_frac>0.4",
                            "t:4": "quality:script_frac<0.5", "t:5": "quality:boilerplate>1"}
    assert out.notes == {"fired_max_dup5_frac": 1, "fired_max_special_frac": 1, "fired_min_script_frac": 1,
                         "fired_max_boilerplate": 1}


def test_null_statistics_never_fire():
    out = quality_filter.run(scored(["zh", "en"], mean_word_len=[None, None], rare_han_frac=[None, None],
                                    units=[60, 60]))
    assert out.rejected.num_rows == 0


def test_character_based_rows_get_their_own_thresholds():
    # special_frac 0.45: above ROOTS' 0.4 for English, below the 0.5 measured for Chinese
    out = quality_filter.run(scored(["en", "zh", "ja", "zh-TW"], special_frac=[0.45, 0.45, 0.45, 0.55]))
    assert reasons(out) == {"t:1": "quality:special_frac>0.4", "t:4": "quality:special_frac>0.5"}


def test_a_null_lang_is_guessed_for_the_thresholds_as_it_was_for_the_statistics():
    t = scored([None, None], special_frac=[0.45, 0.45])
    t = t.set_column(t.column_names.index("text"), "text", pa.array(["好评，好评", "good, good"]))
    assert reasons(quality_filter.run(t)) == {"t:2": "quality:special_frac>0.4"}


def test_thresholds_and_per_lang_override_in_that_order():
    t = scored(["en", "zh", "de"], special_frac=[0.45, 0.45, 0.45])
    out = quality_filter.run(t, thresholds={"max_special_frac": 0.3}, per_lang={"de": {"max_special_frac": 0.6}})
    assert reasons(out) == {"t:1": "quality:special_frac>0.3", "t:2": "quality:special_frac>0.3"}


def test_min_units_guards_rules_that_need_a_long_text():
    # Gopher's word statistics judge documents of 50+ words; the Chinese stop-word rule judges 20+ characters
    t = scored(["en", "en", "zh", "zh"], units=[10, 60, 10, 25], mean_word_len=[1.5, 1.5, None, None],
               stopword_frac=[0.3, 0.3, 0.0, 0.0])
    assert reasons(quality_filter.run(t)) == {"t:2": "quality:mean_word_len<3", "t:4": "quality:stopword_frac<0.02"}


def test_rules_and_disable_choose_the_rules():
    t = scored(["en"] * 2, curly=[1, 0], digit_frac=[0, 0.9])
    assert set(reasons(quality_filter.run(t, disable=["max_curly"])).values()) == {"quality:digit_frac>0.15"}
    assert set(reasons(quality_filter.run(t, rules=["max_curly"])).values()) == {"quality:curly>0"}


def test_a_missing_statistic_column_is_a_schema_error_naming_it():
    t = scored(["en"]).drop_columns(["q_curly"])
    with pytest.raises(SchemaError, match="q_curly.*run quality_score"):
        quality_filter.run(t)
    assert quality_filter.run(t, disable=["max_curly"]).kept.num_rows == 1


def test_vote_needs_that_many_signals_and_names_them():
    t = scored(["en"] * 3, curly=[1, 1, 0], digit_frac=[0.9, 0, 0], special_frac=[0.9, 0, 0])
    out = quality_filter.run(t, mode="vote", votes=2)
    assert reasons(out) == {"t:1": "quality:vote3:special_frac>0.4+digit_frac>0.15+curly>0"}


# --- with the perplexity score ---

def with_ppl(t: pa.Table, ppl) -> pa.Table:
    return t.append_column("ppl", pa.array(ppl, pa.float64()))


def test_a_row_fails_if_its_perplexity_or_its_heuristics_say_so():
    rng = np.random.default_rng(4)
    ppl = np.exp(rng.normal(4, 0.3, 200))
    ppl[[0, 1]] = [1e5, 2e5]                     # garbage by perplexity only
    t = with_ppl(scored(["zh"] * 200, curly=[0, 5, 3] + [0] * 197), ppl.tolist())  # rows 2, 3: by a rule
    out = quality_filter.run(t, ppl_max_mad=3.5)
    got = reasons(out)
    assert set(got) == {"t:1", "t:2", "t:3"}
    assert got["t:2"] == got["t:3"] == "quality:curly>0"   # a rule names the row before perplexity does
    assert got["t:1"].startswith("ppl_above_mad3.5:")
    assert out.notes == {"fired_max_curly": 2, "fired_ppl": 2}
    assert reasons(quality_filter.run(t)).keys() == {"t:2", "t:3"}          # heuristics alone
    vote = reasons(quality_filter.run(t, ppl_max_mad=3.5, mode="vote", votes=2))
    assert list(vote) == ["t:2"] and vote["t:2"].startswith("quality:vote2:curly>0+ppl_above_mad3.5:")


def test_unscored_rows_are_judged_by_the_rules_alone():
    t = with_ppl(scored(["zh"] * 4, curly=[0, 0, 0, 1]), [10.0, 11.0, None, None])
    assert reasons(quality_filter.run(t, ppl_max_mad=3.5)) == {"t:4": "quality:curly>0"}


def test_after_split_only_generated_rows_are_scored_and_judged():
    t = cls_table(["@#$%^&*!!", "@#$%^&*!!?", "good room", "~~~###$$$"], split=["test", "train", "train", "train"])
    t = t.append_column("aug", pa.array([None, "bt:en", "bt:en", None], pa.string()))
    scored_rows = quality_score(t, only_augmented=True)
    out = quality_filter.run(scored_rows, only_augmented=True)
    assert reasons(out) == {"t:2": "quality:special_frac>0.4"}  # the junk original rows are split's, not ours
    assert sorted(out.kept.column("id").to_pylist()) == ["t:1", "t:3", "t:4"]


# --- the learned combination, fitted by a build node of the DAG ---

def test_fit_quality_learns_from_labelled_rows_and_quality_filter_applies_it(workdir):
    rng = random.Random(5)
    good = ["房间很干净，服务也很好，下次还会再来。", "位置不错，早餐一般，性价比还可以。",
            "前台的服务态度非常好，推荐入住。"]

    def garbage():
        return "".join(chr(rng.randint(0x4E00, 0x9FFF)) for _ in range(rng.randint(10, 30)))

    labelled = [{"text": rng.choice(good) + str(i), "label": "clean"} for i in range(30)] + \
        [{"text": garbage(), "label": "garbage"} for _ in range(10)]
    write_jsonl(workdir / "labelled.jsonl", labelled)
    write_jsonl(workdir / "rows.jsonl", [{"text": good[0], "label": "pos"}, {"text": garbage(), "label": "pos"},
                                         {"text": good[2] + "!", "label": "neg"}])
    nodes = {"lab": {"uses": "read_jsonl", "with": {"path": "labelled.jsonl", "lang": "zh"}},
             "lab_q": {"uses": "quality_score", "input": "lab"},
             "qfit": {"uses": "fit_quality", "input": "lab_q"},
             "raw": {"uses": "read_jsonl", "with": {"path": "rows.jsonl", "lang": "zh"}},
             "q": {"uses": "quality_score", "input": "raw"},
             "kept": {"uses": "quality_filter", "input": "q", "with": {"mode": "learned", "model": {"node": "qfit"}}}}
    runner = Runner(load_pipeline(write_pipeline(workdir / "p.yaml", nodes)), "cache")
    reports = {r.node: r for r in runner.run()}
    assert reports["qfit"].ledger.notes["garbage_rows"] == 10
    assert (runner.model_dir("qfit") / "quality_model.json").is_file()
    assert reasons_of(runner.rejects("kept")) == {"rows.jsonl:2": "quality:learned_p>0.5"}


def test_logistic_regression_solves_scikit_learns_objective():
    # at the optimum of sum(w · log-loss) + |coef|² / 2C the gradient vanishes, and the intercept is free
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 3))
    y = (x[:, 0] - x[:, 2] + rng.normal(size=200) > 0.8).astype(int)
    w = rng.uniform(0.5, 2, 200)
    coef, intercept = logistic_regression(x, y, 0.7, w)
    p = 1 / (1 + np.exp(-(x @ coef + intercept)))
    np.testing.assert_allclose(x.T @ (w * (p - y)) + coef / 0.7, 0, atol=1e-8)
    assert abs(np.sum(w * (p - y))) < 1e-8 and coef[0] > 0 > coef[2]


def reasons_of(rejects: pa.Table) -> dict[str, str]:
    return dict(zip(rejects.column("id").to_pylist(), rejects.column("reason").to_pylist()))


def test_fit_quality_refuses_a_sample_without_enough_of_each_class(workdir):
    write_jsonl(workdir / "labelled.jsonl", [{"text": f"好评{i}", "label": "clean"} for i in range(20)])
    nodes = {"lab": {"uses": "read_jsonl", "with": {"path": "labelled.jsonl", "lang": "zh"}},
             "lab_q": {"uses": "quality_score", "input": "lab"}, "qfit": {"uses": "fit_quality", "input": "lab_q"}}
    with pytest.raises(ValueError, match="0 rows labelled 'garbage'.*at least 5 of each"):
        Runner(load_pipeline(write_pipeline(workdir / "p.yaml", nodes)), "cache").run()


# --- configuration errors name the node ---

@pytest.mark.parametrize("with_, message", [
    ({"rules": ["max_nope"]}, "unknown rule(s) max_nope"),
    ({"disable": list(RULES)}, "nothing to judge by"),
    ({"thresholds": {"max_curly": float("inf")}}, "finite threshold"),
    ({"per_lang": {"zh": {"nope": 1}}}, "per_lang.zh: nope is not a rule"),
    ({"mode": "vote", "votes": 0}, "votes must be between 1"),
    ({"mode": "learned"}, "mode: learned needs model"),
    ({"mode": "learned", "model": "m", "ppl_max_mad": 3}, "log(ppl) is a feature"),
    ({"ppl_max_mad": -1}, "max_mad must be a finite number above 0"),
    ({"min_prob": 1.5}, "min_prob must be in (0, 1)"),
])
def test_bad_config_is_a_config_error(with_, message):
    with pytest.raises(ConfigError) as e:
        get("quality_filter").make_params(with_, node="kept")
    assert str(e.value).startswith("nodes.kept.with: ") and message in str(e.value), str(e.value)


def test_the_stage_help_lists_every_rule_with_its_default_and_source():
    doc = get("quality_filter").doc
    for rule in RULES.values():
        line = next(x for x in doc.splitlines() if x.strip().startswith(rule.name + " "))
        assert f"{rule.stat} {rule.op} " in line, line
        assert rule.source.split(":")[0] in doc
    assert "Gopher (Rae et al. 2021" in doc and "C4" in doc and "ROOTS" in doc


# --- the sample corpus: every planted garbage line, few clean rows ---

def test_the_sample_pipelines_planted_garbage_is_caught_by_the_heuristics(workdir):
    pipeline = parse_pipeline({"name": "s", "nodes": {
        "raw": {"uses": "read_jsonl", "with": {"path": str(ROOT / "sample_data" / "zh_reviews.jsonl"), "lang": "zh"}},
        "clean": {"uses": "normalize", "input": "raw"},
        "unique": {"uses": "exact_dedup", "input": "clean", "with": {"fold": ["whitespace", "case"]}},
        "q": {"uses": "quality_score", "input": "unique"},
        "kept": {"uses": "quality_filter", "input": "q"}}})
    runner = Runner(pipeline, "cache")
    runner.run()
    lines = (ROOT / "sample_data" / "zh_reviews.garbage_lines.txt").read_text().split()
    garbage = {f"zh_reviews.jsonl:{n}" for n in lines}
    dropped = set(runner.rejects("kept").column("id").to_pylist())
    rows_in = runner.output("q").num_rows
    assert len(garbage) == 60 and garbage <= dropped
    assert len(dropped - garbage) <= 0.002 * rows_in  # 2 of 2,710 clean rows repeat a phrase


SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "datasets" / "para_zh_en_tatoeba" / "cmn.txt"


@pytest.mark.skipif(not SHARED.is_file(), reason=f"shared datasets not found at {SHARED.parent.parent}")
def test_clean_reference_text_passes_the_heuristics():
    """The Chinese side of Tatoeba (short, clean, conversational sentences): the defaults keep nearly all."""
    lines = SHARED.read_text(encoding="utf-8-sig").splitlines()[::6]
    zh = [line.split("\t")[1] for line in lines]
    out = quality_filter.run(quality_score(table(zh, ["zh"] * len(zh))))
    assert out.rejected.num_rows <= 0.003 * len(zh), Counter(out.rejected.column("reason").to_pylist())
