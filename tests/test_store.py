"""A cache root that is a pyarrow.fs URI (dataprep/store.py): entries pushed after each node commits, fetched
when read, verified before they are used; one machine's nodes are another's cache hits.

Two "machines" are two local copies ($DATAPREP_LOCAL_CACHE) of one root. The root is a `file://` URI (pyarrow's
LocalFileSystem) in most tests, and a real S3 endpoint in one: moto's S3 server over HTTP on a local port, spoken
to by pyarrow's own S3 client, as an s3:// bucket would be."""
from __future__ import annotations

import os
import socket
import warnings
from pathlib import Path

import pytest
from click.testing import CliRunner
from testkit import write_jsonl

from dataprep.cli import main
from dataprep.dag import parse_pipeline
from dataprep.errors import CacheError
from dataprep.runner import Runner
from dataprep.store import LOCAL_COPY_ENV

NAME = "remote"


def pipeline(html: bool = True):
    """raw -> clean -> unique, and a tokenizer and tiny LM (build nodes: model directories) beside them."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return parse_pipeline({"name": NAME, "defaults": {"seed": 13}, "nodes": {
            "raw": {"uses": "read_jsonl", "with": {"path": "reviews.jsonl", "lang": "zh"}},
            "clean": {"uses": "normalize", "input": "raw", "with": {"html": html}},
            "unique": {"uses": "exact_dedup", "input": "clean"},
            "tok": {"uses": "train_tokenizer", "input": "unique", "with": {"vocab_size": 320}},
            "lm": {"uses": "pretrain_lm", "input": "unique",
                   "with": {"tokenizer": {"node": "tok"}, "n_embd": 16, "n_head": 2, "n_layer": 1, "max_steps": 3}},
            "scored": {"uses": "ppl_score", "input": "unique", "with": {"model": {"node": "lm"}}},
        }})


@pytest.fixture
def work(tmp_path, monkeypatch):
    """A working directory with the reviews, and a function that makes this process one 'machine' (its own
    local copy of the root)."""
    monkeypatch.chdir(tmp_path)
    rows = [{"text": f"这家酒店第{i % 40}次入住很好", "label": "pos" if i % 40 % 3 else "neg"} for i in range(120)]
    write_jsonl(tmp_path / "reviews.jsonl", rows + ["{not json"])

    def machine(name: str) -> Path:
        monkeypatch.setenv(LOCAL_COPY_ENV, str(tmp_path / name))
        return tmp_path / name
    return tmp_path, machine


def entries(local: Path) -> set[str]:
    """The nodes that have a committed entry in one local copy."""
    return {p.parent.parent.name for p in (local / NAME).glob("*/*/manifest.json")}


def files_under(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_one_machines_nodes_are_anothers_hits_fetched_only_when_read(work):
    tmp, machine = work
    root = f"file://{tmp / 'shared'}"
    a = machine("a")
    reports = Runner(pipeline(), root).run()
    assert {r.status for r in reports} == {"ran"}
    # the remote entries are the local ones, file for file and byte for byte (stats.json included)
    assert files_under(tmp / "shared" / NAME) == {k: v for k, v in files_under(a / NAME).items()
                                                  if not k.endswith(".lock")}
    b = machine("b")
    runner = Runner(pipeline(), root)
    assert [r.status for r in runner.plan()] == ["cached"] * 6
    assert [r.ledger.to_dict() for r in runner.plan()] == [r.ledger.to_dict() for r in reports]
    assert all(r.status == "cached" for r in runner.run())
    assert entries(b) == set()  # nothing downloaded: nothing was read
    assert runner.output("unique").equals(Runner(pipeline(), str(a)).output("unique"))
    assert entries(b) == {"unique"}


def test_a_change_downloads_only_what_the_changed_nodes_read_and_pushes_what_they_made(work):
    tmp, machine = work
    root = f"file://{tmp / 'shared'}"
    machine("a")
    Runner(pipeline(), root).run()
    b = machine("b")
    reports = Runner(pipeline(html=False), root).run()
    ran = {r.node for r in reports if r.status == "ran"}
    assert ran == {"clean", "unique", "tok", "lm", "scored"}  # the reader's entry is reused
    assert entries(b) == ran | {"raw"}  # `raw` fetched as clean's input
    c = machine("c")
    assert all(r.status == "cached" for r in Runner(pipeline(html=False), root).run())  # b's pushes are hits
    assert entries(c) == set()


def test_a_model_directory_a_node_reads_is_fetched_with_it(work):
    tmp, machine = work
    root = f"file://{tmp / 'shared'}"
    machine("a")
    Runner(pipeline(), root).run(until="lm")
    b = machine("b")
    reports = Runner(pipeline(), root).run()
    assert [r.node for r in reports if r.status == "ran"] == ["scored"]
    assert entries(b) == {"unique", "lm", "scored"}  # scored read unique's rows and lm's model directory
    assert (b / NAME / "lm").glob("*/model/config.json")


def test_a_damaged_remote_entry_is_named_and_never_read(work):
    tmp, machine = work
    root = f"file://{tmp / 'shared'}"
    machine("a")
    Runner(pipeline(), root).run(until="unique")
    part = next((tmp / "shared" / NAME / "unique").glob("*/part-00000.parquet"))
    data = bytearray(part.read_bytes())
    data[len(data) // 2] ^= 0xFF
    part.write_bytes(bytes(data))
    b = machine("b")
    runner = Runner(pipeline(), root)
    with pytest.raises(CacheError, match=r"nodes.unique: remote cache entry .* corrupt \(part-00000.parquet: "
                                         r"checksum mismatch\); not used"):
        runner.output("unique")
    assert not (b / NAME / "unique").exists() or not any((b / NAME / "unique").iterdir())  # no scratch left


def test_a_push_that_did_not_finish_is_absent_and_recomputed(work):
    tmp, machine = work
    root = f"file://{tmp / 'shared'}"
    machine("a")
    Runner(pipeline(), root).run(until="unique")
    next((tmp / "shared" / NAME / "unique").glob("*/manifest.json")).unlink()  # killed before its manifest
    machine("b")
    runner = Runner(pipeline(), root)
    assert [r.status for r in runner.plan()][:3] == ["cached", "cached", "missing"]
    reports = runner.run(until="unique")
    assert [r.status for r in reports] == ["cached", "cached", "ran"]
    assert next((tmp / "shared" / NAME / "unique").glob("*/manifest.json")).is_file()


def test_a_damaged_local_copy_is_fetched_again(work, capsys):
    tmp, machine = work
    root = f"file://{tmp / 'shared'}"
    a = machine("a")
    runner = Runner(pipeline(), root)
    runner.run(until="unique")
    part = next((a / NAME / "clean").glob("*/part-00000.parquet"))
    good = part.read_bytes()
    part.write_bytes(bytes(b ^ 0xFF if i == len(good) // 2 else b for i, b in enumerate(good)))
    assert [r.status for r in runner.run(until="unique")] == ["cached"] * 3
    assert "cache entry corrupt (part-00000.parquet: checksum mismatch); fetching it again" in capsys.readouterr().err
    assert part.read_bytes() == good


def test_the_cli_takes_a_uri_and_refuses_one_it_cannot_open(work):
    tmp, machine = work
    (tmp / "p.yaml").write_text(
        "name: remote\nnodes:\n  raw: {uses: read_jsonl, with: {path: reviews.jsonl, lang: zh}}\n"
        "  clean: {uses: normalize, input: raw}\n", encoding="utf-8")
    machine("a")
    uri = f"file://{tmp / 'shared'}"
    result = CliRunner().invoke(main, ["run", "p.yaml", "--cache-dir", uri])
    assert result.exit_code == 0, result.output
    machine("b")
    shown = CliRunner().invoke(main, ["show", "p.yaml", "--cache-dir", uri])
    assert shown.exit_code == 0 and "clean" in shown.output and "120" in shown.output
    bad = CliRunner().invoke(main, ["plan", "p.yaml", "--cache-dir", "nosuchfs://bucket/x"])
    assert bad.exit_code != 0 and "pyarrow.fs cannot open it" in bad.output
    assert len(bad.output.strip().splitlines()) == 1


# --- a real S3 endpoint ---

@pytest.fixture
def s3(monkeypatch):
    """moto's S3 server on a free local port (threaded, stopped after the test) and a bucket in it; the URI
    pyarrow opens it by."""
    server_mod = pytest.importorskip("moto.server", reason="moto[server] is in the dev extra")
    import pyarrow.fs as pafs
    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                        ("AWS_DEFAULT_REGION", "us-east-1"), ("AWS_EC2_METADATA_DISABLED", "true")):
        monkeypatch.setenv(name, value)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = server_mod.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        uri = f"s3://dataprep-test/cache?endpoint_override=127.0.0.1:{port}&scheme=http&region=us-east-1"
        admin, _ = pafs.FileSystem.from_uri(uri + "&allow_bucket_creation=true")
        admin.create_dir("dataprep-test")  # the bucket; the cache itself never creates one
        fs, _ = pafs.FileSystem.from_uri(uri)
        yield uri, fs
    finally:
        server.stop()


def test_an_s3_root_round_trips_entries_byte_for_byte(work, s3):
    tmp, machine = work
    uri, fs = s3
    a = machine("a")
    Runner(pipeline(), uri).run(until="unique")
    for local in sorted((a / NAME / "unique").glob("*/*")):
        remote = f"dataprep-test/cache/{NAME}/unique/{local.parent.name}/{local.name}"
        with fs.open_input_stream(remote) as f:
            assert f.read() == local.read_bytes(), local.name
    b = machine("b")
    runner = Runner(pipeline(), uri)
    assert [r.status for r in runner.run(until="unique")] == ["cached"] * 3
    assert runner.output("unique").equals(Runner(pipeline(), str(a)).output("unique"))
    assert entries(b) == {"unique"}
    assert os.environ[LOCAL_COPY_ENV] == str(b)
