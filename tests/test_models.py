"""Model nodes: a tokenizer and a tiny LM built from rows, keyed and cached like any node, and perplexity
scores that do not depend on batching."""
from __future__ import annotations

import math

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("sentencepiece")

from testkit import write_jsonl  # noqa: E402

from dataprep.dag import parse_pipeline  # noqa: E402
from dataprep.errors import ConfigError  # noqa: E402
from dataprep.runner import Runner  # noqa: E402

WORDS = "房间 干净 服务 热情 价格 实惠 早餐 丰富 位置 方便 物流 很快 包装 结实 质量 一般 屏幕 清晰 电池 耐用".split()


def corpus(n: int = 300) -> list[dict]:
    rng = np.random.default_rng(0)
    rows = [{"text": "".join(rng.choice(WORDS, size=rng.integers(3, 7))) + "。", "label": "pos"} for _ in range(n)]
    rows += [{"text": "Hello  world, a mixed 句子 with ｆｕｌｌ width", "label": "neg"}]
    return rows


def nodes(lm_steps: int = 30) -> dict:
    return {
        "raw": {"uses": "read_jsonl", "with": {"path": "in.jsonl"}},
        "tok": {"uses": "train_tokenizer", "input": "raw", "with": {"vocab_size": 600}},
        "lm": {"uses": "pretrain_lm", "input": "raw",
               "with": {"tokenizer": {"node": "tok"}, "n_embd": 32, "n_head": 2, "max_steps": lm_steps}},
        "scored": {"uses": "ppl_score", "input": "raw", "with": {"model": {"node": "lm"}}},
    }


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    write_jsonl(root / "in.jsonl", corpus())
    import os
    cwd = os.getcwd()
    os.chdir(root)
    try:
        runner = Runner(parse_pipeline({"name": "m", "nodes": nodes()}), root / "cache")
        reports = runner.run()
    finally:
        os.chdir(cwd)
    return root, runner, reports


def test_fast_tokenizer_encodes_like_sentencepiece_up_to_score_ties(built):
    import sentencepiece as spm
    from transformers import AutoTokenizer
    _, runner, _ = built
    d = runner.model_dir("tok")
    sp, fast = spm.SentencePieceProcessor(model_file=str(d / "spm.model")), AutoTokenizer.from_pretrained(d)
    texts = [r["text"] for r in corpus()] + ["  leading and  double  spaces ", "未见过的字：龘靐", "ｉＰｈｏｎｅ１２",
                                             ""]
    differing = 0
    for text in texts:
        ours = fast(text, add_special_tokens=False)["input_ids"]
        theirs = sp.encode(text)
        if ours != theirs:  # only a tie between segmentations of equal score may differ
            differing += 1
            assert math.isclose(sum(map(sp.get_score, ours)), sum(map(sp.get_score, theirs)), rel_tol=1e-6)
            assert fast.decode(ours) == sp.decode(theirs)
    assert differing <= len(texts) // 20


def test_tokenizer_adds_bos_and_eos_and_falls_back_to_bytes(built):
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(built[1].model_dir("tok"))
    ids = tok("龘")["input_ids"]
    assert ids[0] == tok.bos_token_id and ids[-1] == tok.eos_token_id
    assert tok.unk_token_id not in ids  # an unseen character becomes its UTF-8 bytes
    assert tok.decode(ids, skip_special_tokens=True) == "龘"
    text = "Hello world, a mixed 句子"
    assert tok.decode(tok(text)["input_ids"], skip_special_tokens=True) == text  # spaces survive decoding


def test_model_nodes_are_cached_and_keyed_by_what_they_build_from(built, monkeypatch):
    root, runner, reports = built
    assert {r.node: r.status for r in reports} == {"raw": "ran", "tok": "ran", "lm": "ran", "scored": "ran"}
    assert reports[2].ledger.notes["steps"] == 30
    monkeypatch.chdir(root)
    again = Runner(parse_pipeline({"name": "m", "nodes": nodes()}), root / "cache")
    assert again.keys == runner.keys
    assert {r.status for r in again.run()} == {"cached"}
    changed = Runner(parse_pipeline({"name": "m", "nodes": nodes(lm_steps=31)}), root / "cache")
    assert [n for n in changed.keys if changed.keys[n] != runner.keys[n]] == ["lm", "scored"]


def test_a_time_guard_that_runs_out_fails_the_build(built, tmp_path):
    from dataprep.models.compute import BuildTimeout
    from dataprep.models.lm import LmParams, pretrain_lm
    runner = built[1]
    assert runner.plan()[2].ledger.notes["steps"] == 30  # the step budget ended the normal run
    table = runner.output("raw")
    with pytest.raises(BuildTimeout, match=r"pretrain_lm: max_seconds=0 ran out at step 1 of 30; nothing was saved"):
        pretrain_lm.impl(lambda: iter([table]), LmParams(
            tokenizer=str(runner.model_dir("tok")), n_embd=32, n_head=2, max_steps=30, max_seconds=0.0),
            tmp_path / "lm")
    assert not (tmp_path / "lm").exists()


def test_batched_perplexity_equals_one_text_at_a_time(built):
    from dataprep.stages.ppl import PplParams, PplScore
    scorer = PplScore.impl(PplParams(model=str(built[1].model_dir("lm"))))
    texts = [r["text"] for r in corpus()[:40]] + ["短", "一个稍微长一点的句子，里面有很多字。" * 3]
    batched = scorer.score(texts)
    alone = np.array([scorer.score([t])[0] for t in texts])
    np.testing.assert_allclose(batched, alone, rtol=1e-4)
    tiny = PplScore.impl(PplParams(model=str(built[1].model_dir("lm")), max_logits=1))  # one text per forward pass
    np.testing.assert_allclose(tiny.score(texts), alone, rtol=1e-4)


def test_perplexity_is_exp_of_mean_token_nll(built):
    import torch

    from dataprep.stages.ppl import PplParams, PplScore
    scorer = PplScore.impl(PplParams(model=str(built[1].model_dir("lm"))))
    ids = scorer.tok("房间干净服务热情。")["input_ids"]
    with torch.inference_mode():
        logits = scorer.model(input_ids=torch.tensor([ids])).logits[0, :-1]
    nll = torch.nn.functional.cross_entropy(logits, torch.tensor(ids[1:])).item()
    assert scorer.score(["房间干净服务热情。"])[0] == pytest.approx(math.exp(nll), rel=1e-5)


def test_scores_land_in_a_ppl_column_in_input_order(built):
    table = built[1].output("scored")
    assert table.column("ppl").null_count == 0
    assert table.column("id").to_pylist() == built[1].output("raw").column("id").to_pylist()


def test_a_model_reference_must_name_a_build_node(workdir):
    write_jsonl(workdir / "in.jsonl", corpus(5))
    bad = nodes()
    bad["scored"]["with"]["model"] = {"node": "raw"}
    with pytest.raises(ConfigError, match=r"nodes\.scored\.with\.model: 'raw' outputs rows"):
        parse_pipeline({"name": "m", "nodes": bad})
    bad["scored"]["with"]["model"] = {"node": "nope"}
    with pytest.raises(ConfigError, match=r"nodes\.scored\.with\.model: model node 'nope'"):
        parse_pipeline({"name": "m", "nodes": bad})
    bad["scored"]["with"]["model"] = {"nod": "lm"}
    with pytest.raises(ConfigError, match=r"nodes\.scored\.with\.model: a model node reference"):
        parse_pipeline({"name": "m", "nodes": bad})
    bad = nodes()
    bad["scored"]["input"] = "lm"
    with pytest.raises(ConfigError, match=r"nodes\.scored\.input: 'lm' builds a model"):
        parse_pipeline({"name": "m", "nodes": bad})


def test_pretrain_lm_requires_a_tokenizer(workdir):
    write_jsonl(workdir / "in.jsonl", corpus(5))
    bad = nodes()
    del bad["lm"]["with"]["tokenizer"]
    with pytest.raises(ConfigError, match=r"nodes\.lm\.with: pretrain_lm needs a tokenizer"):
        parse_pipeline({"name": "m", "nodes": bad})


def test_the_encoder_learns_masked_tokens_is_seeded_and_loads_as_a_plain_hf_base(built, tmp_path):
    """pretrain_encoder: MLM loss falls, two seeded builds are identical, and the directory loads with the
    Auto classes a classification or NER adapter uses (with a <mask> token in its tokenizer)."""
    import torch
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    from dataprep.models.encoder import EncoderParams, pretrain_encoder
    runner = built[1]
    table = runner.output("raw")
    p = EncoderParams(tokenizer=str(runner.model_dir("tok")), hidden=32, heads=2, ffn=64, max_steps=40, epochs=10,
                      lr=3e-3)
    first = pretrain_encoder.impl(lambda: iter([table]), p, tmp_path / "a")
    again = pretrain_encoder.impl(lambda: iter([table]), p, tmp_path / "b")
    vocab = len(AutoTokenizer.from_pretrained(tmp_path / "a"))
    assert first["steps"] == 40 and first["final_loss_x1000"] < 1000 * math.log(vocab)  # better than uniform
    assert first == again
    one, two = (AutoModelForTokenClassification.from_pretrained(tmp_path / d, num_labels=3).state_dict()
                for d in "ab")
    assert all(torch.equal(one[k], two[k]) for k in one if "classifier" not in k)
    tok = AutoTokenizer.from_pretrained(tmp_path / "a")
    assert tok.mask_token == "<mask>" and tok.mask_token_id == len(tok) - 1


def test_masking_follows_bert_and_never_masks_special_or_padding_tokens(built):
    import torch

    from dataprep.models.encoder import mask_tokens
    from dataprep.models.load import load_tokenizer, pad
    tok = load_tokenizer(str(built[1].model_dir("tok")))
    tok.add_special_tokens({"mask_token": "<mask>"})
    ids = tok(["房间干净服务热情。" * 6, "价格实惠。"])["input_ids"]
    x, attention = pad(ids, tok.pad_token_id)
    inputs, labels = mask_tokens(x, attention, tok, 0.5, torch.Generator().manual_seed(0))
    chosen = labels != -100
    special = torch.isin(x, torch.tensor(tok.all_special_ids))
    assert chosen.any() and not (chosen & special).any() and not (chosen & (attention == 0)).any()
    assert torch.equal(labels[chosen], x[chosen])
    assert torch.equal(inputs[~chosen], x[~chosen])  # what is not predicted is left as it was
    assert (inputs[chosen] == tok.mask_token_id).float().mean() > 0.5  # most predicted tokens are <mask>


# md5 of the weights that the shared loop (models/loop.py) must keep producing: the refactor that moved
# pretrain_lm, pretrain_encoder and train_translator onto one loop kept them byte for byte (torch 2.13, CPU,
# one thread, MKL_CBWR=AVX2). If a change means to alter them, bump the stage's version and update these.
PINNED = {"lm": "c29ce78a77ac7909e819f1a3a4873aba", "encoder": "23aced33289dd2390ed830ed5697c9dc"}


def test_the_builders_weights_are_pinned(built, tmp_path):
    import hashlib

    from dataprep.models.encoder import EncoderParams, pretrain_encoder
    from dataprep.models.lm import LmParams, pretrain_lm
    runner = built[1]
    table, tok = runner.output("raw"), str(runner.model_dir("tok"))
    pretrain_lm.impl(lambda: iter([table]), LmParams(tokenizer=tok, n_embd=32, n_head=2, max_steps=12),
                     tmp_path / "lm")
    pretrain_encoder.impl(lambda: iter([table]), EncoderParams(tokenizer=tok, hidden=32, heads=2, ffn=64,
                                                               max_steps=12), tmp_path / "encoder")
    digests = {name: hashlib.md5((tmp_path / name / "model.safetensors").read_bytes()).hexdigest()
               for name in PINNED}
    assert digests == PINNED


def test_a_hub_id_that_cannot_be_had_fails_in_seconds_in_one_line(monkeypatch):
    import time

    from huggingface_hub import constants

    from dataprep.models.load import ModelLoadError, load_tokenizer
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelLoadError, match=r"^model 'no-such/model' is not a directory, not in the local hub "
                                             r"cache, and HF_HUB_OFFLINE is set: download it"):
        load_tokenizer("no-such/model")
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")  # nothing listens on the discard port
    started = time.monotonic()
    with pytest.raises(ModelLoadError, match=r"and the hub \(http://127\.0\.0\.1:9\) cannot be reached"):
        load_tokenizer("no-such/model")
    assert time.monotonic() - started < 10


def test_a_vocabulary_smaller_than_the_characters_is_one_line_with_the_size_needed(tmp_path):
    import pyarrow as pa

    from dataprep.models.tokenizer import TokenizerParams, train_tokenizer
    from dataprep.schema import CLS
    table = pa.table({"id": ["1"], "text": ["你好世界，再见"], "label": ["a"], "lang": ["zh"], "source": ["t"]},
                     schema=CLS)
    with pytest.raises(ConfigError, match=r"^train_tokenizer: vocab_size 10 is below what this corpus needs "
                                          r"\(\d+\): its characters plus 256 byte pieces; raise vocab_size"):
        train_tokenizer.impl(lambda: iter([table]), TokenizerParams(vocab_size=10), tmp_path / "tok")
