"""Every global stage in explicit phases: `fit(batches) -> state`, then `apply(batch, state, rows)` a pure
function of the batch, its global row range and the state. So an apply may run anywhere, in any order, any
number of times (a Ray worker applies a partition: dataprep/backends/ray.py), and the state crosses processes.

Checked for every global stage the catalog registers (a new one without an entry here fails the first test):
the same partition applied in order, shuffled, and by a fresh stage object for every batch gives the same
outcomes; a pickled state gives the same outcomes; a different partition of the same rows gives the same rows,
rejects and reasons."""
from __future__ import annotations

import pickle
import random
from collections import Counter
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pytest
from testkit import cls_table

from dataprep.catalog import all_stages, get
from dataprep.execute import as_outcome, run_in_memory, with_positions
from dataprep.outcome import Outcome
from dataprep.registry import stage

PARAMS = {
    "exact_dedup": {"conflicts": "keep_majority"},
    "ppl_filter": {"max_percentile": 90},
    "quality_filter": {},
    "rebalance": {"strategy": "auto", "mode": "over"},
    "split": {"val": 0.2, "test": 0.2},
}


def corpus() -> pa.Table:
    """Imbalanced labelled rows with copies (some with another label), junk that quality rules drop, a
    perplexity column and the quality statistics, as the stages before a global one would leave them."""
    rng = random.Random(3)
    texts, labels = [], []
    for i in range(240):
        n = rng.randrange(150)
        text = f"这家酒店的第{n}个房间很干净" if n % 5 else "!!!!????####$$$$%%%%" * 3
        label = "pos" if n % 4 else "neg"
        if i % 31 == 0:
            label = "neg" if label == "pos" else "pos"
        texts.append(text)
        labels.append(label)
    table = cls_table(texts, labels)
    table = table.set_column(table.column_names.index("lang"), "lang", pa.array(["zh"] * len(texts)))
    ppl = np.random.default_rng(3).lognormal(3, 0.6, len(texts))
    table = table.append_column("ppl", pa.array(ppl))
    scored = run_in_memory(get("quality_score"), table, get("quality_score").params(), "cls")
    return scored.kept


def partition(table: pa.Table, sizes: list[int]) -> list[pa.Table]:
    batches, start = [], 0
    while start < table.num_rows:
        size = sizes[len(batches) % len(sizes)]
        batches.append(table.slice(start, size))
        start += size
    return batches


def rows_of(outcome) -> tuple:
    added = outcome.added.to_pylist() if outcome.added is not None else []
    return outcome.kept.to_pylist(), outcome.rejected.to_pylist(), added, dict(outcome.notes)


def global_stages() -> list[str]:
    """The built-in global stages (not those test modules register)."""
    return sorted(name for name in all_stages()
                  if get(name).kind == "global" and get(name).impl.__module__.startswith("dataprep."))


def test_every_global_stage_is_checked_here():
    assert global_stages() == sorted(PARAMS)


@pytest.fixture(scope="module")
def table() -> pa.Table:
    return corpus()


def applied(name: str, table: pa.Table, sizes: list[int], order=None, fresh=False, state_copy=False):
    stage = get(name)
    params = stage.params(**PARAMS[name])
    batches = partition(table, sizes)
    phases = stage.impl(params, "cls")
    state = phases.fit(iter(batches))
    if state_copy:
        state = pickle.loads(pickle.dumps(state))
    positioned = list(with_positions(iter(batches)))
    results = {}
    for i in (order if order is not None else range(len(positioned))):
        batch, rows = positioned[i]
        worker = stage.impl(params, "cls") if fresh else phases
        results[i] = as_outcome(stage, worker.apply(batch, state, rows), batch)
    return [results[i] for i in range(len(positioned))]


@pytest.mark.parametrize("name", sorted(PARAMS))
def test_apply_does_not_depend_on_the_order_or_the_object_it_runs_in(name, table):
    sizes = [17, 40, 9]
    in_order = [rows_of(o) for o in applied(name, table, sizes)]
    n = len(in_order)
    shuffled = list(range(n))
    random.Random(5).shuffle(shuffled)
    assert [rows_of(o) for o in applied(name, table, sizes, order=shuffled)] == in_order
    assert [rows_of(o) for o in applied(name, table, sizes, order=shuffled[::-1], fresh=True)] == in_order
    assert [rows_of(o) for o in applied(name, table, sizes, state_copy=True)] == in_order
    kept = [row for o in in_order for row in o[0]]
    changed = kept != table.to_pylist() or any(o[1] or o[2] for o in in_order)
    assert changed, f"{name} did nothing to these rows: the check would prove nothing"


@pytest.mark.parametrize("name", sorted(PARAMS))
def test_another_partition_of_the_same_rows_gives_the_same_rows_and_reasons(name, table):
    def whole(sizes):
        kept, rejected, added, notes = [], [], [], Counter()
        for o in applied(name, table, sizes):
            k, r, a, n = rows_of(o)
            kept += k
            rejected += r
            added += a
            notes.update({key: v for key, v in n.items() if isinstance(v, int)})
        key = lambda row: repr(sorted(row.items()))  # noqa: E731
        return sorted(kept, key=key), sorted(rejected, key=key), sorted(added, key=key)
    assert whole([17, 40, 9]) == whole([table.num_rows]) == whole([5])


# --- the check itself can fail ---

@dataclass(frozen=True)
class _OffsetParams:
    pass


@stage("t_phases_offset", version=1, kind="global", params=_OffsetParams)
class _KeepsAnOffset:
    """What these tests exist to catch: an apply that counts the rows it has seen instead of reading `rows`
    (drops every row whose running position is a multiple of 7)."""

    def __init__(self, p, kind):
        self.offset = 0

    def fit(self, batches) -> None:
        return None

    def apply(self, batch, state, rows):
        positions = np.arange(self.offset, self.offset + batch.num_rows)
        self.offset += batch.num_rows
        keep = pa.array(positions % 7 != 0)
        return Outcome.from_mask(batch, keep, ["every_seventh"] * batch.num_rows)


def test_an_apply_that_keeps_an_offset_is_caught(table):
    PARAMS["t_phases_offset"] = {}
    try:
        sizes = [17, 40, 9]
        in_order = [rows_of(o) for o in applied("t_phases_offset", table, sizes)]
        order = list(range(len(in_order)))
        random.Random(5).shuffle(order)
        assert [rows_of(o) for o in applied("t_phases_offset", table, sizes, order=order)] != in_order
        assert [rows_of(o) for o in applied("t_phases_offset", table, sizes, fresh=True)] != in_order
    finally:
        del PARAMS["t_phases_offset"]
