"""JSON Lines: one object per line. Reader (a source stage) and writer."""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Iterator

import pyarrow as pa

from dataprep.io.fields import ClsBatch, ClsFields, source_name
from dataprep.io.lines import decode, iter_lines, raw_text
from dataprep.outcome import Outcome, reject_records
from dataprep.registry import stage


@dataclass(frozen=True)
class JsonlParams(ClsFields):
    pass


@stage("read_jsonl", version=1, kind="source", params=JsonlParams, produces="cls")
def read_jsonl(p: JsonlParams) -> Iterator[Outcome]:
    """Read classification records from a JSON Lines file.

    Blank lines are skipped (they hold no record). Drop reasons: `invalid_utf8` (also for a lone surrogate
    escape such as `"\\ud83d"`, which no UTF-8 text can hold), `malformed_json`,
    `not_an_object`, `missing_field:<name>` (the text or label key is absent; a null value passes through
    for normalize to judge).
    """
    source = source_name(p.path)
    batch, bad = ClsBatch(p, source), []
    for lineno, line in iter_lines(p.path):
        if not line.strip():
            continue
        rid = f"{source}:{lineno}"
        reason, record = _parse(line)
        if reason is None and (absent := batch.missing(record)):
            reason = f"missing_field:{absent}"
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
    if "\\u" in text and not _encodable(record):  # a lone surrogate escape (\ud83d): not text Arrow can hold
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
