"""Sources that are tables already: Parquet files and `datasets` datasets (a local directory or a hub name).

Their columns are typed, so the field rules of `dataprep.io.fields` are applied a column at a time with Arrow
compute: text and lang must be strings (a dictionary of strings — a pandas category — is one); a label or id may
also be an integer column (its decimal strings) or a float column whose values are integers. Any other value is
a reject `bad_type:<field>:<type>` with the column's type (binary, struct, list, map, bool, number, timestamp,
...); a null passes through, as in every reader.

The other columns (`keep_fields`, default all) are kept as they are, typed, each renamed `meta_<name>`; a string
value in one that is not valid UTF-8 (anywhere inside a nested value too) rejects its row as
`invalid_utf8:meta_<name>`. A `split` column (`split_field`) is the row's split, checked and named as in
`dataprep.io.fields`: a string (or dictionary of strings) column; any other type rejects its values as
`bad_type:split:<type>`.
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

from dataprep.errors import InputError, brief
from dataprep.io.fields import (
    EXACT_FLOAT_INT,
    META,
    SPLIT_NAMES,
    ClsFields,
    missing_kept,
    source_name,
    split_name,
)
from dataprep.io.shards import Shard, ShardedPath
from dataprep.outcome import Outcome, rows_as_json
from dataprep.registry import param, stage
from dataprep.schema import CLS, REJECTS


@dataclass(frozen=True)
class ParquetParams(ShardedPath, ClsFields):
    path: str = param("", "input: a Parquet file, a directory of them (.parquet, recursively: Spark's or a "
                      "hub dataset's part files) or a glob; relative to the working directory")

    EXTENSIONS = (".parquet",)


@stage("read_parquet", version=3, kind="source", params=ParquetParams, produces="cls")
def read_parquet(p: ParquetParams) -> Iterator[Outcome]:
    """Read classification records from Parquet: one file, a directory of shards or a glob
    (`dataprep.io.shards`; every shard's footer and columns are checked before any row is read). Row n
    (1-based) of a shard gets id `<file>:<n>` (`<path relative to the root>:<n>` for a shard). Its other
    columns are kept as `meta_<name>` (`keep_fields`), its `split` column is the rows' split, so the output of
    `dataprep stage split ... -o out.parquet` reads back with its splits.

    Drop reasons (per row): `missing_field:<name>` for every row when the text or label column is absent;
    `bad_type:<field>:<type>` for a value of the wrong type (`bad_type:text:binary`, `bad_type:label:struct`,
    `bad_type:text:list`, `bad_type:label:bool`, `bad_type:label:number` for 2.5 or NaN, `bad_type:lang:number`);
    `invalid_utf8:<field>` for a string that is not valid UTF-8 (no writer is made to check, nor does Arrow).

    A file that is not Parquet (empty, truncated, corrupt) is an InputError naming it, raised before any row
    is read; so is a row group whose data cannot be decoded (the node is then not committed).
    """
    state = _State()
    for shard in prepare_parquet(p):
        yield from _read_file(p, shard, state)


def prepare_parquet(p: ParquetParams) -> list[Shard]:
    """The shards to read, every footer read and its columns checked against `keep_fields` first (InputError
    naming the file), before any row moves."""
    shards = p.shards()
    if len(shards) > 1:  # a lone file is checked as it is opened, as before shards
        for shard in shards:
            missing_kept(p.keep_fields, _parquet_file(shard.path).schema_arrow.names, shard.path)
    return shards


def read_parquet_shard(p: ParquetParams, shard: Shard, split_seen: bool = False) -> Iterator[Outcome]:
    """One shard's rows and rejects, as the whole read gives them (after `prepare_parquet`). `split_seen` as
    in `read_csv_shard`: as the whole read has it on reaching the shard, the batches are the whole read's;
    left False, only the `split` column may come later."""
    state = _State()
    state.split_seen = split_seen
    return _read_file(p, shard, state)


def _read_file(p: ParquetParams, shard: Shard, state: _State) -> Iterator[Outcome]:
    offset = 0
    for batch in _parquet_batches(shard.path, p.batch_rows):
        table = pa.Table.from_batches([batch])
        if not offset:
            missing_kept(p.keep_fields, table.column_names, shard.path)
        yield _map_columns(table, p, shard.name, offset, state)
        offset += batch.num_rows


def _parquet_file(path: str) -> pq.ParquetFile:
    """The file opened (its footer read); anything Arrow cannot read is an InputError naming it."""
    try:
        return pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as e:
        raise InputError(f"{path}: not a readable Parquet file: {_first_line(e)}") from None


def _parquet_batches(path: str, batch_rows: int) -> Iterator[pa.RecordBatch]:
    """The file's record batches; anything Arrow cannot read becomes an InputError naming the file."""
    source = _parquet_file(path)
    try:
        batches = source.iter_batches(batch_size=batch_rows)
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
    split: str = param("all", "which split of a DatasetDict to read; all: every split, in its order, each "
                       "row's split named by it")
    name: str | None = param(None, "a hub dataset name (needs a network); otherwise `path` is a local directory")

    def source_files(self) -> list[Shard]:
        """A saved dataset is one source (not shards: its directory holds its splits), keyed by every file
        under it, hidden ones too."""
        root = Path(self.path)
        if not root.is_dir():
            return [Shard(self.path, root.name)]
        return [Shard(str(f), str(f.relative_to(root))) for f in sorted(root.rglob("*")) if f.is_file()]

    def path_problem(self) -> str | None:
        """A hub name needs no path; a local dataset must exist (whether it is one, loading it says)."""
        if self.name:
            return None
        if not self.path:
            return "missing 'path'"
        return None if Path(self.path).exists() else f"file not found: {brief(self.path)}"


@stage("read_hf", version=3, kind="source", params=HfParams, produces="cls")
def read_hf(p: HfParams) -> Iterator[Outcome]:
    """Read a `datasets` dataset saved with `save_to_disk` (`path`) or from the hub (`name`).

    `split: all` (the default) reads every split of a DatasetDict, in its order: a row's split is its split's
    name (`dev` and the other aliases become their canonical name; a name that is no split, such as
    `unsupervised`, rejects its rows as `bad_split:<name>`), unless the row has one of its own in `split_field`
    (a `split` column); rows are numbered within their split, `<dir>/<split>:<n>`. `split: NAME` reads that
    split alone, as a plain dataset: its rows have no split but their own (or `split_as`). Other columns are
    kept as `meta_<name>` (`keep_fields`). A `ClassLabel` label is its names; -1 (no label, as in GLUE's test
    splits) a null.

    Drop reasons (per row): `missing_field:<name>` for every row when the text or label column is absent;
    `bad_type:<field>:<type>` for a value of the wrong type (`bad_type:text:binary`, `bad_type:label:struct`,
    `bad_type:text:list`, `bad_type:label:bool`, `bad_type:label:number` for 2.5 or NaN, `bad_type:lang:number`);
    `invalid_utf8:<field>` for a string that is not valid UTF-8 (no writer is made to check, nor does Arrow).

    A path that is not a saved dataset (`path: .`, a plain directory, a damaged one), a split it does not
    have, or a hub name that cannot be loaded is an InputError naming it.
    """
    source, state = p.name or source_name(p.path), _State()
    for split, data in _load_hf(p):
        table = _class_label_names(_arrow_table(data), data.features, p.label_field)
        missing_kept(p.keep_fields, table.column_names, p.name or p.path)
        ids = source if split is None else f"{source}/{split}"
        for offset in range(0, max(table.num_rows, 1), p.batch_rows):
            yield _map_columns(table.slice(offset, p.batch_rows), p, source, offset, state, split, ids)


def _load_hf(p: HfParams) -> list[tuple[str | None, object]]:
    """(split name, Dataset) to read: every split of a DatasetDict with `split: all`, else one (name None)."""
    import datasets  # heavy: imported only when this source runs

    where = p.name or p.path
    try:
        if p.name:
            data = datasets.load_dataset(p.name, **({} if p.split == "all" else {"split": p.split}))
        else:
            data = datasets.load_from_disk(p.path)
    except (OSError, ValueError, KeyError, TypeError, pa.ArrowException) as e:  # datasets raises all of these
        raise InputError(f"{where}: cannot load a dataset: {_first_line(e)}") from None
    if isinstance(data, datasets.DatasetDict):
        if p.split == "all":
            return list(data.items())
        if p.split not in data:
            raise InputError(f"{where}: no split {p.split!r} (it has {', '.join(data) or 'none'})")
        data = data[p.split]
    return [(None, data)]


def _class_label_names(table: pa.Table, features, label_field: str) -> pa.Table:
    """A `datasets.ClassLabel` label column as its names (-1, the datasets mark of an unlabelled row — a GLUE
    test split — a null, which normalize rejects as missing_label), not as integers."""
    import datasets

    feature = features.get(label_field) if features else None
    if not isinstance(feature, datasets.ClassLabel) or label_field not in table.column_names:
        return table
    codes = table[label_field]
    valid = pc.and_(pc.greater_equal(codes, 0), pc.less(codes, len(feature.names)))
    names = pc.take(pa.array(feature.names, pa.string()), pc.if_else(valid, codes, pa.scalar(None, codes.type)))
    return table.set_column(table.column_names.index(label_field), label_field, names)


def _arrow_table(data) -> pa.Table:
    """A Dataset's rows as a table; after select/filter/sort a Dataset is its full table plus an indices
    mapping, which is applied."""
    if getattr(data, "_indices", None) is not None:
        return data.with_format("arrow")[:]
    return data.data.table


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


class _State:
    """What one source's batches share: whether a row had a split (then every later batch has the column)."""
    split_seen = False


def _map_columns(table: pa.Table, p: ClsFields, source: str, offset: int, state: _State,
                 dict_split: str | None = None, ids_prefix: str | None = None) -> Outcome:
    """Map the input's columns onto the `cls` contract; rows get `<source>:<row>` ids unless they have one.
    `dict_split`: the DatasetDict split the rows come from (their split when they have none of their own)."""
    row_ids = _row_ids(ids_prefix or source, offset, table.num_rows)
    absent = next((f for f in (p.text_field, p.label_field) if f not in table.column_names), None)
    if absent:
        reasons = pa.array([f"missing_field:{absent}"] * table.num_rows, pa.string())
        return Outcome(CLS.empty_table(), _rejects(table, row_ids, reasons))
    ids, id_bad = _keys(table[p.id_field], "id") if p.id_field in table.column_names else (None, None)
    text, text_bad = _strings(table[p.text_field], "text")
    label, label_bad = _keys(table[p.label_field], "label")
    lang, lang_bad = _lang(table, p)
    split, split_bad = _split(table, p, dict_split)
    kept = pa.table([row_ids if ids is None else pc.coalesce(ids, row_ids), text, label, lang,
                     pa.repeat(pa.scalar(source), table.num_rows)], schema=CLS)
    if split is not None and (state.split_seen or split.null_count < len(split) or p.split_as or dict_split):
        kept = kept.append_column("split", split)
        state.split_seen = True
    extras, extras_bad = _extras(table, p)
    for name, column in extras:
        kept = kept.append_column(pa.field(META + name, column.type), column)
    bad = [r for r in (id_bad, text_bad, label_bad, lang_bad, split_bad, *extras_bad)  # the JSONL reader's order
           if r is not None]
    if not bad:
        return Outcome(kept)
    reasons = _array(pc.coalesce(*bad) if len(bad) > 1 else bad[0])
    keep = pc.is_null(reasons)
    drop = pc.invert(keep)
    return Outcome(kept.filter(keep), _rejects(table.filter(drop), row_ids.filter(drop), reasons.filter(drop)))


def _split(table: pa.Table, p: ClsFields, dict_split: str | None) -> tuple[Column | None, Reasons]:
    """The rows' split: their own (`split_field`), else `split_as`, else the DatasetDict split's name."""
    default = split_name(p.split_as) if p.split_as else (split_name(dict_split) if dict_split else None)
    n = table.num_rows
    if not p.split_field or p.split_field not in table.column_names:
        if dict_split and default is None:  # a DatasetDict split whose name is no split
            return pa.nulls(n, pa.string()), pa.array([f"bad_split:{dict_split}"] * n, pa.string())
        return (None, None) if default is None else (pa.repeat(pa.scalar(default), n), None)
    values, bad = _strings(table[p.split_field], "split")
    values = pc.if_else(pc.equal(values, ""), pa.scalar(None, pa.string()), values)
    index = pc.index_in(pc.ascii_lower(values), value_set=pa.array(list(SPLIT_NAMES)))
    unknown = pc.and_(pc.is_valid(values), pc.is_null(index))
    if pc.any(unknown).as_py():
        named = pc.binary_join_element_wise("bad_split", values, ":")
        reasons = pc.if_else(unknown, named, pa.scalar(None, pa.string()))
        bad = reasons if bad is None else pc.coalesce(bad, reasons)
    split = pc.take(pa.array(list(SPLIT_NAMES.values())), index)
    if default is not None:
        split = pc.coalesce(split, default)
    elif dict_split:  # no own split and a DatasetDict name that is no split
        reasons = pc.if_else(pc.is_null(split), f"bad_split:{dict_split}", pa.scalar(None, pa.string()))
        bad = reasons if bad is None else pc.coalesce(bad, reasons)
    return split, bad


def _extras(table: pa.Table, p: ClsFields) -> tuple[list[tuple[str, Column]], list[Reasons]]:
    """The kept columns as they are, and for each one holding invalid UTF-8 the reasons of its rows."""
    if p.keep_fields == "none":
        return [], []
    mapped = set(p.mapped_fields())
    names = [n for n in table.column_names if n not in mapped] if p.keep_fields == "all" else p.keep_fields
    kept, bad = [], []
    for name in names:
        column = table[name]
        kept.append((name, column))
        if not _valid_utf8(column):
            bad.append(_invalid_rows(column, META + name))
    return kept, bad


def _invalid_rows(column: Column, name: str) -> pa.Array:
    """`invalid_utf8:<name>` for each row whose value holds a string that is not valid UTF-8."""
    column = _array(column)
    return pa.array([None if _valid_utf8(column.slice(i, 1)) else f"invalid_utf8:{name}"
                     for i in range(len(column))], pa.string())


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
