"""Mapping input fields onto the `cls` contract, shared by every classification reader."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from dataprep.registry import param
from dataprep.schema import CLS


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

    def __init__(self, fields: ClsFields, source: str):
        self.fields, self.source = fields, source
        self.cols: dict[str, list] = {name: [] for name in CLS.names}

    def __len__(self) -> int:
        return len(self.cols["id"])

    def missing(self, record: dict) -> str | None:
        """The first required field absent from a record, or None."""
        for name in (self.fields.text_field, self.fields.label_field):
            if name not in record:
                return name
        return None

    def add(self, record: dict, default_id: str) -> None:
        f = self.fields
        rid = record.get(f.id_field) if f.id_field else None
        self.cols["id"].append(default_id if rid is None else str(rid))
        self.cols["text"].append(_as_str(record[f.text_field]))
        self.cols["label"].append(_as_str(record[f.label_field]))
        self.cols["lang"].append(_as_str(record.get(f.lang_field)) or f.lang)
        self.cols["source"].append(self.source)

    def flush(self) -> pa.Table:
        table = pa.table(self.cols, schema=CLS)
        self.cols = {name: [] for name in CLS.names}
        return table


def _as_str(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # labels read as 1.0 from some CSV/JSON tools mean "1"
    return str(value)


def source_name(path: str) -> str:
    """Rows from a file are identified by its base name: short and readable in ids and rejects."""
    return Path(path).name
