"""JSON Lines: one object per line. Reader (a source stage) and writer."""
from __future__ import annotations

import json
import os
import re
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from dataprep.io.fields import (
    ARROW_TYPES,
    MAX_KEPT_FIELDS,
    META,
    SPLIT_NAMES,
    BioBatch,
    ClsBatch,
    ClsFields,
    Extras,
    split_name,
)
from dataprep.io.lines import BOM, decode, open_input, raw_text
from dataprep.io.shards import SCAN_BYTES, Range, ShardedPath, count_newlines, plan_source
from dataprep.outcome import Outcome, reject_records
from dataprep.registry import param, stage
from dataprep.schema import CLS


@dataclass(frozen=True)
class JsonlParams(ShardedPath, ClsFields):
    path: str = param("", "input: a JSON Lines file, a directory of them (.jsonl, .json, .ndjson, recursively) or "
                      "a glob; relative to the working directory")
    kind: Literal["cls", "bio"] = param("cls", "cls: text + label records; bio: token + tag lists (NER)")
    tokens_field: str = param("tokens", "bio: input field holding the token list")
    tags_field: str = param("tags", "bio: input field holding the tag list")

    def mapped_fields(self) -> list[str]:
        if self.kind == "cls":
            return super().mapped_fields()
        return [self.tokens_field, self.tags_field, self.lang_field] + [
            f for f in (self.id_field, self.split_field) if f]

    EXTENSIONS = (".jsonl", ".json", ".ndjson")


@stage("read_jsonl", version=3, kind="source", params=JsonlParams, produces=lambda p: p.kind)
def read_jsonl(p: JsonlParams) -> Iterator[Outcome]:
    """Read classification records (`kind: cls`) or NER sentences (`kind: bio`) from JSON Lines: one file, a
    directory of shards or a glob (`dataprep.io.shards`: a shard's rows are `<path relative to the root>:<line>`,
    a lone file's `<file>:<line>`). The shards are one table: a kept field's type is fixed by the first line
    holding a value in any of them, in read order.

    Blank lines are skipped (they hold no record). What each field may hold is in `dataprep.io.fields`: an
    integer label or id becomes its decimal string, any other value of the wrong type is rejected. Drop reasons:
    `invalid_utf8` (the line, or a lone surrogate escape such as `\\ud83d` in it), `malformed_json`, `too_deep`
    (arrays and objects nested more than 1024 levels), `not_an_object` (an array, string, number or null),
    `missing_field:<name>` (a required key is absent; a null text or label passes through for normalize to
    judge), `bad_type:<field>:<type>` (`bad_type:label:list`, `bad_type:text:number`, `bad_type:lang:number`,
    `bad_type:tokens:item:null`), `not_a_list:<name>` (bio: tokens or tags is not a list), `duplicate_key:<name>`
    (a key the reader reads written twice in one object: parsers keep the last silently).

    The split (`split_field`, default `split`; `split_as` for rows without one) and the other fields
    (`keep_fields`, default all) follow `dataprep.io.fields`: each other top-level field is a column
    `meta_<name>` whose type the first line holding a non-null value fixes (string, bool, int64, float64, or
    an object's or list's JSON text); a later value of another type rejects its line as
    `bad_type:meta_<name>:<type>`, a NaN inside a kept object as `bad_type:meta_<name>:number`. A field
    first seen in a later block adds its column from that batch on (earlier batches lack it: read the parts
    with `promote_options="permissive"`, as the runner does). A line that would bring a 1001st kept field is
    `too_many_fields:<name>` (objects keyed by ids are no table: name the fields to keep). `keep_fields: none`
    reads only the mapped keys.

    A line gets the same row or reason whichever path reads it. Keys the reader does not read are skipped
    unparsed by the fast path, so they are never judged: with `keep_fields: none` (or a list that does not name
    it) a line whose only deep (or NaN) value sits under such a key is kept, with its strings as Arrow reads
    them, on the slow path too; with `keep_fields: all` every key is read, so such a line is `too_deep`. The
    fast path reads kept fields too, by the types already fixed; a value it cannot type (an object or list,
    kept as JSON text, which Arrow cannot write) sends its block to the slow path: drop such a field
    (`keep_fields`) to read a large file at full speed.
    """
    extras = Extras.of(p)
    for shard in p.shards():
        extras.first = dict.fromkeys(extras.first, 0)  # fixed in an earlier shard: before this one's first line
        yield from _read_range(Range(shard.path, shard.name, 0, None, 1), p, extras)


def _read_range(rng: Range, p: JsonlParams, extras: Extras) -> Iterator[Outcome]:
    """The rows and rejects of one range of a file (a whole file: `stop` None), numbered from its first line;
    `extras` carries the kept fields from range to range."""
    source = rng.name
    for linenos, block in _blocks(rng.path, rng.start, rng.stop, rng.first_line):
        lines = None
        if p.kind == "cls":
            if not extras.none:
                _discover(_sample(block, linenos.start), extras)
            fast = _fast_cls(block, linenos, p, source, extras)
            if fast is None and not extras.none and _discover(lines := _lines(block, linenos.start), extras):
                fast = _fast_cls(block, linenos, p, source, extras)  # it learned a field: Arrow can read it now
            if fast is not None:
                for offset in range(0, fast.kept.num_rows, p.batch_rows):
                    yield Outcome(fast.kept.slice(offset, p.batch_rows))
                continue
        lines = lines if lines is not None else _lines(block, linenos.start)
        for start in range(0, len(lines), p.batch_rows):
            yield _concat(list(_read_lines(lines[start:start + p.batch_rows], p, source, extras)))


SAMPLE_BYTES, SAMPLE_LINES = 64 << 10, 64


def _sample(block: memoryview, first_line: int) -> list[tuple[int, bytes]]:
    """The first few non-blank lines of a block, to learn the kept fields before Arrow reads the block."""
    head = bytes(block[:SAMPLE_BYTES]).split(b"\n")[:-1]  # whole lines only
    return [(first_line + i, line.rstrip(b"\r")) for i, line in enumerate(head[:SAMPLE_LINES]) if line.strip()]


def _discover(lines: list[tuple[int, bytes]], extras: Extras) -> bool:
    """Learn the kept fields and kinds of these lines, in line order (the slow path's parse); True when it
    learned something. Only an optimisation: the slow path learns the same as it reads, line by line."""
    before = dict(extras.kinds)
    for lineno, line in lines:
        _, record = _python_record(line)
        if record is not None:
            extras.observe(record, lineno)
    return extras.kinds != before


BLOCK_BYTES = 16 << 20


def _blocks(path: str, start: int = 0, stop: int | None = None, first_line: int = 1
            ) -> Iterator[tuple[range, memoryview]]:
    """(its line numbers, a view of its bytes) for ~16 MiB runs of whole lines of bytes [start, stop) (stop
    None: to the end); a BOM at the start of the file is removed. Each read starts at a line boundary (the
    partial last line is read again with the next block), so a block is the bytes `read` returned, never a
    copy glued from two reads. A range ends after a newline or at the end of the file, so a read that stops
    at `stop` never cuts a line."""
    size = BLOCK_BYTES
    with open_input(path) as f:
        f.seek(start)
        if start > 0 or f.read(len(BOM)) != BOM:
            f.seek(start)
        pos = f.tell()
        while True:
            want = size if stop is None else min(size, stop - pos)
            data = f.read(want) if want > 0 else b""
            if not data:
                return
            cut = data.rfind(b"\n") + 1
            if cut == 0 and len(data) == want and (stop is None or pos + want < stop):
                f.seek(pos)  # one line longer than a block: read it whole
                size *= 2
                continue
            pos += cut if cut else len(data)
            if cut == 0:  # the last line, without its newline
                data, cut = data + b"\n", len(data) + 1
            lines = range(first_line, first_line + data.count(b"\n", 0, cut))
            yield lines, memoryview(data)[:cut]
            first_line, size = lines.stop, BLOCK_BYTES
            f.seek(pos)


# Lines Arrow's JSON reader must not see. A blank one (only Arrow's whitespace) yields no row, so rows no longer
# match lines by count — and Arrow reads `{..}{..}` as two rows, which can make up the difference. One that starts
# with `null` crashes the process (pyarrow 26 segfaults when a parse chunk starts with it).
_UNSAFE_LINE = re.compile(rb"\n[ \t\r]*(?:\n|null)")
_UNSAFE_FIRST_LINE = re.compile(rb"[ \t\r]*(?:\n|null)")


def _arrow_safe(buf: bytes | memoryview) -> bool:
    """Whether `buf` holds no line Arrow must not see (one regex scan at ~2.5 GB/s, about a tenth of the
    fast path's time: the price of never crashing and never shifting an id)."""
    return not (_UNSAFE_FIRST_LINE.match(buf) or _UNSAFE_LINE.search(buf))


def _lines(block: memoryview, first_line: int) -> list[tuple[int, bytes]]:
    """Non-blank lines with their numbers (CR stripped); blank lines hold no record and are skipped."""
    lines = bytes(block).split(b"\n")[:-1]  # the block ends with a newline
    return [(first_line + i, line.rstrip(b"\r")) for i, line in enumerate(lines) if line.strip()]


SLOW_LINES = 256  # a failed chunk this small is read line by line rather than halved again


def _read_lines(chunk: list[tuple[int, bytes]], p: JsonlParams, source: str, extras: Extras
                ) -> Iterator[Outcome]:
    """Fast path first; when it fails, halve the chunk so a few bad lines cost a few slow small reads. The
    lines of a chunk are all non-blank, so Arrow's row count matches them exactly when it parses."""
    fast = None
    if p.kind == "cls" and chunk:
        fast = _fast_cls(b"\n".join(line for _, line in chunk) + b"\n", [n for n, _ in chunk], p, source, extras)
    if fast is not None:
        yield fast
    elif p.kind != "cls" or len(chunk) <= SLOW_LINES:
        yield _slow(chunk, p, source, extras)
    else:
        half = len(chunk) // 2
        yield from _read_lines(chunk[:half], p, source, extras)
        yield from _read_lines(chunk[half:], p, source, extras)


def _concat(parts: list[Outcome]) -> Outcome:
    if len(parts) == 1:
        return parts[0]
    return Outcome(pa.concat_tables([o.kept for o in parts], promote_options="permissive"),
                   pa.concat_tables([o.rejected for o in parts]))


def _slow(chunk: list[tuple[int, bytes]], p: JsonlParams, source: str, extras: Extras) -> Outcome:
    """One parse per line: every bad line becomes a reject with its reason."""
    batch, bad = (BioBatch if p.kind == "bio" else ClsBatch)(p, source, extras), []
    keys = _read_keys(p)
    for lineno, line in chunk:
        rid = f"{source}:{lineno}"
        reason, record = _parse(line, p, extras, lineno)
        reason = reason or _repeated_key(line, _with_kept(keys, record, extras)) or batch.take(record, rid)
        if reason:
            bad.append((rid, reason, raw_text(line)))
    return Outcome(batch.flush(), reject_records(bad))


def _read_keys(p: JsonlParams) -> dict[str, bytes]:
    """The keys the reader maps, each with its JSON spelling (the common, unescaped one)."""
    return {name: orjson.dumps(name) for name in dict.fromkeys(p.mapped_fields())}


def _with_kept(keys: dict[str, bytes], record: dict, extras: Extras) -> dict[str, bytes]:
    """The mapped keys and the record's kept ones: a kept key written twice is `duplicate_key` too."""
    if extras.none:
        return keys
    return {**keys, **{name: orjson.dumps(name) for name in record if name not in keys and extras.wanted(name)}}


def _repeated_key(line: bytes, keys: dict[str, bytes]) -> str | None:
    """`duplicate_key:<name>` when a key the reader reads appears twice in the object: JSON parsers keep the
    last value silently, so neither is trusted (the fast path refuses such a line too). Only lines that hold a
    key's spelling twice are parsed again to look."""
    suspects = [name for name, spelled in keys.items() if line.count(spelled) > 1]
    if not suspects:
        return None
    try:
        pairs = json.loads(line, object_pairs_hook=lambda pairs: pairs)  # every object as its (key, value) list
    except (ValueError, RecursionError):
        return None  # nested past Python's recursion limit, or only Arrow reads it (and refuses duplicates)
    names = [key for key, _ in pairs]
    return next((f"duplicate_key:{name}" for name in suspects if names.count(name) > 1), None)


def _fast_cls(buf: bytes | memoryview, linenos: Sequence[int], p: JsonlParams, source: str, extras: Extras
              ) -> Outcome | None:
    """Arrow's C++ JSON parser on many lines at once — JSON parsing, not hashing, bounds a dedup run. It
    cannot say which line is bad, so any failure (bad JSON, invalid UTF-8, a value that is not a string where a
    string is read, a kept value that does not fit its field's kind, a key not known yet under keep_fields
    all, a split that is no split name) returns None and the caller reads line by line. It cannot tell a
    missing key from a null either: a null text or label also returns None. `linenos`: the number of each line
    of `buf` (a range when consecutive). `_arrow_fields` refuses a buffer with a blank line, so Arrow's rows are
    exactly those lines."""
    parsed = _arrow_fields(buf, p, extras)
    if parsed is None:
        return None
    n = parsed.num_rows
    if n != len(linenos) or pc.any(pc.or_(pc.is_null(parsed[p.text_field]),
                                          pc.is_null(parsed[p.label_field]))).as_py():
        return None
    numbers = None
    if extras.first:
        numbers = np.arange(linenos.start, linenos.stop) if isinstance(linenos, range) else np.asarray(linenos)
        if _unobserved_values(parsed, numbers, extras):
            return None
    split = _fast_split(parsed[p.split_field], p) if p.split_field else _no_split(p, n)
    if split is False:
        return None
    ids = parsed[p.id_field] if p.id_field else None
    if ids is None or ids.null_count:
        if numbers is None:
            numbers = np.arange(linenos.start, linenos.stop) if isinstance(linenos, range) else linenos
        line_ids = pc.binary_join_element_wise(source, pc.cast(pa.array(numbers, pa.int64()), pa.string()), ":")
        ids = line_ids if ids is None else pc.coalesce(ids, line_ids)
    lang = parsed[p.lang_field]  # "" means unknown, as on the slow path
    if lang.null_count < n:
        lang = pc.if_else(pc.equal(lang, ""), pa.scalar(None, pa.string()), lang)
    if p.lang is not None:
        lang = pc.coalesce(lang, p.lang)
    table = pa.table([ids, parsed[p.text_field], parsed[p.label_field], lang, pa.repeat(source, n)], schema=CLS)
    if split is not None and (split.null_count < n or extras.split_seen or p.split_as):
        table = table.append_column("split", split)
        extras.split_seen = extras.split_seen or split.null_count < n
    for name, kind in extras.kinds.items():
        # a `json` field is not in Arrow's schema: under keep_fields all Arrow refuses a line that has it
        column = pa.nulls(n, pa.string()) if kind == "json" else parsed[name]
        table = table.append_column(pa.field(META + name, ARROW_TYPES[kind]), column)
    return Outcome(table)


def _unobserved_values(parsed: pa.Table, numbers: np.ndarray, extras: Extras) -> bool:
    """Whether a kept field has a value on a line before the line that fixed its kind. Such a line is one the
    slow path cannot parse (so it never saw that value): read line by line, it would not be kept with it."""
    for name, first in extras.first.items():
        if name in parsed.column_names and numbers[0] < first:
            before = pa.array(numbers < first)
            if pc.any(pc.and_(before, pc.is_valid(parsed[name]))).as_py():
                return True
    return False


def _fast_split(column, p: JsonlParams):
    """The `split` column from the split field's strings; False when a value is no split name (the slow path
    rejects those lines as `bad_split`), None when there is no split at all."""
    column = pc.if_else(pc.equal(column, ""), pa.scalar(None, pa.string()), column)
    index = pc.index_in(pc.ascii_lower(column), value_set=pa.array(list(SPLIT_NAMES), pa.string()))
    if pc.any(pc.and_(pc.is_valid(column), pc.is_null(index))).as_py():
        return False
    split = pc.take(pa.array(list(SPLIT_NAMES.values()), pa.string()), index)
    return pc.coalesce(split, split_name(p.split_as)) if p.split_as else split


def _no_split(p: JsonlParams, n: int):
    return pa.repeat(pa.scalar(split_name(p.split_as)), n) if p.split_as else None


def _arrow_fields(buf: bytes | memoryview, p: JsonlParams, extras: Extras,
                  kinds: dict[str, str | None] | None = None) -> pa.Table | None:
    """The fields the reader reads, one row per object: the mapped ones as strings, the kept ones by their
    kinds (`kinds`, default the file's so far); None when Arrow cannot parse `buf` or a value does not fit.
    Keys the reader does not read are skipped without being built, however deep they nest; under keep_fields
    all, a key it does not know yet makes Arrow fail (the caller learns it on the slow path) — never Arrow's
    own type inference, which crashes on deep nesting and would decide types per block."""
    if not _arrow_safe(buf):
        return None  # a blank or `null` line: the caller reads line by line (`_lines` drops the blank ones)
    kinds = extras.kinds if kinds is None else kinds
    if not extras.all and "json" in kinds.values():
        return None  # Arrow would skip a named json field it cannot read, silently
    fields = [p.text_field, p.label_field, p.lang_field] + [f for f in (p.id_field, p.split_field) if f]
    schema = pa.schema([(f, pa.string()) for f in dict.fromkeys(fields)]
                       + [(name, ARROW_TYPES[kind]) for name, kind in kinds.items() if kind != "json"])
    unexpected = "error" if extras.all else "ignore"
    try:
        str(buf, "utf-8")  # Arrow's parser does not validate UTF-8 inside strings; this runs at GB/s
        return pj.read_json(pa.BufferReader(buf), read_options=pj.ReadOptions(block_size=4 << 20),  # in parallel
                            parse_options=pj.ParseOptions(explicit_schema=schema, unexpected_field_behavior=unexpected))
    except (pa.ArrowInvalid, UnicodeDecodeError):
        return None


def _orjson_error(doc: bytes) -> str:
    try:
        orjson.loads(doc)
    except orjson.JSONDecodeError as e:
        return e.msg
    return ""


# orjson refuses input nested deeper than 1024 levels; its message for that, learnt once, tells it from bad JSON.
_TOO_DEEP = _orjson_error(b"[" * 1025 + b"]" * 1025)
_UNPARSED = ("malformed_json", "too_deep")


def _parse(line: bytes, p: JsonlParams, extras: Extras, lineno: int) -> tuple[str | None, dict | None]:
    """(None, the record) or (the reason the line holds none, None). A record Python parses teaches `extras`
    its fields, whatever else is wrong with it."""
    reason, record = _python_record(line)
    if record is not None and (refused := extras.observe(record, lineno)) is not None:
        return f"too_many_fields:{refused}", None
    if reason in _UNPARSED and p.kind == "cls" and not extras.all and (
            fields := _arrow_record(line, p, extras, lineno)) is not None:
        return None, fields  # what the fast path keeps (NaN or deep nesting under a key not read) is kept here too
    return reason, record


def _python_record(line: bytes) -> tuple[str | None, dict | None]:
    text = decode(line)
    if text is None:
        return "invalid_utf8", None
    try:
        return _object(orjson.loads(line))
    except orjson.JSONDecodeError as e:
        return ("too_deep", None) if e.msg == _TOO_DEEP else _python_json(text)


def _arrow_record(line: bytes, p: JsonlParams, extras: Extras, lineno: int) -> dict | None:
    """The line's fields as the fast path reads them, when it would keep the line; else None. A kept field
    whose kind a later line fixed is read as null-only here, as it was when this line came."""
    kinds = {name: kind if extras.first.get(name, lineno) < lineno else None for name, kind in extras.kinds.items()}
    parsed = _arrow_fields(line + b"\n", p, extras, kinds)
    if parsed is None or parsed.num_rows != 1:
        return None
    record = {k: v for k, v in parsed.to_pylist()[0].items() if v is not None}
    if p.text_field not in record or p.label_field not in record:
        return None  # null or absent, Arrow cannot say which: the fast path does not keep it either
    return record


def _python_json(text: str) -> tuple[str | None, dict | None]:
    """orjson refused the line; Python's json also reads NaN, Infinity and lone surrogate escapes (`\\ud83d`)."""
    try:
        value = json.loads(text, parse_int=_integer)
    except json.JSONDecodeError:
        return "malformed_json", None
    except RecursionError:  # deep and also something orjson refused first
        return "too_deep", None
    reason, record = _object(value)
    if reason is None and not _encodable(record):
        return "invalid_utf8", None  # a lone surrogate is no text: UTF-8 and Arrow cannot hold it
    return reason, record


def _integer(digits: str) -> int | float:
    """An integer literal; past Python's limit on digits (4300) a float, as orjson and Arrow read one."""
    return int(digits) if len(digits) <= 4000 else float(digits)


def _object(value) -> tuple[str | None, dict | None]:
    return (None, value) if isinstance(value, dict) else ("not_an_object", None)


def _encodable(record: dict) -> bool:
    """Whether every string in the record (keys too) is valid text; iterative, so depth cannot crash it."""
    stack: list = [record]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            stack += value.keys()
            stack += value.values()
        elif isinstance(value, list):
            stack += value
        elif isinstance(value, str) and not value.isascii():
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                return False
    return True


# --- ranges: one input read as many tasks (a distributed backend), with the rows a whole read gives ---

@dataclass(frozen=True)
class Fields:
    """The kept fields of a JSON Lines input as a whole read knows them at its end: each name in the order
    first seen, its kind (None: only nulls so far) and where its first non-null value is, (shard, line).
    Small and picklable: ranges are scanned apart (`scan_fields`), merged in order (`merge_fields`), and every
    range is read with the same merged state, so a value's type is judged as the whole read judges it."""
    names: tuple[tuple[str, str | None, tuple[int, int] | None], ...] = ()

    @classmethod
    def of(cls, extras: Extras, shard: int) -> Fields:
        return cls(tuple((name, kind, (shard, extras.first[name]) if name in extras.first else None)
                         for name, kind in extras.kinds.items()))

    def extras(self, p: JsonlParams, shard: int) -> Extras:
        """An `Extras` holding these fields, its first lines counted in `shard`'s numbering: a value fixed in an
        earlier shard is before line 1 (0), one fixed in a later shard after every line."""
        extras = Extras.of(p)
        for name, kind, first in self.names:
            extras.kinds[name] = kind
            if first is not None:
                extras.first[name] = 0 if first[0] < shard else first[1] if first[0] == shard else _AFTER_ALL
        return extras


_AFTER_ALL = 1 << 62


def plan_jsonl(p: JsonlParams, range_bytes: int = 64 << 20) -> list[Range]:
    """Ranges over every shard of `p.path`, in read order, about `range_bytes` each (`dataprep.io.shards`)."""
    return plan_source(p.shards(), range_bytes)


def needs_fields(p: JsonlParams) -> bool:
    """Whether ranges must be scanned before they are read: only kept fields carry state from line to line."""
    return p.keep_fields != "none"


def scan_fields(p: JsonlParams, rng: Range) -> Fields:
    """The kept fields one range shows, learnt as the reader learns them (each non-blank line Python parses,
    in line order). A block Arrow reads by the fields already known teaches nothing new, so it is skipped at
    Arrow's speed; only blocks with a new field (or a value Arrow cannot type) are parsed line by line."""
    extras = Extras.of(p)
    if extras.none:
        return Fields()
    for linenos, block in _blocks(rng.path, rng.start, rng.stop, rng.first_line):
        _discover(_sample(block, linenos.start), extras)
        if p.kind == "cls" and _arrow_fields(block, p, extras) is not None:
            continue  # every key known and typed (unknown keys make Arrow fail under keep_fields all)
        _discover(_lines(block, linenos.start), extras)
    return Fields.of(extras, rng.shard)


def merge_fields(p: JsonlParams, scans: Sequence[Fields]) -> Fields:
    """The scans of consecutive ranges (in read order, covering the input) as one: what a whole read knows at
    its end. A name comes in order of first sight; its kind from its first non-null value; past
    MAX_KEPT_FIELDS names the rest are refused, as the whole read refuses them (`too_many_fields`)."""
    kinds: dict[str, str | None] = dict(Extras.of(p).kinds)
    first: dict[str, tuple[int, int]] = {}
    for scan in scans:
        for name, kind, where in scan.names:
            if name not in kinds:
                if len(kinds) >= MAX_KEPT_FIELDS:
                    continue
                kinds[name] = None
            if kinds[name] is None and kind is not None:
                kinds[name], first[name] = kind, where
    return Fields(tuple((name, kind, first.get(name)) for name, kind in kinds.items()))


def read_jsonl_range(p: JsonlParams, rng: Range, fields: Fields | None = None, split_seen: bool = False
                     ) -> Generator[Outcome, None, Fields]:
    """The rows and rejects of one range, exactly those a whole read of the input gives for its lines: the
    same ids (`<name>:<line>`), values and reasons. Concatenated in range order (`promote_options=
    "permissive"`: a column may come earlier than in the whole read, with nulls), the ranges' rows equal the
    whole read's; batches differ. `fields`: the merge of every range's scan; needed unless `keep_fields: none`
    (`needs_fields`), since a kept field's type is fixed by the first line holding it, maybe in another range.

    Byte for byte: given the fields a whole read knows on reaching its first line (those the ranges before it
    leave: the value the previous range returns, or — a guess to check — their scans merged) and `split_seen`
    as the whole read has it there (an earlier row had a split), a range of `plan_blocks` gives the whole read's
    batches. The generator returns (StopIteration.value) the fields at its end, what the next range starts
    from."""
    if fields is None and needs_fields(p):
        raise ValueError("read_jsonl_range keeps fields: pass merge_fields(p, [scan_fields(p, r) for r in ranges])")
    extras = (fields or Fields()).extras(p, rng.shard)
    extras.split_seen = split_seen
    yield from _read_range(rng, p, extras)
    return Fields.of(extras, rng.shard)


def plan_blocks(p: JsonlParams, range_bytes: int = 64 << 20) -> list[Range]:
    """Ranges over every shard of `p.path`, in read order: a shard of at most `range_bytes` is one range, a
    larger one is cut where the whole read begins a block (`block_starts`), into ranges of `range_bytes` or
    more. A batch never spans a block, so these ranges' batches are the whole read's (`read_jsonl_range`)."""
    if range_bytes < 1:
        raise ValueError(f"range_bytes must be at least 1, got {range_bytes}")
    ranges = []
    for i, shard in enumerate(p.shards()):
        ranges += _shard_ranges(shard.path, shard.name, i, range_bytes)
    return ranges


def _shard_ranges(path: str, name: str, shard: int, range_bytes: int) -> list[Range]:
    """One shard's ranges, each numbered from its first line (one count of the newlines before it)."""
    if _size(path) <= range_bytes:
        return [Range(path, name, 0, None, 1, shard)]
    cuts = [0]
    for start in block_starts(path)[1:-1]:
        if start - cuts[-1] >= range_bytes:
            cuts.append(start)
    ranges, first_line = [], 1
    for start, stop in zip(cuts, cuts[1:] + [None]):  # the last to the end, as the whole read
        ranges.append(Range(path, name, start, stop, first_line, shard))
        first_line += count_newlines(path, start, stop) if stop is not None else 0
    return ranges


def _size(path: str) -> int:
    """0 for a file that cannot be sized: read whole, opening it says what is wrong (InputError)."""
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def block_starts(path: str) -> list[int]:
    """The offsets where a whole read's blocks (`_blocks` from the start) begin, then the file's size. The same
    rule — a block ends after the last newline of a BLOCK_BYTES window, doubled while the window holds none and
    the file goes on — found by reading back from each window's end: a few KiB a block, not the file."""
    size = os.path.getsize(path)
    with open_input(path) as f:
        pos = len(BOM) if f.read(len(BOM)) == BOM else 0
        starts = [pos]
        while pos < size:
            pos = _block_end(f, pos, size)
            starts.append(pos)
    return starts


def _block_end(f, pos: int, size: int) -> int:
    """Where the block that begins at `pos` ends (the next one begins)."""
    window = BLOCK_BYTES
    while True:
        end = min(pos + window, size)
        newline = _last_newline(f, pos, end)
        if newline >= 0:
            return newline + 1
        if end == size:  # the file's last line, without a newline: a block of its own
            return size
        window *= 2


def _last_newline(f, start: int, end: int) -> int:
    """The offset of the last newline in bytes [start, end) of a file, -1 when there is none."""
    while end > start:
        chunk = max(start, end - SCAN_BYTES)
        f.seek(chunk)
        found = f.read(end - chunk).rfind(b"\n")
        if found >= 0:
            return chunk + found
        end = chunk
    return -1


def write_jsonl(table: pa.Table, path: str) -> None:
    with open(path, "wb") as f:
        for batch in table.to_batches(max_chunksize=10_000):
            f.writelines(orjson.dumps(row, default=str) + b"\n" for row in batch.to_pylist())
