"""quality_filter: rules on quality_score's columns, alone, with the perplexity score, or learned.

Each rule is one statistic against one threshold, with the threshold's source: Gopher (Rae et al. 2021, table
A1), C4 (Raffel et al. 2020, section 2.2), ROOTS (Laurençon et al. 2022, BigScience's per-language filtering
parameters), NeMo Curator's heuristic filters, cc_net (Wenzek et al. 2020). Where the source defines a statistic
over words, character-based rows (zh, ja, ko, yue) count characters instead, and the literature's thresholds,
made for web documents of 50+ words, flag ordinary short Chinese reviews (`非常好 ... 非常好` repeats a 3-gram);
those rules carry a character-based threshold measured on the tuning half of a real Chinese corpus (bench/
quality_eval.py; bench/QUALITY.md), and say so in their source.

Three ways to decide (`mode`): `any` rule fires; at least `votes` signals fire (`vote`); or a logistic
regression fitted by `fit_quality` on a small labelled sample (`learned`). The perplexity signal (`ppl_*`
params, the same bounds as ppl_filter, robust median + k·MAD included) joins `any` and `vote` as one more
signal: a row fails if its perplexity *or* its heuristics say so. Percentile and MAD bounds need every row,
so the stage is `global`; with neither, `fit` reads nothing.
"""
from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dataprep.errors import SchemaError
from dataprep.outcome import Outcome
from dataprep.registry import SplitScoped, param, stage
from dataprep.stages.ppl_filter import KEEP, PplCuts, PplFilter, PplFilterParams, exact, ppl_values
from dataprep.stages.quality import CJK_LANGS, PREFIX, STATS, cjk_rows

CJK = "cjk"  # the built-in overrides' key: every character-based row
MEASURED = "dataprep, measured on ChnSentiCorp's tuning half (bench/QUALITY.md)"


@dataclass(frozen=True)
class Rule:
    name: str
    stat: str
    op: Literal[">", "<"]
    threshold: float
    source: str
    cjk: float | None = None   # the threshold for character-based rows, when the source's does not carry over
    cjk_source: str = MEASURED
    min_units: int = 0         # judge only rows with at least this many units: a share of 3 words is no evidence
    cjk_min_units: int | None = None  # the same for character-based rows, when it differs

    def fires(self, values: np.ndarray, threshold: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore"):  # NaN (not applicable) never fires
            return values > threshold if self.op == ">" else values < threshold

    def reason(self, threshold: float) -> str:
        return f"quality:{self.stat}{self.op}{exact(threshold)}"


GOPHER = "Gopher (Rae et al. 2021, table A1)"
RULES: dict[str, Rule] = {r.name: r for r in [
    Rule("min_units", "units", "<", 1, "ROOTS zh: at least 1 word (here: a letter or digit)"),
    Rule("max_units", "units", ">", 100_000, f"{GOPHER}: 50 to 100,000 words (50 is for web pages, not reviews)"),
    # Gopher's word statistics are for documents of 50+ words: on a tokenised review (`it 's slow -- very ,
    # very slow .`) a third of the words are punctuation. Short texts are left to the character statistics.
    Rule("min_mean_word_len", "mean_word_len", "<", 3, f"{GOPHER}: mean word length 3 to 10, judged from 50 words",
         min_units=50),
    Rule("max_mean_word_len", "mean_word_len", ">", 10, f"{GOPHER}: mean word length 3 to 10, judged from 50 words",
         min_units=50),
    Rule("max_word_len", "max_word_len", ">", 1000, "C4 / NeMo Curator LongWordFilter: no word over 1000 characters"),
    Rule("min_alpha_word_frac", "alpha_word_frac", "<", 0.8, f"{GOPHER}: 80% of words hold a letter, judged from "
         "50 words", min_units=50),
    Rule("min_stopword_frac", "stopword_frac", "<", 0.04,
         f"{GOPHER}: at least 2 of 8 stop words in a document of 50+ words (2/50)", cjk=0.02,
         cjk_source=f"{MEASURED}: function characters; 0.04 on every row flags 0.7% of clean reviews, 0.02 from 20 "
         "characters 0.1%", min_units=50, cjk_min_units=20),
    Rule("max_special_frac", "special_frac", ">", 0.4, "ROOTS en: special characters <= 0.4", cjk=0.5,
         cjk_source=f"{MEASURED}: ROOTS zh's 0.3 flags 0.9% of clean reviews, mostly short ones padded with `。。。`; "
         "0.5 flags 0.2%"),
    Rule("max_digit_frac", "digit_frac", ">", 0.15, "NeMo Curator NumbersFilter: digits <= 15%", cjk=0.3,
         cjk_source=f"{MEASURED}: without spaces a price or a date is a larger share of the characters; 0.15 flags "
         "0.4% of clean reviews, 0.3 flags 0.1%"),
    Rule("min_script_frac", "script_frac", "<", 0.5,
         "cc_net: language-ID score >= 0.5 (here the script share stands in for the model's score)"),
    Rule("max_rare_han_frac", "rare_han_frac", ">", 0.3,
         f"{MEASURED}: 99.9% of clean reviews stay below 0.06, random CJK is ~0.8"),
    Rule("max_mojibake_frac", "mojibake_frac", ">", 0.05, "dataprep: ftfy's mojibake sequences, 5% of characters"),
    Rule("max_markup_frac", "markup_frac", ">", 0.2, "NeMo Curator UrlsFilter: URLs <= 20% of characters"),
    Rule("max_boilerplate", "boilerplate", ">", 1,
         "C4 / NeMo Curator BoilerPlateStringFilter strings, with Chinese navigation; two or more (dataprep)"),
    Rule("max_curly", "curly", ">", 0, "C4: no curly bracket"),
    Rule("max_dup_line_frac", "dup_line_frac", ">", 0.30, GOPHER),
    Rule("max_dup_line_char_frac", "dup_line_char_frac", ">", 0.20, GOPHER),
    # Gopher judges documents of 50+ words; a short review saying one thing twice (`不好不坏...不好不坏`) is all
    # top n-gram and no garbage, so these rules judge long texts only. Long runs are the dup rules' business.
    *[Rule(f"max_top{n}_frac", f"top{n}_frac", ">", t, f"{GOPHER}, judged from 50 words", cjk=0.5,
           cjk_source=f"{MEASURED}: Gopher's threshold on characters flags ~1% of clean reviews; 0.5 from 20 "
           "characters 0.1%", min_units=50, cjk_min_units=20)
      for n, t in ((2, 0.20), (3, 0.18), (4, 0.16))],
    *[Rule(f"max_dup{n}_frac", f"dup{n}_frac", ">", t, GOPHER, cjk=0.3,
           cjk_source=f"{MEASURED}: Gopher's threshold on characters flags 0.3-0.5% of clean reviews; 0.3 flags "
           "0.2%, reviews that repeat themselves")
      for n, t in ((5, 0.15), (6, 0.14), (7, 0.13), (8, 0.12), (9, 0.11), (10, 0.10))],
]}


@dataclass(frozen=True)
class QualityFilterParams(SplitScoped):
    rules: list[str] | None = param(None, "the rules to apply (default: all; `dataprep stages quality_filter` "
                                    "lists them)")
    disable: list[str] = param(factory=list, help="rules not to apply")
    thresholds: dict[str, float] = param(factory=dict, help="new thresholds for every language, by rule name, "
                                         "e.g. {max_dup5_frac: 0.2}")
    per_lang: dict[str, dict[str, float]] = param(factory=dict, help="thresholds for one language (its `lang`, "
                                                  "primary subtag), e.g. {zh: {max_special_frac: 0.6}}")
    mode: Literal["any", "vote", "learned"] = param("any", "any: a row fails when any signal fires; vote: when "
                                                    "`votes` do; learned: when fit_quality's model says so")
    votes: int = param(2, "vote: how many signals (rules, and perplexity when set) must fire")
    ppl_max: float | None = param(None, "perplexity signal: ppl above this")
    ppl_max_percentile: float | None = param(None, "perplexity signal: ppl above this percentile of its group")
    ppl_max_mad: float | None = param(None, "perplexity signal: log(ppl) above median + k·MAD of its group")
    ppl_min_mad: float | None = param(None, "perplexity signal: log(ppl) below median - k·MAD of its group")
    ppl_per: Literal["all", "label", "lang"] = param("all", "groups for the perplexity percentiles and medians")
    model: str | dict[str, str] | None = param(None, "learned: a fit_quality node {node: NAME} or its directory",
                                               model_ref=True)
    min_prob: float | None = param(None, "learned: drop rows whose garbage probability is above this (default: "
                                   "the model's own, 0.5 unless fit_quality was told otherwise)")

    def __post_init__(self):
        for name in ("rules", "disable"):
            unknown = [r for r in (getattr(self, name) or []) if r not in RULES]
            if unknown:
                raise ValueError(f"{name}: unknown rule(s) {', '.join(unknown)} (known: {', '.join(RULES)})")
        for where, values in [("thresholds", self.thresholds), *((f"per_lang.{k}", v)
                                                                for k, v in self.per_lang.items())]:
            bad = [k for k, v in values.items() if k not in RULES or not math.isfinite(v)]
            if bad:
                raise ValueError(f"{where}: {', '.join(map(str, bad))} is not a rule with a finite threshold "
                                 f"(rules: {', '.join(RULES)})")
        if not self.active and self.mode != "learned" and not self.uses_ppl:
            raise ValueError("every rule is disabled and no perplexity bound is set: nothing to judge by")
        if self.mode == "vote" and not 1 <= self.votes <= len(self.active) + self.uses_ppl:
            raise ValueError(f"votes must be between 1 and the number of signals ({len(self.active)} rules"
                             f"{' + perplexity' if self.uses_ppl else ''}), got {self.votes}")
        if (self.mode == "learned") != (self.model is not None):
            raise ValueError("mode: learned needs model: {node: NAME} (a fit_quality node), and model is only "
                             "for mode: learned")
        if self.min_prob is not None and not 0 < self.min_prob < 1:
            raise ValueError(f"min_prob must be in (0, 1), got {self.min_prob}")
        if self.uses_ppl and self.mode == "learned":
            raise ValueError("ppl_* bounds are signals of modes any and vote; in mode learned, log(ppl) is a "
                             "feature of the model (fit_quality)")
        if self.uses_ppl:
            self.ppl_params  # noqa: B018  (validates the bounds with ppl_filter's own messages)

    @property
    def active(self) -> list[Rule]:
        """The rules that judge rows (none in mode learned: the model does)."""
        if self.mode == "learned":
            return []
        names = self.rules if self.rules is not None else list(RULES)
        return [RULES[n] for n in names if n not in self.disable]

    @property
    def uses_ppl(self) -> bool:
        return any(v is not None for v in (self.ppl_max, self.ppl_max_percentile, self.ppl_max_mad, self.ppl_min_mad))

    @property
    def ppl_params(self) -> PplFilterParams:
        """The perplexity signal as ppl_filter params; unscored rows are left to the heuristics."""
        return PplFilterParams(max_ppl=self.ppl_max, max_percentile=self.ppl_max_percentile,
                               max_mad=self.ppl_max_mad, min_mad=self.ppl_min_mad, per=self.ppl_per,
                               drop_unscored=False)


def stat_values(table: pa.Table, stat: str) -> np.ndarray:
    column = PREFIX + stat
    if column not in table.column_names:
        raise SchemaError(f"quality_filter needs a `{column}` column: run quality_score first (with that "
                          "statistic), or disable the rules on it")
    return table.column(column).cast(pa.float64()).to_numpy()


def lang_keys(table: pa.Table) -> pa.Array:
    """Each row's language as the thresholds are keyed: the primary subtag of `lang`, lower case."""
    lang = pc.fill_null(table.column("lang").combine_chunks(), "")
    return pc.utf8_lower(pc.list_element(pc.split_pattern(lang, "-", max_splits=1), 0))


class Thresholds:
    """Each rule's threshold and minimum unit count for each group of rows: the default group, character-based
    rows, and each language with its own `per_lang` entry. Precedence: per_lang, then thresholds, then the
    built-in character-based value, then the rule's default."""

    def __init__(self, p: QualityFilterParams):
        self.rules = p.active
        self.langs = sorted(p.per_lang)
        groups = [("", False), (CJK, True)] + [(lang, lang in CJK_LANGS) for lang in self.langs]
        self.value = np.array([[self._one(r, key, cjk, p) for r in self.rules] for key, cjk in groups])
        self.min_units = np.array([[(r.cjk_min_units if cjk and r.cjk_min_units is not None else r.min_units)
                                    for r in self.rules] for _, cjk in groups]).reshape(len(groups), -1)

    @staticmethod
    def _one(rule: Rule, key: str, cjk: bool, p: QualityFilterParams) -> float:
        if rule.name in p.per_lang.get(key, {}):
            return p.per_lang[key][rule.name]
        if rule.name in p.thresholds:
            return p.thresholds[rule.name]
        return rule.cjk if cjk and rule.cjk is not None else rule.threshold

    def groups(self, table: pa.Table) -> np.ndarray:
        """Each row's group: its own language's when it has a per_lang entry, else character-based or default
        — decided as quality_score decided how to count (a null `lang` guessed from the script)."""
        text = table.column("text").combine_chunks() if "text" in table.column_names else None
        group = cjk_rows(table, text).astype(np.int64)
        if self.langs:
            own = pc.index_in(lang_keys(table), value_set=pa.array(self.langs)).to_numpy(zero_copy_only=False)
            group = np.where(np.isnan(own), group, 2 + np.nan_to_num(own, nan=0)).astype(np.int64)
        return group

    def fired(self, table: pa.Table) -> tuple[np.ndarray, np.ndarray]:
        """(rows x rules) whether each rule fires, and each row's group."""
        g = self.groups(table)
        units = np.nan_to_num(stat_values(table, "units"), nan=0) if self.min_units.any() else None
        out = np.zeros((table.num_rows, len(self.rules)), bool)
        for j, rule in enumerate(self.rules):
            out[:, j] = rule.fires(stat_values(table, rule.stat), self.value[g, j])
            if self.min_units[:, j].any():
                out[:, j] &= units >= self.min_units[g, j]
        return out, g


class QualityFilter:
    """Drop rows by heuristic quality rules on quality_score's `q_*` columns, optionally combined with the
    perplexity score (`ppl`, from ppl_score) or decided by a model fitted on labelled rows (fit_quality).

    Drop reasons:
      `quality:<stat><op><threshold>`   mode any: the first rule (in the order below) that fires, e.g.
                                        `quality:dup5_frac>0.15`; the threshold is the one applied to the row
      `ppl_above_mad<k>:<thr>` etc.     mode any: no rule fires but the perplexity signal does (ppl_filter's
                                        reasons)
      `quality:vote<n>:<a>+<b>+...`     mode vote: the signals that fired, at least `votes` of them
      `quality:learned_p><p>`          mode learned: the model's garbage probability is above min_prob
    Null statistics (not applicable to the row) never fire; rows the LM could not score are judged by the
    rules alone. Notes: `fired_<rule>` (and `fired_ppl`) count the rows each signal flagged, a row under every
    signal that fired, kept or not, so the ledger shows what each rule catches.
    """

    def __init__(self, params: QualityFilterParams, kind: str):
        self.p = params
        self.limits = Thresholds(params)
        # the class: PplFilter is its Stage
        self.ppl = PplFilter.impl(params.ppl_params, kind) if params.uses_ppl else None
        self.model = LearnedModel.load(Path(params.model)) if params.model is not None else None

    def fit(self, tables: Iterable[pa.Table]) -> PplCuts | None:
        """The perplexity cuts, when perplexity is one of the signals; the rules need no fit."""
        return self.ppl.fit(tables) if self.ppl is not None else None

    def apply(self, table: pa.Table, state: PplCuts | None, rows: range) -> Outcome:
        fired, g = self.limits.fired(table)
        ppl_code, ppl_reasons = state.judge(table) if state is not None else (None, [])
        ppl_fired = ppl_code != KEEP if ppl_code is not None else np.zeros(table.num_rows, bool)
        if self.p.mode == "learned":
            reasons = self._learned(table)
        elif self.p.mode == "vote":
            reasons = self._vote(fired, g, ppl_fired, ppl_code, ppl_reasons)
        else:
            reasons = self._any(fired, g, ppl_fired, ppl_code, ppl_reasons)
        outcome = Outcome.split(table, reasons)
        outcome.notes = {f"fired_{r.name}": int(n) for r, n in zip(self.limits.rules, fired.sum(0)) if n}
        if ppl_fired.any():
            outcome.notes["fired_ppl"] = int(ppl_fired.sum())
        return outcome

    def _rule_reasons(self) -> list[str]:
        """Reason of (group, rule), flattened group-major: only a handful of strings whatever the batch."""
        return [r.reason(t) for row in self.limits.value for r, t in zip(self.limits.rules, row)]

    def _any(self, fired, g, ppl_fired, ppl_code, ppl_reasons) -> pa.Array:
        n_rules = len(self.limits.rules)
        first = np.argmax(fired, axis=1) if n_rules else np.zeros(len(g), np.int64)
        by_rule = fired.any(axis=1) if n_rules else np.zeros(len(g), bool)
        # One reason per (group, rule), then ppl_filter's reasons, then None (kept): a row's code indexes them.
        choices = self._rule_reasons() + list(ppl_reasons) + [None]
        code = np.where(by_rule, g * n_rules + first, len(choices) - 1)
        if ppl_code is not None:
            code = np.where(~by_rule & ppl_fired, n_rules * len(self.limits.value) + ppl_code, code)
        return pc.take(pa.array(choices, pa.string()), pa.array(code))

    def _vote(self, fired, g, ppl_fired, ppl_code, ppl_reasons) -> list[str | None]:
        signals = np.column_stack([fired, ppl_fired])
        dropped = np.flatnonzero(signals.sum(axis=1) >= self.p.votes)
        reasons: list[str | None] = [None] * len(g)
        rule_reasons = self._rule_reasons()
        n_rules = len(self.limits.rules)
        for i in dropped.tolist():  # only dropped rows pay the Python: each names its own combination
            names = [rule_reasons[g[i] * n_rules + j].removeprefix("quality:") for j in np.flatnonzero(fired[i])]
            if ppl_fired[i]:
                names.append(ppl_reasons[ppl_code[i]])
            reasons[i] = f"quality:vote{len(names)}:" + "+".join(names)
        return reasons

    def _learned(self, table: pa.Table) -> pa.Array:
        prob = self.model.probability(table)
        cut = self.p.min_prob if self.p.min_prob is not None else self.model.threshold
        reason = pa.scalar(f"quality:learned_p>{exact(cut)}", pa.string())
        return pc.if_else(pa.array(prob > cut), reason, pa.scalar(None, pa.string()))


QualityFilter.__doc__ += "\n    Rules (name: rule, default; character-based rows; source):\n" + "\n".join(
    f"      {r.name:<24} {r.stat} {r.op} {exact(r.threshold)}"
    + (f"  [from {r.min_units} units]" if r.min_units else "")
    + (f"; cjk {exact(r.cjk)}" + (f" [from {r.cjk_min_units} units]" if r.cjk_min_units is not None else "")
       if r.cjk is not None else "")
    + f"\n          {r.source}" + (f"; cjk: {r.cjk_source}" if r.cjk is not None else "")
    for r in RULES.values())
quality_filter = stage("quality_filter", version=1, kind="global", params=QualityFilterParams,
                       consumes=("cls", "bio"))(QualityFilter)


# --- the learned combination: a logistic regression on the statistics (and log-perplexity) ---

LOG_FEATURES = {"units", "max_word_len", "boilerplate", "curly"}  # counts: their logarithm is the feature
MODEL_FILE = "quality_model.json"


@dataclass
class LearnedModel:
    """Standardised features -> logistic regression. NaN (not applicable) becomes the feature's training
    median, so an unknown value pulls toward neither class."""
    features: list[str]
    fill: list[float]
    mean: list[float]
    scale: list[float]
    coef: list[float]
    intercept: float
    threshold: float = 0.5
    notes: dict = field(default_factory=dict)

    @staticmethod
    def raw(table: pa.Table, features: list[str]) -> np.ndarray:
        """(rows x features): each statistic (log1p of the counts) and log(ppl)."""
        columns = []
        for name in features:
            if name == "ppl":
                v = ppl_values(table)
                columns.append(np.log(np.where(v > 0, v, np.nan)))
            else:
                v = stat_values(table, name)
                columns.append(np.log1p(np.maximum(v, 0)) if name in LOG_FEATURES else v)
        return np.column_stack(columns) if columns else np.empty((table.num_rows, 0))

    def standardise(self, x: np.ndarray) -> np.ndarray:
        x = np.where(np.isfinite(x), x, np.array(self.fill))
        return (x - np.array(self.mean)) / np.array(self.scale)

    def probability(self, table: pa.Table) -> np.ndarray:
        z = self.standardise(self.raw(table, self.features)) @ np.array(self.coef) + self.intercept
        return 1 / (1 + np.exp(-z))

    def save(self, out_dir: Path) -> None:
        out_dir.mkdir(parents=True)
        (out_dir / MODEL_FILE).write_text(json.dumps(self.__dict__, indent=1, sort_keys=True))

    @classmethod
    def load(cls, directory: Path) -> LearnedModel:
        path = directory / MODEL_FILE
        if not path.is_file():
            raise FileNotFoundError(f"quality_filter: {path} not found: `model` must be a fit_quality node or "
                                    "the directory it wrote")
        return cls(**json.loads(path.read_text()))


@dataclass(frozen=True)
class FitQualityParams:
    garbage_label: str = param("garbage", "the label of the garbage rows in the labelled sample; every other "
                               "label is clean")
    features: list[str] | None = param(None, "statistics (and `ppl`) to learn from (default: every q_* column "
                                       "of the input, and ppl when it is there)")
    C: float = param(1.0, "inverse L2 regularisation strength of the logistic regression (scikit-learn's C)")
    balanced: bool = param(True, "weight the classes inversely to their frequency (garbage is rare)")
    threshold: float = param(0.5, "garbage probability above which quality_filter drops a row")

    def __post_init__(self):
        if self.features is not None:
            unknown = [f for f in self.features if f != "ppl" and f not in STATS]
            if unknown or not self.features:
                raise ValueError(f"features must list some of ppl, {', '.join(STATS)}; got {self.features}")
        if not self.C > 0:
            raise ValueError(f"C must be above 0, got {self.C}")
        if not 0 < self.threshold < 1:
            raise ValueError(f"threshold must be in (0, 1), got {self.threshold}")


MIN_PER_CLASS = 5


def logistic_regression(x: np.ndarray, y: np.ndarray, C: float, weights: np.ndarray,
                        steps: int = 100) -> tuple[np.ndarray, float]:
    """(coefficients, intercept) minimising sum(weights · log-loss) + |coefficients|² / 2C — the objective of
    scikit-learn's LogisticRegression — by Newton's method from zeros: a handful of (features+1)² solves,
    deterministic, and no dependency beyond numpy. The L2 term keeps it finite on separable samples."""
    n, d = x.shape
    X = np.column_stack([x, np.ones(n)])
    penalty = np.append(np.full(d, 1.0 / C), 0.0)  # the intercept is not penalised
    w = np.zeros(d + 1)
    for _ in range(steps):
        p = 1 / (1 + np.exp(-(X @ w)))
        grad = X.T @ (weights * (p - y)) + penalty * w
        hess = (X * (weights * p * (1 - p))[:, None]).T @ X + np.diag(penalty) + 1e-10 * np.eye(d + 1)
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.max(np.abs(step)) < 1e-10:
            break
    return w[:-1], float(w[-1])


@stage("fit_quality", version=1, kind="build", params=FitQualityParams, consumes=("cls",), produces="model")
def fit_quality(batches: Callable[[], Iterator[pa.Table]], p: FitQualityParams, out_dir: Path) -> dict:
    """Fit the learned combination quality_filter's mode `learned` uses: a logistic regression from the
    quality statistics (and log-perplexity) of a small labelled sample — rows labelled `garbage_label` against
    the rest — run through the same quality_score (and ppl_score) nodes as the rows to filter. Writes
    quality_model.json (features, standardisation, coefficients, threshold). Deterministic: Newton's method
    from zeros on standardised features.

    Drop reasons: none (a build stage outputs a model, not rows).
    """
    tables = [t for t in batches() if t.num_rows]
    if not tables:
        raise ValueError("fit_quality: the labelled sample is empty")
    table = pa.concat_tables(tables, promote_options="permissive")
    features = p.features or [c.removeprefix(PREFIX) for c in table.column_names if c.startswith(PREFIX)
                              and c.removeprefix(PREFIX) in STATS] + (["ppl"] if "ppl" in table.column_names else [])
    if not features:
        raise SchemaError("fit_quality needs q_* columns: run quality_score on the labelled sample first")
    y = pc.fill_null(pc.equal(table.column("label"), p.garbage_label), False).to_numpy(
        zero_copy_only=False).astype(int)
    if min(y.sum(), len(y) - y.sum()) < MIN_PER_CLASS:
        raise ValueError(f"fit_quality: {y.sum()} rows labelled {p.garbage_label!r} and {len(y) - y.sum()} others; "
                         f"label at least {MIN_PER_CLASS} of each")
    x = LearnedModel.raw(table, features)
    # A feature's median over the rows it applies to (0 for one that applies to none: a word statistic of a
    # Chinese-only sample) stands in where it does not apply.
    fill = np.array([np.median(c[np.isfinite(c)]) if np.isfinite(c).any() else 0.0 for c in x.T])
    x = np.where(np.isfinite(x), x, fill)
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale = np.where(scale > 0, scale, 1.0)  # a constant feature stays 0 and learns nothing
    # balanced: each class weighs as much as the other in total, n / (2 · its count) a row
    weights = np.where(y == 1, len(y) / (2 * y.sum()), len(y) / (2 * (len(y) - y.sum()))) if p.balanced \
        else np.ones(len(y))
    coef, intercept = logistic_regression((x - mean) / scale, y, p.C, weights)
    model = LearnedModel(features, fill.tolist(), mean.tolist(), scale.tolist(), coef.tolist(), intercept,
                         p.threshold)
    model.save(out_dir)
    accuracy = float(np.mean((((x - mean) / scale) @ coef + intercept > 0) == y))
    return {"rows": int(len(y)), "garbage_rows": int(y.sum()), "features": len(features),
            "train_accuracy_x1000": round(accuracy * 1000)}
