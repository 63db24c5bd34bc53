"""The baselines every adapter report carries: trained on the training rows, scored on the test rows."""
from __future__ import annotations

from dataprep.train import baselines as B


def test_classification_baselines_score_the_test_rows():
    train_x = ["great room", "great view", "great bed", "awful room", "awful noise", "great staff"]
    train_y = ["pos", "pos", "pos", "neg", "neg", "pos"]
    test_x, test_y = ["great price", "awful bed", "awful staff"], ["pos", "neg", "neg"]
    out = B.classification(train_x, train_y, test_x, test_y, ["neg", "pos"])
    assert out["majority"] == {"accuracy": 1 / 3, "macro_f1": 0.25}  # 'pos', the training majority
    assert out["tfidf_logreg"] == {"accuracy": 1.0, "macro_f1": 1.0}  # character n-grams: great / awful


def test_one_training_class_falls_back_to_the_majority():
    out = B.classification(["a", "b"], ["x", "x"], ["c"], ["y"], ["x", "y"])
    assert out["tfidf_logreg"]["accuracy"] == 0.0 and out["majority"]["accuracy"] == 0.0


def test_entity_baselines_are_all_o_and_the_most_frequent_tag_per_token():
    train_tokens = [["张", "三", "在", "北", "京"], ["北", "京", "很", "大"], ["张", "北"]]
    train_tags = [["B-PER", "I-PER", "O", "B-LOC", "I-LOC"], ["B-LOC", "I-LOC", "O", "O"], ["B-PER", "B-LOC"]]
    test_tokens, test_tags = [["北", "京", "的", "张", "三"]], [["B-LOC", "I-LOC", "O", "B-PER", "I-PER"]]
    out = B.entities(train_tokens, train_tags, test_tokens, test_tags)
    assert out["all_o"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 2}
    assert out["most_frequent_tag"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 2}


def test_ties_between_tags_go_to_the_tag_that_sorts_first():
    out = B.entities([["a"], ["a"]], [["B-X"], ["B-Y"]], [["a"]], [["B-X"]])
    assert out["most_frequent_tag"]["f1"] == 1.0  # B-X < B-Y, whatever the row order
    out = B.entities([["a"], ["a"]], [["B-Y"], ["B-X"]], [["a"]], [["B-X"]])
    assert out["most_frequent_tag"]["f1"] == 1.0


def test_the_verdict_warns_only_when_the_adapter_does_not_beat_the_strong_baseline():
    baselines = {"majority": {"macro_f1": 0.2}, "tfidf_logreg": {"macro_f1": 0.8}}
    assert B.verdict("seq_cls", {"macro_f1": 0.9}, baselines) is None
    assert B.verdict("seq_cls", {"macro_f1": 0.8}, baselines) == (
        "the adapter does not beat the tfidf_logreg baseline on the same test rows (macro-F1 0.800 vs 0.800): a "
        "stronger base model, more data or more epochs may help; the baseline may be the better model here")
    assert "entity F1 0.100 vs 0.500" in B.verdict("token_cls", {"f1": 0.1}, {"most_frequent_tag": {"f1": 0.5}})
    assert B.verdict("causal_lm", {"perplexity": 3.0}, {}) is None
