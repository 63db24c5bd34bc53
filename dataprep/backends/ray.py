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
  source       one Ray task a piece: a shard (file) of read_csv, read_conll, read_parallel, read_parquet and
               read_jsonl, or a byte range of a JSON Lines file larger than `range_bytes`, cut where the whole
               read begins a block; each streams its batches back. A source of one piece (a lone small file)
               and read_hf (one dataset, read whole) stay on the driver.
  scoped       (`only_split`, `only_augmented`) a map, filter or model node: the rows outside its scope pass
               through on the driver, the stage runs on the cluster as above over each batch cut to its scope;
               a scoped global node (its positions count in-scope rows only) fits and applies on the driver.
Rows come back to the driver in input order and are written by the cache's PartWriter, so a node computed here
is byte for byte the node the local runner writes, under the same key: a cache hit for either.

Why a reader's pieces give the whole read's batches: a batch never spans two shards (nor two blocks of a JSON
Lines file), and what a whole read carries from piece to piece is small — whether a row had a split, and for JSON
Lines the kept fields and their types so far. Each piece is read from a guess of that state, made before any is
read (for JSON Lines from one scan task a piece: `scan_fields`, merged in order); the driver takes the pieces in
order, knows the true state each one starts from (the one before it reports its end), and reads a piece again on
the driver when its guess would show in its batches (`_fits`). So the bytes never depend on the guess, only the
time does.

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
from collections import deque
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from dataprep.dag import Node
from dataprep.errors import DataprepError
from dataprep.execute import as_outcome, build, passing_through, with_positions
from dataprep.io import SHARD_READERS, plan_blocks, prepare_read, read_jsonl_range, read_shard
from dataprep.io.jsonl import Fields, merge_fields, needs_fields, scan_fields
from dataprep.ledger import Ledger
from dataprep.outcome import Outcome
from dataprep.runner import Runner
from dataprep.scope import row_filter
from dataprep.stages.dedup import DedupState, ExactDedup, decide, key_columns

PARTITIONS = 16  # hash partitions of exact_dedup's shuffle: more than the cores of a small cluster
log = logging.getLogger(__name__)


@dataclass
class RayRunner(Runner):
    """A Runner whose streaming, build and source nodes run on Ray (the DAG walk and the writes stay on the
    driver)."""
    address: str | None = None
    concurrency: int = 2      # actors per model node
    num_gpus: float = 0       # GPUs per model actor and per build task
    range_bytes: int = 64 << 20  # a JSON Lines file larger than this is read as ranges of about this size
    ran_on: dict[str, str] = field(default_factory=dict, init=False)  # node -> "cluster" | "driver" (a log)
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
        if stage.kind == "source":
            yield from self._source(node, params)
            return
        inside = row_filter(params)
        if inside is not None and stage.kind == "global":
            # A scoped global stage's positions count in-scope rows only: what a piece starts at depends on every
            # piece before it, so its fit and apply run on the driver, as locally.
            self.ran_on[node.name] = "driver"
            yield from super().node_outcomes(node, params)
            return
        self.ran_on[node.name] = "cluster"
        pieces = self._pieces(node)
        if inside is not None:
            # The rows outside the scope pass through first, as locally (execute.outcomes); each task then
            # filters its batches to the scope, so the stage sees the local runner's batches.
            yield from passing_through(self._input_batches(node), inside)
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

    # --- sources: a reader's pieces (shards, byte ranges) as Ray tasks, their batches in read order ---

    def _source(self, node: Node, params) -> Iterator[tuple[Outcome, None]]:
        """A reader's batches, read on the cluster a piece a task. A source of one piece (a lone file of at most
        `range_bytes`) is read on the driver, as is read_hf: one task would parallelise nothing and only add its
        start and a copy of every batch."""
        plan = _plan_source(node.stage.name, params, self.range_bytes)
        if plan is None or len(plan.pieces) < 2:
            yield from super().node_outcomes(node, params)
            return
        for outcome in self._read_pieces(node.name, plan, self._guesses(plan)):
            yield outcome, None

    def _guesses(self, plan: _SourcePlan) -> list[_Carry]:
        """The state each piece is read from on the cluster, guessed before any piece is read: no split seen
        (`_fits` says when that shows), and for JSON Lines the kept fields of the pieces before it, merged from
        one scan task a piece (Arrow's speed on blocks that bring no new field)."""
        if plan.reader != "read_jsonl":
            return [_Carry()] * len(plan.pieces)
        if not needs_fields(plan.params):
            return [_Carry(fields=Fields())] * len(plan.pieces)
        import ray
        params, scan = ray.put(plan.params), ray.remote(scan_fields)
        scans = [_get(ref) for ref in [scan.remote(params, piece) for piece in plan.pieces]]
        guesses, merged = [], Fields()
        for fields in scans:
            guesses.append(_Carry(fields=merged))
            merged = merge_fields(plan.params, [merged, fields])
        return guesses

    def _read_pieces(self, node: str, plan: _SourcePlan, guesses: list[_Carry]) -> Iterator[Outcome]:
        """Every piece read on the cluster from its guess, its batches taken in read order; a piece whose guess
        would show in its batches is read again here, from the state the pieces before it really left."""
        import ray
        task, shared = ray.remote(_read_piece), ray.put(plan)
        true = plan.start()
        for i, stream in _ahead(lambda i: task.remote(shared, i, guesses[i]), len(plan.pieces), self._window()):
            items = _fetched(stream)
            first = next(items)
            if not _fits(plan, i, guesses[i], true, first):
                ray.cancel(stream)
                log.info("nodes.%s: %s read again on the driver (the state before it was not the guessed one)",
                         node, _named(plan.pieces[i]))
                items = _piece_items(plan, i, true)
                first = next(items)
            true = yield from _passed(chain([first], items), true)

    def _window(self) -> int:
        """Pieces in flight: twice the cluster's CPUs, so the next ones are read while the driver writes."""
        import ray
        return max(2, 2 * int(ray.cluster_resources().get("CPU", 1)))

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
            import ray
            pool = ray.data.ActorPoolStrategy(size=self.concurrency)  # `concurrency=` is deprecated since Ray 2.51
            ds = ds.map_batches(fn, batch_size=1, batch_format="pyarrow", compute=pool,
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


def _each_batch(pieces: pa.Table, fn, params=None) -> pa.Table:
    """map_batches' unit: one piece in, one packed outcome a batch out. With `params` of a scoped node, each
    batch is cut to the rows in scope first, and one with none is skipped (execute.in_scope)."""
    inside = row_filter(params) if params is not None else None
    packed = []
    for piece in pieces.to_pylist():
        for batch, rows in _batches_of(piece):
            if inside is not None:
                batch = batch.filter(inside(batch))
                if not batch.num_rows:
                    continue
            packed.append(pack(fn(batch, rows), batch.num_rows))
    return pa.Table.from_pylist(packed, schema=PACKED) if packed else PACKED.empty_table()


@dataclass
class _BatchApply:
    stage: object
    params: object

    def __call__(self, pieces: pa.Table) -> pa.Table:
        return _each_batch(pieces, lambda batch, rows: as_outcome(self.stage, self.stage.impl(batch, self.params),
                                                                  batch), self.params)


class _ModelApply:
    """An actor: loads the model once, then maps every batch it is given."""

    def __init__(self, stage, params):
        self.stage, self.params, self.model = stage, params, stage.impl(params)

    def __call__(self, pieces: pa.Table) -> pa.Table:
        return _each_batch(pieces, lambda batch, rows: as_outcome(self.stage, self.model(batch), batch), self.params)


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


# --- a reader's pieces: what runs on the workers, and the check of each piece's guessed state ---

@dataclass(frozen=True)
class _Carry:
    """What a whole read carries from one piece into the next: whether a row had a split (every later batch of
    CSV, Parquet and JSON Lines then has a `split` column) and, for JSON Lines, the kept fields so far."""
    split_seen: bool = False
    fields: Fields | None = None


@dataclass(frozen=True)
class _End:
    """The last item of a piece: its kept fields at its end (JSON Lines; None for the other readers)."""
    fields: Fields | None


@dataclass(frozen=True)
class _SourcePlan:
    """A reader's input as pieces read apart, in the whole read's order: Shards (params as `prepare_read`
    returned them), or for read_jsonl Ranges (`plan_blocks`)."""
    reader: str
    params: object
    pieces: list

    def start(self) -> _Carry:
        """The state a whole read starts from."""
        return _Carry(fields=Fields() if self.reader == "read_jsonl" else None)


def _plan_source(reader: str, params, range_bytes: int) -> _SourcePlan | None:
    """The pieces of a reader's input, every check the reader makes before its first row done (headers,
    footers, columns, a path that names no file); None for a reader that reads its input whole (read_hf)."""
    if reader == "read_jsonl":
        return _SourcePlan(reader, params, plan_blocks(params, range_bytes))
    if reader in SHARD_READERS:
        prepared, shards = prepare_read(reader, params)
        return _SourcePlan(reader, prepared, shards)
    return None


def _piece_items(plan: _SourcePlan, i: int, start: _Carry) -> Iterator[Outcome | _End]:
    """Piece i read from `start`: its outcomes, then an _End."""
    piece = plan.pieces[i]
    if plan.reader != "read_jsonl":
        yield from read_shard(plan.reader, plan.params, piece, start.split_seen)
        yield _End(None)
        return
    fields = yield from read_jsonl_range(plan.params, piece, start.fields, start.split_seen)
    yield _End(fields)


def _read_piece(plan: _SourcePlan, i: int, start: _Carry) -> Iterator[dict | _End]:
    """The Ray task of one piece, a streaming generator: each outcome packed as it is read, then the _End."""
    for item in _piece_items(plan, i, start):
        yield item if isinstance(item, _End) else pack(item, None)


def _fetched(stream) -> Iterator[Outcome | _End]:
    """A piece task's items as they arrive."""
    for ref in stream:
        item = _get(ref)
        yield item if isinstance(item, _End) else unpack(item)[0]


def _named(piece) -> str:
    """A piece as a message names it: its shard's name, and where a range of it begins."""
    start = getattr(piece, "start", 0)
    return f"{piece.name} from byte {start}" if start else piece.name


def _fits(plan: _SourcePlan, i: int, guess: _Carry, true: _Carry, first: Outcome | _End) -> bool:
    """Whether piece i's batches, read from `guess`, are the ones it gives from `true` (the state the pieces
    before it left), judged from its first item. Kept fields (JSON Lines) must be the same as its shard sees
    them (a field fixed in an earlier shard is known from its line 0). A split guessed unseen is harmless
    unless one was seen and the first batch lacks the column: read from unseen, the batches lack it until the
    first row with a split and have it from then on, so when the first has it, all do, as read from seen."""
    if plan.reader == "read_jsonl":
        shard = plan.pieces[i].shard
        if _view(plan.params, guess.fields, shard) != _view(plan.params, true.fields, shard):
            return False
    if guess.split_seen == true.split_seen or isinstance(first, _End):
        return True
    return not guess.split_seen and "split" in first.kept.column_names


def _view(params, fields: Fields, shard: int) -> tuple[list, dict]:
    """Kept fields as the reader holds them at the start of a piece of `shard`: names, kinds, first lines."""
    extras = fields.extras(params, shard)
    return list(extras.kinds.items()), extras.first


def _passed(items: Iterator[Outcome | _End], true: _Carry) -> Generator[Outcome, None, _Carry]:
    """Yield a piece's outcomes; return the state it leaves: a split seen once a batch has the column."""
    split_seen = true.split_seen
    for item in items:
        if isinstance(item, _End):
            return _Carry(split_seen, item.fields)
        split_seen = split_seen or "split" in item.kept.column_names
        yield item
    raise RuntimeError("a piece ended without its _End")


def _ahead(submit: Callable[[int], object], n: int, window: int) -> Iterator[tuple[int, object]]:
    """(i, submit(i)) for i in range(n), in order, with at most `window` pieces in flight (the one being taken
    and those submitted after it): the cluster reads ahead of the driver, and no more than that waits in its
    object store. The ones not taken when the caller stops (an error) are cancelled."""
    import ray
    pending: deque = deque()
    try:
        for i in range(n):
            pending.append((i, submit(i)))
            if len(pending) >= window:
                yield pending.popleft()
        while pending:
            yield pending.popleft()
    finally:
        for _, ref in pending:
            ray.cancel(ref)


def _get(ref):
    """ray.get, a dataprep error raised in a task re-raised as itself (one line naming the file, as locally)."""
    import ray
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as e:
        if isinstance(e.cause, DataprepError):
            raise e.cause from None
        raise


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


# The Parquet writer's bytes depend on how each column is chunked (pages follow the chunks it is handed), and a
# reader's columns are chunked apart (JSON Lines: parsed columns by Arrow's parse block, ids as one array). An
# IPC stream cuts every column at the union of their chunk boundaries, so each record batch says which columns
# begin a chunk with it, and the chunks are joined back as they were.
_BEGINS = b"dataprep.chunk_begins"


def _ipc(table: pa.Table) -> bytes:
    """A table as an Arrow IPC stream that keeps each column's chunks."""
    starts = [_chunk_starts(column) for column in table.columns]
    sink, offset = io.BytesIO(), 0
    with pa.ipc.new_stream(sink, table.schema) as writer:
        for batch in table.to_batches():  # cut at every column's chunk boundaries
            begins = b"".join(b"1" if offset in s else b"0" for s in starts)
            writer.write_batch(batch, custom_metadata={_BEGINS: begins})
            offset += batch.num_rows
    return sink.getvalue()


def _chunk_starts(column: pa.ChunkedArray) -> set[int]:
    starts, offset = set(), 0
    for chunk in column.chunks:
        starts.add(offset)
        offset += len(chunk)
    return starts


def _table(data: bytes) -> pa.Table:
    """The table `_ipc` wrote, each column chunked as it was."""
    reader = pa.ipc.open_stream(data)
    chunks: list[list[list[pa.Array]]] = [[] for _ in reader.schema]
    while True:
        try:
            batch, metadata = reader.read_next_batch_with_custom_metadata()
        except StopIteration:
            break
        begins = metadata[_BEGINS]
        for pieces, column, begin in zip(chunks, batch.columns, begins):
            if begin == ord("1") or not pieces:
                pieces.append([column])
            else:
                pieces[-1].append(column)  # the rest of a chunk another column's boundary cut
    columns = [pa.chunked_array([p[0] if len(p) == 1 else pa.concat_arrays(p) for p in pieces], type=f.type)
               for pieces, f in zip(chunks, reader.schema)]
    return pa.Table.from_arrays(columns, schema=reader.schema)
