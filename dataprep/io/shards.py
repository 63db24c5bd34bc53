"""A reader's `path` as one file, a directory or a glob of shards; and byte ranges of one big JSON Lines file.

`path` names:

- a file: read as it always was; its rows' ids are `<base name>:<line>`, so a single-file pipeline keeps its
  bytes and its keys;
- a directory: every file under it, recursively, whose name ends with one of the reader's extensions (case
  ignored), hidden files and directories (a name starting with `.`) skipped, symlinked directories not
  followed;
- a glob (`*`, `?`, `[...]`; `**` crosses directories): every file it matches, hidden names not matched unless
  the pattern spells the dot, whatever their extension (the pattern is explicit).

Shards are read in the byte order of their paths relative to the root (the directory, or the glob's leading
directories without a wildcard), and that relative path, with `/` between directories, is each row's id prefix
and `source`: `2024/part-0.jsonl:17`. Zero matches is a ConfigError on `with.path`, raised before any row.

Byte ranges (`plan_ranges`) cut one JSON Lines file into pieces that end on line boundaries, each with the
number of its first line, so many tasks can read one file and give every row the id a whole read gives it.
"""
from __future__ import annotations

import glob
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from dataprep.errors import ConfigError, brief
from dataprep.io.lines import open_input

GLOB_CHARS = frozenset("*?[")


@dataclass(frozen=True)
class Shard:
    """One file of a source: `path` opens it, `name` prefixes its rows' ids (and is their `source`)."""
    path: str
    name: str


def is_glob(path: str) -> bool:
    return any(c in GLOB_CHARS for c in path)


def expand(path: str, extensions: Sequence[str]) -> list[Shard]:
    """The shards `path` names, in read order (see the module docstring); [] when a directory or glob matches
    nothing. A plain path that does not exist is one shard: opening it is what reports it."""
    if not path:
        return [Shard(path, "")]
    p = Path(path)
    if p.is_dir():
        return _directory(path, extensions)
    if is_glob(path) and not p.exists():  # an existing file whose name holds `[` is that file, not a pattern
        return _glob(path)
    return [Shard(path, p.name)]


def _directory(root: str, extensions: Sequence[str]) -> list[Shard]:
    suffixes = tuple(e.lower() for e in extensions)
    found = []
    for folder, dirs, files in os.walk(root):  # followlinks=False: a link cycle cannot loop the walk
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in files:
            if not name.startswith(".") and name.lower().endswith(suffixes):
                found.append(os.path.relpath(os.path.join(folder, name), root))
    return _ordered(root, found)


def _glob(pattern: str) -> list[Shard]:
    root = glob_root(pattern)
    matches = [m for m in glob.glob(pattern, recursive=True) if not os.path.isdir(m)]
    return _ordered(root, [os.path.relpath(m, root) for m in matches])


def glob_root(pattern: str) -> str:
    """The leading directories of a pattern that hold no wildcard: ids are relative to it."""
    parts = Path(pattern).parts
    fixed = []
    for part in parts[:-1]:
        if is_glob(part):
            break
        fixed.append(part)
    return str(Path(*fixed)) if fixed else "."


def _ordered(root: str, relative: list[str]) -> list[Shard]:
    """Shards sorted by the bytes of their relative paths: the same order on every machine and file system
    (os.walk and glob return directory order, which is not)."""
    names = sorted({Path(r).as_posix() for r in relative}, key=os.fsencode)
    return [Shard(os.path.join(root, name) if root != "." else name, name) for name in names]


def no_match(path: str, extensions: Sequence[str]) -> str:
    """Why `path` names no shard, for a ConfigError on `with.path`."""
    if Path(path).is_dir():
        return (f"no {'/'.join(extensions)} file in directory {brief(path)} (searched recursively, hidden "
                "names skipped; name other files with a glob)")
    return f"no file matches {brief(path)}"


def path_problem(path: str, extensions: Sequence[str]) -> str | None:
    """What is wrong with a reader's `path` before any data moves (the DAG's check), or None: missing, or a
    directory or glob that names no file."""
    if not path:
        return "missing 'path'"
    if Path(path).is_dir() or (is_glob(path) and not Path(path).exists()):
        return None if expand(path, extensions) else no_match(path, extensions)
    return None if Path(path).exists() else f"file not found: {brief(path)}"


def shards_or_fail(path: str, extensions: Sequence[str]) -> list[Shard]:
    """The shards of `path`; none is a ConfigError on `with.path` (the reader raises it before any row)."""
    shards = expand(path, extensions)
    if not shards:
        raise ConfigError(no_match(path, extensions), key="with.path")
    return shards


class ShardedPath:
    """For a reader's params whose `path` may be a file, a directory or a glob. The DAG asks `path_problem()`
    before any data moves; the cache keys the node by `source_files()` (the name and bytes of every shard)."""

    EXTENSIONS: tuple[str, ...] = ()

    def extensions(self) -> tuple[str, ...]:
        """The file name endings a directory's shards must have."""
        return self.EXTENSIONS

    def source_files(self) -> list[Shard]:
        return expand(self.path, self.extensions())

    def path_problem(self) -> str | None:
        return path_problem(self.path, self.extensions())

    def shards(self) -> list[Shard]:
        """The shards to read, in order; none is a ConfigError naming `with.path`."""
        return shards_or_fail(self.path, self.extensions())


# --- byte ranges of one JSON Lines file ---

@dataclass(frozen=True)
class Range:
    """Bytes [start, stop) of one file, beginning at a line start and ending after a newline (or at the end
    of the file). `first_line`: the 1-based number of the line at `start`; `name`: the id prefix of its rows;
    `shard`: the file's position among its source's shards (0 for a lone file). `stop` None: to the end."""
    path: str
    name: str
    start: int
    stop: int | None
    first_line: int
    shard: int = 0


SCAN_BYTES = 1 << 16   # read this much at a time while looking for the next newline
COUNT_BYTES = 16 << 20


def cut_points(path: str, n: int) -> list[int]:
    """Offsets that cut a file into at most `n` pieces of about equal size, each just after a newline. Reads
    only around each cut (a few KiB unless a line is long), so planning a huge file costs n seeks."""
    if n < 1:
        raise ValueError(f"the number of ranges must be at least 1, got {n}")
    size = os.path.getsize(path)
    cuts = [0]
    with open_input(path) as f:
        for i in range(1, n):
            cut = _line_start_at_or_after(f, max(size * i // n, cuts[-1]), size)
            if cuts[-1] < cut < size:  # a cut inside the previous piece's long line, or at the end: no piece
                cuts.append(cut)
    return cuts + [size]


def _line_start_at_or_after(f, offset: int, size: int) -> int:
    """The first line start at or after `offset`: just after the first newline at or after offset - 1. A
    newline byte never occurs inside a UTF-8 sequence, so a cut can never split a character, and `\\r\\n`
    stays whole (the cut comes after the `\\n`)."""
    if offset == 0:
        return 0
    pos = offset - 1
    f.seek(pos)
    while chunk := f.read(SCAN_BYTES):
        found = chunk.find(b"\n")
        if found >= 0:
            return pos + found + 1
        pos += len(chunk)
    return size


def count_newlines(path: str, start: int, stop: int) -> int:
    """Newlines in bytes [start, stop) of a file: bytes.count runs at memory speed. A distributed planner may
    run one count per range in parallel and add them up (`ranges_from_counts`)."""
    total = 0
    with open_input(path) as f:
        f.seek(start)
        left = stop - start
        while left > 0 and (chunk := f.read(min(COUNT_BYTES, left))):
            total += chunk.count(b"\n")
            left -= len(chunk)
    return total


def ranges_from_counts(path: str, cuts: list[int], counts: list[int], name: str | None = None, shard: int = 0
                       ) -> list[Range]:
    """Ranges from cut points and each piece's newline count: piece i's first line is 1 + the newlines
    before it."""
    name = Path(path).name if name is None else name
    ranges, first_line = [], 1
    for start, stop, newlines in zip(cuts, cuts[1:], counts):
        ranges.append(Range(path, name, start, stop, first_line, shard))
        first_line += newlines
    return ranges or [Range(path, name, 0, 0, 1, shard)]  # an empty file: one empty range


def plan_ranges(path: str, n: int, name: str | None = None, shard: int = 0) -> list[Range]:
    """At most `n` ranges covering the file in order, none empty (but one for an empty file), each with its
    first line's number. One pass counts the newlines (GB/s); reading the ranges and concatenating what they
    give equals reading the file whole. `name`: the id prefix (default the base name, as a whole read)."""
    cuts = cut_points(path, n)
    counts = [count_newlines(path, start, stop) for start, stop in zip(cuts, cuts[1:])]
    return ranges_from_counts(path, cuts, counts, name, shard)


def plan_source(shards: list[Shard], range_bytes: int) -> list[Range]:
    """Ranges over every shard of a source, in read order, each shard cut into pieces of about `range_bytes`
    (at least one per shard)."""
    if range_bytes < 1:
        raise ValueError(f"range_bytes must be at least 1, got {range_bytes}")
    ranges = []
    for i, shard in enumerate(shards):
        n = max(1, -(-os.path.getsize(shard.path) // range_bytes))
        ranges += plan_ranges(shard.path, n, shard.name, i)
    return ranges
