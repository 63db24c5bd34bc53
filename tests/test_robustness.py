"""The perturbation suite and out-of-domain detection (dataprep/robustness.py)."""
from __future__ import annotations

import random

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from dataprep import robustness as R


def test_each_text_perturbation_changes_text_the_way_it_says():
    rng = lambda: random.Random(0)  # noqa: E731
    text = "这家酒店的房间很干净,服务也好!"
    assert len(R.char_insert(text, rng())) == len(text) + 2  # one edit per 10 characters, 16 chars -> 2
    assert len(R.char_delete(text, rng())) == len(text) - 2
    swapped = R.char_swap(text, rng())
    assert sorted(swapped) == sorted(text) and swapped != text
    assert R.width("Room 101, ok!", rng()) == "Ｒｏｏｍ\u3000１０１，\u3000ｏｋ！"
    assert R.width(R.width("Room 101, ok!", rng()), rng()) == "Room 101, ok!"
    assert R.punctuation(text, rng()) == "这家酒店的房间很干净，服务也好！"
    assert R.whitespace("abcdefghij", rng()).replace(" ", "") == "abcdefghij"
    assert " " in R.whitespace("abcdefghij", rng())
    typoed = R.typo("the room was clean", rng())
    assert typoed != "the room was clean" and len(typoed) == len("the room was clean")
    assert all(a == b or b in R.NEIGHBOURS[a] for a, b in zip("the room was clean", typoed))
    assert R.typo("酒店很好", rng()) == "酒店很好"  # no Latin letter, nothing to mistype


def test_a_rows_edits_do_not_depend_on_the_other_rows():
    texts = ["first review text", "second review text", "third one"]
    with_others = R.perturb_texts(texts, "char_swap", seed=5)
    assert R.perturb_texts(texts, "char_swap", seed=5) == with_others  # seeded
    assert R.perturb_texts(texts, "char_swap", seed=6) != with_others
    assert with_others[0] == R.perturb_texts(texts[:1], "char_swap", seed=5)[0]  # the rows after it: no matter


def test_entity_swap_keeps_spans_and_types_aligned_with_the_new_mentions():
    tokens = [["张", "三", "去", "北", "京"], ["李", "四", "在", "上", "海", "市"]]
    tags = [["B-PER", "I-PER", "O", "B-LOC", "I-LOC"], ["B-PER", "I-PER", "O", "B-LOC", "I-LOC", "I-LOC"]]
    new_tokens, new_tags = R.swap_entities(tokens, tags, seed=1)
    assert new_tokens[0] == ["李", "四", "去", "上", "海", "市"]
    assert new_tags[0] == ["B-PER", "I-PER", "O", "B-LOC", "I-LOC", "I-LOC"]
    assert new_tokens[1] == ["张", "三", "在", "北", "京"] and len(new_tags[1]) == 5


def test_token_perturbations_never_change_the_number_of_tokens():
    sentences = [["The", "hotel", ",", "Paris", "!"], ["好", "，", "OK"]]
    for name in R.TOKEN_PERTURBATIONS:
        out = R.perturb_tokens(sentences, name, seed=3)
        assert [len(s) for s in out] == [5, 3] and all(t for s in out for t in s)


def test_auroc_and_fpr_on_scores_with_a_known_answer():
    inside, outside = np.array([0.9, 0.8, 0.7, 0.6]), np.array([0.5, 0.4, 0.65])
    assert R.auroc(inside, outside) == pytest.approx(11 / 12)  # 0.6 loses to 0.65 once
    assert R.auroc(np.array([1.0, 1.0]), np.array([1.0])) == 0.5  # ties count half
    assert R.fpr_at_95_tpr(inside, outside) == pytest.approx(1 / 3)  # threshold 0.6 accepts 0.65
    assert R.auroc(outside, inside) == pytest.approx(1 / 12)


torch = pytest.importorskip("torch")
pytest.importorskip("peft")
from test_predict import cls_adapter  # noqa: E402,F401  (a fixture)
from test_train import base_model, cls_rows  # noqa: E402,F401


def test_the_suite_and_ood_run_on_a_real_adapter(cls_adapter):  # noqa: F811
    from dataprep.predict import Adapter
    adapter = Adapter.load(cls_adapter)
    test = cls_rows(200).filter(pc.equal(cls_rows(200)["split"], "test"))
    report = R.robustness(adapter, test, seed=13)
    assert report["metric"] == "accuracy" and report["clean"] == adapter.evaluate(test)["accuracy"]
    assert set(report["perturbations"]) == set(R.TEXT_PERTURBATIONS)
    for entry in report["perturbations"].values():
        assert entry["drop"] == pytest.approx(report["clean"] - entry["accuracy"])
        assert 0 <= entry["rows_changed"] <= test.num_rows
    assert report["perturbations"]["char_swap"]["rows_changed"] >= 0.9 * test.num_rows  # equal neighbours stay
    assert report["perturbations"]["typo"]["rows_changed"] == 0  # Chinese text: no Latin letter
    outside = pa.table({"text": ["the quick brown fox", "lorem ipsum dolor", "1 2 3 4 5 6"]})
    scores = R.ood(adapter, test, outside)
    assert scores["out_rows"] == 3 and set(scores) >= {"msp", "energy"}
    assert all(0 <= scores[k]["auroc"] <= 1 and 0 <= scores[k]["fpr_at_95_tpr"] <= 1 for k in ("msp", "energy"))
