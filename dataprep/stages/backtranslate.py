"""backtranslate: paraphrase each text through a pivot language (zh → en → zh) and add the paraphrases as rows."""
from __future__ import annotations

import unicodedata
import warnings
from dataclasses import dataclass
from typing import Literal

import pyarrow as pa

from dataprep.errors import DataprepError, SchemaError
from dataprep.models.compute import TorchCompute, torch_for
from dataprep.models.seq2seq import Decoding, Seq2Seq
from dataprep.models.translator import direction_dir
from dataprep.outcome import Outcome
from dataprep.registry import SplitScoped, param, stage

LINEAGE = ("parent_id", "aug", "bt_pivot")
TEXT_DERIVED = ("ppl",)  # columns computed from the text: null on a paraphrase until recomputed
FILTERS = ("bt_runaway", "bt_empty", "bt_identical", "bt_length_ratio", "bt_duplicate")


@dataclass(frozen=True)
class BacktranslateParams(SplitScoped, TorchCompute):
    forward: str | dict[str, str] | None = param(
        None, "source → pivot model: {node: NAME} of a train_translator node, a directory or a hub id "
        "(Helsinki-NLP/opus-mt-zh-en)", model_ref=True)
    backward: str | dict[str, str] | None = param(
        None, "pivot → source model, likewise (Helsinki-NLP/opus-mt-en-zh); default: the forward reference, "
        "for a train_translator pair or one multilingual model (M2M100, NLLB)", model_ref=True)
    pivot: str = param("en", "pivot language code (eng_Latn for NLLB)")
    src_lang: str | None = param(None, "language code of the texts (zho_Hans for NLLB); default: the one "
                                 "direction into the pivot that a translator pair holds")
    tgt_lang: str | None = param(None, "language code of the back-translations; default: src_lang")
    decoding: Literal["greedy", "beam", "sample"] = param("greedy", "greedy, beam search or sampling")
    num_beams: int = param(4, "beams for decoding: beam")
    temperature: float = param(1.0, "sampling temperature (decoding: sample)")
    top_p: float = param(0.95, "nucleus sampling mass (decoding: sample)")
    n_variants: int = param(1, "candidates per row: pivots from the forward model (the n best beams, or n "
                            "samples), each translated back once")
    max_new_tokens: int = param(128, "hard cap on a generated translation, in tokens")
    max_token_ratio: float = param(3.0, "a translation may take at most this many times its source's tokens "
                                   "(+8); a longer one is a runaway (`bt_runaway`): generation stops there")
    min_ratio: float = param(0.5, "drop a candidate shorter than this many times the source (characters)")
    max_ratio: float = param(2.0, "drop a candidate longer than this many times the source (characters)")
    min_added_share: float = param(0.1, "the node fails (or warns, see on_low_yield) when it adds fewer rows "
                                   "than this share of the rows it translated: a translator that only produces "
                                   "discarded text should not pass silently")
    on_low_yield: Literal["fail", "warn"] = param("fail", "fail: stop the node with an error; warn: commit it, "
                                                  "warn on the terminal and note bt_low_yield=1 in its ledger")
    seed: int = param(13, "sampling seed (the pipeline's defaults.seed fills it)")
    batch_size: int = param(64, "sentences per generate call (sorted by length first); part of the key: the "
                            "batching changes the padding, and so the floats")

    def __post_init__(self):
        super().__post_init__()
        if not 0 <= self.min_added_share <= 1 or self.max_token_ratio <= 0:
            raise ValueError(f"need 0 <= min_added_share <= 1 and max_token_ratio > 0, got {self.min_added_share}, "
                             f"{self.max_token_ratio}")
        if self.forward is None:
            raise ValueError("backtranslate needs a forward model, e.g. forward: {node: mt} (train_translator) "
                             "or forward: Helsinki-NLP/opus-mt-zh-en with backward: Helsinki-NLP/opus-mt-en-zh")
        if self.n_variants < 1 or (self.decoding == "greedy" and self.n_variants > 1):
            raise ValueError(f"n_variants must be 1 with greedy decoding (there is one greedy output) and at "
                             f"least 1 otherwise, got {self.n_variants}; use decoding: beam or sample")
        if self.decoding == "beam" and self.n_variants > self.num_beams:
            raise ValueError(f"n_variants ({self.n_variants}) cannot exceed num_beams ({self.num_beams})")
        if not (0 <= self.min_ratio <= self.max_ratio):
            raise ValueError(f"need 0 <= min_ratio <= max_ratio, got {self.min_ratio}, {self.max_ratio}")
        if self.temperature <= 0 or not 0 < self.top_p <= 1:
            raise ValueError(f"need temperature > 0 and 0 < top_p <= 1, got {self.temperature}, {self.top_p}")


def check_yield(notes: dict, p: BacktranslateParams, node: str) -> dict:
    """The node-level check the runner calls once every batch is done: too few added rows fail the node (or,
    with on_low_yield: warn, add the note bt_low_yield=1 and a warning)."""
    translated, added = notes.get("bt_translated", 0), notes.get("bt_added", 0)
    if not translated or added >= p.min_added_share * translated:
        return {}
    discarded = ", ".join(f"{k}={notes.get(k, 0)}" for k in FILTERS if notes.get(k))
    message = (f"nodes.{node}: backtranslate added {added} rows for {translated} translated "
               f"({added / translated:.1%}, below min_added_share={p.min_added_share:g}); discarded: "
               f"{discarded or 'none'}. The translator is too weak for these texts, or the filters too strict.")
    if p.on_low_yield == "fail":
        raise LowYield(message)
    warnings.warn(message, stacklevel=2)
    return {"bt_low_yield": 1}


class LowYield(DataprepError):
    """Back-translation added fewer rows than its min_added_share; the node is not committed."""


@stage("backtranslate", version=2, kind="model", params=BacktranslateParams, consumes=("cls",),
       check_totals=check_yield)
class Backtranslate:
    """Translate each text into the pivot language and back; keep every input row and add the surviving
    round trips as new rows: id `<id>#bt<k>` (k = the variant, 1..n_variants), `parent_id`, `aug` `bt:<pivot>`,
    the pivot sentence in `bt_pivot` (null on other rows), and the parent's label, lang, source and split.
    Columns computed from the text (`ppl`) are null on added rows: send them through ppl_score / ppl_filter and
    exact_dedup again. Generation is batched: texts are sorted by token length so a batch pads little, and
    each output goes back to its row — greedy outputs do not depend on the batching. Sampling is seeded per
    call (its draws depend on the batch composition, like any batched sampler).

    A candidate is discarded, and counted in the node's notes, when either translation did not end within
    `max_token_ratio` times its source's tokens + 8, or `max_new_tokens` (`bt_runaway`: generation stops
    there, so an untrained or looping model costs little), when it is empty (`bt_empty`), equal to the
    source after NFKC, case folding and removing whitespace (`bt_identical`), shorter than min_ratio or longer
    than max_ratio times the source in characters (`bt_length_ratio`), or equal in that sense to an earlier
    candidate of the same row (`bt_duplicate`). Rows without text are kept and not translated.

    Models: `{node: NAME}` of a train_translator node picks its `<src_lang>-<pivot>` and `<pivot>-<tgt_lang>`
    directions; a hub id or directory is used as it is. For a multilingual tokenizer (one with `src_lang`,
    as M2M100's and NLLB's have) the codes set the source language and force the target language's token
    first (`forced_bos_token_id`); a Marian tokenizer knowing `>>code<<` gets it prefixed to each text.

    When the node adds fewer rows than `min_added_share` of the rows it translated, it fails with an error
    naming the counts (`on_low_yield: warn` commits it with a warning and the note `bt_low_yield`).

    Drop reasons: none (every input row is kept; discarded candidates never were rows).
    """

    def __init__(self, p: BacktranslateParams):
        self.p, self.calls = p, 0
        forward, src, _ = direction_dir(p.forward, p.src_lang, p.pivot)
        tgt = p.tgt_lang or p.src_lang or src
        backward, _, _ = direction_dir(p.backward or p.forward, p.pivot, tgt)
        torch_for(p)
        decoding = Decoding(p.decoding, p.num_beams, p.temperature, p.top_p, p.max_new_tokens,
                            p.max_token_ratio, batch_size=p.batch_size)
        self.forward = Seq2Seq(forward, src, p.pivot, decoding)
        # One multilingual model (M2M100, NLLB) serves both directions: load it once, not twice.
        shared = self.forward.model if backward == forward else None
        self.backward = Seq2Seq(backward, p.pivot, tgt, decoding, model=shared)

    def __call__(self, table: pa.Table) -> Outcome:
        if "text" not in table.column_names:
            raise SchemaError("backtranslate rewrites `text` (cls rows); NER tags could not follow the tokens of "
                              "a translation, so bio rows are not back-translated")
        import torch
        torch.manual_seed(self.p.seed + self.calls)  # sampling only; greedy and beam draw nothing
        self.calls += 1
        texts = [t or "" for t in table.column("text").to_pylist()]
        todo = [i for i, t in enumerate(texts) if t.strip()]
        pivots = self.forward.translate([texts[i] for i in todo], self.p.n_variants)
        flat = [v for vs in pivots for v in vs if v is not None]  # a runaway pivot is not translated back
        back = iter(self.backward.translate(flat, 1))
        parents, candidates, notes = [], [], dict.fromkeys(FILTERS, 0)
        for i, variants in zip(todo, pivots):
            source_key = fold(texts[i])
            seen = {source_key}
            for k, pivot in enumerate(variants, start=1):
                text = None if pivot is None else next(back)[0]
                reason = judge(texts[i], source_key, text, seen, self.p)
                if reason:
                    notes[reason] += 1
                else:
                    parents.append(i)
                    candidates.append((k, text, pivot))
        notes |= {"bt_translated": len(todo), "bt_candidates": len(todo) * self.p.n_variants,
                  "bt_added": len(candidates)}
        return Outcome(with_lineage(table), added=added_rows(table, parents, candidates, self.p.pivot),
                       notes=notes)


def fold(text: str) -> str:
    """What `bt_identical` and `bt_duplicate` compare: NFKC, case-folded, without whitespace."""
    return "".join(unicodedata.normalize("NFKC", text).casefold().split())


def judge(source: str, source_key: str, candidate: str | None, seen: set[str], p: BacktranslateParams
          ) -> str | None:
    """The filter a candidate fails, or None; a candidate that passes joins `seen` (its row's texts).
    `source_key` is fold(source), computed once per row rather than once per candidate; a candidate is None
    when its pivot or its way back ran away."""
    if candidate is None:
        return "bt_runaway"
    if not candidate.strip():
        return "bt_empty"
    key = fold(candidate)
    if key == source_key:
        return "bt_identical"
    ratio = len(candidate.strip()) / max(1, len(source.strip()))
    if not p.min_ratio <= ratio <= p.max_ratio:
        return "bt_length_ratio"
    if key in seen:
        return "bt_duplicate"
    seen.add(key)
    return None


def with_lineage(table: pa.Table) -> pa.Table:
    """The input rows with null parent_id / aug / bt_pivot where absent, so every batch has one schema."""
    for name in LINEAGE:
        if name not in table.column_names:
            table = table.append_column(name, pa.nulls(table.num_rows, pa.string()))
    return table


def added_rows(table: pa.Table, parents: list[int], candidates: list[tuple[int, str, str]],
               pivot: str) -> pa.Table | None:
    if not parents:
        return None
    rows = with_lineage(table).take(pa.array(parents, pa.int64()))
    parent_ids = rows.column("id").to_pylist()
    new = {"id": [f"{pid}#bt{k}" for pid, (k, _, _) in zip(parent_ids, candidates)],
           "text": [text for _, text, _ in candidates], "parent_id": parent_ids,
           "aug": [f"bt:{pivot}"] * len(parents), "bt_pivot": [pv for _, _, pv in candidates]}
    for name, values in new.items():
        rows = rows.set_column(rows.column_names.index(name), name, pa.array(values, pa.string()))
    for name in TEXT_DERIVED:
        if name in rows.column_names:
            i = rows.column_names.index(name)
            rows = rows.set_column(i, name, pa.nulls(len(rows), rows.schema.field(i).type))
    return rows
