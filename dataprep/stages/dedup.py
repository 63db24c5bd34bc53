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


def dedup_keys(table: pa.Table, fold: Iterable[str], kind: str) -> pa.Array:
    """The string a row is compared by: its text (cls) or its tokens joined by U+001F (bio), folded."""
    if kind == "cls":
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


def _labels(table: pa.Table, kind: str) -> pa.Array:
    """A row's label (cls) or its tags joined by spaces (bio); an empty string for none."""
    if kind == "cls":
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

    Two phases (the driver's `global` protocol): `fit` reads every row's key hash, label and id and returns a
    `DedupState` — the positions of the rows to drop and why; `apply` drops a batch's rows by their global
    positions. The decision for a group of equal keys needs only that group's rows, so a distributed backend
    partitions rows by key hash and runs `decide` on each partition (dataprep/backends/ray.py).

    Memory: while fitting, 12 bytes per row (20 with 128-bit hashes) plus the ids (Arrow); the state holds the
    dropped rows only: their position and reason.
    Drop reasons: `duplicate_of:<id of the kept row>`; `label_conflict:<labels>` when copies disagree on the
    label (`conflicts` decides which, if any, survives).
    """

    def __init__(self, params: DedupParams, kind: str):
        self.p, self.kind = params, kind

    def fit(self, tables: Iterable[pa.Table]) -> DedupState:
        columns = [key_columns(table, self.p, self.kind) for table in tables]
        if not columns:
            return DedupState.empty()
        keys = pa.concat_tables(columns)
        return decide(np.arange(keys.num_rows), keys, self.p)

    def apply(self, table: pa.Table, state: DedupState, rows: range) -> Outcome:
        return Outcome.split(table, state.reasons_for(rows))


@dataclass(frozen=True)
class DedupState:
    """The rows exact_dedup drops: sorted global positions and, aligned, each one's reason."""
    dropped: np.ndarray   # int64, sorted
    reasons: pa.Array     # string

    @staticmethod
    def empty() -> DedupState:
        return DedupState(np.empty(0, np.int64), pa.array([], pa.string()))

    def reasons_for(self, rows: range) -> pa.Array:
        """One reason per row of the range (null: kept)."""
        lo, hi = np.searchsorted(self.dropped, [rows.start, rows.stop])
        if lo == hi:
            return pa.nulls(len(rows), pa.string())
        mask = np.zeros(len(rows), bool)
        mask[self.dropped[lo:hi] - rows.start] = True
        return pc.replace_with_mask(pa.nulls(len(rows), pa.string()), pa.array(mask), self.reasons[lo:hi])


KEY_COLUMNS = pa.schema([("hash", pa.uint64()), ("hash_b", pa.uint64()), ("label", pa.string()),
                         ("generated", pa.bool_()), ("id", pa.string())])


def key_columns(table: pa.Table, p: DedupParams, kind: str) -> pa.Table:
    """What `decide` needs of each row: its key hash (two halves with 128 bits), label, whether keep_originals
    may drop it, and its id (the name a dropped copy gives its keeper)."""
    h = hash_keys(dedup_keys(table, p.fold, kind), p.bits)
    first, second = (h[:, 0], h[:, 1]) if h.ndim == 2 else (h, np.zeros(len(h), np.uint64))
    generated = _generated(table) if p.keep_originals else np.zeros(table.num_rows, bool)
    return pa.table([first, second, _labels(table, kind), generated, table.column("id").combine_chunks()],
                    schema=KEY_COLUMNS)


def decide(positions: np.ndarray, keys: pa.Table, p: DedupParams) -> DedupState:
    """Dedup decisions for rows at `positions` (ascending, global) with their `key_columns`: every group of
    equal keys among them keeps its lowest position (with keep_originals, its originals), the others are
    dropped naming it; copies that disagree on the label are resolved by `conflicts`."""
    vocab: dict[str, int] = {}
    labels = T.label_codes(keys.column("label"), vocab)
    names = {code: name for name, code in vocab.items()}
    h = keys.column("hash").to_numpy()
    if p.bits == 128:  # sort and compare the two halves as one record
        pair = np.empty(len(h), [("a", np.uint64), ("b", np.uint64)])
        pair["a"], pair["b"] = h, keys.column("hash_b").to_numpy()
        h = pair
    generated = keys.column("generated").to_numpy(zero_copy_only=False) if p.keep_originals else None
    keeper, conflicts = _keepers(h, labels, generated, names, p.conflicts)
    dropped = np.flatnonzero(keeper != np.arange(len(keeper)))
    ids = keys.column("id").combine_chunks()
    by_keeper = ids.take(pa.array(np.where(keeper[dropped] >= 0, keeper[dropped], 0)))
    reasons = pc.binary_join_element_wise("duplicate_of:", by_keeper, "")
    if conflicts:  # only rows dropped on a conflict pay the Python: each names its group's labels
        lost = keeper[dropped] < 0
        named = pa.array(["label_conflict:" + conflicts[i] for i in dropped[lost].tolist()], pa.string())
        reasons = pc.replace_with_mask(reasons, pa.array(lost), named)
    return DedupState(positions[dropped].astype(np.int64), reasons)


def _keepers(h: np.ndarray, labels: np.ndarray, generated: np.ndarray | None, label_names: dict[int, str],
             policy: str) -> tuple[np.ndarray, dict[int, str]]:
    """For every row: the ordinal of the row kept in its place (itself when kept), or -1 on a conflict; and
    the conflicting labels of each row dropped on a conflict. With `generated` (keep_originals), original
    rows sort first within a group and are always kept."""
    n = len(h)
    order = _group_order(h, generated)
    sorted_h = h[order]
    is_start = np.ones(n, bool)
    is_start[1:] = sorted_h[1:] != sorted_h[:-1]
    group = np.cumsum(is_start) - 1  # group number of each row, in sorted order
    keeper = np.empty(n, np.int64)
    keeper[order] = order[is_start][group]
    conflicts: dict[int, str] = {}
    sorted_labels = labels[order]
    # A group holds several labels when, inside it, a row's label differs from the row before it.
    differs = np.flatnonzero((sorted_labels[1:] != sorted_labels[:-1]) & ~is_start[1:]) + 1
    starts, ends = np.flatnonzero(is_start), np.append(np.flatnonzero(is_start)[1:], n)
    for g in np.unique(group[differs]).tolist():
        members = order[starts[g]:ends[g]]
        _resolve_conflict(members, labels, generated, label_names, policy, keeper, conflicts)
    if generated is not None:
        originals = np.flatnonzero(~generated)
        keeper[originals] = originals
    return keeper, conflicts


def _resolve_conflict(members: np.ndarray, labels: np.ndarray, generated: np.ndarray | None,
                      label_names: dict[int, str], policy: str, keeper: np.ndarray, conflicts: dict) -> None:
    """Decide a group whose rows disagree on the label. With keep_originals, generated rows cannot outvote
    an original: the majority is counted among the group's originals when it has any."""
    member_labels = labels[members].tolist()
    names = "|".join(sorted(label_names[c] for c in set(member_labels)))
    voters = member_labels
    if generated is not None and not generated[members].all():
        voters = labels[members[~generated[members]]].tolist()
    counts = Counter(voters)
    if policy == "drop_all":
        winner = None
    elif policy == "keep_first":
        winner = member_labels[0]
    else:  # keep_majority; a tie goes to the label seen first
        winner = max(counts, key=lambda lab: (counts[lab], -voters.index(lab)))
    for row, lab in zip(members.tolist(), member_labels):
        if lab != winner:
            keeper[row] = -1
            conflicts[row] = names
    same = members[labels[members] == winner]
    if len(same):
        keeper[same] = same[0]


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
