"""Column files for NER (CoNLL-2003 and friends): one token per line, sentences separated by blank lines."""
from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Literal

import pyarrow as pa

from dataprep.errors import ConfigError, InputError
from dataprep.io.fields import META, check_keep_fields, check_split_as, split_name
from dataprep.io.lines import decode, iter_lines, raw_text
from dataprep.io.shards import Shard, ShardedPath
from dataprep.outcome import Outcome, reject_records
from dataprep.registry import param, stage
from dataprep.schema import BIO


@dataclass(frozen=True)
class ConllParams(ShardedPath):
    path: str = param("", "input: a column file, a directory of them (.conll, .bio, .iob, .iob2, .bmes; "
                      "recursively) or a glob (CoNLL-2003's eng.* has no extension); relative to the working "
                      "directory")
    token_col: int = param(0, "column of the token (0-based)")
    tag_col: int = param(-1, "column of the tag (0-based; -1 = last)")
    delimiter: str | None = param(None, "column separator; default: any run of spaces or tabs")
    columns: int | None = param(
        None, "columns per token line; default: as many as the file's first token line that has any")
    lang: str | None = param(None, "language code of the file")
    invalid_utf8: Literal["reject", "replace"] = param(
        "reject", "a line that is not valid UTF-8: 'reject' drops its sentence; 'replace' keeps it, each bad "
        "byte sequence becoming U+FFFD (tags stay aligned; counted in the ledger notes as utf8_replaced_lines)")
    strip_token_position: bool = param(
        False, "tokens carry a word-position number after the character (Weibo 2nd_conll: '新0', 'p10'): "
        "drop it, keeping at least one character")
    split_as: str | None = param(None, "the split of every sentence of this file (train, validation or test; "
                                 "dev, ...): CoNLL-2003's eng.testb is test")
    keep_fields: Literal["all", "none"] | list[str] = param(
        "all", "the other columns (col<i>, 0-based: CoNLL-2003's POS tags are col1): all (each kept as a list "
        "column meta_col<i>, one value per token), none, or the names to keep")
    batch_rows: int = param(50_000, "sentences per batch handed to the next stage (part of the key: it decides "
                            "the Parquet row groups, so the bytes)")

    def __post_init__(self):
        if self.delimiter == "":
            raise ValueError("delimiter must not be empty (leave it unset to split at runs of spaces or tabs)")
        check_split_as(self.split_as)
        check_keep_fields(self.keep_fields, [])
        if isinstance(self.keep_fields, list) and (bad := [n for n in self.keep_fields
                                                           if not re.fullmatch(r"col(0|[1-9][0-9]*)", n)]):
            raise ValueError(f"keep_fields names columns as col<i> (0-based), got {bad[0]!r}")

    EXTENSIONS = (".conll", ".bio", ".iob", ".iob2", ".bmes")


@stage("read_conll", version=3, kind="source", params=ConllParams, produces="bio")
def read_conll(p: ConllParams) -> Iterator[Outcome]:
    """Read NER sentences from column files: one file, a directory of shards or a glob (`dataprep.io.shards`:
    a shard's sentences are `<path relative to the root>:<line>`; shards must have the same columns).
    `-DOCSTART-` lines are document breaks, not tokens; a missing final newline is fine. A sentence's id is
    `<file>:<line of its first token>`; tags are kept as written (convert them with `to_bio2`). The file's
    other columns (`keep_fields`, default all) are kept as list columns `meta_col<i>` (i 0-based, one string
    per token: CoNLL-2003's POS and chunk tags are `meta_col1` and `meta_col2`); a name in `keep_fields` that
    the file has no column for is a ConfigError. A dataset shipped as one file per split names it with
    `split_as` (every sentence gets that `split`).

    Drop reasons (the whole sentence): `invalid_utf8:<line>` (with invalid_utf8=reject; <line> is the first bad
    line), `bad_column_row:<line>` (a line whose column count differs from the file's, so its tag column
    cannot be trusted).
    """
    p, shards = prepare_conll(p)
    kept = _kept_columns(p)
    for shard in shards:
        yield from _read_file(p, shard, kept)


def prepare_conll(p: ConllParams) -> tuple[ConllParams, list[Shard]]:
    """The params with the source's column count filled in, and the shards: every check the read makes before
    its first sentence (columns of every shard, token, tag and kept columns)."""
    shards = p.shards()
    if p.columns is None:
        p = replace(p, columns=_column_count(shards, p.delimiter))
    for name in ("token_col", "tag_col"):
        if not -p.columns <= getattr(p, name) < p.columns:
            raise ConfigError(f"the file has {p.columns} columns; column {getattr(p, name)} does not exist",
                              key=f"with.{name}")
    _kept_columns(p)
    return p, shards


def read_conll_shard(p: ConllParams, shard: Shard) -> Iterator[Outcome]:
    """One shard's sentences and rejects, as the whole read gives them; `p` from `prepare_conll`."""
    if p.columns is None:
        raise ValueError("read_conll_shard needs the params prepare_conll returns (with the column count)")
    return _read_file(p, shard, _kept_columns(p))


def _read_file(p: ConllParams, shard: Shard, kept: list[int]) -> Iterator[Outcome]:
    """One shard's sentences, ids `<shard name>:<line of the first token>`."""
    names = list(BIO.names) + [META + f"col{i}" for i in kept]
    rows: dict[str, list] = {name: [] for name in names}
    bad: list[tuple[str, str, str]] = []
    replaced, source = 0, shard.name
    for start, lines in _sentences(shard.path):
        rid = f"{source}:{start}"
        tokens, tags, others, reason = _columns(lines, p, kept)
        if reason is None and p.invalid_utf8 == "replace":
            replaced += sum(decode(raw) is None for _, raw in lines)
        if reason:
            bad.append((rid, reason, "\n".join(raw_text(raw) for _, raw in lines)))
        else:
            for name, value in zip(names, (rid, tokens, tags, p.lang, source, *others)):
                rows[name].append(value)
        if len(rows["id"]) + len(bad) >= p.batch_rows:
            yield _outcome(rows, bad, replaced, p)
            rows, bad, replaced = {name: [] for name in names}, [], 0
    yield _outcome(rows, bad, replaced, p)


def _kept_columns(p: ConllParams) -> list[int]:
    """The 0-based positions of the columns kept beside token and tag."""
    if p.keep_fields == "none":
        return []
    mapped = {p.token_col % p.columns, p.tag_col % p.columns}
    if p.keep_fields == "all":
        return [i for i in range(p.columns) if i not in mapped]
    wanted = [int(name[3:]) for name in p.keep_fields]
    for i in wanted:
        if i >= p.columns or i in mapped:
            why = "is the token or tag column" if i < p.columns else f"does not exist (the file has {p.columns})"
            raise ConfigError(f"keep_fields: column col{i} {why}", key="with.keep_fields")
    return sorted(wanted)


def _outcome(rows: dict[str, list], bad: list, replaced: int, p: ConllParams) -> Outcome:
    # A replacement rewrites text without dropping the sentence: count it, never do it silently.
    table = pa.table({name: rows[name] for name in BIO.names}, schema=BIO)
    if p.split_as:
        table = table.append_column("split", pa.repeat(pa.scalar(split_name(p.split_as)), table.num_rows))
    for name in list(rows)[len(BIO.names):]:
        table = table.append_column(name, pa.array(rows[name], pa.list_(pa.string())))
    return Outcome(table, reject_records(bad), notes={"utf8_replaced_lines": replaced} if replaced else {})


def _sentences(path: str) -> Iterator[tuple[int, list[tuple[int, bytes]]]]:
    """(first line number, lines) per sentence; blank lines and -DOCSTART- lines separate sentences."""
    lines: list[tuple[int, bytes]] = []
    for lineno, line in iter_lines(path):
        if not line.strip() or line.startswith(b"-DOCSTART-"):
            if lines:
                yield lines[0][0], lines
            lines = []
        else:
            lines.append((lineno, line))
    if lines:
        yield lines[0][0], lines


# A word-position number glued to a token: the shortest non-empty prefix is the token, so '110' is '1' at 10.
_POSITION = re.compile(r"(.+?)\d+")


def _columns(lines: list[tuple[int, bytes]], p: ConllParams, kept: list[int]
             ) -> tuple[list[str], list[str], list[list[str]], str | None]:
    tokens, tags, others = [], [], [[] for _ in kept]
    for lineno, raw in lines:
        text = decode(raw)
        if text is None and p.invalid_utf8 == "reject":
            return [], [], [], f"invalid_utf8:{lineno}"
        if text is None:
            text = raw.decode("utf-8", errors="replace")
        cols = text.split(p.delimiter) if p.delimiter else text.split()
        if len(cols) != p.columns:
            return [], [], [], f"bad_column_row:{lineno}"
        token = cols[p.token_col]
        if p.strip_token_position and (m := _POSITION.fullmatch(token)):
            token = m.group(1)
        tokens.append(token)
        tags.append(cols[p.tag_col])
        for values, i in zip(others, kept):
            values.append(cols[i])
    return tokens, tags, others, None


def _column_count(shards: list[Shard], delimiter: str | None) -> int:
    """The columns of the source: those of the first line that has any (2 when no line has). Shards are one
    table, so a shard whose first such line has another count is an InputError naming both files, raised
    before any sentence is read (its lines would all be bad_column_row otherwise)."""
    counts = [(shard, _first_column_count(shard.path, delimiter)) for shard in shards]
    counts = [(shard, n) for shard, n in counts if n is not None]
    if not counts:
        return 2
    first, n = counts[0]
    for shard, other in counts[1:]:
        if other != n:
            raise InputError(f"{shard.path}: {other} columns on its first token line, but {first.path} has {n}; "
                             "shards of one source must have the same columns (or set 'columns')")
    return n


def _first_column_count(path: str, delimiter: str | None) -> int | None:
    """Columns of the first line that has any, None when none has. A line of only Unicode spaces (U+3000,
    U+2028) is not blank to `_sentences` but has no column: it is a bad_column_row, not the file's shape."""
    for _, lines in _sentences(path):
        for _, raw in lines:
            text = raw.decode("utf-8", errors="replace")  # the delimiters are ASCII: a bad byte cannot hide one
            if count := len(text.split(delimiter) if delimiter else text.split()):
                return count
    return None


def write_conll(table: pa.Table, path: str) -> None:
    """Token TAB tag per line, a blank line after each sentence."""
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for tokens, tags in zip(table.column("tokens").to_pylist(), table.column("tags").to_pylist()):
            f.writelines(f"{tok}\t{tag}\n" for tok, tag in zip(tokens, tags))
            f.write("\n")
