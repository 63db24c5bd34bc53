"""The Ray backend computes the same nodes as the local runner: same keys, same bytes, a cache hit either way.

A local Ray cluster is started once for the module (an explicit temp dir, no dashboard) and shut down after.
"""
from __future__ import annotations

import json
import random
import shutil
import sys
import tempfile
from pathlib import Path

import pytest
from testkit import write_jsonl

ray = pytest.importorskip("ray")

from dataprep.backends.ray import RayRunner  # noqa: E402
from dataprep.dag import parse_pipeline  # noqa: E402
from dataprep.errors import ConfigError  # noqa: E402
from dataprep.runner import Runner  # noqa: E402

TESTS = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def cluster():
    temp = tempfile.mkdtemp(prefix="dp-ray-", dir="/tmp")  # short: Ray's socket paths must fit in 107 bytes
    # workers import the test stages (t_model) as the driver does
    paths = [str(TESTS), str(TESTS.parent)] + [p for p in sys.path if p]
    ray.init(num_cpus=2, include_dashboard=False, _temp_dir=temp, logging_level="ERROR", log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": ":".join(paths)}})
    yield
    ray.shutdown()
    shutil.rmtree(temp, ignore_errors=True)


def corpus(path: Path) -> None:
    """Reviews with copies spread over the whole file (so over several part files), label conflicts among
    them, and a malformed line."""
    rng = random.Random(7)
    rows = []
    for i in range(1200):
        n = rng.randrange(500)
        label = "neg" if n % 3 == 0 else "pos"
        if i % 97 == 0:
            label = "pos" if label == "neg" else "neg"  # a copy that disagrees: a label conflict
        rows.append({"text": f"review {n}", "label": label})
    write_jsonl(path, rows + ["not json"])


PIPELINE = {"name": "onray", "defaults": {"seed": 5}, "imports": ["stages_for_tests"], "nodes": {
    "raw": {"uses": "read_jsonl", "with": {"path": "in.jsonl"}},
    "norm": {"uses": "normalize", "input": "raw"},
    "unique": {"uses": "exact_dedup", "input": "norm", "with": {"conflicts": "keep_majority"}},
    "scored": {"uses": "t_model", "input": "unique"},
    "q": {"uses": "quality_score", "input": "scored"},
    "splits": {"uses": "split", "input": "q", "with": {"val": 0.2, "test": 0.2}},
}}


@pytest.fixture(scope="module")
def both(cluster, tmp_path_factory):
    """The pipeline run locally and on Ray, from the same files, small parts so that inputs span several."""
    work = tmp_path_factory.mktemp("ray")
    corpus(work / "in.jsonl")
    doc = json.loads(json.dumps(PIPELINE))
    doc["nodes"]["raw"]["with"]["path"] = str(work / "in.jsonl")
    pipeline = parse_pipeline(doc, base_dir=work)
    local = Runner(pipeline, work / "local", batch_rows=150, rows_per_part=400)
    local.run()
    remote = RayRunner(pipeline, work / "ray", batch_rows=150, rows_per_part=400)
    remote.run()
    return local, remote, pipeline


def outputs(runner: Runner, node: str) -> dict[str, bytes]:
    """A node's files but the measured ones (stats.json) and the manifest that lists their digests."""
    d = runner.cache(node).dir
    return {p.name: p.read_bytes() for p in sorted(d.iterdir()) if p.name not in ("stats.json", "manifest.json")}


def test_every_node_has_the_same_key_and_bytes_on_ray(both):
    local, remote, pipeline = both
    assert remote.keys == local.keys
    for node in pipeline.nodes:
        assert remote.rejects(node).to_pylist() == local.rejects(node).to_pylist(), node
        assert remote.output(node).to_pylist() == local.output(node).to_pylist(), node
        assert remote.cache(node).manifest()["ledger"] == local.cache(node).manifest()["ledger"], node
        assert outputs(remote, node) == outputs(local, node), node
    assert len(local.cache("norm").parts()) > 1  # the dedup shuffle really had several pieces to join


def test_dedup_on_ray_finds_copies_across_parts_and_names_the_first(both):
    local, remote, _ = both
    rejects = remote.rejects("unique").to_pylist()
    reasons = {r["reason"].split(":")[0] for r in rejects}
    assert reasons == {"duplicate_of", "label_conflict"}
    kept = remote.output("unique").column("id").to_pylist()
    position = {rid: i for i, rid in enumerate(remote.output("norm").column("id").to_pylist())}
    for r in rejects:
        if r["reason"].startswith("duplicate_of:"):
            keeper = r["reason"].removeprefix("duplicate_of:")
            assert keeper in kept and position[keeper] < position[r["id"]]


def test_a_node_computed_on_ray_is_a_cache_hit_locally(both, tmp_path):
    local, remote, pipeline = both
    again = Runner(pipeline, remote.cache_root, batch_rows=150, rows_per_part=400)
    assert {r.status for r in again.plan()} == {"cached"}


@pytest.mark.parametrize("defaults, message", [
    ({"backend": "spark"}, "expected local or ray"),
    ({"backend": "ray", "address": 6379}, "a Ray address"),
])
def test_a_bad_backend_fails_naming_the_key(defaults, message, tmp_path):
    (tmp_path / "x.jsonl").write_text("")
    doc = {"name": "p", "defaults": defaults,
           "nodes": {"raw": {"uses": "read_jsonl", "with": {"path": str(tmp_path / "x.jsonl")}}}}
    with pytest.raises(ConfigError, match=message) as e:
        parse_pipeline(doc)
    assert "defaults." in str(e.value)


def test_the_backend_is_outside_the_keys(tmp_path):
    (tmp_path / "x.jsonl").write_text("")
    doc = {"name": "p", "nodes": {"raw": {"uses": "read_jsonl", "with": {"path": str(tmp_path / "x.jsonl")}}}}
    plain = Runner(parse_pipeline(doc), "unused")
    on_ray = Runner(parse_pipeline({**doc, "defaults": {"backend": "ray"}}), "unused")
    assert plain.keys == on_ray.keys
    assert on_ray.pipeline.execution == {"backend": "ray"}
