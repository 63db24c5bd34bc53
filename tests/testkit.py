"""Small helpers for building inputs, pipelines and tables in tests."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import yaml

from dataprep.schema import CLS

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent


def write_jsonl(path: Path, records) -> Path:
    """Each record is a dict (dumped as JSON), a str (written as is) or bytes (written raw)."""
    chunks = []
    for r in records:
        if isinstance(r, bytes):
            chunks.append(r + b"\n")
        elif isinstance(r, str):
            chunks.append(r.encode() + b"\n")
        else:
            chunks.append(json.dumps(r, ensure_ascii=False).encode() + b"\n")
    Path(path).write_bytes(b"".join(chunks))
    return Path(path)


def write_pipeline(path: Path, nodes: dict, name: str = "p", **top) -> Path:
    doc = {"name": name, "imports": ["stages_for_tests"], **top, "nodes": nodes}
    Path(path).write_text(yaml.safe_dump(doc, sort_keys=False))
    return Path(path)


def cls_table(texts, labels=None, ids=None, **extra) -> pa.Table:
    n = len(texts)
    cols = {
        "id": ids if ids is not None else [f"t:{i + 1}" for i in range(n)],
        "text": list(texts),
        "label": labels if labels is not None else ["a"] * n,
        "lang": ["en"] * n,
        "source": ["t"] * n,
    }
    table = pa.table(cols, schema=CLS)
    for k, v in extra.items():
        table = table.append_column(k, pa.array(v))
    return table


def cli_env() -> dict:
    """Environment for a `dataprep` subprocess: the package and the test stages importable."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(TESTS), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


CLI = [sys.executable, "-c", "from dataprep.cli import main; main()"]


def cli_subprocess(args, cwd, **kw) -> subprocess.Popen:
    return subprocess.Popen([*CLI, *args], cwd=cwd, env=cli_env(), **kw)
