"""Node keys and the on-disk cache: `<root>/<pipeline>/<node>/<key>/` holding parts, rejects, stats and, last,
the manifest.

Parts are Parquet by default (compact, readable by anything) or Arrow IPC files: uncompressed and memory-mapped,
~5x cheaper to write and nearly free to read, for caches that live only as long as one job (`dataprep stage`).
A reader tells the two apart by the file's suffix, so the format is an execution choice, not part of a key.

key(node) = hash(stage name, stage version, params that decide the output, keys of its inputs); a source's key
also hashes the bytes of its files. A node is cached only if its manifest exists: outputs are written in a
`<key>.partial-<pid>` directory that is renamed into place after the manifest, so a killed run leaves nothing
that looks finished and simply redoes the node.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import xxhash

from dataprep.registry import key_params, model_ref_fields

MANIFEST = "manifest.json"


def node_key(node, input_keys: list[str], model_keys: dict[str, str] | None = None) -> str:
    """`model_keys`: for each model param given as {node: NAME}, NAME's key. A model given as a local
    directory is keyed by its files' bytes, like a source; a hub id by its name."""
    params = key_params(node.params)
    for key, model_key in (model_keys or {}).items():
        params[key] = {"node_key": model_key}
    for key in model_ref_fields(type(node.params)):
        ref = params.get(key)
        if isinstance(ref, str) and Path(ref).is_dir():
            params[key] = {"dir": file_digests(ref)}
    doc = {"stage": node.stage.name, "version": node.stage.version, "params": params, "inputs": input_keys}
    if node.stage.kind == "source" and getattr(node.params, "path", ""):
        doc["files"] = file_digests(node.params.path)
    blob = json.dumps(doc, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def file_digests(path: str) -> list[tuple[str, str]]:
    """(relative name, xxh3-128 of the bytes) of every file of a source: hashing runs at GB/s."""
    root = Path(path)
    files = sorted(f for f in root.rglob("*") if f.is_file()) if root.is_dir() else [root]
    out = []
    for f in files:
        h = xxhash.xxh3_128()
        with open(f, "rb") as fh:
            while chunk := fh.read(1 << 22):
                h.update(chunk)
        out.append((str(f.relative_to(root)) if root.is_dir() else f.name, h.hexdigest()))
    return out


class NodeCache:
    """The cache entry of one node at one key."""

    def __init__(self, root: str | Path, pipeline: str, node: str, key: str):
        self.base = Path(root) / pipeline / node
        self.key = key
        self.dir = self.base / key

    @property
    def work_dir(self) -> Path:
        """Where a build node keeps checkpoints: beside the entry, outside the scratch directory a rerun wipes,
        so an interrupted build (a long training run) continues; same key, same config, safe to resume."""
        return self.base / f"{self.key}.work"

    @property
    def committed(self) -> bool:
        return (self.dir / MANIFEST).is_file()

    def manifest(self) -> dict:
        return json.loads((self.dir / MANIFEST).read_text())

    def parts(self) -> list[Path]:
        return [self.dir / p for p in self.manifest()["parts"]]

    def iter_batches(self, batch_rows: int) -> Iterator[pa.Table]:
        for part in self.parts():
            yield from iter_part(part, batch_rows)

    def read(self) -> pa.Table:
        parts = [read_part(p) for p in self.parts()]
        # parts may differ in schema: a new part starts when lineage columns appear (added rows) or a column
        # that was all-null gets a type, so they are unified rather than required to match.
        return pa.concat_tables(parts, promote_options="permissive") if parts else pa.table({})

    def rejects(self) -> pa.Table:
        for suffix in PART_FORMATS.values():
            if (path := self.dir / f"rejects{suffix}").is_file():
                return read_part(path)
        raise FileNotFoundError(f"no rejects file in {self.dir}")

    def begin(self) -> Path:
        """A fresh scratch directory for this node's outputs; leftovers of killed runs are removed."""
        self.base.mkdir(parents=True, exist_ok=True)
        for stale in self.base.glob(f"{self.key}.partial-*"):
            shutil.rmtree(stale, ignore_errors=True)
        scratch = self.base / f"{self.key}.partial-{os.getpid()}"
        scratch.mkdir()
        return scratch

    def commit(self, scratch: Path, manifest: dict) -> None:
        """Write the manifest last (atomically), then move the whole directory into place."""
        tmp = scratch / (MANIFEST + ".tmp")
        tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False))
        os.replace(tmp, scratch / MANIFEST)
        if self.dir.exists():  # a forced rerun replaces the old entry
            shutil.rmtree(self.dir)
        os.rename(scratch, self.dir)

    def remove(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


PART_FORMATS = {"parquet": ".parquet", "arrow": ".arrow"}


def part_writer(path: Path, schema: pa.Schema):
    """A writer with `write_table` and `close` for a part file; the suffix of `path` picks the format."""
    if path.suffix == ".arrow":
        return pa.ipc.new_file(path, schema)
    return pq.ParquetWriter(path, schema)


def read_part(path: Path) -> pa.Table:
    if path.suffix == ".arrow":
        return pa.ipc.open_file(pa.memory_map(str(path))).read_all()  # zero-copy: pages load as they are read
    return pq.read_table(path)


def iter_part(path: Path, batch_rows: int) -> Iterator[pa.Table]:
    if path.suffix == ".arrow":
        table = read_part(path)
        for offset in range(0, table.num_rows, batch_rows):
            yield table.slice(offset, batch_rows)
        return
    for batch in pq.ParquetFile(path).iter_batches(batch_size=batch_rows):
        yield pa.Table.from_batches([batch])
