"""rebalance: over- and/or under-sample classes to imbalanced-learn's `sampling_strategy` targets, seeded."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dataprep.outcome import Outcome
from dataprep.registry import SplitScoped, param, stage
from dataprep.stages import text as T

Mode = Literal["over", "under", "hybrid"]
STRATEGIES = ("auto", "not majority", "minority", "not minority", "majority", "all")
# Per-row decision codes; the index is the drop reason (None: kept).
KEEP, UNDERSAMPLED, UNUSED = 0, 1, 2
REASONS = np.array([None, "undersampled", "augmented_unused"], dtype=object)
COPY_TAG = "oversample"


@dataclass(frozen=True)
class RebalanceParams(SplitScoped):
    strategy: str | float | dict[str, int] = param(
        "auto", "imbalanced-learn's sampling_strategy: auto, not majority, minority, not minority, majority, all; "
        "a float in (0, 1] for two classes; or {label: target count}")
    mode: Mode = param("over", "over: copy rows of small classes; under: drop rows of large classes; hybrid: "
                       "both, every class to the mean class count")
    prefer_augmented: bool = param(False, "fill small classes with augmented rows (non-null `aug`) before "
                                   "copying originals; augmented rows not needed are dropped")
    seed: int = param(13, "sampling seed (the pipeline's defaults.seed fills it)")

    def __post_init__(self):
        check_strategy(self.strategy, self.mode)


def check_strategy(strategy, mode: str) -> None:
    """The checks that need no data: imbalanced-learn's, plus what `hybrid` accepts. Raises ValueError."""
    if mode not in ("over", "under", "hybrid"):
        raise ValueError(f"mode must be over, under or hybrid, got {mode!r}")
    if isinstance(strategy, str):
        if strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {', '.join(STRATEGIES)}, a float in (0, 1] or a dict of "
                             f"target counts, got {strategy!r}")
        if (mode, strategy) in (("over", "majority"), ("under", "minority")):
            raise ValueError(f"strategy {strategy!r} cannot be used with mode {mode!r} (mode over only adds "
                             "rows, mode under only removes them)")
        if mode == "hybrid" and strategy not in ("auto", "all"):
            raise ValueError(f"mode hybrid moves every class to the mean count: strategy must be auto, all or a "
                             f"dict, got {strategy!r}")
    elif isinstance(strategy, dict):
        negative = {k: v for k, v in strategy.items() if v < 0}
        if negative:
            raise ValueError(f"target counts cannot be negative, got {negative}")
    elif isinstance(strategy, (int, float)) and not isinstance(strategy, bool):
        if not 0 < strategy <= 1:
            raise ValueError(f"a float strategy must be in (0, 1], got {strategy}")
        if mode == "hybrid":
            raise ValueError("mode hybrid takes strategy auto, all or a dict, not a float")
    else:
        raise ValueError(f"strategy must be a string, a float or a dict, got {strategy!r}")


def class_targets(counts: dict[str, int], strategy, mode: str) -> dict[str, int]:
    """Target row count for every class, as imbalanced-learn's `check_sampling_strategy` computes it (ties for
    majority/minority go to the label that sorts first, as there). Classes not targeted keep their count.
    Fewer than two classes: nothing to balance (imbalanced-learn raises; one label in a split should not)."""
    if len(counts) < 2:
        return dict(counts)
    if isinstance(strategy, dict):
        return _dict_targets(counts, strategy, mode)
    if mode == "hybrid":
        mean = sum(counts.values()) // len(counts)
        return dict.fromkeys(counts, mean)
    if not isinstance(strategy, str):
        return _ratio_targets(counts, float(strategy), mode)
    labels = sorted(counts)
    majority, minority = max(labels, key=counts.get), min(labels, key=counts.get)
    if strategy == "auto":
        strategy = "not majority" if mode == "over" else "not minority"
    chosen = {"all": labels, "minority": [minority], "majority": [majority],
              "not minority": [c for c in labels if c != minority],
              "not majority": [c for c in labels if c != majority]}[strategy]
    level = counts[majority] if mode == "over" else counts[minority]
    return {c: level if c in chosen else counts[c] for c in labels}


def _ratio_targets(counts: dict[str, int], ratio: float, mode: str) -> dict[str, int]:
    """Binary only. over: minority target = ratio * majority; under: majority target = minority / ratio
    (truncated, with imbalanced-learn's exact arithmetic so counts match it)."""
    if len(counts) != 2:
        raise ValueError(f"rebalance: a float strategy needs exactly two classes, found {len(counts)} "
                         f"({', '.join(sorted(counts))}); give a dict of target counts")
    labels = sorted(counts)
    if mode == "over":
        majority = max(labels, key=counts.get)
        extra = {c: int(counts[majority] * ratio - counts[c]) for c in labels if c != majority}
        if any(n <= 0 for n in extra.values()):
            raise ValueError(f"rebalance: strategy {ratio} asks for no more rows than the minority already has "
                             f"({counts}); raise the ratio")
        return {c: counts[c] + extra.get(c, 0) for c in labels}
    minority = min(labels, key=counts.get)
    wanted = {c: int(counts[minority] / ratio) for c in labels if c != minority}
    if any(n > counts[c] for c, n in wanted.items()):
        raise ValueError(f"rebalance: strategy {ratio} asks for more majority rows than there are ({counts}); "
                         "raise the ratio")
    return {c: wanted.get(c, counts[c]) for c in labels}


def _dict_targets(counts: dict[str, int], strategy: dict[str, int], mode: str) -> dict[str, int]:
    missing = sorted(set(strategy) - set(counts))
    if missing:
        raise ValueError(f"rebalance: strategy names classes that are not in the data: {missing}")
    for label, n in strategy.items():
        if (mode == "over" and n < counts[label]) or (mode == "under" and n > counts[label]):
            verb = "over-sampling cannot remove" if mode == "over" else "under-sampling cannot add"
            raise ValueError(f"rebalance: {verb} rows: class {label!r} has {counts[label]} rows, the strategy "
                             f"asks for {n}; use mode hybrid or change the target")
    return {c: strategy.get(c, n) for c, n in counts.items()}


@stage("rebalance", version=1, kind="global", params=RebalanceParams, consumes=("cls",))
class Rebalance:
    """Over- and/or under-sample rows per label, with imbalanced-learn's `sampling_strategy` meanings, seeded.

    Targets per strategy, from each label's row count (with `prefer_augmented`, its originals' count):
      over:  auto = not majority: every class but the majority up to the majority count; minority; not minority;
             all; a float r (two classes only): minority up to int(r * majority); {label: n}: up to n.
      under: auto = not minority: every class but the minority down to the minority count; majority; not
             majority; all; a float r (two classes only): majority down to int(minority / r); {label: n}: down to n.
      hybrid (our choice; imbalanced-learn has none): classes below the mean class count (rounded down) are
             over-sampled up to it, classes above it under-sampled down to it; a dict sets each target instead.
    Ties for majority/minority go to the label that sorts first, as in imbalanced-learn. `only_split: train`
    acts on that split alone; fewer than two classes pass through unchanged.

    Over-sampling adds copies of rows drawn with replacement: `id` `<id>#os<k>`, `parent_id` the copied row's id,
    `aug` `oversample`. Under-sampling keeps a random subset. `prefer_augmented`: a class below its target takes
    its augmented rows (non-null `aug`) first, in random order, and copies originals only for what is still
    missing; augmented rows it does not need are dropped (so a majority class does not grow by augmentation).
    Originals are never dropped in mode over. Stats notes: `before:<label>` and `after:<label>` row counts.

    Memory: no text is held. Fit reads a label code and an augmented flag per row and groups row ordinals by
    class (about 20 bytes a row at its peak); its state, which apply reads, is 5 bytes a row (decision, number
    of copies).
    Drop reasons: `undersampled`; `augmented_unused` (prefer_augmented only).
    """

    def __init__(self, params: RebalanceParams, kind: str):
        self.p = params

    def fit(self, tables: Iterable[pa.Table]) -> RebalanceState:
        codes, augmented, vocab = [], [], {}
        for table in tables:
            labels = table.column("label").combine_chunks()
            batch_codes = T.label_codes(pc.fill_null(labels, ""), vocab)
            batch_codes[pc.is_null(labels).to_numpy(zero_copy_only=False)] = -1  # no label: passes through
            codes.append(batch_codes)
            augmented.append(_is_augmented(table) if self.p.prefer_augmented else np.zeros(len(table), bool))
        code = np.concatenate(codes) if codes else np.empty(0, np.int32)
        names = {c: name for name, c in vocab.items()}
        return self._decide(code, np.concatenate(augmented) if augmented else np.empty(0, bool), names)

    def _decide(self, code: np.ndarray, augmented: np.ndarray, names: dict[int, str]) -> RebalanceState:
        """For every row: keep or a drop reason, and how many copies to add. Classes go in label order so that
        the draws depend on the seed and the data only, never on batch sizes."""
        state = RebalanceState(np.zeros(len(code), np.int8), np.zeros(len(code), np.int32), {})
        pools = {}
        for c in sorted(np.unique(code[code >= 0]).tolist(), key=names.get):
            rows = np.flatnonzero(code == c)
            originals, pool = rows[~augmented[rows]], rows[augmented[rows]]
            if not originals.size:  # only augmented rows: they are this class's originals
                originals, pool = pool, pool[:0]
            pools[names[c]] = (originals, pool)
        targets = class_targets({label: len(o) for label, (o, _) in pools.items()}, self.p.strategy, self.p.mode)
        rng = np.random.default_rng(self.p.seed)
        for label, (originals, pool) in pools.items():
            _resample(state, originals, pool, targets[label], rng)
            state.notes[f"before:{label}"] = len(originals) + len(pool)
            survivors = np.concatenate([originals, pool])
            after = (state.reason[survivors] == KEEP).sum() + state.copies[originals].sum()
            state.notes[f"after:{label}"] = int(after)
        return state

    def apply(self, table: pa.Table, state: RebalanceState, rows: range) -> Outcome:
        at = slice(rows.start, rows.stop)
        outcome = Outcome.split(table, pa.array(REASONS[state.reason[at]], pa.string()))
        outcome.added = oversampled_copies(table, state.copies[at])
        if rows.start == 0 and len(rows):  # the notes belong to the node: the batch that starts it carries them
            outcome.notes = dict(state.notes)
        return outcome


@dataclass(frozen=True)
class RebalanceState:
    """Per row: a decision code (KEEP or a drop reason's index in REASONS) and how many copies to add; the
    `before:<label>` / `after:<label>` counts. Five bytes a row."""
    reason: np.ndarray
    copies: np.ndarray
    notes: dict[str, int]


def _resample(state: RebalanceState, originals: np.ndarray, pool: np.ndarray, target: int,
              rng: np.random.Generator) -> None:
    """Fill in one class's decisions: a random subset survives under-sampling; a deficit takes augmented rows
    first, then copies of originals drawn with replacement."""
    state.reason[pool] = UNUSED  # until a deficit takes them
    n = len(originals)
    if target < n:  # a random subset survives, as RandomUnderSampler keeps one (without replacement)
        state.reason[rng.choice(originals, size=n - target, replace=False)] = UNDERSAMPLED
        return
    deficit = target - n
    taken = rng.permutation(pool)[:deficit]
    state.reason[taken] = KEEP
    draws = originals[rng.integers(0, n, size=deficit - len(taken))]  # with replacement, like RandomOverSampler
    np.add.at(state.copies, draws, 1)


def _is_augmented(table: pa.Table) -> np.ndarray:
    if "aug" not in table.column_names:
        return np.zeros(table.num_rows, bool)
    return pc.is_valid(table.column("aug")).to_numpy(zero_copy_only=False)


def oversampled_copies(table: pa.Table, copies: np.ndarray) -> pa.Table | None:
    """`copies[i]` copies of row i, with ids `<id>#os1`, `<id>#os2`, ... and lineage; None when there are none."""
    take = np.repeat(np.arange(len(copies)), copies)
    if not take.size:
        return None
    rows = table.take(pa.array(take))
    k = np.arange(take.size) - (np.cumsum(copies) - copies)[take] + 1  # 1, 2, ... within each row's copies
    parents = rows.column("id").to_pylist()
    rows = _with_column(rows, "id", pa.array([f"{p}#os{i}" for p, i in zip(parents, k.tolist())], pa.string()))
    rows = _with_column(rows, "parent_id", pa.array(parents, pa.string()))
    return _with_column(rows, "aug", pa.array([COPY_TAG] * take.size, pa.string()))


def _with_column(table: pa.Table, name: str, values: pa.Array) -> pa.Table:
    if name in table.column_names:
        return table.set_column(table.column_names.index(name), name, values)
    return table.append_column(name, values)
