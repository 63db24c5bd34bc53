"""The local runner: walks the DAG in order, reuses cached nodes, streams batches through the others.

The runner owns the bookkeeping so stages stay small: it validates every batch against the record contract
on the way in and out, splits kept from rejected rows, writes parquet parts and the rejects file, keeps the
ledger, refuses to commit a node whose ledger does not balance, and commits atomically.
"""
from __future__ import annotations

import inspect
import json
import shutil
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import suppress
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from dataprep.cache import PART_FORMATS, NodeCache, node_key, part_writer, pipeline_lock, say
from dataprep.dag import Node, Pipeline
from dataprep.errors import SchemaError
from dataprep.ledger import Ledger
from dataprep.outcome import Outcome
from dataprep.overlap import Behind, prefetch
from dataprep.registry import MODEL, Stage, key_params
from dataprep.schema import REJECTS, conform, validate
from dataprep.scope import learned_rows, row_filter

DEFAULT_CACHE = "runs"


@dataclass
class NodeReport:
    node: str
    stage: str
    key: str
    status: str  # "cached" | "ran" | "missing" (not run, not in the cache) | "corrupt" (in it, but damaged)
    ledger: Ledger | None = None
    seconds: float = 0.0


class Progress:
    """Hooks the CLI fills with a progress bar; the default is silent (tests, CI, the Python API)."""

    def node_started(self, node: Node, total_rows: int | None) -> None: ...
    def rows_done(self, n: int) -> None: ...
    def node_finished(self, report: NodeReport) -> None: ...


@dataclass
class Runner:
    """Runs a pipeline's nodes against the cache under `cache_root`.

    One run of a pipeline at a time: `run` holds the pipeline's lock (fcntl.flock on
    `<cache_root>/<pipeline>/.lock`, released by the kernel however the holder dies). A second run of the same
    pipeline on the same cache waits for the first, saying once on stderr "waiting for another run of P (pid N)",
    and then finds the first one's nodes cached; `plan` and `show` only read, and do not wait.
    """
    pipeline: Pipeline
    cache_root: str | Path = DEFAULT_CACHE
    # Not in the keys, so keep the defaults for bytes that match other machines: batch_rows decides which rows
    # a model stage sees together (padding changes floats), rows_per_part how the parts are cut.
    batch_rows: int = 50_000      # rows per batch read from a cached node
    rows_per_part: int = 1_000_000
    progress: Progress = field(default_factory=Progress)
    part_formats: dict[str, str] = field(default_factory=dict)  # node -> "parquet" (the default) or "arrow"

    def __post_init__(self):
        self.keys = self._compute_keys()

    def _compute_keys(self) -> dict[str, str]:
        keys: dict[str, str] = {}
        for name, node in self.pipeline.nodes.items():
            keys[name] = node_key(node, [keys[i] for i in node.inputs], {k: keys[m] for k, m in node.models.items()})
        return keys

    def cache(self, name: str) -> NodeCache:
        return NodeCache(self.cache_root, self.pipeline.name, name, self.keys[name])

    def plan(self) -> list[NodeReport]:
        """Each node's key and cache state: "cached", "missing", or "corrupt" (present but damaged; why:
        `self.cache(name).verify()`). The plan hashes every cached file, as `run` does: a plan that calls an
        entry with a flipped byte cached would say what `run` then does not do, and xxh3 hashes at GB/s."""
        reports = []
        for name, node in self.pipeline.nodes.items():
            status, _ = self.cache(name).state(checksums=True)
            ledger = self._cached_ledger(name) if status == "cached" else None
            reports.append(NodeReport(name, node.stage.name, self.keys[name], status, ledger))
        return reports

    def _cached_ledger(self, name: str) -> Ledger | None:
        cache = self.cache(name)
        return Ledger.from_dict(cache.manifest()["ledger"]) if cache.committed else None

    def run(self, until: str | None = None, force: Iterable[str] = ()) -> list[NodeReport]:
        """Run what is not cached. `until`: only that node and its ancestors. `force`: rerun those nodes
        and everything downstream of them even when cached.

        Holds the pipeline's lock throughout (a concurrent run of the same pipeline waits: see the class).
        A cached entry is verified, checksums included, before it is reused or read as an input: a damaged one
        is reported on stderr ("nodes.X: cache entry corrupt (why); recomputing") and recomputed under the same
        key, so its dependents' entries stay valid."""
        wanted = self.pipeline.ancestors(until) if until else set(self.pipeline.nodes)
        forced = set().union(*(self.pipeline.descendants(f) for f in force)) if force else set()
        reports = []
        with pipeline_lock(self.cache_root, self.pipeline.name):
            for name, node in self.pipeline.nodes.items():
                if name not in wanted:
                    continue
                status, problem = ("forced", None) if name in forced else self.cache(name).state(checksums=True)
                if problem:
                    say(f"nodes.{name}: cache entry corrupt ({problem}); recomputing")
                if status == "cached":
                    report = NodeReport(name, node.stage.name, self.keys[name], "cached", self._cached_ledger(name))
                else:
                    report = self._execute(node)
                self.progress.node_finished(report)
                reports.append(report)
        return reports

    def output(self, name: str) -> pa.Table:
        return self.cache(name).read()

    def rejects(self, name: str) -> pa.Table:
        return self.cache(name).rejects()

    # --- executing one node ---

    def model_dir(self, name: str) -> Path:
        """Where build node `name` keeps its model (once it has run)."""
        return (self.cache(name).dir / MODEL).resolve()

    def _execute(self, node: Node) -> NodeReport:
        cache, started = self.cache(node.name), time.perf_counter()
        scratch = cache.begin()
        total = sum(self.cache(i).manifest()["ledger"]["out"] for i in node.inputs) if node.inputs else None
        self.progress.node_started(node, total)
        # A model node's directory as the cache root spells it (relative to the working directory by default),
        # not resolved: an adapter records its base's path in adapter_config.json, and an absolute path would
        # make two checkouts write different bytes under one key.
        params = replace(node.params, **{k: str(self.cache(m).dir / MODEL) for k, m in node.models.items()})
        if node.stage.kind == "build":
            ledger, parts = self._build(node, params, scratch), []
        else:
            ledger, parts = self._stream(node, params, scratch)
        seconds = time.perf_counter() - started
        (scratch / "stats.json").write_text(json.dumps(
            {"ledger": ledger.to_dict(), "seconds": round(seconds, 3),
             "rows_per_s": round(ledger.rows_in / seconds, 1) if seconds else None}, indent=2))
        cache.commit(scratch, {
            "node": node.name, "stage": node.stage.name, "version": node.stage.version, "key": self.keys[node.name],
            "kind": node.kind, "params": key_params(node.params),
            "inputs": {i: self.keys[i] for i in node.deps}, "parts": parts, "ledger": ledger.to_dict()})
        # Only now, with the node committed, may a build's checkpoints go: a kill before this point resumes.
        shutil.rmtree(cache.work_dir, ignore_errors=True)
        return NodeReport(node.name, node.stage.name, self.keys[node.name], "ran", ledger, seconds)

    def _stream(self, node: Node, params, scratch: Path) -> tuple[Ledger, list[str]]:
        """Rows in, rows out: batches through the stage into part files and the rejects file."""
        writer = PartWriter(scratch, node.kind, self.rows_per_part, self.part_formats.get(node.name, "parquet"))
        ledger = Ledger()
        try:
            for outcome, rows_in in outcomes(node.stage, params, lambda: self._input_batches(node)):
                ledger.record(outcome, rows_in, node.name)
                writer.write(outcome)
                self.progress.rows_done(rows_in if rows_in is not None else outcome.kept.num_rows)
            check_totals(node.stage, params, ledger, node.name)
            writer.close()
        except BaseException:
            writer.abort()
            raise
        ledger.check(node.name, writer.rows, writer.rejects)
        return ledger, writer.parts

    def _build(self, node: Node, params, scratch: Path) -> Ledger:
        """Rows in, a model out (scratch/model). The ledger counts the rows it learned from; no row passes
        through, so there is nothing to balance."""
        ledger = Ledger()
        learned = learned_rows(params)

        def batches() -> Iterator[pa.Table]:
            ledger.rows_in = 0  # a builder may read its input more than once: count one pass
            for batch in self._input_batches(node):
                batch = learned(batch)
                ledger.rows_in += batch.num_rows
                yield batch

        extra = {}
        if "work_dir" in inspect.signature(node.stage.impl).parameters:  # a builder that checkpoints
            extra["work_dir"] = self.cache(node.name).work_dir
        notes = node.stage.impl(batches, params, scratch / MODEL, **extra) or {}
        if not (scratch / MODEL).is_dir():
            raise SchemaError(f"{node.stage.name} did not write its model to {scratch / MODEL}")
        ledger.notes.update(notes)
        return ledger

    def _input_batches(self, node: Node) -> Iterator[pa.Table]:
        for name in node.inputs:
            kind = self.pipeline.nodes[name].kind
            for batch in prefetch(self.cache(name).iter_batches(self.batch_rows)):
                validate(batch, kind, where=f"input of {node.name!r} from {name!r}")
                yield batch


def outcomes(stage: Stage, params, input_batches: Callable[[], Iterator[pa.Table]]
             ) -> Iterator[tuple[Outcome, int | None]]:
    """Drive one stage over its input, whatever its kind: (outcome, input rows) per batch.
    Input rows are None for sources, whose input is the records they read."""
    inside = row_filter(params) if stage.kind != "source" else None
    if inside is not None:
        yield from _scoped(stage, params, input_batches, inside)
    else:
        yield from _unscoped(stage, params, input_batches)


def _scoped(stage: Stage, params, input_batches, inside) -> Iterator[tuple[Outcome, int | None]]:
    """`only_split: train` / `only_augmented: true`: the other rows pass through untouched (first), the stage
    sees only the rest (dataprep/scope.py)."""
    for batch in input_batches():
        passing = batch.filter(pc.invert(inside(batch)))
        yield Outcome(passing), passing.num_rows
    yield from _unscoped(stage, params, lambda: (b.filter(inside(b)) for b in input_batches()))


def _unscoped(stage: Stage, params, input_batches) -> Iterator[tuple[Outcome, int | None]]:
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
        state = stage.impl(params)
        state.fit(input_batches())
        for batch in input_batches():
            yield as_outcome(stage, state.apply(batch), batch), batch.num_rows
        extra = state.finish() if hasattr(state, "finish") else None
        if extra is not None and extra.num_rows:
            yield Outcome(extra.slice(0, 0), added=extra), 0


def check_totals(stage: Stage, params, ledger: Ledger, node: str) -> None:
    """The stage's node-level check (Stage.check_totals), once every batch is done."""
    if stage.check_totals is not None:
        ledger.notes.update(stage.check_totals(dict(ledger.notes), params, node))


def as_outcome(stage: Stage, result, batch: pa.Table) -> Outcome:
    if stage.kind == "filter":
        keep, reasons = result
        return Outcome.from_mask(batch, keep, reasons)
    return result if isinstance(result, Outcome) else Outcome(result)


def run_in_memory(stage: Stage, table: pa.Table, params) -> Outcome:
    """The Python API path: one stage over one in-memory table, with the runner's checks."""
    if stage.kind == "source":
        raise TypeError(f"{stage.name} reads files; call it through a pipeline or `dataprep stage`")
    ledger, results = Ledger(), []
    for outcome, rows_in in outcomes(stage, params, lambda: iter([table])):
        ledger.record(outcome, rows_in, stage.name)
        results.append(outcome)
    check_totals(stage, params, ledger, stage.name)
    kept = pa.concat_tables([o.kept for o in results], promote_options="permissive")
    added = [o.added for o in results if o.added is not None]
    rejected = pa.concat_tables([o.rejected for o in results])
    return Outcome(kept, rejected, pa.concat_tables(added, promote_options="permissive") if added else None,
                   dict(ledger.notes))


class PartWriter:
    """Writes a node's output rows to `part-NNNNN.<format>` files and its rejects to `rejects.<format>`, on a
    background thread so that encoding and compression overlap the stage's work on the next batch."""

    def __init__(self, directory: Path, kind: str, rows_per_part: int, part_format: str = "parquet"):
        self.dir, self.kind, self.rows_per_part = directory, kind, rows_per_part
        self.suffix = PART_FORMATS[part_format]
        self.parts: list[str] = []
        self.rows = self.rejects = 0
        self._part, self._schema = None, None
        self._part_rows = 0
        self._rejects = part_writer(directory / f"rejects{self.suffix}", REJECTS)
        self._behind = Behind()

    def write(self, outcome: Outcome) -> None:
        self._behind.submit(self._write, outcome)

    def _write(self, outcome: Outcome) -> None:
        table = outcome.output()
        if table.num_rows:
            self._write_rows(conform(table, self.kind))
        if outcome.rejected.num_rows:
            self._rejects.write_table(outcome.rejected)
            self.rejects += outcome.rejected.num_rows

    def _write_rows(self, table: pa.Table) -> None:
        if self._part is not None and (self._part_rows >= self.rows_per_part
                                       or not self._schema.equals(table.schema)):
            self._close_part()
        if self._part is None:
            self.parts.append(f"part-{len(self.parts):05d}{self.suffix}")
            self._part, self._schema = part_writer(self.dir / self.parts[-1], table.schema), table.schema
        self._part.write_table(table)
        self._part_rows += table.num_rows
        self.rows += table.num_rows

    def _close_part(self) -> None:
        self._part.close()
        self._part, self._part_rows = None, 0

    def close(self) -> None:
        """Finish every pending write and close the files; the counts are final after this. A write that
        failed on the writer thread raises here (or in a later `write`), not where its batch was handed over."""
        try:
            self._behind.drain()
        finally:
            self._close_files()

    def abort(self) -> None:
        """The stage failed: stop writing and close the files (the scratch directory is discarded). The
        stage's own error is the one worth reporting, so failures here are swallowed."""
        with suppress(Exception):
            self._behind.drain()
        with suppress(Exception):
            self._close_files()

    def _close_files(self) -> None:
        try:
            if self._part is not None:
                self._close_part()
        finally:
            self._rejects.close()


def report_dict(report: NodeReport) -> dict:
    d = asdict(report)
    d["ledger"] = report.ledger.to_dict() if report.ledger else None
    return d
