"""ppl_filter: drop rows by the `ppl` column that `ppl_score` adds — absolute bounds, a percentile, cc_net buckets,
or a robust threshold (median + k·MAD of log-perplexity).

Scoring and filtering are separate nodes so that a new threshold reruns only this cheap one. Percentiles and
medians need every row first, so the stage is `global`: `fit` reads the scores (8 bytes + a 4-byte group code a
row, and only when a percentile or MAD criterion is set), resolves the thresholds, and `apply` judges each batch
against them.

Why a robust threshold: a percentile drops the same share of every corpus, garbage or none (97 drops 3% of a
clean corpus, and only 3% of one that is 10% garbage). Log-perplexity of fluent text is roughly normal; a cut at
median + k·MAD (MAD scaled by 1.4826 so that k counts standard deviations of a normal) adapts to the corpus and
model, drops little when there is nothing to drop, and is not dragged by the garbage it is looking for (the
median and MAD of a sample stay put until half of it is contaminated; a mean and standard deviation do not).
"""
from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dataprep.errors import SchemaError
from dataprep.outcome import Outcome
from dataprep.registry import SplitScoped, param, stage

Bucket = Literal["head", "middle", "tail"]
BUCKETS = ("head", "middle", "tail")
PER_COLUMN = {"label": "label", "lang": "lang"}
# Per-row decision codes, in order of precedence; the per-group and bucket codes follow (see _blocks).
KEEP, UNSCORED, ABOVE, BELOW, PERCENTILE = 0, 1, 2, 3, 4
MAD_SCALE = 1.4826  # 1 / Φ⁻¹(3/4): the MAD of a normal sample, times this, estimates its standard deviation


@dataclass(frozen=True)
class PplFilterParams(SplitScoped):
    max_ppl: float | None = param(None, "drop rows whose ppl is above this value")
    min_ppl: float | None = param(None, "drop rows whose ppl is below this value (suspiciously fluent: "
                                  "boilerplate, repeated lines)")
    max_percentile: float | None = param(None, "in (0, 100]: drop rows whose ppl is above this percentile of ppl")
    max_mad: float | None = param(None, "k > 0: drop rows whose log(ppl) is above median + k·MAD of log(ppl) "
                                  "(MAD x1.4826: k counts standard deviations; 3.5 is Iglewicz & Hoaglin's cut)")
    min_mad: float | None = param(None, "k > 0: drop rows whose log(ppl) is below median - k·MAD (repetitive, "
                                  "boilerplate text an LM finds too easy)")
    keep: list[Bucket] | None = param(None, "cc_net buckets to keep, cut by `bucket_cuts`: head < p30 <= "
                                      "middle < p60 <= tail; e.g. [head, middle] drops the tail")
    bucket_cuts: list[float] = param(factory=lambda: [30.0, 60.0],
                                     help="the two percentiles that bound the head, middle and tail buckets")
    per: Literal["all", "label", "lang"] = param("all", "compute percentiles over all rows, or within each "
                                                 "label / language")
    drop_unscored: bool = param(True, "drop rows whose ppl is null, NaN or inf (ppl_score could not score "
                                "them); if false they are kept and no other criterion judges them")

    def __post_init__(self):
        if all(getattr(self, name) is None for name in ("max_ppl", "min_ppl", "max_percentile", "keep", "max_mad",
                                                        "min_mad")):
            raise ValueError("give at least one criterion: max_ppl, min_ppl, max_percentile, max_mad, min_mad or "
                             "keep")
        for name in ("max_ppl", "min_ppl"):
            value = getattr(self, name)
            if value is not None and not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number, got {value}")
        if self.max_ppl is not None and self.min_ppl is not None and not self.min_ppl < self.max_ppl:
            raise ValueError(f"min_ppl must be below max_ppl, got {self.min_ppl} and {self.max_ppl}")
        if self.max_percentile is not None and not 0 < self.max_percentile <= 100:
            raise ValueError(f"max_percentile must be in (0, 100], got {self.max_percentile}")
        for name in ("max_mad", "min_mad"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a finite number above 0 (a count of MADs), got {value}")
        if self.keep is not None:
            if not self.keep or not set(self.keep) <= set(BUCKETS) or len(set(self.keep)) != len(self.keep):
                raise ValueError(f"keep must list some of {', '.join(BUCKETS)}, each once, got {self.keep}")
        cuts = list(self.bucket_cuts)
        if len(cuts) != 2 or not 0 < cuts[0] < cuts[1] < 100:
            raise ValueError(f"bucket_cuts must be two increasing percentiles in (0, 100), got {cuts}")
        if self.per != "all" and not self.needs_fit:
            raise ValueError(f"per={self.per!r} only applies to percentiles and MAD thresholds: set max_percentile, "
                             "keep, max_mad or min_mad")

    @property
    def robust(self) -> bool:
        return self.max_mad is not None or self.min_mad is not None

    @property
    def needs_fit(self) -> bool:
        """Whether thresholds come from the data (percentiles, medians): `fit` must read every row."""
        return bool(self.percentiles) or self.robust

    @property
    def percentiles(self) -> list[float]:
        """The percentiles `fit` must resolve: max_percentile first, then the two bucket cuts."""
        return ([self.max_percentile] if self.max_percentile is not None else []) + \
            (list(self.bucket_cuts) if self.keep is not None else [])


def ppl_values(table: pa.Table) -> np.ndarray:
    """The `ppl` column as float64, null -> NaN."""
    if "ppl" not in table.column_names:
        raise SchemaError("ppl_filter needs a `ppl` column: run ppl_score on these rows first")
    column = table.column("ppl")
    if not (pa.types.is_floating(column.type) or pa.types.is_integer(column.type) or pa.types.is_null(column.type)):
        raise SchemaError(f"ppl_filter: column `ppl` must be numeric, got {column.type}")
    return column.cast(pa.float64()).to_numpy()


def group_codes(table: pa.Table, per: str, vocab: dict, grow: bool = True) -> np.ndarray:
    """Small integer codes for the percentile groups (one group for per=all), consistent across batches:
    `vocab` maps a label or language (None too) to its code and grows as `fit` meets new ones."""
    if per == "all":
        return np.zeros(table.num_rows, np.int32)
    name = PER_COLUMN[per]
    if name not in table.column_names:
        raise SchemaError(f"ppl_filter: per={per!r} needs a {name!r} column (bio rows have no label: "
                          "use per: lang or all)")
    encoded = pc.dictionary_encode(table.column(name).combine_chunks(), null_encoding="encode")
    values = encoded.dictionary.to_pylist()
    if not grow and (unseen := [v for v in values if v not in vocab]):
        raise ValueError(f"ppl_filter: apply() met {name} values fit() never saw: {unseen[:5]}")
    lookup = np.array([vocab.setdefault(v, len(vocab)) for v in values], np.int32)
    return lookup[encoded.indices.to_numpy(zero_copy_only=False)] if len(lookup) else np.empty(0, np.int32)


def group_percentiles(values: np.ndarray, codes: np.ndarray, n_groups: int, qs: list[float]) -> np.ndarray:
    """(n_groups, len(qs)) percentiles of the finite values of each group; NaN for a group with none.
    numpy's default "linear" method (Hyndman & Fan type 7): interpolates between the two nearest ranks."""
    scored = np.isfinite(values)
    values, codes = values[scored], codes[scored]
    order = np.argsort(codes, kind="stable")  # one sort, then each group is a slice
    bounds = np.searchsorted(codes[order], np.arange(n_groups + 1))
    out = np.full((n_groups, len(qs)), np.nan)
    for g in range(n_groups):
        members = values[order[bounds[g]:bounds[g + 1]]]
        if len(members):
            out[g] = np.percentile(members, qs, method="linear")
    return out


def group_robust(values: np.ndarray, codes: np.ndarray, n_groups: int) -> np.ndarray:
    """(n_groups, 2): median and scaled MAD of log(ppl) over each group's finite positive values; NaN for a
    group with none. When more than half of a group is one value its MAD is 0: the mean absolute deviation
    (x1.2533, its normal-consistent scale) stands in, as in Iglewicz & Hoaglin's modified z-score."""
    ok = np.isfinite(values) & (values > 0)
    logs, codes = np.log(values[ok]), codes[ok]
    out = np.full((n_groups, 2), np.nan)
    for g in range(n_groups):
        members = logs[codes == g]
        if len(members):
            median = np.median(members)
            spread = MAD_SCALE * np.median(np.abs(members - median))
            if spread == 0:
                spread = 1.2533 * np.mean(np.abs(members - median))
            out[g] = median, spread
    return out


def exact(x: float) -> str:
    """A number as the user wrote it: 500 (not 500.0), 2.5, 99.5."""
    return np.format_float_positional(float(x), trim="-")


def sig4(x: float) -> str:
    """A resolved threshold, to 4 significant digits and never in e-notation: 123456 -> 123500, 12.3456 -> 12.35."""
    return np.format_float_positional(float(x), precision=4, unique=False, fractional=False, trim="-")


@stage("ppl_filter", version=1, kind="global", params=PplFilterParams, consumes=("cls", "bio"))
class PplFilter:
    """Drop rows by perplexity (`ppl`, from ppl_score). Percentiles are taken over the scored (finite) values,
    with numpy's "linear" method, over all rows or within each label / language (`per`).

    Drop reasons (when several apply, the first in this list wins):
      `ppl_unscored`               ppl is null, NaN or ±inf (unless drop_unscored is false)
      `ppl_above:<max_ppl>`        ppl > max_ppl
      `ppl_below:<min_ppl>`        ppl < min_ppl
      `ppl_above_p<q>:<thr>`       ppl > the q-th percentile of its group (thr to 4 significant digits)
      `ppl_above_mad<k>:<thr>`     log(ppl) > median + k·MAD of its group's log(ppl) (thr: that bound as a ppl)
      `ppl_below_mad<k>:<thr>`     log(ppl) < median - k·MAD
      `ppl_bucket:<bucket>`        the row's cc_net bucket (head < p30 <= middle < p60 <= tail) is not in `keep`
    A row equal to a cut belongs to the upper bucket, as in cc_net: in a group whose scores are all equal every
    row is `tail`.

    Notes: `kept_<bucket>` (rows kept, per bucket in `keep`) when buckets are used; `kept_unscored` when
    drop_unscored is false. Resolved thresholds are in the fitted state's `.thresholds` (PplCuts) and in the
    reasons, not in the notes (notes are integer counts summed over batches).
    """

    def __init__(self, params: PplFilterParams, kind: str):
        self.p = params

    def fit(self, tables: Iterable[pa.Table]) -> PplCuts:
        vocab: dict = {}
        cuts = np.empty((0, len(self.p.percentiles)))  # (groups, percentiles)
        spread = np.empty((0, 2))                      # (groups, [median, MAD]) of log(ppl)
        if not self.p.needs_fit:  # absolute bounds only: nothing to learn, so the input is not read twice
            return PplCuts(self.p, vocab, cuts, spread)
        values, codes = [], []
        for table in tables:
            values.append(ppl_values(table))
            codes.append(group_codes(table, self.p.per, vocab))
        v = np.concatenate(values) if values else np.empty(0)
        g = np.concatenate(codes) if codes else np.empty(0, np.int32)
        n_groups = max(len(vocab), 1)
        cuts = group_percentiles(v, g, n_groups, self.p.percentiles)
        if self.p.robust:
            spread = group_robust(v, g, n_groups)
        return PplCuts(self.p, vocab, cuts, spread)

    def apply(self, table: pa.Table, state: PplCuts, rows: range) -> Outcome:
        v = ppl_values(table)
        code, bucket = state.decide(v, group_codes(table, self.p.per, state.vocab, grow=False))
        outcome = Outcome.split(table, pc.take(pa.array(state.reasons(), pa.string()), pa.array(code)))
        outcome.notes = state.notes(code == KEEP, np.isfinite(v), bucket)
        return outcome


@dataclass(frozen=True)
class PplCuts:
    """What ppl_filter's fit learns: the groups (`vocab`: label or language -> code), each group's percentiles
    (`cuts`) and, for the MAD bounds, its median and MAD of log(ppl) (`spread`) — a few floats a group."""
    p: PplFilterParams
    vocab: dict
    cuts: np.ndarray
    spread: np.ndarray

    @property
    def groups(self) -> list:
        return list(self.vocab) if self.p.per != "all" else ["all"]

    @property
    def thresholds(self) -> dict:
        """{group: {"p95": value, "p30": ..., "p60": ..., "median": ..., "above_mad3.5": ...}}, as ppl values;
        the group is "all" unless `per` is set."""
        if not self.p.needs_fit:
            return {}
        names = [f"p{exact(q)}" for q in self.p.percentiles]
        out = {g: dict(zip(names, self.cuts[i].tolist())) for i, g in enumerate(self.groups)}
        if self.p.robust:
            for i, g in enumerate(self.groups):
                out[g]["median"] = float(np.exp(self.spread[i, 0]))
                if self.p.max_mad is not None:
                    out[g][f"above_mad{exact(self.p.max_mad)}"] = float(self.upper[i])
                if self.p.min_mad is not None:
                    out[g][f"below_mad{exact(self.p.min_mad)}"] = float(self.lower[i])
        return out

    @property
    def upper(self) -> np.ndarray:
        """Per group: exp(median + k·MAD) of log(ppl), the robust upper bound as a ppl."""
        return np.exp(self.spread[:, 0] + self.p.max_mad * self.spread[:, 1])

    @property
    def lower(self) -> np.ndarray:
        return np.exp(self.spread[:, 0] - self.p.min_mad * self.spread[:, 1])

    def judge(self, table: pa.Table) -> tuple[np.ndarray, list[str | None]]:
        """For a consumer that combines this verdict with others (quality_filter): each row's decision code
        (KEEP = 0) and the reason of each code."""
        code, _ = self.decide(ppl_values(table), group_codes(table, self.p.per, self.vocab, grow=False))
        return code, self.reasons()

    def decide(self, v: np.ndarray, g: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """A decision code per row (KEEP or the reason's index in `_reasons`) and, when buckets are used, each
        row's bucket (0 head, 1 middle, 2 tail)."""
        scored = np.isfinite(v)  # comparisons are False for NaN anyway, but not for ±inf
        code = np.full(len(v), KEEP, np.int32)
        # From the last criterion in precedence to the first: a row that several criteria drop ends up with the
        # code of the first one, which overwrites the others.
        bucket, start = None, self._blocks()
        if self.p.keep is not None:
            bucket = np.where(v < self.cuts[g, -2], 0, np.where(v < self.cuts[g, -1], 1, 2))
            out = scored & ~np.isin(bucket, [BUCKETS.index(b) for b in self.p.keep])
            code[out] = start["bucket"] + bucket[out]
        # One reason per group for the data-driven bounds: each names its own threshold.
        if self.p.min_mad is not None:
            out = scored & (v < self.lower[g])
            code[out] = start["below_mad"] + g[out]
        if self.p.max_mad is not None:
            out = scored & (v > self.upper[g])
            code[out] = start["above_mad"] + g[out]
        if self.p.max_percentile is not None:
            out = scored & (v > self.cuts[g, 0])
            code[out] = start["percentile"] + g[out]
        if self.p.min_ppl is not None:
            code[scored & (v < self.p.min_ppl)] = BELOW
        if self.p.max_ppl is not None:
            code[scored & (v > self.p.max_ppl)] = ABOVE
        if self.p.drop_unscored:
            code[~scored] = UNSCORED
        return code, bucket

    def _per_group_reasons(self) -> dict[str, list[str]]:
        """The reasons of the per-group blocks, in code order: one per group for each bound that is set."""
        p, blocks = self.p, {}
        if p.max_percentile is not None:
            blocks["percentile"] = [f"ppl_above_p{exact(p.max_percentile)}:{sig4(t)}" for t in self.cuts[:, 0]]
        if p.max_mad is not None:
            blocks["above_mad"] = [f"ppl_above_mad{exact(p.max_mad)}:{sig4(t)}" for t in self.upper]
        if p.min_mad is not None:
            blocks["below_mad"] = [f"ppl_below_mad{exact(p.min_mad)}:{sig4(t)}" for t in self.lower]
        return blocks

    def _blocks(self) -> dict[str, int]:
        """The first code of each block: the per-group ones from PERCENTILE on, then the three buckets."""
        start, at = {}, PERCENTILE
        for name, reasons in self._per_group_reasons().items():
            start[name], at = at, at + len(reasons)
        start["bucket"] = at
        return start

    def reasons(self) -> list[str | None]:
        """The reason of each decision code (None: kept); only a handful of strings, whatever the batch size."""
        p = self.p
        fixed = [None, "ppl_unscored", f"ppl_above:{exact(p.max_ppl)}" if p.max_ppl is not None else None,
                 f"ppl_below:{exact(p.min_ppl)}" if p.min_ppl is not None else None]
        per_group = [r for reasons in self._per_group_reasons().values() for r in reasons]
        return fixed + per_group + [f"ppl_bucket:{b}" for b in BUCKETS]

    def notes(self, kept: np.ndarray, scored: np.ndarray, bucket: np.ndarray | None) -> dict[str, int]:
        notes = {}
        if bucket is not None:
            for b in self.p.keep:
                notes[f"kept_{b}"] = int(np.count_nonzero(kept & scored & (bucket == BUCKETS.index(b))))
        if not self.p.drop_unscored:
            notes["kept_unscored"] = int(np.count_nonzero(kept & ~scored))
        return notes
