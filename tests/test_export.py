"""`dataprep export` (dataprep/export.py): a merged adapter as ONNX (fp32 and INT8) that gives the adapter's
logits at any batch size and length, runs from its directory with onnxruntime and a tokenizer alone, and is
checked before it is written: a wrong graph is refused, an INT8 model that disagrees is counted."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pyarrow.compute as pc
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("peft")
ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")

from click.testing import CliRunner  # noqa: E402
from test_predict import ner_rows  # noqa: E402
from test_train import base_model, cls_rows, params  # noqa: E402,F401  (base_model is a fixture)
from testkit import write_jsonl  # noqa: E402
from transformers import AutoTokenizer  # noqa: E402

from dataprep import export as X  # noqa: E402
from dataprep.cli import main  # noqa: E402
from dataprep.errors import ConfigError  # noqa: E402
from dataprep.predict import Adapter  # noqa: E402
from dataprep.train.lora import Data, train  # noqa: E402

TEXTS = ["这个手机很好", "差", "房间服务很差失望退货" * 30]  # the last one longer than max_len: cut, not an error


def _test_split(table):
    return table.filter(pc.equal(table["split"], "test"))


@pytest.fixture(scope="module")
def cls_adapter(base_model, tmp_path_factory):  # noqa: F811
    out = tmp_path_factory.mktemp("cls") / "adapter"
    train(params(base_model), Data.from_tables([cls_rows()], "auto"), out)
    return out


@pytest.fixture(scope="module")
def cls_export(cls_adapter, tmp_path_factory):
    """Exported through the command, checked on the adapter's test rows written to a file."""
    root = tmp_path_factory.mktemp("cls_export")
    test = _test_split(cls_rows())
    write_jsonl(root / "test.jsonl", [{"text": t, "label": y} for t, y in zip(test["text"].to_pylist(),
                                                                              test["label"].to_pylist())])
    result = CliRunner().invoke(main, ["export", str(cls_adapter), "-o", str(root / "onnx"), "--format", "onnx",
                                       "--quantize", "int8", "--check-file", str(root / "test.jsonl")])
    assert result.exit_code == 0, result.output
    return root / "onnx", result.output


@pytest.fixture(scope="module")
def ner_export(base_model, tmp_path_factory):  # noqa: F811
    root = tmp_path_factory.mktemp("ner")
    train(params(base_model, epochs=2), Data.from_tables([ner_rows()], "auto"), root / "adapter")
    check = X.export(root / "adapter", root / "onnx", quantize="int8", check_rows=_test_split(ner_rows()),
                     check_source="test rows")
    return root / "adapter", root / "onnx", check


def _session(path):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def test_the_export_runs_with_onnxruntime_and_its_tokenizer_alone_at_any_batch_and_length(cls_adapter, cls_export):
    out, _ = cls_export
    assert {"model.onnx", "model.int8.onnx", "tokenizer.json", "tokenizer_config.json", "config.json",
            "label_map.json", "check.json", "README.md"} <= {p.name for p in out.iterdir()}
    tok = AutoTokenizer.from_pretrained(out)  # nothing of dataprep below: the files are enough
    session = _session(out / "model.onnx")
    adapter = Adapter.load(cls_adapter)
    for batch in (TEXTS[:1], TEXTS):  # batch 1 and 3, lengths never traced; the tokenizer cuts at max_len
        enc = tok(batch, truncation=True, padding=True, return_tensors="np")
        assert enc["input_ids"].shape[1] <= adapter.max_len
        logits = session.run(["logits"], {"input_ids": enc["input_ids"].astype(np.int64),
                                          "attention_mask": enc["attention_mask"].astype(np.int64)})[0]
        np.testing.assert_allclose(logits, adapter.logits(batch), atol=1e-4, rtol=1e-4)
    labels = json.loads((out / "label_map.json").read_text())
    assert labels == json.loads((cls_adapter / "label_map.json").read_text())
    assert json.loads((out / "config.json").read_text())["id2label"] == {"0": "neg", "1": "pos"}


def test_check_json_says_what_was_checked_and_what_was_found(cls_adapter, cls_export):
    out, printed = cls_export
    check = json.loads((out / "check.json").read_text())
    rows = _test_split(cls_rows()).num_rows
    assert check["rows"]["source"] == "file" and check["rows"]["rows"] == rows and check["rows"]["labelled"]
    assert check["fp32"]["ok"] and check["fp32"]["max_abs_logit_diff"] < X.ATOL
    assert check["fp32"]["tolerance"]["atol"] == X.ATOL and check["fp32"]["agree"] == rows
    assert all(shape != [2, 7] for shape in check["fp32"]["shapes_run"])  # not the traced shape
    assert check["merge"]["ok"] and check["merge"]["max_abs_logit_diff"] < X.ATOL
    q = check["int8"]
    assert q["rows"] == rows and q["agree"] + q["differ"] == rows and q["share"] == q["agree"] / rows
    trained = json.loads((cls_adapter / "metrics.json").read_text())  # scored on these very rows by the trainer
    for variant in ("torch_adapter", "torch_merged", "onnx_fp32"):
        assert check["scores"][variant]["accuracy"] == trained["accuracy"]
        assert check["scores"][variant]["macro_f1"] == trained["macro_f1"]
    assert f"checked on {rows} rows of" in printed and "INT8: predictions agree with torch on" in printed


def test_int8_quantizes_every_projection_and_is_smaller(cls_export):
    out, _ = cls_export
    fp32, int8 = onnx.load(out / "model.onnx"), onnx.load(out / "model.int8.onnx")
    ops32, ops8 = [n.op_type for n in fp32.graph.node], [n.op_type for n in int8.graph.node]
    # GPT-2's Conv1D would be Gemm, which dynamic quantization skips: rewritten as Linear, it is MatMul
    assert "Gemm" not in ops32 and "Gemm" not in ops8
    # 2 blocks x (qkv, attention out, mlp in, mlp out) + the head; the attention's own MatMuls stay fp32
    assert ops8.count("MatMulInteger") == 9
    assert (out / "model.int8.onnx").stat().st_size < 0.8 * (out / "model.onnx").stat().st_size


def test_token_classification_exports_logits_per_piece_and_the_same_tags(ner_export):
    adapter_dir, out, check = ner_export
    assert check["task"] == "token_cls" and check["fp32"]["ok"] and check["int8"]["rows"] == 12
    adapter = Adapter.load(adapter_dir)
    sentences = [["张", "三", "去", "北", "京"], ["好"], ["上", "海"] * 40]
    enc = adapter.tok(sentences, is_split_into_words=True, truncation=True, max_length=adapter.max_len,
                      padding=True, return_tensors="pt")
    logits = _session(out / "model.onnx").run(["logits"], {"input_ids": enc["input_ids"].numpy(),
                                                           "attention_mask": enc["attention_mask"].numpy()})[0]
    with torch.inference_mode():
        expected = adapter.model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).logits.numpy()
    real = enc["attention_mask"].numpy().astype(bool)
    np.testing.assert_allclose(logits[real], expected[real], atol=1e-4, rtol=1e-4)
    served = X.load_predictor(out, variant="fp32").predict(sentences)
    tags, truncated = adapter.tag(sentences)
    assert [p["tags"] for p in served] == tags and [p["truncated_tokens"] for p in served] == truncated


def test_the_serving_predictor_gives_the_adapters_labels_and_prefers_a_checked_int8(cls_adapter, cls_export):
    out, _ = cls_export
    check = json.loads((out / "check.json").read_text())
    auto = X.load_predictor(out)
    assert auto.model_file == ("model.int8.onnx" if check["int8"]["ok"] else "model.onnx")
    fp32 = X.load_predictor(out, variant="fp32").predict(TEXTS)
    probs = Adapter.load(cls_adapter).probabilities(TEXTS)
    assert [p["label"] for p in fp32] == [["neg", "pos"][i] for i in probs.argmax(1)]
    np.testing.assert_allclose([[p["probs"]["neg"], p["probs"]["pos"]] for p in fp32], probs, atol=1e-5)
    assert X.load_predictor(out).predict([]) == []


def test_an_export_that_does_not_match_torch_is_refused_and_nothing_is_written(cls_adapter, tmp_path,
                                                                               monkeypatch):
    rewrite = X.linear_projections

    def and_a_wrong_head(model):  # an export bug: the graph's head differs from the model's by a little
        rewrite(model)
        with torch.no_grad():
            model.score.weight[0, :3] += 0.01
    monkeypatch.setattr(X, "linear_projections", and_a_wrong_head)
    with pytest.raises(X.ExportError, match=r"ONNX fp32 vs merged torch: max \|logit diff\| .* outside the "
                                            r"tolerance.*nothing written"):
        X.export(cls_adapter, tmp_path / "out", quantize="int8")
    assert list(tmp_path.iterdir()) == []  # no directory, no scratch left behind


def test_int8_predictions_that_differ_are_counted_and_named(cls_adapter, tmp_path, monkeypatch):
    def flipped(src, dst):  # an "INT8" model whose logits are negated: every prediction changes
        model = onnx.load(src)
        for node in model.graph.node:
            node.output[:] = ["raw" if o == "logits" else o for o in node.output]
        model.graph.node.append(onnx.helper.make_node("Neg", ["raw"], ["logits"]))
        onnx.save(model, dst)
    monkeypatch.setattr(X, "quantize_int8", flipped)
    check = X.export(cls_adapter, tmp_path / "out", quantize="int8")
    q = check["int8"]
    assert check["rows"]["source"] == "sampled" and q["rows"] == X.SAMPLED_ROWS
    assert not q["ok"] and q["agree"] == 0 and q["differ"] == q["rows"]  # two labels: negated, every argmax flips
    assert q["differing_rows"] == list(range(20))  # the first 20 of them, by row index
    assert f"below the 99% goal, {q['differ']} rows differ" in "\n".join(X.summary(check, tmp_path / "out"))
    assert (tmp_path / "out" / "model.int8.onnx").is_file()  # written all the same: the numbers say how it does


def test_the_output_directory_is_never_overwritten_by_surprise(cls_adapter, cls_export, tmp_path):
    out, _ = cls_export
    cli = CliRunner()
    result = cli.invoke(main, ["export", str(cls_adapter), "-o", str(out)])
    assert result.exit_code == 1 and result.output == f"Error: {out} holds an earlier export: --overwrite " \
                                                      "replaces it\n"
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    result = cli.invoke(main, ["export", str(cls_adapter), "-o", str(tmp_path / "mine"), "--overwrite"])
    assert result.exit_code == 1 and "is not an earlier export" in result.output
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


def test_a_causal_lm_adapter_is_refused_in_one_line(cls_adapter, tmp_path):
    shutil.copytree(cls_adapter, tmp_path / "lm")
    (tmp_path / "lm" / "label_map.json").write_text(json.dumps({"task": "causal_lm", "labels": []}))
    result = CliRunner().invoke(main, ["export", str(tmp_path / "lm"), "-o", str(tmp_path / "out")])
    assert result.exit_code == 1 and result.output.count("\n") == 1
    assert "export supports seq_cls and token_cls adapters, not causal_lm" in result.output
    with pytest.raises(ConfigError, match="not an adapter directory"):
        X.export(tmp_path, tmp_path / "out2")
