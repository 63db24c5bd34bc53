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

The input's other fields (`keep_fields`, default `all`) are kept beside the contract, each as a column
`meta_<name>` (the prefix keeps them apart from the contract, the lineage and the columns stages add, whatever
the input calls them; `none` drops them, a list keeps those). Their values are never judged by the contract:
each reader documents how it types them (a CSV field is a string, a Parquet column keeps its type, a JSON
value's type is fixed by the first line that holds one: `Extras` below).

A row's split (`split_field`, default `split`, and `split_as`) lands in the `split` column: `train`,
`validation` or `test`, written in any case or as a common alias (`training`; `dev`, `valid`, `val`,
`development`; `testing`), stored under its canonical name. An empty or null split is none (the `split` stage
fills it, or `split_as` does: "every row of this file without a split of its own is in this split", for a
dataset shipped as one file per split); any other value rejects the record as `bad_split:<value>`, a value
that is not a string as `bad_type:split:<type>`. The column appears once a row has a split (from the first
row with `split_as`), so a file without one reads as before.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa

from dataprep.errors import InputError
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
    split_field: str | None = param("split", "input field holding the row's split (train, validation, test, or "
                                    "an alias: dev, valid, val, ...); null: the input has none")
    split_as: str | None = param(None, "the split of every row that has none of its own (a dataset shipped as "
                                 "one file per split: train, validation or test)")
    keep_fields: Literal["all", "none"] | list[str] = param(
        "all", "the input's other fields: all (each kept as a column meta_<name>), none, or the names to keep")
    batch_rows: int = param(50_000, "rows per batch handed to the next stage (part of the key: it decides the "
                            "Parquet row groups, so the bytes)")

    def __post_init__(self):
        check_split_as(self.split_as)
        check_keep_fields(self.keep_fields, self.mapped_fields())

    def mapped_fields(self) -> list[str]:
        """The input fields the reader maps onto the contract (and the split): never kept as extras."""
        names = [self.text_field, self.label_field, self.lang_field]
        return names + [f for f in (self.id_field, self.split_field) if f]


class BadValue(Exception):
    """A field of a record holds a value of the wrong type; `reason` is the reject reason."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class ClsBatch:
    """Accumulates rows for one output batch in columnar lists (cheaper than a dict per row). `extras`, the
    file's `Extras`, is shared by every batch of one file: it knows which other fields there are and their types."""

    schema = CLS

    def __init__(self, fields: ClsFields, source: str, extras: Extras | None = None):
        self.fields, self.source = fields, source
        self.extras = extras if extras is not None else Extras.of(fields)
        self.split_as = split_name(fields.split_as) if fields.split_as else None
        self._reset()

    def _reset(self) -> None:
        self.cols: dict[str, list] = {name: [] for name in self.schema.names}
        self.split: list[str | None] = []
        self.extra_cols: dict[str, list] = {}

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
            split = split_value(record.get(self.fields.split_field) if self.fields.split_field else None,
                                self.split_as)
            extras = self.extras.values(record)
        except BadValue as e:
            return e.reason
        for name, value in zip(self.schema.names, values):
            self.cols[name].append(value)
        self.split.append(split)
        if split is not None:
            self.extras.split_seen = True
        n = len(self.split) - 1
        for name, value in extras:
            column = self.extra_cols.get(name)
            if column is None:
                column = self.extra_cols[name] = [None] * n
            column.append(value)
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
        n = len(self)
        table = pa.table(self.cols, schema=self.schema)
        if self.extras.split_seen or self.split_as:
            table = table.append_column("split", pa.array(self.split, pa.string()))
        for name, kind in self.extras.kinds.items():
            column = self.extra_cols.get(name, [])
            column += [None] * (n - len(column))
            table = table.append_column(pa.field(META + name, ARROW_TYPES[kind]), pa.array(column, ARROW_TYPES[kind]))
        self._reset()
        return table


class BioBatch(ClsBatch):
    """The same for NER rows: a token list and a tag list instead of text and label."""

    schema = BIO

    def required(self) -> tuple[str, str]:
        return self.fields.tokens_field, self.fields.tags_field

    def _content(self, record: dict) -> tuple:
        return tuple(string_list(record[name], name) for name in self.required())


# --- the other fields ---

META = "meta_"  # the prefix of a kept field's column: `keywords` -> `meta_keywords`

# Kinds of a kept JSON value, each one Arrow type. `json`: an object or list, kept as its JSON text.
ARROW_TYPES = {"string": pa.string(), "bool": pa.bool_(), "int": pa.int64(), "float": pa.float64(),
               "json": pa.string(), None: pa.null()}
INT64 = (-(2 ** 63), 2 ** 63 - 1)
MAX_KEPT_FIELDS = 1000  # JSON Lines under keep_fields all: a record bringing one more is `too_many_fields:<name>`


class Extras:
    """The fields of one file a reader keeps beside the contract: their names in the order first seen and each
    one's kind, fixed by the first non-null value (in line order) and never changed after it.

    Kinds of a JSON value: a string is `string`, true/false `bool`, an integer that fits 64 bits `int`
    (int64), any other number `float` (float64: JSON's number, as JSON readers read it), an object or list
    `json` (the value's JSON text, compact, in a string column). A later value must fit its field's kind, or
    the record is rejected `bad_type:meta_<name>:<type>`: `int` takes an integral float (`2.0`, below 2**53,
    as label and id do), `float` takes any number, `json` takes any value (as its JSON text: a string in
    quotes), the others only their own type. Null (or an absent field) fits every kind. A field seen only as
    null so far is a null column. A CSV's fields are all strings (`fixed`).
    """

    def __init__(self, keep, mapped, fixed: dict[str, str] | None = None):
        self.none = keep == "none"
        self.all = keep == "all"
        self.mapped = frozenset(mapped)
        self.kinds: dict[str, str | None] = {} if keep in ("all", "none") else dict.fromkeys(keep)
        self.first: dict[str, int] = {}  # the line of each field's first non-null value
        self.split_seen = False          # a row had a split: every later batch has a `split` column
        if fixed:
            self.kinds.update(fixed)

    @classmethod
    def of(cls, fields) -> Extras:
        return cls(fields.keep_fields, fields.mapped_fields())

    def wanted(self, key: str) -> bool:
        if self.none:
            return False
        return key not in self.mapped if self.all else key in self.kinds

    def observe(self, record: dict, line: int) -> str | None:
        """Learn the fields and kinds a parsed record shows (a no-op for those already fixed). Returns a field
        that would be one kept field too many (MAX_KEPT_FIELDS), which the record must not bring: a file whose
        objects hold ever new keys (ids as keys) is no table, and a column each would exhaust memory."""
        if self.none:
            return None
        kinds, refused = self.kinds, None
        for key, value in record.items():
            if key in kinds:
                if kinds[key] is None and value is not None:
                    kinds[key], self.first[key] = json_kind(value), line
            elif self.all and key not in self.mapped:
                if len(kinds) >= MAX_KEPT_FIELDS:
                    refused = refused or key
                    continue
                kinds[key] = None if value is None else json_kind(value)
                if value is not None:
                    self.first[key] = line
        return refused

    def values(self, record: dict) -> list[tuple[str, Any]]:
        """(name, value) of each kept field of the record, converted to its kind; BadValue when one does not fit."""
        return [(name, convert(kind, record.get(name), name)) for name, kind in self.kinds.items()]


def json_kind(value: Any) -> str:
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int" if INT64[0] <= value <= INT64[1] else "float"
    if isinstance(value, float):
        return "float"
    return "json"


def convert(kind: str | None, value: Any, name: str) -> Any:
    """A kept field's value as its kind's Python value; BadValue `bad_type:meta_<name>:<type>` if it does not fit."""
    if value is None:
        return None
    if kind == "json":
        return json_text(value, name)
    if kind == "string" and isinstance(value, str) or kind == "bool" and isinstance(value, bool):
        return value
    if not isinstance(value, bool):
        if kind == "int" and isinstance(value, int) and INT64[0] <= value <= INT64[1]:
            return value
        if kind == "int" and isinstance(value, float) and value.is_integer() and abs(value) < EXACT_FLOAT_INT:
            return int(value)
        if kind == "float" and isinstance(value, float):
            return value
        if kind == "float" and isinstance(value, int):
            try:
                return float(value)
            except OverflowError:  # an integer past float64's range: infinity, as Arrow and orjson read it
                return float("inf") if value > 0 else float("-inf")
    raise BadValue(f"bad_type:{META}{name}:{json_type(value)}")


def json_text(value: Any, name: str) -> str:
    """A value's compact JSON text (keys in their order, text unescaped). NaN and Infinity are not JSON:
    `bad_type:meta_<name>:number`; nesting Python cannot write back is `too_deep`."""
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except ValueError:
        raise BadValue(f"bad_type:{META}{name}:number") from None
    except RecursionError:
        raise BadValue("too_deep") from None


def check_keep_fields(keep, mapped: list[str]) -> None:
    if keep in ("all", "none"):
        return
    seen: set[str] = set()
    for name in keep:
        if name in mapped:
            raise ValueError(f"keep_fields names {name!r}, which the reader already maps onto the contract")
        if name in seen:
            raise ValueError(f"keep_fields names {name!r} twice")
        seen.add(name)


def missing_kept(keep, present: list[str], where: str) -> None:
    """For inputs whose columns are known before any row (a CSV header, a Parquet schema): a kept field that is
    not there is an error, not a column of nulls."""
    if keep in ("all", "none"):
        return
    if absent := [name for name in keep if name not in present]:
        raise InputError(f"{where}: keep_fields names {', '.join(map(repr, absent))}, which it does not have "
                         f"(it has {', '.join(map(repr, present)) or 'none'})")


# --- splits ---

SPLIT_NAMES = {"train": "train", "training": "train",
               "validation": "validation", "valid": "validation", "val": "validation", "dev": "validation",
               "development": "validation",
               "test": "test", "testing": "test"}
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def split_name(value: str) -> str | None:
    """The canonical split a name means (ASCII letters in any case), or None."""
    return SPLIT_NAMES.get(value.translate(_ASCII_LOWER))


def split_value(value: Any, default: str | None) -> str | None:
    """A row's split from its split field: `default` (split_as) when empty or null."""
    if value is None or value == "":
        return default
    if not isinstance(value, str):
        raise BadValue(f"bad_type:split:{json_type(value)}")
    name = split_name(value)
    if name is None:
        raise BadValue(f"bad_split:{value}")
    return name


def check_split_as(value: str | None) -> None:
    if value is not None and split_name(value) is None:
        aliases = ", ".join(name for name in SPLIT_NAMES if name not in SPLIT_NAMES.values())
        raise ValueError(f"split_as must be train, validation or test (or {aliases}), got {value!r}")


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
