"""The LoRA trainer: adapters that plain PEFT loads, exact resume, the three tasks, and config checks."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pyarrow as pa
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("peft")

from dataprep.dag import parse_pipeline  # noqa: E402
from dataprep.errors import ConfigError  # noqa: E402
from dataprep.schema import BIO, CLS  # noqa: E402
from dataprep.train.lora import Data, LoraTrainParams, batch_order, train  # noqa: E402
from dataprep.train.tasks import TASKS  # noqa: E402

GOOD, BAD = "好 棒 喜欢 推荐 满意".split(), "差 烂 失望 退货 糟糕".split()
FILLER = "这个 手机 酒店 房间 服务 外卖 快递 屏幕 很 真 的 了".split()


def cls_rows(n: int = 120, seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    texts, labels, splits = [], [], []
    for i in range(n):
        label = "pos" if i % 3 else "neg"
        words = list(rng.choice(FILLER, 4)) + [rng.choice(GOOD if label == "pos" else BAD)]
        texts.append("".join(rng.permutation(words)))
        labels.append(label)
        splits.append("train" if i % 5 < 3 else "validation" if i % 5 == 3 else "test")
    table = pa.table({"id": [f"r{i}" for i in range(n)], "text": texts, "label": labels, "lang": ["zh"] * n,
                      "source": ["t"] * n}, schema=CLS)
    return table.append_column("split", pa.array(splits))


@pytest.fixture(scope="module")
def base_model(tmp_path_factory):
    """A tiny GPT-2 and its tokenizer, built from a config and a sentencepiece model trained here (offline)."""
    from transformers import GPT2Config, GPT2LMHeadModel

    from dataprep.models.tokenizer import TokenizerParams, train_tokenizer
    root = tmp_path_factory.mktemp("base") / "model"
    train_tokenizer.impl(lambda: iter([cls_rows(300)]), TokenizerParams(vocab_size=400), root)
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(root)
    torch.manual_seed(0)
    GPT2LMHeadModel(GPT2Config(vocab_size=len(tok), n_positions=64, n_embd=32, n_layer=2, n_head=2,
                               pad_token_id=tok.pad_token_id)).save_pretrained(root)
    return root


def params(base, **kw) -> LoraTrainParams:
    defaults = dict(base_model=str(base), lr=5e-3, epochs=3, batch_size=8, r=4, alpha=8, save_every=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # lr 5e-3 is outside the usual LoRA range on purpose: tiny model
        return LoraTrainParams(**{**defaults, **kw})


def test_adapter_loads_with_plain_peft_and_gives_the_same_logits(base_model, tmp_path):
    model, tok, _ = train(params(base_model), Data.from_tables([cls_rows()], "auto"), tmp_path / "out")
    texts = ["这个手机很好", "酒店房间真差"]
    model.eval()
    with torch.inference_mode():
        enc = tok(texts, padding=True, return_tensors="pt")
        ours = model(**enc).logits.tolist()
    moved = tmp_path / "elsewhere" / "adapter"
    shutil.copytree(tmp_path / "out", moved)  # a copy, moved away from the base it was trained on
    shutil.rmtree(tmp_path / "out")
    script = textwrap.dedent(f"""
        import json, sys, torch
        from pathlib import Path
        from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer
        from peft import PeftModel
        adapter = Path({str(moved)!r})
        tok = AutoTokenizer.from_pretrained(adapter)
        config = AutoConfig.from_pretrained(adapter)
        base = AutoModelForSequenceClassification.from_pretrained(adapter / "base", config=config)
        model = PeftModel.from_pretrained(base, adapter).eval()
        with torch.inference_mode():
            enc = tok({texts!r}, padding=True, return_tensors="pt")
            print(json.dumps(model(**enc).logits.tolist()))
        print(json.dumps(model.config.id2label))
        assert not any(m.startswith("dataprep") for m in sys.modules), "dataprep was imported"
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                         cwd=tmp_path / "elsewhere")
    *_, logits, id2label = out.stdout.strip().splitlines()
    assert json.loads(id2label) == {"0": "neg", "1": "pos"}
    np.testing.assert_allclose(json.loads(logits), ours, rtol=1e-5, atol=1e-6)
    saved = sorted(p.name for p in moved.iterdir())
    for name in ("adapter_config.json", "adapter_model.safetensors", "base", "config.json", "label_map.json",
                 "metrics.json", "report.md", "tokenizer.json"):
        assert name in saved
    assert json.loads((moved / "adapter_config.json").read_text())["base_model_name_or_path"] == "base"


class Interrupt(Exception):
    pass


def test_an_interrupted_run_resumes_to_the_same_weights(base_model, tmp_path):
    data = Data.from_tables([cls_rows()], "auto")
    p = params(base_model, epochs=2, grad_accum=2, dropout=0.1)
    full, _, _ = train(p, data, tmp_path / "full", checkpoints=tmp_path / "ck_full")

    def stop_at_step_5(info):
        if info["step"] == 5:
            raise Interrupt
    with pytest.raises(Interrupt):
        train(p, data, tmp_path / "cut", checkpoints=tmp_path / "ck_cut", progress=stop_at_step_5)
    assert json.loads((tmp_path / "ck_cut" / "last" / "state.json").read_text())["step"] == 4
    resumed, _, _ = train(p, data, tmp_path / "cut", checkpoints=tmp_path / "ck_cut")
    a, b = full.state_dict(), resumed.state_dict()
    trained = [k for k in a if "lora_" in k or "modules_to_save" in k]
    assert trained and all(torch.equal(a[k], b[k]) for k in trained)


class _RunsCode:
    """A pickle that runs code when it is loaded: what a tampered checkpoint in the cache could hold."""

    def __reduce__(self):
        return (exec, ("import pathlib; pathlib.Path('PWNED').write_text('ran')",))


def test_a_checkpoint_is_loaded_without_running_pickled_code(base_model, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    data = Data.from_tables([cls_rows()], "auto")
    p = params(base_model, epochs=1, save_every=1)

    def stop_at_step_2(info):
        if info["step"] == 2:
            raise Interrupt
    with pytest.raises(Interrupt):
        train(p, data, tmp_path / "cut", checkpoints=tmp_path / "ck", progress=stop_at_step_2)
    state = tmp_path / "ck" / "last" / "trainer_state.pt"
    torch.save({"optimizer": _RunsCode()}, state)
    with pytest.raises(Exception, match="[Ww]eights only load failed|Unsupported global"):
        train(p, data, tmp_path / "cut", checkpoints=tmp_path / "ck")
    assert not (tmp_path / "PWNED").exists()


def test_training_beats_the_majority_baseline_and_writes_metrics(base_model, tmp_path):
    train(params(base_model, epochs=6), Data.from_tables([cls_rows(300)], "auto"), tmp_path / "o")
    metrics = json.loads((tmp_path / "o" / "metrics.json").read_text())
    assert metrics["split"] == "test"
    assert metrics["accuracy"] > metrics["majority_baseline"]["accuracy"]
    assert set(metrics["per_class"]) == {"neg", "pos"} and "confusion" in metrics
    cost = json.loads((tmp_path / "o" / "efficiency.json").read_text())  # measured: kept apart from metrics
    assert cost["latency_ms_batch1"] > 0 and cost["latency_ms_batch32"] > 0
    assert cost["process_peak_rss_mb"] > 0 and cost["train_seconds"] > 0
    report = (tmp_path / "o" / "report.md").read_text()
    assert "latency_ms_batch1" not in metrics and "ms/sample" not in report
    assert set(metrics["baselines"]) == {"majority", "tfidf_logreg"}
    strong = metrics["baselines"]["tfidf_logreg"]
    assert f"| baseline: tfidf_logreg | {strong['accuracy']:.3f} | {strong['macro_f1']:.3f} |" in report


def test_token_classification_labels_the_first_piece_of_each_word(base_model, tmp_path):
    rng = np.random.default_rng(1)
    tokens, tags, splits = [], [], []
    for i in range(60):
        words = [str(w) for w in rng.choice(FILLER, 5)]
        t = ["O"] * 5
        k = int(rng.integers(0, 4))
        words[k], words[k + 1], t[k], t[k + 1] = "北京", "上海", "B-LOC", "I-LOC"
        tokens.append(words), tags.append(t), splits.append("train" if i % 4 else "test")
    table = pa.table({"id": [str(i) for i in range(60)], "tokens": tokens, "tags": tags, "lang": ["zh"] * 60,
                      "source": ["t"] * 60}, schema=BIO).append_column("split", pa.array(splits))
    train(params(base_model, epochs=6), Data.from_tables([table], "auto"), tmp_path / "ner")
    metrics = json.loads((tmp_path / "ner" / "metrics.json").read_text())
    assert {"precision", "recall", "f1", "per_type"} <= set(metrics)
    assert metrics["baselines"]["all_o"]["f1"] == 0.0
    assert metrics["baselines"]["most_frequent_tag"]["f1"] == 1.0  # 北京 and 上海 are always the entity
    assert "| baseline: most_frequent_tag | 1.000 | 1.000 | 1.000 |" in (tmp_path / "ner" / "report.md").read_text()
    assert json.loads((tmp_path / "ner" / "label_map.json").read_text()) == {
        "task": "token_cls", "labels": ["B-LOC", "I-LOC", "O"]}


def test_token_targets_sit_on_the_first_content_piece_of_each_word_only(base_model):
    from dataprep.models.load import load_tokenizer
    tok = load_tokenizer(str(base_model))
    words = ["北京欢迎你", "好", "上海"]  # unseen characters fall back to bytes: several pieces per word
    data = Data(TASKS["token_cls"], {"train": [words]}, {"train": [["B-LOC", "O", "B-LOC"]]}, ["B-LOC", "O"])
    [(ids, target)] = data.encode(tok, "train", 64)
    word_ids = tok([words], is_split_into_words=True, truncation=True, max_length=64).word_ids(0)
    pieces = tok.convert_ids_to_tokens(ids)
    firsts = [next(k for k, w_ in enumerate(word_ids) if w_ == w and pieces[k] != "▁") for w in range(3)]
    assert word_ids.count(0) > 1 and word_ids.count(2) > 1  # the case under test: words of several pieces
    assert [target[k] for k in firsts] == [0, 1, 0]
    assert all(t == -100 for k, t in enumerate(target) if k not in firsts) and len(target) == len(ids)


def test_the_tag_goes_on_the_piece_that_carries_the_word_never_on_a_bare_boundary_marker(base_model):
    """The DAG-built sentencepiece tokenizer splits a Chinese character given as a word into ['▁', '北']."""
    from dataprep.models.load import load_tokenizer
    tok = load_tokenizer(str(base_model))
    words = ["北", "京", "好"]
    enc = tok([words], is_split_into_words=True, truncation=True, max_length=64)
    pieces = tok.convert_ids_to_tokens(enc["input_ids"][0])
    word_ids = enc.word_ids(0)
    assert pieces[word_ids.index(0)] == "▁"  # the case under test
    data = Data(TASKS["token_cls"], {"train": [words]}, {"train": [["B-LOC", "I-LOC", "O"]]},
                ["B-LOC", "I-LOC", "O"])
    [(_, target)] = data.encode(tok, "train", 64)
    tagged = [(pieces[k], t) for k, t in enumerate(target) if t != -100]
    assert [t for _, t in tagged] == [0, 1, 2] and all(p != "▁" for p, _ in tagged)
    assert all(word_ids[k] == w for w in range(3) for k, t in enumerate(target) if t != -100 and
               pieces[k] == tagged[w][0])


def test_causal_lm_reports_perplexity(base_model, tmp_path):
    train(params(base_model, epochs=1), Data.from_tables([cls_rows(60)], "causal_lm"), tmp_path / "lm")
    metrics = json.loads((tmp_path / "lm" / "metrics.json").read_text())
    assert 1 < metrics["perplexity"] < 1e6


def test_batches_are_length_grouped_and_reproducible():
    lengths = list(np.random.default_rng(0).integers(1, 100, 500))
    first, again, other = batch_order(lengths, 16, 13, 0), batch_order(lengths, 16, 13, 0), batch_order(
        lengths, 16, 13, 1)
    assert first == again and first != other
    assert sorted(i for b in first for i in b) == list(range(500))
    spread = np.mean([max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in first])
    assert spread < 10  # sorted inside chunks: a batch holds similar lengths, so little padding


def test_values_outside_the_usual_ranges_warn_but_do_not_fail(base_model):
    with pytest.warns(UserWarning, match="lr 0.01 is outside"):
        LoraTrainParams(base_model=str(base_model), lr=0.01)
    with pytest.warns(UserWarning, match="r 64 is outside"):
        LoraTrainParams(base_model=str(base_model), r=64)


def test_config_errors_name_the_node_and_key(workdir):
    (workdir / "in.jsonl").write_text('{"text": "a", "label": "b"}\n')
    nodes = {"raw": {"uses": "read_jsonl", "with": {"path": "in.jsonl"}},
             "adapter": {"uses": "train_lora", "input": "raw", "with": {"r": 0, "base_model": "x"}}}
    with pytest.raises(ConfigError, match=r"nodes\.adapter\.with: r must be at least 1"):
        parse_pipeline({"name": "p", "nodes": nodes})
    nodes["adapter"]["with"] = {"base_model": "x", "task": "regression"}
    with pytest.raises(ConfigError, match=r"nodes\.adapter\.with\.task"):
        parse_pipeline({"name": "p", "nodes": nodes})


def test_rows_without_a_split_column_are_refused():
    with pytest.raises(ValueError, match="needs a `split` column"):
        Data.from_tables([cls_rows().drop_columns(["split"])], "auto")


@pytest.mark.parametrize("task", ["token_cls", "seq_cls"])
def test_all_linear_adapts_every_linear_layer_but_the_head(base_model, tmp_path, task):
    """PEFT's own all-linear also targets the head it trains in full, and refused: TypeError after minutes."""
    if task == "seq_cls":
        data = Data.from_tables([cls_rows(40)], "auto")
    else:
        tokens = [["北", "京", "好"]] * 40
        table = pa.table({"id": [str(i) for i in range(40)], "tokens": tokens, "tags": [["B-LOC", "I-LOC", "O"]] * 40,
                          "lang": ["zh"] * 40, "source": ["t"] * 40}, schema=BIO)
        data = Data.from_tables([table.append_column("split", pa.array(["train", "test"] * 20))], "auto")
    train(params(base_model, epochs=1, target_modules="all-linear"), data, tmp_path / "o")
    config = json.loads((tmp_path / "o" / "adapter_config.json").read_text())
    targets = set(config["target_modules"])
    assert {"transformer.h.0.attn.c_attn", "transformer.h.1.mlp.c_fc"} <= targets
    assert not any("score" in t for t in targets) and "score" in config["modules_to_save"]
    # PEFT writes its set in hash-seed order: a second process would write other bytes under the same key
    assert config["target_modules"] == sorted(targets)


def test_fp16_without_a_gpu_is_refused_before_training(base_model):
    with pytest.raises(ValueError, match="precision fp16 needs device: cuda"):
        params(base_model, precision="fp16")


# md5 of adapters the trainer must keep producing (torch 2.13, peft 0.21, CPU, one thread): moving train_lora
# onto the shared loop (models/loop.py) and its tasks into rows (train/tasks.py) kept them byte for byte. If a
# change means to alter them, bump train_lora's version and update these.
PINNED_ADAPTERS = {
    "defaults": ({}, "62d6305f6dd389b624a80e7d66c27b2c"),
    "accumulation, cosine, dropout": (dict(grad_accum=3, schedule="cosine", dropout=0.1, epochs=2),
                                      "060ef5fefcc7973d9073afe382af2618"),
    "eval_every with early stopping": (dict(eval_every=3, patience=2, epochs=4), "4b3031cdb3fcb2399901d85aac3b1eab"),
}


@pytest.mark.parametrize("case", PINNED_ADAPTERS)
def test_the_adapters_weights_are_pinned(base_model, tmp_path, case):
    import hashlib
    kw, digest = PINNED_ADAPTERS[case]
    train(params(base_model, **kw), Data.from_tables([cls_rows()], "auto"), tmp_path / "out",
          checkpoints=tmp_path / "ck")
    assert hashlib.md5((tmp_path / "out" / "adapter_model.safetensors").read_bytes()).hexdigest() == digest


@pytest.fixture(scope="module")
def encoder_base(base_model, tmp_path_factory):
    """A tiny BERT saved as pretrain_encoder saves it: a masked-LM model, so without a pooler."""
    from transformers import AutoTokenizer, BertConfig, BertForMaskedLM
    root = tmp_path_factory.mktemp("enc") / "model"
    tok = AutoTokenizer.from_pretrained(base_model)
    tok.add_special_tokens({"mask_token": "<mask>"})
    torch.manual_seed(0)
    BertForMaskedLM(BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                               intermediate_size=64, max_position_embeddings=64, type_vocab_size=1,
                               pad_token_id=tok.pad_token_id)).save_pretrained(root)
    tok.save_pretrained(root)
    return root


def test_weights_the_base_lacks_are_trained_and_saved_so_a_reload_is_the_same_model(encoder_base, tmp_path):
    from dataprep.predict import Adapter
    train(params(encoder_base, epochs=1), Data.from_tables([cls_rows()], "auto"), tmp_path / "out")
    config = json.loads((tmp_path / "out" / "adapter_config.json").read_text())
    assert "bert.pooler.dense" in config["modules_to_save"]
    texts = cls_rows(20)["text"].to_pylist()
    torch.manual_seed(1)
    first = Adapter.load(tmp_path / "out").logits(texts)
    torch.manual_seed(2)  # a pooler left random would now be another one
    np.testing.assert_array_equal(first, Adapter.load(tmp_path / "out").logits(texts))


def test_ner_is_scored_on_whole_sentences_like_its_baselines(base_model, tmp_path):
    words = ["北", "京", "好"] * 30  # 90 words: far past max_len 16
    tags = ["B-LOC", "I-LOC", "O"] * 30
    table = pa.table({"id": [str(i) for i in range(20)], "tokens": [words] * 20, "tags": [tags] * 20,
                      "lang": ["zh"] * 20, "source": ["t"] * 20}, schema=BIO)
    data = Data.from_tables([table.append_column("split", pa.array(["train", "test"] * 10))], "auto")
    train(params(base_model, epochs=1, max_len=16), data, tmp_path / "o")
    metrics = json.loads((tmp_path / "o" / "metrics.json").read_text())
    # every gold entity counts, not only the few that fit in 16 pieces: the same support as the baselines'
    assert metrics["support"] == 10 * 30 == metrics["baselines"]["most_frequent_tag"]["support"]


def test_rows_without_a_label_are_refused_in_one_line():
    rows = cls_rows(10)
    rows = rows.set_column(2, "label", pa.array([None] * 2 + rows["label"].to_pylist()[2:], pa.string()))
    with pytest.raises(ValueError, match=r"^train_lora: 2 rows have no label \(null\); normalize"):
        Data.from_tables([rows], "auto")
