"""The adapter in use (dataprep/predict.py and `dataprep predict` / `dataprep eval`): loaded from a moved copy
of its directory, it scores the test rows as the trainer did, and predicts labels, probabilities and tags."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("peft")

from click.testing import CliRunner  # noqa: E402
from test_train import base_model, cls_rows, params  # noqa: E402,F401  (base_model is a fixture)
from testkit import write_jsonl  # noqa: E402

from dataprep.cli import main  # noqa: E402
from dataprep.predict import Adapter  # noqa: E402
from dataprep.schema import BIO  # noqa: E402
from dataprep.train.lora import Data, train  # noqa: E402


def ner_rows(n: int = 60) -> pa.Table:
    rng = np.random.default_rng(3)
    names, places, filler = ["张三", "李四"], ["北京", "上海"], ["去", "了", "很", "好"]
    tokens, tags = [], []
    for _ in range(n):
        name, place = rng.choice(names), rng.choice(places)
        words = [*name, *rng.choice(filler, 2), *place]
        tokens.append(words)
        tags.append(["B-PER", "I-PER", "O", "O", "B-LOC", "I-LOC"])
    table = pa.table({"id": [f"n{i}" for i in range(n)], "tokens": tokens, "tags": tags, "lang": ["zh"] * n,
                      "source": ["t"] * n}, schema=BIO)
    return table.append_column("split", pa.array((["train"] * 3 + ["validation", "test"]) * (n // 5)))


@pytest.fixture(scope="module")
def cls_adapter(base_model, tmp_path_factory):  # noqa: F811
    root = tmp_path_factory.mktemp("cls")
    train(params(base_model), Data.from_tables([cls_rows()], "auto"), root / "trained")
    shutil.copytree(root / "trained", root / "moved")  # used from a copy: nothing may point back
    shutil.rmtree(root / "trained")
    return root / "moved"


def test_a_moved_adapter_scores_the_test_rows_as_the_trainer_did(cls_adapter):
    adapter = Adapter.load(cls_adapter)
    test = cls_rows().filter(pc.equal(cls_rows()["split"], "test"))
    ours, trained = adapter.evaluate(test), json.loads((cls_adapter / "metrics.json").read_text())
    assert ours["rows"] == test.num_rows and ours["unseen_labels"] == []
    assert (ours["accuracy"], ours["macro_f1"], ours["confusion"]) == \
           (trained["accuracy"], trained["macro_f1"], trained["confusion"])


def test_predictions_carry_a_label_and_each_labels_probability_whatever_the_batch(cls_adapter):
    adapter = Adapter.load(cls_adapter)
    table = cls_rows(40)
    one, many = adapter.predict_table(table, batch_size=1), adapter.predict_table(table, batch_size=32)
    assert one.column("pred_label").to_pylist() == many.column("pred_label").to_pylist()
    probs = many.column("probs").to_pylist()
    assert all(set(p) == {"neg", "pos"} and abs(sum(p.values()) - 1) < 1e-9 for p in probs)
    assert [max(p, key=p.get) for p in probs] == many.column("pred_label").to_pylist()
    assert many.column_names[:6] == table.column_names  # the input's columns, then the predictions


def test_tags_are_valid_bio2_one_per_token(base_model, tmp_path):  # noqa: F811
    train(params(base_model, epochs=2), Data.from_tables([ner_rows()], "auto"), tmp_path / "ner")
    adapter = Adapter.load(tmp_path / "ner")
    sentences = [["张", "三", "去", "北", "京"], ["好"], ["上", "海"] * 40]  # the last one longer than max_len
    tags, truncated = adapter.tag(sentences)
    assert [len(t) for t in tags] == [5, 1, 80]
    assert all(tag == "O" or tag[:2] in ("B-", "I-") for row in tags for tag in row)
    for row in tags:  # an I- always continues an entity of its type
        assert all(not t.startswith("I-") or row[k - 1][2:] == t[2:] and row[k - 1] != "O"
                   for k, t in enumerate(row) if k) and not row[0].startswith("I-")
    assert truncated[:2] == [0, 0] and truncated[2] > 0 and all(t == "O" for t in tags[2][-truncated[2]:])
    metrics = adapter.evaluate(ner_rows().filter(pc.equal(ner_rows()["split"], "test")))
    assert set(metrics) >= {"precision", "recall", "f1", "per_type", "rows"}


def test_predict_and_eval_commands_read_a_file_and_report(cls_adapter, workdir):
    rows = [{"text": t, "label": y} for t, y in zip(cls_rows(20)["text"].to_pylist(),
                                                     cls_rows(20)["label"].to_pylist())]
    write_jsonl(workdir / "new.jsonl", [*rows, "{broken", {"text": "房间很好", "label": "meh"}])
    cli = CliRunner()
    result = cli.invoke(main, ["predict", str(cls_adapter), "new.jsonl", "-o", "pred.jsonl"])
    assert result.exit_code == 0, result.output
    predicted = [json.loads(x) for x in (workdir / "pred.jsonl").read_text().splitlines()]
    assert len(predicted) == 21 and all(p["pred_label"] in ("neg", "pos") for p in predicted)
    rejects = [json.loads(x) for x in (workdir / "pred.jsonl.rejects.jsonl").read_text().splitlines()]
    assert [(r["id"], r["reason"]) for r in rejects] == [("new.jsonl:21", "malformed_json")]
    result = cli.invoke(main, ["eval", str(cls_adapter), "new.jsonl", "-o", "m.json"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("21 rows (1 rejected on reading): accuracy ")
    assert "labels the adapter never saw: meh" in result.output
    assert json.loads((workdir / "m.json").read_text())["rows"] == 21


def test_a_directory_that_is_no_adapter_is_one_line(workdir):
    (workdir / "empty").mkdir()
    write_jsonl(workdir / "x.jsonl", [{"text": "a", "label": "b"}])
    result = CliRunner().invoke(main, ["eval", "empty", "x.jsonl"])
    assert result.exit_code == 1 and result.output.startswith("Error: empty is not an adapter directory")


def test_eval_reports_robustness_and_ood_when_asked(cls_adapter, workdir):
    test = cls_rows(100).filter(pc.equal(cls_rows(100)["split"], "test"))
    write_jsonl(workdir / "test.jsonl", [{"text": t, "label": y} for t, y in
                                         zip(test["text"].to_pylist(), test["label"].to_pylist())])
    write_jsonl(workdir / "other.jsonl", [{"text": f"the weather report number {i}", "label": "x"}
                                          for i in range(15)])
    result = CliRunner().invoke(main, ["eval", str(cls_adapter), "test.jsonl", "--robustness", "--ood",
                                       "other.jsonl", "-o", "m.json"])
    assert result.exit_code == 0, result.output
    assert "char_swap" in result.output and "AUROC" in result.output
    saved = json.loads((workdir / "m.json").read_text())
    assert set(saved["robustness"]["perturbations"]) >= {"char_insert", "width", "typo"}
    assert saved["ood"]["out_rows"] == 15 and 0 <= saved["ood"]["msp"]["auroc"] <= 1


def test_predict_and_evaluate_run_as_nodes_on_the_test_rows(base_model, workdir):  # noqa: F811
    from dataprep.dag import parse_pipeline
    from dataprep.runner import Runner
    rows = cls_rows(120)
    write_jsonl(workdir / "in.jsonl", [{"text": t, "label": y} for t, y in
                                       zip(rows["text"].to_pylist(), rows["label"].to_pylist())])
    tuned = {"base_model": str(base_model), "lr": 5e-3, "epochs": 2, "batch_size": 8, "r": 4, "alpha": 8}
    doc = {"name": "use", "nodes": {
        "raw": {"uses": "read_jsonl", "with": {"path": "in.jsonl", "lang": "zh"}},
        "splits": {"uses": "split", "input": "raw", "with": {"val": 0.2, "test": 0.2}},
        "adapter": {"uses": "train_lora", "input": "splits", "with": tuned},
        "scored": {"uses": "predict", "input": "splits", "with": {"adapter": {"node": "adapter"},
                                                                 "only_split": "test"}},
        "ev": {"uses": "evaluate", "input": "splits", "with": {"adapter": {"node": "adapter"},
                                                              "only_split": "test"}}}}
    with pytest.warns(UserWarning):  # lr 5e-3 is outside the usual LoRA range, and the tiny adapter loses
        runner = Runner(parse_pipeline(doc), "runs")
        runner.run()
    scored = runner.output("scored")
    test = scored.filter(pc.equal(scored["split"], "test"))
    assert test.num_rows and all(label in ("neg", "pos") for label in test["pred_label"].to_pylist())
    trained = json.loads((runner.model_dir("adapter") / "metrics.json").read_text())
    evaluated = json.loads((runner.model_dir("ev") / "metrics.json").read_text())
    assert evaluated["rows"] == test.num_rows and evaluated["accuracy"] == trained["accuracy"]
    with pytest.raises(Exception, match="would touch validation and test rows"):
        parse_pipeline({**doc, "nodes": {**doc["nodes"], "scored": {
            "uses": "predict", "input": "splits", "with": {"adapter": {"node": "adapter"}}}}})
