"""Readers (source stages) and writers. Importing this package registers the readers."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from dataprep.io.conll import prepare_conll, read_conll, read_conll_shard, write_conll
from dataprep.io.csv import prepare_csv, read_csv, read_csv_shard, write_csv
from dataprep.io.jsonl import (
    merge_fields,
    plan_blocks,
    plan_jsonl,
    read_jsonl,
    read_jsonl_range,
    scan_fields,
    write_jsonl,
)
from dataprep.io.parallel import prepare_parallel, read_parallel, read_parallel_shard
from dataprep.io.shards import Range, Shard, expand, plan_ranges
from dataprep.io.tables import prepare_parquet, read_hf, read_parquet, read_parquet_shard
from dataprep.outcome import Outcome

__all__ = ["read_csv", "read_conll", "read_jsonl", "read_parallel", "read_parquet", "read_hf", "reader_for",
           "write_table", "Range", "Shard", "plan_ranges", "plan_jsonl", "scan_fields", "merge_fields",
           "read_jsonl_range", "plan_blocks", "prepare_read", "read_shard", "SHARD_READERS"]

_READERS = {".jsonl": "read_jsonl", ".json": "read_jsonl", ".csv": "read_csv", ".tsv": "read_csv",
            ".parquet": "read_parquet", ".conll": "read_conll", ".bio": "read_conll"}


def reader_for(path: str) -> tuple[str, dict]:
    """The reader stage for a file, by extension, with the options the extension implies; for a glob, by the
    pattern's extension; for a directory, by its files' extensions (a saved dataset, or a directory whose
    files no reader claims, is read_hf's)."""
    p = Path(path)
    if p.is_dir():
        return _reader_for_directory(p)
    name = _READERS.get(p.suffix.lower())
    if name is None:
        raise ValueError(f"no reader for {path!r}: known extensions {', '.join(_READERS)} or a dataset directory")
    return name, _options(p.suffix)


def _options(suffix: str) -> dict:
    return {"delimiter": "\t"} if suffix.lower() == ".tsv" else {}


_DATASET_FILES = ("dataset_info.json", "state.json", "dataset_dict.json")  # what save_to_disk writes


def _reader_for_directory(root: Path) -> tuple[str, dict]:
    """A directory of shards is read by the one reader its files' extensions name; two (`.csv` beside
    `.jsonl`) is a ValueError, since one reader cannot read both."""
    if any((root / name).is_file() for name in _DATASET_FILES):
        return "read_hf", {}
    found = {}
    for shard in expand(str(root), tuple(_READERS)):
        suffix = Path(shard.name).suffix.lower()
        found.setdefault((_READERS[suffix], tuple(_options(suffix).items())), shard.name)
    if len(found) > 1:
        raise ValueError(f"{root} holds files of several formats ({', '.join(sorted(found.values()))}, ...): name "
                         "them with a glob")
    if not found:
        return "read_hf", {}
    (name, options), = found
    return name, dict(options)


# Readers whose shards can be read apart, each task one file: (prepare, read one shard). JSON Lines is read by
# byte ranges instead (plan_jsonl, scan_fields, merge_fields, read_jsonl_range): its kept fields' types carry
# from file to file.
_SHARD_READERS = {
    "read_csv": (lambda p: (p, prepare_csv(p)), read_csv_shard),
    "read_conll": (prepare_conll, read_conll_shard),
    "read_parallel": (lambda p: (p, prepare_parallel(p)), read_parallel_shard),
    "read_parquet": (lambda p: (p, prepare_parquet(p)), read_parquet_shard),
}
SHARD_READERS = frozenset(_SHARD_READERS)
_CARRY_SPLIT = frozenset({"read_csv", "read_parquet"})  # the others' shards share nothing: each is read alone


def prepare_read(reader: str, params) -> tuple[object, list[Shard]]:
    """(params for `read_shard`, the shards in read order) after every check the reader makes before its first
    row (headers, footers, column counts): a distributed read runs this once, then one `read_shard` a file.
    The shards' outputs, concatenated in order (promote_options="permissive"), are the whole read's rows."""
    if reader not in _SHARD_READERS:
        raise ValueError(f"{reader} is not read shard by shard (read_jsonl: by ranges, plan_jsonl ...; read_hf: "
                         "whole)")
    return _SHARD_READERS[reader][0](params)


def read_shard(reader: str, params, shard: Shard, split_seen: bool = False) -> Iterator[Outcome]:
    """One shard's rows and rejects; `params` as `prepare_read` returned them. The whole read's batches are its
    shards' batches in order (a batch never spans two shards); the one thing carried from shard to shard is
    `split_seen` (an earlier row had a split: CSV and Parquet then give every later batch a `split` column), so
    given as the whole read has it on reaching the shard, the batches are the whole read's, byte for byte."""
    read = _SHARD_READERS[reader][1]
    return read(params, shard, split_seen) if reader in _CARRY_SPLIT else read(params, shard)


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
