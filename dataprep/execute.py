"""The driver: one stage over its input batches, whatever its kind, whoever runs it.

Backends (the local runner, dataprep/backends/ray.py, the Python API) differ in where batches come from and
where rows go; what a stage of each kind is asked to do, in which order, is here and only here:

  source  stage.impl(params) yields (Outcome, records read)
  map     stage.impl(batch, params) per batch; filter: the same, a (keep mask, reasons) pair
  model   stage.impl(params) once (the model loads), then model(batch) per batch
  global  phases = stage.impl(params, kind); state = phases.fit(batches); then, per batch,
          phases.apply(batch, state, rows) with `rows` the batch's range of global row positions. apply is a
          pure function of its arguments — no offsets kept, nothing handed over between calls — so a backend
          may call it on any batch, in any order, anywhere the state was sent.
  build   stage.impl(batches, params, out_dir[, work_dir]) writes a model directory

A stage scoped to some rows (`only_split`, `only_augmented`: its params are SplitScoped) sees only those; the
others pass through first, untouched (dataprep/scope.py). The record kind of the input is passed in, never
guessed from column names.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from dataprep.errors import SchemaError
from dataprep.ledger import Ledger
from dataprep.outcome import Outcome
from dataprep.overlap import prefetch
from dataprep.registry import Stage
from dataprep.scope import learned_rows, row_filter

Batches = Callable[[], Iterator[pa.Table]]  # a fresh pass over the input each call (a global stage reads twice)


def outcomes(stage: Stage, params, input_batches: Batches, kind: str | None) -> Iterator[tuple[Outcome, int | None]]:
    """Drive one stage over its input: (outcome, input rows) per batch. Input rows are None for sources,
    whose input is the records they read; `kind` is the input's record kind (None for sources)."""
    inside = row_filter(params) if stage.kind != "source" else None
    if inside is None:
        yield from _unscoped(stage, params, input_batches, kind)
        return
    # `only_split: train` / `only_augmented: true`: the other rows pass through untouched (first), the stage
    # sees only the rest.
    yield from passing_through(input_batches(), inside)
    yield from _unscoped(stage, params, lambda: in_scope(input_batches(), inside), kind)


def passing_through(batches: Iterator[pa.Table], inside) -> Iterator[tuple[Outcome, int]]:
    """A scoped node's first pass: the rows outside its scope, each batch's as an outcome of their own."""
    for batch in batches:
        passing = batch.filter(pc.invert(inside(batch)))
        yield Outcome(passing), passing.num_rows


def in_scope(batches: Iterator[pa.Table], inside) -> Iterator[pa.Table]:
    """The rows of each batch the stage acts on; a batch with none is skipped, not handed over empty: rows routed
    around an earlier scoped node lack the columns it added (a filter after a scoped scorer would fail on them)."""
    for batch in batches:
        rows = batch.filter(inside(batch))
        if rows.num_rows:
            yield rows


def _unscoped(stage: Stage, params, input_batches: Batches, kind: str | None) -> Iterator[tuple[Outcome, int | None]]:
    if stage.kind == "source":
        for outcome in prefetch(stage.impl(params)):  # the reader parses ahead while its output is written
            yield outcome, None
    elif stage.kind in ("map", "filter"):
        for batch in input_batches():
            yield as_outcome(stage, stage.impl(batch, params), batch), batch.num_rows
    elif stage.kind == "model":
        model = stage.impl(params)  # loaded once per node, never at import time
        for batch in input_batches():
            yield as_outcome(stage, model(batch), batch), batch.num_rows
    elif stage.kind == "global":
        phases = stage.impl(params, kind)
        state = phases.fit(input_batches())
        for batch, rows in with_positions(input_batches()):
            yield as_outcome(stage, phases.apply(batch, state, rows), batch), batch.num_rows
    else:
        raise TypeError(f"{stage.name}: a {stage.kind} stage is not driven over batches")


def with_positions(batches: Iterator[pa.Table]) -> Iterator[tuple[pa.Table, range]]:
    """Each batch with its range of global row positions: the order `fit` saw the rows in."""
    start = 0
    for batch in batches:
        yield batch, range(start, start + batch.num_rows)
        start += batch.num_rows


def build(stage: Stage, params, input_batches: Batches, out_dir: Path, work_dir: Path | None) -> Ledger:
    """Rows in, a model out (`out_dir`). The ledger counts the rows it learned from (one pass: a builder may
    read its input more than once); no row passes through, so there is nothing to balance. `work_dir` is
    where a resumable builder keeps its checkpoints."""
    ledger = Ledger()
    learned = learned_rows(params)

    def batches() -> Iterator[pa.Table]:
        ledger.rows_in = 0
        for batch in input_batches():
            batch = learned(batch)
            ledger.rows_in += batch.num_rows
            yield batch

    extra = {"work_dir": work_dir} if stage.resumable else {}
    notes = stage.impl(batches, params, out_dir, **extra) or {}
    if not out_dir.is_dir():
        raise SchemaError(f"{stage.name} did not write its model to {out_dir}")
    ledger.notes.update(notes)
    return ledger


def check_totals(stage: Stage, params, ledger: Ledger, node: str) -> None:
    """The stage's node-level check (Stage.check_totals), once every batch is done."""
    if stage.check_totals is not None:
        ledger.notes.update(stage.check_totals(dict(ledger.notes), params, node))


def as_outcome(stage: Stage, result, batch: pa.Table) -> Outcome:
    if stage.kind == "filter":
        keep, reasons = result
        return Outcome.from_mask(batch, keep, reasons)
    return result if isinstance(result, Outcome) else Outcome(result)


def run_in_memory(stage: Stage, table: pa.Table, params, kind: str) -> Outcome:
    """The Python API path: one stage over one in-memory table of record kind `kind`, with the driver's
    checks (the ledger balances; the node-level check runs)."""
    if stage.kind == "source":
        raise TypeError(f"{stage.name} reads files; call it through a pipeline or `dataprep stage`")
    ledger, results = Ledger(), []
    for outcome, rows_in in outcomes(stage, params, lambda: iter([table]), kind):
        ledger.record(outcome, rows_in, stage.name)
        results.append(outcome)
    check_totals(stage, params, ledger, stage.name)
    kept = pa.concat_tables([o.kept for o in results], promote_options="permissive")
    added = [o.added for o in results if o.added is not None]
    rejected = pa.concat_tables([o.rejected for o in results])
    return Outcome(kept, rejected, pa.concat_tables(added, promote_options="permissive") if added else None,
                   dict(ledger.notes))

