"""train_translator: a tiny MarianMT pair (src→tgt and tgt→src) trained from scratch on `parallel` rows — the
back-translation models the sample pipelines use with no network. Sized to train in about three minutes on a
laptop CPU; templated review sentences are narrow enough for a model this small to translate them.

The model directory holds one HF directory per direction, named `<src>-<tgt>` (e.g. `zh-en` and `en-zh`),
each with its own copy of the joint tokenizer, so `AutoModelForSeq2SeqLM.from_pretrained(dir / "zh-en")` and
`AutoTokenizer.from_pretrained(dir / "zh-en")` load it with no help from this project. `direction_dir` picks
a direction out of such a pair directory.
"""
from __future__ import annotations

import io
import json
import math
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from dataprep.errors import DataprepError
from dataprep.models.batching import interleave, windowed_batches
from dataprep.models.compute import BuildCompute, TimeGuard, torch_for
from dataprep.models.lm import loss_note
from dataprep.models.load import device, pad, quiet_transformers
from dataprep.models.loop import Loop, train
from dataprep.models.seq2seq import Decoding, Seq2Seq
from dataprep.models.tokenizer import to_fast_tokenizer, too_small_for_the_characters
from dataprep.registry import param, stage


@dataclass(frozen=True)
class TranslatorParams(BuildCompute):
    vocab_size: int = param(3000, "pieces in the joint vocabulary of both languages (a soft limit)")
    d_model: int = param(128, "hidden size")
    layers: int = param(2, "encoder layers, and as many decoder layers")
    heads: int = param(4, "attention heads")
    ffn_dim: int = param(512, "feed-forward width")
    dropout: float = param(0.1, "dropout")
    max_len: int = param(64, "longest sentence in tokens; longer ones are cut")
    batch_size: int = param(64, "sentence pairs per step")
    # Marian is post-LayerNorm: at 2e-3 with a 5% warmup, or at d_model 192 and 2e-3, zh->en sometimes stalls
    # at an English language model that ignores its source (loss ~2); 10% warmup kept every seed tried learning.
    lr: float = param(2e-3, "peak learning rate (tiny models from scratch take high rates)")
    warmup: float = param(0.1, "share of the steps spent warming the learning rate up")
    label_smoothing: float = param(0.1, "label smoothing of the cross-entropy (0 turns it off)")
    epochs: int = param(10, "passes over the data per direction, unless max_steps stops it first")
    max_steps: int = param(420, "step budget per direction: with epochs, the only thing that decides how long "
                           "it trains")
    heldout: int = param(200, "pairs held out of training to measure the pair (chrF each way and round trip)")
    min_chrf: float = param(20.0, "quality gate: the node fails when either direction's chrF on the held-out "
                            "pairs is below this (back-translations from a weaker model are noise); 0 turns it off")
    seed: int = param(13, "initialisation, held-out choice and shuffling seed")

    def __post_init__(self):
        super().__post_init__()
        if self.d_model % self.heads:
            raise ValueError(f"d_model ({self.d_model}) must be a multiple of heads ({self.heads})")
        if not 0 <= self.label_smoothing < 1:
            raise ValueError(f"label_smoothing must be in [0, 1), got {self.label_smoothing}")


@stage("train_translator", version=3, kind="build", params=TranslatorParams, consumes=("parallel",),
       produces="model")
def train_translator(batches: Callable[[], Iterator[pa.Table]], p: TranslatorParams, out_dir: Path) -> dict:
    """Train one joint sentencepiece tokenizer on both sides of the pairs (`joint_tokenizer`), then two
    MarianMT models from a config, src→tgt and tgt→src, each seeded, with AdamW, linear warmup then cosine
    decay, gradient clipping and label smoothing; save them as `<src>-<tgt>/` and `<tgt>-<src>/`, each with
    the tokenizer. The language codes come from the rows' src_lang and tgt_lang (one pair per node).

    Drop reasons: none (a build stage outputs a model, not rows).
    """
    torch_for(p)
    src, tgt, (src_lang, tgt_lang) = _pairs(batches())
    train_rows, held = heldout_split(len(src), p.heldout, p.seed)
    tok = joint_tokenizer([src[i] for i in train_rows] + [tgt[i] for i in train_rows], p.vocab_size)
    src_ids, tgt_ids = (tok([texts[i] for i in train_rows], truncation=True, max_length=p.max_len)["input_ids"]
                        for texts in (src, tgt))
    notes = {"pairs": len(train_rows), "heldout_pairs": len(held), "vocab_size": len(tok)}
    guard = TimeGuard("train_translator", p.max_seconds)
    models = {}
    for a, b, x, y in ((src_lang, tgt_lang, src_ids, tgt_ids), (tgt_lang, src_lang, tgt_ids, src_ids)):
        model = models[f"{a}-{b}"] = new_model(tok, p)
        steps, loss = _train(model, x, y, tok.pad_token_id, p, guard)
        with quiet_transformers():
            model.save_pretrained(str(out_dir / f"{a}-{b}"))
            tok.save_pretrained(str(out_dir / f"{a}-{b}"))
        notes |= {f"{a}-{b}_steps": steps} | loss_note(f"{a}-{b}_", loss)
    if held:  # heldout: 0 measures nothing and gates nothing
        quality = measure(out_dir, models, [src[i] for i in held], [tgt[i] for i in held], src_lang, tgt_lang)
        (out_dir / "quality.json").write_text(json.dumps(quality, indent=2, ensure_ascii=False))
        notes |= {k: v for k, v in quality.items() if k.endswith("_chrf")}
        gate(quality, src_lang, tgt_lang, p.min_chrf)
    return notes | {"params_per_model": model.num_parameters()}


def heldout_split(n: int, heldout: int, seed: int) -> tuple[list[int], list[int]]:
    """(training rows, held-out rows): a seeded choice of `heldout` rows (at most a tenth of them), in order."""
    import random
    held = sorted(random.Random(seed).sample(range(n), min(heldout, n // 10)))
    chosen = set(held)
    return [i for i in range(n) if i not in chosen], held


def measure(out_dir: Path, models: dict, src: list[str], tgt: list[str], src_lang: str, tgt_lang: str) -> dict:
    """chrF (sacrebleu, whitespace ignored: fair to Chinese) of each direction against the held-out references,
    and of the round trip src -> tgt -> src against the source (what back-translation relies on), with a
    few example translations for the reader."""
    from sacrebleu.metrics import CHRF

    forward, backward = (Seq2Seq(str(out_dir / d), None, None, Decoding(), model=models[d])  # trained: no reload
                         for d in (f"{src_lang}-{tgt_lang}", f"{tgt_lang}-{src_lang}"))
    there = [v[0] or "" for v in forward.translate(src)]
    back = [v[0] or "" for v in backward.translate(tgt)]
    round_trip = [v[0] or "" for v in backward.translate(there)]
    chrf = CHRF()

    def score(hyps: list[str], refs: list[str]) -> float:
        return round(chrf.corpus_score(hyps, [refs]).score, 2) if refs else 0.0

    return {f"{src_lang}-{tgt_lang}_chrf": score(there, tgt), f"{tgt_lang}-{src_lang}_chrf": score(back, src),
            "round_trip_chrf": score(round_trip, src), "heldout_pairs": len(src),
            "examples": [{"src": s, "tgt": t, "translation": h, "round_trip": r}
                         for s, t, h, r in list(zip(src, tgt, there, round_trip))[:5]]}


def gate(quality: dict, src_lang: str, tgt_lang: str, min_chrf: float) -> None:
    """Fail the node when a direction is below the quality gate: it would back-translate into noise."""
    for direction in (f"{src_lang}-{tgt_lang}", f"{tgt_lang}-{src_lang}"):
        value = quality[f"{direction}_chrf"]
        if value < min_chrf:
            raise TranslatorTooWeak(
                f"train_translator: {direction} scores chrF {value:g} on {quality['heldout_pairs']} held-out "
                f"pairs, below min_chrf={min_chrf:g}; back-translations from it would be noise. Give more "
                "pairs or steps (max_steps, epochs), or lower min_chrf.")


class TranslatorTooWeak(DataprepError):
    """The trained translator failed its held-out quality gate; the node is not committed."""


def _pairs(tables: Iterator[pa.Table]) -> tuple[list[str], list[str], tuple[str, str]]:
    src, tgt, langs = [], [], set()
    for t in tables:
        src += t.column("src").to_pylist()
        tgt += t.column("tgt").to_pylist()
        langs |= set(zip(t.column("src_lang").to_pylist(), t.column("tgt_lang").to_pylist()))
    if len(langs) != 1 or None in next(iter(langs), (None,)):
        raise ValueError(f"train_translator needs rows of one language pair with both codes set, got {langs}")
    return src, tgt, langs.pop()


# Han, CJK punctuation and full-width forms: each its own piece, never part of a longer one.
CJK = re.compile(r"([\u3000-\u303f\u3400-\u9fff\uf900-\ufaff\uff00-\uffef])")
_CUT = "\x1f"


def joint_tokenizer(texts: list[str], vocab_size: int):
    """One sentencepiece vocabulary for both languages, as a fast tokenizer (train_tokenizer's conversion).

    Not train_tokenizer's unigram training: on templated sentences, unigram pieces degenerate (`The` becomes
    `▁Th` `e`, Chinese becomes whole template phrases), which makes sequences long and phrases opaque.
    Instead: BPE, with every CJK character its own piece (sentencepiece's pretokenization_delimiter cut around
    each one: characters are the usual unit for small Chinese models, and generalise to unseen phrases), then
    each piece scored by its log-frequency in BPE's own segmentation of the texts — a unigram model over the
    BPE vocabulary, which to_fast_tokenizer converts as it converts train_tokenizer's (segmentations agree
    with BPE's on more than 99% of sentences)."""
    import sentencepiece as spm

    proto = io.BytesIO()
    try:
        spm.SentencePieceTrainer.train(
            sentence_iterator=(CJK.sub(rf"{_CUT}\1{_CUT}", t) for t in texts if t), model_writer=proto,
            model_type="bpe", vocab_size=vocab_size, hard_vocab_limit=False, character_coverage=1.0,
            normalization_rule_name="nfkc", byte_fallback=True, pretokenization_delimiter=_CUT,
            pad_id=0, unk_id=1, bos_id=2, eos_id=3, num_threads=1, minloglevel=2)  # one thread: reproducible
    except RuntimeError as e:
        raise too_small_for_the_characters("train_translator", vocab_size, e) from None
    sp = spm.SentencePieceProcessor(model_proto=proto.getvalue())
    counts = Counter(i for ids in sp.encode([t for t in texts if t]) for i in ids)
    total = sum(counts.values())
    scores = [sp.get_score(i) if sp.is_control(i) or sp.is_byte(i) or sp.is_unknown(i)
              else math.log(max(counts[i], 0.5) / total) for i in range(sp.get_piece_size())]
    return to_fast_tokenizer(_Rescored(sp, scores))


class _Rescored:
    """A sentencepiece processor whose piece scores are replaced: all that to_fast_tokenizer reads of it."""

    def __init__(self, sp, scores: list[float]):
        self.sp, self.scores = sp, scores

    def __getattr__(self, name: str):
        return getattr(self.sp, name)

    def get_score(self, i: int) -> float:
        return self.scores[i]


def new_model(tok, p: TranslatorParams):
    """A MarianMT model from a config: one vocabulary shared by encoder, decoder and output layer. The decoder
    starts from <s> and stops at </s>, the tokens train_tokenizer's tokenizer wraps every sentence in."""
    import torch
    from transformers import MarianConfig, MarianMTModel

    torch.manual_seed(p.seed)
    bos, eos, pad = tok.bos_token_id, tok.eos_token_id, tok.pad_token_id
    config = MarianConfig(
        vocab_size=len(tok), d_model=p.d_model, encoder_layers=p.layers, decoder_layers=p.layers,
        encoder_attention_heads=p.heads, decoder_attention_heads=p.heads, encoder_ffn_dim=p.ffn_dim,
        decoder_ffn_dim=p.ffn_dim, dropout=p.dropout, max_position_embeddings=2 * p.max_len + 8,
        scale_embedding=True, pad_token_id=pad, bos_token_id=bos, eos_token_id=eos, forced_eos_token_id=eos,
        decoder_start_token_id=bos)
    model = MarianMTModel(config).to(device())
    gen = model.generation_config
    gen.decoder_start_token_id, gen.bos_token_id, gen.eos_token_id, gen.pad_token_id = bos, bos, eos, pad
    gen.forced_eos_token_id, gen.max_new_tokens, gen.num_beams = eos, 2 * p.max_len, 1
    return model


def _train(model, src: list[list[int]], tgt: list[list[int]], pad_id: int, p: TranslatorParams,
           guard: TimeGuard) -> tuple[int, float]:
    """(steps taken, last loss): label-smoothed cross-entropy on length-grouped batches, for the step budget."""
    import torch

    total = min(p.max_steps, p.epochs * math.ceil(len(src) / p.batch_size))
    gen = torch.Generator().manual_seed(p.seed)

    def epoch(_: int) -> list[list[int]]:
        order = torch.randperm(len(src), generator=gen).tolist()
        lengths = [len(x) for x in src]
        return [window[i] for window in windowed_batches(order, lengths, p.batch_size)
                for i in interleave(len(window))]

    def loss_of(idx: list[int]):
        x, x_mask = pad([src[i] for i in idx], pad_id)
        labels, _ = pad([tgt[i][1:] for i in idx], -100)  # the decoder predicts what follows <s>
        dec_in, _ = pad([tgt[i][:-1] for i in idx], pad_id)  # ... from <s> and the tokens before
        logits = model(input_ids=x, attention_mask=x_mask, decoder_input_ids=dec_in).logits
        loss = torch.nn.functional.cross_entropy(logits.transpose(1, 2), labels, ignore_index=-100,
                                                 label_smoothing=p.label_smoothing)
        return loss, int(x_mask.sum())

    # fused AdamW: one kernel for the ~100 tensors, not one each (and what this builder has always used)
    cfg = Loop(total=total, lr=p.lr, warmup=max(1, round(total * p.warmup)), fused=True, log_every=p.log_every)
    state = train(model, epoch, loss_of, cfg, guard=guard)
    return state.step, state.loss


# --- loading: a direction of a pair directory, or any seq2seq model ---

def direction_dir(ref: str, src: str | None, tgt: str | None) -> tuple[str, str | None, str | None]:
    """(directory or hub id, src, tgt) for translating src → tgt with `ref`. A train_translator pair directory
    (no config.json of its own; subdirectories `<a>-<b>` that have one) gives its `<src>-<tgt>` subdirectory
    and the codes from its name: a code left None matches any direction, but exactly one must match. Any
    other reference is returned as it is."""
    root = Path(ref)
    if not root.is_dir() or (root / "config.json").is_file():
        return ref, src, tgt
    pairs = sorted(d.name for d in root.iterdir() if (d / "config.json").is_file() and d.name.count("-") == 1)
    if not pairs:
        return ref, src, tgt
    matches = [d for d in pairs if src in (None, d.split("-")[0]) and tgt in (None, d.split("-")[1])]
    if len(matches) != 1:
        raise ValueError(f"{ref} holds translators {', '.join(pairs)}: {'none' if not matches else 'several'} "
                         f"translate {src or '*'} -> {tgt or '*'} (set src_lang / pivot)")
    a, b = matches[0].split("-")
    return str(root / matches[0]), a, b
