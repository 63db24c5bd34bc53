"""Sources that are tables already: Parquet files and `datasets` datasets (a local directory or a hub name)."""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from dataprep.io.fields import ClsBatch, ClsFields, source_name
from dataprep.outcome import Outcome, reject_records
from dataprep.registry import param, stage


@stage("read_parquet", version=1, kind="source", params=ClsFields, produces="cls")
def read_parquet(p: ClsFields) -> Iterator[Outcome]:
    """Read classification records from a Parquet file. Row n (1-based) gets id `<file>:<n>`.

    Drop reasons: `missing_field:<name>` for every row when the text or label column is absent.
    """
    source, offset = source_name(p.path), 0
    for batch in pq.ParquetFile(p.path).iter_batches(batch_size=p.batch_rows):
        yield _map_columns(pa.Table.from_batches([batch]), p, source, offset)
        offset += batch.num_rows


@dataclass(frozen=True)
class HfParams(ClsFields):
    split: str = param("train", "which split to read")
    name: str | None = param(None, "a hub dataset name (needs a network); otherwise `path` is a local directory")


@stage("read_hf", version=1, kind="source", params=HfParams, produces="cls")
def read_hf(p: HfParams) -> Iterator[Outcome]:
    """Read a `datasets` dataset saved with `save_to_disk` (`path`) or from the hub (`name`).

    Drop reasons: `missing_field:<name>` for every row when the text or label column is absent.
    """
    import datasets  # heavy: imported only when this source runs

    if p.name:
        data = datasets.load_dataset(p.name, split=p.split)
    else:
        data = datasets.load_from_disk(p.path)
        if isinstance(data, datasets.DatasetDict):
            data = data[p.split]
    source, table = p.name or source_name(p.path), data.data.table
    for offset in range(0, max(table.num_rows, 1), p.batch_rows):
        yield _map_columns(table.slice(offset, p.batch_rows), p, source, offset)


def _map_columns(table: pa.Table, p: ClsFields, source: str, offset: int) -> Outcome:
    """Rename the input's columns onto the `cls` contract; rows get `<source>:<row>` ids unless they have one."""
    rows = table.to_pylist()
    batch = ClsBatch(p, source)
    if (absent := batch.missing(rows[0] if rows else {p.text_field: 0, p.label_field: 0})):
        import json
        return Outcome(batch.flush(), reject_records([
            (f"{source}:{offset + i + 1}", f"missing_field:{absent}", json.dumps(r, ensure_ascii=False, default=str))
            for i, r in enumerate(rows)]))
    for i, record in enumerate(rows):
        batch.add(record, f"{source}:{offset + i + 1}")
    return Outcome(batch.flush())


def hashable_files(path: str) -> list[Path]:
    """The files whose bytes make up a source: the file itself, or every file under a directory."""
    root = Path(path)
    return sorted(f for f in root.rglob("*") if f.is_file()) if root.is_dir() else [root]
