"""The local runner: walks the DAG in order, reuses cached nodes, streams batches through the others.

Three homes, one concern each: the runner walks the DAG, keys nodes and keeps each node's ledger (it refuses to
commit a node whose ledger does not balance); dataprep/execute.py drives one stage over batches, whatever its
kind; dataprep/cache.py owns a node's directory (part files, rejects, stats, manifest, the atomic commit).
Every batch is validated against the record contract on its way in and, as it is written, out.
"""
from __future__ import annotations

import shutil
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import pyarrow as pa

from dataprep.cache import NodeCache, PartWriter, node_key, pipeline_lock, say
from dataprep.dag import Node, Pipeline
from dataprep.execute import build, check_totals, outcomes, run_in_memory  # noqa: F401  (run_in_memory: API)
from dataprep.ledger import Ledger
from dataprep.outcome import Outcome
from dataprep.overlap import prefetch
from dataprep.registry import MODEL, key_params
from dataprep.schema import validate
from dataprep.store import open_root

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
    """Runs a pipeline's nodes against the cache under `cache_root`: a local directory, or a `pyarrow.fs` URI
    (`s3://…`) whose entries are pushed after each node commits and fetched when read (dataprep/store.py), with
    the local copy in $DATAPREP_LOCAL_CACHE (default `runs`); `cache_root` is then that local copy and
    `remote` the store.

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
        self.cache_root, self.remote = open_root(self.cache_root)
        self.keys = self._compute_keys()

    def _compute_keys(self) -> dict[str, str]:
        keys: dict[str, str] = {}
        for name, node in self.pipeline.nodes.items():
            keys[name] = node_key(node, [keys[i] for i in node.inputs], {k: keys[m] for k, m in node.models.items()})
        return keys

    def cache(self, name: str) -> NodeCache:
        """Node `name`'s entry in the local cache, fetched first from the remote store when only it has one."""
        cache = self._local(name)
        if self.remote is not None and not cache.committed and self._in_remote(name):
            self.remote.pull(cache)
        return cache

    def _local(self, name: str) -> NodeCache:
        return NodeCache(self.cache_root, self.pipeline.name, name, self.keys[name])

    def _in_remote(self, name: str) -> bool:
        return self.remote is not None and self.remote.has(self.pipeline.name, name, self.keys[name])

    def _state(self, name: str) -> tuple[str, str | None]:
        """The local entry's state (`NodeCache.state`, checksums included); an entry absent here but in the
        remote store is "cached": it is fetched, and verified, when read."""
        status, problem = self._local(name).state(checksums=True)
        if status == "missing" and self._in_remote(name):
            return "cached", None
        return status, problem

    def plan(self) -> list[NodeReport]:
        """Each node's key and cache state: "cached", "missing", or "corrupt" (present but damaged; why:
        `self.cache(name).verify()`). The plan hashes every cached file, as `run` does: a plan that calls an
        entry with a flipped byte cached would say what `run` then does not do, and xxh3 hashes at GB/s."""
        reports = []
        for name, node in self.pipeline.nodes.items():
            status, _ = self._state(name)
            ledger = self._cached_ledger(name) if status == "cached" else None
            reports.append(NodeReport(name, node.stage.name, self.keys[name], status, ledger))
        return reports

    def _cached_ledger(self, name: str) -> Ledger | None:
        cache = self._local(name)
        if cache.committed:
            return Ledger.from_dict(cache.manifest()["ledger"])
        remote = self.remote.manifest(self.pipeline.name, name, self.keys[name]) if self.remote else None
        return Ledger.from_dict(remote["ledger"]) if remote else None

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
                status, problem = ("forced", None) if name in forced else self._state(name)
                if problem and self._in_remote(name):
                    say(f"nodes.{name}: cache entry corrupt ({problem}); fetching it again from {self.remote.uri}")
                    self.remote.pull(self._local(name))
                    status, problem = "cached", None
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

    def model_path(self, name: str) -> Path:
        """Build node `name`'s model directory as the cache root spells it (what a stage is handed)."""
        return self.cache(name).dir / MODEL

    def model_dir(self, name: str) -> Path:
        """Where build node `name` keeps its model (once it has run)."""
        return (self.cache(name).dir / MODEL).resolve()

    def _execute(self, node: Node) -> NodeReport:
        cache, started = self._local(node.name), time.perf_counter()
        scratch = cache.begin()
        total = sum(self.cache(i).manifest()["ledger"]["out"] for i in node.inputs) if node.inputs else None
        self.progress.node_started(node, total)
        # A model node's directory as the cache root spells it (relative to the working directory by default),
        # not resolved: an adapter records its base's path in adapter_config.json, and an absolute path would
        # make two checkouts write different bytes under one key.
        params = replace(node.params, **{k: str(self.model_path(m)) for k, m in node.models.items()})
        if node.stage.kind == "build":
            ledger, parts = self.build_ledger(node, params, scratch / MODEL, cache.work_dir), []
        else:
            ledger, parts = self._stream(node, params, scratch)
        seconds = time.perf_counter() - started
        cache.commit(scratch, {
            "node": node.name, "stage": node.stage.name, "version": node.stage.version, "key": self.keys[node.name],
            "kind": node.kind, "params": key_params(node.params),
            "inputs": {i: self.keys[i] for i in node.deps}, "parts": parts, "ledger": ledger.to_dict()},
            stats={"ledger": ledger.to_dict(), "seconds": round(seconds, 3),
                   "rows_per_s": round(ledger.rows_in / seconds, 1) if seconds else None})
        # Only now, with the node committed, may a build's checkpoints go: a kill before this point resumes.
        shutil.rmtree(cache.work_dir, ignore_errors=True)
        if self.remote is not None:
            self.remote.push(cache)
        return NodeReport(node.name, node.stage.name, self.keys[node.name], "ran", ledger, seconds)

    def _stream(self, node: Node, params, scratch: Path) -> tuple[Ledger, list[str]]:
        """Rows in, rows out: batches through the stage into part files and the rejects file."""
        writer = PartWriter(scratch, node.kind, self.rows_per_part, self.part_formats.get(node.name, "parquet"))
        ledger = Ledger()
        try:
            for outcome, rows_in in self.node_outcomes(node, params):
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

    # --- where a node's work is done: a backend overrides these two (dataprep/backends/ray.py) ---

    def node_outcomes(self, node: Node, params) -> Iterator[tuple[Outcome, int | None]]:
        """(outcome, input rows) of every batch of a streaming node, in input order."""
        return outcomes(node.stage, params, lambda: self._input_batches(node), self.input_kind(node))

    def build_ledger(self, node: Node, params, out_dir: Path, work_dir: Path) -> Ledger:
        """Run a build node: its model goes to `out_dir`, its checkpoints (if it resumes) to `work_dir`."""
        return build(node.stage, params, lambda: self._input_batches(node), out_dir, work_dir)

    def input_kind(self, node: Node) -> str | None:
        """The record kind of a node's input rows (the DAG checked its inputs agree); None for a source."""
        rows = [i for i in node.inputs if self.pipeline.nodes[i].kind != MODEL]
        return self.pipeline.nodes[rows[0]].kind if rows else None

    def _input_batches(self, node: Node) -> Iterator[pa.Table]:
        for name in node.inputs:
            kind = self.pipeline.nodes[name].kind
            for batch in prefetch(self.cache(name).iter_batches(self.batch_rows)):
                validate(batch, kind, where=f"input of {node.name!r} from {name!r}")
                yield batch


def report_dict(report: NodeReport) -> dict:
    d = asdict(report)
    d["ledger"] = report.ledger.to_dict() if report.ledger else None
    return d
