"""Readers (source stages) and writers. Importing this package registers the readers."""
from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from dataprep.io.conll import read_conll, write_conll
from dataprep.io.csv import read_csv, write_csv
from dataprep.io.jsonl import read_jsonl, write_jsonl
from dataprep.io.parallel import read_parallel
from dataprep.io.tables import read_hf, read_parquet

__all__ = ["read_csv", "read_conll", "read_jsonl", "read_parallel", "read_parquet", "read_hf", "reader_for",
           "write_table"]

_READERS = {".jsonl": "read_jsonl", ".json": "read_jsonl", ".csv": "read_csv", ".tsv": "read_csv",
            ".parquet": "read_parquet", ".conll": "read_conll", ".bio": "read_conll"}


def reader_for(path: str) -> tuple[str, dict]:
    """The reader stage for a file, by extension, with the options the extension implies."""
    p = Path(path)
    if p.is_dir():
        return "read_hf", {}
    name = _READERS.get(p.suffix.lower())
    if name is None:
        raise ValueError(f"no reader for {path!r}: known extensions {', '.join(_READERS)} or a dataset directory")
    return name, ({"delimiter": "\t"} if p.suffix.lower() == ".tsv" else {})


def write_table(table: pa.Table, path: str) -> None:
    """Write a table as JSONL, CSV, TSV or Parquet, chosen by the file's extension."""
    suffix = Path(path).suffix.lower()
    if suffix in (".jsonl", ".json"):
        write_jsonl(table, path)
    elif suffix in (".csv", ".tsv"):
        write_csv(table, path, delimiter="\t" if suffix == ".tsv" else ",")
    elif suffix in (".conll", ".bio"):
        write_conll(table, path)
    elif suffix == ".parquet":
        pq.write_table(table, path)
    else:
        raise ValueError(f"cannot write {path!r}: use .jsonl, .csv, .tsv or .parquet")
