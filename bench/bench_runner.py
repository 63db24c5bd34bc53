"""Runner overhead: a no-op rerun of the sample pipeline, and the cost per batch of a trivial stage."""
from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
from run import Result

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "pipelines" / "zh_reviews.yaml"


def run() -> list[Result]:
    return [noop_rerun(), per_batch_overhead()]


def noop_rerun() -> Result:
    """`dataprep run` twice on the sample pipeline: the second run must do no work. Baseline: the cold run."""
    with tempfile.TemporaryDirectory() as cache:
        cmd = [sys.executable, "-c", "from dataprep.cli import main; main()", "run", str(SAMPLE), "--cache-dir", cache]
        cold = _timed(lambda: subprocess.run(cmd, check=True, cwd=ROOT, capture_output=True))
        warm = min(_timed(lambda: subprocess.run(cmd, check=True, cwd=ROOT, capture_output=True)) for _ in range(3))
    return Result("no-op rerun of the sample pipeline (CLI, wall)", warm, cold, "s", "cold first run",
                  higher_is_better=False, notes=f"rerun {warm:.2f} s vs cold {cold:.2f} s")


@dataclass(frozen=True)
class _NoParams:
    pass


def _passthrough(table: pa.Table, params) -> pa.Table:
    return table


def per_batch_overhead(rows: int = 200_000, batch_rows: int = 1_000) -> Result:
    """A stage that returns its batch unchanged, run by the runner (read parquet, validate, ledger, write) vs
    a plain loop that reads the same parquet in batches and writes them back. Reported as batches/s."""
    import pyarrow.parquet as pq

    from dataprep.dag import parse_pipeline
    from dataprep.registry import stage
    from dataprep.runner import Runner

    stage("bench_passthrough", 1, "map", _NoParams)(_passthrough)
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "in.parquet"
        pq.write_table(pa.table({"id": [f"r{i}" for i in range(rows)], "text": ["some text here"] * rows,
                                 "label": ["a", "b"] * (rows // 2)}), src)
        pipeline = parse_pipeline({"name": "bench", "nodes": {
            "raw": {"uses": "read_parquet", "with": {"path": str(src)}},
            "same": {"uses": "bench_passthrough", "input": "raw"}}})
        runner = Runner(pipeline, Path(tmp) / "cache", batch_rows=batch_rows)
        runner.run(until="raw")
        ours = _timed(lambda: runner.run(force=["same"]))
        plain_out = Path(tmp) / "plain.parquet"
        base = _timed(lambda: _plain_loop(runner.cache("raw").parts()[0], plain_out, batch_rows))
    batches = rows / batch_rows
    per_batch_ms = (ours - base) / batches * 1000
    return Result(f"trivial map stage, {rows:,} rows in {batches:,.0f} batches", batches / ours, batches / base,
                  "batches/s", "plain read-call-write loop",
                  notes=f"runner overhead ≈ {per_batch_ms:.2f} ms per batch")


def _plain_loop(src: Path, out: Path, batch_rows: int) -> None:
    import pyarrow.parquet as pq
    f = pq.ParquetFile(src)
    with pq.ParquetWriter(out, f.schema_arrow) as w:
        for batch in f.iter_batches(batch_size=batch_rows):
            w.write_table(_passthrough(pa.Table.from_batches([batch]), None))


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start
