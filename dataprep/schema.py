"""The record contract: one Arrow schema per task kind, checked on entry and exit of every stage.

Stages may add columns (`ppl`, `hash`, `split`, ...); the required ones must be present with the right types.
Generated rows carry lineage: `parent_id` (the id they came from) and `aug` (how, e.g. `bt:en`).
"""
from __future__ import annotations

import pyarrow as pa

from dataprep.errors import SchemaError

CLS = pa.schema([
    ("id", pa.string()), ("text", pa.string()), ("label", pa.string()),
    ("lang", pa.string()), ("source", pa.string()),
])
BIO = pa.schema([
    ("id", pa.string()), ("tokens", pa.list_(pa.string())), ("tags", pa.list_(pa.string())),
    ("lang", pa.string()), ("source", pa.string()),
])
PARALLEL = pa.schema([
    ("id", pa.string()), ("src", pa.string()), ("tgt", pa.string()),
    ("src_lang", pa.string()), ("tgt_lang", pa.string()),
])
LINEAGE = pa.schema([("parent_id", pa.string()), ("aug", pa.string())])

SCHEMAS: dict[str, pa.Schema] = {"cls": CLS, "bio": BIO, "parallel": PARALLEL}
KINDS = tuple(SCHEMAS)

# Rejected rows from every node share one shape, so they can be concatenated and queried together.
REJECTS = pa.schema([
    ("id", pa.string()),      # the row's id, or <file>:<line> for a record that never became a row
    ("reason", pa.string()),  # code[:detail], e.g. malformed_json, duplicate_of:reviews.jsonl:17
    ("record", pa.string()),  # the row as JSON, or the raw line, so nothing is lost
])


def _compatible(actual: pa.DataType, expected: pa.DataType) -> bool:
    if actual.equals(expected) or pa.types.is_null(actual):
        return True
    if pa.types.is_large_string(actual) and pa.types.is_string(expected):
        return True
    list_types = (pa.types.is_list(actual) or pa.types.is_large_list(actual))
    return list_types and pa.types.is_list(expected) and _compatible(actual.value_type, expected.value_type)


def validate(table: pa.Table, kind: str, where: str = "table") -> None:
    """Raise SchemaError unless `table` has every column of `kind` with a compatible type."""
    if kind not in SCHEMAS:
        raise SchemaError(f"{where}: unknown schema kind {kind!r} (known: {', '.join(KINDS)})")
    for field in list(SCHEMAS[kind]) + ([f for f in LINEAGE if f.name in table.column_names]):
        if field.name not in table.column_names:
            raise SchemaError(f"{where}: missing column {field.name!r} required by kind {kind!r}")
        actual = table.schema.field(field.name).type
        if not _compatible(actual, field.type):
            raise SchemaError(f"{where}: column {field.name!r} is {actual}, kind {kind!r} needs {field.type}")


def conform(table: pa.Table, kind: str) -> pa.Table:
    """Cast the contract columns to their canonical types (null -> string etc.), keep extra columns."""
    validate(table, kind)
    schema = SCHEMAS[kind]
    for field in list(schema) + [f for f in LINEAGE if f.name in table.column_names]:
        i = table.column_names.index(field.name)
        if not table.schema.field(i).type.equals(field.type):
            table = table.set_column(i, field, table.column(i).cast(field.type))
    return table


def empty(kind: str) -> pa.Table:
    return SCHEMAS[kind].empty_table()


def empty_rejects() -> pa.Table:
    return REJECTS.empty_table()
