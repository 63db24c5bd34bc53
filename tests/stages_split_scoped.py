"""Test stages whose params inherit `SplitScoped`, so `only_split` routes the other splits around them.
Imported by tests/test_split.py; a pipeline names it in `imports:`."""
from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from dataprep.outcome import Outcome
from dataprep.registry import SplitScoped, param, stage


@dataclass(frozen=True)
class ScopedUpperParams(SplitScoped):
    suffix: str = param("", "appended to every text")


@stage("t_scoped_upper", version=1, kind="map", params=ScopedUpperParams)
def t_scoped_upper(table: pa.Table, p: ScopedUpperParams) -> pa.Table:
    """Upper-case the text and append `suffix`. Drops nothing."""
    text = pc.binary_join_element_wise(pc.utf8_upper(table.column("text")), pa.scalar(p.suffix), "")
    return table.set_column(table.column_names.index("text"), "text", text)


@dataclass(frozen=True)
class ScopedDropParams(SplitScoped):
    drop_label: str = param("drop", "rows with this label are rejected")


@stage("t_scoped_drop", version=1, kind="global", params=ScopedDropParams)
class TScopedDrop:
    """A global stage. Drop reasons: `scoped_drop:<rows seen by fit>`, so a test can tell what fit saw."""

    def __init__(self, p: ScopedDropParams, kind: str):
        self.p = p

    def fit(self, tables) -> int:
        return sum(t.num_rows for t in tables)

    def apply(self, table: pa.Table, seen: int, rows: range) -> Outcome:
        labels = table.column("label").to_pylist()
        return Outcome.split(table, [f"scoped_drop:{seen}" if x == self.p.drop_label else None for x in labels])


@dataclass(frozen=True)
class ScopedModelParams(SplitScoped):
    pass


@stage("t_scoped_model", version=1, kind="model", params=ScopedModelParams)
class TScopedModel:
    """A model stage that marks every row it sees (column `seen`, the size of the batch it came in: a batch
    assembled differently would show). Drops nothing."""

    def __init__(self, p: ScopedModelParams):
        self.p = p

    def __call__(self, table: pa.Table) -> pa.Table:
        return table.append_column("seen", pa.array([table.num_rows] * table.num_rows, pa.int64()))
