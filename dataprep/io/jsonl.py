"""JSON Lines: one object per line. Reader (a source stage) and writer."""
from __future__ import annotations

import io
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from dataprep.io.fields import BioBatch, ClsBatch, ClsFields, source_name
from dataprep.io.lines import BOM, decode, raw_text
from dataprep.outcome import Outcome, reject_records
from dataprep.registry import param, stage
from dataprep.schema import CLS


@dataclass(frozen=True)
class JsonlParams(ClsFields):
    kind: Literal["cls", "bio"] = param("cls", "cls: text + label records; bio: token + tag lists (NER)")
    tokens_field: str = param("tokens", "bio: input field holding the token list")
    tags_field: str = param("tags", "bio: input field holding the tag list")


@stage("read_jsonl", version=1, kind="source", params=JsonlParams, produces=lambda p: p.kind)
def read_jsonl(p: JsonlParams) -> Iterator[Outcome]:
    """Read classification records (`kind: cls`) or NER sentences (`kind: bio`) from a JSON Lines file.

    Blank lines are skipped (they hold no record). Drop reasons: `invalid_utf8`, `malformed_json`,
    `not_an_object`, `missing_field:<name>` (a required key is absent; a null text or label passes through
    for normalize to judge), `not_a_list:<name>` (bio: tokens or tags is not a list).
    """
    source = source_name(p.path)
    for linenos, block in _blocks(p.path):
        fast = _fast_cls(block, linenos, p, source) if p.kind == "cls" else None
        if fast is not None:
            for offset in range(0, fast.kept.num_rows, p.batch_rows):
                yield Outcome(fast.kept.slice(offset, p.batch_rows))
            continue
        lines = _lines(block, linenos.start)
        for start in range(0, len(lines), p.batch_rows):
            yield _concat(list(_read_lines(lines[start:start + p.batch_rows], p, source)))


BLOCK_BYTES = 16 << 20


def _blocks(path: str) -> Iterator[tuple[range, memoryview]]:
    """(its line numbers, a view of its bytes) for ~16 MiB runs of whole lines; a leading BOM is removed.
    Each read starts at a line boundary (the partial last line is read again with the next block), so a block
    is the bytes `read` returned, never a copy glued from two reads."""
    first_line, size = 1, BLOCK_BYTES
    with open(path, "rb") as f:
        if f.read(len(BOM)) != BOM:
            f.seek(0)
        while data := f.read(size):
            cut = data.rfind(b"\n") + 1
            if cut == 0 and len(data) == size:  # one line longer than a block: read it whole
                f.seek(-len(data), io.SEEK_CUR)
                size *= 2
                continue
            if cut == 0:  # the last line, without its newline
                data, cut = data + b"\n", len(data) + 1
            f.seek(cut - len(data), io.SEEK_CUR)
            lines = range(first_line, first_line + data.count(b"\n", 0, cut))
            yield lines, memoryview(data)[:cut]
            first_line, size = lines.stop, BLOCK_BYTES


def _lines(block: memoryview, first_line: int) -> list[tuple[int, bytes]]:
    """Non-blank lines with their numbers (CR stripped); blank lines hold no record and are skipped."""
    lines = bytes(block).split(b"\n")[:-1]  # the block ends with a newline
    return [(first_line + i, line.rstrip(b"\r")) for i, line in enumerate(lines) if line.strip()]


def _read_lines(chunk: list[tuple[int, bytes]], p: JsonlParams, source: str) -> Iterator[Outcome]:
    """Fast path first; when it fails, halve the chunk so a few bad lines cost a few slow small reads."""
    fast = None
    if p.kind == "cls" and chunk:
        fast = _fast_cls(b"\n".join(line for _, line in chunk) + b"\n", [n for n, _ in chunk], p, source)
    if fast is not None:
        yield fast
    elif p.kind != "cls" or len(chunk) <= 256:
        yield _slow(chunk, p, source)
    else:
        half = len(chunk) // 2
        yield from _read_lines(chunk[:half], p, source)
        yield from _read_lines(chunk[half:], p, source)


def _concat(parts: list[Outcome]) -> Outcome:
    if len(parts) == 1:
        return parts[0]
    return Outcome(pa.concat_tables([o.kept for o in parts]), pa.concat_tables([o.rejected for o in parts]))


def _slow(chunk: list[tuple[int, bytes]], p: JsonlParams, source: str) -> Outcome:
    """One json.loads per line: every bad line becomes a reject with its reason."""
    batch, bad = (BioBatch if p.kind == "bio" else ClsBatch)(p, source), []
    for lineno, line in chunk:
        rid = f"{source}:{lineno}"
        reason, record = _parse(line)
        if reason is None and (absent := batch.missing(record)):
            reason = f"missing_field:{absent}"
        if reason is None and p.kind == "bio" and (not_list := batch.bad_lists(record)):
            reason = f"not_a_list:{not_list}"
        if reason:
            bad.append((rid, reason, raw_text(line)))
        else:
            batch.add(record, rid)
    return Outcome(batch.flush(), reject_records(bad))


def _fast_cls(buf: bytes | memoryview, linenos: Sequence[int], p: JsonlParams, source: str) -> Outcome | None:
    """Arrow's C++ JSON parser on many lines at once — JSON parsing, not hashing, bounds a dedup run. It
    cannot say which line is bad, so any failure (bad JSON, invalid UTF-8, a number where text is expected)
    returns None and the caller reads line by line. It cannot tell a missing key from a null either: a null
    text or label also returns None. `linenos`: the number of each line of `buf` (a range when consecutive).
    Arrow skips blank lines, so a block holding one parses to fewer rows than lines and is read line by line."""
    fields = [p.text_field, p.label_field, p.lang_field] + ([p.id_field] if p.id_field else [])
    schema = pa.schema([(f, pa.string()) for f in dict.fromkeys(fields)])
    try:
        str(buf, "utf-8")  # Arrow's parser does not validate UTF-8 inside strings; this runs at GB/s
        parsed = pj.read_json(pa.BufferReader(buf), read_options=pj.ReadOptions(block_size=4 << 20),  # in parallel
                              parse_options=pj.ParseOptions(explicit_schema=schema,
                                                            unexpected_field_behavior="ignore"))
    except (pa.ArrowInvalid, UnicodeDecodeError):
        return None
    n = parsed.num_rows
    if n != len(linenos) or pc.any(pc.or_(pc.is_null(parsed[p.text_field]),
                                          pc.is_null(parsed[p.label_field]))).as_py():
        return None
    ids = parsed[p.id_field] if p.id_field else None
    if ids is None or ids.null_count:
        numbers = np.arange(linenos.start, linenos.stop) if isinstance(linenos, range) else linenos
        line_ids = pc.binary_join_element_wise(source, pc.cast(pa.array(numbers, pa.int64()), pa.string()), ":")
        ids = line_ids if ids is None else pc.coalesce(ids, line_ids)
    lang = parsed[p.lang_field]  # "" means unknown, as on the slow path
    if lang.null_count < n:
        lang = pc.if_else(pc.equal(lang, ""), pa.scalar(None, pa.string()), lang)
    if p.lang is not None:
        lang = pc.coalesce(lang, p.lang)
    return Outcome(pa.table([ids, parsed[p.text_field], parsed[p.label_field], lang, pa.repeat(source, n)],
                            schema=CLS))


def _parse(line: bytes) -> tuple[str | None, dict | None]:
    text = decode(line)
    if text is None:
        return "invalid_utf8", None
    try:
        record = json.loads(text)
    except json.JSONDecodeError:
        return "malformed_json", None
    if not isinstance(record, dict):
        return "not_an_object", None
    if "\\u" in text and not _encodable(record):  # a lone surrogate escape (\ud83d) that Arrow cannot hold
        return "invalid_utf8", None
    return None, record


def _encodable(record: dict) -> bool:
    try:
        json.dumps(record, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def write_jsonl(table: pa.Table, path: str) -> None:
    with open(path, "wb") as f:
        for batch in table.to_batches(max_chunksize=10_000):
            f.writelines(orjson.dumps(row, default=str) + b"\n" for row in batch.to_pylist())
