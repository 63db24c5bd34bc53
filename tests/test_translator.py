"""train_translator: a MarianMT pair built from parallel rows — two plain HF directories that load with
AutoModelForSeq2SeqLM / AutoTokenizer, learn a small templated language, and are found by direction."""
from __future__ import annotations

import itertools
from pathlib import Path

import pyarrow as pa
import pytest

pytest.importorskip("torch")
pytest.importorskip("sentencepiece")

from dataprep.dag import parse_pipeline  # noqa: E402
from dataprep.errors import ConfigError  # noqa: E402
from dataprep.models.translator import TranslatorParams, direction_dir, train_translator  # noqa: E402
from dataprep.runner import Runner  # noqa: E402
from dataprep.schema import PARALLEL  # noqa: E402

SUBJECTS = [("房间", "room"), ("屏幕", "screen"), ("电池", "battery"), ("服务", "service"), ("价格", "price"),
            ("包装", "packaging")]
DEGREES = [("很", "very"), ("非常", "very"), ("有点", "a bit")]  # 很 and 非常 both say "very": a paraphrase
ADJECTIVES = [("好", "good"), ("差", "bad"), ("贵", "expensive"), ("干净", "clean"), ("一般", "average")]
# Small enough to learn these pairs in seconds, with every seed tried (0.01-0.03 loss; at 140 steps, or with
# d_model 64, some seeds still confuse adjectives).
TINY = {"vocab_size": 400, "d_model": 96, "layers": 2, "heads": 4, "ffn_dim": 192, "dropout": 0.0,
        "batch_size": 16, "lr": 3e-3, "warmup": 0.05, "label_smoothing": 0.0, "epochs": 1000, "max_steps": 200,
        "heldout": 0}  # the tests translate every sentence: none is held out (quality tests set their own)


def pairs() -> list[tuple[str, str]]:
    """Every subject x degree x adjective; the 很 sentences twice, so "very" translates back to 很."""
    out = []
    for (s, s_en), (d, d_en), (a, a_en) in itertools.product(SUBJECTS, DEGREES, ADJECTIVES):
        out += [(f"这个{s}{d}{a}。", f"The {s_en} is {d_en} {a_en}.")] * (2 if d == "很" else 1)
    return out


def write_pairs(path: Path) -> Path:
    path.write_text("".join(f"{zh}\t{en}\n" for zh, en in pairs()), encoding="utf-8")
    return path


def translator_nodes(path: Path, **overrides) -> dict:
    return {"pairs": {"uses": "read_parallel", "with": {"path": str(path)}},
            "mt": {"uses": "train_translator", "input": "pairs", "with": {**TINY, **overrides}}}


def tiny_translator(tmp_path_factory) -> tuple[Path, Runner]:
    """A cache holding node `mt` of pipeline `t`: a pair trained on `pairs()`. Built once per test session (a
    fixed directory under pytest's base temp); test_backtranslate's fixture gets it from the cache."""
    root = tmp_path_factory.getbasetemp() / "tiny-translator"
    root.mkdir(exist_ok=True)
    runner = Runner(parse_pipeline({"name": "t", "nodes": translator_nodes(write_pairs(root / "pairs.tsv"))}),
                    root / "cache")
    runner.run()
    return root, runner


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    _, runner = tiny_translator(tmp_path_factory)
    return runner, runner.plan()[-1].ledger.notes


def translate(directory: Path, texts: list[str]) -> list[str]:
    import torch
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer
    tok, model = AutoTokenizer.from_pretrained(directory), AutoModelForSeq2SeqLM.from_pretrained(directory)
    with torch.inference_mode():
        out = model.generate(**tok(texts, return_tensors="pt", padding=True), max_new_tokens=24)
    return tok.batch_decode(out, skip_special_tokens=True)


def test_saves_two_plain_hf_directories(built):
    runner, notes = built
    model_dir = runner.model_dir("mt")
    assert sorted(p.name for p in model_dir.iterdir()) == ["en-zh", "zh-en"]
    for direction in ("zh-en", "en-zh"):
        assert {"config.json", "tokenizer.json", "generation_config.json"} <= {p.name for p in
                                                                               (model_dir / direction).iterdir()}
        assert notes[f"{direction}_steps"] == 200
    from transformers import AutoConfig
    assert AutoConfig.from_pretrained(model_dir / "zh-en").model_type == "marian"
    assert notes["pairs"] == len(pairs())


def test_the_pair_learns_both_directions(built):
    model_dir = built[0].model_dir("mt")
    zh = sorted({z for z, _ in pairs()})
    english = dict(pairs())
    assert sum(e == english[z] for z, e in zip(zh, translate(model_dir / "zh-en", zh))) >= 0.9 * len(zh)
    en = sorted(set(english.values()))
    back = dict((e, z) for z, e in pairs() if "非常" not in z)  # "very" comes back as the likelier 很
    assert sum(z == back[e] for e, z in zip(en, translate(model_dir / "en-zh", en))) >= 0.9 * len(en)


def test_joint_tokenizer_splits_chinese_into_characters_and_decodes_spaces(built):
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(built[0].model_dir("mt") / "en-zh")
    pieces = tok.convert_ids_to_tokens(tok("这个房间很干净。")["input_ids"])
    assert pieces[0] == tok.bos_token and pieces[-1] == tok.eos_token
    assert all(len(p.lstrip("▁")) <= 1 for p in pieces[1:-1])
    for text in ("The room is very clean.", "这个房间很干净。", "未见过的字：龘"):
        assert tok.decode(tok(text)["input_ids"], skip_special_tokens=True) == text.replace("：", ":")  # NFKC


def test_the_step_budget_is_in_the_key(tmp_path):
    path = write_pairs(tmp_path / "pairs.tsv")

    def key(**overrides):
        return Runner(parse_pipeline({"name": "t", "nodes": translator_nodes(path, **overrides)}), tmp_path).keys["mt"]

    assert key(max_steps=10) != key(max_steps=11)


def test_seeded_builds_are_identical(tmp_path):
    import torch
    from transformers import AutoModelForSeq2SeqLM
    table = parallel_table(pairs()[:40])
    quick = TranslatorParams(**{**TINY, "max_steps": 5})
    for name in ("a", "b"):
        train_translator.impl(lambda: iter([table]), quick, tmp_path / name)
    one, two = (AutoModelForSeq2SeqLM.from_pretrained(tmp_path / n / "zh-en").state_dict() for n in "ab")
    assert all(torch.equal(one[k], two[k]) for k in one)


def parallel_table(rows: list[tuple[str, str]], src_lang: str = "zh", tgt_lang: str = "en") -> pa.Table:
    n = len(rows)
    return pa.table({"id": [f"p:{i}" for i in range(n)], "src": [z for z, _ in rows], "tgt": [e for _, e in rows],
                     "src_lang": [src_lang] * n, "tgt_lang": [tgt_lang] * n}, schema=PARALLEL)


def test_one_language_pair_per_node(tmp_path):
    mixed = pa.concat_tables([parallel_table(pairs()[:5]), parallel_table(pairs()[:5], tgt_lang="fr")])
    with pytest.raises(ValueError, match="one language pair"):
        train_translator.impl(lambda: iter([mixed]), TranslatorParams(**TINY), tmp_path / "m")


def test_a_vocabulary_too_small_for_the_characters_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match=r"^train_translator: vocab_size 300 is below what this corpus needs "):
        train_translator.impl(lambda: iter([parallel_table(pairs())]), TranslatorParams(**{**TINY, "vocab_size": 300}),
                              tmp_path / "m")


def test_config_errors_name_the_node(tmp_path):
    path = write_pairs(tmp_path / "pairs.tsv")
    with pytest.raises(ConfigError, match=r"nodes\.mt\.with: d_model \(96\) must be a multiple of heads \(5\)"):
        parse_pipeline({"name": "t", "nodes": translator_nodes(path, heads=5)})
    nodes = translator_nodes(path)
    nodes["bad"] = {"uses": "train_translator", "input": "mt"}
    with pytest.raises(ConfigError, match=r"nodes\.bad\.input: 'mt' builds a model"):
        parse_pipeline({"name": "t", "nodes": nodes})


def test_direction_dir_picks_a_direction_of_a_pair(tmp_path):
    for d in ("zh-en", "en-zh"):
        (tmp_path / d).mkdir()
        (tmp_path / d / "config.json").write_text("{}")
    assert direction_dir(str(tmp_path), "zh", "en") == (str(tmp_path / "zh-en"), "zh", "en")
    assert direction_dir(str(tmp_path), None, "en") == (str(tmp_path / "zh-en"), "zh", "en")
    assert direction_dir(str(tmp_path), "en", None) == (str(tmp_path / "en-zh"), "en", "zh")
    assert direction_dir(str(tmp_path / "zh-en"), None, "en") == (str(tmp_path / "zh-en"), None, "en")  # a model
    assert direction_dir("Helsinki-NLP/opus-mt-zh-en", "zh", "en") == ("Helsinki-NLP/opus-mt-zh-en", "zh", "en")
    with pytest.raises(ValueError, match="holds translators en-zh, zh-en: none translate zh -> fr"):
        direction_dir(str(tmp_path), "zh", "fr")
    with pytest.raises(ValueError, match="several translate"):
        direction_dir(str(tmp_path), None, None)


def test_the_clock_never_changes_the_weights_and_a_time_guard_fails_the_node(tmp_path, monkeypatch):
    """The step budget alone decides the weights: a clock that races (a busy machine) changes nothing, and
    an optional max_seconds that runs out fails the node instead of saving a model cut short."""
    import torch
    from safetensors.torch import load_file

    import dataprep.models.compute as compute
    from dataprep.models.compute import BuildTimeout
    table = parallel_table(pairs()[:20])
    params = TranslatorParams(**{**TINY, "max_steps": 6})

    def weights(out: Path, p=params) -> dict:
        train_translator.impl(lambda: iter([table]), p, out)
        return load_file(out / "zh-en" / "model.safetensors")

    quiet = weights(tmp_path / "quiet")
    clock = itertools.count(0.0, 10_000.0)  # every clock read 10,000 s later: a very busy machine
    monkeypatch.setattr(compute.time, "monotonic", lambda: next(clock))
    busy = weights(tmp_path / "busy")
    assert quiet.keys() == busy.keys() and all(torch.equal(quiet[k], busy[k]) for k in quiet)
    with pytest.raises(BuildTimeout, match=r"train_translator: max_seconds=60 ran out at step 1 of 6; nothing was"):
        weights(tmp_path / "guarded", TranslatorParams(**{**TINY, "max_steps": 6, "max_seconds": 60.0}))
    assert not (tmp_path / "guarded" / "zh-en").exists()


def test_held_out_pairs_measure_the_pair_and_gate_it(tmp_path):
    """chrF each way and round trip on pairs the models never saw, in the notes and quality.json; a pair
    below min_chrf fails the node with the score in the message."""
    import json

    from dataprep.models.translator import TranslatorTooWeak
    table = parallel_table(pairs())
    p = TranslatorParams(**{**TINY, "max_steps": 120, "heldout": 12, "min_chrf": 0.0})
    notes = train_translator.impl(lambda: iter([table]), p, tmp_path / "ok")
    quality = json.loads((tmp_path / "ok" / "quality.json").read_text())
    assert (notes["pairs"], notes["heldout_pairs"], quality["heldout_pairs"]) == (108, 12, 12)
    assert notes["zh-en_chrf"] == quality["zh-en_chrf"] > 50 and notes["en-zh_chrf"] > 50
    assert quality["round_trip_chrf"] > 0 and len(quality["examples"]) == 5
    weak = TranslatorParams(**{**TINY, "max_steps": 2, "heldout": 12, "min_chrf": 20.0})
    with pytest.raises(TranslatorTooWeak, match=r"train_translator: zh-en scores chrF [\d.]+ on 12 held-out pairs, "
                                                r"below min_chrf=20"):
        train_translator.impl(lambda: iter([table]), weak, tmp_path / "weak")


def test_the_thread_count_is_in_the_key(tmp_path):
    path = write_pairs(tmp_path / "pairs.tsv")

    def key(**overrides):
        return Runner(parse_pipeline({"name": "t", "nodes": translator_nodes(path, **overrides)}), tmp_path).keys["mt"]

    assert key(threads=1) != key(threads=2)
    assert key(max_seconds=5.0) == key(max_seconds=None)  # a guard, not a budget: it never changes the weights
