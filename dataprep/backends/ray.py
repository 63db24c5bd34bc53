"""The Ray backend: the same DAG, the same keys and the same bytes, computed on a Ray cluster.

What runs where, by stage kind (the local driver, dataprep/execute.py, defines what each kind is asked to do):
  map, filter  Ray Data `map_batches` tasks, one per input part file, over the batches the local runner reads
  model        `map_batches` over an actor pool (`concurrency` actors, `num_gpus` each): the model loads once
               per actor
  global       exact_dedup: `fit` as a hash shuffle (`groupby` on a hash partition of every row's key, so that
               equal keys meet in one partition wherever they started; each partition keeps the lowest
               position); the other global stages fit on the driver over the columns they need, streamed from
               the cluster. `apply` is `map_batches` with the state shared by reference (`ray.put`).
  build        one Ray task with the resources the node asks for (a GPU with `num_gpus`)
  source       on the driver (readers stream the files; see README "Scaling out")
Rows come back to the driver in input order and are written by the cache's PartWriter, so a node computed here
is byte for byte the node the local runner writes, under the same key: a cache hit for either.

The cluster: `address` (or $RAY_ADDRESS) joins a running one; none starts a local one for the run (an
explicit temp dir, no dashboard) and shuts it down after.
"""
from __future__ import annotations

import io
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from dataprep.dag import Node
from dataprep.execute import as_outcome, build, with_positions
from dataprep.ledger import Ledger
from dataprep.outcome import Outcome
from dataprep.runner import Runner
from dataprep.scope import row_filter
from dataprep.stages.dedup import DedupState, ExactDedup, decide, key_columns

PARTITIONS = 16  # hash partitions of exact_dedup's shuffle: more than the cores of a small cluster


@dataclass
class RayRunner(Runner):
    """A Runner whose streaming and build nodes run on Ray (sources and the DAG walk stay on the driver)."""
    address: str | None = None
    concurrency: int = 2      # actors per model node
    num_gpus: float = 0       # GPUs per model actor and per build task
    _started: bool = field(default=False, init=False, repr=False)
    _temp: str | None = field(default=None, init=False, repr=False)

    def run(self, until=None, force=()):
        self._connect()
        try:
            return super().run(until=until, force=force)
        finally:
            self._disconnect()

    def _connect(self) -> None:
        import ray
        if not ray.is_initialized():
            self._start(ray)
        logging.getLogger("ray.data").setLevel(logging.ERROR)  # a plan and a timing line per dataset otherwise
        from ray.data import DataContext
        context = DataContext.get_current()
        context.execution_options.preserve_order = True  # rows come back in input order: the same bytes
        context.enable_progress_bars = False
        context.print_on_execution_start = False

    def _start(self, ray) -> None:
        address = self.address or os.environ.get("RAY_ADDRESS")
        if address:
            ray.init(address=address, logging_level="ERROR", log_to_driver=False)
        else:
            self._temp = tempfile.mkdtemp(prefix="dataprep-ray-")  # short: Ray's socket paths fit in 107 bytes
            ray.init(num_cpus=os.cpu_count(), include_dashboard=False, _temp_dir=self._temp, logging_level="ERROR",
                     log_to_driver=False)
        self._started = True

    def _disconnect(self) -> None:
        if self._started:
            import ray
            ray.shutdown()
            self._started = False
        if self._temp:  # the cluster this run started kept its sockets and logs here: nothing is left behind
            shutil.rmtree(self._temp, ignore_errors=True)
            self._temp = None

    # --- the two things a backend decides: where a node's batches are computed ---

    def node_outcomes(self, node: Node, params) -> Iterator[tuple[Outcome, int | None]]:
        stage = node.stage
        if stage.kind == "source" or row_filter(params) is not None:
            # readers stream files on the driver; a scoped node routes rows around the stage on the driver
            yield from super().node_outcomes(node, params)
            return
        pieces = self._pieces(node)
        if stage.kind == "global":
            state = self._fit(node, params, pieces)
            fn = _GlobalApply(stage, params, self.input_kind(node), state)
            yield from self._map(pieces, fn)
        elif stage.kind == "model":
            yield from self._map(pieces, _ModelApply, stage=stage, params=params, actors=True)
        else:
            yield from self._map(pieces, _BatchApply(stage, params))

    def build_ledger(self, node: Node, params, out_dir: Path, work_dir: Path) -> Ledger:
        import ray
        task = ray.remote(num_gpus=self.num_gpus)(_build_task) if self.num_gpus else ray.remote(_build_task)
        return ray.get(task.remote(node.stage, params, self._input_files(node), self.batch_rows, out_dir, work_dir))

    # --- pieces of input: one part file each, with the global position of its first row ---

    def _input_files(self, node: Node) -> list[str]:
        return [str(p) for i in node.inputs for p in self.cache(i).parts()]

    def _pieces(self, node: Node) -> list[dict]:
        pieces, start = [], 0
        for path in self._input_files(node):
            rows = _part_rows(path)
            pieces.append({"path": path, "start": start, "batch_rows": self.batch_rows})
            start += rows
        return pieces

    def _dataset(self, pieces: list[dict]):
        import ray
        return ray.data.from_items(pieces, override_num_blocks=max(len(pieces), 1))

    def _map(self, pieces: list[dict], fn, stage=None, params=None, actors: bool = False):
        """Run `fn` over every batch of every piece on the cluster; yield the outcomes in input order."""
        if not pieces:
            return
        ds = self._dataset(pieces)
        if actors:
            ds = ds.map_batches(fn, batch_size=1, batch_format="pyarrow", concurrency=self.concurrency,
                                num_gpus=self.num_gpus, fn_constructor_kwargs={"stage": stage, "params": params})
        else:
            ds = ds.map_batches(fn, batch_size=1, batch_format="pyarrow")
        for packed in ds.iter_batches(batch_size=None, batch_format="pyarrow"):
            for row in packed.to_pylist():
                yield unpack(row)

    def _fit(self, node: Node, params, pieces: list[dict]):
        """A global stage's state: exact_dedup's by a hash shuffle on the cluster, the others' on the driver
        over the input streamed from the cluster (their fit reads a few bytes a row)."""
        kind = self.input_kind(node)
        phases = node.stage.impl(params, kind)
        if isinstance(phases, ExactDedup.impl) and pieces:  # ExactDedup is the registered Stage
            return self._dedup_fit(params, kind, pieces)
        return phases.fit(self._input_batches(node))

    def _dedup_fit(self, params, kind: str, pieces: list[dict]) -> DedupState:
        ds = self._dataset(pieces).map_batches(_KeyColumns(params, kind), batch_size=1, batch_format="pyarrow")
        decide_partition = _DecidePartition(params)

        def decide_one(rows: pa.Table) -> pa.Table:  # map_groups wants a function (it reads __name__)
            return decide_partition(rows)
        decided = ds.groupby("partition").map_groups(decide_one, batch_format="pyarrow")
        return _removals(decided)


# --- what runs on the workers (plain functions and callables: Ray pickles them) ---

def _part_rows(path: str) -> int:
    if path.endswith(".arrow"):
        return pa.ipc.open_file(pa.memory_map(path)).read_all().num_rows
    return pq.ParquetFile(path).metadata.num_rows


def _batches_of(piece: dict) -> Iterator[tuple[pa.Table, range]]:
    """A piece's batches as the local runner reads them, each with its global row positions."""
    from dataprep.cache import iter_part
    batches = iter_part(Path(piece["path"]), piece["batch_rows"])
    for batch, rows in with_positions(batches):
        yield batch, range(piece["start"] + rows.start, piece["start"] + rows.stop)


def _each_batch(pieces: pa.Table, fn) -> pa.Table:
    """map_batches' unit: one piece in, one packed outcome a batch out."""
    packed = []
    for piece in pieces.to_pylist():
        for batch, rows in _batches_of(piece):
            packed.append(pack(fn(batch, rows), batch.num_rows))
    return pa.Table.from_pylist(packed, schema=PACKED) if packed else PACKED.empty_table()


@dataclass
class _BatchApply:
    stage: object
    params: object

    def __call__(self, pieces: pa.Table) -> pa.Table:
        return _each_batch(pieces, lambda batch, rows: as_outcome(self.stage, self.stage.impl(batch, self.params),
                                                                  batch))


class _ModelApply:
    """An actor: loads the model once, then maps every batch it is given."""

    def __init__(self, stage, params):
        self.stage, self.model = stage, stage.impl(params)

    def __call__(self, pieces: pa.Table) -> pa.Table:
        return _each_batch(pieces, lambda batch, rows: as_outcome(self.stage, self.model(batch), batch))


@dataclass
class _GlobalApply:
    stage: object
    params: object
    kind: str
    state: object

    def __post_init__(self):
        import ray
        self.state = ray.put(self.state)  # shared by reference: sent to each worker once, not with every task

    def __call__(self, pieces: pa.Table) -> pa.Table:
        import ray
        state = ray.get(self.state)
        phases = self.stage.impl(self.params, self.kind)
        return _each_batch(pieces, lambda batch, rows: as_outcome(self.stage, phases.apply(batch, state, rows),
                                                                  batch))


@dataclass
class _KeyColumns:
    """exact_dedup's map side: each row's position, key columns and hash partition."""
    params: object
    kind: str

    def __call__(self, pieces: pa.Table) -> pa.Table:
        import numpy as np
        tables = []
        for piece in pieces.to_pylist():
            for batch, rows in _batches_of(piece):
                keys = key_columns(batch, self.params, self.kind)
                partition = (keys.column("hash").to_numpy() % PARTITIONS).astype(np.int64)
                tables.append(keys.append_column("position", pa.array(np.arange(rows.start, rows.stop)))
                              .append_column("partition", pa.array(partition)))
        return pa.concat_tables(tables) if tables else _KEYS_WITH_POSITION.empty_table()


@dataclass
class _DecidePartition:
    """exact_dedup's reduce side: every row of one hash partition (all copies of each of its keys), in input
    order, decided as the local fit decides all rows. Only the dropped rows come back: position and reason."""
    params: object

    def __call__(self, rows: pa.Table) -> pa.Table:
        import numpy as np
        rows = rows.sort_by("position")
        state = decide(np.asarray(rows.column("position").to_numpy()), rows.select(KEY_NAMES), self.params)
        return pa.table([pa.array(state.dropped, pa.int64()), state.reasons], schema=REMOVALS)


def _removals(decided) -> DedupState:
    """Every partition's dropped rows as one state, in position order."""
    tables = [b for b in decided.iter_batches(batch_size=None, batch_format="pyarrow")]
    if not tables:
        return DedupState.empty()
    removals = pa.concat_tables(tables).sort_by("position")
    return DedupState(removals.column("position").to_numpy(), removals.column("reason").combine_chunks())


def _build_task(stage, params, files: list[str], batch_rows: int, out_dir: Path, work_dir: Path) -> Ledger:
    from dataprep.cache import iter_part

    def batches() -> Iterator[pa.Table]:
        for path in files:
            yield from iter_part(Path(path), batch_rows)
    return build(stage, params, batches, out_dir, work_dir)


# --- an Outcome as one row of a Ray dataset ---

PACKED = pa.schema([("kept", pa.binary()), ("rejected", pa.binary()), ("added", pa.binary()),
                    ("notes", pa.string()), ("rows_in", pa.int64())])
KEY_NAMES = ["hash", "hash_b", "label", "generated", "id"]
REMOVALS = pa.schema([("position", pa.int64()), ("reason", pa.string())])
_KEYS_WITH_POSITION = pa.schema([("hash", pa.uint64()), ("hash_b", pa.uint64()), ("label", pa.string()),
                                 ("generated", pa.bool_()), ("id", pa.string()), ("position", pa.int64()),
                                 ("partition", pa.int64())])


def pack(outcome: Outcome, rows_in: int) -> dict:
    return {"kept": _ipc(outcome.kept), "rejected": _ipc(outcome.rejected),
            "added": _ipc(outcome.added) if outcome.added is not None else None,
            "notes": json.dumps(outcome.notes), "rows_in": rows_in}


def unpack(row: dict) -> tuple[Outcome, int]:
    added = _table(row["added"]) if row["added"] is not None else None
    return Outcome(_table(row["kept"]), _table(row["rejected"]), added, json.loads(row["notes"])), row["rows_in"]


def _ipc(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue()


def _table(data: bytes) -> pa.Table:
    return pa.ipc.open_stream(data).read_all()
