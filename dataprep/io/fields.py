"""Mapping input fields onto the `cls` contract, shared by every classification reader."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from dataprep.registry import param
from dataprep.schema import BIO, CLS


@dataclass(frozen=True)
class ClsFields:
    path: str = param("", "input file (or dataset directory), relative to the working directory")
    text_field: str = param("text", "input field holding the text")
    label_field: str = param("label", "input field holding the label")
    id_field: str | None = param(None, "input field holding a stable id; default: <file>:<line>")
    lang_field: str = param("lang", "input field holding the language code, when present")
    lang: str | None = param(None, "language code for rows that have none (normalize can also detect it)")
    batch_rows: int = param(50_000, "rows per batch handed to the next stage", knob=True)


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

    def add(self, record: dict, default_id: str) -> None:
        f = self.fields
        rid = record.get(f.id_field) if f.id_field else None
        self.cols["id"].append(default_id if rid is None else str(rid))
        first, second = self.required()
        self._add_content(record[first], record[second])
        self.cols["lang"].append(_as_str(record.get(f.lang_field)) or f.lang)
        self.cols["source"].append(self.source)

    def _add_content(self, text, label) -> None:
        self.cols["text"].append(_as_str(text))
        self.cols["label"].append(_as_str(label))

    def flush(self) -> pa.Table:
        table = pa.table(self.cols, schema=self.schema)
        self.cols = {name: [] for name in self.schema.names}
        return table


class BioBatch(ClsBatch):
    """The same for NER rows: a token list and a tag list instead of text and label."""

    schema = BIO

    def required(self) -> tuple[str, str]:
        return self.fields.tokens_field, self.fields.tags_field

    def bad_lists(self, record: dict) -> str | None:
        """The first of tokens/tags that is not a list, or None."""
        for name in self.required():
            if not isinstance(record[name], list):
                return name
        return None

    def _add_content(self, tokens, tags) -> None:
        self.cols["tokens"].append([_as_str(t) for t in tokens])
        self.cols["tags"].append([_as_str(t) for t in tags])


def _as_str(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # labels read as 1.0 from some CSV/JSON tools mean "1"
    return str(value)


def source_name(path: str) -> str:
    """Rows from a file are identified by its base name: short and readable in ids and rejects."""
    return Path(path).name
