"""Reject records: every rejected row is kept as JSON, byte for byte what orjson writes, however it is built."""
from __future__ import annotations

import random

import orjson
import pyarrow as pa
import pytest

from dataprep.outcome import Outcome, rows_as_json

TRICKY = ['a', '"', "\\", "\n", "\t", "\x01", "\x1f", "é", "中", "😀", "\u2028", "\x7f", " ", "/", "{", "}", "\\u0041"]


def orjson_rows(table: pa.Table) -> list[str]:
    return [orjson.dumps(r, default=str).decode() for r in table.to_pylist()]


def random_text(rng: random.Random) -> str | None:
    return None if rng.random() < 0.1 else "".join(rng.choice(TRICKY) for _ in range(rng.randrange(8)))


def test_string_tables_match_orjson_byte_for_byte_quotes_backslashes_controls_and_nulls():
    rng = random.Random(0)
    table = pa.table({"id": [random_text(rng) for _ in range(3000)], "text": [random_text(rng) for _ in range(3000)],
                      "lang": pa.nulls(3000, pa.string()), "big": pa.array(["x"] * 3000, pa.large_string())})
    assert rows_as_json(table).to_pylist() == orjson_rows(table)


@pytest.mark.parametrize("table", [
    pa.table({"tokens": [["a", '"b'], None], "ppl": [1.5, None]}),  # lists and floats go through orjson
    pa.table({"text": pa.array([], pa.string())}),
    pa.Table.from_batches([pa.record_batch({"id": ["a"], "text": ['q"']})] * 3),  # several chunks
])
def test_other_shapes_match_orjson(table):
    assert rows_as_json(table).to_pylist() == orjson_rows(table)


def test_split_records_rejected_rows_whole():
    table = pa.table({"id": ["r1", "r2"], "text": ['say "hi"', "ok"], "label": ["x", None]})
    out = Outcome.split(table, ["too_short", None])
    assert out.rejected.to_pylist() == [
        {"id": "r1", "reason": "too_short", "record": '{"id":"r1","text":"say \\"hi\\"","label":"x"}'}]
