"""Sources that are tables already: Parquet files and `datasets` datasets (a local directory or a hub name).

Their columns are typed, so the field rules of `dataprep.io.fields` are applied a column at a time with Arrow
compute: text and lang must be strings (a dictionary of strings — a pandas category — is one); a label or id may
also be an integer column (its decimal strings) or a float column whose values are integers. Any other value is
a reject `bad_type:<field>:<type>` with the column's type (binary, struct, list, map, bool, number, timestamp,
...); a null passes through, as in every reader.
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from dataprep.errors import InputError
from dataprep.io.fields import EXACT_FLOAT_INT, ClsFields, source_name
from dataprep.outcome import Outcome, rows_as_json
from dataprep.registry import param, stage
from dataprep.schema import CLS, REJECTS


@stage("read_parquet", version=2, kind="source", params=ClsFields, produces="cls")
def read_parquet(p: ClsFields) -> Iterator[Outcome]:
    """Read classification records from a Parquet file. Row n (1-based) gets id `<file>:<n>`.

    Drop reasons (per row): `missing_field:<name>` for every row when the text or label column is absent;
    `bad_type:<field>:<type>` for a value of the wrong type (`bad_type:text:binary`, `bad_type:label:struct`,
    `bad_type:text:list`, `bad_type:label:bool`, `bad_type:label:number` for 2.5 or NaN, `bad_type:lang:number`);
    `invalid_utf8:<field>` for a string that is not valid UTF-8 (no writer is made to check, nor does Arrow).

    A file that is not Parquet (empty, truncated, corrupt) is an InputError naming it, raised before any row
    is read; so is a row group whose data cannot be decoded (the node is then not committed).
    """
    source, offset = source_name(p.path), 0
    for batch in _parquet_batches(p.path, p.batch_rows):
        yield _map_columns(pa.Table.from_batches([batch]), p, source, offset)
        offset += batch.num_rows


def _parquet_batches(path: str, batch_rows: int) -> Iterator[pa.RecordBatch]:
    """The file's record batches; anything Arrow cannot read becomes an InputError naming the file."""
    try:
        batches = pq.ParquetFile(path).iter_batches(batch_size=batch_rows)
    except (pa.ArrowException, OSError) as e:
        raise InputError(f"{path}: not a readable Parquet file: {_first_line(e)}") from None
    while True:
        try:
            batch = next(batches, None)
        except (pa.ArrowException, OSError) as e:
            raise InputError(f"{path}: corrupt Parquet data: {_first_line(e)}") from None
        if batch is None:
            return
        yield batch


@dataclass(frozen=True)
class HfParams(ClsFields):
    split: str = param("train", "which split to read")
    name: str | None = param(None, "a hub dataset name (needs a network); otherwise `path` is a local directory")


@stage("read_hf", version=2, kind="source", params=HfParams, produces="cls")
def read_hf(p: HfParams) -> Iterator[Outcome]:
    """Read a `datasets` dataset saved with `save_to_disk` (`path`) or from the hub (`name`).

    Drop reasons (per row): `missing_field:<name>` for every row when the text or label column is absent;
    `bad_type:<field>:<type>` for a value of the wrong type (`bad_type:text:binary`, `bad_type:label:struct`,
    `bad_type:text:list`, `bad_type:label:bool`, `bad_type:label:number` for 2.5 or NaN, `bad_type:lang:number`);
    `invalid_utf8:<field>` for a string that is not valid UTF-8 (no writer is made to check, nor does Arrow).

    A path that is not a saved dataset (`path: .`, a plain directory, a damaged one), a split it does not
    have, or a hub name that cannot be loaded is an InputError naming it.
    """
    source, table = p.name or source_name(p.path), _load_hf(p).data.table
    for offset in range(0, max(table.num_rows, 1), p.batch_rows):
        yield _map_columns(table.slice(offset, p.batch_rows), p, source, offset)


def _load_hf(p: HfParams):
    import datasets  # heavy: imported only when this source runs

    where = p.name or p.path
    try:
        data = datasets.load_dataset(p.name, split=p.split) if p.name else datasets.load_from_disk(p.path)
    except (OSError, ValueError, KeyError, TypeError, pa.ArrowException) as e:  # datasets raises all of these
        raise InputError(f"{where}: cannot load a dataset: {_first_line(e)}") from None
    if isinstance(data, datasets.DatasetDict):
        if p.split not in data:
            raise InputError(f"{where}: no split {p.split!r} (it has {', '.join(data) or 'none'})")
        data = data[p.split]
    return data


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


def _map_columns(table: pa.Table, p: ClsFields, source: str, offset: int) -> Outcome:
    """Map the input's columns onto the `cls` contract; rows get `<source>:<row>` ids unless they have one."""
    row_ids = _row_ids(source, offset, table.num_rows)
    absent = next((f for f in (p.text_field, p.label_field) if f not in table.column_names), None)
    if absent:
        reasons = pa.array([f"missing_field:{absent}"] * table.num_rows, pa.string())
        return Outcome(CLS.empty_table(), _rejects(table, row_ids, reasons))
    ids, id_bad = _keys(table[p.id_field], "id") if p.id_field in table.column_names else (None, None)
    text, text_bad = _strings(table[p.text_field], "text")
    label, label_bad = _keys(table[p.label_field], "label")
    lang, lang_bad = _lang(table, p)
    kept = pa.table([row_ids if ids is None else pc.coalesce(ids, row_ids), text, label, lang,
                     pa.repeat(pa.scalar(source), table.num_rows)], schema=CLS)
    bad = [r for r in (id_bad, text_bad, label_bad, lang_bad) if r is not None]  # the slow JSONL path's order
    if not bad:
        return Outcome(kept)
    reasons = _array(pc.coalesce(*bad) if len(bad) > 1 else bad[0])
    keep = pc.is_null(reasons)
    drop = pc.invert(keep)
    return Outcome(kept.filter(keep), _rejects(table.filter(drop), row_ids.filter(drop), reasons.filter(drop)))


def _array(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    return values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values


def _row_ids(source: str, offset: int, n: int) -> pa.Array:
    numbers = pa.array(np.arange(offset + 1, offset + n + 1), pa.int64())
    return pc.binary_join_element_wise(source, pc.cast(numbers, pa.string()), ":")


def _lang(table: pa.Table, p: ClsFields) -> tuple[pa.ChunkedArray | pa.Array, pa.ChunkedArray | None]:
    """The lang column ("" is unknown, as in the other readers), `p.lang` where it has none."""
    if p.lang_field not in table.column_names:
        return pa.array([p.lang] * table.num_rows, pa.string()), None
    lang, bad = _strings(table[p.lang_field], "lang")
    lang = pc.if_else(pc.equal(lang, ""), pa.scalar(None, pa.string()), lang)
    return (lang if p.lang is None else pc.coalesce(lang, p.lang)), bad


def _rejects(rows: pa.Table, ids, reasons) -> pa.Table:
    """The rejected input rows, each written whole as JSON (bytes as escaped text) so nothing is lost."""
    return pa.table([ids, reasons, rows_as_json(_printable(rows))], schema=REJECTS)


def _printable(rows: pa.Table) -> pa.Table:
    """Columns holding invalid UTF-8 made safe to write as JSON: a string column as bytes (escaped like a raw
    line), any other column, whose bad strings sit inside nested values, as a marker."""
    for i, column in enumerate(rows.columns):
        if _valid_utf8(column):
            continue
        kind = column.type
        fixed = column.cast(pa.large_binary()) if _is_string(kind) else pa.repeat("<invalid UTF-8>", len(column))
        rows = rows.set_column(i, rows.schema.field(i).name, fixed)
    return rows


def _valid_utf8(column: Column) -> bool:
    try:
        column.validate(full=True)  # C++, fast: the per-value check below runs only when this fails
    except pa.ArrowInvalid:
        return False
    return True


def _invalid_utf8(column: Column, name: str) -> Reasons:
    """Parquet does not promise valid UTF-8 in a string column, and Arrow does not check it when reading: a
    value that is not valid text is a reject, `invalid_utf8:<field>`, as a bad line is in the text readers."""
    if _valid_utf8(column):
        return None
    values = column.cast(pa.large_binary()).to_pylist()
    return pa.array([None if v is None or _decodes(v) else f"invalid_utf8:{name}" for v in values], pa.string())


def _decodes(value: bytes) -> bool:
    try:
        value.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


Column = pa.ChunkedArray
Reasons = pa.ChunkedArray | None


def _strings(column: Column, name: str) -> tuple[Column, Reasons]:
    """A text column as strings, and a reason for each non-null value that is not one (None: no such value)."""
    column = _decoded(column)
    if _is_string(column.type):
        return column.cast(pa.string()), _invalid_utf8(column, name)
    if pa.types.is_null(column.type):
        return column.cast(pa.string()), None
    return _wrong_type(column, name)


def _keys(column: Column, name: str) -> tuple[Column, Reasons]:
    """A label or id column as strings: strings as they are, integers in decimal, integral floats as integers."""
    column = _decoded(column)
    kind = column.type
    if _is_string(kind):
        return column.cast(pa.string()), _invalid_utf8(column, name)
    if pa.types.is_null(kind) or pa.types.is_integer(kind):
        return column.cast(pa.string()), None
    if not pa.types.is_floating(kind):
        return _wrong_type(column, name)
    values = column.cast(pa.float64())
    whole = pc.and_(pc.and_(pc.is_finite(values), pc.equal(values, pc.floor(values))),
                    pc.less(pc.abs(values), float(EXACT_FLOAT_INT)))  # null where the value is null
    as_int = pc.if_else(whole, values, pa.scalar(None, pa.float64())).cast(pa.int64())
    reasons = pc.if_else(pc.fill_null(whole, True), pa.scalar(None, pa.string()), f"bad_type:{name}:number")
    return as_int.cast(pa.string()), reasons


def _wrong_type(column: Column, name: str) -> tuple[Column, Reasons]:
    """No value of this column can be kept: nulls pass as nulls, every other value is a reject."""
    reasons = pc.if_else(pc.is_valid(column), f"bad_type:{name}:{_type_name(column.type)}",
                         pa.scalar(None, pa.string()))
    return pa.nulls(len(column), pa.string()), reasons


def _decoded(column: Column) -> Column:
    """A dictionary column (pandas' category) as its plain values."""
    kind = column.type
    return column.cast(kind.value_type) if pa.types.is_dictionary(kind) else column


def _is_string(kind: pa.DataType) -> bool:
    return _is_any(kind, "is_string", "is_large_string", "is_string_view")


def _is_any(kind: pa.DataType, *tests: str) -> bool:
    """`pa.types` tests by name; the view types are newer than the oldest pyarrow this supports."""
    return any(getattr(pa.types, test, lambda _: False)(kind) for test in tests)


def _type_name(kind: pa.DataType) -> str:
    """A short name for a column type in reject reasons: JSON's where one fits, else Arrow's without details."""
    if _is_any(kind, "is_binary", "is_large_binary", "is_fixed_size_binary", "is_binary_view"):
        return "binary"
    if _is_any(kind, "is_list", "is_large_list", "is_fixed_size_list", "is_list_view", "is_large_list_view"):
        return "list"
    if pa.types.is_boolean(kind):
        return "bool"
    if pa.types.is_integer(kind) or pa.types.is_floating(kind):
        return "number"
    return re.split(r"[\[(<]", str(kind))[0]  # struct<a: int64> -> struct, timestamp[ns] -> timestamp


def hashable_files(path: str) -> list[Path]:
    """The files whose bytes make up a source: the file itself, or every file under a directory."""
    root = Path(path)
    return sorted(f for f in root.rglob("*") if f.is_file()) if root.is_dir() else [root]
