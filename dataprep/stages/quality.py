"""quality_score: heuristic quality statistics of each row's text, one `q_<name>` column each.

The statistics are the ones large curation pipelines pair with a model score — repetition (Gopher), character
classes (ROOTS, NeMo Curator), length bounds, stop words, script share (a language-ID confidence without a
model), HTML and boilerplate markers (C4) — for Chinese (character-based) and English (word-based) text, chosen
per row by `lang`. They are computed on whole batches: the batch's text is decoded to code points once, character
classes are one lookup table over code points (built from RE2's Unicode tables) and a bincount per class, and
n-grams are hashed and sorted for all rows' units at once in numpy. Rules and thresholds are `quality_filter`'s
(a separate, cheap node).

Adding a statistic is one function of `Rows` returning one float per row (NaN: not applicable) and one row in
STATS.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache, cached_property, partial

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dataprep.registry import SplitScoped, param, stage
from dataprep.stages import text as T

PREFIX = "q_"
# Languages written without spaces between words: their unit is the character, not the word.
CJK_LANGS = ("zh", "ja", "ko", "yue", "cmn", "wuu")
# One Han character carries about as much as three Latin letters (guess_lang's rule): weight the scripts so a
# Chinese review naming an `iPhone` still counts as mostly Chinese.
CJK_WEIGHT = 3
# Gopher's stop words (Rae et al. 2021, A.1.1): a document must hold at least two of them.
EN_STOPWORDS = ("the", "be", "to", "of", "and", "that", "have", "with")
# Chinese function characters (particles, pronouns, copula, negation, degree adverbs, measure word 个): the
# characters of the most frequent words in any Chinese text, so random or mojibake Han strings lack them.
ZH_STOPCHARS = ("的了是不我你他她它们在有和也就都这那还很太吗呢吧啊么个"
                "一没要会说对把被给让从而但又与或及因为所以可能得地着过些")
# Boilerplate: C4's page filters (Raffel et al. 2020: lorem ipsum, javascript, policy notices) with NeMo
# Curator's policy strings, and the navigation and footer strings of Chinese web pages.
BOILERPLATE = ("lorem ipsum", "javascript", "terms of use", "privacy policy", "cookie policy", "uses cookies",
               "use of cookies", "use cookies", "all rights reserved", "copyright", "skip to content", "sign in",
               "首页", "上一页", "下一页", "尾页", "返回顶部", "版权所有", "网站地图", "联系我们", "关于我们",
               "免责声明", "隐私政策", "用户协议", "icp备", "设为首页", "加入收藏", "友情链接", "帮助中心", "登录",
               "注册")
# Markup: HTML tags, entities, URLs. Counted by the characters they cover.
MARKUP = (r"<[!/?]?[A-Za-z][^<>]{0,200}>|&(#[0-9]{1,7}|#[xX][0-9A-Fa-f]{1,6}|[A-Za-z]{2,8});"
          r"|(https?://|www\.)[^\s<>\"]+")
# Mojibake: UTF-8 read as cp1252 or Latin-1 turns each multi-byte character into a lead character (Â-ô)
# followed by continuation characters (U+0080-U+00BF or the cp1252 punctuation those bytes map to); ftfy
# looks for the same sequences. Also U+FFFD and `锟斤拷` (U+FFFD's UTF-8 bytes read as GBK).
_CONTINUATION = (r"\x{0080}-\x{00BF}\x{0152}\x{0153}\x{0160}\x{0161}\x{0178}\x{017D}\x{017E}\x{0192}\x{02C6}"
                 r"\x{02DC}\x{2013}\x{2014}\x{2018}-\x{201E}\x{2020}-\x{2022}\x{2026}\x{2030}\x{2039}\x{203A}"
                 r"\x{20AC}\x{2122}")
MOJIBAKE_PAIR = rf"[\x{{00C2}}-\x{{00F4}}][{_CONTINUATION}]"
MOJIBAKE_SINGLE = r"\x{FFFD}|锟斤拷"
# Where a text breaks into "lines" for the duplicate-line statistics: normalize folds line breaks into
# spaces, so sentence ends count as line ends too.
LINE_BREAKS = r"[\n\r。！？!?；;…]+"


# --- character classes: one lookup table over code points, built once from RE2's own Unicode tables ---

CLASSES = {"letter": r"\p{L}", "mark": r"\p{M}", "number": r"\p{N}", "digit": r"\p{Nd}", "han": r"\p{Han}",
           "kana": r"[\p{Hiragana}\p{Katakana}]", "hangul": r"\p{Hangul}", "latin": r"\p{Latin}", "curly": r"[{}]",
           "zh_stop": f"[{ZH_STOPCHARS}]"}
FLAG = {name: np.uint16(1 << i) for i, name in enumerate([*CLASSES, "common_han"])}
TABLE_SIZE = 0x32400  # through CJK extension H; code points above (private use, tags) are in no class


def _all_characters() -> tuple[np.ndarray, pa.Array]:
    """Every code point below TABLE_SIZE but the surrogates, and the same as an Arrow string array (one
    character a row), built from buffers: the UTF-8 bytes of all of them and their offsets."""
    cps = np.arange(TABLE_SIZE, dtype=np.uint32)
    cps = cps[(cps < 0xD800) | (cps >= 0xE000)]
    data = cps.astype("<u4").tobytes().decode("utf-32-le").encode("utf-8")
    widths = np.select([cps < 0x80, cps < 0x800, cps < 0x10000], [1, 2, 3], 4)
    offsets = np.concatenate([[0], np.cumsum(widths)]).astype(np.int32)
    return cps, pa.StringArray.from_buffers(len(cps), pa.py_buffer(offsets.tobytes()), pa.py_buffer(data))


def _common_han() -> list[int]:
    """The 3,755 level-1 hanzi of GB 2312 (the characters in common use, 1980), read from Python's own codec
    rather than a list pasted here: rows 16-55 of the table, 94 columns each, row 55 ending at column 89."""
    return [ord(bytes([hi, lo]).decode("gb2312")) for hi in range(0xB0, 0xD8) for lo in range(0xA1, 0xFF)
            if not (hi == 0xD7 and lo > 0xF9)]


@cache
def char_classes() -> np.ndarray:
    """uint16 flags (FLAG) for every code point below TABLE_SIZE: ~0.1 s once per process, and then every
    character-class count of a batch is a lookup and a bincount instead of a regex pass."""
    cps, chars = _all_characters()
    table = np.zeros(TABLE_SIZE, np.uint16)
    for name, pattern in CLASSES.items():
        hit = pc.match_substring_regex(chars, pattern).to_numpy(zero_copy_only=False)
        table[cps[hit]] |= FLAG[name]
    table[_common_han()] |= FLAG["common_han"]
    return table


# --- the units statistics count: characters (Chinese), words (English), lines ---

@dataclass(frozen=True)
class Units:
    """The units of every row of a batch, flattened in row order: a code per unit (equal units, equal codes),
    its length in characters and its row."""
    codes: np.ndarray    # int64
    lengths: np.ndarray  # int64
    row: np.ndarray      # int64, non-decreasing
    n_rows: int

    @cached_property
    def count(self) -> np.ndarray:
        return np.bincount(self.row, minlength=self.n_rows)

    @cached_property
    def end(self) -> np.ndarray:
        """For each unit, the index one past its row's last unit."""
        return np.cumsum(self.count)[self.row] if len(self.row) else np.empty(0, np.int64)

    @cached_property
    def chars(self) -> np.ndarray:
        """Characters per row (the units' lengths summed)."""
        return self.per_row(self.lengths)

    def per_row(self, values: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
        """Sum of `values` over each row's units (those in `mask`), as float64."""
        rows, values = (self.row, values) if mask is None else (self.row[mask], values[mask])
        return np.bincount(rows, weights=values.astype(np.float64), minlength=self.n_rows)

    def select(self, mask: np.ndarray) -> Units:
        return Units(self.codes[mask], self.lengths[mask], self.row[mask], self.n_rows)


def code_points(text: pa.Array) -> Units:
    """Every character of every row (whitespace included): its code point, and its row. The values of a
    string array sit end to end in one buffer, so the batch is decoded once, not row by row."""
    text = pc.fill_null(text, "").combine_chunks() if isinstance(text, pa.ChunkedArray) else pc.fill_null(text, "")
    if not pa.types.is_string(text.type):  # large_string: 64-bit offsets
        text = text.cast(pa.string())
    if len(text) == 0:
        return Units(*(np.empty(0, np.int64),) * 3, 0)
    lengths = pc.utf8_length(text).to_numpy(zero_copy_only=False).astype(np.int64)
    offsets = np.frombuffer(text.buffers()[1], np.int32, len(text) + 1, text.offset * 4)
    data = text.buffers()[2]
    raw = b"" if data is None else data.to_pybytes()[offsets[0]:offsets[-1]]
    codes = np.frombuffer(raw.decode("utf-8").encode("utf-32-le"), np.uint32).astype(np.int64)
    return Units(codes, np.ones(len(codes), np.int64), np.repeat(np.arange(len(text)), lengths), len(text))


def _split_units(text: pa.Array, pattern: str | None, lower: bool) -> Units:
    """Pieces of each row (split on whitespace, or on `pattern`), stripped, empty ones left out; equal pieces
    share a dictionary code."""
    lists = pc.utf8_split_whitespace(text) if pattern is None else pc.split_pattern_regex(text, pattern)
    row = pc.list_parent_indices(lists).to_numpy(zero_copy_only=False).astype(np.int64)
    pieces = pc.list_flatten(lists)
    if pattern is not None:
        pieces = pc.utf8_trim_whitespace(pieces)
    lengths = pc.utf8_length(pieces).to_numpy(zero_copy_only=False).astype(np.int64)
    keep = lengths > 0
    pieces = pieces.filter(pa.array(keep))
    codes = pc.dictionary_encode(pc.utf8_lower(pieces) if lower else pieces).indices
    return Units(codes.to_numpy(zero_copy_only=False).astype(np.int64), lengths[keep], row[keep], len(text))


def word_units(text: pa.Array) -> Units:
    """Whitespace-separated words, compared case-insensitively (`The` repeats `the`)."""
    return _split_units(text, None, lower=True)


def line_units(text: pa.Array) -> Units:
    """Lines: the pieces between line breaks and sentence ends (see LINE_BREAKS)."""
    return _split_units(text, LINE_BREAKS, lower=False)


def merge_units(a: Units, b: Units) -> Units:
    """The units of two streams over the same rows, each row taking its units from one of them."""
    row = np.concatenate([a.row, b.row])
    order = np.argsort(row, kind="stable")
    codes = np.concatenate([a.codes, b.codes + (a.codes.max() + 1 if len(a.codes) else 0)])
    return Units(codes[order], np.concatenate([a.lengths, b.lengths])[order], row[order], a.n_rows)


# --- the batch, as the statistics see it ---

def row_texts(table: pa.Table, cjk: np.ndarray) -> pa.Array:
    """A row's text: `text`, or its tokens joined (without spaces where tokens are characters)."""
    if "text" in table.column_names:
        return pc.fill_null(table.column("text").combine_chunks(), "")
    tokens = pc.fill_null(table.column("tokens").combine_chunks(), pa.scalar([], pa.list_(pa.string())))
    sep = pa.array(np.where(cjk, "", " "), pa.string())
    return pc.fill_null(pc.binary_join(tokens, sep), "")


def cjk_rows(table: pa.Table, text: pa.Array | None = None) -> np.ndarray:
    """Rows whose `lang` (primary subtag, any case) is a language written without spaces; a null `lang` is
    guessed from the script of the text."""
    lang = table.column("lang").combine_chunks()
    if lang.null_count and text is not None:
        lang = pc.coalesce(lang, T.guess_lang(text))
    primary = pc.utf8_lower(pc.list_element(pc.split_pattern(pc.fill_null(lang, ""), "-", max_splits=1), 0))
    return pc.is_in(primary, value_set=pa.array(CJK_LANGS)).to_numpy(zero_copy_only=False)


class Rows:
    """One batch: its texts, which rows are character-based, and what the statistics share (code points and
    their classes, units, lines), each computed once, when a statistic first needs it."""

    def __init__(self, table: pa.Table):
        self.n = table.num_rows
        if "text" in table.column_names:
            self.text = pc.fill_null(table.column("text").combine_chunks(), "")
            self.cjk = cjk_rows(table, self.text)
        else:
            self.cjk = cjk_rows(table)
            self.text = row_texts(table, self.cjk)

    @cached_property
    def chars(self) -> Units:
        return code_points(self.text)

    @cached_property
    def flags(self) -> np.ndarray:
        """The FLAG bits of every character of `chars`."""
        codes = self.chars.codes
        return np.where(codes < TABLE_SIZE, char_classes()[np.minimum(codes, TABLE_SIZE - 1)], 0)

    def has(self, *names: str) -> np.ndarray:
        """Per character: whether it is in any of the named classes."""
        return (self.flags & np.bitwise_or.reduce([FLAG[n] for n in names])) != 0

    def count(self, *names: str) -> np.ndarray:
        """Per row: characters in any of the named classes."""
        return self.chars.per_row(self.has(*names))

    def covered(self, pattern: str) -> np.ndarray:
        """Per row: characters covered by matches of `pattern`."""
        gone = pc.utf8_length(pc.replace_substring_regex(self.text, pattern, "")).to_numpy(zero_copy_only=False)
        return self.length - gone

    @cached_property
    def length(self) -> np.ndarray:
        return self.chars.count.astype(np.float64)

    @cached_property
    def words(self) -> Units:
        return word_units(self.text)

    @cached_property
    def units(self) -> Units:
        """Letters and digits (numbers) for character-based rows, words for the others. Punctuation is no unit
        of a Chinese text: a review padded with `。。。。。。` to a length limit repeats no content (its punctuation
        is special_frac's business), while `好评好评好评` does."""
        chars = self.chars.select(self.cjk[self.chars.row] & self.has("letter", "mark", "number"))
        return merge_units(chars, word_units(pc.if_else(pa.array(self.cjk), pa.scalar("", pa.string()), self.text)))

    @cached_property
    def lines(self) -> Units:
        return line_units(self.text)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den, NaN where den is 0 (a share of nothing is not 0: it is not applicable)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)


def _words_only(rows: Rows, values: np.ndarray) -> np.ndarray:
    return np.where(rows.cjk, np.nan, values)


# --- repetition (Gopher, Rae et al. 2021, table A1), over each row's units ---

_MIX = np.uint64(0x100000001B3)  # FNV-64 prime: n-gram hashes are polynomials in it, wrapping at 2^64
_ROW_BITS = 24                   # the sort key keeps a row number in its top bits (batches < 16M rows)


def _fmix64(h: np.ndarray) -> np.ndarray:
    """MurmurHash3's finaliser: every input bit reaches every output bit, so the top 40 bits the sort key
    keeps tell apart n-grams that differ only in their last unit (the polynomial alone puts it in low bits)."""
    for shift, mult in ((33, 0xFF51AFD7ED558CCD), (33, 0xC4CEB9FE1A85EC53)):
        h = (h ^ (h >> np.uint64(shift))) * np.uint64(mult)
    return h ^ (h >> np.uint64(33))


def ngram_groups(u: Units, n: int):
    """The n-grams that fit inside their row, sorted so equal n-grams of a row are adjacent, first occurrence
    first: (first unit of each, its row, whether it starts a group). Sorted by one uint64 key: the row in the
    top 24 bits, 40 bits of the n-gram's hash below (two different n-grams of one row share those 40 bits
    with odds ~ pairs / 2^40: not a concern at row sizes)."""
    starts = np.flatnonzero(np.arange(len(u.codes)) + n <= u.end)
    codes = u.codes.astype(np.uint64)
    h = codes[starts].copy()
    for j in range(1, n):
        h = h * _MIX + codes[starts + j]
    key = (u.row[starts].astype(np.uint64) << np.uint64(64 - _ROW_BITS)) | (_fmix64(h) >> np.uint64(_ROW_BITS))
    order = np.argsort(key, kind="stable")  # stable: within a group, positions ascend
    starts, key = starts[order], key[order]
    first = np.ones(len(starts), bool)
    first[1:] = key[1:] != key[:-1]
    return starts, u.row[starts], first


def dup_ngram_frac(rows: Rows, n: int) -> np.ndarray:
    """Share of the row's characters covered by an n-gram that occurred earlier in the row (Gopher's
    duplicate n-gram character fraction; overlapping repeats count each character once)."""
    u = rows.units
    starts, _, first = ngram_groups(u, n)
    again = starts[~first]
    depth = np.zeros(len(u.codes) + 1, np.int64)
    np.add.at(depth, again, 1)
    np.add.at(depth, again + n, -1)
    covered = np.cumsum(depth)[:-1] > 0
    return _ratio(u.per_row(u.lengths, covered), u.chars)


def top_ngram_frac(rows: Rows, n: int) -> np.ndarray:
    """Share of the row's characters in the occurrences of its most frequent n-gram, when that n-gram occurs
    at least twice (Gopher's top n-gram character fraction; a single occurrence is not repetition, and a
    short text is all one n-gram). Overlapping occurrences are capped at the whole text."""
    u = rows.units
    starts, group_rows, first = ngram_groups(u, n)
    bounds = np.flatnonzero(first)
    counts = np.diff(np.append(bounds, len(starts)))
    lead = starts[bounds]
    cum = np.concatenate([[0], np.cumsum(u.lengths)])
    chars = (cum[lead + n] - cum[lead]) * np.where(counts >= 2, counts, 0)
    best = np.zeros(u.n_rows)
    np.maximum.at(best, group_rows[bounds], chars.astype(np.float64))
    return np.minimum(_ratio(best, u.chars), 1.0)


def dup_line_frac(rows: Rows) -> np.ndarray:
    """Share of the row's lines that repeat an earlier line of it (Gopher, 0.30)."""
    u = rows.lines
    _, group_rows, first = ngram_groups(u, 1)
    return _ratio(np.bincount(group_rows[~first], minlength=u.n_rows).astype(np.float64), u.count)


def dup_line_char_frac(rows: Rows) -> np.ndarray:
    """Share of the row's line characters in lines that repeat an earlier line (Gopher, 0.20)."""
    u = rows.lines
    starts, group_rows, first = ngram_groups(u, 1)
    repeats = np.bincount(group_rows[~first], weights=u.lengths[starts[~first]].astype(np.float64),
                          minlength=u.n_rows)
    return _ratio(repeats, u.chars)


# --- length, character classes, script ---

def units(rows: Rows) -> np.ndarray:
    """Words, or letters and digits in character-based rows: the units the n-gram statistics count."""
    return rows.units.count.astype(np.float64)


def mean_word_len(rows: Rows) -> np.ndarray:
    """Mean word length in characters (word-based rows; Gopher keeps 3 to 10)."""
    u = rows.words
    return _words_only(rows, _ratio(u.chars, u.count))


def max_word_len(rows: Rows) -> np.ndarray:
    """Longest word in characters (word-based rows; C4 drops pages with a word over 1000)."""
    u = rows.words
    longest = np.zeros(u.n_rows)
    np.maximum.at(longest, u.row, u.lengths.astype(np.float64))
    return _words_only(rows, np.where(u.count > 0, longest, np.nan))


def alpha_word_frac(rows: Rows) -> np.ndarray:
    """Share of words with at least one letter (word-based rows; Gopher keeps >= 0.8)."""
    words = pc.utf8_split_whitespace(rows.text)
    has_letter = pc.match_substring_regex(pc.list_flatten(words), r"\p{L}").to_numpy(zero_copy_only=False)
    parent = pc.list_parent_indices(words).to_numpy(zero_copy_only=False)
    total = np.bincount(parent, minlength=rows.n)
    return _words_only(rows, _ratio(np.bincount(parent, weights=has_letter, minlength=rows.n), total))


def special_frac(rows: Rows) -> np.ndarray:
    """Share of characters, whitespace included, that are not letters: punctuation, symbols, digits, emoji,
    spaces (the `special characters` ratio of ROOTS, Laurençon et al. 2022) — with a run of one repeated such
    character counted once: `太慢了......` or `好评!!!!!!` is a review with one pause, not six symbols (NFKC
    turns `……` into `......`), while symbol junk (`#$@!%^`) rarely repeats a character."""
    u, special = rows.chars, ~rows.has("letter", "mark")
    again = np.zeros(len(u.codes), bool)
    again[1:] = (u.codes[1:] == u.codes[:-1]) & (u.row[1:] == u.row[:-1]) & special[1:]
    length = rows.length - u.per_row(again)
    return _ratio(u.per_row(special & ~again), length)


def digit_frac(rows: Rows) -> np.ndarray:
    """Share of characters that are digits (NeMo Curator's NumbersFilter)."""
    return _ratio(rows.count("digit"), rows.length)


def script_frac(rows: Rows) -> np.ndarray:
    """Share of the letters that belong to the scripts of the row's language family — Han, kana and Hangul
    (each weighted x3, see CJK_WEIGHT) for zh/ja/ko rows, Latin for the others: a language-ID confidence
    without a model. Mojibake and Latin junk in a Chinese row, Han in an English one, score low."""
    letters, latin = rows.count("letter"), rows.count("latin")
    cjk = rows.count("han", "kana", "hangul")
    expected = np.where(rows.cjk, CJK_WEIGHT * cjk, latin)
    other = letters - np.where(rows.cjk, cjk, latin)
    return _ratio(expected, expected + other)


def rare_han_frac(rows: Rows) -> np.ndarray:
    """Share of the Han characters outside the 3,755 in common use (GB 2312 level 1). Random CJK and UTF-8
    read as GBK (`鍝堝搱`) are mostly rare characters; Chinese prose almost never is. Traditional-script text
    is too: give it its own threshold (per_lang) or its own list."""
    han = rows.count("han")
    return _ratio(han - rows.count("common_han"), han)


def mojibake_frac(rows: Rows) -> np.ndarray:
    """Share of characters in mojibake sequences (see MOJIBAKE_PAIR), U+FFFD and `锟斤拷` included."""
    return _ratio(rows.covered(MOJIBAKE_PAIR) + rows.covered(MOJIBAKE_SINGLE), rows.length)


def stopword_frac(rows: Rows) -> np.ndarray:
    """Share of the units that are stop words: Gopher's eight English words (`the`, `be`, `to`, `of`, `and`,
    `that`, `have`, `with`; punctuation around a word ignored) or Chinese function characters (ZH_STOPCHARS)."""
    words = pc.utf8_split_whitespace(pc.utf8_lower(rows.text))
    bare = pc.replace_substring_regex(pc.list_flatten(words), r"^[\p{P}\p{S}]+|[\p{P}\p{S}]+$", "")
    hits = pc.is_in(bare, value_set=pa.array(EN_STOPWORDS)).to_numpy(zero_copy_only=False)
    parent = pc.list_parent_indices(words).to_numpy(zero_copy_only=False)
    en = np.bincount(parent, weights=hits, minlength=rows.n)
    return _ratio(np.where(rows.cjk, rows.count("zh_stop"), en), rows.units.count)


def markup_frac(rows: Rows) -> np.ndarray:
    """Share of characters inside HTML tags, entities and URLs (NeMo Curator drops > 0.2 of URLs)."""
    return _ratio(rows.covered(MARKUP), rows.length)


def boilerplate(rows: Rows) -> np.ndarray:
    """How many of the BOILERPLATE strings (C4's, and Chinese page navigation) the row contains, each
    counted once."""
    lower = pc.utf8_lower(rows.text)
    out = np.zeros(rows.n)
    # One regex pass finds the rows with any string; only those (few) are searched string by string.
    some = np.flatnonzero(pc.match_substring_regex(lower, "|".join(map(re.escape, BOILERPLATE)))
                          .to_numpy(zero_copy_only=False))
    if len(some):
        candidates = lower.take(pa.array(some))
        out[some] = sum(pc.match_substring(candidates, s).to_numpy(zero_copy_only=False).astype(np.float64)
                        for s in BOILERPLATE)
    return out


def curly(rows: Rows) -> np.ndarray:
    """Curly brackets: C4 drops any page holding one (code, templates, JSON)."""
    return rows.count("curly")


@dataclass(frozen=True)
class Stat:
    name: str
    fn: Callable[[Rows], np.ndarray]

    @property
    def column(self) -> str:
        return PREFIX + self.name

    @property
    def doc(self) -> str:
        """The function's docstring on one line, with n filled in for the n-gram statistics."""
        if not isinstance(self.fn, partial):
            return " ".join((self.fn.__doc__ or "").split())
        n = self.fn.keywords["n"]
        return " ".join(self.fn.func.__doc__.split()).replace("an n-gram", "a n-gram").replace("n-gram", f"{n}-gram")


# The registry: one row a statistic. n-grams are of words, or of characters in character-based rows.
STATS: dict[str, Stat] = {s.name: s for s in [
    Stat("units", units),
    Stat("mean_word_len", mean_word_len),
    Stat("max_word_len", max_word_len),
    Stat("alpha_word_frac", alpha_word_frac),
    Stat("stopword_frac", stopword_frac),
    Stat("special_frac", special_frac),
    Stat("digit_frac", digit_frac),
    Stat("script_frac", script_frac),
    Stat("rare_han_frac", rare_han_frac),
    Stat("mojibake_frac", mojibake_frac),
    Stat("markup_frac", markup_frac),
    Stat("boilerplate", boilerplate),
    Stat("curly", curly),
    Stat("dup_line_frac", dup_line_frac),
    Stat("dup_line_char_frac", dup_line_char_frac),
    *[Stat(f"top{n}_frac", partial(top_ngram_frac, n=n)) for n in (2, 3, 4)],
    *[Stat(f"dup{n}_frac", partial(dup_ngram_frac, n=n)) for n in range(5, 11)],
]}


@dataclass(frozen=True)
class QualityScoreParams(SplitScoped):
    stats: list[str] | None = param(None, "the statistics to compute (default: all; `dataprep stages "
                                    "quality_score` lists them)")

    def __post_init__(self):
        if self.stats is not None:
            unknown = [s for s in self.stats if s not in STATS]
            if unknown or not self.stats or len(set(self.stats)) != len(self.stats):
                raise ValueError(f"stats must list some of {', '.join(STATS)}, each once; got {self.stats}")


def score(table: pa.Table, names=None) -> dict[str, np.ndarray]:
    """{column: float64 values} of the named statistics (all by default) for the rows of `table`."""
    rows = Rows(table)
    return {STATS[n].column: STATS[n].fn(rows).astype(np.float64) for n in (names or STATS)}


def quality_columns(table: pa.Table, p: QualityScoreParams) -> pa.Table:
    for column, values in score(table, p.stats).items():
        array = pa.array(values, pa.float64(), mask=np.isnan(values))
        if column in table.column_names:  # scored again: the new values replace the old
            table = table.drop_columns([column])
        table = table.append_column(column, array)
    return table


# v2: special_frac counts a run of one repeated non-letter once (padding like `......` is not junk).
quality_columns.__doc__ = (
    "Add one `q_<name>` float column per statistic (null where it does not apply: a word statistic on a "
    "character-based row, a share of nothing). Rows whose `lang` is zh, ja, ko or yue (any subtag; a null "
    "`lang` is guessed from the script) count characters, the others words.\n\n"
    "Drop reasons: none (rules are `quality_filter`, a separate cheap node).\n\nStatistics:\n"
    + "\n".join(f"  {s.column:<22} {s.doc}" for s in STATS.values()))

quality_score = stage("quality_score", version=2, kind="map", params=QualityScoreParams,
                      consumes=("cls", "bio"))(quality_columns)
