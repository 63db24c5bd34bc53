"""JSON Lines: one object per line. Reader (a source stage) and writer."""
from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import pyarrow as pa

from dataprep.io.fields import BioBatch, ClsBatch, ClsFields, source_name
from dataprep.io.lines import decode, iter_lines, raw_text
from dataprep.outcome import Outcome, reject_records
from dataprep.registry import param, stage


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
    batch, bad = (BioBatch if p.kind == "bio" else ClsBatch)(p, source), []
    for lineno, line in iter_lines(p.path):
        if not line.strip():
            continue
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
        if len(batch) + len(bad) >= p.batch_rows:
            yield Outcome(batch.flush(), reject_records(bad))
            bad = []
    yield Outcome(batch.flush(), reject_records(bad))


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
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for batch in table.to_batches(max_chunksize=10_000):
            for row in batch.to_pylist():
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
