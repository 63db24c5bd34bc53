"""What a stage returns for one batch: rows kept, rows rejected (with reasons) and rows it generated.

The runner checks conservation on every batch — each input row is either kept or rejected — and keeps the
counts for the node's ledger. Generated rows (augmentation, oversampling) are `added` and carry lineage.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from dataprep.schema import REJECTS


@dataclass
class Outcome:
    kept: pa.Table
    rejected: pa.Table = field(default_factory=REJECTS.empty_table)
    added: pa.Table | None = None
    notes: dict[str, int] = field(default_factory=dict)  # stage-specific counts (repaired rows, ...) for stats

    @classmethod
    def split(cls, table: pa.Table, reasons: Sequence[str | None] | pa.Array,
              original: pa.Table | None = None) -> Outcome:
        """Keep the rows whose reason is None; reject the others with their reason. A map stage passes the
        `original` rows so that a rejected row is recorded as it came in, not as the stage rewrote it."""
        reasons = reasons if isinstance(reasons, (pa.Array, pa.ChunkedArray)) else pa.array(reasons, pa.string())
        keep = pc.is_null(reasons)
        if pc.all(keep).as_py() in (True, None):  # None: an empty batch
            return cls(table)
        dropped = pc.invert(keep)
        source = table if original is None else original
        return cls(table.filter(keep), rejects(source.filter(dropped), reasons.filter(dropped)))

    @classmethod
    def from_mask(cls, table: pa.Table, keep, reasons) -> Outcome:
        """For filter stages: `keep` is a boolean mask; `reasons` one string for all, or one per row."""
        keep = keep if isinstance(keep, (pa.Array, pa.ChunkedArray)) else pa.array(keep, pa.bool_())
        if isinstance(reasons, str):
            reasons = pa.array([reasons] * len(table), pa.string())
        elif not isinstance(reasons, (pa.Array, pa.ChunkedArray)):
            reasons = pa.array(reasons, pa.string())
        return cls.split(table, pc.if_else(keep, pa.scalar(None, pa.string()), reasons))

    @property
    def output_rows(self) -> int:
        return self.kept.num_rows + (self.added.num_rows if self.added is not None else 0)

    def output(self, like=None):
        """Kept and added rows as one table (or a datasets.Dataset when `like` is one)."""
        table = self.kept if self.added is None else pa.concat_tables(
            [self.kept, self.added], promote_options="permissive")
        if like is not None and not isinstance(like, pa.Table):
            import datasets
            return datasets.Dataset(table)
        return table


def rejects(rows: pa.Table, reasons: Sequence[str] | pa.Array) -> pa.Table:
    """Reject rows of a table: keep their id, the reason, and the whole row as JSON (nothing is lost)."""
    ids = rows.column("id") if "id" in rows.column_names else pa.nulls(rows.num_rows, pa.string())
    return pa.table([ids.cast(pa.string()), pa.array(reasons, pa.string()) if not isinstance(
        reasons, (pa.Array, pa.ChunkedArray)) else reasons.cast(pa.string()), rows_as_json(rows)],
        schema=REJECTS)


def rows_as_json(rows: pa.Table) -> pa.Array:
    """Each row as one compact JSON object, byte for byte what orjson writes for `rows.to_pylist()`. A table
    of string columns (every record contract) is escaped and joined by Arrow compute, ~2x faster; rows with a
    control character, and tables with other column types, go through orjson."""
    if not all(pa.types.is_string(t) or pa.types.is_large_string(t) for t in rows.schema.types):
        return _orjson_rows(rows)
    pieces, needs_orjson = [], pa.repeat(False, rows.num_rows)
    for i, name in enumerate(rows.column_names):
        col = rows.column(i).cast(pa.string())  # large_string too: the kernels need one string type
        needs_orjson = pc.or_(needs_orjson, pc.fill_null(pc.match_substring_regex(col, r"[\x00-\x1f]"), False))
        escaped = pc.replace_substring(pc.replace_substring(col, "\\", "\\\\"), '"', '\\"')
        pieces += [("{" if i == 0 else ",") + orjson.dumps(name).decode() + ":",
                   pc.fill_null(pc.binary_join_element_wise('"', escaped, '"', ""), "null")]
    joined = _array(pc.binary_join_element_wise(*pieces, "}", "") if pieces else pa.repeat("{}", rows.num_rows))
    if not pc.any(needs_orjson).as_py():
        return joined
    return pc.replace_with_mask(joined, _array(needs_orjson), _orjson_rows(rows.filter(needs_orjson)))


def _array(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    return values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values


def _orjson_rows(rows: pa.Table) -> pa.Array:
    return pa.array([_dumps(r) for r in rows.to_pylist()], pa.string())  # UTF-8 bytes


def _dumps(row: dict) -> bytes:
    try:
        return orjson.dumps(row, default=_json_default)
    except orjson.JSONEncodeError:  # nested past orjson's limit (a hostile struct column): still keep the row
        return repr(row).encode("utf-8", errors="backslashreplace")


def _json_default(value) -> str:
    """Values JSON has no type for: bytes as text with invalid bytes escaped (`\\xff`, as rejects show raw
    lines), not as Python's `b'...'` repr; anything else (Decimal, ...) as str."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("utf-8", errors="backslashreplace")
    return str(value)


def reject_records(items: list[tuple[str, str, str]]) -> pa.Table:
    """Rejects for records that never became rows (a reader's bad lines): (id, reason, raw record)."""
    ids, reasons, records = zip(*items) if items else ((), (), ())
    return pa.table([pa.array(ids, pa.string()), pa.array(reasons, pa.string()),
                     pa.array(records, pa.string())], schema=REJECTS)
