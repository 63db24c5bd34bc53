"""The Ray backend against the local one, in the same run: exact dedup of generated docs, and a cleaning
pipeline (normalize → exact_dedup → quality_score → split → rebalance), each through `dataprep run`
with `--backend local` and `--backend ray` (a local Ray cluster the run starts and stops), in its own process
so that wall time and peak RSS are its own. Outputs are compared file by file: the bytes must be equal.

On a 2-core machine Ray is expected to lose (README "Scaling out": there is nothing to parallelise, and
each node pays task scheduling); the number says by how much.
"""
from __future__ import annotations

import json
import random
import tempfile
from pathlib import Path

from run import Result, run_python

ROOT = Path(__file__).resolve().parent.parent
DOCS = 200_000
CLI = "from dataprep.cli import main; main()"


def run() -> list[Result]:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        corpus(work / "docs.jsonl")
        pipeline = work / "clean.yaml"
        pipeline.write_text(json.dumps({"name": "clean", "defaults": {"seed": 3}, "nodes": {
            "raw": {"uses": "read_jsonl", "with": {"path": str(work / "docs.jsonl")}},
            "norm": {"uses": "normalize", "input": "raw"},
            "unique": {"uses": "exact_dedup", "input": "norm"},
            "scored": {"uses": "quality_score", "input": "unique"},
            "splits": {"uses": "split", "input": "scored"},
            "balanced": {"uses": "rebalance", "input": "splits", "with": {"only_split": "train"}}}}))
        local = run_python(["-c", CLI, "run", str(pipeline), "--cache-dir", str(work / "local")], ROOT)
        ray = run_python(["-c", CLI, "run", str(pipeline), "--backend", "ray", "--cache-dir", str(work / "ray")],
                         ROOT)
        equal = same_outputs(work / "local" / "clean", work / "ray" / "clean")
    return [Result(f"cleaning pipeline on {DOCS:,} docs (normalize, exact_dedup, quality_score, split, rebalance), "
                   "--backend ray vs local", DOCS / ray.seconds, DOCS / local.seconds, "docs/s", "the local backend",
                   notes=f"{ray.seconds:.1f} s vs {local.seconds:.1f} s; peak RSS of the driver {ray.rss_mb:.0f} MB "
                         f"vs {local.rss_mb:.0f} MB; outputs {'byte-equal' if equal else 'DIFFERENT'}")]


def same_outputs(a: Path, b: Path) -> bool:
    """Every file of every node but the measured ones (stats.json, and the manifest listing their digests)."""
    def files(root: Path) -> dict[str, bytes]:
        return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
                if p.is_file() and p.name not in ("stats.json", "manifest.json", ".lock")}
    return files(a) == files(b)


def corpus(path: Path) -> None:
    rng = random.Random(9)
    words = [f"w{i}" for i in range(5000)]
    with path.open("w", encoding="utf-8") as f:
        for i in range(DOCS):
            n = rng.randrange(DOCS // 2) if rng.random() < 0.2 else i  # ~20% copies of other docs
            text = " ".join(random.Random(n).choices(words, k=30))
            f.write(json.dumps({"text": text, "label": "pos" if n % 3 else "neg"}) + "\n")
