"""Exact dedup at scale, in the same run: 1M generated docs through `dataprep run` on the local backend and on
Ray (`--backend ray`, a local cluster the run starts), outputs compared byte for byte; and 10M docs (~2.5 GB of
JSONL) on the local backend, whose peak RSS is the number that matters (goal: at most 2 GiB).

Each run is its own process (`run_python`), so wall time and peak RSS are its own. The corpora are generated
once under bench/out/ (the 1M one is bench_dedup.py's) and reused.
"""
from __future__ import annotations

import json
import tempfile
from pathlib import Path

from bench_dedup import corpus
from bench_ray import same_outputs
from run import Result, run_python

ROOT = Path(__file__).resolve().parent.parent
CLI = "from dataprep.cli import main; main()"
GOAL_MB = 2048


def run() -> list[Result]:
    one_m = corpus()
    ten_m = corpus(ROOT / "bench" / "out" / "dedup_10m.jsonl", docs=10_000_000)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        pipeline = dedup_pipeline(work, one_m, "dedup1m")
        local = dataprep_run(pipeline, work / "local")
        ray = dataprep_run(pipeline, work / "ray", "--backend", "ray")
        equal = same_outputs(work / "local" / "dedup1m", work / "ray" / "dedup1m")
        big = dataprep_run(dedup_pipeline(work, ten_m, "dedup10m"), work / "big")
    return [
        Result("exact dedup of 1,000,000 JSONL docs (read_jsonl → exact_dedup), --backend ray vs local",
               1e6 / ray.seconds, 1e6 / local.seconds, "docs/s", "the local backend",
               notes=f"{ray.seconds:.1f} s vs {local.seconds:.1f} s; driver peak RSS {ray.rss_mb:.0f} MB vs "
                     f"{local.rss_mb:.0f} MB; outputs {'byte-equal' if equal else 'DIFFERENT'}"),
        Result("exact dedup of 10,000,000 JSONL docs (~2.5 GB), local: peak RSS against the 2 GiB goal",
               big.rss_mb, GOAL_MB, "MB", "the goal", higher_is_better=False,
               notes=f"{big.seconds:.0f} s, {1e7 / big.seconds:,.0f} docs/s"),
    ]


def dedup_pipeline(work: Path, data: Path, name: str) -> Path:
    path = work / f"{name}.yaml"
    path.write_text(json.dumps({"name": name, "nodes": {
        "raw": {"uses": "read_jsonl", "with": {"path": str(data), "id_field": "id"}},
        "unique": {"uses": "exact_dedup", "input": "raw"}}}))
    return path


def dataprep_run(pipeline: Path, cache: Path, *extra: str):
    return run_python(["-c", CLI, "run", str(pipeline), "--cache-dir", str(cache), *extra], ROOT)
