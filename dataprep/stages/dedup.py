"""exact_dedup: drop exact duplicates (after the configured key folding), naming the row that was kept."""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import xxhash

from dataprep.outcome import Outcome
from dataprep.registry import param, stage
from dataprep.scope import augmented_outside_evaluation
from dataprep.stages import text as T

Fold = Literal["whitespace", "case", "nfkc", "halfwidth"]


@dataclass(frozen=True)
class DedupParams:
    fold: list[Fold] = param(factory=list, help="fold the key before hashing: whitespace (runs to one space, "
                             "none between CJK characters or beside CJK punctuation), case, nfkc, halfwidth; [] "
                             "compares the text exactly")
    bits: Literal[64, 128] = param(64, "xxh3 hash width; 64 bits is safe to ~100M rows (collision odds "
                                   "~n²/2⁶⁵), 128 beyond")
    conflicts: Literal["drop_all", "keep_majority", "keep_first"] = param(
        "drop_all", "same key, different labels: drop every copy, keep the majority label, or keep the first")
    keep_originals: bool = param(False, "drop only generated rows (non-null `aug`) outside validation and test: "
                                 "every other row is kept and is the keeper of its copies, so a paraphrase equal "
                                 "to any row, an evaluation row included, goes, and no original row ever does")
    all_splits: bool = param(False, "after `split`: dedup across every split, dropping evaluation rows, knowingly")

    def declares_scope(self) -> bool:
        """After `split`, this node must either keep originals or knowingly act on every split."""
        return self.keep_originals or self.all_splits


def dedup_keys(table: pa.Table, fold: Iterable[str]) -> pa.Array:
    """The string a row is compared by: its text (cls) or its tokens joined by U+001F (bio), folded."""
    if "text" in table.column_names:
        key = table.column("text").combine_chunks()
    else:
        key = pc.binary_join(_no_null_items(table.column("tokens")), "\x1f")
    key = pc.fill_null(key, "")
    for step in fold:
        key = {"whitespace": T.fold_whitespace, "case": pc.utf8_lower, "nfkc": T.nfkc,
               "halfwidth": T.halfwidth}[step](key)
    return key


def hash_keys(keys: pa.Array, bits: int) -> np.ndarray:
    """xxh3 of each key: uint64 (n,) or, for 128 bits, (n, 2)."""
    raw = keys.cast(pa.binary()).to_pylist()
    if bits == 64:
        return np.fromiter(map(xxhash.xxh3_64_intdigest, raw), np.uint64, len(raw))
    digests = b"".join(map(xxhash.xxh3_128_digest, raw))
    return np.frombuffer(digests, np.uint64).reshape(-1, 2)


def _labels(table: pa.Table) -> pa.Array:
    if "label" in table.column_names:
        return pc.fill_null(table.column("label").combine_chunks(), "")
    return pc.fill_null(pc.binary_join(_no_null_items(table.column("tags")), " "), "")


def _no_null_items(lists: pa.ChunkedArray) -> pa.Array:
    """binary_join turns a list holding a null into a null: make a null item an empty string instead."""
    lists = lists.combine_chunks()
    if lists.null_count == 0 and lists.values.null_count == 0:
        return lists
    return pa.ListArray.from_arrays(lists.offsets, pc.fill_null(lists.values, ""), mask=lists.is_null())


# version 2: the whitespace fold became CJK-aware (the space between CJK characters and beside CJK punctuation
# goes, text.fold_whitespace), so near-copies spaced around Chinese punctuation now share a key.
@stage("exact_dedup", version=2, kind="global", params=DedupParams, consumes=("cls", "bio"))
class ExactDedup:
    """Keep the first row of every group of rows with the same key; for `bio` rows the key is the token sequence.

    Memory: 12 bytes per row (20 with 128-bit hashes) plus the ids of rows that have copies — of every row with
    keep_originals, whose keepers may come after their copies.
    Drop reasons: `duplicate_of:<id of the kept row>`; `label_conflict:<labels>` when copies disagree on the
    label (`conflicts` decides which, if any, survives).
    """

    def __init__(self, params: DedupParams):
        self.p = params
        self.offset = 0
        self.keeper_ids: dict[int, str] = {}
        self.all_ids: pa.ChunkedArray | None = None

    def fit(self, tables: Iterable[pa.Table]) -> None:
        hashes, labels, generated, ids, vocab = [], [], [], [], {}
        for table in tables:
            hashes.append(hash_keys(dedup_keys(table, self.p.fold), self.p.bits))
            labels.append(T.label_codes(_labels(table), vocab))
            if self.p.keep_originals:
                generated.append(_generated(table))
                ids.append(table.column("id"))
        self.label_names = {code: name for name, code in vocab.items()}
        h = np.concatenate(hashes) if hashes else np.empty(0, np.uint64)
        if h.ndim == 2:  # 128 bits: sort and compare the two halves as one record
            h = h.view([("a", np.uint64), ("b", np.uint64)]).ravel()
        generated_rows = np.concatenate(generated) if generated else None
        if self.p.keep_originals:
            # A keeper may now come after its copies in input order: keep every id (Arrow, not Python strings).
            self.all_ids = pa.chunked_array([c for col in ids for c in col.chunks], pa.string())
        self._decide(h, np.concatenate(labels) if labels else np.empty(0, np.int32), generated_rows)

    def _decide(self, h: np.ndarray, labels: np.ndarray, generated: np.ndarray | None = None) -> None:
        """For every row: the ordinal of the row kept in its place (itself when kept), or -1 on a conflict.
        With `generated` (keep_originals), original rows sort first within a group and are always kept."""
        n = len(h)
        order = _group_order(h, generated)
        sorted_h = h[order]
        is_start = np.ones(n, bool)
        is_start[1:] = sorted_h[1:] != sorted_h[:-1]
        group = np.cumsum(is_start) - 1  # group number of each row, in sorted order
        self.keeper = np.empty(n, np.int64)
        self.keeper[order] = order[is_start][group]
        self.conflict_labels: dict[int, str] = {}
        sorted_labels = labels[order]
        # A group holds several labels when, inside it, a row's label differs from the row before it.
        differs = np.flatnonzero((sorted_labels[1:] != sorted_labels[:-1]) & ~is_start[1:]) + 1
        starts, ends = np.flatnonzero(is_start), np.append(np.flatnonzero(is_start)[1:], n)
        for g in np.unique(group[differs]).tolist():
            self._resolve_conflict(order[starts[g]:ends[g]], labels, generated)
        if generated is not None:
            originals = np.flatnonzero(~generated)
            self.keeper[originals] = originals
        copies = self.keeper[(self.keeper >= 0) & (self.keeper != np.arange(n))]
        self.has_copies = np.zeros(n, bool)
        self.has_copies[copies] = True

    def _resolve_conflict(self, members: np.ndarray, labels: np.ndarray, generated: np.ndarray | None) -> None:
        """Decide a group whose rows disagree on the label. With keep_originals, generated rows cannot outvote
        an original: the majority is counted among the group's originals when it has any."""
        member_labels = labels[members].tolist()
        names = "|".join(sorted(self.label_names[c] for c in set(member_labels)))
        voters = member_labels
        if generated is not None and not generated[members].all():
            voters = labels[members[~generated[members]]].tolist()
        counts = Counter(voters)
        if self.p.conflicts == "drop_all":
            winner = None
        elif self.p.conflicts == "keep_first":
            winner = member_labels[0]
        else:  # keep_majority; a tie goes to the label seen first
            winner = max(counts, key=lambda lab: (counts[lab], -voters.index(lab)))
        for row, lab in zip(members.tolist(), member_labels):
            if lab != winner:
                self.keeper[row] = -1
                self.conflict_labels[row] = names
        same = members[labels[members] == winner]
        if len(same):
            self.keeper[same] = same[0]

    def apply(self, table: pa.Table) -> Outcome:
        rows = np.arange(self.offset, self.offset + table.num_rows)
        self.offset += table.num_rows
        keeper = self.keeper[rows]
        kept = keeper == rows
        if self.all_ids is None:
            # Remember the ids of rows that others will name as their keeper (keepers come first in input order).
            keepers = np.flatnonzero(kept & self.has_copies[rows])
            ids = table.column("id").take(pa.array(keepers)).to_pylist()
            self.keeper_ids.update(zip(rows[keepers].tolist(), ids))
        dropped = np.flatnonzero(~kept)
        names = self._keeper_names(keeper[dropped])
        reasons: list[str | None] = [None] * table.num_rows
        for i, k, name in zip(dropped.tolist(), keeper[dropped].tolist(), names):
            reasons[i] = f"duplicate_of:{name}" if k >= 0 else "label_conflict:" + self.conflict_labels[int(rows[i])]
        return Outcome.split(table, reasons)

    def _keeper_names(self, keepers: np.ndarray) -> list[str | None]:
        """The id of each dropped row's keeper (None on a conflict): one Arrow take, not a lookup a row."""
        if self.all_ids is None:
            return [self.keeper_ids.get(k) for k in keepers.tolist()]
        return self.all_ids.take(pa.array(np.where(keepers >= 0, keepers, 0))).to_pylist()


def _generated(table: pa.Table) -> np.ndarray:
    """The rows keep_originals may drop: generated ones (non-null `aug`: back-translations, copies) outside
    the validation and test splits (those are evaluation rows, however they were made)."""
    return augmented_outside_evaluation(table).to_numpy(zero_copy_only=False)


def _group_order(h: np.ndarray, generated: np.ndarray | None) -> np.ndarray:
    """Rows sorted by hash, stable so a group's members come out in input order; with `generated`, a group's
    original rows come before its generated ones, so an original is the keeper."""
    if generated is None:
        return np.argsort(h, kind="stable")
    keys = (h["b"], h["a"]) if h.dtype.names else (h,)
    return np.lexsort((generated.astype(np.int8), *keys))
