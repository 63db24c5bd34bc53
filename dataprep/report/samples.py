"""What the sections share: seeded fixed-size samples, rejected records read back, reason codes and anchors.

Samples are drawn with a generator seeded by what they are a sample of (node and reason), never by the clock or
Python's salted `hash`: the same cache gives the same page, and adding a node does not reshuffle the others.
"""
from __future__ import annotations

import json
import re

import numpy as np
import pyarrow as pa
import xxhash

PER_REASON = 5      # rejected rows shown per node and reason
EXAMPLES = 8        # back-translations shown per node
EXTREMES = 5        # lowest- and highest-perplexity rows shown per filter


def sample(n: int, k: int, *what: str) -> list[int]:
    """`k` of the positions 0..n-1 (all of them when n <= k), in increasing order, seeded by `what`."""
    if n <= k:
        return list(range(n))
    rng = np.random.default_rng(xxhash.xxh64_intdigest("\x1f".join(what).encode()))
    return sorted(rng.choice(n, size=k, replace=False).tolist())


def code(reason: str) -> str:
    """A reason's code, as the ledger counts it: `duplicate_of:a.jsonl:3` -> `duplicate_of`."""
    return reason.split(":", 1)[0]


def detail(reason: str) -> str:
    """What follows the code: the kept row's id, a threshold, the conflicting labels; '' for none."""
    return reason.split(":", 1)[1] if ":" in reason else ""


def anchor(node: str, reason_code: str | None = None) -> str:
    """The id of a node's rejected-rows block (or of one reason inside it): safe in a URL fragment, distinct
    for distinct codes (a code with other characters gets a short hash of itself)."""
    if reason_code is None:
        return f"rej-{node}"
    slug = re.sub(r"[^A-Za-z0-9_.-]", "_", reason_code)
    if slug != reason_code:
        slug += "-" + xxhash.xxh32_hexdigest(reason_code.encode())
    return f"rej-{node}--{slug}"


def record(raw: str | None) -> dict | None:
    """A rejected row's `record` as a dict, or None when it is not a JSON object (a reader keeps the raw line)."""
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def shown_text(row: dict | None, raw: str | None = None) -> str | None:
    """What a row says: its text, its tokens joined by spaces, or (a record that never became a row) the raw
    record."""
    if row is not None and isinstance(row.get("text"), str):
        return row["text"]
    if row is not None and isinstance(row.get("tokens"), list):
        return " ".join(str(t) for t in row["tokens"])
    return raw


def texts(table: pa.Table) -> list[str | None]:
    """`shown_text` of every row of a table (cls or bio)."""
    if "text" in table.column_names:
        return table.column("text").to_pylist()
    if "tokens" in table.column_names:
        return [None if t is None else " ".join(t) for t in table.column("tokens").to_pylist()]
    return [None] * table.num_rows


def by_id(table: pa.Table, ids: list[str]) -> dict[str, dict]:
    """The rows of `table` whose id is in `ids`, as dicts keyed by id (the first row of an id wins)."""
    import pyarrow.compute as pc
    if not ids or "id" not in table.column_names:
        return {}
    found = table.filter(pc.is_in(table.column("id"), pa.array(sorted(set(ids)), pa.string())))
    out: dict[str, dict] = {}
    for row in found.to_pylist():
        out.setdefault(row["id"], row)
    return out
