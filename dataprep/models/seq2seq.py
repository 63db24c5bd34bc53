"""One translation direction of any seq2seq model (a train_translator pair, Marian, M2M100, NLLB): batched,
length-sorted generation whose length is bounded by each source's, so an untrained or looping model cannot
run away."""
from __future__ import annotations

import math
from dataclasses import dataclass

from dataprep.models.batching import sorted_batches
from dataprep.models.load import device, load_seq2seq, load_tokenizer, max_positions, pad


@dataclass(frozen=True)
class Decoding:
    """How to generate. A translation longer than `max_ratio` x its source's tokens + `slack` (or than the hard
    cap `max_new_tokens`) is a runaway: generation stops there and the output is None, never a truncated text."""
    method: str = "greedy"  # greedy | beam | sample
    num_beams: int = 4
    temperature: float = 1.0
    top_p: float = 0.95
    max_new_tokens: int = 128
    max_ratio: float = 3.0
    slack: int = 8
    batch_size: int = 64

    def bound(self, source_tokens: int) -> int:
        """The most tokens a translation of a source this long may take."""
        return min(self.max_new_tokens, math.ceil(self.max_ratio * source_tokens) + self.slack)

    def generate_kwargs(self) -> dict:
        if self.method == "beam":
            return {"num_beams": self.num_beams, "do_sample": False}
        if self.method == "sample":
            return {"num_beams": 1, "do_sample": True, "temperature": self.temperature, "top_p": self.top_p,
                    "top_k": 0}
        return {"num_beams": 1, "do_sample": False}


class Seq2Seq:
    """One direction: a seq2seq model and its tokenizer, translating lists of texts in batches of similar length."""

    def __init__(self, ref: str, src: str | None, tgt: str | None, decoding: Decoding, model=None):
        # Each direction has its own tokenizer even when the model is shared: lang_codes sets its src_lang.
        self.tok, self.decoding = load_tokenizer(ref), decoding
        self.model = model if model is not None else load_seq2seq(ref).to(device())
        self.max_len = max_positions(self.model.config, 512)  # never feed more positions than the model has
        self.cap = max_positions(self.model.config, decoding.max_new_tokens + 1) - 1  # and generate no more
        self.prefix, self.lang_kwargs = lang_codes(self.tok, src, tgt)

    def translate(self, texts: list[str], n: int = 1) -> list[list[str | None]]:
        """n translations of each text (the n best beams or n samples), in input order; None for a runaway."""
        import torch

        if not texts:
            return []
        ids = self.tok([self.prefix + t for t in texts], truncation=True, max_length=self.max_len)["input_ids"]
        lengths = [len(x) for x in ids]
        # longest first: a batch too big for the memory fails at once, not at the end
        batches = sorted_batches(range(len(ids)), lengths, size=self.decoding.batch_size, longest_first=True)
        out: list[list[str | None]] = [[] for _ in texts]
        with torch.inference_mode():
            for batch in batches:
                for i, outputs in zip(batch, self._generate([ids[i] for i in batch], n)):
                    out[i] = outputs
        return out

    def _generate(self, batch_ids: list[list[int]], n: int) -> list[list[str | None]]:
        """Translations of one batch. The batch's length limit is its longest source's bound; each row is then
        held to its own bound, so which rows count as runaways does not depend on the batching. (The floats
        can: padding changes the shapes the kernels see, which is why batch_size is part of the key.)"""
        bounds = [min(self.cap, self.decoding.bound(len(x))) for x in batch_ids]
        language_token = 1 if "forced_bos_token_id" in self.lang_kwargs else 0
        x, mask = pad(batch_ids, self.tok.pad_token_id or 0)
        generated = self.model.generate(input_ids=x, attention_mask=mask, num_return_sequences=n,
                                        max_new_tokens=max(bounds) + language_token,
                                        **self.decoding.generate_kwargs(), **self.lang_kwargs)
        rows = generated.tolist()
        return [[self._decode(rows[j * n + k], bound) for k in range(n)] for j, bound in enumerate(bounds)]

    def _decode(self, tokens: list[int], bound: int) -> str | None:
        """The text of one generated sequence, or None when it did not end within `bound` new tokens. Models
        that force </s> at the length limit (Marian's forced_eos_token_id) end every runaway there, so with
        them the last position does not count as an ending."""
        config = self.model.generation_config
        eos, pad_id = config.eos_token_id, self.tok.pad_token_id
        ends = set(eos if isinstance(eos, list) else [eos])
        body = tokens[1:]  # generate() starts every output with the decoder start token (for Marian: pad)
        stop = next((k for k, t in enumerate(body) if t in ends or t == pad_id), None)
        limit = bound - 1 if config.forced_eos_token_id is not None else bound
        if "forced_bos_token_id" in self.lang_kwargs:  # the target language token takes a slot of the bound
            limit += 1
        if stop is None or stop >= limit:
            return None
        return self.tok.decode(body[:stop], skip_special_tokens=True).strip()


def lang_codes(tok, src: str | None, tgt: str | None) -> tuple[str, dict]:
    """How a multilingual model is told the languages: (text prefix, generate kwargs).

    M2M100 / NLLB / mBART tokenizers have `src_lang` (it sets the source language token) and the target
    language is forced as the first generated token; multilingual Marian models read a `>>code<<` prefix.
    A bilingual model (train_translator's, opus-mt-zh-en) needs neither: the codes only chose its direction.
    """
    if tgt is None:
        return "", {}
    if hasattr(tok, "src_lang"):
        if src is not None:
            tok.src_lang = src
        lookup = getattr(tok, "lang_code_to_id", None) or {}
        for token_id in (lookup.get(tgt), *(tok.convert_tokens_to_ids(t) for t in (tgt, f"__{tgt}__"))):
            if token_id is not None and token_id != tok.unk_token_id:
                return "", {"forced_bos_token_id": token_id}
        raise ValueError(f"the tokenizer has no language code {tgt!r} (set src_lang / tgt_lang / pivot in its "
                         "notation, e.g. eng_Latn for NLLB, en for M2M100)")
    marker = f">>{tgt}<<"
    if tok.convert_tokens_to_ids(marker) not in (None, tok.unk_token_id):
        return marker + " ", {}
    return "", {}
