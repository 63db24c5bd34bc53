"""train_tokenizer: a sentencepiece unigram model, saved as a transformers fast tokenizer.

The fast tokenizer replicates sentencepiece exactly: the same pieces and scores in a `tokenizers` Unigram
model, and sentencepiece's normalization (NFKC, trim, runs of spaces folded) and `▁` word-boundary marker.
The only difference is how a tie between two segmentations of equal total score is broken (e.g. `。。|。`
vs `。|。。`): both are equally likely under the model. tests/test_models.py checks exactly that.
"""
from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from dataprep.errors import ConfigError
from dataprep.models.load import texts_of
from dataprep.registry import SplitScoped, param, stage

SPECIALS = {"pad": "<pad>", "unk": "<unk>", "bos": "<s>", "eos": "</s>"}  # ids 0..3, in this order


@dataclass(frozen=True)
class TokenizerParams(SplitScoped):
    vocab_size: int = param(4000, "pieces in the vocabulary (a soft limit on small corpora)")
    character_coverage: float = param(0.9995, "share of characters covered; rarer ones become <unk>")
    max_rows: int = param(200_000, "rows used for training (the first ones, in input order)")


@stage("train_tokenizer", version=3, kind="build", params=TokenizerParams, consumes=("cls", "bio", "parallel"),
       produces="model")
def train_tokenizer(batches: Callable[[], Iterator[pa.Table]], p: TokenizerParams, out_dir: Path) -> dict:
    """Train a sentencepiece unigram tokenizer on the text of the input rows (`text`; `tokens` joined as the
    model builders join them, without spaces in Chinese and Japanese; `src` and `tgt` for parallel rows) and
    save it as a transformers tokenizer in the model directory.
    Special tokens: <pad>=0, <unk>=1, <s>=2, </s>=3; encoding adds <s> ... </s>.

    Drop reasons: none (a build stage outputs a model, not rows).
    """
    import sentencepiece as spm  # heavy: only when the node runs

    texts = list(_texts(batches(), p.max_rows))
    proto = io.BytesIO()
    try:
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(texts), model_writer=proto, model_type="unigram", vocab_size=p.vocab_size,
            hard_vocab_limit=False, character_coverage=p.character_coverage, normalization_rule_name="nfkc",
            byte_fallback=True, pad_id=0, unk_id=1, bos_id=2, eos_id=3,
            num_threads=1, minloglevel=2)  # one thread: the same pieces on every run
    except RuntimeError as e:
        raise too_small_for_the_characters("train_tokenizer", p.vocab_size, e) from None
    out_dir.mkdir(parents=True)
    (out_dir / "spm.model").write_bytes(proto.getvalue())
    fast = to_fast_tokenizer(spm.SentencePieceProcessor(model_proto=proto.getvalue()))
    fast.save_pretrained(str(out_dir))
    return {"texts": len(texts), "vocab_size": len(fast)}


def too_small_for_the_characters(stage: str, vocab_size: int, error: RuntimeError) -> Exception:
    """sentencepiece's error for a vocabulary smaller than the corpus's characters, as one line that says how
    many pieces are needed; any other error as it was."""
    if "smaller than required_chars" not in str(error):
        return error
    needed = re.search(r"(\d+) vs (\d+)", str(error))
    at_least = f" ({needed.group(2)})" if needed else ""
    return ConfigError(f"{stage}: vocab_size {vocab_size} is below what this corpus needs{at_least}: its "
                       "characters plus 256 byte pieces; raise vocab_size or lower character_coverage")


def _texts(tables: Iterator[pa.Table], limit: int) -> Iterator[str]:
    seen = 0
    for table in tables:
        for column in _text_columns(table):
            for text in column:
                if text and seen < limit:
                    seen += 1
                    yield text


def _text_columns(table: pa.Table) -> list[list[str]]:
    if "text" in table.column_names:
        return [table.column("text").to_pylist()]
    if "tokens" in table.column_names:  # joined as the LM and encoder builders read them (no spaces in Chinese)
        return [texts_of(table)]
    return [table.column("src").to_pylist(), table.column("tgt").to_pylist()]


def to_fast_tokenizer(sp):
    """A transformers fast tokenizer that encodes like the sentencepiece processor `sp`."""
    from tokenizers import Regex, Tokenizer, decoders, normalizers, pre_tokenizers, processors
    from tokenizers.models import Unigram
    from transformers import PreTrainedTokenizerFast

    vocab = [(sp.id_to_piece(i), sp.get_score(i)) for i in range(sp.get_piece_size())]
    # Byte fallback: a character outside the vocabulary becomes its UTF-8 bytes, not one shared <unk> that a
    # language model learns to predict cheaply — so random characters and mojibake score as the rare text
    # they are.
    tok = Tokenizer(Unigram(vocab, unk_id=sp.unk_id(), byte_fallback=True))
    # sentencepiece's "nfkc" rule with remove_extra_whitespaces: NFKC, trim, runs of spaces to one.
    tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Strip(),
                                           normalizers.Replace(Regex(" {2,}"), " ")])
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=False)
    # Decode as sentencepiece does: ▁ back to a space (Metaspace's decoder joins pieces without them), bytes
    # back to characters, then drop the space the leading ▁ became.
    tok.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(),
                                     decoders.Strip(" ", 1, 0)])
    bos, eos = SPECIALS["bos"], SPECIALS["eos"]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}", pair=f"{bos} $A {eos} $B {eos}",
        special_tokens=[(bos, sp.bos_id()), (eos, sp.eos_id())])
    return PreTrainedTokenizerFast(tokenizer_object=tok, **{f"{k}_token": v for k, v in SPECIALS.items()})
