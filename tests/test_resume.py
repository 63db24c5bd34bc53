"""A run killed in the middle of a node resumes: the node has no manifest, the rerun finishes it, and the result
is byte for byte what an uninterrupted run writes."""
from __future__ import annotations

import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
from testkit import CLI, cli_env, cli_subprocess, write_jsonl, write_pipeline

from dataprep.dag import load_pipeline
from dataprep.runner import Runner

ROWS = 3000


@pytest.fixture
def slow_pipeline(workdir) -> Path:
    records = [{"text": f"review number {i}", "label": "pos" if i % 3 else "neg"} for i in range(ROWS)]
    records[10] = "{broken"  # so rejects.parquet holds something
    write_jsonl(workdir / "in.jsonl", records)
    return write_pipeline(workdir / "p.yaml", {
        "raw": {"uses": "read_jsonl", "with": {"path": "in.jsonl", "batch_rows": 250}},
        # ~30 chunks x 0.05 s: the node takes 1.5 s, long enough to be killed in the middle
        "slow": {"uses": "t_slow", "input": "raw", "with": {"delay": 0.05, "chunk_rows": 100}},
        "kept": {"uses": "t_min_len", "input": "slow", "with": {"min_len": 17}},
    })


def committed_files(cache: Path) -> dict[str, bytes]:
    """Every part, rejects file and manifest under a cache root, by path relative to it."""
    files = {}
    for pattern in ("*/*/*/part-*.parquet", "*/*/*/rejects.parquet", "*/*/*/manifest.json"):
        for f in cache.glob(pattern):
            files[str(f.relative_to(cache))] = f.read_bytes()
    return files


def test_killed_run_resumes_to_the_same_bytes(slow_pipeline, workdir, monkeypatch):
    marker = workdir / "slow-started"
    monkeypatch.setenv("DATAPREP_TEST_MARKER", str(marker))  # t_slow touches it after its first chunk
    proc = cli_subprocess(["run", "p.yaml", "--cache-dir", "killed"], cwd=workdir,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while not marker.exists():
            if proc.poll() is not None:
                pytest.fail(f"the run ended before the slow node started: {proc.stderr.read().decode()}")
            if time.monotonic() > deadline:
                pytest.fail("the slow node never started")
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=10) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()
    monkeypatch.delenv("DATAPREP_TEST_MARKER")

    killed = workdir / "killed" / "p"
    assert list(killed.glob("raw/*/manifest.json")), "the source finished before the kill and stays committed"
    assert not list(killed.glob("slow/*/manifest.json")), "a killed node must not look finished"
    assert list(killed.glob("slow/*.partial-*")), "the killed node was mid-write"
    assert not (killed / "kept").exists() or not list(killed.glob("kept/*/manifest.json"))

    rerun = subprocess.run([*CLI, "run", "p.yaml", "--cache-dir", "killed"], cwd=workdir, env=cli_env(),
                           capture_output=True, text=True, timeout=60, check=False)
    assert rerun.returncode == 0, rerun.stderr
    assert re.search(r"^raw\s+cached", rerun.stderr, re.MULTILINE)
    assert re.search(r"^slow\s+ran", rerun.stderr, re.MULTILINE)
    assert not list(killed.glob("*/*.partial-*")), "the rerun cleans up the killed run's scratch directory"

    Runner(load_pipeline(slow_pipeline), workdir / "clean").run()  # uninterrupted, in this process
    resumed, clean = committed_files(workdir / "killed"), committed_files(workdir / "clean")
    assert len(clean) == 9  # three nodes x (one part, rejects, manifest)
    assert resumed.keys() == clean.keys()
    for name in clean:
        assert resumed[name] == clean[name], name
