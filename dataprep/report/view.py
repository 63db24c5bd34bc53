"""What the report reads: a pipeline's cache entries as the runner left them, read once and only when intact.

Every section asks this view, never the cache directly, so that a node that is missing or damaged is one
`available(name) is False` for all of them (a section then says what it cannot show) instead of an exception in
the middle of a page. Tables are read with only the columns a section asks for and kept for the next section.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from dataprep.cache import STATS
from dataprep.dag import Node, Pipeline
from dataprep.errors import CacheError
from dataprep.ledger import Ledger
from dataprep.registry import MODEL
from dataprep.runner import Runner


@dataclass(frozen=True)
class NodeState:
    """One node as `dataprep plan` sees it, with what its entry recorded about the run that computed it."""
    name: str
    node: Node
    key: str
    status: str              # "cached" | "missing" | "corrupt"
    problem: str | None      # why a corrupt entry cannot be trusted
    ledger: Ledger | None
    stats: dict              # stats.json: seconds, rows/s (measured; {} when absent)

    @property
    def stage(self) -> str:
        return self.node.stage.name

    @property
    def is_model(self) -> bool:
        return self.node.kind == MODEL


class RunView:
    """Read-only access to one pipeline's cached run under `cache_root`."""

    def __init__(self, pipeline: Pipeline, cache_root: str | Path):
        self.pipeline = pipeline
        self.cache_root = cache_root  # as given (a path, or a URI: dataprep/store.py)
        self.runner = Runner(pipeline, cache_root)
        self.nodes = {name: self._state(name) for name in pipeline.nodes}
        self._tables: dict[tuple[str, tuple[str, ...] | None], pa.Table] = {}
        self._rejects: dict[str, pa.Table] = {}

    def _state(self, name: str) -> NodeState:
        try:
            cache = self.runner.cache(name)  # fetched first when only a remote cache root has it
        except CacheError as e:  # a damaged remote entry: named on the page, never read
            return NodeState(name, self.pipeline.nodes[name], self.runner.keys[name], "corrupt", str(e), None, {})
        status, problem = cache.state(checksums=True)  # as `plan` does: a flipped byte is not read as data
        ledger, stats = None, {}
        if status == "cached":
            ledger = Ledger.from_dict(cache.manifest()["ledger"])
            stats = read_json(cache.dir / STATS)
        return NodeState(name, self.pipeline.nodes[name], self.runner.keys[name], status, problem, ledger, stats)

    # --- which nodes ---

    def available(self, name: str) -> bool:
        return self.nodes[name].status == "cached"

    def row_nodes(self) -> list[NodeState]:
        """Nodes whose output is rows, in topological order (the funnel's order)."""
        return [s for s in self.nodes.values() if not s.is_model]

    def using(self, *stages: str) -> list[NodeState]:
        """Nodes running one of `stages`, in topological order."""
        return [s for s in self.nodes.values() if s.stage in stages]

    def downstream_rows(self, name: str) -> list[NodeState]:
        """Row nodes after `name` that its rows flow into (through row inputs, not model references)."""
        reached, out = {name}, []
        for state in self.nodes.values():
            if state.name != name and reached.intersection(state.node.inputs):
                reached.add(state.name)
                if not state.is_model:
                    out.append(state)
        return out

    def final_rows(self) -> NodeState | None:
        """The dataset the run ends in: the rows the first train_lora node reads, else the last row node."""
        for state in self.using("train_lora"):
            rows = [i for i in state.node.inputs if not self.nodes[i].is_model]
            if len(rows) == 1:
                return self.nodes[rows[0]]
        rows = self.row_nodes()
        return rows[-1] if rows else None

    # --- what they hold ---

    def rows(self, name: str, columns: list[str] | None = None) -> pa.Table:
        """Node `name`'s output rows (only `columns` of them, those the parts have); read once per request."""
        memo = (name, tuple(columns) if columns is not None else None)
        if memo not in self._tables:
            parts = [_read_part(p, columns) for p in self.runner.cache(name).parts()]
            parts = [p for p in parts if p.num_columns]
            # Parts may differ in schema (lineage columns appear with the first added row): unify them.
            self._tables[memo] = pa.concat_tables(parts, promote_options="permissive") if parts else pa.table({})
        return self._tables[memo]

    def inputs(self, name: str, columns: list[str] | None = None) -> pa.Table:
        """The rows node `name` read: its row inputs' outputs, concatenated in order, as the runner feeds them."""
        tables = [self.rows(i, columns) for i in self.nodes[name].node.inputs if not self.nodes[i].is_model]
        tables = [t for t in tables if t.num_columns]
        return pa.concat_tables(tables, promote_options="permissive") if tables else pa.table({})

    def rejects(self, name: str) -> pa.Table:
        if name not in self._rejects:
            self._rejects[name] = self.runner.rejects(name)
        return self._rejects[name]

    def model_dir(self, name: str) -> Path | None:
        """A cached build node's model directory, or None."""
        if not (self.available(name) and self.nodes[name].is_model):
            return None
        path = self.runner.cache(name).dir / MODEL
        return path if path.is_dir() else None


def _read_part(path: Path, columns: list[str] | None) -> pa.Table:
    """One part file with only the wanted columns it has (a part written before a column appeared lacks it)."""
    if path.suffix == ".arrow":
        table = pa.ipc.open_file(pa.memory_map(str(path))).read_all()
        return table if columns is None else table.select([c for c in columns if c in table.column_names])
    if columns is None:
        return pq.read_table(path)
    present = set(pq.read_schema(path).names)
    return pq.read_table(path, columns=[c for c in columns if c in present])


def read_json(path: Path) -> dict:
    """A JSON object the run wrote (stats.json, a model's metrics.json); {} when it is absent or unreadable: stats
    and efficiency files are not vouched for by the manifest, so a report shows what is there, never fails on it."""
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}
