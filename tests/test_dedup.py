"""exact_dedup: the first copy is kept, the others name it; label conflicts; bio rows; batches in a pipeline."""
from __future__ import annotations

import random

import pyarrow as pa
import pytest
from testkit import cls_table, write_jsonl

from dataprep import exact_dedup
from dataprep.catalog import get
from dataprep.dag import parse_pipeline
from dataprep.runner import Runner
from dataprep.schema import BIO
from dataprep.stages import text as T


def ids(table: pa.Table) -> list[str]:
    return table.column("id").to_pylist()


def rejected(outcome) -> list[tuple[str, str]]:
    return [(r["id"], r["reason"]) for r in outcome.rejected.to_pylist()]


def bio_table(token_lists, tag_lists) -> pa.Table:
    n = len(token_lists)
    return pa.table({"id": [f"s:{i + 1}" for i in range(n)], "tokens": token_lists, "tags": tag_lists,
                     "lang": ["en"] * n, "source": ["s"] * n}, schema=BIO)


def test_keeps_the_first_copy_in_input_order_and_names_it():
    out = exact_dedup.run(cls_table(["b", "a", "b", "c", "a", "b"]))
    assert ids(out.kept) == ["t:1", "t:2", "t:4"]
    assert rejected(out) == [("t:3", "duplicate_of:t:1"), ("t:5", "duplicate_of:t:2"), ("t:6", "duplicate_of:t:1")]


def test_the_keeper_is_named_by_its_own_id_column():
    out = exact_dedup.run(cls_table(["x", "x"], ids=["reviews.jsonl:17", "reviews.jsonl:90"]))
    assert rejected(out) == [("reviews.jsonl:90", "duplicate_of:reviews.jsonl:17")]


def test_without_fold_the_text_is_compared_exactly():
    out = exact_dedup.run(cls_table(["a b", "a  b", "A b", "ａ b", "a b"]))
    assert ids(out.kept) == ["t:1", "t:2", "t:3", "t:4"]
    assert rejected(out) == [("t:5", "duplicate_of:t:1")]


@pytest.mark.parametrize("fold, same, different", [
    ("whitespace", ["a b", " a  b ", "a\tb", "a\u3000b"], "ab"),
    ("case", ["iPhone", "IPHONE", "iphone"], "iPhone "),
    ("nfkc", ["ﬁ①", "fi1"], "fi 1"),
    ("halfwidth", ["ｉＰｈｏｎｅ１２", "iPhone12"], "IPhone12"),
])
def test_each_fold_option_merges_its_variants_only(fold, same, different):
    out = exact_dedup.run(cls_table([*same, different]), fold=[fold])
    assert ids(out.kept) == ["t:1", f"t:{len(same) + 1}"]
    assert rejected(out) == [(f"t:{i}", "duplicate_of:t:1") for i in range(2, len(same) + 1)]


@pytest.mark.parametrize("text, folded", [
    ("房间 很好 ， 服务 不错 。", "房间很好，服务不错。"),   # spaces between CJK characters and around CJK punctuation
    ("好 , 服 , 务 ! 棒", "好,服,务!棒"),                   # ASCII punctuation beside CJK (normalize's halfwidth)
    ("「 你好 」 他说", "「你好」他说"),
    ("good  food , really", "good food , really"),       # between Latin words and their punctuation: one space
    ("我用 iPhone 很好", "我用 iPhone 很好"),              # a CJK character beside a Latin word or a digit: kept
    ("价格 300 元", "价格 300 元"),
    ("\u3000 你 \t好 \r\n", "你好"),
])
def test_whitespace_fold_is_cjk_aware(text, folded):
    assert T.fold_whitespace(pa.array([text])).to_pylist() == [folded]


def test_near_copies_spaced_around_chinese_punctuation_are_duplicates():
    out = exact_dedup.run(cls_table(["房间很好，服务不错。", "房间很好 ， 服务不错 。", "房间 很好，服务 不错。",
                                     "I like it", "Ilikeit", "I  like it"]), fold=["whitespace"])
    assert rejected(out) == [("t:2", "duplicate_of:t:1"), ("t:3", "duplicate_of:t:1"), ("t:6", "duplicate_of:t:4")]


def test_exact_dedup_version_moved_with_the_fold():
    assert get("exact_dedup").version == 2  # the CJK-aware fold changes which rows are copies: new keys


def test_folds_combine_and_the_kept_row_keeps_its_original_text():
    out = exact_dedup.run(cls_table(["Ｇｏｏｄ  Movie", "good movie", "GOOD MOVIE "]), fold=["halfwidth", "whitespace",
                                                                                          "case"])
    assert out.kept.column("text").to_pylist() == ["Ｇｏｏｄ  Movie"]
    assert rejected(out) == [("t:2", "duplicate_of:t:1"), ("t:3", "duplicate_of:t:1")]


def test_128_bit_hashes_give_the_same_decisions():
    rng = random.Random(7)
    words = ["a", "b", "c", "d"]
    texts = [" ".join(rng.choices(words, k=3)) for _ in range(300)]
    labels = [rng.choice(["x", "y"]) for _ in texts]
    for conflicts in ("drop_all", "keep_majority", "keep_first"):
        table = cls_table(texts, labels)
        a, b = exact_dedup.run(table, conflicts=conflicts), exact_dedup.run(table, conflicts=conflicts, bits=128)
        assert ids(a.kept) == ids(b.kept) and rejected(a) == rejected(b)
        assert a.kept.num_rows <= 64 and a.rejected.num_rows >= 236  # 64 distinct texts: copies are seen


# --- label conflicts ---

def test_drop_all_rejects_every_copy_with_the_labels_sorted():
    out = exact_dedup.run(cls_table(["x", "y", "x", "x"], ["pos", "neg", "neg", "pos"]), conflicts="drop_all")
    assert ids(out.kept) == ["t:2"]
    assert rejected(out) == [("t:1", "label_conflict:neg|pos"), ("t:3", "label_conflict:neg|pos"),
                             ("t:4", "label_conflict:neg|pos")]


def test_drop_all_lists_every_label_of_the_group():
    out = exact_dedup.run(cls_table(["x", "x", "x"], ["c", "a", "b"]))  # drop_all is the default
    assert rejected(out) == [(f"t:{i}", "label_conflict:a|b|c") for i in (1, 2, 3)]


def test_keep_majority_keeps_the_first_row_of_the_majority_label():
    out = exact_dedup.run(cls_table(["x", "x", "x", "x"], ["neg", "pos", "pos", "neg2"]), conflicts="keep_majority")
    assert ids(out.kept) == ["t:2"]
    assert rejected(out) == [("t:1", "label_conflict:neg|neg2|pos"), ("t:3", "duplicate_of:t:2"),
                             ("t:4", "label_conflict:neg|neg2|pos")]


def test_keep_majority_tie_goes_to_the_label_seen_first():
    out = exact_dedup.run(cls_table(["x", "x", "x", "x"], ["pos", "neg", "neg", "pos"]), conflicts="keep_majority")
    assert ids(out.kept) == ["t:1"]
    assert rejected(out) == [("t:2", "label_conflict:neg|pos"), ("t:3", "label_conflict:neg|pos"),
                             ("t:4", "duplicate_of:t:1")]
    swapped = exact_dedup.run(cls_table(["x", "x", "x", "x"], ["neg", "pos", "pos", "neg"]), conflicts="keep_majority")
    assert ids(swapped.kept) == ["t:1"] and swapped.kept.column("label").to_pylist() == ["neg"]


def test_keep_first_keeps_the_label_of_the_first_copy_even_in_a_minority():
    out = exact_dedup.run(cls_table(["x", "x", "x", "x"], ["neg", "pos", "pos", "neg"]), conflicts="keep_first")
    assert ids(out.kept) == ["t:1"]
    assert rejected(out) == [("t:2", "label_conflict:neg|pos"), ("t:3", "label_conflict:neg|pos"),
                             ("t:4", "duplicate_of:t:1")]


def test_conflicts_are_decided_after_folding():
    out = exact_dedup.run(cls_table(["Good", "good", "GOOD"], ["pos", "pos", "neg"]), fold=["case"],
                          conflicts="keep_majority")
    assert ids(out.kept) == ["t:1"]
    assert rejected(out) == [("t:2", "duplicate_of:t:1"), ("t:3", "label_conflict:neg|pos")]


# --- bio rows ---

def test_bio_rows_are_deduplicated_by_their_token_sequence():
    table = bio_table([["EU", "rejects"], ["EU", "rejects"], ["EU rejects"], ["EU", "rejects", "it"]],
                      [["B-ORG", "O"], ["B-ORG", "O"], ["O"], ["B-ORG", "O", "O"]])
    out = exact_dedup.run(table)
    assert ids(out.kept) == ["s:1", "s:3", "s:4"]  # joining tokens cannot make two sequences equal
    assert rejected(out) == [("s:2", "duplicate_of:s:1")]


def test_bio_rows_with_the_same_tokens_and_different_tags_conflict():
    table = bio_table([["Paris", "Hilton"], ["Paris", "Hilton"], ["Paris", "Hilton"]],
                      [["B-PER", "I-PER"], ["B-LOC", "B-ORG"], ["B-PER", "I-PER"]])
    out = exact_dedup.run(table)
    assert ids(out.kept) == []
    assert rejected(out) == [(f"s:{i}", "label_conflict:B-LOC B-ORG|B-PER I-PER") for i in (1, 2, 3)]
    majority = exact_dedup.run(table, conflicts="keep_majority")
    assert ids(majority.kept) == ["s:1"]
    assert rejected(majority) == [("s:2", "label_conflict:B-LOC B-ORG|B-PER I-PER"), ("s:3", "duplicate_of:s:1")]


def test_bio_fold_case_applies_to_tokens():
    table = bio_table([["The", "EU"], ["the", "eu"]], [["O", "B-ORG"], ["O", "B-ORG"]])
    assert rejected(exact_dedup.run(table)) == []
    assert rejected(exact_dedup.run(table, fold=["case"])) == [("s:2", "duplicate_of:s:1")]


# --- in a pipeline: copies in other batches, and the ledger ---

RECORDS = [{"text": t, "label": lab} for t, lab in [
    ("a", "p"), ("b", "p"), ("c", "n"), ("a", "p"), ("d", "n"), ("B", "p"), ("e", "p"), ("c", "p"),
    ("f", "n"), ("a", "p"), ("g", "n"), ("c", "n"), ("h", "p"), ("d", "n"), ("i", "n"), ("e ", "p")]]


@pytest.mark.parametrize("conflicts", ["drop_all", "keep_majority", "keep_first"])
def test_copies_across_batches_give_the_same_result_as_in_memory(workdir, conflicts):
    write_jsonl(workdir / "in.jsonl", RECORDS)
    with_ = {"fold": ["case", "whitespace"], "conflicts": conflicts}
    pipeline = parse_pipeline({"name": "d", "nodes": {
        "raw": {"uses": "read_jsonl", "with": {"path": "in.jsonl", "batch_rows": 3}},
        "unique": {"uses": "exact_dedup", "input": "raw", "with": with_}}})
    runner = Runner(pipeline, "cache", batch_rows=2)
    reports = {r.node: r for r in runner.run()}
    assert len(runner.cache("raw").parts()) >= 1 and runner.output("raw").num_rows == len(RECORDS)

    whole = exact_dedup.run(runner.output("raw"), **with_)
    assert ids(runner.output("unique")) == ids(whole.kept)
    assert sorted(zip(ids(runner.rejects("unique")), runner.rejects("unique").column("reason").to_pylist())) \
        == sorted(rejected(whole))
    assert ("in.jsonl:10", "duplicate_of:in.jsonl:1") in rejected(whole)  # the copies are batches apart

    ledger = reports["unique"].ledger
    assert ledger.rows_in == len(RECORDS) == ledger.rows_out + ledger.dropped_total - ledger.added
    assert ledger.rows_out == len(ids(whole.kept)) and ledger.added == 0
    assert set(ledger.dropped) <= {"duplicate_of", "label_conflict"}


def test_pipeline_ledger_counts_drops_by_reason_code(workdir):
    write_jsonl(workdir / "in.jsonl", RECORDS)
    pipeline = parse_pipeline({"name": "d", "nodes": {
        "raw": {"uses": "read_jsonl", "with": {"path": "in.jsonl", "batch_rows": 5}},
        "unique": {"uses": "exact_dedup", "input": "raw"}}})
    runner = Runner(pipeline, "cache", batch_rows=4)
    ledger = {r.node: r for r in runner.run()}["unique"].ledger
    # exact text: a x3 (same label), c x3 (n, p, n -> conflict), d x2; B, e and 'e ' differ from b, e
    assert dict(ledger.dropped) == {"duplicate_of": 3, "label_conflict": 3}
    assert (ledger.rows_in, ledger.rows_out) == (16, 10)
    reasons = dict(zip(ids(runner.rejects("unique")), runner.rejects("unique").column("reason").to_pylist()))
    assert reasons == {"in.jsonl:4": "duplicate_of:in.jsonl:1", "in.jsonl:10": "duplicate_of:in.jsonl:1",
                       "in.jsonl:14": "duplicate_of:in.jsonl:5", "in.jsonl:3": "label_conflict:n|p",
                       "in.jsonl:8": "label_conflict:n|p", "in.jsonl:12": "label_conflict:n|p"}
