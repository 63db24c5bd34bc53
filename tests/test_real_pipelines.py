"""The real-dataset pipelines (pipelines/sst2.yaml, tnews.yaml, weibo_ner.yaml) over ../shared/datasets (or
$DATAPREP_SHARED): each loads as a valid DAG, and its cheap prefix — readers, preparation, train-only dedup and
sampling, everything before the models — keeps every official validation and test row, in its split, and
trains on rows of the training file only. Skipped when the shared folder is absent; the full runs through
the adapters are `dataprep run pipelines/NAME.yaml` (minutes each)."""
from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest
import yaml
from testkit import ROOT

from dataprep.dag import load_pipeline, parse_pipeline
from dataprep.runner import Runner

# The pipelines name their files as ../shared/datasets/..., relative to the repository root (where make and
# the README run dataprep); the tests find the data where DATAPREP_SHARED says, as tests/test_shared_datasets.py.
IN_YAML = "../shared/datasets/"
SHARED = Path(os.environ.get("DATAPREP_SHARED") or ROOT.parent / "shared" / "datasets")
pytestmark = pytest.mark.skipif(not SHARED.is_dir(), reason=f"shared datasets not found at {SHARED}")

# pipeline -> official rows per split (SOURCE.md of each dataset) and the stage that prepares rows
PIPELINES = {
    "sst2": ({"train": 60_614, "validation": 6_735, "test": 872}, "normalize"),
    "tnews": ({"train": 1_185, "validation": 1_098, "test": 2_010}, "normalize"),
    "weibo_ner": ({"train": 1_350, "validation": 270, "test": 270}, "to_bio2"),
}
READERS = {"train": "train_raw", "validation": "dev_raw", "test": "test_raw"}


def pipeline_doc(name: str) -> dict:
    """The pipeline file as a document, its shared-data paths pointed at SHARED."""
    doc = yaml.safe_load((ROOT / "pipelines" / f"{name}.yaml").read_text(encoding="utf-8"))
    for node in doc["nodes"].values():
        path = (node.get("with") or {}).get("path", "")
        if path.startswith(IN_YAML):
            node["with"]["path"] = str(SHARED / path[len(IN_YAML):])
    return doc


def adapter_of(pipeline) -> str:
    [name] = [n for n, node in pipeline.nodes.items() if node.stage.name == "train_lora"]
    return name


@pytest.mark.parametrize("name", PIPELINES)
def test_the_pipeline_is_a_valid_dag_whose_adapter_reads_official_splits(name, tmp_path):
    pipeline = parse_pipeline(pipeline_doc(name))
    counts, prepare = PIPELINES[name]
    readers = {split: pipeline.nodes[node] for split, node in READERS.items()}
    assert {split: node.params.split_as for split, node in readers.items()} == {s: s for s in counts}
    # every reader's split has one preparation node, and the train and evaluation ones prepare alike
    prepared = [node for node in pipeline.nodes.values() if node.stage.name == prepare
                and set(node.inputs) & set(READERS.values())]
    assert sorted(i for node in prepared for i in node.inputs) == sorted(READERS.values())
    assert len({repr(node.params) for node in prepared}) == 1, "train and evaluation rows prepared differently"
    # keys: the adapter's depends on the test file's bytes (through its reader), so new test data retrains it
    keys = Runner(pipeline, tmp_path / "runs").keys
    assert len(set(keys.values())) == len(keys) == len(pipeline.nodes)
    assert READERS["test"] in pipeline.ancestors(adapter_of(pipeline))


@pytest.mark.parametrize("name", PIPELINES)
def test_the_adapter_gets_every_official_evaluation_row_and_trains_on_the_train_file_only(name, tmp_path):
    pipeline = parse_pipeline(pipeline_doc(name))
    runner = Runner(pipeline, tmp_path / "runs")
    adapter = adapter_of(pipeline)
    inputs = pipeline.nodes[adapter].inputs
    for node in inputs:
        runner.run(until=node)
    rows = pa.concat_tables([runner.output(node).select(["id", "split"]) for node in inputs],
                            promote_options="permissive")
    counts, _ = PIPELINES[name]
    for split, reader in READERS.items():
        official = runner.output(reader)
        assert official.num_rows == counts[split]  # the reader rejected nothing
        assert pc.all(pc.equal(official["split"], split)).as_py()
        got = rows.filter(pc.equal(rows["split"], split))["id"].to_pylist()
        if split == "train":
            assert 0 < len(got) <= counts[split] and set(got) <= set(official["id"].to_pylist())
        else:  # all of them, once each: no dedup, filter or sample reached an evaluation row
            assert sorted(got) == sorted(official["id"].to_pylist()), f"{split} rows lost or repeated"


def test_the_yaml_paths_resolve_from_the_repository_root_when_shared_is_beside_it(monkeypatch):
    """What `make train PIPELINE=pipelines/sst2.yaml` sees: the paths as written, from the repository root."""
    if not (ROOT.parent / "shared" / "datasets").is_dir():
        pytest.skip("the shared datasets are not beside the repository (DATAPREP_SHARED points elsewhere)")
    monkeypatch.chdir(ROOT)
    for name in PIPELINES:
        assert adapter_of(load_pipeline(f"pipelines/{name}.yaml")) == "adapter"
