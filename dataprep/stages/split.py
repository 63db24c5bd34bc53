"""split: train / validation / test, stratified by label, seeded, and safe against leakage."""
from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from dataprep.outcome import Outcome
from dataprep.registry import param, stage
from dataprep.stages.dedup import Fold, _labels, dedup_keys, hash_keys

SPLITS = ("train", "validation", "test")


@dataclass(frozen=True)
class SplitParams:
    val: float = param(0.1, "share of rows for the validation split")
    test: float = param(0.1, "share of rows for the test split")
    seed: int = param(13, "shuffling seed (the pipeline's defaults.seed fills it)")
    stratify: bool = param(True, "keep each label's share the same in every split")
    group_fold: list[Fold] = param(factory=lambda: ["whitespace", "case", "nfkc", "halfwidth"],
                                   help="rows whose text is equal after this folding stay in one split")

    def __post_init__(self):
        if not (0 <= self.val < 1 and 0 <= self.test < 1 and self.val + self.test < 1):
            raise ValueError(f"val and test must be in [0, 1) with val + test < 1, got {self.val}, {self.test}")


# version 2: group_fold's whitespace step became CJK-aware (exact_dedup v2), so rows spaced differently around
# Chinese punctuation now stay in one split.
# version 3: rows that already have a split (a dataset's own, read by a reader's split_field or split_as) keep it;
# before, an input's split column was replaced.
@stage("split", version=3, kind="global", params=SplitParams, consumes=("cls", "bio"),
       assigns_splits=True)
class Split:
    """Add a `split` column (train, validation, test). Rows are grouped before they are assigned: rows whose
    folded text is equal, and generated rows with their `parent_id`, always land in the same split — so no
    near-copy of a test row is trained on. Groups are shuffled with the seed and dealt out per label to the
    split furthest below its target.

    Rows that already have a split keep it as it is (a dataset's own: a reader's `split_field` or `split_as`,
    a DatasetDict's split names); only rows with none (no `split` column, a null or an empty one) are
    assigned, and `val` and `test` are shares of those rows. An unassigned row grouped with an assigned one
    (an equal folded text, a parent or child) joins that row's split — the first such row's, when they
    differ — so a copy of an official test row is not trained on; the others are dealt out as above. Input
    without a split column gets the same assignment as ever.

    Drop reasons: none (every row gets a split).
    """

    def __init__(self, params: SplitParams, kind: str):
        self.p, self.kind = params, kind

    def fit(self, tables: Iterable[pa.Table]) -> SplitState:
        ids, hashes, labels, parents, own = [], [], [], [], []
        for table in tables:
            ids.extend(table.column("id").to_pylist())
            parents.extend(table.column("parent_id").to_pylist() if "parent_id" in table.column_names
                           else [None] * table.num_rows)
            hashes.extend(hash_keys(dedup_keys(table, self.p.group_fold, self.kind), 64).tolist())
            labels.extend(_labels(table, self.kind).to_pylist() if self.p.stratify else [""] * table.num_rows)
            own.extend(_own_splits(table))
        groups = _group_rows(ids, hashes, parents)
        names = list(SPLITS) + sorted({s for s in own if s is not None} - set(SPLITS))
        return SplitState(names, self._assign(groups, labels, own, names))

    def _assign(self, groups: list[list[int]], labels: list[str], own: list[str | None], names: list[str]
                ) -> np.ndarray:
        targets = dict(zip(SPLITS, (1 - self.p.val - self.p.test, self.p.val, self.p.test)))
        by_label: dict[str, list[list[int]]] = defaultdict(list)
        out = np.zeros(len(labels), np.int8)
        pinned: dict[str, dict[str, int]] = {}  # per label: the unassigned rows that joined an assigned group
        for g in groups:
            assigned = [own[i] for i in g if own[i] is not None]
            if not assigned:
                by_label[labels[g[0]]].append(g)  # a group follows the label of its first row
                continue
            for i in g:  # a row keeps its own split; the group's unassigned rows join its first one
                out[i] = names.index(own[i] if own[i] is not None else assigned[0])
            if assigned[0] in SPLITS:  # they count towards that split's share of the label's unassigned rows
                counts = pinned.setdefault(labels[g[0]], dict.fromkeys(SPLITS, 0))
                counts[assigned[0]] += sum(own[i] is None for i in g)
        rng = random.Random(self.p.seed)
        for label in sorted(by_label):
            label_groups = by_label[label]
            rng.shuffle(label_groups)
            filled = pinned.get(label, dict.fromkeys(SPLITS, 0))
            total = sum(map(len, label_groups)) + sum(filled.values())
            for g in label_groups:
                name = max(SPLITS, key=lambda s: targets[s] * total - filled[s])
                filled[name] += len(g)
                out[g] = SPLITS.index(name)
        return out

    def apply(self, table: pa.Table, state: SplitState, rows: range) -> Outcome:
        codes = state.assignment[rows.start:rows.stop]
        column = pa.DictionaryArray.from_arrays(pa.array(codes), pa.array(state.names)).cast(pa.string())
        if "split" in table.column_names:
            table = table.drop_columns(["split"])
        return Outcome(table.append_column("split", column))


@dataclass(frozen=True)
class SplitState:
    """Every row's split: a code per row (one byte) into `names`."""
    names: list[str]
    assignment: np.ndarray


def _own_splits(table: pa.Table) -> list[str | None]:
    """Each row's split as it came (None: none, or an empty one)."""
    if "split" not in table.column_names:
        return [None] * table.num_rows
    return [value or None for value in table.column("split").cast(pa.string()).to_pylist()]


def _group_rows(ids: list[str], hashes: list[int], parents: list[str | None]) -> list[list[int]]:
    """Rows joined by an equal text hash or a parent link, as lists of row ordinals (union-find)."""
    root = list(range(len(ids)))

    def find(i: int) -> int:
        while root[i] != i:
            root[i] = root[root[i]]
            i = root[i]
        return i

    def union(a: int, b: int) -> None:
        root[find(a)] = find(b)

    first_of_hash: dict[int, int] = {}
    row_of_id = {rid: i for i, rid in enumerate(ids)}
    for i, h in enumerate(hashes):
        union(i, first_of_hash.setdefault(h, i))
    for i, parent in enumerate(parents):
        if parent is not None and parent in row_of_id:
            union(i, row_of_id[parent])
    groups: dict[int, list[int]] = defaultdict(list)
    for i in range(len(ids)):
        groups[find(i)].append(i)
    return sorted(groups.values(), key=lambda g: g[0])
