"""Shared fixtures. tests/ goes on sys.path so pipelines can `imports: [stages_for_tests]` and tests can import
`testkit`; the test stages are registered once, here, before any test module needs them."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

import stages_for_tests  # noqa: F401,E402  (registers the t_* stages)
from testkit import write_jsonl, write_pipeline  # noqa: E402


def pytest_collection_modifyitems(config, items):
    """`@pytest.mark.slow` tests (full runs over ../shared/datasets) run only with DATAPREP_SLOW=1."""
    if os.environ.get("DATAPREP_SLOW") == "1":
        return
    skip = pytest.mark.skip(reason="slow: set DATAPREP_SLOW=1 to run it")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def workdir(tmp_path, monkeypatch) -> Path:
    """A fresh working directory: relative paths in pipelines resolve here, as they do for the CLI."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


# Six records: four good ones, one malformed line, one with a short text ("ok") for the length filter.
SMALL_RECORDS = [
    {"text": "good movie", "label": "pos"},
    {"text": "bad movie", "label": "neg"},
    "{not json",
    {"text": "ok", "label": "pos"},
    {"text": "fine film", "label": "neg"},
    {"text": "loved it", "label": "pos"},
]


@pytest.fixture
def small_pipeline(workdir) -> Path:
    """raw -> up -> kept, and raw -> side: enough shape to see what reruns when something changes."""
    write_jsonl(workdir / "in.jsonl", SMALL_RECORDS)
    return write_pipeline(workdir / "p.yaml", {
        "raw": {"uses": "read_jsonl", "with": {"path": "in.jsonl"}},
        "up": {"uses": "t_upper", "input": "raw"},
        "kept": {"uses": "t_min_len", "input": "up", "with": {"min_len": 3}},
        "side": {"uses": "t_tag", "input": "raw"},
    })
