"""Exact dedup, JSONL in -> Parquet out, on 1,000,000 generated docs (~250 bytes, 10% duplicates).

dataprep (`dataprep stage exact_dedup`) against what a user would write with pandas (`read_json(lines=True)`,
`drop_duplicates`, `to_parquet`) and with polars (`read_ndjson`, `unique(maintain_order=True)`,
`write_parquet`), and against the floor of any Arrow-based tool: pyarrow's `read_json` and `write_table` with no
dedup at all. Each runs in its own process so its peak RSS is its own; the contenders take turns, ROUNDS
times, and each keeps its best time, so a noisy neighbour on a small machine slows every one of them alike.
"""
from __future__ import annotations

import json
import random
import tempfile
from pathlib import Path

from run import Result, run_python

ROOT = Path(__file__).resolve().parent.parent
DOCS, DUP_SHARE = 1_000_000, 0.10
ROUNDS = 3

PANDAS = """
import pandas as pd, sys
df = pd.read_json(sys.argv[1], lines=True, dtype={"id": str, "text": str, "label": str})
df.drop_duplicates(subset="text", keep="first").to_parquet(sys.argv[2], index=False)
"""
POLARS = """
import polars as pl, sys
df = pl.read_ndjson(sys.argv[1])
df.unique(subset="text", keep="first", maintain_order=True).write_parquet(sys.argv[2])
"""
ARROW_FLOOR = """
import pyarrow.json as pj, pyarrow.parquet as pq, sys
pq.write_table(pj.read_json(sys.argv[1]), sys.argv[2])
"""
DATAPREP = "from dataprep.cli import main; main()"


def run() -> list[Result]:
    data = corpus()
    with tempfile.TemporaryDirectory() as tmp:
        contenders = {"dataprep": [DATAPREP, "stage", "exact_dedup", str(data), "-o", f"{tmp}/ours.parquet"],
                      "pandas": [PANDAS, str(data), f"{tmp}/pandas.parquet"],
                      "arrow": [ARROW_FLOOR, str(data), f"{tmp}/arrow.parquet"]}
        try:
            import polars  # noqa: F401
            contenders["polars"] = [POLARS, str(data), f"{tmp}/polars.parquet"]
        except ImportError:
            pass
        best: dict[str, dict] = {}
        for _ in range(ROUNDS):
            for name, args in contenders.items():
                m = measure(args)
                if name not in best or m["s"] < best[name]["s"]:
                    best[name] = m
    ours = best["dataprep"]
    results = [_result("pandas", ours, best["pandas"], "read_json + drop_duplicates")]
    if "polars" in best:
        results.append(_result("polars", ours, best["polars"], "read_ndjson + unique"))
    results.append(_result("the Arrow floor", ours, best["arrow"], "(pyarrow read_json + write_table, no dedup)"))
    return results


def _result(name: str, ours: dict, base: dict, how: str) -> Result:
    mem = f"peak RSS {ours['rss_mb']:.0f} MB vs {base['rss_mb']:.0f} MB ({ours['rss_mb'] / base['rss_mb']:.2f}×)"
    return Result(f"exact dedup, {DOCS:,} JSONL docs -> Parquet, vs {name}", DOCS / ours["s"], DOCS / base["s"],
                  "docs/s", f"{name.removeprefix('the ')} {how}",
                  notes=f"best of {ROUNDS}: {ours['s']:.1f} s vs {base['s']:.1f} s; {mem}")


def measure(args: list[str]) -> dict:
    """Wall time and peak RSS of one child process."""
    child = run_python(["-c", *args], ROOT)
    return {"s": child.seconds, "rss_mb": child.rss_mb}


def corpus(path: Path = ROOT / "bench" / "out" / "dedup_1m.jsonl", docs: int = DOCS) -> Path:
    """Generated once and reused: ~250-byte English-like docs, 10% exact copies of earlier docs."""
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = random.Random(7)
    words = [w for w in "the a service room was very good bad slow fast clean dirty staff food price value "
             "friendly noisy quiet location breakfast would stay again never recommend hotel phone battery "
             "screen delivery late early package broken perfect cheap expensive".split()]
    kept: list[tuple[str, str]] = []
    with open(path, "w", encoding="utf-8") as f:
        for i in range(docs):
            if kept and rng.random() < DUP_SHARE:
                text, label = kept[rng.randrange(len(kept))]  # an exact copy: same text, same label
            else:
                text, label = " ".join(rng.choice(words) for _ in range(40))[:240], rng.choice("ab")
                kept.append((text, label))
            f.write(json.dumps({"id": f"d{i:07d}", "text": text, "label": label}) + "\n")
    return path
