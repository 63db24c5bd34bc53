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


@stage("split", version=1, kind="global", params=SplitParams, consumes=("cls", "bio"),
       assigns_splits=True)
class Split:
    """Add a `split` column (train, validation, test). Rows are grouped before they are assigned: rows whose
    folded text is equal, and generated rows with their `parent_id`, always land in the same split — so no
    near-copy of a test row is trained on. Groups are shuffled with the seed and dealt out per label to the
    split furthest below its target.

    Drop reasons: none (every row gets a split).
    """

    def __init__(self, params: SplitParams):
        self.p = params
        self.offset = 0

    def fit(self, tables: Iterable[pa.Table]) -> None:
        ids, hashes, labels, parents = [], [], [], []
        for table in tables:
            ids.extend(table.column("id").to_pylist())
            parents.extend(table.column("parent_id").to_pylist() if "parent_id" in table.column_names
                           else [None] * table.num_rows)
            hashes.extend(hash_keys(dedup_keys(table, self.p.group_fold), 64).tolist())
            labels.extend(_labels(table).to_pylist() if self.p.stratify else [""] * table.num_rows)
        groups = _group_rows(ids, hashes, parents)
        self.assignment = self._assign(groups, labels)

    def _assign(self, groups: list[list[int]], labels: list[str]) -> np.ndarray:
        targets = dict(zip(SPLITS, (1 - self.p.val - self.p.test, self.p.val, self.p.test)))
        by_label: dict[str, list[list[int]]] = defaultdict(list)
        for g in groups:
            by_label[labels[g[0]]].append(g)  # a group follows the label of its first row
        out = np.zeros(len(labels), np.int8)
        rng = random.Random(self.p.seed)
        for label in sorted(by_label):
            label_groups = by_label[label]
            rng.shuffle(label_groups)
            total, filled = sum(map(len, label_groups)), dict.fromkeys(SPLITS, 0)
            for g in label_groups:
                name = max(SPLITS, key=lambda s: targets[s] * total - filled[s])
                filled[name] += len(g)
                out[g] = SPLITS.index(name)
        return out

    def apply(self, table: pa.Table) -> Outcome:
        codes = self.assignment[self.offset:self.offset + table.num_rows]
        self.offset += table.num_rows
        column = pa.DictionaryArray.from_arrays(pa.array(codes), pa.array(SPLITS)).cast(pa.string())
        if "split" in table.column_names:
            table = table.drop_columns(["split"])
        return Outcome(table.append_column("split", column))


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
