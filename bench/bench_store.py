"""A cache root in an object store (dataprep/store.py) against what a user would otherwise do, in the same run:
an S3 endpoint (moto's server, on a local port, in this process) and a cleaning pipeline (normalize →
exact_dedup) on generated docs, each command in its own process.

- push: `dataprep run --cache-dir s3://…` (commit locally, then upload every entry, manifest last) against the
  same run on a local cache directory: what the upload costs.
- fetch: on a fresh local copy, reading the last node's rows through the store (download into scratch, check
  every file's size and xxh3-128, commit, read) against `pyarrow.fs.copy_files` of that entry's directory and
  `pq.read_table` of its parts (a download by hand, nothing verified).

moto keeps objects in memory in one Python process, so its throughput is far below a real object store's: the
ratios say what dataprep adds to the same transfers, not how fast S3 is.
"""
from __future__ import annotations

import json
import os
import socket
import tempfile
from pathlib import Path

from bench_ray import DOCS, corpus
from run import Result, run_python

ROOT = Path(__file__).resolve().parent.parent
CLI = "from dataprep.cli import main; main()"
BUCKET = "bench"

FETCH = """
import sys
from dataprep.dag import load_pipeline
from dataprep.runner import Runner
table = Runner(load_pipeline(sys.argv[1]), sys.argv[2]).output("unique")
print(table.num_rows)
"""

COPY = """
import sys, glob, os, pyarrow.fs as pafs, pyarrow.parquet as pq, pyarrow as pa
fs, base = pafs.FileSystem.from_uri(sys.argv[1])
os.makedirs(sys.argv[2])
pafs.copy_files(base, sys.argv[2], source_filesystem=fs, destination_filesystem=pafs.LocalFileSystem())
table = pa.concat_tables([pq.read_table(p) for p in sorted(glob.glob(sys.argv[2] + "/part-*.parquet"))])
print(table.num_rows)
"""


def run() -> list[Result]:
    try:
        from moto.server import ThreadedMotoServer
    except ImportError:
        return []  # moto[server] comes with the dev extra
    os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1",
                      AWS_EC2_METADATA_DISABLED="true")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=_free_port(), verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        return _measure(f"s3://{BUCKET}/cache?endpoint_override={host}:{port}&scheme=http&region=us-east-1")
    finally:
        server.stop()


def _measure(uri: str) -> list[Result]:
    import pyarrow.fs as pafs
    admin, _ = pafs.FileSystem.from_uri(uri + "&allow_bucket_creation=true")
    admin.create_dir(BUCKET)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        corpus(work / "docs.jsonl")
        pipeline = work / "clean.yaml"
        pipeline.write_text(json.dumps({"name": "clean", "nodes": {
            "raw": {"uses": "read_jsonl", "with": {"path": str(work / "docs.jsonl")}},
            "norm": {"uses": "normalize", "input": "raw"},
            "unique": {"uses": "exact_dedup", "input": "norm"}}}))
        local = run_python(["-c", CLI, "run", str(pipeline), "--cache-dir", str(work / "local")], ROOT)
        os.environ["DATAPREP_LOCAL_CACHE"] = str(work / "copy-a")
        pushed = run_python(["-c", CLI, "run", str(pipeline), "--cache-dir", uri], ROOT)
        entry = next((work / "copy-a" / "clean" / "unique").glob("*/manifest.json")).parent
        size = sum(p.stat().st_size for p in entry.rglob("*") if p.is_file())
        os.environ["DATAPREP_LOCAL_CACHE"] = str(work / "copy-b")
        fetched = run_python(["-c", FETCH, str(pipeline), uri], ROOT)
        base, _, query = uri.partition("?")
        copied = run_python(["-c", COPY, f"{base}/clean/unique/{entry.name}?{query}", str(work / "by-hand")], ROOT)
        del os.environ["DATAPREP_LOCAL_CACHE"]
        rows_equal = fetched.stdout.strip() == copied.stdout.strip()
    return [
        Result(f"cleaning pipeline on {DOCS:,} docs (normalize, exact_dedup), cache root s3:// (moto) vs a local "
               "directory", DOCS / pushed.seconds, DOCS / local.seconds, "docs/s", "a local cache directory",
               notes=f"{pushed.seconds:.1f} s vs {local.seconds:.1f} s: commit locally, then upload three entries "
                     "(manifest last)"),
        Result(f"fetch the last node's entry ({size / 1e6:.1f} MB) from s3:// (moto) into a fresh local copy and "
               "read its rows", size / 1e6 / fetched.seconds, size / 1e6 / copied.seconds, "MB/s",
               "pyarrow.fs.copy_files + pq.read_table (nothing verified)",
               notes=f"{fetched.seconds:.1f} s vs {copied.seconds:.1f} s (each a fresh process, imports included); "
                     f"every file's size and xxh3-128 checked before use; rows {'equal' if rows_equal else 'DIFFER'}")]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
