"""CSV and TSV, with or without a header, quoted fields, doubled quotes, embedded newlines, stray quotes."""
from __future__ import annotations

import csv
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import pyarrow as pa

from dataprep.errors import InputError
from dataprep.io.fields import ClsBatch, ClsFields, Extras, missing_kept
from dataprep.io.lines import decode, iter_lines, raw_text
from dataprep.io.shards import Shard, ShardedPath
from dataprep.outcome import Outcome, reject_records
from dataprep.registry import param, stage

# The file name endings a directory's shards must have, by delimiter.
DELIMITED_EXTENSIONS = {",": (".csv",), "\t": (".tsv", ".tab")}
OTHER_DELIMITED = (".csv", ".tsv", ".txt")


@dataclass(frozen=True)
class CsvParams(ShardedPath, ClsFields):
    path: str = param("", "input: a CSV/TSV file, a directory of them (.csv for ',', .tsv/.tab for a tab, else "
                      ".csv/.tsv/.txt; recursively) or a glob; relative to the working directory")
    delimiter: str = param(",", "field separator: ',' for CSV, '\\t' for TSV")
    header: bool = param(True, "the first record names the columns")
    columns: list[str] | None = param(None, "column names when the file has no header")
    quoting: Literal["minimal", "none"] = param(
        "minimal", "'minimal': fields may be quoted (RFC 4180); 'none': quotes are ordinary characters")
    max_record_lines: int = param(
        20, "a quoted field spanning more lines than this is taken as an unbalanced quote and rejected")
    max_fields: int | None = param(
        None, "with quoting 'none': split a line at its first max_fields-1 delimiters only, so the last field "
        "keeps any further ones (TREC's `LABEL:fine question` with delimiter ' ')")

    def __post_init__(self):
        super().__post_init__()
        if len(self.delimiter) != 1:
            raise ValueError(f"delimiter must be one character, got {self.delimiter!r}")
        if not self.header and not self.columns:
            raise ValueError("a file without a header needs 'columns'")
        if self.max_fields is not None and (self.quoting != "none" or self.max_fields < 1):
            raise ValueError("max_fields needs quoting 'none' and a value of at least 1")
        if self.columns and (twice := _repeated(self.columns)):
            raise ValueError(f"column {twice!r} appears twice in 'columns'")

    def extensions(self) -> tuple[str, ...]:
        return DELIMITED_EXTENSIONS.get(self.delimiter, OTHER_DELIMITED)


@stage("read_csv", version=3, kind="source", params=CsvParams, produces="cls")
def read_csv(p: CsvParams) -> Iterator[Outcome]:
    """Read classification records from CSV or TSV: one file, a directory of shards or a glob
    (`dataprep.io.shards`: a shard's rows are `<path relative to the root>:<line>`). Each shard has its own
    header (or `columns`); every header is checked before any row is read.

    A record's line is the physical line where it starts (lines end at `\\n`; `\\r\\n` is fine). Every value
    is a string (an empty field is null); a NUL byte or BOM inside a field is kept for normalize to remove. An
    empty file has no records. Drop reasons: `invalid_utf8` (the line is skipped, the rest of the file is read),
    `bad_csv_row:fields=<n>` (wrong number of fields), `bad_csv_row:unbalanced_quote` (a quoted field ran past
    `max_record_lines` or the end of the file: only its first line is dropped, reading resumes on the next line),
    `bad_csv_row:bare_cr` (a carriage return outside quotes, which CSV does not allow), `missing_field:<name>`.

    The other columns (`keep_fields`, default all) are kept as string columns `meta_<name>` (an empty field
    is null there too); a column without a name is `col<i>` (0-based), so `meta_col3`. A `split` column (or
    `split_field`) is the row's split (`dataprep.io.fields`).

    Errors (InputError, naming file:line): a header that cannot be read (invalid UTF-8, an unbalanced quote, a
    bare CR — old Mac line ends), since then no column can be mapped; a column name that appears twice
    (empty names may repeat); a name in `keep_fields` that the header does not have.
    """
    seen = _Seen()
    for shard in prepare_csv(p):
        yield from _read_file(p, shard, seen)


def prepare_csv(p: CsvParams) -> list[Shard]:
    """The shards to read, every header checked first (InputError naming file:line), before any row moves."""
    shards = p.shards()
    if p.header:
        for shard in shards:
            _header_names(p, shard)
    return shards


def read_csv_shard(p: CsvParams, shard: Shard, split_seen: bool = False) -> Iterator[Outcome]:
    """One shard's rows and rejects, as the whole read gives them (a task of a distributed read, after
    `prepare_csv`). `split_seen`: whether an earlier shard had a row with a split, which makes every later batch
    carry the `split` column; given as the whole read has it on reaching the shard, the batches are the whole
    read's, byte for byte (left False, only the `split` column may come later)."""
    seen = _Seen()
    seen.split_seen = split_seen
    return _read_file(p, shard, seen)


class _Seen:
    """What the shards of one source share: whether a row had a split (then every later batch has the column)."""
    split_seen = False


def _read_file(p: CsvParams, shard: Shard, seen: _Seen) -> Iterator[Outcome]:
    """One shard's batches, with the shard's kept fields (its own header's columns)."""
    path, source = shard.path, shard.name
    batch, bad = None, []
    names = _named(path, 0, list(p.columns)) if p.columns else None
    if names is not None:
        batch = ClsBatch(p, source, _extras(p, names, path, seen.split_seen))
    for start, _end, fields, raw, reason in csv_records(path, p.delimiter, p.quoting, p.max_record_lines,
                                                        p.max_fields):
        rid = f"{source}:{start}"
        if names is None:
            names = _named(path, start, _column_names(path, start, fields, reason))
            batch = ClsBatch(p, source, _extras(p, names, f"{path}:{start}", seen.split_seen))
            continue
        if reason is None and len(fields) != len(names):
            reason = f"bad_csv_row:fields={len(fields)}"
        if reason is None:
            reason = batch.take({k: (v if v != "" else None) for k, v in zip(names, fields)}, rid)
        if reason:
            bad.append((rid, reason, raw))
        if len(batch) + len(bad) >= p.batch_rows:
            seen.split_seen = batch.extras.split_seen
            yield Outcome(batch.flush(), reject_records(bad))
            bad = []
    if batch is None:  # an empty file: not even a header
        batch = ClsBatch(p, source, Extras(p.keep_fields, p.mapped_fields(), {}))
        batch.extras.split_seen = seen.split_seen
    seen.split_seen = batch.extras.split_seen
    yield Outcome(batch.flush(), reject_records(bad))


def _header_names(p: CsvParams, shard: Shard) -> None:
    """Check a shard's header as reading it would (InputError naming file:line), without reading its rows."""
    for start, _end, fields, _raw, reason in csv_records(shard.path, p.delimiter, p.quoting, p.max_record_lines,
                                                         p.max_fields):
        _extras(p, _named(shard.path, start, _column_names(shard.path, start, fields, reason)),
                f"{shard.path}:{start}", False)
        return


def _named(path: str, line: int, names: list[str]) -> list[str]:
    """Column names with each empty one called `col<i>` (its 0-based position), so it can be kept and mapped."""
    named = [name or f"col{i}" for i, name in enumerate(names)]
    if twice := _repeated(named):
        where = f"{path}:{line}" if line else f"{path}: columns"
        raise InputError(f"{where}: column {twice!r} appears twice once empty names are called col<i>; rename it")
    return named


def _extras(p: CsvParams, names: list[str], where: str, split_seen: bool) -> Extras:
    """The kept columns, every one a string; `split_seen`: an earlier shard had a row with a split."""
    if p.keep_fields == "none":
        extras = Extras("none", p.mapped_fields())
    else:
        missing_kept(p.keep_fields, names, where)
        mapped = set(p.mapped_fields())
        kept = [n for n in names if n not in mapped] if p.keep_fields == "all" else list(p.keep_fields)
        extras = Extras(p.keep_fields, mapped, dict.fromkeys(kept, "string"))
    extras.split_seen = split_seen
    return extras


_HEADER_PROBLEMS = {
    "invalid_utf8": "the header line is not valid UTF-8",
    "bad_csv_row:unbalanced_quote": "the header has a quote that is never closed",
    "bad_csv_row:bare_cr": "the header has a carriage return outside quotes (old Mac \\r line ends? convert them "
                           "to \\n)",
}


def check_header(path: str, line: int, reason: str | None) -> None:
    """A header record that could not be read is an InputError: without it no column can be mapped, and taking
    the next record as the header would map every column wrongly."""
    if reason:
        raise InputError(f"{path}:{line}: {_HEADER_PROBLEMS.get(reason, reason)}; no column can be mapped")


def _column_names(path: str, line: int, fields: list[str], reason: str | None) -> list[str]:
    check_header(path, line, reason)
    if twice := _repeated(fields):  # dict(zip(...)) would silently keep the last of the two
        raise InputError(f"{path}:{line}: column {twice!r} appears twice in the header; rename one, or set "
                         "header: false and give 'columns'")
    return fields


def _repeated(names: list[str]) -> str | None:
    """The first name that occurs twice, or None. Empty names (trailing commas of spreadsheet exports) name no
    column anyone can map, so they may repeat."""
    seen: set[str] = set()
    for name in names:
        if name in seen and name:
            return name
        seen.add(name)
    return None


def csv_records(path: str, delimiter: str, quoting: str, max_record_lines: int, max_fields: int | None = None
                ) -> Iterator[tuple[int, int, list[str], str, str | None]]:
    """(first line, last line, fields, raw text, reason) per CSV record; invalid UTF-8 lines come out alone.
    Shared by every delimited-text reader (read_csv, read_parallel).

    A quoted field that runs past `max_record_lines` (or the end of the file) is an unbalanced quote: only its
    first line is rejected, and parsing resumes at the line after it, so one stray quote loses one record.
    A record csv cannot parse (a carriage return outside quotes) is `bad_csv_row:bare_cr`.
    """
    # Python's default limit (128 KiB a field) would crash the reader on one long line; the field size is
    # bounded by max_record_lines lines instead.
    csv.field_size_limit(max(csv.field_size_limit(), 2**31 - 1))
    lines = _Lines(path, max_record_lines)
    reader = csv.reader(lines, delimiter=delimiter, strict=False,
                        quoting=csv.QUOTE_MINIMAL if quoting == "minimal" else csv.QUOTE_NONE)
    while True:
        lines.begin_record()
        try:
            fields = next(reader)
        except StopIteration:
            if not lines.unbalanced:
                break
            fields = []
        except csv.Error:  # a bare CR outside quotes: csv refuses the record, the next one parses afresh
            fields = None
        for lineno, raw in lines.take_invalid():
            yield lineno, lineno, [], raw, "invalid_utf8"
        if fields is None:
            yield lines.start, lines.lineno, [], "\n".join(t for _, t in lines.raw), _csv_error(lines.raw)
        elif lines.unbalanced:
            start, first = lines.raw[0]
            yield start, start, [], first, "bad_csv_row:unbalanced_quote"
            lines.replay_after_first()
        elif fields:  # csv yields [] for a blank line: not a record
            if max_fields and len(fields) > max_fields:  # unquoted: re-joining restores the text exactly
                fields = fields[:max_fields - 1] + [delimiter.join(fields[max_fields - 1:])]
            yield lines.start, lines.lineno, fields, "\n".join(t for _, t in lines.raw), None


def _csv_error(raw: list[tuple[int, str]]) -> str:
    return "bad_csv_row:bare_cr" if any("\r" in text for _, text in raw) else "bad_csv_row:unparsable"


class _Lines:
    """Feeds decoded lines to csv.reader while remembering where each record starts and what it was made of.

    csv.reader asks for another line within a record only while inside a quoted field; past `max_lines` lines
    (or at the end of the file) the record is marked `unbalanced` and cut off, and its lines after the first
    can be fed again.
    """

    def __init__(self, path: str, max_lines: int):
        self._it = iter_lines(path)
        self._replay: deque[tuple[int, str]] = deque()
        self.max_lines = max_lines
        self.lineno, self.start, self.raw, self._invalid = 0, 1, [], []
        self.unbalanced = False

    def begin_record(self) -> None:
        self.start, self.raw, self.unbalanced = self.lineno + 1, [], False

    def take_invalid(self) -> list[tuple[int, str]]:
        out, self._invalid = self._invalid, []
        return out

    def replay_after_first(self) -> None:
        self._replay.extendleft(reversed(self.raw[1:]))

    def __iter__(self):
        return self

    def __next__(self) -> str:
        if self.raw and len(self.raw) >= self.max_lines:  # still inside a quoted field: give up on it
            self.unbalanced = True
            raise StopIteration
        while True:
            if self._replay:
                self.lineno, text = self._replay.popleft()
            else:
                try:
                    self.lineno, line = next(self._it)
                except StopIteration:
                    self.unbalanced = bool(self.raw)  # the file ended inside a quoted field
                    raise
                text = decode(line)
                if text is None:
                    self._invalid.append((self.lineno, raw_text(line)))
                    continue
            if not self.raw:
                self.start = self.lineno
            self.raw.append((self.lineno, text))
            return text + "\n"


def write_csv(table: pa.Table, path: str, delimiter: str = ",") -> None:
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, delimiter=delimiter, lineterminator="\n")
        writer.writerow(table.column_names)
        for batch in table.to_batches(max_chunksize=10_000):
            for row in zip(*(col.to_pylist() for col in batch.columns)):
                writer.writerow(row)
