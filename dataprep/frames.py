"""The Python API's edge: what users have in, the record contract inside, the same type back out.

A stage called as a function takes a `pyarrow.Table`, a pandas or polars `DataFrame`, a `datasets.Dataset` or
a `datasets.DatasetDict` and returns the same type; `stage.run(data)` returns the `Outcome`, whose tables
(kept, rejected, added) are always `pyarrow.Table`s. None of those libraries is imported here unless the data
is one of their objects (they are looked up in `sys.modules`), so `import dataprep` stays fast.

On the way in, the columns are mapped onto the `cls` or `bio` contract (dataprep/schema.py):

- `text_field`, `label_field` (cls), `tokens_field`, `tags_field` (bio), `id_field`, `lang_field` name the
  user's columns; the mapped column takes the contract's name and the other columns are kept as they are.
- A missing `id` is the row's position, `row:<k>` (`<split>:<k>` in a DatasetDict), so `df.iloc[k]` or
  `ds[k]` finds a rejected row; a missing or null `source` is `memory` (`source=` to name it); a missing or
  null `lang` is `lang=`, else guessed from the script of the text (stages/text.py::guess_lang) unless the
  stage detects the language itself (normalize's `detect_lang` does, on the cleaned text).
- Types follow the readers' rules (README "Nothing coerced"): text, lang, source, tokens and tags are strings
  (a pandas category or polars Categorical of strings is one); a label or id may also be an integer column,
  written as its decimal strings, or a float column of whole numbers (pandas turns [0, 1, None] into floats);
  a `datasets.ClassLabel` label (or a list of ClassLabel tags) becomes its names, -1 a null. Any other column
  type is a SchemaError naming the column, raised before any row moves: columns are typed, so a bool or list
  label column is one wrong column, not every row rejected.

A DatasetDict is one table inside: each row carries its split's name in a `split` column (as `split` writes
it), so a stage sees the splits as a pipeline does after `split`, and the rule of the DAG holds: a stage that
can be scoped must say which rows it touches (`exact_dedup(dd, all_splits=True)` dedups across the splits,
dropping a test row that repeats a train row; `rebalance(dd, only_split="train")` balances train alone), a
stage that cannot (normalize, to_bio2: row by row) processes every split, and `split` refuses. Out, the rows
go back to their splits, in the DatasetDict's order.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, fields

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dataprep.errors import ConfigError, SchemaError, brief, one_line
from dataprep.io.fields import EXACT_FLOAT_INT
from dataprep.outcome import Outcome
from dataprep.schema import LINEAGE, SCHEMAS

SOURCE = "memory"


@dataclass(frozen=True)
class Columns:
    """Keyword arguments of every stage call that say where the contract's columns are (not stage params)."""
    text_field: str = "text"
    label_field: str = "label"
    tokens_field: str = "tokens"
    tags_field: str = "tags"
    id_field: str = "id"
    lang_field: str = "lang"
    lang: str | None = None      # language code for rows that have none
    source: str = SOURCE         # the `source` of rows that have none


COLUMN_ARGS = tuple(f.name for f in fields(Columns))
COLUMN_DEFAULTS = {f.name: f.default for f in fields(Columns)}


# --- the two entry points (Stage.__call__ and Stage.run) ---

def run(stage, data, kwargs: dict) -> Outcome:
    """`stage.run(data, **kwargs)`: the Outcome of one stage over the data, its tables pyarrow Tables."""
    table, params = _prepare(stage, data, kwargs)
    from dataprep.execute import run_in_memory
    return run_in_memory(stage, table, params, _kind(stage, table, Columns()))  # the table is conformed


def call(stage, data, kwargs: dict):
    """`stage(data, **kwargs)`: the kept and added rows, as the type that came in."""
    return like(run(stage, data, kwargs).output(), data)


def _prepare(stage, data, kwargs: dict):
    if stage.kind == "source":
        raise TypeError(f"{stage.name} reads files; call it through a pipeline or `dataprep stage`")
    if stage.kind == "build":
        raise TypeError(f"{stage.name} builds a model from rows; use it as a node of a pipeline")
    known = {f.name for f in fields(stage.params)}
    own = {k: v for k, v in kwargs.items() if k in COLUMN_ARGS and k not in known}  # a stage param wins
    unknown = [k for k in kwargs if k not in known and k not in own]
    if unknown:
        raise ConfigError(f"{stage.name}: unknown parameter {brief(unknown[0])} (known: "
                          f"{', '.join(sorted(known)) or 'none'}; columns: {', '.join(COLUMN_ARGS)})")
    columns = _columns(stage, own)
    try:
        params = stage.make_params({k: v for k, v in kwargs.items() if k not in own})
    except ConfigError as e:  # "with.nfkc: expected bool, ..." is YAML's place: name the stage and parameter
        message = str(e)[len(e.key) + 2:] if e.key and not e.node else str(e)
        where = (e.key or "").removeprefix("with").lstrip(".") if not e.node else ""
        raise ConfigError(f"{stage.name}: {where + ': ' if where else ''}{message}") from None
    guess = not hasattr(params, "detect_lang")  # normalize guesses itself, on the cleaned text (or not at all)
    if _is(data, "datasets", "DatasetDict"):
        return _from_dataset_dict(stage, data, params, columns, guess), params
    return to_table(data, stage, columns, guess=guess), params


def _columns(stage, given: dict) -> Columns:
    for key, value in given.items():
        if not (isinstance(value, str) and value) and not (key == "lang" and value is None):
            raise ConfigError(f"{stage.name}: {key} must be a column name (a non-empty str), got {brief(value)}"
                              if key.endswith("_field") else
                              f"{stage.name}: {key} must be a non-empty str, got {brief(value)}")
    return Columns(**given)


# --- in: any supported object to a contract table ---

def to_table(data, stage, columns: Columns = Columns(), guess: bool = True, id_prefix: str = "row") -> pa.Table:
    """`data` as a table of the contract `stage` consumes (cls or bio), with its extra columns kept."""
    table, labels = _arrow(data)
    kind = _kind(stage, table, columns)
    return _conform(table, kind, stage.name, columns, labels, guess, id_prefix)


def _is(data, module: str, name: str) -> bool:
    """isinstance(data, module.name), without importing the module: an object of a library that was never
    imported cannot be one of its types."""
    mod = sys.modules.get(module)
    cls = getattr(mod, name, None) if mod is not None else None
    return cls is not None and isinstance(data, cls)


def _arrow(data) -> tuple[pa.Table, dict]:
    """The data as an Arrow table, and {column: label names} for columns that are a datasets.ClassLabel
    (or a list of one)."""
    if isinstance(data, pa.Table):
        return data, {}
    if _is(data, "pandas", "DataFrame"):
        return _from_pandas(data), {}
    if _is(data, "polars", "DataFrame"):
        return data.to_arrow(), {}
    if _is(data, "datasets", "Dataset"):
        # after select/filter/sort a Dataset is its full table plus an indices mapping: apply it
        table = data.with_format("arrow")[:] if getattr(data, "_indices", None) is not None else data.data.table
        return table, _class_labels(data.features)
    hint = {"LazyFrame": " (call .collect() first)", "Series": " (call .to_frame() first)",
            "IterableDataset": " (a streamed dataset: materialise it, e.g. Dataset.from_generator)",
            "RecordBatch": " (pyarrow.Table.from_batches([batch]))"}.get(type(data).__name__, "")
    raise TypeError("expected a pyarrow.Table or datasets.Dataset (or a DatasetDict, or a pandas or polars "
                    f"DataFrame), got {type(data).__name__}{hint}")


def _from_pandas(df) -> pa.Table:
    """Column by column, so that a column Arrow cannot hold as one type is named. The index is not kept."""
    names = [str(c) for c in df.columns]
    seen = set()
    for name in names:
        if name in seen:
            raise SchemaError(f"column {name!r} appears twice")
        seen.add(name)
    arrays = []
    for i, name in enumerate(names):
        try:
            arrays.append(pa.array(df.iloc[:, i], from_pandas=True))
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as e:
            raise SchemaError(f"column {name!r} does not hold one type ({one_line(str(e), 120)}); "
                              "nothing is coerced: make it one type first") from None
    return pa.table(arrays, names=names)


def _class_labels(features) -> dict[str, list[str]]:
    import datasets
    found = {}
    for name, feature in (features or {}).items():
        inner = getattr(feature, "feature", None)  # Sequence / List / LargeList of a feature
        if isinstance(feature, list) and len(feature) == 1:
            inner = feature[0]
        if isinstance(feature, datasets.ClassLabel):
            found[name] = list(feature.names)
        elif isinstance(inner, datasets.ClassLabel):
            found[name] = list(inner.names)
    return found


def _kind(stage, table: pa.Table, c: Columns) -> str:
    """cls or bio: the one the stage consumes, or for a stage that takes both, bio when there are tokens."""
    kinds = [k for k in stage.consumes if k in ("cls", "bio")]
    if not kinds:
        raise SchemaError(f"{stage.name} takes {' or '.join(stage.consumes)} rows, which the Python API does "
                          "not convert; use it in a pipeline")
    if len(kinds) == 1:
        return kinds[0]
    names = table.column_names
    mapped_bio = c.tokens_field != "tokens" or c.tags_field != "tags"
    return "bio" if mapped_bio or (c.tokens_field in names and c.text_field not in names) else "cls"


_ROLES = {"cls": (("text", "text_field"), ("label", "label_field")),
          "bio": (("tokens", "tokens_field"), ("tags", "tags_field"))}


def _conform(table: pa.Table, kind: str, stage: str, c: Columns, labels: dict, guess: bool,
             id_prefix: str) -> pa.Table:
    names = table.column_names
    # where each contract column comes from: (the user's column name, the keyword that names it)
    where = {role: (getattr(c, arg), arg) for role, arg in _ROLES[kind]}
    where.update({"id": (c.id_field, "id_field"), "lang": (c.lang_field, "lang_field")})
    for role, (name, arg) in where.items():
        if name != role and role in names and name in names:
            raise SchemaError(f"{arg}={name!r} maps a column onto {role!r}, and there is a column {role!r} "
                              "already: drop or rename one of them")
    for role, _ in _ROLES[kind]:
        name, arg = where[role]
        if name not in names:
            mapped = "" if name == role else f" ({arg}={name!r})"
            raise SchemaError(
                f"{stage} takes {kind} rows: no column {name!r}{mapped}; columns: "
                f"{', '.join(names) or 'none'} (name yours with {_ROLES[kind][0][1]}=, {_ROLES[kind][1][1]}=)")
    n = table.num_rows
    used = {name for name, _ in where.values() if name in names}
    out: dict[str, pa.ChunkedArray | pa.Array] = {}
    if kind == "cls":
        out["text"] = _strings(table[where["text"][0]], where["text"][0])
        out["label"] = _keys(table[where["label"][0]], where["label"][0], labels.get(where["label"][0]))
    else:
        out["tokens"] = _string_lists(table[where["tokens"][0]], where["tokens"][0], None)
        out["tags"] = _string_lists(table[where["tags"][0]], where["tags"][0], labels.get(where["tags"][0]))
    row_ids = _row_ids(id_prefix, n)
    out["id"] = pc.coalesce(_keys(table[c.id_field], c.id_field), row_ids) if c.id_field in names else row_ids
    lang = _strings(table[c.lang_field], c.lang_field) if c.lang_field in names else pa.nulls(n, pa.string())
    lang = pc.if_else(pc.equal(lang, ""), pa.scalar(None, pa.string()), lang)  # "" is unknown, as in readers
    if c.lang is not None:
        lang = pc.coalesce(lang, c.lang)
    if guess and lang.null_count:
        lang = pc.coalesce(lang, _guess_lang(out, kind))
    out["lang"] = lang
    source = _strings(table["source"], "source") if "source" in names else pa.nulls(n, pa.string())
    used.add("source")
    out["source"] = pc.coalesce(source, c.source) if source.null_count else source
    schema = SCHEMAS[kind]
    columns = [out[f.name] for f in schema]
    fields_ = list(schema)
    for i, name in enumerate(names):  # every other column, as it is (lineage and `split` as strings)
        if name in used:
            continue
        column = table.column(i)
        if name in LINEAGE.names or name == "split":
            column = _strings(column, name)
        columns.append(column)
        fields_.append(pa.field(name, column.type))
    return pa.table(columns, schema=pa.schema(fields_))


def _row_ids(prefix: str, n: int) -> pa.Array:
    return pc.binary_join_element_wise(prefix, pc.cast(pa.array(np.arange(n, dtype=np.int64)), pa.string()), ":")


def _guess_lang(out: dict, kind: str) -> pa.Array:
    from dataprep.stages.text import guess_lang
    text = out["text"] if kind == "cls" else pc.binary_join(pc.fill_null(out["tokens"], pa.scalar([], pa.list_(
        pa.string()))), " ")
    guessed = guess_lang(text)
    return pc.if_else(pc.is_null(text), pa.scalar(None, pa.string()), guessed)


# --- column types: the readers' rules, a column at a time ---

def _decoded(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """A dictionary column (pandas' category, polars' Categorical) as its values; a column of nulls alone
    (pandas' [NaN, NaN] is a float column, an empty one may be too) as the null type: no value is wrong."""
    if column.null_count == len(column):
        return pa.chunked_array([pa.nulls(len(column))])
    kind = column.type
    return column.cast(kind.value_type) if pa.types.is_dictionary(kind) else column


def _is_string(kind: pa.DataType) -> bool:
    return any(getattr(pa.types, t, lambda _: False)(kind) for t in ("is_string", "is_large_string",
                                                                      "is_string_view"))


def _is_list(kind: pa.DataType) -> bool:
    return any(getattr(pa.types, t, lambda _: False)(kind) for t in (
        "is_list", "is_large_list", "is_fixed_size_list", "is_list_view", "is_large_list_view"))


def _chunked(column) -> pa.ChunkedArray:
    return column if isinstance(column, pa.ChunkedArray) else pa.chunked_array([column])


def _utf8(column: pa.ChunkedArray, name: str) -> pa.ChunkedArray:
    try:
        column.validate(full=True)
    except pa.ArrowInvalid:
        raise SchemaError(f"column {name!r} holds a string that is not valid UTF-8") from None
    return column


def _strings(column, name: str) -> pa.ChunkedArray:
    """A text column: strings (or nulls), nothing else."""
    column = _decoded(_chunked(column))
    if _is_string(column.type) or pa.types.is_null(column.type):
        return _utf8(column.cast(pa.string()), name)
    raise SchemaError(f"column {name!r} is {_type_name(column.type)}; it must hold strings (nothing is coerced)")


def _keys(column, name: str, class_names: list[str] | None = None) -> pa.ChunkedArray:
    """A label or id column: strings as they are, integers as decimal strings (a ClassLabel as its names)."""
    column = _decoded(_chunked(column))
    kind = column.type
    if class_names is not None and pa.types.is_integer(kind):
        return _names(column, name, class_names)
    if _is_string(kind) or pa.types.is_null(kind):
        return _utf8(column.cast(pa.string()), name)
    if pa.types.is_integer(kind):
        return column.cast(pa.string())
    if pa.types.is_floating(kind):
        values = column.cast(pa.float64())
        whole = pc.and_(pc.and_(pc.is_finite(values), pc.equal(values, pc.floor(values))),
                        pc.less(pc.abs(values), float(EXACT_FLOAT_INT)))
        bad = pc.invert(pc.fill_null(whole, True))
        if pc.any(bad).as_py():
            row = pc.index(bad, True).as_py()
            raise SchemaError(f"column {name!r} holds {values[row].as_py()!r} (row {row}): a label or id is a "
                              "string or an integer (nothing is coerced)")
        return values.cast(pa.int64()).cast(pa.string())
    hint = " (map it to names first, e.g. {True: 'pos', False: 'neg'})" if pa.types.is_boolean(kind) else ""
    raise SchemaError(f"column {name!r} is {_type_name(kind)}; a label or id is a string or an integer, and "
                      f"nothing is coerced{hint}")


def _names(codes: pa.ChunkedArray, name: str, class_names: list[str]) -> pa.ChunkedArray:
    """ClassLabel codes as their names; -1 (datasets' "no label", e.g. GLUE's test splits) as a null."""
    codes = codes.cast(pa.int64())
    out_of_range = pc.or_(pc.less(codes, -1), pc.greater_equal(codes, len(class_names)))
    if pc.any(out_of_range).as_py():
        row = pc.index(out_of_range, True).as_py()
        raise SchemaError(f"column {name!r} holds {codes[row].as_py()} (row {row}), which its ClassLabel does "
                          f"not name ({len(class_names)} names)")
    index = pc.if_else(pc.equal(codes, -1), pa.scalar(None, pa.int64()), codes)
    return _chunked(pc.take(pa.array(class_names, pa.string()), index))


def _string_lists(column, name: str, class_names: list[str] | None) -> pa.ChunkedArray:
    """Tokens or tags: lists of strings (null items pass: to_bio2 judges them); ClassLabel codes as names."""
    column = _decoded(_chunked(column))
    kind = column.type
    if _is_list(kind):
        value = kind.value_type
        if pa.types.is_dictionary(value):
            column, value = column.cast(pa.list_(value.value_type)), value.value_type
        if class_names is not None and pa.types.is_integer(value):
            lists = column.cast(pa.list_(pa.int64())).combine_chunks()
            if isinstance(lists, pa.ChunkedArray):  # an empty column
                lists = pa.array([], pa.list_(pa.int64()))
            names = _names(_chunked(lists.values), name, class_names).combine_chunks()
            return _chunked(pa.ListArray.from_arrays(lists.offsets, names, mask=lists.is_null()))
        if _is_string(value) or pa.types.is_null(value):
            return column.cast(pa.list_(pa.string()))
    if pa.types.is_null(kind):
        return column.cast(pa.list_(pa.string()))
    raise SchemaError(f"column {name!r} is {_type_name(kind)}; it must hold lists of strings (a datasets "
                      "ClassLabel is mapped to its names; nothing else is coerced)")


def _type_name(kind: pa.DataType) -> str:
    if pa.types.is_boolean(kind):
        return "bool"
    return str(kind)


# --- DatasetDict: one table with a `split` column in, a DatasetDict of the same splits out ---

def _from_dataset_dict(stage, data, params, columns: Columns, guess: bool) -> pa.Table:
    splits = list(data)
    if stage.assigns_splits:
        raise ConfigError(f"{stage.name}: a DatasetDict is split already ({', '.join(splits)}); call it on one "
                          "Dataset (datasets.concatenate_datasets(list(dd.values())) to split again)")
    declares = getattr(params, "declares_scope", None)
    if declares is not None and not declares():
        options = [f"{f}=True" if f != "only_split" else "only_split='train'"
                   for f in ("only_split", "only_augmented", "keep_originals", "all_splits")
                   if hasattr(params, f)]
        raise ConfigError(f"{stage.name} on a DatasetDict would touch the rows of every split ({', '.join(splits)}), "
                          f"validation and test included: pass {', '.join(options[:-1])} or {options[-1]} to mean "
                          f"it, or call it on each split: DatasetDict({{k: {stage.name}(v) for k, v in dd.items()}})")
    tables = []
    for name in splits:
        table = to_table(data[name], stage, columns, guess=guess, id_prefix=str(name))
        if "split" in table.column_names:
            values = table["split"]
            other = pc.and_(pc.is_valid(values), pc.not_equal(values, str(name)))
            if pc.any(other).as_py():
                raise SchemaError(f"split {name!r} has a column 'split' with other values "
                                  f"({values.filter(other)[0].as_py()!r}): drop it or make it match")
            table = table.drop_columns(["split"])
        tables.append(table.append_column("split", pa.repeat(pa.scalar(str(name)), table.num_rows)))
    try:
        return pa.concat_tables(tables, promote_options="permissive") if tables else pa.table({})
    except (pa.ArrowInvalid, pa.ArrowTypeError) as e:
        raise SchemaError(f"the splits' columns differ in type: {one_line(str(e), 160)}") from None


# --- out: a table as the type that came in ---

def like(table: pa.Table, data):
    """`table` as the same kind of object as `data`: Table, pandas or polars DataFrame, Dataset, DatasetDict."""
    if isinstance(data, pa.Table):
        return table
    if _is(data, "pandas", "DataFrame"):
        return table.to_pandas()
    if _is(data, "polars", "DataFrame"):
        import polars
        return polars.from_arrow(table)
    if _is(data, "datasets", "DatasetDict"):
        return _to_dataset_dict(table, data)
    import datasets
    return datasets.Dataset(table)


def _to_dataset_dict(table: pa.Table, data):
    import datasets
    splits = [str(k) for k in data]
    had_split = {str(k): "split" in data[k].column_names for k in data}
    values = table["split"] if "split" in table.column_names else pa.nulls(table.num_rows, pa.string())
    stray = pc.invert(pc.fill_null(pc.is_in(values, value_set=pa.array(splits, pa.string())), False))
    if pc.any(stray).as_py():
        raise SchemaError(f"{pc.sum(stray).as_py()} output rows belong to no split of the DatasetDict "
                          f"(split {values.filter(stray)[0].as_py()!r}; splits: {', '.join(splits)})")
    out = {}
    for key in data:
        rows = table.filter(pc.equal(values, str(key)))
        out[key] = datasets.Dataset(rows if had_split[str(key)] else rows.drop_columns(["split"]))
    return datasets.DatasetDict(out)
