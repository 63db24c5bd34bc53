"""read_parallel: sentence pairs from a TSV/CSV file, one pair a line (`zh<TAB>en`), into `parallel` rows."""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import pyarrow as pa

from dataprep.errors import InputError
from dataprep.io.csv import DELIMITED_EXTENSIONS, OTHER_DELIMITED, check_header, csv_records
from dataprep.io.fields import META, check_keep_fields, missing_kept
from dataprep.io.shards import Shard, ShardedPath
from dataprep.outcome import Outcome, reject_records
from dataprep.registry import param, stage
from dataprep.schema import PARALLEL


@dataclass(frozen=True)
class ParallelParams(ShardedPath):
    path: str = param("", "input: a file of pairs, a directory of them (.tsv/.tab for a tab, .csv for ',', else "
                      ".csv/.tsv/.txt; recursively) or a glob; relative to the working directory")
    src_col: int = param(0, "0-based column holding the source sentence")
    tgt_col: int = param(1, "0-based column holding the target sentence")
    fields: int | None = param(None, "fields every line must have; default: the header's count, or "
                               "max(src_col, tgt_col) + 1")
    delimiter: str = param("\t", "field separator: '\\t' for TSV, ',' for CSV")
    header: bool = param(False, "the first line names the columns (it is skipped)")
    quoting: Literal["none", "minimal"] = param(
        "none", "'none': quotes are ordinary characters (sentences hold quotes); 'minimal': a field may be "
        "quoted (RFC 4180)")
    max_record_lines: int = param(
        20, "quoting 'minimal': a quoted field spanning more lines than this is an unbalanced quote, rejected")
    src_lang: str = param("zh", "language code of the source column")
    tgt_lang: str = param("en", "language code of the target column")
    keep_fields: Literal["all", "none"] | list[str] = param(
        "all", "the other columns: all (each kept as a string column meta_<name>: the header's name, or col<i> "
        "without one), none, or the names to keep")
    batch_rows: int = param(50_000, "rows per batch handed to the next stage (part of the key: it decides the "
                            "Parquet row groups, so the bytes)")

    def __post_init__(self):
        if len(self.delimiter) != 1:
            raise ValueError(f"delimiter must be one character, got {self.delimiter!r}")
        if self.src_col < 0 or self.tgt_col < 0 or self.src_col == self.tgt_col:
            raise ValueError(f"src_col and tgt_col must be two different columns >= 0, got {self.src_col}, "
                             f"{self.tgt_col}")
        if self.fields is not None and self.fields <= max(self.src_col, self.tgt_col):
            raise ValueError(f"fields ({self.fields}) must exceed src_col and tgt_col")
        check_keep_fields(self.keep_fields, [])

    def extensions(self) -> tuple[str, ...]:
        return DELIMITED_EXTENSIONS.get(self.delimiter, OTHER_DELIMITED)


@stage("read_parallel", version=4, kind="source", params=ParallelParams, produces="parallel")
def read_parallel(p: ParallelParams) -> Iterator[Outcome]:
    """Read sentence pairs, one a line, into `parallel` rows (id `<file>:<line>`, src, tgt, src_lang,
    tgt_lang) from one file, a directory of shards or a glob (`dataprep.io.shards`: a shard's pairs are
    `<path relative to the root>:<line>`; each shard has its own header, all checked before any pair). Blank
    lines hold no pair and are skipped; sides are kept as written (normalize them later).

    Drop reasons: `invalid_utf8`, `bad_parallel_row:fields=<n>` (a line with the wrong number of fields, e.g.
    a missing tab or a stray third column), `bad_csv_row:unbalanced_quote` (quoting 'minimal' only),
    `bad_csv_row:bare_cr` (a carriage return inside a line, which the CSV parser cannot take), `empty_side:src` /
    `empty_side:tgt` (a side that is empty or only whitespace; src is named when both are).

    With `header`, a first line that cannot be read (invalid UTF-8, ...) is an InputError naming file:line
    (taking the next line as the header would silently drop a pair), and so is a header with too few columns for
    src_col and tgt_col.

    The other columns (a line has `fields` of them; `keep_fields`, default all) are kept as string columns
    `meta_<name>`, named by the header (an empty name is `col<i>`) or, without one, `col<i>` (0-based:
    Tatoeba's attribution, the third column, is `meta_col2`); an empty field is null. A name in `keep_fields`
    that no column has is an InputError.
    """
    for shard in prepare_parallel(p):
        yield from _read_file(p, shard)


def prepare_parallel(p: ParallelParams) -> list[Shard]:
    """The shards to read, every header checked first (InputError naming file:line), before any pair moves."""
    shards = p.shards()
    if p.header:
        for shard in shards:
            for lineno, _end, fields, _raw, reason in _records(p, shard):
                _header_columns(p, shard.path, lineno, fields, reason)
                break
    return shards


def read_parallel_shard(p: ParallelParams, shard: Shard) -> Iterator[Outcome]:
    """One shard's pairs and rejects, as the whole read gives them (after `prepare_parallel`)."""
    return _read_file(p, shard)


def _records(p: ParallelParams, shard: Shard):
    return csv_records(shard.path, p.delimiter, p.quoting, p.max_record_lines)


def _read_file(p: ParallelParams, shard: Shard) -> Iterator[Outcome]:
    """One shard's pairs (ids `<shard name>:<line>`), with its own header when `header`."""
    source, expected, header = shard.name, p.fields, p.header
    names = None if header else _positional(expected or max(p.src_col, p.tgt_col) + 1)
    kept = None if names is None else _kept(p, names, shard.path)
    cols, bad = {name: [] for name in ("id", "src", "tgt")}, []
    for lineno, _end, fields, raw, reason in _records(p, shard):
        rid = f"{source}:{lineno}"
        if header:  # the first record names the columns
            expected, kept = _header_columns(p, shard.path, lineno, fields, reason)
            header = False
            continue
        reason = reason or _check(fields, expected or max(p.src_col, p.tgt_col) + 1, p)
        if reason:
            bad.append((rid, reason, raw))
        else:
            cols["id"].append(rid)
            cols["src"].append(fields[p.src_col])
            cols["tgt"].append(fields[p.tgt_col])
            for i, name in kept:
                cols.setdefault(name, []).append(fields[i] or None)
        if len(cols["id"]) + len(bad) >= p.batch_rows:
            yield _flush(cols, bad, p, kept)
            cols, bad = {name: [] for name in ("id", "src", "tgt")}, []
    yield _flush(cols, bad, p, kept or [])


def _positional(n: int) -> list[str]:
    return [f"col{i}" for i in range(n)]


def _header_columns(p: ParallelParams, path: str, lineno: int, fields: list[str], reason: str | None
                    ) -> tuple[int, list[tuple[int, str]]]:
    """(fields each line has, the kept columns) from a header record; InputError when it cannot be used."""
    expected = p.fields or _header_fields(p, path, lineno, fields, reason)
    names = [name or f"col{i}" for i, name in enumerate(fields)][:expected]
    names += _positional(expected)[len(names):]
    return expected, _kept(p, names, f"{path}:{lineno}")


def _kept(p: ParallelParams, names: list[str], where: str) -> list[tuple[int, str]]:
    """(position, output column) of each kept column."""
    if p.keep_fields == "none":
        return []
    others = [(i, name) for i, name in enumerate(names) if i not in (p.src_col, p.tgt_col)]
    missing_kept(p.keep_fields, [name for _, name in others], where)
    if p.keep_fields != "all":
        others = [(i, name) for i, name in others if name in p.keep_fields]
    out = [(i, META + name) for i, name in others]
    if twice := next((n for k, (_, n) in enumerate(out) if n in [m for _, m in out[:k]]), None):
        raise InputError(f"{where}: two columns would both be kept as {twice!r}; rename one or set keep_fields")
    return out


def _header_fields(p: ParallelParams, path: str, line: int, fields: list[str], reason: str | None) -> int:
    """How many fields the header says each line has; too few for src_col and tgt_col is an InputError."""
    check_header(path, line, reason)
    if len(fields) <= max(p.src_col, p.tgt_col):
        raise InputError(f"{path}:{line}: the header has {len(fields)} column(s); src_col {p.src_col} and "
                         f"tgt_col {p.tgt_col} need {max(p.src_col, p.tgt_col) + 1}")
    return len(fields)


def _check(fields: list[str], expected: int, p: ParallelParams) -> str | None:
    if len(fields) != expected:
        return f"bad_parallel_row:fields={len(fields)}"
    for side, col in (("src", p.src_col), ("tgt", p.tgt_col)):
        if not fields[col].strip():
            return f"empty_side:{side}"
    return None


def _flush(cols: dict[str, list], bad: list, p: ParallelParams, kept: list[tuple[int, str]]) -> Outcome:
    n = len(cols["id"])
    table = pa.table({name: cols[name] for name in ("id", "src", "tgt")} | {"src_lang": [p.src_lang] * n,
                                                                          "tgt_lang": [p.tgt_lang] * n},
                     schema=PARALLEL)
    for _, name in kept:
        table = table.append_column(name, pa.array(cols.get(name, []), pa.string()))
    return Outcome(table, reject_records(bad))
