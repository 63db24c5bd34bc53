"""The cache never writes or deletes outside its root, two runs of one pipeline never trample each other, and a
damaged entry is reported and recomputed, never trusted."""
from __future__ import annotations

import json
import os
import re
import subprocess
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from testkit import CLI, cli_env, write_jsonl, write_pipeline

from dataprep.cache import NodeCache, pipeline_lock
from dataprep.cli import main
from dataprep.dag import load_pipeline
from dataprep.errors import CacheError
from dataprep.runner import Runner

KEY = "0123456789abcdef"


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def snapshot(root: Path) -> dict[str, bytes]:
    """Every committed file under a cache root (parts, rejects, manifests), by relative path."""
    return {str(f.relative_to(root)): f.read_bytes() for f in sorted(root.glob("*/*/*/*"))
            if f.is_file() and f.name != "stats.json"}


# --- nothing outside the root ---

@pytest.mark.parametrize("pipeline, node", [("..", "raw"), ("p", ".."), ("../x", "raw"), ("/abs", "raw"),
                                            ("p", "a/b"), ("p", "")])
def test_node_cache_refuses_names_that_leave_the_root(workdir, pipeline, node):
    with pytest.raises(CacheError, match=r"^refusing cache path component "):
        NodeCache("c", pipeline, node, KEY)


def test_node_cache_refuses_a_key_that_is_not_a_key(workdir):
    with pytest.raises(CacheError, match=r"^refusing cache key '\.\./x'"):
        NodeCache("c", "p", "raw", "../x")


def test_node_cache_refuses_a_symlink_out_of_the_root(workdir):
    (workdir / "outside").mkdir()
    (workdir / "c").mkdir()
    (workdir / "c" / "p").symlink_to(workdir / "outside")
    with pytest.raises(CacheError) as e:
        NodeCache("c", "p", "raw", KEY)
    assert str(e.value) == "cache path c/p/raw resolves outside the cache root c; refusing to use it (a symlink?)"


def test_a_cache_root_that_is_a_symlink_is_followed(small_pipeline, workdir):
    (workdir / "elsewhere").mkdir()
    (workdir / "c").symlink_to(workdir / "elsewhere")
    assert invoke("run", small_pipeline, "--cache-dir", "c").exit_code == 0
    assert len(list((workdir / "elsewhere" / "p").glob("*/*/manifest.json"))) == 4


def test_run_through_a_symlink_out_of_the_root_fails_in_one_line(small_pipeline, workdir):
    (workdir / "outside").mkdir()
    (workdir / "c").mkdir()
    (workdir / "c" / "p").symlink_to(workdir / "outside")
    for command in ("run", "clean"):
        result = invoke(command, small_pipeline, "--cache-dir", "c")
        assert result.exit_code == 1, command
        assert result.output == ("Error: cache path c/p resolves outside the cache root c; refusing to use it "
                                 "(a symlink?)\n"), command
    assert not any((workdir / "outside").iterdir())


def test_clean_of_a_pipeline_named_dotdot_fails_before_it_deletes_anything(workdir):
    """The original bug: `name: ..` made clean remove the siblings of the cache directory."""
    write_jsonl(workdir / "in.jsonl", [{"text": "a", "label": "x"}])
    (workdir / "p.yaml").write_text("name: ..\nnodes:\n  raw: {uses: read_jsonl, with: {path: in.jsonl}}\n")
    (workdir / "sibling" / "sub").mkdir(parents=True)
    for command in ("run", "clean"):
        result = invoke(command, "p.yaml", "--cache-dir", "runs", "--all" if command == "clean" else "--until=raw")
        assert result.exit_code == 1, result.output
        assert result.output == ("Error: p.yaml: name: '..' is not a valid pipeline name (1-64 of A-Z a-z 0-9 _ . -, "
                                 "starting with a letter or digit, no '..')\n")
    assert (workdir / "sibling" / "sub").is_dir()
    assert not (workdir / "raw").exists()


def test_clean_removes_only_what_it_can_prove_it_wrote(small_pipeline, workdir):
    assert invoke("run", small_pipeline, "--cache-dir", "c").exit_code == 0
    root = workdir / "c" / "p"
    foreign = [root / "raw" / "notes", root / "raw" / KEY, root / "up" / f"{KEY}x", root / "mine"]
    for d in foreign:
        d.mkdir()
        (d / "f").write_text("keep me")
    (root / "raw" / "fedcba9876543210").mkdir()
    (root / "raw" / "fedcba9876543210" / "manifest.json").write_text('{"hello": "world"}')  # not ours
    (workdir / "outside").mkdir()
    (workdir / "outside" / "manifest.json").write_text(json.dumps({"key": "aaaaaaaaaaaaaaaa"}))
    (root / "raw" / "aaaaaaaaaaaaaaaa").symlink_to(workdir / "outside")  # named like an entry, but a link
    (root / "up" / f"{KEY}.partial-4242").mkdir()  # a killed run's scratch directory: ours
    result = invoke("clean", small_pipeline, "--cache-dir", "c", "--all")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        f"removed 4 cache entries and 1 leftover under {Path('c') / 'p'}",
        f"left 6 entries under {Path('c') / 'p'} alone: dataprep did not write them (or their manifest is "
        "unreadable)"]
    assert all((d / "f").read_text() == "keep me" for d in foreign)
    assert (workdir / "outside" / "manifest.json").exists()
    assert not (root / "up" / f"{KEY}.partial-4242").exists()


def test_clean_when_there_is_no_cache_creates_nothing(small_pipeline, workdir):
    result = invoke("clean", small_pipeline, "--cache-dir", "nowhere")
    assert result.exit_code == 0
    assert result.output == f"nothing to clean: no cache at {Path('nowhere') / 'p'}\n"
    assert not (workdir / "nowhere").exists()


def test_runner_refuses_a_cache_root_that_is_a_file(small_pipeline, workdir):
    (workdir / "f.txt").write_text("x")
    with pytest.raises(CacheError, match=r"^cache root f\.txt is not a directory$"):
        Runner(load_pipeline(small_pipeline), "f.txt").run()


# --- two runs at once ---

def hold_lock(workdir: Path, seconds: float) -> subprocess.Popen:
    """Another process holding pipeline p's lock under c/ for `seconds`; returns once it holds it."""
    code = ("import sys, time\nfrom dataprep.cache import pipeline_lock\n"
            f"with pipeline_lock('c', 'p'):\n    print('held', flush=True)\n    time.sleep({seconds})\n")
    proc = subprocess.Popen([CLI[0], "-c", code], cwd=workdir, env=cli_env(), stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_run_waits_for_the_run_that_holds_the_pipeline_and_says_so_once(small_pipeline, workdir):
    holder = hold_lock(workdir, 1.0)
    try:
        started = time.monotonic()
        result = invoke("run", small_pipeline, "--cache-dir", "c")
        assert time.monotonic() - started > 0.5
    finally:
        holder.wait(timeout=30)
    assert result.exit_code == 0, result.output
    assert result.output.count("waiting for another run") == 1
    assert f"waiting for another run of p (pid {holder.pid})\n" in result.output


def test_clean_does_not_wait_for_a_run_it_fails_in_one_line(small_pipeline, workdir):
    assert invoke("run", small_pipeline, "--cache-dir", "c").exit_code == 0
    holder = hold_lock(workdir, 30)
    try:
        result = invoke("clean", small_pipeline, "--cache-dir", "c", "--all")
    finally:
        holder.kill()
        holder.wait()
    assert result.exit_code == 1
    assert result.output == (f"Error: another run of p (pid {holder.pid}) is using {Path('c') / 'p'}; try again "
                             "when it ends\n")
    assert len(list((workdir / "c" / "p").glob("*/*/manifest.json"))) == 4


@pytest.fixture
def slow_pipeline(workdir) -> Path:
    write_jsonl(workdir / "in.jsonl", [{"text": f"review {i}", "label": "pos" if i % 3 else "neg"}
                                       for i in range(400)] + ["{broken"])
    return write_pipeline(workdir / "p.yaml", {
        "raw": {"uses": "read_jsonl", "with": {"path": "in.jsonl", "batch_rows": 100}},
        "slow": {"uses": "t_slow", "input": "raw", "with": {"delay": 0.1, "chunk_rows": 100}},
        "kept": {"uses": "t_min_len", "input": "slow", "with": {"min_len": 10}}})


def test_two_runs_at_once_both_succeed_with_the_same_bytes(slow_pipeline, workdir):
    procs = [subprocess.Popen([*CLI, "run", "p.yaml", "--cache-dir", "c"], cwd=workdir, env=cli_env(),
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    errs = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errs
    assert sum("waiting for another run of p (pid " in e for e in errs) <= 1
    assert "Traceback" not in "".join(errs)
    assert not list((workdir / "c" / "p").glob("*/*.partial-*"))
    Runner(load_pipeline(slow_pipeline), workdir / "alone").run()
    assert snapshot(workdir / "c") == snapshot(workdir / "alone")
    assert len(snapshot(workdir / "c")) == 9


# --- damaged entries ---

def part(root: Path, node: str) -> Path:
    return next((root / "p" / node).glob("*/part-00000.parquet"))


def truncate(path: Path) -> str:
    size = path.stat().st_size
    with open(path, "r+b") as f:
        f.truncate(size // 2)
    return f"{path.name}: size {size // 2}, expected {size}"


def flip_a_byte(path: Path) -> str:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    return f"{path.name}: checksum mismatch"


def empty(path: Path) -> str:
    path.write_bytes(b"")
    return "manifest.json: empty"


def delete(path: Path) -> str:
    path.unlink()
    return f"{path.name}: missing"


def older_format(path: Path) -> str:
    manifest = json.loads(path.read_text())
    del manifest["files"], manifest["format"]
    path.write_text(json.dumps(manifest))
    return "manifest.json: written by an older dataprep, without checksums"


def not_json(path: Path) -> str:
    path.write_text('{"key": ')
    return "manifest.json: not valid JSON"


@pytest.mark.parametrize("node, target, damage", [
    ("up", "part-00000.parquet", truncate),
    ("raw", "manifest.json", empty),
    ("kept", "part-00000.parquet", flip_a_byte),
    ("raw", "rejects.parquet", delete),
    ("side", "manifest.json", older_format),
    ("up", "manifest.json", not_json),
])
def test_a_damaged_entry_is_reported_and_recomputed_to_the_same_bytes(small_pipeline, workdir, node, target,
                                                                      damage):
    assert invoke("run", small_pipeline, "--cache-dir", "c").exit_code == 0
    before = snapshot(workdir / "c")
    reason = damage(next((workdir / "c" / "p" / node).glob(f"*/{target}")))
    plan = invoke("plan", small_pipeline, "--cache-dir", "c")
    assert plan.exit_code == 0, plan.output
    assert f"nodes.{node}: cache entry corrupt ({reason}); run will recompute it\n" in plan.output
    assert re.search(rf"^{node}\s.*will run$", plan.output, re.MULTILINE)
    assert plan.output.count("will run") == 1  # only the damaged node: its key, and so its dependents', is the same
    run = invoke("run", small_pipeline, "--cache-dir", "c")
    assert run.exit_code == 0, run.output
    assert f"nodes.{node}: cache entry corrupt ({reason}); recomputing\n" in run.output
    assert "p: 1 node(s) ran, 3 cached" in run.output
    assert snapshot(workdir / "c") == before


def test_show_and_path_on_a_damaged_entry_say_so_in_one_line(small_pipeline, workdir):
    assert invoke("run", small_pipeline, "--cache-dir", "c").exit_code == 0
    reason = truncate(part(workdir / "c", "up"))
    shown = invoke("show", small_pipeline, "--cache-dir", "c")
    assert shown.exit_code == 0
    assert f"nodes.up: cache entry corrupt ({reason}); run will recompute it\n" in shown.output
    assert re.search(r"^up\s+t_upper\s+corrupt\s*$", shown.output, re.MULTILINE)
    for args in (["path", small_pipeline, "up"], ["show", small_pipeline, "--rejects", "up"]):
        result = invoke(*args, "--cache-dir", "c")
        assert result.exit_code == 1
        assert result.output == f"Error: nodes.up: cache entry corrupt ({reason}); run the pipeline to recompute it\n"


def test_the_manifest_records_size_and_checksum_of_every_file_it_vouches_for(small_pipeline, workdir):
    runner = Runner(load_pipeline(small_pipeline), "c")
    runner.run()
    entry = runner.cache("kept").dir
    manifest = json.loads((entry / "manifest.json").read_text())
    assert sorted(manifest["files"]) == ["part-00000.parquet", "rejects.parquet"]
    for name, meta in manifest["files"].items():
        assert meta["size"] == (entry / name).stat().st_size
        assert re.fullmatch(r"[0-9a-f]{32}", meta["xxh3"])
    assert manifest["format"] == 2


def test_a_damaged_input_is_recomputed_before_a_node_reads_it(small_pipeline, workdir):
    runner = Runner(load_pipeline(small_pipeline), "c")
    runner.run(until="up")
    flip_a_byte(part(workdir / "c", "raw"))
    statuses = {r.node: r.status for r in Runner(load_pipeline(small_pipeline), "c").run()}
    assert statuses == {"raw": "ran", "up": "cached", "kept": "ran", "side": "ran"}


def test_a_scratch_directory_of_a_live_run_is_not_removed(small_pipeline, workdir):
    """Leftovers are removed only by the holder of the pipeline lock: no other live run can own them."""
    runner = Runner(load_pipeline(small_pipeline), "c")
    cache = runner.cache("raw")
    with pytest.raises(CacheError, match="without the lock of pipeline p"):
        cache.begin()
    with pipeline_lock("c", "p"):
        scratch = cache.begin()
    assert scratch.name == f"{runner.keys['raw']}.partial-{os.getpid()}"
