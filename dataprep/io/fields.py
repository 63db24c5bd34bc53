"""Mapping input fields onto the `cls` and `bio` contracts, shared by the record readers (JSONL, CSV).

What a field may hold — anything else rejects the record as `bad_type:<field>:<type>`, never turned into its repr:

- text (and lang, and each token and tag of a bio row): a string. A number is not a text: `"text": 123` and
  `"text": NaN` are `bad_type:text:number`.
- label and id: a string, or an integer, which becomes its decimal string (`1` -> "1"; a float that is an integer,
  `1.0`, too, up to 2**53 where floats stop being exact). Booleans, lists, objects, other numbers (2.5, NaN,
  Infinity) are rejected: `bad_type:label:bool`, `bad_type:label:number`, ...
- null (or an absent lang or id) passes through: normalize judges an empty text or label, a missing id is
  `<file>:<line>`.

Type names are JSON's: string, number, bool, list, object, null.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from dataprep.registry import param
from dataprep.schema import BIO, CLS

# Floats represent every integer exactly only up to here; past it `1e20` is not "the integer someone wrote".
EXACT_FLOAT_INT = 2 ** 53


@dataclass(frozen=True)
class ClsFields:
    path: str = param("", "input file (or dataset directory), relative to the working directory")
    text_field: str = param("text", "input field holding the text")
    label_field: str = param("label", "input field holding the label")
    id_field: str | None = param(None, "input field holding a stable id; default: <file>:<line>")
    lang_field: str = param("lang", "input field holding the language code, when present")
    lang: str | None = param(None, "language code for rows that have none (normalize can also detect it)")
    batch_rows: int = param(50_000, "rows per batch handed to the next stage (part of the key: it decides the "
                            "Parquet row groups, so the bytes)")


class BadValue(Exception):
    """A field of a record holds a value of the wrong type; `reason` is the reject reason."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class ClsBatch:
    """Accumulates rows for one output batch in columnar lists (cheaper than a dict per row)."""

    schema = CLS

    def __init__(self, fields: ClsFields, source: str):
        self.fields, self.source = fields, source
        self.cols: dict[str, list] = {name: [] for name in self.schema.names}

    def __len__(self) -> int:
        return len(self.cols["id"])

    def required(self) -> tuple[str, str]:
        return self.fields.text_field, self.fields.label_field

    def missing(self, record: dict) -> str | None:
        """The first required field absent from a record, or None."""
        for name in self.required():
            if name not in record:
                return name
        return None

    def take(self, record: dict, default_id: str) -> str | None:
        """Add the record as a row and return None, or return why it cannot be a row (and add nothing)."""
        if absent := self.missing(record):
            return f"missing_field:{absent}"
        try:
            values = self._values(record, default_id)
        except BadValue as e:
            return e.reason
        for name, value in zip(self.schema.names, values):
            self.cols[name].append(value)
        return None

    def _values(self, record: dict, default_id: str) -> tuple:
        f = self.fields
        rid = key_str(record.get(f.id_field), "id") if f.id_field else None
        first, second = self._content(record)
        lang = text_str(record.get(f.lang_field), "lang") or f.lang  # "" is unknown, like an absent lang
        return default_id if rid is None else rid, first, second, lang, self.source

    def _content(self, record: dict) -> tuple:
        first, second = self.required()
        return text_str(record[first], "text"), key_str(record[second], "label")

    def flush(self) -> pa.Table:
        table = pa.table(self.cols, schema=self.schema)
        self.cols = {name: [] for name in self.schema.names}
        return table


class BioBatch(ClsBatch):
    """The same for NER rows: a token list and a tag list instead of text and label."""

    schema = BIO

    def required(self) -> tuple[str, str]:
        return self.fields.tokens_field, self.fields.tags_field

    def _content(self, record: dict) -> tuple:
        return tuple(string_list(record[name], name) for name in self.required())


def text_str(value: Any, name: str) -> str | None:
    """A text field: a string or null, nothing else."""
    if value is None or isinstance(value, str):
        return value
    raise BadValue(f"bad_type:{name}:{json_type(value)}")


def key_str(value: Any, name: str) -> str | None:
    """A label or id: a string or null as it is, an integer (or an integral float) as its decimal string."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and value.is_integer() and abs(value) < EXACT_FLOAT_INT:
        return str(int(value))  # labels read as 1.0 from some CSV/JSON tools mean "1"
    raise BadValue(f"bad_type:{name}:{json_type(value)}")


def string_list(value: Any, name: str) -> list[str]:
    """Tokens or tags: a list of strings. Not a list: `not_a_list:<name>`; an item that is not a string (null
    included): `bad_type:<name>:item:<type>`."""
    if not isinstance(value, list):
        raise BadValue(f"not_a_list:{name}")
    for item in value:
        if not isinstance(item, str):
            raise BadValue(f"bad_type:{name}:item:{json_type(item)}")
    return value


def json_type(value: Any) -> str:
    """The JSON name of a parsed value's type, for reject reasons."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def source_name(path: str) -> str:
    """Rows from a file are identified by its base name: short and readable in ids and rejects."""
    return Path(path).name
