"""Vectorised text helpers shared by stages: Unicode folding on whole Arrow arrays, script-based language guess."""
from __future__ import annotations

import functools
import html

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

# Control and format characters (BOM, zero-width spaces, direction marks) carry no meaning in a label or text.
CONTROL = r"[\p{Cc}\p{Cf}\x{2028}\x{2029}]"
WHITESPACE = r"[\s\x{00A0}\x{3000}]+"
FULLWIDTH = r"[\x{FF01}-\x{FF5E}\x{3000}]"
_HALFWIDTH = {cp: cp - 0xFEE0 for cp in range(0xFF01, 0xFF5F)} | {0x3000: 0x20}


# Characters of scripts written without spaces between words, and the punctuation of those scripts: CJK
# symbols and punctuation (、。「」【】), full-width forms (，！？), vertical and small form variants.
CJK = r"\p{Han}\p{Hiragana}\p{Katakana}\p{Hangul}\x{3000}-\x{303F}\x{FE10}-\x{FE1F}\x{FE30}-\x{FE6F}\x{FF00}-\x{FFEF}"
# One space (runs are already folded) between a CJK character and a CJK character or any punctuation, either
# way round. Any punctuation, not only CJK's: normalize's halfwidth step has already turned `，` into `,`.
_CJK_SPACE = rf"([{CJK}]) ([{CJK}\p{{P}}])|(\p{{P}}) ([{CJK}])"


def collapse_whitespace(arr: pa.Array) -> pa.Array:
    """Runs of whitespace (CRLF, tabs, ideographic spaces) become one space; ends are trimmed."""
    return pc.utf8_trim_whitespace(pc.replace_substring_regex(arr, WHITESPACE, " "))


def fold_whitespace(arr: pa.Array) -> pa.Array:
    """collapse_whitespace, then the space between two CJK characters, or between a CJK character and
    punctuation, goes: `房间 很好 ， 服务` -> `房间很好,服务` style near-copies meet; spaces between Latin
    words, and between a CJK character and a Latin word or a digit (`iPhone 很好`, `300 元`), stay."""
    folded = collapse_whitespace(arr)
    # RE2 has no lookaround, so a match consumes the character after the space, and `好 ， 服` loses only its
    # first space in one pass; the spaces a pass skips are never next to each other, so a second pass ends it.
    for _ in range(2):
        folded = pc.replace_substring_regex(folded, _CJK_SPACE, r"\1\3\2\4")
    return folded


def strip_control(arr: pa.Array) -> pa.Array:
    # Line breaks and tabs are controls too: turn them into spaces first so words do not merge.
    return pc.replace_substring_regex(pc.replace_substring_regex(arr, r"[\r\n\t]", " "), CONTROL, "")


def unescape_html(arr: pa.Array) -> pa.Array:
    """`&amp;` -> `&`, `&nbsp;` -> no-break space; only rows holding '&' pay the Python call."""
    return _where(arr, pc.match_substring(arr, "&"), html.unescape)


def halfwidth(arr: pa.Array) -> pa.Array:
    """Full-width ASCII (`ｉＰｈｏｎｅ１２`) to half-width; CJK punctuation outside that block is kept."""
    return _where(arr, pc.match_substring_regex(arr, FULLWIDTH), lambda s: s.translate(_HALFWIDTH))


def nfkc(arr: pa.Array) -> pa.Array:
    return pc.utf8_normalize(arr, "NFKC")


def _where(arr: pa.Array, mask: pa.Array, fn) -> pa.Array:
    """Apply a Python str -> str function to the rows selected by `mask`, leave the rest as they are."""
    mask = pc.fill_null(mask, False)
    if not pc.any(mask).as_py():
        return arr
    values = arr.to_pylist()
    for i in pc.indices_nonzero(mask).to_pylist():
        values[i] = fn(values[i])
    return pa.array(values, pa.string())


def guess_lang(arr: pa.Array) -> pa.Array:
    """`zh`, `ja`, `ko`, `en` or `und` from the scripts a text uses. One Han character carries about a word,
    so a text is Chinese when its Han characters are at least a third of its Latin letters."""
    han = pc.count_substring_regex(arr, r"\p{Han}")
    latin = pc.count_substring_regex(arr, r"[A-Za-z]")
    kana = pc.count_substring_regex(arr, r"[\p{Hiragana}\p{Katakana}]")
    hangul = pc.count_substring_regex(arr, r"\p{Hangul}")
    zero = pa.scalar(0, han.type)
    lang = pc.case_when(
        pc.make_struct(pc.greater(kana, zero), pc.greater(hangul, zero),
                       pc.and_(pc.greater(han, zero), pc.greater_equal(pc.multiply(han, 3), latin)),
                       pc.greater(latin, zero)),
        "ja", "ko", "zh", "en", "und")
    return lang


# What mojibake is made of: UTF-8 decoded as Latin-1 or cp1252 (`æˆ¿é—´`), windows-1251 (`РїСЂ`), mac-roman...
# gives characters outside ASCII and the CJK scripts, so a row of ASCII and CJK only needs no repair (and
# skips the Python call: most Chinese and English rows).
_MOJIBAKE_CANDIDATE = rf"[^\x{{0}}-\x{{7F}}{CJK}]"


def fix_mojibake(arr: pa.Array) -> pa.Array:
    """Repair mojibake with ftfy's `fix_encoding`, only that step: its other fixes (quotes, character width,
    NFC) are normalize's own steps or left alone. Needs ftfy (NormalizeParams checks it is installed)."""
    import ftfy
    return _where(arr, pc.match_substring_regex(arr, _MOJIBAKE_CANDIDATE), ftfy.fix_encoding)


# py3langid's answer counts from this probability on; below it (a few words, digits, a name) the script guess
# stays. Measured: its one miss on 50 short fr/de/ru/en/zh review lines ("Terrible service." as fr) had 0.14;
# on English corpora the cut leaves 1 non-English answer of 872 SST-2 sentences (argmax alone: 6) and 0 of
# 3,000 airline tweets (argmax alone: 22).
LANG_ID_MIN_PROB = 0.5


def identify_lang(text: pa.Array, guess: pa.Array, ask: pa.Array) -> pa.Array:
    """`guess` (guess_lang's) with py3langid's language for the rows `ask` selects whose script cannot tell it:
    `en` (any Latin text: French, German...) and `und` (Cyrillic, Arabic, Greek...). zh, ja and ko stay as the
    script says: the characters decide them, and the identifier is less sure of short CJK texts."""
    ask = pc.and_(pc.fill_null(ask, False), pc.fill_null(pc.is_in(guess, pa.array(["en", "und"])), False))
    if not pc.any(ask).as_py():
        return guess
    identifier = _lang_identifier()
    values, texts = guess.to_pylist(), text.to_pylist()
    for i in pc.indices_nonzero(ask).to_pylist():
        lang, prob = identifier.classify(texts[i] or "")
        if prob >= LANG_ID_MIN_PROB:
            values[i] = lang
    return pa.array(values, pa.string())


@functools.lru_cache(maxsize=1)
def _lang_identifier():
    """py3langid's model (bundled in its wheel: nothing is downloaded), loaded once a process (about 1 s), with
    probabilities normalised so LANG_ID_MIN_PROB means a share."""
    from py3langid.langid import MODEL_FILE, LanguageIdentifier
    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def label_codes(labels: pa.Array, vocab: dict[str, int]) -> np.ndarray:
    """Small integer codes for labels, consistent across batches (`vocab` grows as new labels appear)."""
    encoded = pc.dictionary_encode(labels).combine_chunks() if isinstance(labels, pa.ChunkedArray) \
        else pc.dictionary_encode(labels)
    lookup = np.array([vocab.setdefault(v, len(vocab)) for v in encoded.dictionary.to_pylist()], np.int32)
    return lookup[encoded.indices.to_numpy(zero_copy_only=False)] if len(lookup) else np.empty(0, np.int32)
