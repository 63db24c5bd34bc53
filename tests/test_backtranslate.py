"""backtranslate: round trips through a pivot language added as rows with lineage; batching never changes a
greedy output; filters count the candidates they discard; only_split and the ledger hold in a pipeline."""
from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
import pytest

pytest.importorskip("torch")
pytest.importorskip("sentencepiece")

from test_translator import pairs, tiny_translator, translator_nodes  # noqa: E402
from testkit import cls_table, write_jsonl  # noqa: E402

from dataprep.catalog import get  # noqa: E402
from dataprep.dag import parse_pipeline  # noqa: E402
from dataprep.errors import ConfigError, SchemaError  # noqa: E402
from dataprep.models.seq2seq import lang_codes  # noqa: E402
from dataprep.runner import Runner  # noqa: E402
from dataprep.stages.backtranslate import FILTERS, Backtranslate, BacktranslateParams, LowYield, fold, judge  # noqa: E402

bt = get("backtranslate")
VERY = "这个房间非常好。"        # -> The room is very good. -> 这个房间很好。 (很 is the likelier "very")
PLAIN = "这个电池有点贵。"       # comes back as it was: bt_identical


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A cache holding a train_translator node `mt` (a zh-en / en-zh pair) that has learned the test pairs."""
    return tiny_translator(tmp_path_factory)


@pytest.fixture(scope="module")
def mt(built) -> str:
    return str(built[1].model_dir("mt"))


def texts_of_all_lengths() -> list[str]:
    """Training sentences, run-ons of two or three of them, and text the model never saw: batches that pad."""
    zh = sorted({z for z, _ in pairs()})
    return zh[:30] + ["".join(zh[i:i + 3]) for i in range(0, 30, 3)] + [
        zh[5] + zh[40], "房间", "iPhone 12 的屏幕很好!", "好" * 30, "这个房间非常好, 但是价格有点贵。"]


def test_round_trips_are_added_as_rows_with_lineage(mt):
    table = cls_table([VERY, PLAIN], labels=["pos", "neg"], ppl=[3.5, 4.0], split=["train", "train"])
    out = bt.run(table, forward=mt)
    assert out.kept.num_rows == 2 and out.rejected.num_rows == 0
    assert out.kept.column("parent_id").null_count == 2 and out.kept.column("bt_pivot").null_count == 2
    assert out.added.to_pylist() == [{
        "id": "t:1#bt1", "text": "这个房间很好。", "label": "pos", "lang": "en", "source": "t", "ppl": None,
        "split": "train", "parent_id": "t:1", "aug": "bt:en", "bt_pivot": "The room is very good."}]
    assert out.notes == {"bt_translated": 2, "bt_candidates": 2, "bt_added": 1, "bt_identical": 1, "bt_empty": 0,
                         "bt_length_ratio": 0, "bt_duplicate": 0, "bt_runaway": 0}


def test_batched_greedy_equals_one_sentence_at_a_time(mt):
    texts = texts_of_all_lengths()
    table = cls_table(texts)
    batched = Backtranslate.impl(BacktranslateParams(forward=mt, batch_size=16, max_new_tokens=32))
    alone = Backtranslate.impl(BacktranslateParams(forward=mt, batch_size=1, max_new_tokens=32))
    assert batched.forward.translate(texts, 1) == alone.forward.translate(texts, 1)
    one, two = batched(table), alone(table)
    assert one.added.equals(two.added) and one.notes == two.notes
    # ... and equal to what a user would write: generate() on each text alone, with the model's own settings
    import torch
    model, tok = batched.forward.model, batched.forward.tok
    with torch.inference_mode():
        plain = [tok.decode(model.generate(**tok(t, return_tensors="pt").to(model.device), max_new_tokens=32)[0],
                 skip_special_tokens=True) for t in texts]
    assert [v[0] for v in batched.forward.translate(texts, 1)] == plain


def test_sampling_gives_distinct_seeded_variants(mt):
    table = cls_table(texts_of_all_lengths()[30:])
    params = {"forward": mt, "decoding": "sample", "n_variants": 4, "temperature": 2.0, "min_ratio": 0.0,
              "max_ratio": 100.0, "max_new_tokens": 40}
    out = bt.run(table, **params)
    added = out.added.to_pylist()
    by_parent: dict[str, list[str]] = {}
    for row in added:
        by_parent.setdefault(row["parent_id"], []).append(fold(row["text"]))
        assert row["id"].rsplit("#bt", 1)[1] in {"1", "2", "3", "4"}
    assert max(map(len, by_parent.values())) > 1
    assert all(len(set(v)) == len(v) for v in by_parent.values())  # duplicates were discarded ...
    sources = dict(zip(table.column("id").to_pylist(), table.column("text").to_pylist()))
    assert all(fold(sources[p]) not in v for p, v in by_parent.items())  # ... and so were copies of the source
    n = out.notes
    assert n["bt_candidates"] == 4 * table.num_rows == n["bt_added"] + sum(n[k] for k in FILTERS)
    assert bt.run(table, **params).added.equals(out.added)  # seeded
    assert not bt.run(table, **params, seed=14).added.equals(out.added)


def test_beam_variants_are_the_n_best_pivots(mt):
    out = bt.run(cls_table([VERY]), forward=mt, decoding="beam", num_beams=4, n_variants=3, max_ratio=3.0)
    pivots = out.added.column("bt_pivot").to_pylist()
    assert pivots[0] == "The room is very good." and len(set(pivots)) == len(pivots)
    assert out.notes["bt_candidates"] == 3


def test_filters():
    p = BacktranslateParams(forward="m", min_ratio=0.5, max_ratio=2.0)
    src = "The room is clean."
    assert judge(src, fold(src), "  ", set(), p) == "bt_empty"
    assert judge(src, fold(src), "ＴＨＥ  room is\tclean.", set(), p) == "bt_identical"  # NFKC, case, whitespace folded
    assert judge(src, fold(src), "Clean.", set(), p) == "bt_length_ratio"
    long = "The room is clean and the bed is soft and the view is great."
    assert judge(src, fold(src), long, set(), p) == "bt_length_ratio"
    seen = {fold(src)}
    assert judge(src, fold(src), "The room was clean.", seen, p) is None
    assert judge(src, fold(src), "the room WAS clean.", seen, p) == "bt_duplicate"


def test_a_translation_longer_than_its_bound_is_a_runaway_and_too_few_rows_fail_the_node(mt):
    """Generation stops at max_token_ratio x the source's tokens + 8: nothing runs on to max_new_tokens, the
    runaways are counted, and a node that adds almost nothing fails (or warns, when told to)."""
    table = cls_table([VERY, "这个屏幕非常差。", "这个价格非常贵。"])
    with pytest.raises(LowYield, match=r"nodes\.backtranslate: backtranslate added 0 rows for 3 translated \(0\.0%, "
                                       r"below min_added_share=0\.1\); discarded: bt_runaway=3\."):
        bt.run(table, forward=mt, max_new_tokens=3)
    with pytest.warns(UserWarning, match="added 0 rows for 3 translated"):
        out = bt.run(table, forward=mt, max_new_tokens=3, on_low_yield="warn")
    assert (out.notes["bt_runaway"], out.notes["bt_added"], out.notes["bt_low_yield"]) == (3, 0, 1)
    ratio_bound = bt.run(table, forward=mt, max_token_ratio=0.01, min_added_share=0.0)  # 0 x source + 8 tokens
    assert ratio_bound.notes["bt_runaway"] == 3
    assert bt.run(table, forward=mt).notes["bt_runaway"] == 0


def test_rows_without_text_are_kept_and_not_translated(mt):
    out = bt.run(cls_table(["", "   ", VERY]), forward=mt)
    assert out.kept.num_rows == 3 and out.notes["bt_candidates"] == 1
    assert out.added.column("parent_id").to_pylist() == ["t:3"]


def test_only_split_leaves_other_splits_untouched(mt):
    splits = ["train", "validation", "test", "train"]
    table = cls_table([VERY, "这个屏幕非常差。", "这个价格非常贵。", "这个服务非常干净。"], split=splits)
    out = bt.run(table, forward=mt, only_split="train")
    result = out.output()
    assert result.num_rows == 6
    added = result.filter(pc.is_valid(result.column("aug")))
    assert added.column("parent_id").to_pylist() == ["t:1", "t:4"]
    assert set(added.column("split").to_pylist()) == {"train"}
    others = result.filter(pc.is_in(result.column("id"), pa.array(["t:2", "t:3"])))
    assert others.select(table.column_names).equals(table.filter(pc.is_in(table.column("id"),
                                                                          pa.array(["t:2", "t:3"]))))


def test_pipeline_ledger_balances_and_augmented_rows_flow_on(built, workdir):
    root = built[0]  # same pipeline name, cache and pairs file: the translator node is a cache hit
    rows = [{"text": z, "label": "pos" if "好" in z or "干净" in z else "neg"} for z in sorted({z for z, _ in pairs()})]
    write_jsonl(workdir / "reviews.jsonl", rows)
    nodes = {**translator_nodes(root / "pairs.tsv"),
             "raw": {"uses": "read_jsonl", "with": {"path": "reviews.jsonl", "lang": "zh"}},
             "splits": {"uses": "split", "input": "raw", "with": {"val": 0.2, "test": 0.2}},
             "aug": {"uses": "backtranslate", "input": "splits",
                     "with": {"forward": {"node": "mt"}, "pivot": "en", "only_split": "train"}},
             "unique": {"uses": "exact_dedup", "input": "aug", "with": {"keep_originals": True}}}
    runner = Runner(parse_pipeline({"name": "t", "nodes": nodes}), root / "cache")
    assert runner.pipeline.nodes["aug"].models == {"forward": "mt"}
    reports = {r.node: r.ledger for r in runner.run()}
    assert runner.plan()[1].status == "cached"
    aug = reports["aug"]
    assert aug.added > 0 and aug.rows_out == aug.rows_in + aug.added and not aug.dropped
    assert aug.notes["bt_added"] == aug.added
    out = runner.output("aug")
    added = out.filter(pc.is_valid(out.column("aug")))
    assert set(added.column("split").to_pylist()) == {"train"}
    # 非常 sentences come back with 很: where the 很 sentence is an original row, dedup drops the copy
    dupes = runner.rejects("unique").column("id").to_pylist()
    assert dupes and all("#bt" in d for d in dupes)


def test_model_refs_of_a_pair_pick_each_direction(mt):
    model = Backtranslate.impl(BacktranslateParams(forward=mt, pivot="en"))
    assert model.forward.model.name_or_path.endswith("zh-en") and model.backward.model.name_or_path.endswith("en-zh")
    reverse = Backtranslate.impl(BacktranslateParams(forward=mt, src_lang="en", pivot="zh"))
    assert reverse.forward.model.name_or_path.endswith("en-zh")
    assert reverse.backward.model.name_or_path.endswith("zh-en")
    explicit = Backtranslate.impl(BacktranslateParams(forward=f"{mt}/zh-en", backward=f"{mt}/en-zh"))
    table = cls_table([VERY])
    assert explicit(table).added.equals(model(table).added)
    with pytest.raises(ValueError, match="none translate zh -> fr"):
        Backtranslate.impl(BacktranslateParams(forward=mt, pivot="fr", src_lang="zh"))


def test_one_model_for_both_directions_is_loaded_once(mt):
    """A multilingual model (M2M100, NLLB) given as `forward` alone serves both directions: one copy in
    memory, two tokenizers (each direction sets its own source language)."""
    both = Backtranslate.impl(BacktranslateParams(forward=f"{mt}/zh-en"))
    assert both.backward.model is both.forward.model and both.backward.tok is not both.forward.tok
    pair = Backtranslate.impl(BacktranslateParams(forward=mt))
    assert pair.backward.model is not pair.forward.model


def test_bio_input_is_refused_with_a_clear_message(workdir):
    write_jsonl(workdir / "ner.jsonl", [{"tokens": ["a"], "tags": ["O"]}])
    nodes = {"raw": {"uses": "read_jsonl", "with": {"path": "ner.jsonl", "kind": "bio"}},
             "aug": {"uses": "backtranslate", "input": "raw", "with": {"forward": "some/model"}}}
    with pytest.raises(ConfigError, match=r"nodes\.aug\.input: backtranslate takes cls rows, but 'raw' gives 'bio'"):
        parse_pipeline({"name": "p", "nodes": nodes})
    stage = Backtranslate.impl.__new__(Backtranslate.impl)  # the Python API path, without loading a model
    with pytest.raises(SchemaError, match="bio rows are not back-translated"):
        stage(pa.table({"id": ["1"], "tokens": [["a"]], "tags": [["O"]]}))


@pytest.mark.parametrize("bad, message", [
    ({}, "needs a forward model"),
    ({"forward": "m", "n_variants": 2}, "n_variants must be 1 with greedy"),
    ({"forward": "m", "decoding": "beam", "n_variants": 5}, r"n_variants \(5\) cannot exceed num_beams \(4\)"),
    ({"forward": "m", "min_ratio": 3.0}, "min_ratio <= max_ratio"),
    ({"forward": "m", "decoding": "nucleus"}, "expected one of 'greedy', 'beam', 'sample'"),
])
def test_config_errors_name_the_node(workdir, bad, message):
    write_jsonl(workdir / "in.jsonl", [{"text": "a", "label": "x"}])
    nodes = {"raw": {"uses": "read_jsonl", "with": {"path": "in.jsonl"}},
             "aug": {"uses": "backtranslate", "input": "raw", "with": bad}}
    with pytest.raises(ConfigError, match=rf"nodes\.aug\.with.*{message}"):
        parse_pipeline({"name": "p", "nodes": nodes})


class _Tok:
    unk_token_id = 0

    def __init__(self, vocab):
        self.vocab = vocab

    def convert_tokens_to_ids(self, token):
        return self.vocab.get(token, self.unk_token_id)


class _MultilingualTok(_Tok):
    src_lang = None


def test_language_codes_for_multilingual_models():
    nllb = _MultilingualTok({"eng_Latn": 7, "zho_Hans": 8})
    assert lang_codes(nllb, "zho_Hans", "eng_Latn") == ("", {"forced_bos_token_id": 7})
    assert nllb.src_lang == "zho_Hans"
    m2m = _MultilingualTok({"__zh__": 9})
    m2m.lang_code_to_id = {"en": 5}
    assert lang_codes(m2m, "zh", "en")[1] == {"forced_bos_token_id": 5}
    assert lang_codes(m2m, "en", "zh")[1] == {"forced_bos_token_id": 9}
    with pytest.raises(ValueError, match="no language code 'fr'"):
        lang_codes(m2m, "zh", "fr")
    assert lang_codes(_Tok({">>zho<<": 3}), "en", "zho") == (">>zho<< ", {})  # multilingual Marian
    assert lang_codes(_Tok({"en": 3}), "zh", "en") == ("", {})  # bilingual: a piece "en" is no language code
