"""How an adapter holds up: a seeded perturbation suite, and out-of-domain detection from its own confidence.

Perturbations (each row's edits are drawn from `seed` and the row's position, so a row is perturbed the same
way whatever else is scored with it):
- `char_insert`, `char_delete`, `char_swap`: one edit per 10 characters (at least one) — a character of the
  text itself inserted, a character dropped, two neighbours swapped;
- `width`: ASCII letters, digits and punctuation to their full-width forms, full-width ones to ASCII
  (Chinese text mixes both; a model that learned one form sees the other);
- `punctuation`: Chinese and ASCII punctuation exchanged (，↔, 。↔. ！↔! ？↔? ：↔: ；↔;);
- `whitespace`: spaces inserted between characters, doubled where there are some;
- `typo` (Latin letters only): a letter replaced by a neighbour on a QWERTY keyboard;
- `entity_swap` (NER only): each entity mention replaced by another mention of the same type from the rows
  being scored; spans are kept and the tags follow the new mention's length.
For NER the character edits apply inside tokens (a token never disappears), so the tags stay aligned.

Out-of-domain detection scores each row by the maximum softmax probability (MSP; Hendrycks & Gimpel 2017)
and by the negative energy, logsumexp of the logits (Liu et al. 2020); higher means "looks in-domain". AUROC
is the chance that an in-domain row scores above an out-of-domain one (ties count half); FPR@95%TPR the share
of out-of-domain rows accepted at the threshold that keeps 95% of in-domain rows. For NER a sentence scores
the mean over its tokens.
"""
from __future__ import annotations

import random
import re
from collections.abc import Callable

import numpy as np
import pyarrow as pa

EDITS_PER_CHAR = 0.1
ASCII_TO_CJK_PUNCT = {",": "，", ".": "。", "!": "！", "?": "？", ":": "：", ";": "；"}
CJK_TO_ASCII_PUNCT = {v: k for k, v in ASCII_TO_CJK_PUNCT.items()}
QWERTY = ["qwertyuiop", "asdfghjkl", "zxcvbnm"]


def _neighbours() -> dict[str, str]:
    out: dict[str, str] = {}
    for r, row in enumerate(QWERTY):
        for c, ch in enumerate(row):
            near = [row[c + d] for d in (-1, 1) if 0 <= c + d < len(row)]
            near += [QWERTY[r + d][c] for d in (-1, 1) if 0 <= r + d < len(QWERTY) and c < len(QWERTY[r + d])]
            out[ch] = "".join(near)
    return out


NEIGHBOURS = _neighbours()
LATIN = re.compile(r"[A-Za-z]")


# --------------------------------------------------------------------------------------- text perturbations

def _edits(text: str) -> int:
    return max(1, round(len(text) * EDITS_PER_CHAR))


def char_insert(text: str, rng: random.Random) -> str:
    chars = list(text)
    for _ in range(_edits(text) if chars else 0):
        chars.insert(rng.randrange(len(chars) + 1), rng.choice(text))
    return "".join(chars)


def char_delete(text: str, rng: random.Random) -> str:
    chars = list(text)
    for _ in range(min(_edits(text), len(chars) - 1)):  # never the whole text
        del chars[rng.randrange(len(chars))]
    return "".join(chars)


def char_swap(text: str, rng: random.Random) -> str:
    chars = list(text)
    for _ in range(_edits(text) if len(chars) > 1 else 0):
        i = rng.randrange(len(chars) - 1)
        chars[i], chars[i + 1] = chars[i + 1], chars[i]
    return "".join(chars)


def width(text: str, rng: random.Random) -> str:
    """Half-width ASCII (! to ~) to full-width (U+FF01..U+FF5E) and back; the space to the ideographic one."""
    def flip(ch: str) -> str:
        code = ord(ch)
        if 0x21 <= code <= 0x7E:
            return chr(code + 0xFEE0)
        if 0xFF01 <= code <= 0xFF5E:
            return chr(code - 0xFEE0)
        return {" ": "\u3000", "\u3000": " "}.get(ch, ch)
    return "".join(flip(ch) for ch in text)


def punctuation(text: str, rng: random.Random) -> str:
    return "".join(CJK_TO_ASCII_PUNCT.get(ch, ASCII_TO_CJK_PUNCT.get(ch, ch)) for ch in text)


def whitespace(text: str, rng: random.Random) -> str:
    chars = list(text)
    for _ in range(_edits(text) if chars else 0):
        chars.insert(rng.randrange(1, len(chars) + 1) if len(chars) > 1 else 1, " ")
    return re.sub(" ", lambda m: "  " if rng.random() < 0.5 else " ", "".join(chars))


def typo(text: str, rng: random.Random) -> str:
    letters = [i for i, ch in enumerate(text) if LATIN.match(ch)]
    chars = list(text)
    for i in rng.sample(letters, min(len(letters), _edits("".join(text[k] for k in letters)))) if letters else []:
        near = NEIGHBOURS.get(chars[i].lower(), "")
        if near:
            swap = rng.choice(near)
            chars[i] = swap.upper() if chars[i].isupper() else swap
    return "".join(chars)


TEXT_PERTURBATIONS: dict[str, Callable[[str, random.Random], str]] = {
    "char_insert": char_insert, "char_delete": char_delete, "char_swap": char_swap, "width": width,
    "punctuation": punctuation, "whitespace": whitespace, "typo": typo}
# Inside a token only (a token never disappears, so tags stay aligned); whitespace would split tokens.
TOKEN_PERTURBATIONS = ("char_swap", "width", "punctuation", "typo")


def _rng(seed: int, name: str, row: int) -> random.Random:
    return random.Random(f"{seed}:{name}:{row}")


def perturb_texts(texts: list[str], name: str, seed: int) -> list[str]:
    fn = TEXT_PERTURBATIONS[name]
    return [fn(t, _rng(seed, name, i)) if t else t for i, t in enumerate(texts)]


def perturb_tokens(sentences: list[list[str]], name: str, seed: int) -> list[list[str]]:
    fn = TEXT_PERTURBATIONS[name]
    out = []
    for i, tokens in enumerate(sentences):
        rng = _rng(seed, name, i)
        out.append([fn(t, rng) or t for t in tokens])  # an edit that empties a token leaves it as it was
    return out


def swap_entities(sentences: list[list[str]], tags: list[list[str]], seed: int, joiner: str = ""
                  ) -> tuple[list[list[str]], list[list[str]]]:
    """Each mention replaced by another mention of its type from these rows (when there is another)."""
    from dataprep.stages.bio import Span, bio2, spans
    found = [spans(t, "IOB2") for t in tags]
    pool: dict[str, list[tuple[str, ...]]] = {}
    for tokens, row in zip(sentences, found):
        for s in row:
            mention = tuple(tokens[s.start:s.end])
            if mention not in pool.setdefault(s.type, []):
                pool[s.type].append(mention)
    new_tokens, new_tags = [], []
    for i, (tokens, row) in enumerate(zip(sentences, found)):
        rng = _rng(seed, "entity_swap", i)
        out_tokens, out_spans, at = [], [], 0
        for s in row:
            out_tokens += tokens[at:s.start]
            others = [m for m in pool[s.type] if m != tuple(tokens[s.start:s.end])]
            mention = list(rng.choice(others)) if others else tokens[s.start:s.end]
            out_spans.append((len(out_tokens), len(out_tokens) + len(mention), s.type))
            out_tokens += mention
            at = s.end
        out_tokens += tokens[at:]
        new_tokens.append(out_tokens)
        new_tags.append(bio2([Span(a, b, t) for a, b, t in out_spans], len(out_tokens)))
    return new_tokens, new_tags


# ------------------------------------------------------------------------------------------------- suite

def robustness(adapter, table: pa.Table, seed: int = 13, batch_size: int = 32) -> dict:
    """The adapter's headline metric on `table` clean and under each perturbation, and the drop from clean:
    accuracy and macro-F1 (cls), entity F1 (bio)."""
    task = adapter.task
    clean = adapter.evaluate(table, batch_size)
    key = "f1" if task.words else "accuracy"
    out = {"metric": key, "clean": clean[key], "rows": table.num_rows, "seed": seed, "perturbations": {}}
    for name, variant in _variants(table, task.words, seed):
        scored = adapter.evaluate(variant, batch_size)
        changed = _changed(table, variant, task.words)
        entry = {key: scored[key], "drop": clean[key] - scored[key], "rows_changed": changed}
        if not task.words:
            entry["macro_f1"] = scored["macro_f1"]
        out["perturbations"][name] = entry
    return out


def _variants(table: pa.Table, words: bool, seed: int):
    if not words:
        texts = table.column("text").to_pylist()
        for name in TEXT_PERTURBATIONS:
            yield name, table.set_column(table.column_names.index("text"), "text",
                                         pa.array(perturb_texts(texts, name, seed), pa.string()))
        return
    tokens, tags = table.column("tokens").to_pylist(), table.column("tags").to_pylist()
    for name in TOKEN_PERTURBATIONS:
        yield name, _with_tokens(table, perturb_tokens(tokens, name, seed), tags)
    yield "entity_swap", _with_tokens(table, *swap_entities(tokens, tags, seed))


def _with_tokens(table: pa.Table, tokens: list, tags: list) -> pa.Table:
    table = table.set_column(table.column_names.index("tokens"), "tokens", pa.array(tokens, pa.list_(pa.string())))
    return table.set_column(table.column_names.index("tags"), "tags", pa.array(tags, pa.list_(pa.string())))


def _changed(before: pa.Table, after: pa.Table, words: bool) -> int:
    column = "tokens" if words else "text"
    return sum(a != b for a, b in zip(before.column(column).to_pylist(), after.column(column).to_pylist()))


# ---------------------------------------------------------------------------------------------------- OOD

def confidence(adapter, table: pa.Table, batch_size: int = 32) -> dict[str, np.ndarray]:
    """Per row: maximum softmax probability and negative energy (logsumexp of the logits)."""
    logits = adapter.token_logits(table.column("tokens").to_pylist(), batch_size) if adapter.task.words else \
        [row[None, :] for row in adapter.logits(table.column("text").to_pylist(), batch_size)]
    msp, energy = [], []
    for row in logits:  # (pieces, labels): one row for a sentence classifier
        top = row.max(1, keepdims=True)
        lse = top[:, 0] + np.log(np.exp(row - top).sum(1))
        msp.append(float(np.mean(np.exp(top[:, 0] - lse))))
        energy.append(float(np.mean(lse)))
    return {"msp": np.array(msp), "energy": np.array(energy)}


def auroc(inside: np.ndarray, outside: np.ndarray) -> float:
    """P(score of an in-domain row > score of an out-of-domain row), ties counting half (Mann-Whitney U)."""
    scores = np.concatenate([inside, outside])
    order = scores.argsort(kind="mergesort")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    i = 0
    while i < len(scores):  # average ranks over ties
        j = i
        while j + 1 < len(scores) and sorted_scores[j + 1] == sorted_scores[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    u = ranks[:len(inside)].sum() - len(inside) * (len(inside) + 1) / 2
    return float(u / (len(inside) * len(outside)))


def fpr_at_95_tpr(inside: np.ndarray, outside: np.ndarray) -> float:
    """The share of out-of-domain rows at or above the threshold that keeps 95% of in-domain rows."""
    threshold = np.quantile(inside, 0.05, method="lower")
    return float(np.mean(outside >= threshold))


def ood(adapter, inside: pa.Table, outside: pa.Table, batch_size: int = 32) -> dict:
    """AUROC and FPR@95%TPR of each confidence score, in-domain rows against out-of-domain ones."""
    a, b = confidence(adapter, inside, batch_size), confidence(adapter, outside, batch_size)
    return {"in_rows": inside.num_rows, "out_rows": outside.num_rows,
            **{name: {"auroc": auroc(a[name], b[name]), "fpr_at_95_tpr": fpr_at_95_tpr(a[name], b[name])}
               for name in a}}
